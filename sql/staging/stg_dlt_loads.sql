-- grain: one row per successful dlt load of the raw dataset (_dlt_loads, status 0)
-- The latest loaded_at is the models' as-of time: rebuilding on the same data gives the same answer.
with source as (

    select * from _dlt_loads

),

successful_loads as (

    select
        load_id,
        schema_name,
        cast(inserted_at as timestamptz) as loaded_at,
        row_number() over (partition by load_id order by inserted_at desc) as load_rank
    from source
    where status = 0

)

select
    load_id,
    schema_name,
    loaded_at
from successful_loads
where load_rank = 1
