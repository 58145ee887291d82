-- grain: one row per current passed course progress that has an expiration date
-- expiry_window is exclusive: expired, within_30d, within_60d, within_90d or later; the
-- expires_within_* flags are cumulative (within 90 days includes within 30).
with progresses as (

    select * from fct_course_progress
    where is_passed and expires_at is not null

),

courses as (

    select * from dim_courses

),

windowed as (

    select
        progresses.course_progress_id,
        progresses.user_id,
        progresses.course_id,
        courses.course_name,
        progresses.completed_at,
        progresses.expires_at,
        progresses.is_expired,
        progresses.expires_at >= progresses.as_of_at
        and progresses.expires_at < progresses.as_of_at + interval 30 day as expires_within_30d,
        progresses.expires_at >= progresses.as_of_at
        and progresses.expires_at < progresses.as_of_at + interval 60 day as expires_within_60d,
        progresses.expires_at >= progresses.as_of_at
        and progresses.expires_at < progresses.as_of_at + interval 90 day as expires_within_90d,
        case
            when not progresses.is_expired
                then cast(
                    date_diff('second', progresses.as_of_at, progresses.expires_at) // 86400
                    as bigint
                )
        end as days_until_expiry,
        progresses.as_of_at
    from progresses
    left join courses
        on progresses.course_id = courses.course_id

)

select
    course_progress_id,
    user_id,
    course_id,
    course_name,
    completed_at,
    expires_at,
    case
        when is_expired then 'expired'
        when expires_within_30d then 'within_30d'
        when expires_within_60d then 'within_60d'
        when expires_within_90d then 'within_90d'
        else 'later'
    end as expiry_window,
    is_expired,
    expires_within_30d,
    expires_within_60d,
    expires_within_90d,
    days_until_expiry,
    as_of_at
from windowed
