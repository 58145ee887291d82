-- grain: one row per course progress per status episode (consecutive observed versions with the same status collapsed)
-- valid_from / valid_to are when the source observed the status (scd2 validity), not API dates:
-- valid_to is null while the episode is current; a retired progress ends at its retirement.
with versions as (

    select * from stg_course_progress_versions

),

as_of as (

    select max(loaded_at) as as_of_at
    from stg_dlt_loads

),

ordered as (

    select
        *,
        lag(status) over (partition by course_progress_id order by valid_from) as previous_status,
        lag(valid_to) over (partition by course_progress_id order by valid_from)
            as previous_valid_to
    from versions

),

marked as (

    select
        *,
        -- a new episode starts on a status change, or after a gap (retired, then seen again)
        case
            when previous_status is null then 1
            when previous_status <> status then 1
            when previous_valid_to is null or previous_valid_to <> valid_from then 1
            else 0
        end as is_new_episode
    from ordered

),

numbered as (

    select
        *,
        -- valid_from is never null: "nulls first" only spares BigQuery an untranslatable default
        sum(is_new_episode) over (
            partition by course_progress_id
            order by valid_from nulls first
            rows between unbounded preceding and current row
        ) as status_seq
    from marked

),

episodes as (

    select
        course_progress_id,
        status_seq,
        status,
        max(user_id) as user_id,
        max(course_id) as course_id,
        min(valid_from) as valid_from,
        -- an episode is open while any of its versions is current
        case when count(*) = count(valid_to) then max(valid_to) end as valid_to,
        count(*) as versions
    from numbered
    group by course_progress_id, status_seq, status

)

select
    episodes.course_progress_id,
    episodes.status_seq,
    episodes.user_id,
    episodes.course_id,
    episodes.status,
    episodes.valid_from,
    episodes.valid_to,
    episodes.valid_to is null as is_current,
    cast(episodes.versions as bigint) as versions,
    -- time in status up to the as-of time for the open episode
    cast(
        date_diff('second', episodes.valid_from, coalesce(episodes.valid_to, as_of.as_of_at))
        as double
    ) / 3600 as hours_in_status,
    as_of.as_of_at
from episodes
cross join as_of
