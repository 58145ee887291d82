-- grain: one row per current user with at least one required course progress (fct_course_progress.is_required)
-- compliance_status, the first that applies: not_compliant (a required course is failed), expired
-- (a required course was passed but its certification has expired), overdue (a required course is
-- past its deadline), compliant (every required course passed), else in_progress.
with required as (

    select * from fct_course_progress
    where is_required

),

users as (

    select * from stg_users

),

per_user as (

    select
        required.user_id,
        count(*) as assigned,
        sum(case when required.is_passed then 1 else 0 end) as passed,
        sum(case when required.is_failed then 1 else 0 end) as failed,
        sum(case when required.is_overdue then 1 else 0 end) as overdue,
        sum(case when required.status in ('not-started', 'in-progress') then 1 else 0 end)
            as open_assignments,
        sum(case when required.is_passed and required.is_expired then 1 else 0 end) as expired,
        max(required.required_rule) as required_rule,
        max(required.as_of_at) as as_of_at
    from required
    inner join users
        on required.user_id = users.user_id
    group by required.user_id

),

statused as (

    select
        user_id,
        cast(assigned as bigint) as assigned,
        cast(passed as bigint) as passed,
        cast(failed as bigint) as failed,
        cast(overdue as bigint) as overdue,
        cast(open_assignments as bigint) as open_assignments,
        cast(expired as bigint) as expired,
        case
            when failed > 0 then 'not_compliant'
            when expired > 0 then 'expired'
            when overdue > 0 then 'overdue'
            when passed = assigned then 'compliant'
            else 'in_progress'
        end as compliance_status,
        required_rule,
        as_of_at
    from per_user

)

select
    user_id,
    assigned,
    passed,
    failed,
    overdue,
    open_assignments,
    expired,
    compliance_status,
    compliance_status = 'compliant' as is_compliant,
    required_rule,
    as_of_at
from statused
