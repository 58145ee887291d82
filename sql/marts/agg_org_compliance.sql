-- grain: one row per configured org dimension (model_settings 'org_dimension') x value it takes among current users
-- The measures of agg_group_compliance, per value of a custom attribute named by the org_dimensions
-- setting (e.g. department = ca_0). A user without a value counts under '(not set)'. Without the
-- setting, no rows. Each user counts once per dimension.
with users as (

    select * from dim_users

),

settings as (

    select * from model_settings

),

user_compliance as (

    select * from agg_user_compliance

),

dimensions as (

    select
        name as dimension,
        trim(value) as attribute
    from settings
    where setting = 'org_dimension'

),

attribute_values as (

    select user_id, 'ca_0' as attribute, ca_0 as attribute_value from users
    union all
    select user_id, 'ca_1' as attribute, ca_1 as attribute_value from users
    union all
    select user_id, 'ca_2' as attribute, ca_2 as attribute_value from users
    union all
    select user_id, 'ca_3' as attribute, ca_3 as attribute_value from users
    union all
    select user_id, 'ca_4' as attribute, ca_4 as attribute_value from users

),

members as (

    select
        dimensions.dimension,
        coalesce(nullif(trim(attribute_values.attribute_value), ''), '(not set)') as dimension_value,
        attribute_values.user_id
    from dimensions
    inner join attribute_values
        on dimensions.attribute = attribute_values.attribute

),

per_value as (

    select
        members.dimension,
        members.dimension_value,
        count(*) as members,
        count(user_compliance.user_id) as members_with_assignments,
        sum(case when user_compliance.compliance_status = 'compliant' then 1 else 0 end)
            as compliant_members,
        sum(case when user_compliance.compliance_status = 'in_progress' then 1 else 0 end)
            as in_progress_members,
        sum(case when user_compliance.compliance_status = 'overdue' then 1 else 0 end)
            as overdue_members,
        sum(case when user_compliance.compliance_status = 'expired' then 1 else 0 end)
            as expired_members,
        sum(case when user_compliance.compliance_status = 'not_compliant' then 1 else 0 end)
            as not_compliant_members,
        sum(coalesce(user_compliance.assigned, 0)) as assigned,
        sum(coalesce(user_compliance.passed, 0)) as passed
    from members
    left join user_compliance
        on members.user_id = user_compliance.user_id
    group by members.dimension, members.dimension_value

)

select
    dimension,
    dimension_value,
    cast(members as bigint) as members,
    cast(members_with_assignments as bigint) as members_with_assignments,
    cast(compliant_members as bigint) as compliant_members,
    cast(in_progress_members as bigint) as in_progress_members,
    cast(overdue_members as bigint) as overdue_members,
    cast(expired_members as bigint) as expired_members,
    cast(not_compliant_members as bigint) as not_compliant_members,
    cast(compliant_members as double) / nullif(members_with_assignments, 0) as share_compliant,
    cast(assigned as bigint) as assigned,
    cast(passed as bigint) as passed,
    cast(passed as double) / nullif(assigned, 0) as training_progress
from per_value
