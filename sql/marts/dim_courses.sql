-- grain: one row per current course
with courses as (

    select * from stg_courses

)

select
    course_id,
    course_name,
    description,
    course_code,
    is_active,
    price,
    days_until_expiration,
    created_at,
    updated_at
from courses
