-- grain: one row per current classroom session (timeslot) (the scd2 version of instructor_led_training_timeslots with _dlt_valid_to null)
-- optional: reads as empty when instructor_led_training_timeslots was not loaded
-- The source re-reads a window of sessions; sessions outside it keep their last version.
with source as (

    select * from instructor_led_training_timeslots

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(id as bigint) as timeslot_id,
    cast(instructor_led_training_id as bigint) as instructor_led_training_id,
    location,
    instructor,
    cast(start_date as timestamptz) as starts_at,
    cast(end_date as timestamptz) as ends_at,
    cast(capacity as bigint) as capacity
from current_versions
where version_rank = 1
