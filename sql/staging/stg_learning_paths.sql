-- grain: one row per current learning path (the scd2 version of learning_paths with _dlt_valid_to null)
-- optional: reads as empty when learning_paths was not loaded
with source as (

    select * from learning_paths

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(id as bigint) as learning_path_id,
    name as learning_path_name,
    description,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from current_versions
where version_rank = 1
