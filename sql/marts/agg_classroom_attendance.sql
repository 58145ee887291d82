-- grain: one row per user with at least one registration to a current classroom session
-- attended: registrations marked 'attended'; missed: sessions already started before the as-of
-- time that are not marked attended; upcoming: sessions starting at or after the as-of time.
with registrations as (

    select * from stg_instructor_led_training_timeslot_registrations

),

sessions as (

    select * from stg_instructor_led_training_timeslots

),

as_of as (

    select max(loaded_at) as as_of_at
    from stg_dlt_loads

),

per_learner as (

    select
        registrations.user_id,
        count(*) as registrations,
        sum(case when registrations.status = 'attended' then 1 else 0 end) as attended,
        sum(
            case
                when sessions.starts_at < as_of.as_of_at and registrations.status <> 'attended'
                    then 1
                else 0
            end
        ) as missed,
        sum(case when sessions.starts_at >= as_of.as_of_at then 1 else 0 end) as upcoming,
        max(case when registrations.status = 'attended' then sessions.starts_at end)
            as last_attended_at,
        max(as_of.as_of_at) as as_of_at
    from registrations
    inner join sessions
        on registrations.timeslot_id = sessions.timeslot_id
    cross join as_of
    group by registrations.user_id

)

select
    user_id,
    cast(registrations as bigint) as registrations,
    cast(attended as bigint) as attended,
    cast(missed as bigint) as missed,
    cast(upcoming as bigint) as upcoming,
    last_attended_at,
    as_of_at
from per_learner
