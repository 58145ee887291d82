-- grain: one row per current (learning path, course) pair (learning_path_courses with _dlt_valid_to null)
-- optional: reads as empty when learning paths were not loaded
with source as (

    select * from learning_path_courses

),

current_versions as (

    select
        *,
        row_number() over (
            partition by learning_path_id, course_id order by _dlt_valid_from desc
        ) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(learning_path_id as bigint) as learning_path_id,
    cast(course_id as bigint) as course_id
from current_versions
where version_rank = 1
