-- grain: one row per current user holding at least one competency or a skill balance
with competencies as (

    select * from fct_user_competencies

),

balances as (

    select * from fct_user_skill_balances

),

per_user_competencies as (

    select
        user_id,
        count(*) as competencies_held,
        max(awarded_at) as last_awarded_at
    from competencies
    group by user_id

),

per_user_skills as (

    select
        user_id,
        count(*) as skills_with_balance,
        sum(balance) as total_skill_balance
    from balances
    group by user_id

),

learners as (

    select user_id from per_user_competencies
    union
    select user_id from per_user_skills

)

select
    learners.user_id,
    cast(coalesce(per_user_competencies.competencies_held, 0) as bigint) as competencies_held,
    per_user_competencies.last_awarded_at,
    cast(coalesce(per_user_skills.skills_with_balance, 0) as bigint) as skills_with_balance,
    cast(coalesce(per_user_skills.total_skill_balance, 0) as bigint) as total_skill_balance
from learners
left join per_user_competencies
    on learners.user_id = per_user_competencies.user_id
left join per_user_skills
    on learners.user_id = per_user_skills.user_id
