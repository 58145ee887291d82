-- grain: one row per current learning path x current user it is assigned to (through a current membership of a group the path is assigned to)
-- courses_passed counts the path's courses the learner has a current passed progress for (an
-- expired certification still counts as passed here; courses_expired says how many expired).
with paths as (

    select * from stg_learning_paths

),

path_groups as (

    select * from stg_learning_path_user_groups

),

path_courses as (

    select * from stg_learning_path_courses

),

memberships as (

    select * from bridge_user_group_members

),

progresses as (

    select * from fct_course_progress

),

assigned as (

    select distinct
        path_groups.learning_path_id,
        memberships.user_id
    from path_groups
    inner join memberships
        on path_groups.user_group_id = memberships.user_group_id

),

course_counts as (

    select
        learning_path_id,
        count(*) as courses_in_path
    from path_courses
    group by learning_path_id

),

per_learner as (

    select
        assigned.learning_path_id,
        assigned.user_id,
        count(progresses.course_progress_id) as courses_enrolled,
        sum(case when progresses.is_started then 1 else 0 end) as courses_started,
        sum(case when progresses.is_passed then 1 else 0 end) as courses_passed,
        sum(case when progresses.is_passed and progresses.is_expired then 1 else 0 end)
            as courses_expired,
        max(progresses.as_of_at) as as_of_at
    from assigned
    left join path_courses
        on assigned.learning_path_id = path_courses.learning_path_id
    left join progresses
        on assigned.user_id = progresses.user_id
        and path_courses.course_id = progresses.course_id
        and progresses.status <> 'not-applicable'
    group by assigned.learning_path_id, assigned.user_id

)

select
    per_learner.learning_path_id,
    paths.learning_path_name,
    per_learner.user_id,
    cast(coalesce(course_counts.courses_in_path, 0) as bigint) as courses_in_path,
    cast(per_learner.courses_enrolled as bigint) as courses_enrolled,
    cast(coalesce(per_learner.courses_started, 0) as bigint) as courses_started,
    cast(coalesce(per_learner.courses_passed, 0) as bigint) as courses_passed,
    cast(coalesce(per_learner.courses_expired, 0) as bigint) as courses_expired,
    cast(coalesce(per_learner.courses_passed, 0) as double)
    / nullif(course_counts.courses_in_path, 0) as share_passed,
    coalesce(course_counts.courses_in_path, 0) > 0
    and coalesce(per_learner.courses_passed, 0) = course_counts.courses_in_path as is_completed
from per_learner
inner join paths
    on per_learner.learning_path_id = paths.learning_path_id
left join course_counts
    on per_learner.learning_path_id = course_counts.learning_path_id
