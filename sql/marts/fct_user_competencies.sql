-- grain: one row per current (user, competency) award of a current user
with awards as (

    select * from stg_competency_awards

),

competencies as (

    select * from stg_competencies

),

users as (

    select * from stg_users

)

select
    awards.user_id,
    awards.competency_id,
    competencies.competency_name,
    awards.awarded_at
from awards
inner join users
    on awards.user_id = users.user_id
left join competencies
    on awards.competency_id = competencies.competency_id
