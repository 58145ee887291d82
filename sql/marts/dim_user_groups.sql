-- grain: one row per current user group
with user_groups as (

    select * from stg_user_groups

),

memberships as (

    select * from bridge_user_group_members

),

member_counts as (

    select
        user_group_id,
        count(*) as members
    from memberships
    group by user_group_id

)

select
    user_groups.user_group_id,
    user_groups.user_group_name,
    user_groups.description,
    cast(coalesce(member_counts.members, 0) as bigint) as members,
    user_groups.user_count_in_api,
    user_groups.created_at,
    user_groups.updated_at
from user_groups
left join member_counts
    on user_groups.user_group_id = member_counts.user_group_id
