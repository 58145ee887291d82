-- grain: one row per current user group
-- A learner counts in every group they are a current member of (groups overlap: the rows do not
-- add up to the account). Statuses from agg_user_compliance (required courses only).
-- Two separate measures: share_compliant (compliant members / members with assigned courses) and
-- training_progress (passed / assigned over all the members' assigned courses).
with user_groups as (

    select * from dim_user_groups

),

memberships as (

    select * from bridge_user_group_members

),

user_compliance as (

    select * from agg_user_compliance

),

per_group as (

    select
        memberships.user_group_id,
        count(*) as members,
        count(user_compliance.user_id) as members_with_assignments,
        sum(case when user_compliance.compliance_status = 'compliant' then 1 else 0 end)
            as compliant_members,
        sum(case when user_compliance.compliance_status = 'in_progress' then 1 else 0 end)
            as in_progress_members,
        sum(case when user_compliance.compliance_status = 'overdue' then 1 else 0 end)
            as overdue_members,
        sum(case when user_compliance.compliance_status = 'expired' then 1 else 0 end)
            as expired_members,
        sum(case when user_compliance.compliance_status = 'not_compliant' then 1 else 0 end)
            as not_compliant_members,
        sum(user_compliance.assigned) as assigned,
        sum(user_compliance.passed) as passed
    from memberships
    left join user_compliance
        on memberships.user_id = user_compliance.user_id
    group by memberships.user_group_id

),

counted as (

    select
        user_groups.user_group_id,
        user_groups.user_group_name,
        cast(coalesce(per_group.members, 0) as bigint) as members,
        cast(coalesce(per_group.members_with_assignments, 0) as bigint) as members_with_assignments,
        cast(coalesce(per_group.compliant_members, 0) as bigint) as compliant_members,
        cast(coalesce(per_group.in_progress_members, 0) as bigint) as in_progress_members,
        cast(coalesce(per_group.overdue_members, 0) as bigint) as overdue_members,
        cast(coalesce(per_group.expired_members, 0) as bigint) as expired_members,
        cast(coalesce(per_group.not_compliant_members, 0) as bigint) as not_compliant_members,
        cast(coalesce(per_group.assigned, 0) as bigint) as assigned,
        cast(coalesce(per_group.passed, 0) as bigint) as passed
    from user_groups
    left join per_group
        on user_groups.user_group_id = per_group.user_group_id

)

select
    user_group_id,
    user_group_name,
    members,
    members_with_assignments,
    compliant_members,
    in_progress_members,
    overdue_members,
    expired_members,
    not_compliant_members,
    cast(compliant_members as double) / nullif(members_with_assignments, 0) as share_compliant,
    assigned,
    passed,
    cast(passed as double) / nullif(assigned, 0) as training_progress
from counted
