-- grain: one row per payment (the latest scd2 version of payments; payments are never retired)
-- Payer names, e-mail and the raw IPN text are dropped here: no model needs them.
with source as (

    select * from payments

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
        cast(id as bigint) as payment_id,
        cast(user_id as bigint) as user_id,
        cast(course_id as bigint) as course_id,
        lower(status) as status,
        lower(payment_type) as payment_type,
        transaction_number,
        cast(amount as decimal(18, 2)) as amount,
        upper(currency) as currency,
        cast(created_at as timestamptz) as created_at,
        cast(updated_at as timestamptz) as updated_at
    from current_versions
    where version_rank = 1

)

select * from renamed
