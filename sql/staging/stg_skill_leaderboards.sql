-- grain: one row per current (skill, user) balance on the skill's leaderboard (the scd2 version of skill_leaderboards with _dlt_valid_to null)
-- optional: reads as empty when skill_leaderboards was not loaded
-- The user's display name is dropped here: dim_users holds the names.
with source as (

    select * from skill_leaderboards

),

current_versions as (

    select
        *,
        row_number() over (partition by skill_id, user_id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(skill_id as bigint) as skill_id,
    cast(user_id as bigint) as user_id,
    cast(balance as bigint) as balance,
    cast(rank as bigint) as leaderboard_rank
from current_versions
where version_rank = 1
