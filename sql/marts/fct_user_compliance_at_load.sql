-- grain: one row per successful load x user with at least one required course progress as recorded at that load
-- Each load is evaluated at its own time T (loaded_at): progresses, users, memberships, group
-- courses and learning paths as recorded then (scd2 version valid at T), overdue and expiry at T.
-- The required rule is chosen per load as in fct_course_progress: configured courses (the settings),
-- else group and learning-path assignments when at least one enrolment was reached so, else every
-- enrolment. Course tags of the required_course_tags setting are the current courses' tags.
with loads as (

    select * from stg_dlt_loads

),

versions as (

    select * from stg_course_progress_versions

),

users as (

    select * from stg_user_versions

),

memberships as (

    select * from bridge_user_group_members_at_load

),

path_groups as (

    select * from stg_learning_path_user_group_versions

),

path_courses as (

    select * from stg_learning_path_course_versions

),

courses as (

    select * from stg_courses

),

settings as (

    select * from model_settings

),

configured_courses as (

    select distinct courses.course_id
    from courses
    inner join settings
        on (
            settings.setting = 'required_course_id'
            and cast(courses.course_id as varchar) = trim(settings.value)
        )
        or (
            settings.setting = 'required_course_tag'
            and courses.tags_json like concat('%"', lower(trim(settings.value)), '"%')
        )

),

configured as (

    select count(*) as configured_settings
    from settings
    where setting in ('required_course_id', 'required_course_tag')

),

progresses as (

    select
        loads.load_id,
        loads.loaded_at as as_of_at,
        versions.course_progress_id,
        versions.user_id,
        versions.course_id,
        versions.status,
        versions.deadline_at,
        versions.expires_at
    from loads
    inner join versions
        on versions.valid_from <= loads.loaded_at
        and (versions.valid_to is null or versions.valid_to > loads.loaded_at)
    inner join users
        on versions.user_id = users.user_id
        and users.valid_from <= loads.loaded_at
        and (users.valid_to is null or users.valid_to > loads.loaded_at)
    where versions.status <> 'not-applicable'

),

through_group as (

    select distinct
        progresses.load_id,
        progresses.course_progress_id
    from progresses
    inner join memberships
        on progresses.load_id = memberships.load_id
        and progresses.user_id = memberships.user_id
    where memberships.course_id_list like concat('%,', cast(progresses.course_id as varchar), ',%')

),

through_path as (

    select distinct
        progresses.load_id,
        progresses.course_progress_id
    from progresses
    inner join memberships
        on progresses.load_id = memberships.load_id
        and progresses.user_id = memberships.user_id
    inner join path_groups
        on memberships.user_group_id = path_groups.user_group_id
        and path_groups.valid_from <= progresses.as_of_at
        and (path_groups.valid_to is null or path_groups.valid_to > progresses.as_of_at)
    inner join path_courses
        on path_groups.learning_path_id = path_courses.learning_path_id
        and progresses.course_id = path_courses.course_id
        and path_courses.valid_from <= progresses.as_of_at
        and (path_courses.valid_to is null or path_courses.valid_to > progresses.as_of_at)

),

flagged as (

    select
        progresses.*,
        through_group.course_progress_id is not null
        or through_path.course_progress_id is not null as is_assigned,
        configured_courses.course_id is not null as is_configured_required
    from progresses
    left join through_group
        on progresses.load_id = through_group.load_id
        and progresses.course_progress_id = through_group.course_progress_id
    left join through_path
        on progresses.load_id = through_path.load_id
        and progresses.course_progress_id = through_path.course_progress_id
    left join configured_courses
        on progresses.course_id = configured_courses.course_id

),

rules as (

    select
        loads.load_id,
        case
            when max(configured.configured_settings) > 0 then 'configured_courses'
            when sum(case when flagged.is_assigned then 1 else 0 end) > 0 then 'group_assignments'
            else 'every_enrolment'
        end as required_rule
    from loads
    cross join configured
    left join flagged
        on loads.load_id = flagged.load_id
    group by loads.load_id

),

required as (

    select
        flagged.*,
        rules.required_rule
    from flagged
    inner join rules
        on flagged.load_id = rules.load_id
    where case rules.required_rule
        when 'configured_courses' then flagged.is_configured_required
        when 'group_assignments' then flagged.is_assigned
        else true
    end

),

per_user as (

    select
        load_id,
        user_id,
        max(as_of_at) as as_of_at,
        max(required_rule) as required_rule,
        count(*) as assigned,
        sum(case when status = 'passed' then 1 else 0 end) as passed,
        sum(case when status = 'failed' then 1 else 0 end) as failed,
        sum(case when status <> 'passed' and deadline_at < as_of_at then 1 else 0 end) as overdue,
        sum(case when status = 'passed' and expires_at < as_of_at then 1 else 0 end) as expired
    from required
    group by load_id, user_id

),

statused as (

    select
        load_id,
        as_of_at,
        user_id,
        required_rule,
        cast(assigned as bigint) as assigned,
        cast(passed as bigint) as passed,
        cast(failed as bigint) as failed,
        cast(overdue as bigint) as overdue,
        cast(expired as bigint) as expired,
        case
            when failed > 0 then 'not_compliant'
            when expired > 0 then 'expired'
            when overdue > 0 then 'overdue'
            when passed = assigned then 'compliant'
            else 'in_progress'
        end as compliance_status
    from per_user

)

select
    load_id,
    as_of_at,
    user_id,
    required_rule,
    assigned,
    passed,
    failed,
    overdue,
    expired,
    compliance_status,
    compliance_status = 'compliant' as is_compliant
from statused
