-- grain: one row per current (learning path, user group) pair (learning_path_user_groups with _dlt_valid_to null)
-- optional: reads as empty when learning paths were not loaded
with source as (

    select * from learning_path_user_groups

),

current_versions as (

    select
        *,
        row_number() over (
            partition by learning_path_id, user_group_id order by _dlt_valid_from desc
        ) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(learning_path_id as bigint) as learning_path_id,
    cast(user_group_id as bigint) as user_group_id
from current_versions
where version_rank = 1
