-- grain: one row per current (user, skill) balance of a current user, from the skills' leaderboards
with balances as (

    select * from stg_skill_leaderboards

),

skills as (

    select * from stg_skills

),

users as (

    select * from stg_users

)

select
    balances.user_id,
    balances.skill_id,
    skills.skill_name,
    balances.balance,
    balances.leaderboard_rank
from balances
inner join users
    on balances.user_id = users.user_id
left join skills
    on balances.skill_id = skills.skill_id
