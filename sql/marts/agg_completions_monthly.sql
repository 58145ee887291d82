-- grain: one row per calendar month (UTC) in which a current progress was enrolled, started, passed or failed
-- Counts follow each progress's own dates: enrolled_at, started_at, completed_at (a failure without
-- a completion date counts in the month of its last update). 'not-applicable' rows are left out.
with progresses as (

    select * from fct_course_progress
    where status <> 'not-applicable'

),

events as (

    select
        cast(date_trunc('month', enrolled_at at time zone 'UTC') as date) as month_start,
        'enrollment' as event_type
    from progresses
    where enrolled_at is not null

    union all

    select
        cast(date_trunc('month', started_at at time zone 'UTC') as date) as month_start,
        'start' as event_type
    from progresses
    where is_started and started_at is not null

    union all

    select
        cast(date_trunc('month', completed_at at time zone 'UTC') as date) as month_start,
        'pass' as event_type
    from progresses
    where is_passed and completed_at is not null

    union all

    select
        cast(date_trunc('month', coalesce(completed_at, updated_at) at time zone 'UTC') as date)
            as month_start,
        'fail' as event_type
    from progresses
    where is_failed and coalesce(completed_at, updated_at) is not null

)

select
    month_start,
    cast(sum(case when event_type = 'enrollment' then 1 else 0 end) as bigint) as enrollments,
    cast(sum(case when event_type = 'start' then 1 else 0 end) as bigint) as starts,
    cast(sum(case when event_type = 'pass' then 1 else 0 end) as bigint) as passes,
    cast(sum(case when event_type = 'fail' then 1 else 0 end) as bigint) as fails
from events
group by month_start
