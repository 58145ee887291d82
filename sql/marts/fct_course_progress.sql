-- grain: one row per current course progress (one learner enrolled in one course)
-- Flags are evaluated at the as-of time: the last successful load, so a rebuild on the same data
-- gives the same answer. Day counts are whole days elapsed (24 h periods), so they do not
-- depend on a session time zone.
-- is_required: by the first rule that applies (required_rule, the same on every row):
--   configured_courses - the courses of the required_course_ids / required_course_tags settings;
--   group_assignments  - courses reaching the learner through a current group membership (the
--                        group's course_ids, or a learning path assigned to the group), when at
--                        least one enrolment is reached so;
--   every_enrolment    - every enrolment but 'not-applicable'.
with progresses as (

    select * from stg_course_progresses

),

required_course_rules as (

    select * from int_required_course_rules

),

memberships as (

    select * from bridge_user_group_members

),

user_groups as (

    select * from stg_user_groups

),

path_groups as (

    select * from stg_learning_path_user_groups

),

path_courses as (

    select * from stg_learning_path_courses

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

through_group as (

    select distinct
        progresses.course_progress_id
    from progresses
    inner join memberships
        on progresses.user_id = memberships.user_id
    inner join user_groups
        on memberships.user_group_id = user_groups.user_group_id
    where user_groups.course_id_list like concat('%,', cast(progresses.course_id as varchar), ',%')

),

through_path as (

    select distinct
        progresses.course_progress_id
    from progresses
    inner join memberships
        on progresses.user_id = memberships.user_id
    inner join path_groups
        on memberships.user_group_id = path_groups.user_group_id
    inner join path_courses
        on path_groups.learning_path_id = path_courses.learning_path_id
        and progresses.course_id = path_courses.course_id

),

assigned as (

    select
        progresses.course_progress_id,
        through_group.course_progress_id is not null as is_assigned_through_group,
        through_path.course_progress_id is not null as is_assigned_through_learning_path,
        configured_courses.course_id is not null as is_configured_required
    from progresses
    left join through_group
        on progresses.course_progress_id = through_group.course_progress_id
    left join through_path
        on progresses.course_progress_id = through_path.course_progress_id
    left join configured_courses
        on progresses.course_id = configured_courses.course_id

),

required_rule as (

    select
        case
            when max(configured.configured_settings) > 0 then 'configured_courses'
            when sum(
                case
                    when progresses.status <> 'not-applicable'
                        and (assigned.is_assigned_through_group or assigned.is_assigned_through_learning_path)
                        then 1
                    else 0
                end
            ) > 0 then 'group_assignments'
            else 'every_enrolment'
        end as required_rule
    from configured
    left join progresses
        on 1 = 1
    left join assigned
        on progresses.course_progress_id = assigned.course_progress_id

),

as_of as (

    select max(loaded_at) as as_of_at
    from stg_dlt_loads

),

flagged as (

    select
        progresses.course_progress_id,
        progresses.user_id,
        progresses.course_id,
        progresses.status,
        progresses.status in ('in-progress', 'passed', 'failed') as is_started,
        progresses.status = 'passed' as is_passed,
        progresses.status = 'failed' as is_failed,
        progresses.status = 'not-applicable' as is_not_applicable,
        progresses.status <> 'not-applicable'
        and case required_rule.required_rule
            when 'configured_courses' then assigned.is_configured_required
            when 'group_assignments'
                then assigned.is_assigned_through_group or assigned.is_assigned_through_learning_path
            else true
        end as is_required,
        required_rule.required_rule,
        assigned.is_assigned_through_group,
        assigned.is_assigned_through_learning_path,
        -- overdue: not passed (and assigned) and the deadline lies before the as-of time
        coalesce(
            progresses.status not in ('passed', 'not-applicable')
            and progresses.deadline_at < as_of.as_of_at,
            false
        ) as is_overdue,
        coalesce(progresses.expires_at < as_of.as_of_at, false) as is_expired,
        coalesce(
            progresses.expires_at >= as_of.as_of_at
            and progresses.expires_at < as_of.as_of_at + interval 30 day,
            false
        ) as expires_within_30d,
        progresses.enrolled_at,
        progresses.started_at,
        progresses.completed_at,
        progresses.deadline_at,
        progresses.expires_at,
        progresses.updated_at,
        progresses.percent_viewed,
        as_of.as_of_at
    from progresses
    inner join assigned
        on progresses.course_progress_id = assigned.course_progress_id
    cross join as_of
    cross join required_rule

)

select
    course_progress_id,
    user_id,
    course_id,
    status,
    is_started,
    is_passed,
    is_failed,
    is_not_applicable,
    is_required,
    required_rule,
    is_assigned_through_group,
    is_assigned_through_learning_path,
    is_overdue,
    case
        when is_overdue
            then cast(date_diff('second', deadline_at, as_of_at) // 86400 as bigint)
    end as days_overdue,
    is_expired,
    expires_within_30d,
    enrolled_at,
    started_at,
    completed_at,
    deadline_at,
    expires_at,
    updated_at,
    -- enrolment to completion, for passed progresses only
    case
        when is_passed and completed_at >= enrolled_at
            then cast(date_diff('second', enrolled_at, completed_at) // 86400 as bigint)
    end as days_to_complete,
    percent_viewed,
    as_of_at
from flagged
