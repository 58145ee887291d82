-- grain: one row per combination of the four facts a learner's compliance status depends on (16 rows)
-- The precedence of compliance_status (docs/models.md, Definitions), written once: not_compliant
-- (a required course failed), expired (a passed one's certification expired), overdue (one is
-- past its deadline), compliant (every required course passed), else in_progress.
-- agg_user_compliance (today) and fct_user_compliance_at_load (at each load) join their
-- per-learner counts to it on the four facts.
with facts as (

    select flag
    from (values (true), (false)) as flags (flag)

)

select
    has_failed.flag as has_failed,
    has_expired.flag as has_expired,
    has_overdue.flag as has_overdue,
    has_passed_all.flag as has_passed_all,
    case
        when has_failed.flag then 'not_compliant'
        when has_expired.flag then 'expired'
        when has_overdue.flag then 'overdue'
        when has_passed_all.flag then 'compliant'
        else 'in_progress'
    end as compliance_status
from facts as has_failed
cross join facts as has_expired
cross join facts as has_overdue
cross join facts as has_passed_all
