-- grain: one row per calendar month (UTC, of created_at) x payment status x payment type x currency
with payments as (

    select * from fct_payments

),

monthly as (

    select
        cast(date_trunc('month', created_at at time zone 'UTC') as date) as month_start,
        status,
        payment_type,
        currency,
        amount
    from payments
    where created_at is not null

)

select
    month_start,
    status,
    payment_type,
    currency,
    cast(count(*) as bigint) as payments,
    cast(sum(amount) as decimal(18, 2)) as amount
from monthly
group by month_start, status, payment_type, currency
