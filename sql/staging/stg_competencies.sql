-- grain: one row per current competency (the scd2 version of competencies with _dlt_valid_to null)
-- optional: reads as empty when competencies was not loaded
with source as (

    select * from competencies

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(id as bigint) as competency_id,
    coalesce(display_name, name) as competency_name
from current_versions
where version_rank = 1
