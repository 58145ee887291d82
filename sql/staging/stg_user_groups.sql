-- grain: one row per current user group (the scd2 version of user_groups with _dlt_valid_to null)
-- optional: reads as empty when user_groups was not loaded (the group assignment rule then finds none)
with source as (

    select * from user_groups

),

current_versions as (

    select
        *,
        row_number() over (partition by id order by _dlt_valid_from desc) as version_rank
    from source
    where _dlt_valid_to is null

),

renamed as (

    select
        cast(id as bigint) as user_group_id,
        name as user_group_name,
        description,
        cast(user_count as bigint) as user_count_in_api,
        -- the group's courses (a JSON array, or a comma list) as ',12,15,' for matching by id
        concat(
            ',',
            replace(replace(replace(replace(cast(course_ids as varchar), '[', ''), ']', ''), ' ', ''), '"', ''),
            ','
        ) as course_id_list,
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at
    from current_versions
    where version_rank = 1

)

select * from renamed
