-- grain: one row per current (competency, user) award (the scd2 version of competency_awards with _dlt_valid_to null)
-- optional: reads as empty when competency_awards was not loaded
-- The user's display name is dropped here: dim_users holds the names.
with source as (

    select * from competency_awards

),

current_versions as (

    select
        *,
        row_number() over (partition by competency_id, user_id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(competency_id as bigint) as competency_id,
    cast(user_id as bigint) as user_id,
    cast(created_at as timestamptz) as awarded_at
from current_versions
where version_rank = 1
