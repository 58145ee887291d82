-- grain: one row per observed version of a (user group, user) membership (every scd2 version of user_group_members)
-- optional: reads as empty when user_group_members was not loaded
-- With the validity columns, what was recorded at any load: valid_from <= T and (valid_to null or > T).
with source as (

    select * from user_group_members

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by user_group_id, user_id, _dlt_valid_from order by _dlt_valid_to desc
        ) as version_rank
    from source

)

select
    cast(user_group_id as bigint) as user_group_id,
    cast(user_id as bigint) as user_id,
    cast(_dlt_valid_from as timestamptz) as valid_from,
    cast(_dlt_valid_to as timestamptz) as valid_to
from deduplicated
where version_rank = 1
