-- grain: one row per current (user group, user) membership (user_group_members with _dlt_valid_to null)
-- optional: reads as empty when user_group_members was not loaded
with source as (

    select * from user_group_members

),

current_versions as (

    select
        *,
        row_number() over (
            partition by user_group_id, user_id order by _dlt_valid_from desc
        ) as version_rank
    from source
    where _dlt_valid_to is null

),

renamed as (

    select
        cast(user_group_id as bigint) as user_group_id,
        cast(user_id as bigint) as user_id
    from current_versions
    where version_rank = 1

)

select * from renamed
