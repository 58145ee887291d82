-- agg_course_completion: every enrolled progress is in exactly one of the four statuses, and
-- the rates are what docs/models.md defines. agg_group_compliance: the share and the progress
-- are the two different measures docs/models.md defines. Any row returned breaks a rule.
select 'agg_course_completion' as mart, course_id as id
from {{ ref('agg_course_completion') }}
where enrolled <> not_started + in_progress + passed + failed
    or abs(coalesce(completion_rate, -1) - coalesce(cast(passed as double precision) / nullif(enrolled, 0), -1)) > 1e-9
    or abs(coalesce(pass_rate, -1) - coalesce(cast(passed as double precision) / nullif(passed + failed, 0), -1)) > 1e-9

union all

select 'agg_group_compliance' as mart, user_group_id as id
from {{ ref('agg_group_compliance') }}
where members_with_assignments > members
    or compliant_members + in_progress_members + overdue_members + not_compliant_members > members_with_assignments
    or abs(coalesce(share_compliant, -1) - coalesce(cast(compliant_members as double precision) / nullif(members_with_assignments, 0), -1)) > 1e-9
    or abs(coalesce(training_progress, -1) - coalesce(cast(passed as double precision) / nullif(assigned, 0), -1)) > 1e-9
