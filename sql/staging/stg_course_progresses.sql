-- grain: one row per current course progress (the scd2 version of course_progresses with _dlt_valid_to null)
with source as (

    select * from course_progresses

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

),

renamed as (

    select
        cast(id as bigint) as course_progress_id,
        cast(user_id as bigint) as user_id,
        cast(course_id as bigint) as course_id,
        lower(status) as status,
        cast(percent_viewed as double) as percent_viewed,
        cast(expired as boolean) as is_expired_in_api,
        cast(skip_prerequisites as boolean) as is_skipping_prerequisites,
        cast(override_dates as boolean) as has_overridden_dates,
        cast(created_at as timestamptz) as enrolled_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(commencement_date as timestamptz) as started_at,
        cast(completion_date as timestamptz) as completed_at,
        -- the explicit deadline wins; the course's computed one applies when none was set
        cast(coalesce(deadline_date, computed_deadline_date) as timestamptz) as deadline_at,
        cast(expiration_date as timestamptz) as expires_at,
        cast(access_date as timestamptz) as access_at,
        cast(real_start_date as timestamptz) as real_start_at,
        cast(real_end_date as timestamptz) as real_end_at
    from current_versions
    where version_rank = 1

)

select * from renamed
