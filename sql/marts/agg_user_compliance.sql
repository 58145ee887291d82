-- grain: one row per user with at least one assigned course progress (any status but 'not-applicable')
-- compliance_status: not_compliant if any assigned course is failed, else overdue if any is
-- overdue, else compliant if all are passed, else in_progress.
with assigned as (

    select * from fct_course_progress
    where status <> 'not-applicable'

),

per_user as (

    select
        user_id,
        count(*) as assigned,
        sum(case when is_passed then 1 else 0 end) as passed,
        sum(case when is_failed then 1 else 0 end) as failed,
        sum(case when is_overdue then 1 else 0 end) as overdue,
        sum(case when status in ('not-started', 'in-progress') then 1 else 0 end) as open_assignments,
        sum(case when is_passed and is_expired then 1 else 0 end) as expired,
        max(as_of_at) as as_of_at
    from assigned
    group by user_id

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
            when overdue > 0 then 'overdue'
            when passed = assigned then 'compliant'
            else 'in_progress'
        end as compliance_status,
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
    as_of_at
from statused
