-- agg_user_compliance: a failed assigned course makes a learner not compliant whatever else
-- holds; then an expired one makes them expired; compliant means every assigned course passed;
-- overdue needs an overdue course; the counts stay within what is assigned. Any row returned
-- breaks a rule.
select *
from {{ ref('agg_user_compliance') }}
where (failed > 0 and compliance_status <> 'not_compliant')
    or (compliance_status = 'compliant' and (passed <> assigned or failed > 0 or overdue > 0))
    or (failed = 0 and expired > 0 and compliance_status <> 'expired')
    or (compliance_status = 'expired' and expired = 0)
    or (compliance_status = 'overdue' and overdue = 0)
    or (compliance_status = 'in_progress' and passed = assigned)
    or (is_compliant <> (compliance_status = 'compliant'))
    or passed + failed + open_assignments > assigned
    or assigned = 0
