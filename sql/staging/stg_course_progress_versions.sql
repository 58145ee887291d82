-- grain: one row per observed version of a course progress (every scd2 version of course_progresses)
-- Each version is a state the source saw at a load; together they are the status history.
with source as (

    select * from course_progresses

),

deduplicated as (

    select
        *,
        row_number() over (
            partition by id, _dlt_valid_from order by _dlt_valid_to desc
        ) as version_rank
    from source

),

renamed as (

    select
        cast(id as bigint) as course_progress_id,
        cast(user_id as bigint) as user_id,
        cast(course_id as bigint) as course_id,
        lower(status) as status,
        cast(coalesce(deadline_date, computed_deadline_date) as timestamptz) as deadline_at,
        cast(expiration_date as timestamptz) as expires_at,
        cast(_dlt_valid_from as timestamptz) as valid_from,
        cast(_dlt_valid_to as timestamptz) as valid_to
    from deduplicated
    where version_rank = 1

)

select * from renamed
