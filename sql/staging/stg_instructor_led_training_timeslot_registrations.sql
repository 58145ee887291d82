-- grain: one row per current registration of a learner to a classroom session (the scd2 version of instructor_led_training_timeslot_registrations with _dlt_valid_to null)
-- optional: reads as empty when instructor_led_training_timeslot_registrations was not loaded
with source as (

    select * from instructor_led_training_timeslot_registrations

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(id as bigint) as registration_id,
    cast(instructor_led_training_timeslot_id as bigint) as timeslot_id,
    cast(user_id as bigint) as user_id,
    lower(status) as status,
    cast(created_at as timestamptz) as registered_at,
    cast(updated_at as timestamptz) as updated_at
from current_versions
where version_rank = 1
