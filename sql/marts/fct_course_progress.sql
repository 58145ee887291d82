-- grain: one row per current course progress (one learner enrolled in one course)
-- Flags are evaluated at the as-of time: the last successful load, so a rebuild on the same data
-- gives the same answer. Day counts are whole days elapsed (24 h periods), so they do not
-- depend on a session time zone.
with progresses as (

    select * from stg_course_progresses

),

as_of as (

    select max(loaded_at) as as_of_at
    from stg_dlt_loads

),

flagged as (

    select
        progresses.course_progress_id,
        progresses.user_id,
        progresses.course_id,
        progresses.status,
        progresses.status in ('in-progress', 'passed', 'failed') as is_started,
        progresses.status = 'passed' as is_passed,
        progresses.status = 'failed' as is_failed,
        progresses.status = 'not-applicable' as is_not_applicable,
        -- overdue: not passed (and assigned) and the deadline lies before the as-of time
        coalesce(
            progresses.status not in ('passed', 'not-applicable')
            and progresses.deadline_at < as_of.as_of_at,
            false
        ) as is_overdue,
        coalesce(progresses.expires_at < as_of.as_of_at, false) as is_expired,
        coalesce(
            progresses.expires_at >= as_of.as_of_at
            and progresses.expires_at < as_of.as_of_at + interval 30 day,
            false
        ) as expires_within_30d,
        progresses.enrolled_at,
        progresses.started_at,
        progresses.completed_at,
        progresses.deadline_at,
        progresses.expires_at,
        progresses.updated_at,
        progresses.percent_viewed,
        as_of.as_of_at
    from progresses
    cross join as_of

)

select
    course_progress_id,
    user_id,
    course_id,
    status,
    is_started,
    is_passed,
    is_failed,
    is_not_applicable,
    is_overdue,
    case
        when is_overdue
            then cast(date_diff('second', deadline_at, as_of_at) // 86400 as bigint)
    end as days_overdue,
    is_expired,
    expires_within_30d,
    enrolled_at,
    started_at,
    completed_at,
    deadline_at,
    expires_at,
    updated_at,
    -- enrolment to completion, for passed progresses only
    case
        when is_passed and completed_at >= enrolled_at
            then cast(date_diff('second', enrolled_at, completed_at) // 86400 as bigint)
    end as days_to_complete,
    percent_viewed,
    as_of_at
from flagged
