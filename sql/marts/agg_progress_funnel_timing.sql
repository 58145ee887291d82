-- grain: one row per current course
-- Funnel timing the API cannot give: from the observed status history, how long progresses took
-- from enrolled (first seen not-started) to started (first seen in-progress, passed or failed)
-- to passed. A step is timed only when both of its ends were observed, so a progress first seen
-- already passed counts as reaching 'passed' but adds no timing. Hours are observation-grained:
-- a status change is seen at the load after it happened.
with history as (

    select * from fct_course_progress_status_history
    where status <> 'not-applicable'

),

courses as (

    select * from dim_courses

),

per_progress as (

    select
        course_progress_id,
        max(course_id) as course_id,
        min(case when status = 'not-started' then valid_from end) as first_not_started_at,
        min(case when status in ('in-progress', 'passed', 'failed') then valid_from end)
            as first_started_at,
        min(case when status = 'in-progress' then valid_from end) as first_in_progress_at,
        min(case when status = 'passed' then valid_from end) as first_passed_at
    from history
    group by course_progress_id

),

timed as (

    select
        course_progress_id,
        course_id,
        first_started_at is not null as has_started,
        first_passed_at is not null as has_passed,
        case
            when first_started_at > first_not_started_at
                then cast(date_diff('second', first_not_started_at, first_started_at) as double)
                / 3600
        end as hours_enrolled_to_started,
        case
            when first_passed_at > first_in_progress_at
                then cast(date_diff('second', first_in_progress_at, first_passed_at) as double)
                / 3600
        end as hours_started_to_passed,
        case
            when first_passed_at > first_not_started_at
                then cast(date_diff('second', first_not_started_at, first_passed_at) as double)
                / 3600
        end as hours_enrolled_to_passed
    from per_progress

),

per_course as (

    select
        course_id,
        count(*) as progresses_observed,
        sum(case when has_started then 1 else 0 end) as reached_started,
        sum(case when has_passed then 1 else 0 end) as reached_passed,
        count(hours_enrolled_to_started) as timed_enrolled_to_started,
        median(hours_enrolled_to_started) as median_hours_enrolled_to_started,
        count(hours_started_to_passed) as timed_started_to_passed,
        median(hours_started_to_passed) as median_hours_started_to_passed,
        count(hours_enrolled_to_passed) as timed_enrolled_to_passed,
        median(hours_enrolled_to_passed) as median_hours_enrolled_to_passed
    from timed
    group by course_id

)

select
    courses.course_id,
    courses.course_name,
    cast(coalesce(per_course.progresses_observed, 0) as bigint) as progresses_observed,
    cast(coalesce(per_course.reached_started, 0) as bigint) as reached_started,
    cast(coalesce(per_course.reached_passed, 0) as bigint) as reached_passed,
    cast(coalesce(per_course.timed_enrolled_to_started, 0) as bigint) as timed_enrolled_to_started,
    cast(per_course.median_hours_enrolled_to_started as double) as median_hours_enrolled_to_started,
    cast(coalesce(per_course.timed_started_to_passed, 0) as bigint) as timed_started_to_passed,
    cast(per_course.median_hours_started_to_passed as double) as median_hours_started_to_passed,
    cast(coalesce(per_course.timed_enrolled_to_passed, 0) as bigint) as timed_enrolled_to_passed,
    cast(per_course.median_hours_enrolled_to_passed as double) as median_hours_enrolled_to_passed
from courses
left join per_course
    on courses.course_id = per_course.course_id
