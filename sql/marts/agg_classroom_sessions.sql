-- grain: one row per current classroom session (instructor-led training timeslot)
-- A session is held once it has started before the as-of time. attendance_rate = attended /
-- registrations, for held sessions only (null for a session still ahead or without registrations).
with sessions as (

    select * from stg_instructor_led_training_timeslots

),

trainings as (

    select * from stg_instructor_led_trainings

),

registrations as (

    select * from stg_instructor_led_training_timeslot_registrations

),

as_of as (

    select max(loaded_at) as as_of_at
    from stg_dlt_loads

),

per_session as (

    select
        timeslot_id,
        count(*) as registrations,
        sum(case when status = 'attended' then 1 else 0 end) as attended
    from registrations
    group by timeslot_id

)

select
    sessions.timeslot_id,
    sessions.instructor_led_training_id,
    trainings.training_name,
    trainings.course_id,
    sessions.starts_at,
    sessions.ends_at,
    sessions.location,
    sessions.instructor,
    sessions.capacity,
    coalesce(sessions.starts_at < as_of.as_of_at, false) as is_held,
    cast(coalesce(per_session.registrations, 0) as bigint) as registrations,
    cast(coalesce(per_session.attended, 0) as bigint) as attended,
    case
        when sessions.starts_at < as_of.as_of_at
            then cast(per_session.attended as double) / nullif(per_session.registrations, 0)
    end as attendance_rate,
    cast(coalesce(per_session.registrations, 0) as double) / nullif(sessions.capacity, 0)
        as share_of_capacity,
    as_of.as_of_at
from sessions
cross join as_of
left join trainings
    on sessions.instructor_led_training_id = trainings.instructor_led_training_id
left join per_session
    on sessions.timeslot_id = per_session.timeslot_id
