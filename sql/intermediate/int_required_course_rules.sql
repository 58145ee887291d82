-- grain: one row per required-course setting (required_course_id or required_course_tag) × current course it names; course_id null for a setting that names none
-- Rule (a) of required training, configured_courses (docs/models.md, Definitions, Required),
-- written once: the courses the settings name, by id or by tag (any case). A row at all means
-- the rule is configured, even when it names no current course. fct_course_progress (today)
-- and fct_user_compliance_at_load (at each load, with today's settings and tags) read it.
with settings as (

    select * from model_settings

),

courses as (

    select * from stg_courses

)

select
    settings.setting,
    settings.value,
    courses.course_id
from settings
left join courses
    on (
        settings.setting = 'required_course_id'
        and cast(courses.course_id as varchar) = trim(settings.value)
    )
    or (
        settings.setting = 'required_course_tag'
        and courses.tags_json like concat('%"', lower(trim(settings.value)), '"%')
    )
where settings.setting in ('required_course_id', 'required_course_tag')
