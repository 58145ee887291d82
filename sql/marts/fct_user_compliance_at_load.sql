-- grain: one row per successful load x user with at least one required course progress as recorded at that load
-- incremental: stg_dlt_loads.load_id (a load, once evaluated, never changes: each build adds the loads not yet here)
-- Each load is evaluated at its own time T (loaded_at): progresses, users, memberships, group
-- courses and learning paths as recorded then (scd2 version valid at T), overdue and expiry at T.
-- The required rule is chosen per load as in fct_course_progress: configured courses (the settings,
-- int_required_course_rules), else group and learning-path assignments when at least one
-- enrolment was reached so, else every enrolment. Course tags of the required_course_tags setting
-- are the courses' tags when the load is evaluated (the build after it; a full rebuild: today's).
-- Memberships are read for the loads evaluated here only (appending a night reads that night's).
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
    where load_id in (select loads.load_id from loads)

),

path_groups as (

    select * from stg_learning_path_user_group_versions

),

path_courses as (

    select * from stg_learning_path_course_versions

),

required_course_rules as (

    select * from int_required_course_rules

),

configured_courses as (

    select distinct course_id
    from required_course_rules
    where course_id is not null

),

configured as (

    select count(*) as configured_settings
    from required_course_rules

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

statuses as (

    select * from int_compliance_statuses

),

statused as (

    select
        per_user.load_id,
        per_user.as_of_at,
        per_user.user_id,
        per_user.required_rule,
        cast(per_user.assigned as bigint) as assigned,
        cast(per_user.passed as bigint) as passed,
        cast(per_user.failed as bigint) as failed,
        cast(per_user.overdue as bigint) as overdue,
        cast(per_user.expired as bigint) as expired,
        statuses.compliance_status
    from per_user
    inner join statuses
        on statuses.has_failed = (per_user.failed > 0)
        and statuses.has_expired = (per_user.expired > 0)
        and statuses.has_overdue = (per_user.overdue > 0)
        and statuses.has_passed_all = (per_user.passed = per_user.assigned)

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
