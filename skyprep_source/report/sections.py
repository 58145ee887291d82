"""What the report shows: the headline figures and one section per question, read from the marts.

Each section reads one or two marts with an aggregate query and turns the answer into a chart,
a one-line reading and a table of the same numbers. A mart that was not built (its resource
was not loaded), an empty account and a single load each give a section that says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import skyprep_source.report.svg as svg
from skyprep_source.report.marts import MartReader

STATUSES = ("compliant", "in_progress", "overdue", "expired", "not_compliant")
PROGRESS_STATUSES = ("passed", "in-progress", "not-started", "failed")
COURSES_SHOWN = 10  # lowest and highest completion each, when an account has more courses
GROUPS_SHOWN = 20
OVERDUE_GROUPS_SHOWN = 10
TREND_POINTS = 60  # the most recent loads drawn in the trend
MONTHS_SHOWN = 24
EXPIRY_WEEKS = 13  # the next 90 days, week by week
OVERDUE_BUCKETS = (  # (label, lowest whole days overdue); the last is open-ended
    ("0–6 days", 0),
    ("7–29 days", 7),
    ("30–89 days", 30),
    ("90–179 days", 90),
    ("180–364 days", 180),
    ("365+ days", 365),
)


@dataclass
class Table:
    """A chart's numbers as an HTML table (caption = the section title)."""

    headers: list[str]
    rows: list[list[str]]
    group_ids: list[str | None] | None = None


@dataclass
class Section:
    """One question of the report. Without a chart, `note` says why."""

    key: str
    title: str
    reading: str = ""
    chart: str = ""
    legend: str = ""
    table: Table | None = None
    note: str | None = None
    groups: dict[str, str] = field(default_factory=dict)  # id -> name, for the group filter


@dataclass
class Figure:
    """A headline number; `change` compares it with the previous load when history allows."""

    key: str
    label: str
    value: float | None
    text: str
    change: str
    previous: float | None = None


@dataclass
class Context:
    """Facts every section may use: the as-of time and the loads the history holds."""

    as_of: dt.datetime | None
    loads: list[dt.datetime]

    @property
    def previous_load(self) -> dt.datetime | None:
        return self.loads[-2] if len(self.loads) >= 2 else None


def missing(reader: MartReader, title: str, key: str, mart: str, *columns: str) -> Section:
    """The section of a mart that is not there, or lacks a column this report reads."""
    present = reader.columns(mart)
    if present is None:
        note = (
            f"Not available: the mart {mart} was not built (its resource was not loaded, or "
            "the models were skipped)."
        )
    else:
        absent = ", ".join(c for c in columns if c not in present)
        note = (
            f"Not available: the mart {mart} has no column {absent}; the models and this "
            "report come from different versions of skyprep-source: rebuild the models."
        )
    return Section(key, title, note=note)


