-- grain: one row per current user (the scd2 version of users with _dlt_valid_to null)
with source as (

    select * from users

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
        cast(id as bigint) as user_id,
        username,
        email,
        first_name,
        last_name,
        card_no,
        role,
        status,
        title,
        cell,
        work_phone,
        address,
        ca_0,
        ca_1,
        ca_2,
        ca_3,
        ca_4,
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at,
        cast(last_login_at as timestamptz) as last_login_at,
        cast(access_start_date as timestamptz) as access_starts_at,
        cast(access_end_date as timestamptz) as access_ends_at
    from current_versions
    where version_rank = 1

)

select * from renamed
