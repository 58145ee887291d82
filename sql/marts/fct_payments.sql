-- grain: one row per payment (latest known version)
-- No payer names or e-mail: join dim_users on user_id.
with payments as (

    select * from stg_payments

)

select
    payment_id,
    user_id,
    course_id,
    status,
    payment_type,
    transaction_number,
    amount,
    currency,
    status = 'complete' as is_complete,
    status = 'refunded' as is_refunded,
    created_at,
    updated_at
from payments