def _ts(value: dt.datetime) -> str:
    """A timestamp literal for a report query (a value read from the marts, not user input)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return f"cast('{value.astimezone(dt.timezone.utc).isoformat()}' as timestamptz)"


def _f(value: Any) -> float:
    return float(value) if value is not None else 0.0


# ---- context and headline figures ------------------------------------------------------


def context(reader: MartReader) -> Context:
    """The loads the models know (stg_dlt_loads) and the as-of time (the last of them)."""
    if not reader.has("stg_dlt_loads", "loaded_at"):
        return Context(None, [])
    rows = reader.rows("select loaded_at from stg_dlt_loads order by loaded_at")
    loads = [row["loaded_at"] for row in rows if row["loaded_at"] is not None]
    return Context(loads[-1] if loads else None, loads)


def _history_at(reader: MartReader, at: dt.datetime) -> dict[str, float]:
    """Learners, assignments, passes and compliant learners as the status history recorded
    them at `at` (a compliant learner: every assignment passed)."""
    row = reader.one(
        f"""
        with recorded as (
            select user_id, status from fct_course_progress_status_history
            where status <> 'not-applicable' and valid_from <= {_ts(at)}
              and (valid_to is null or valid_to > {_ts(at)})
        ),
        per_user as (
            select user_id, count(*) as assigned,
                   sum(case when status = 'passed' then 1 else 0 end) as passed
            from recorded group by user_id
        )
        select count(*) as learners, coalesce(sum(assigned), 0) as assignments,
               coalesce(sum(passed), 0) as passed,
               sum(case when passed = assigned then 1 else 0 end) as compliant
        from per_user
        """
    )
    return {key: _f(value) for key, value in row.items()}


def _trend_rows(reader: MartReader) -> list[dict[str, Any]]:
    """The account-wide rows of agg_compliance_trend, oldest first (empty when absent)."""
    if not reader.has("agg_compliance_trend", "as_of_at", "user_group_id"):
        return []
    rows = reader.rows(
        f"""select * from agg_compliance_trend where user_group_id is null
            order by as_of_at desc limit {TREND_POINTS}"""
    )
    return rows[::-1]


def _change(current: float | None, previous: float | None, is_rate: bool) -> str:
    if current is None or previous is None:
        return ""
    delta = current - previous
    if abs(delta) < 1e-9:
        return "no change since the previous load"
    sign = "+" if delta > 0 else "−"
    points = abs(delta) * 100
    amount = (
        (f"{points:.1f}" if points >= 0.05 else f"{points:.2f}") + " pts"
        if is_rate
        else svg.integer(abs(delta))
    )
    return f"{sign}{amount} since the previous load"


# the learner and assignment figures count required training (agg_user_compliance), as the
# compliance marts do; `completion_rate` is passed / required assignments (the marts'
# training_progress), not agg_course_completion's rate over every enrolment
FIGURE_LABELS = {
    "learners": "Learners with required training",
    "assignments": "Required assignments",
    "completion_rate": "Required assignments passed",
    "share_compliant": "Learners compliant",
    "overdue": "Overdue required assignments",
    "expiring": "Certifications expiring in 30 days",
}
RATES = ("completion_rate", "share_compliant")


def headline(reader: MartReader, ctx: Context) -> list[Figure]:
    """Learners, assignments, completion rate, share compliant, overdue assignments and
    certifications expiring in 30 days, each with its change since the previous load when
    the history can tell it on the same definition."""
    current = _current_figures(reader)
    previous = _previous_figures(reader, ctx, current)
    figures = []
    for key, label in FIGURE_LABELS.items():
        value, is_rate = current[key], key in RATES
        text = "–" if value is None else svg.percent(value) if is_rate else svg.integer(value)
        if value is None:
            change = "not available (mart not built)"
        elif len(ctx.loads) < 2:
            change = "one load so far: no change to show yet"
        else:
            change = _change(value, previous[key], is_rate) or "no history to compare"
        figures.append(Figure(key, label, value, text, change, previous[key]))
    return figures


def _current_figures(reader: MartReader) -> dict[str, float | None]:
    """The headline figures as the marts give them now (None: the mart is not built)."""
    current: dict[str, float | None] = dict.fromkeys(FIGURE_LABELS)
    if reader.has("agg_user_compliance", "assigned", "passed", "overdue", "is_compliant"):
        row = reader.one(
            """select count(*) as learners, coalesce(sum(assigned), 0) as assignments,
                      coalesce(sum(passed), 0) as passed, coalesce(sum(overdue), 0) as overdue,
                      sum(case when is_compliant then 1 else 0 end) as compliant
               from agg_user_compliance"""
        )
        learners, assignments = _f(row.get("learners")), _f(row.get("assignments"))
        current["learners"], current["assignments"] = learners, assignments
        current["completion_rate"] = _f(row["passed"]) / assignments if assignments else None
        current["share_compliant"] = _f(row["compliant"]) / learners if learners else None
        current["overdue"] = _f(row["overdue"])
    if reader.has("agg_certification_expiry", "expires_within_30d"):
        current["expiring"] = _f(
            reader.one(
                "select count(*) as n from agg_certification_expiry where expires_within_30d"
            ).get("n")
        )
    return current


def _previous_figures(
    reader: MartReader, ctx: Context, current: dict[str, float | None]
) -> dict[str, float | None]:
    """The headline figures at the previous load, where the history can give them on the
    marts' own definition: a figure is taken only if the same evaluation at the last load
    gives exactly today's value. From the status history, then from agg_compliance_trend."""
    previous: dict[str, float | None] = dict.fromkeys(current)
    if ctx.previous_load is None:
        return previous
    at_load = _at_load_figures(reader, ctx)
    if at_load:
        # the compliance of every learner as recorded at each load, on the marts' definition
        for key, value in at_load[-1].items():
            if _same(value, current[key]):
                previous[key] = at_load[-2][key]
        return previous
    # models without fct_user_compliance_at_load: what the older marts allow
    if reader.has("fct_course_progress_status_history", "valid_from", "valid_to"):
        at_last = _history_figures(_history_at(reader, ctx.loads[-1]))
        at_previous = _history_figures(_history_at(reader, ctx.previous_load))
        for key, value in at_last.items():
            if _same(value, current[key]):
                previous[key] = at_previous[key]
    trend = _trend_rows(reader)
    if len(trend) >= 2:
        last, before = trend[-1], trend[-2]
        for key, column in (
            ("learners", "learners_with_assignments"),
            ("share_compliant", "share_compliant"),
            ("overdue", "overdue_assignments"),
        ):
            if column in last and _same(_num(last[column]), current[key]):
                previous[key] = _num(before[column])
    return previous


