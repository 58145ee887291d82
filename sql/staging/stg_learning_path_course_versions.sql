-- grain: one row per observed version of a (learning path, course) pair (every scd2 version of learning_path_courses)
-- optional: reads as empty when learning paths were not loaded
-- With the validity columns, what was recorded at any load: valid_from <= T and (valid_to null or > T).
with source as (

    select * from learning_path_courses

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by learning_path_id, course_id, _dlt_valid_from order by _dlt_valid_to desc
        ) as version_rank
    from source

)

select
    cast(learning_path_id as bigint) as learning_path_id,
    cast(course_id as bigint) as course_id,
    cast(_dlt_valid_from as timestamptz) as valid_from,
    cast(_dlt_valid_to as timestamptz) as valid_to
from deduplicated
where version_rank = 1
