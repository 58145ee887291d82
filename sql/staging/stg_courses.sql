-- grain: one row per current course (the scd2 version of courses with _dlt_valid_to null)
with source as (

    select * from courses

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
        cast(id as bigint) as course_id,
        name as course_name,
        description,
        course_code,
        cast(active as boolean) as is_active,
        cast(price as decimal(18, 2)) as price,
        cast(days_until_expiration as bigint) as days_until_expiration,
        -- the course's tags as JSON text, lower case (e.g. '["compliance","annual"]')
        lower(cast(tags as varchar)) as tags_json,
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at
    from current_versions
    where version_rank = 1

)

select * from renamed