AT_LOAD_COLUMNS = ("as_of_at", "assigned", "passed", "overdue", "is_compliant")


def _at_load_figures(reader: MartReader, ctx: Context) -> list[dict[str, float | None]]:
    """The headline figures at the previous load and at the last one, from
    fct_user_compliance_at_load (empty when the mart is absent). A load where no learner had
    required training has no row there: its figures are zeros. Certifications expiring have
    no history."""
    if ctx.previous_load is None or not reader.has("fct_user_compliance_at_load", *AT_LOAD_COLUMNS):
        return []
    rows = reader.rows(
        f"""select as_of_at, count(*) as learners, sum(assigned) as assignments,
                   sum(passed) as passed, sum(overdue) as overdue,
                   sum(case when is_compliant then 1 else 0 end) as compliant
            from fct_user_compliance_at_load where as_of_at >= {_ts(ctx.previous_load)}
            group by as_of_at order by as_of_at"""
    )
    by_time = {row["as_of_at"]: row for row in rows}
    figures = []
    for at in (ctx.previous_load, ctx.loads[-1]):
        row = by_time.get(at, {})
        learners, assignments = _f(row.get("learners")), _f(row.get("assignments"))
        figures.append(
            {
                "learners": learners,
                "assignments": assignments,
                "completion_rate": _f(row.get("passed")) / assignments if assignments else None,
                "share_compliant": _f(row.get("compliant")) / learners if learners else None,
                "overdue": _f(row.get("overdue")),
            }
        )
    return figures


