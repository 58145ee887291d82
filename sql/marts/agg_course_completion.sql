-- grain: one row per current course
-- enrolled = every current progress of the course except 'not-applicable' ones.
with courses as (

    select * from dim_courses

),

progresses as (

    select * from fct_course_progress
    where status <> 'not-applicable'

),

per_course as (

    select
        course_id,
        count(*) as enrolled,
        sum(case when status = 'not-started' then 1 else 0 end) as not_started,
        sum(case when status = 'in-progress' then 1 else 0 end) as in_progress,
        sum(case when is_passed then 1 else 0 end) as passed,
        sum(case when is_failed then 1 else 0 end) as failed,
        sum(case when is_overdue then 1 else 0 end) as overdue,
        sum(case when is_expired then 1 else 0 end) as expired,
        median(days_to_complete) as median_days_to_complete
    from progresses
    group by course_id

),

counted as (

    select
        courses.course_id,
        courses.course_name,
        courses.is_active,
        cast(coalesce(per_course.enrolled, 0) as bigint) as enrolled,
        cast(coalesce(per_course.not_started, 0) as bigint) as not_started,
        cast(coalesce(per_course.in_progress, 0) as bigint) as in_progress,
        cast(coalesce(per_course.passed, 0) as bigint) as passed,
        cast(coalesce(per_course.failed, 0) as bigint) as failed,
        cast(coalesce(per_course.overdue, 0) as bigint) as overdue,
        cast(coalesce(per_course.expired, 0) as bigint) as expired,
        cast(per_course.median_days_to_complete as double) as median_days_to_complete
    from courses
    left join per_course
        on courses.course_id = per_course.course_id

)

select
    course_id,
    course_name,
    is_active,
    enrolled,
    not_started,
    in_progress,
    passed,
    failed,
    overdue,
    expired,
    cast(passed as double) / nullif(enrolled, 0) as completion_rate,
    cast(passed as double) / nullif(passed + failed, 0) as pass_rate,
    median_days_to_complete
from counted
