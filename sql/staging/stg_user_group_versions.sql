-- grain: one row per observed version of a user group (every scd2 version of user_groups)
-- optional: reads as empty when user_groups was not loaded
-- With the validity columns, what was recorded at any load: valid_from <= T and (valid_to null or > T).
with source as (

    select * from user_groups

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by id, _dlt_valid_from order by _dlt_valid_to desc
        ) as version_rank
    from source

)

select
    cast(id as bigint) as user_group_id,
    concat(
        ',',
        replace(replace(replace(replace(cast(course_ids as varchar), '[', ''), ']', ''), ' ', ''), '"', ''),
        ','
    ) as course_id_list,
    cast(_dlt_valid_from as timestamptz) as valid_from,
    cast(_dlt_valid_to as timestamptz) as valid_to
from deduplicated
where version_rank = 1
