-- grain: one row per successful load x (user group, user) membership as recorded at that load
-- incremental: stg_dlt_loads.load_id (a load, once evaluated, never changes: each build adds the loads not yet here)
-- As recorded at a load's time T: the scd2 version with valid_from <= T and (valid_to null or > T),
-- for the membership, its group and its user alike. course_id_list: the group's courses then.
with loads as (

    select * from stg_dlt_loads

),

memberships as (

    select * from stg_user_group_member_versions

),

user_groups as (

    select * from stg_user_group_versions

),

users as (

    select * from stg_user_versions

)

select distinct
    loads.load_id,
    loads.loaded_at as as_of_at,
    memberships.user_group_id,
    memberships.user_id,
    user_groups.course_id_list
from loads
inner join memberships
    on memberships.valid_from <= loads.loaded_at
    and (memberships.valid_to is null or memberships.valid_to > loads.loaded_at)
inner join user_groups
    on memberships.user_group_id = user_groups.user_group_id
    and user_groups.valid_from <= loads.loaded_at
    and (user_groups.valid_to is null or user_groups.valid_to > loads.loaded_at)
inner join users
    on memberships.user_id = users.user_id
    and users.valid_from <= loads.loaded_at
    and (users.valid_to is null or users.valid_to > loads.loaded_at)
