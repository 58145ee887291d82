-- Row-level rules of fct_course_progress (docs/models.md, Definitions; pinned case by case in
-- tests/test_models_marts.py): a passed or not-applicable progress is never overdue; days
-- overdue exist exactly when overdue and count whole days from the deadline; "started" is
-- in-progress, passed or failed; days to complete only for a pass; expired and expiring
-- within 30 days exclude each other. Any row returned breaks a rule.
select *
from {{ ref('fct_course_progress') }}
where (is_overdue and status in ('passed', 'not-applicable'))
    or (is_overdue and not (deadline_at < as_of_at))
    or ((days_overdue is null) = is_overdue)
    or days_overdue < 0
    or (is_started <> (status in ('in-progress', 'passed', 'failed')))
    or (days_to_complete is not null and not is_passed)
    or (is_expired and expires_within_30d)
    or (is_expired <> coalesce(expires_at < as_of_at, false))
