-- grain: one row per user x calendar month (UTC) from the first load's month to the as-of month, when the user had a required progress as recorded then
-- The status at a month's end is the one recorded by the last successful load on or before it
-- (for the current month: the last load), evaluated at that load's time. A month without a load
-- repeats the last load before it. Loads twice a day or once a week give the same rows as long as
-- each month's last load saw the same state. Up to 1000 months.
with loads as (

    select
        load_id,
        loaded_at,
        cast(date_trunc('month', loaded_at at time zone 'UTC') as date) as load_month
    from stg_dlt_loads

),

load_months as (

    select
        load_id,
        loaded_at,
        cast(extract(year from load_month) as bigint) * 12
        + cast(extract(month from load_month) as bigint) - 1 as month_index
    from loads

),

bounds as (

    select
        min(month_index) as first_index,
        max(month_index) as last_index
    from load_months

),

digits as (

    select 0 as d
    union all select 1
    union all select 2
    union all select 3
    union all select 4
    union all select 5
    union all select 6
    union all select 7
    union all select 8
    union all select 9

),

months as (

    select bounds.first_index + units.d + 10 * tens.d + 100 * hundreds.d as month_index
    from bounds
    cross join digits as units
    cross join digits as tens
    cross join digits as hundreds
    where bounds.first_index + units.d + 10 * tens.d + 100 * hundreds.d <= bounds.last_index

),

month_loads as (

    select
        months.month_index,
        max(load_months.loaded_at) as as_of_at
    from months
    inner join load_months
        on load_months.month_index <= months.month_index
    group by months.month_index

),

statuses as (

    select * from fct_user_compliance_at_load

),

dated as (

    select
        cast(
            concat(
                cast(cast((month_loads.month_index - month_loads.month_index % 12) / 12 as bigint) as varchar),
                '-',
                lpad(cast(month_loads.month_index % 12 + 1 as varchar), 2, '0'),
                '-01'
            ) as date
        ) as month_start,
        statuses.*
    from month_loads
    inner join statuses
        on month_loads.as_of_at = statuses.as_of_at

)

select
    month_start,
    cast(month_start + interval 1 month - interval 1 day as date) as month_end,
    user_id,
    load_id,
    as_of_at,
    required_rule,
    assigned,
    passed,
    failed,
    overdue,
    expired,
    compliance_status,
    is_compliant
from dated
