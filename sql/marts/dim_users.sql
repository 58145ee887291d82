-- grain: one row per current user
-- The only model that holds personal data (names, e-mail, phone, address): facts carry user_id.
with users as (

    select * from stg_users

)

select
    user_id,
    username,
    email,
    first_name,
    last_name,
    trim(concat(coalesce(first_name, ''), ' ', coalesce(last_name, ''))) as full_name,
    card_no,
    role,
    status,
    status = 'active' as is_active,
    title,
    cell,
    work_phone,
    address,
    ca_0,
    ca_1,
    ca_2,
    ca_3,
    ca_4,
    created_at,
    updated_at,
    last_login_at,
    access_starts_at,
    access_ends_at
from users
