-- grain: one row per current (user group, user) membership whose group and user are both current
with memberships as (

    select * from stg_user_group_members

),

user_groups as (

    select * from stg_user_groups

),

users as (

    select * from stg_users

)

select
    memberships.user_group_id,
    memberships.user_id
from memberships
inner join user_groups
    on memberships.user_group_id = user_groups.user_group_id
inner join users
    on memberships.user_id = users.user_id
