-- grain: one row per current user with at least one required course progress (fct_course_progress.is_required)
-- compliance_status, the first that applies (int_compliance_statuses): not_compliant (a required
-- course is failed), expired (a required course was passed but its certification has expired),
-- overdue (a required course is past its deadline), compliant (every required course passed),
-- else in_progress.
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

statuses as (

    select * from int_compliance_statuses

),

statused as (

    select
        per_user.user_id,
        cast(per_user.assigned as bigint) as assigned,
        cast(per_user.passed as bigint) as passed,
        cast(per_user.failed as bigint) as failed,
        cast(per_user.overdue as bigint) as overdue,
        cast(per_user.open_assignments as bigint) as open_assignments,
        cast(per_user.expired as bigint) as expired,
        statuses.compliance_status,
        per_user.required_rule,
        per_user.as_of_at
    from per_user
    inner join statuses
        on statuses.has_failed = (per_user.failed > 0)
        and statuses.has_expired = (per_user.expired > 0)
        and statuses.has_overdue = (per_user.overdue > 0)
        and statuses.has_passed_all = (per_user.passed = per_user.assigned)

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