def _history_figures(recorded: dict[str, float]) -> dict[str, float | None]:
    """Headline figures from `_history_at`'s counts."""
    learners, assignments = recorded["learners"], recorded["assignments"]
    return {
        "learners": learners,
        "assignments": assignments,
        "completion_rate": recorded["passed"] / assignments if assignments else None,
        "share_compliant": recorded["compliant"] / learners if learners else None,
    }


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _same(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < 1e-9


# ---- sections ---------------------------------------------------------------------------


def courses(reader: MartReader, ctx: Context) -> Section:
    title = "Completion by course"
    if not reader.has("agg_course_completion", "completion_rate", "pass_rate"):
        return missing(
            reader, title, "courses", "agg_course_completion", "completion_rate", "pass_rate"
        )
    total = _f(
        reader.one("select count(*) as n from agg_course_completion where enrolled > 0")["n"]
    )
    if not total:
        return Section("courses", title, note="No course has enrolments yet.")
    columns = (
        "course_id, course_name, enrolled, passed, failed, overdue, completion_rate, pass_rate"
    )
    lowest = reader.rows(
        f"""select {columns} from agg_course_completion where enrolled > 0
            order by completion_rate, enrolled desc, course_id limit {COURSES_SHOWN}"""
    )
    highest = reader.rows(
        f"""select {columns} from agg_course_completion where enrolled > 0
            order by completion_rate desc, enrolled desc, course_id limit {COURSES_SHOWN}"""
    )
    seen = {row["course_id"] for row in lowest}
    shown = lowest + [row for row in highest[::-1] if row["course_id"] not in seen]
    shown.sort(key=lambda row: (_f(row["completion_rate"]), -_f(row["enrolled"])))
    worst, best = shown[0], shown[-1]
    reading = (
        f"Lowest completion: {worst['course_name']} ({svg.percent(_num(worst['completion_rate']))}"
        f" of {svg.integer(_f(worst['enrolled']))} enrolled); highest: {best['course_name']} "
        f"({svg.percent(_num(best['completion_rate']))})."
    )
    if total > len(shown):
        reading += (
            f" {len(shown)} of {svg.integer(total)} courses shown: the {COURSES_SHOWN} lowest "
            f"and {COURSES_SHOWN} highest completion rates."
        )
    series = [svg.Series("completion rate", svg.PALETTE[0])]
    bars = [
        (
            str(row["course_name"]),
            [_f(row["completion_rate"])],
            f"{svg.percent(_num(row['completion_rate']))} · pass rate "
            f"{svg.percent(_num(row['pass_rate']))}",
        )
        for row in shown
    ]
    table = Table(
        ["Course", "Enrolled", "Passed", "Failed", "Overdue", "Completion rate", "Pass rate"],
        [
            [
                str(row["course_name"]),
                svg.integer(_f(row["enrolled"])),
                svg.integer(_f(row["passed"])),
                svg.integer(_f(row["failed"])),
                svg.integer(_f(row["overdue"])),
                svg.percent(_num(row["completion_rate"])),
                svg.percent(_num(row["pass_rate"])),
            ]
            for row in shown
        ],
    )
    chart = svg.bar_rows(bars, series, scale_max=1.0, fmt=svg.percent)
    return Section("courses", title, reading, chart, "", table)


def _status_columns(columns: Sequence[str]) -> list[str]:
    """The statuses a compliance mart counts, as `<status>_members` columns, in model order."""
    return [status for status in STATUSES if f"{status}_members" in columns]


def groups(reader: MartReader, ctx: Context) -> Section:
    title = "Compliance by user group"
    columns = reader.columns("agg_group_compliance")
    if columns is None:
        return missing(reader, title, "groups", "agg_group_compliance")
    statuses = _status_columns(columns)
    total = _f(
        reader.one(
            "select count(*) as n from agg_group_compliance where members_with_assignments > 0"
        )["n"]
    )
    if not total or not statuses:
        return Section("groups", title, note="No user group has members with assigned training.")
    counts = ", ".join(f"{s}_members" for s in statuses)
    rows = reader.rows(
        f"""select user_group_id, user_group_name, members_with_assignments, {counts},
                   share_compliant
            from agg_group_compliance where members_with_assignments > 0
            order by members_with_assignments desc, user_group_id limit {GROUPS_SHOWN}"""
    )
    rows.sort(key=lambda row: (_f(row["share_compliant"]), str(row["user_group_name"])))
    worst, best = rows[0], rows[-1]
    reading = (
        f"Least compliant: {worst['user_group_name']} ({svg.percent(_num(worst['share_compliant']))}"
        f" of {svg.integer(_f(worst['members_with_assignments']))} learners); most: "
        f"{best['user_group_name']} ({svg.percent(_num(best['share_compliant']))})."
    )
    if total > len(rows):
        reading += f" The {len(rows)} largest of {svg.integer(total)} groups shown."
    reading += " A learner counts in every group they belong to."
    series = svg.series_of(statuses)
    ids = [str(row["user_group_id"]) for row in rows]
    bars = [
        (
            str(row["user_group_name"]),
            [_f(row[f"{s}_members"]) for s in statuses],
            f"{svg.percent(_num(row['share_compliant']))} compliant",
        )
        for row in rows
    ]
    table = Table(
        ["Group", "Learners", *[s.replace("_", " ") for s in statuses], "Share compliant"],
        [
            [
                str(row["user_group_name"]),
                svg.integer(_f(row["members_with_assignments"])),
                *[svg.integer(_f(row[f"{s}_members"])) for s in statuses],
                svg.percent(_num(row["share_compliant"])),
            ]
            for row in rows
        ],
        group_ids=list(ids),
    )
    chart = svg.bar_rows(bars, series, group_ids=ids)
    names = {i: str(row["user_group_name"]) for i, row in zip(ids, rows, strict=True)}
    return Section("groups", title, reading, chart, svg.legend(series), table, groups=names)


ORG_VALUES_SHOWN = 10  # per dimension: the values with the most learners
NO_ORG_DIMENSION = (
    "Not available: no custom attribute is mapped to an org dimension. Map them in the "
    '[models] section of the config, e.g. org_dimensions = {department = "ca_0", location = '
    '"ca_1"} (docs/models.md), and rebuild the models.'
)


def org(reader: MartReader, ctx: Context) -> Section:
    """Compliance by the account's mapped custom attributes (department, location, ...):
    agg_org_compliance, one row per configured dimension and value, none when none is mapped."""
    title = "Compliance by department, location or other mapped attribute"
    needed = ("dimension", "dimension_value", "members_with_assignments", "share_compliant")
    if not reader.has("agg_org_compliance", *needed):
        if reader.columns("agg_org_compliance") is None:
            return Section("org", title, note=NO_ORG_DIMENSION)
        return missing(reader, title, "org", "agg_org_compliance", *needed)
    statuses = _status_columns(reader.columns("agg_org_compliance") or [])
    if not _f(reader.one("select count(*) as n from agg_org_compliance").get("n")):
        return Section("org", title, note=NO_ORG_DIMENSION)
    counts = ", ".join(f"{s}_members" for s in statuses)
    rows = reader.rows(
        f"""with ranked as (
                select dimension, dimension_value, members_with_assignments, {counts},
                       share_compliant,
                       row_number() over (
                           partition by dimension
                           order by members_with_assignments desc, dimension_value
                       ) as rank_in_dimension
                from agg_org_compliance where members_with_assignments > 0
            )
            select * from ranked where rank_in_dimension <= {ORG_VALUES_SHOWN}
            order by dimension, share_compliant, dimension_value"""
    )
    if not rows:
        return Section("org", title, note="No learner of a mapped attribute has required training.")
    dimensions = sorted({str(row["dimension"]) for row in rows})
    lowest = []
    for dimension in dimensions:
        worst = next(row for row in rows if str(row["dimension"]) == dimension)
        lowest.append(
            f"{dimension} {worst['dimension_value']} "
            f"({svg.percent(_num(worst['share_compliant']))} of "
            f"{svg.integer(_f(worst['members_with_assignments']))})"
        )
    reading = f"Least compliant: {'; '.join(lowest)}."
    shown_per = {d: sum(1 for r in rows if str(r["dimension"]) == d) for d in dimensions}
    if any(n == ORG_VALUES_SHOWN for n in shown_per.values()):
        reading += f" Up to {ORG_VALUES_SHOWN} values with the most learners per attribute."
    series = svg.series_of(statuses)
    bars = [
        (
            f"{row['dimension']}: {row['dimension_value']}",
            [_f(row[f"{s}_members"]) for s in statuses],
            f"{svg.percent(_num(row['share_compliant']))} compliant",
        )
        for row in rows
    ]
    table = Table(
        ["Attribute", "Value", "Learners", *[s.replace("_", " ") for s in statuses],
         "Share compliant"],
        [
            [
                str(row["dimension"]),
                str(row["dimension_value"]),
                svg.integer(_f(row["members_with_assignments"])),
                *[svg.integer(_f(row[f"{s}_members"])) for s in statuses],
                svg.percent(_num(row["share_compliant"])),
            ]
            for row in rows
        ],
    )  # fmt: skip
    return Section("org", title, reading, svg.bar_rows(bars, series), svg.legend(series), table)


def overdue_groups(reader: MartReader, ctx: Context) -> Section:
    title = "Overdue learners by user group"
    if not reader.has("agg_group_compliance", "overdue_members"):
        return missing(reader, title, "overdue-groups", "agg_group_compliance", "overdue_members")
    rows = reader.rows(
        f"""select user_group_id, user_group_name, overdue_members, members_with_assignments
            from agg_group_compliance where overdue_members > 0
            order by overdue_members desc, user_group_id limit {OVERDUE_GROUPS_SHOWN}"""
    )
    if not rows:
        return Section("overdue-groups", title, note="No group has an overdue learner.")
    top = rows[0]
    reading = (
        f"Most overdue learners: {top['user_group_name']} ({svg.integer(_f(top['overdue_members']))} "
        f"of {svg.integer(_f(top['members_with_assignments']))})."
    )
    ids = [str(row["user_group_id"]) for row in rows]
    series = svg.series_of(["overdue"])
    bars = [
        (
            str(row["user_group_name"]),
            [_f(row["overdue_members"])],
            f"{svg.integer(_f(row['overdue_members']))} of "
            f"{svg.integer(_f(row['members_with_assignments']))}",
        )
        for row in rows
    ]
    table = Table(
        ["Group", "Overdue learners", "Learners with assignments"],
        [
            [
                str(row["user_group_name"]),
                svg.integer(_f(row["overdue_members"])),
                svg.integer(_f(row["members_with_assignments"])),
            ]
            for row in rows
        ],
        group_ids=list(ids),
    )
    names = {i: str(row["user_group_name"]) for i, row in zip(ids, rows, strict=True)}
    return Section(
        "overdue-groups", title, reading, svg.bar_rows(bars, series, group_ids=ids), "", table,
        groups=names,
    )  # fmt: skip


def overdue_days(reader: MartReader, ctx: Context) -> Section:
    title = "Overdue required assignments by days overdue"
    if not reader.has("fct_course_progress", "is_overdue", "days_overdue"):
        return missing(
            reader, title, "overdue-days", "fct_course_progress", "is_overdue", "days_overdue"
        )
    cases = " ".join(
        f"when days_overdue >= {low} then {index}"
        for index, (_, low) in reversed(list(enumerate(OVERDUE_BUCKETS)))
    )
    # required training only, like the headline's overdue figure (agg_user_compliance)
    required = reader.has("fct_course_progress", "is_required")
    rows = reader.rows(
        f"""with bucketed as (
                select case {cases} else 0 end as bucket from fct_course_progress
                where is_overdue{" and is_required" if required else ""}
            )
            select bucket, count(*) as assignments from bucketed group by bucket"""
    )
    counts = {int(row["bucket"]): _f(row["assignments"]) for row in rows}
    total = sum(counts.values())
    kind = "required assignments" if required else "assignments"
    if not total:
        return Section("overdue-days", title, note=f"No {kind[:-1]} is overdue.")
    labels = [label for label, _ in OVERDUE_BUCKETS]
    values = [[counts.get(i, 0.0)] for i in range(len(labels))]
    oldest = sum(counts.get(i, 0.0) for i in range(3, len(labels)))
    reading = (
        f"{svg.integer(total)} overdue {kind}; {svg.integer(oldest)} "
        f"({svg.percent(oldest / total)}) are 90 days or more past their deadline."
    )
    series = svg.series_of(["overdue"])
    chart = svg.columns(labels, values, series, title=title)
    table = Table(
        ["Days overdue", kind.capitalize()],
        [[label, svg.integer(v[0])] for label, v in zip(labels, values, strict=True)],
    )
    return Section("overdue-days", title, reading, chart, "", table)


def expiry(reader: MartReader, ctx: Context) -> Section:
    title = "Certifications expiring, week by week (next 90 days)"
    if not reader.has("agg_certification_expiry", "days_until_expiry", "expires_within_90d"):
        return missing(
            reader,
            title,
            "expiry",
            "agg_certification_expiry",
            "days_until_expiry",
            "expires_within_90d",
        )
    rows = reader.rows(
        """select days_until_expiry, count(*) as certifications from agg_certification_expiry
           where expires_within_90d group by days_until_expiry"""
    )
    weeks = [0.0] * EXPIRY_WEEKS
    for row in rows:
        days = int(row["days_until_expiry"] or 0)
        weeks[min(days // 7, EXPIRY_WEEKS - 1)] += _f(row["certifications"])
    total = sum(weeks)
    if not total:
        return Section("expiry", title, note="No certification expires in the next 90 days.")
    start = (ctx.as_of or dt.datetime.now(dt.timezone.utc)).date()
    labels = [
        (start + dt.timedelta(days=7 * week)).strftime("%b %d") for week in range(EXPIRY_WEEKS)
    ]
    busiest = max(range(EXPIRY_WEEKS), key=lambda week: weeks[week])
    reading = (
        f"{svg.integer(total)} certifications expire in the next 90 days; the busiest week "
        f"starts {labels[busiest]} ({svg.integer(weeks[busiest])})."
    )
    series = [svg.Series("expiring", svg.STATUS_COLOURS["expired"])]
    chart = svg.columns(labels, [[w] for w in weeks], series, title=title)
    table = Table(
        ["Week starting", "Certifications expiring"],
        [[label, svg.integer(w)] for label, w in zip(labels, weeks, strict=True)],
    )
    return Section("expiry", title, reading, chart, "", table)


def monthly(reader: MartReader, ctx: Context) -> Section:
    title = "Enrolments, starts, passes and fails by month"
    if not reader.has("agg_completions_monthly", "month_start", "enrollments"):
        return missing(
            reader, title, "monthly", "agg_completions_monthly", "month_start", "enrollments"
        )
    rows = reader.rows(
        f"""select month_start, enrollments, starts, passes, fails from agg_completions_monthly
            order by month_start desc limit {MONTHS_SHOWN}"""
    )[::-1]
    if not rows:
        return Section("monthly", title, note="No enrolment yet.")
    names = ["enrolments", "starts", "passes", "fails"]
    columns = ["enrollments", "starts", "passes", "fails"]
    labels = [_month(row["month_start"]) for row in rows]
    values = [[_f(row[c]) for c in columns] for row in rows]
    last = rows[-1]
    reading = (
        f"{labels[-1]}: {svg.integer(_f(last['enrollments']))} enrolments, "
        f"{svg.integer(_f(last['passes']))} passes, {svg.integer(_f(last['fails']))} fails."
    )
    if len(rows) == MONTHS_SHOWN:
        reading += f" The last {MONTHS_SHOWN} months with activity shown."
    series = svg.series_of(names)
    chart = svg.lines(labels, values, series, title=title)
    table = Table(
        ["Month", *names],
        [
            [label, *[svg.integer(v) for v in row]]
            for label, row in zip(labels, values, strict=True)
        ],
    )
    return Section("monthly", title, reading, chart, svg.legend(series), table)


def trend(reader: MartReader, ctx: Context) -> Section:
    """Compliance over time: agg_compliance_trend when the models have it, else the share of
    assignments in each status as the status history recorded them at each load."""
    title = "Compliance over time"
    rows = _trend_rows(reader)
    if rows:
        statuses = [s for s in STATUSES if s in rows[-1]]
        if len(rows) < 2:
            return Section(
                "trend", title, note="One load so far: the trend starts with the next load."
            )
        labels = _load_labels([row["as_of_at"] for row in rows])
        values = [[_f(row[s]) for s in statuses] for row in rows]
        first, last = rows[0], rows[-1]
        reading = (
            f"Learners compliant: {svg.percent(_num(first.get('share_compliant')))} at the first "
            f"load shown, {svg.percent(_num(last.get('share_compliant')))} at the last."
        )
        series = svg.series_of(statuses)
        chart = svg.columns(labels, values, series, title=title)
        table = Table(
            ["Load", *[s.replace("_", " ") for s in statuses], "Share compliant"],
            [
                [
                    label,
                    *[svg.integer(v) for v in vals],
                    svg.percent(_num(row.get("share_compliant"))),
                ]
                for label, vals, row in zip(labels, values, rows, strict=True)
            ],
        )
        return Section("trend", title, reading, chart, svg.legend(series), table)

    if not reader.has("fct_course_progress_status_history", "valid_from", "valid_to"):
        return missing(
            reader, title, "trend", "fct_course_progress_status_history", "valid_from", "valid_to"
        )
    if len(ctx.loads) < 2:
        return Section("trend", title, note="One load so far: the trend starts with the next load.")
    loads = ctx.loads[-TREND_POINTS:]
    counts = []
    for at in loads:
        row = reader.one(
            f"""select {
                ", ".join(
                    f"sum(case when status = '{s}' then 1 else 0 end) as s{i}"
                    for i, s in enumerate(PROGRESS_STATUSES)
                )
            }
            from fct_course_progress_status_history
            where valid_from <= {_ts(at)} and (valid_to is null or valid_to > {_ts(at)})"""
        )
        counts.append([_f(row.get(f"s{i}")) for i in range(len(PROGRESS_STATUSES))])
    labels = _load_labels(loads)

    def passed_share(values: Sequence[float]) -> float | None:
        return values[0] / sum(values) if sum(values) else None

    reading = (
        f"Assignments passed: {svg.percent(passed_share(counts[0]))} at the first load shown, "
        f"{svg.percent(passed_share(counts[-1]))} at the last (from the status history; the "
        "compliance trend mart is not built)."
    )
    names = ["passed", "in progress", "not started", "failed"]
    series = [
        svg.Series(n, c)
        for n, c in zip(names, ("#009E73", "#56B4E9", "#999999", "#D55E00"), strict=True)
    ]
    chart = svg.columns(labels, counts, series, title=title)
    table = Table(
        ["Load", *names, "Share passed"],
        [
            [label, *[svg.integer(v) for v in vals], svg.percent(passed_share(vals))]
            for label, vals in zip(labels, counts, strict=True)
        ],
    )
    return Section("trend", title, reading, chart, svg.legend(series), table)


def revenue(reader: MartReader, ctx: Context) -> Section:
    title = "Revenue by month"
    if not reader.has("agg_revenue_monthly", "month_start", "amount", "currency"):
        return Section(
            "revenue", title, note="Not available: payments were not loaded (agg_revenue_monthly)."
        )
    rows = reader.rows(
        """select month_start, currency,
                  sum(case when status = 'complete' then amount else 0 end) as complete,
                  sum(case when status = 'refunded' then amount else 0 end) as refunded,
                  sum(payments) as payments
           from agg_revenue_monthly group by month_start, currency
           order by month_start, currency"""
    )
    if not rows:
        return Section("revenue", title, note="No payments in this account.")
    by_currency: dict[str, float] = {}
    for row in rows:
        by_currency[str(row["currency"])] = by_currency.get(str(row["currency"]), 0) + _f(
            row["complete"]
        )
    currency = max(by_currency, key=lambda c: by_currency[c])
    shown = [row for row in rows if str(row["currency"]) == currency][-MONTHS_SHOWN:]
    labels = [_month(row["month_start"]) for row in shown]
    values = [[_f(row["complete"])] for row in shown]

    def money(value: float) -> str:
        return f"{value:,.0f}"

    reading = (
        f"Completed payments in {currency}: {money(sum(v[0] for v in values))} over the "
        f"{len(shown)} months shown; {labels[-1]}: {money(values[-1][0])}."
    )
    others = sorted(set(by_currency) - {currency})
    if others:
        reading += f" Other currencies ({', '.join(others)}) are in the table only."
    series = [svg.Series(f"complete ({currency})", svg.PALETTE[0])]
    chart = svg.columns(labels, values, series, title=title, fmt=money)
    table = Table(
        ["Month", "Currency", "Complete", "Refunded", "Payments"],
        [
            [
                _month(row["month_start"]),
                str(row["currency"]),
                f"{_f(row['complete']):,.2f}",
                f"{_f(row['refunded']):,.2f}",
                svg.integer(_f(row["payments"])),
            ]
            for row in rows[-3 * MONTHS_SHOWN :]
        ],
    )
    return Section("revenue", title, reading, chart, "", table)


def _month(value: Any) -> str:
    return value.strftime("%Y-%m") if hasattr(value, "strftime") else str(value)[:7]


def _load_labels(times: Sequence[dt.datetime]) -> list[str]:
    """Load times as short labels: the date, or date and time when loads share a day."""
    days = [t.strftime("%Y-%m-%d") for t in times]
    if len(set(days)) == len(days):
        return days
    return [t.astimezone(dt.timezone.utc).strftime("%m-%d %H:%M:%S") for t in times]


SectionBuilder = Callable[[MartReader, Context], Section]
SECTIONS: tuple[SectionBuilder, ...] = (
    courses,
    groups,
    org,
    overdue_groups,
    overdue_days,
    expiry,
    monthly,
    trend,
    revenue,
)
