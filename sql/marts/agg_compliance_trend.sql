-- grain: one row per successful load x scope: the whole account (user_group_id null) and each user group recorded at that load
-- incremental: stg_dlt_loads.load_id (a load, once evaluated, never changes: each build adds the loads not yet here)
-- Compliance as recorded at each load, evaluated at the load's own time (fct_user_compliance_at_load).
-- A group's row counts its members as recorded then; a learner counts in every group they were in.
-- Loads are observations: a change made and undone between two loads is never seen, and nothing
-- before the first load is known.
-- The history marts are read for the loads evaluated here only: appending a night reads that
-- night's rows, not a year of them (joined in full, a year of 100,000 learners took 10 s and
-- 5.8 GB in DuckDB; bench/history_year.py).
with loads as (

    select * from stg_dlt_loads

),

statuses as (

    select * from fct_user_compliance_at_load
    where load_id in (select loads.load_id from loads)

),

memberships as (

    select * from bridge_user_group_members_at_load
    where load_id in (select loads.load_id from loads)

),

group_versions as (

    select * from stg_user_group_versions

),

user_groups_at_load as (

    select distinct
        loads.load_id,
        loads.loaded_at,
        group_versions.user_group_id
    from loads
    inner join group_versions
        on group_versions.valid_from <= loads.loaded_at
        and (group_versions.valid_to is null or group_versions.valid_to > loads.loaded_at)

),

account as (

    select
        loads.load_id,
        loads.loaded_at as as_of_at,
        cast(null as bigint) as user_group_id,
        max(statuses.required_rule) as required_rule,
        count(statuses.user_id) as learners_with_assignments,
        sum(case when statuses.compliance_status = 'compliant' then 1 else 0 end) as compliant,
        sum(case when statuses.compliance_status = 'in_progress' then 1 else 0 end) as in_progress,
        sum(case when statuses.compliance_status = 'overdue' then 1 else 0 end) as overdue,
        sum(case when statuses.compliance_status = 'expired' then 1 else 0 end) as expired,
        sum(case when statuses.compliance_status = 'not_compliant' then 1 else 0 end) as not_compliant,
        sum(coalesce(statuses.overdue, 0)) as overdue_assignments
    from loads
    left join statuses
        on loads.load_id = statuses.load_id
    group by loads.load_id, loads.loaded_at

),

per_group as (

    select
        user_groups_at_load.load_id,
        user_groups_at_load.loaded_at as as_of_at,
        user_groups_at_load.user_group_id,
        max(statuses.required_rule) as required_rule,
        count(statuses.user_id) as learners_with_assignments,
        sum(case when statuses.compliance_status = 'compliant' then 1 else 0 end) as compliant,
        sum(case when statuses.compliance_status = 'in_progress' then 1 else 0 end) as in_progress,
        sum(case when statuses.compliance_status = 'overdue' then 1 else 0 end) as overdue,
        sum(case when statuses.compliance_status = 'expired' then 1 else 0 end) as expired,
        sum(case when statuses.compliance_status = 'not_compliant' then 1 else 0 end) as not_compliant,
        sum(coalesce(statuses.overdue, 0)) as overdue_assignments
    from user_groups_at_load
    left join memberships
        on user_groups_at_load.load_id = memberships.load_id
        and user_groups_at_load.user_group_id = memberships.user_group_id
    left join statuses
        on memberships.load_id = statuses.load_id
        and memberships.user_id = statuses.user_id
    group by user_groups_at_load.load_id, user_groups_at_load.loaded_at, user_groups_at_load.user_group_id

),

scopes as (

    select * from account
    union all
    select * from per_group

)

select
    load_id,
    as_of_at,
    user_group_id,
    required_rule,
    cast(learners_with_assignments as bigint) as learners_with_assignments,
    cast(coalesce(compliant, 0) as bigint) as compliant,
    cast(coalesce(in_progress, 0) as bigint) as in_progress,
    cast(coalesce(overdue, 0) as bigint) as overdue,
    cast(coalesce(expired, 0) as bigint) as expired,
    cast(coalesce(not_compliant, 0) as bigint) as not_compliant,
    cast(compliant as double) / nullif(learners_with_assignments, 0) as share_compliant,
    cast(coalesce(overdue_assignments, 0) as bigint) as overdue_assignments
from scopes
