-- grain: one row per current instructor-led (classroom) training (the scd2 version of instructor_led_trainings with _dlt_valid_to null)
-- optional: reads as empty when instructor_led_trainings was not loaded
with source as (

    select * from instructor_led_trainings

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

)

select
    cast(id as bigint) as instructor_led_training_id,
    name as training_name,
    cast(course_id as bigint) as course_id,
    cast(created_at as timestamptz) as created_at
from current_versions
where version_rank = 1
