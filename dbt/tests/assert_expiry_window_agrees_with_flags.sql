-- agg_certification_expiry: the window is exclusive and the flags cumulative, and only
-- passed progresses with an expiration appear. Any row returned breaks a rule.
select expiry.*
from {{ ref('agg_certification_expiry') }} as expiry
left join {{ ref('fct_course_progress') }} as progress
    on expiry.course_progress_id = progress.course_progress_id
where progress.course_progress_id is null
    or not progress.is_passed
    or expiry.expires_at is null
    or ((expiry.expiry_window = 'expired') <> expiry.is_expired)
    or (expiry.expires_within_30d and not expiry.expires_within_60d)
    or (expiry.expires_within_60d and not expiry.expires_within_90d)
    or (expiry.expiry_window = 'within_30d' and not expiry.expires_within_30d)
    or (expiry.expiry_window = 'within_60d' and (expiry.expires_within_30d or not expiry.expires_within_60d))
    or (expiry.expiry_window = 'within_90d' and (expiry.expires_within_60d or not expiry.expires_within_90d))
    or (expiry.expiry_window = 'later' and (expiry.is_expired or expiry.expires_within_90d))
    or ((expiry.days_until_expiry is null) <> expiry.is_expired)
