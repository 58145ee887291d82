"""Compliance as L&D teams define it, pinned on a hand-built world (issue #13).

Required vs optional training, expiry in the status, org dimensions and compliance as recorded
at every load, each worked out on paper below. The raw tables follow the layout the source
loads (see test_models_marts); the world is built on DuckDB and on PostgreSQL alike.

Loads (scd2 boundary, then the load's time as recorded in _dlt_loads):
    L1 2024-04-10 09:00 / 09:30   L2 2024-04-10 19:00 / 19:30 (two loads in one day)
    L3 2024-05-20 09:00 / 09:30   (no load in June)   L4 2024-07-05 09:00 / 09:30 (as-of)

Courses: 10 code of conduct ["compliance","annual"], 20 fire warden ["compliance"],
30 spreadsheet tips ["technical"], 40 first aid ["annual"].
Groups: 1 Warehouse assigns courses 10 and 20; 2 Office assigns none itself, but learning
path 7 (courses 40 and 20) is assigned to it.

Learners (ca_0 = department, ca_1 = location):
- 1 Ana (Logistics, Berlin), Warehouse: 10 passed, expiring 05-01 (between L2 and L3);
  20 passed; 30 failed but self-enrolled (optional).
- 2 Ben (Logistics), Warehouse: 10 failed at L1, passed at L2 (the same day); 20 in progress
  with a 05-01 deadline (overdue at L3), passed at L4.
- 3 Cy (Office, Paris), Warehouse until L3 and Office: 10 not started with a 04-30
  deadline (required while in Warehouse only); 40 passed through the learning path.
- 4 Di (Office), Office: 40 failed; deleted upstream at L3 (user, membership, progress).
- 5 Ed (no department): no group; 30 passed (self-enrolled).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import dlt
import pytest
from test_models_marts import (
    COURSES_COLUMNS,
    GROUPS_COLUMNS,
    LOADS_COLUMNS,
    MEMBERS_COLUMNS,
    OTHER_MART_KEYS,
    PROGRESS_COLUMNS,
    SCD2_COLUMNS,
    USERS_COLUMNS,
    Columns,
    Row,
    analytics_dataset,
    make_pipeline,
    mart,
    progress,
    query,
    ts,
    write_raw_world,
)

from skyprep_source import ModelSettings, build_models

L1, L2, L3, L4 = (
    ts("2024-04-10 09:00"),
    ts("2024-04-10 19:00"),
    ts("2024-05-20 09:00"),
    ts("2024-07-05 09:00"),
)
HALF_HOUR = dt.timedelta(minutes=30)
AT_1, AT_2, AT_3, AT_4 = (b + HALF_HOUR for b in (L1, L2, L3, L4))


def user(
    user_id: int,
    first: str,
    department: str | None,
    location: str | None = None,
    valid_to: dt.datetime | None = None,
) -> Row:
    email = f"{first.lower()}@example.com"
    created = ts("2024-01-02")
    return (
        user_id, first, "Test", email, email, None, "learner", "active", None, None, None, None,
        created, created, None, None, None, department, location, None, None, None,
        L1, valid_to,
    )  # fmt: skip


def course(course_id: int, name: str, tags: str) -> Row:
    created = ts("2023-12-01")
    return (course_id, name, name, True, created, created, f"C{course_id}", None, 365, tags,
            "[]", L1, None)  # fmt: skip


def group(group_id: int, name: str, course_ids: str) -> Row:
    return (group_id, name, None, ts("2024-01-01"), ts("2024-01-01"), 0, course_ids, L1, None)


USERS = [
    user(1, "Ana", "Logistics", "Berlin"),
    user(2, "Ben", "Logistics"),
    user(3, "Cy", "Office", "Paris"),
    user(4, "Di", "Office", valid_to=L3),  # deleted upstream
    user(5, "Ed", None),
]
COURSES = [
    course(10, "Code of conduct", '["compliance", "annual"]'),
    course(20, "Fire warden", '["compliance"]'),
    course(30, "Spreadsheet tips", '["technical"]'),
    course(40, "First aid", '["annual"]'),
]
PROGRESSES = [
    # Ana
    progress(1, 1, 10, "passed", created="2023-12-01", completed="2024-01-01",
             expires="2024-05-01", valid_from=L1),
    progress(2, 1, 20, "passed", created="2023-12-01", completed="2024-02-01", valid_from=L1),
    progress(3, 1, 30, "failed", created="2024-03-01", completed="2024-03-05",
             deadline="2024-03-10", valid_from=L1),
    # Ben: failed, then passed by the second load of the day
    progress(4, 2, 10, "failed", created="2024-03-01", completed="2024-04-01",
             valid_from=L1, valid_to=L2),
    progress(4, 2, 10, "passed", created="2024-03-01", completed="2024-04-10",
             expires="2025-04-10", valid_from=L2),
    progress(5, 2, 20, "in-progress", created="2024-03-01", deadline="2024-05-01",
             valid_from=L1, valid_to=L4),
    progress(5, 2, 20, "passed", created="2024-03-01", completed="2024-06-15",
             deadline="2024-05-01", valid_from=L4),
    # Cy
    progress(6, 3, 10, "not-started", created="2024-04-01", deadline="2024-04-30",
             valid_from=L1),
    progress(7, 3, 40, "passed", created="2024-02-01", completed="2024-03-01", valid_from=L1),
    # Di, deleted upstream at L3 with her progress
    progress(8, 4, 40, "failed", created="2024-02-01", completed="2024-03-01",
             valid_from=L1, valid_to=L3),
    # Ed, self-enrolled
    progress(9, 5, 30, "passed", created="2024-02-01", completed="2024-03-01", valid_from=L1),
]  # fmt: skip
GROUPS = [group(1, "Warehouse", "[10, 20]"), group(2, "Office", "[]")]
MEMBERS: list[Row] = [
    (1, 1, L1, None),
    (1, 2, L1, None),
    (1, 3, L1, L3),  # Cy leaves Warehouse
    (2, 3, L1, None),
    (2, 4, L1, L3),  # Di is deleted
]
PATHS_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "description": "varchar",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "course_ids": "json",
    "user_group_ids": "json",
    **SCD2_COLUMNS,
}
PATHS: list[Row] = [
    (7, "Safety path", None, ts("2024-01-01"), ts("2024-01-01"), "[40, 20]", "[2]", L1, None)
]
PATH_COURSES_COLUMNS: Columns = {
    "learning_path_id": "bigint",
    "course_id": "bigint",
    **SCD2_COLUMNS,
}
PATH_GROUPS_COLUMNS: Columns = {
    "learning_path_id": "bigint",
    "user_group_id": "bigint",
    **SCD2_COLUMNS,
}
TRAININGS_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "description": "varchar",
    "course_id": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    **SCD2_COLUMNS,
}
TIMESLOTS_COLUMNS: Columns = {
    "id": "bigint",
    "instructor_led_training_id": "bigint",
    "description": "varchar",
    "location": "varchar",
    "instructor": "varchar",
    "start_date": "timestamptz",
    "end_date": "timestamptz",
    "display_timezone": "varchar",
    "capacity": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    **SCD2_COLUMNS,
}
REGISTRATIONS_COLUMNS: Columns = {
    "id": "bigint",
    "instructor_led_training_timeslot_id": "bigint",
    "user_id": "bigint",
    "course_progress_id": "bigint",
    "course_id": "bigint",
    "status": "varchar",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    **SCD2_COLUMNS,
}


def timeslot(timeslot_id: int, starts: str, capacity: int) -> Row:
    begins = ts(starts)
    return (timeslot_id, 50, None, "Berlin", "Ivy", begins, begins + dt.timedelta(hours=3),
            "UTC", capacity, ts("2024-01-01"), ts("2024-01-01"), L1, None)  # fmt: skip


def registration(registration_id: int, timeslot_id: int, user_id: int, status: str) -> Row:
    at = ts("2024-05-01")
    return (registration_id, timeslot_id, user_id, None, 40, status, at, at, L1, None)


SKILLS_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "display_name": "varchar",
    "description": "varchar",
    "competency_count": "bigint",
    **SCD2_COLUMNS,
}
COMPETENCIES_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "display_name": "varchar",
    "description": "varchar",
    "skills": "json",
    **SCD2_COLUMNS,
}
AWARDS_COLUMNS: Columns = {
    "competency_id": "bigint",
    "user_id": "bigint",
    "user_display_name": "varchar",
    "created_at": "timestamptz",
    **SCD2_COLUMNS,
}
LEADERBOARDS_COLUMNS: Columns = {
    "skill_id": "bigint",
    "user_id": "bigint",
    "rank": "bigint",
    "user_display_name": "varchar",
    "balance": "bigint",
    **SCD2_COLUMNS,
}

LOADS: list[Row] = [
    (str(n), "skyprep", 0, at, "h") for n, at in enumerate((AT_1, AT_2, AT_3, AT_4), start=1)
]

RAW_TABLES: dict[str, tuple[Columns, list[Row]]] = {
    "users": (USERS_COLUMNS, USERS),
    "courses": (COURSES_COLUMNS, COURSES),
    "course_progresses": (PROGRESS_COLUMNS, PROGRESSES),
    "user_groups": (GROUPS_COLUMNS, GROUPS),
    "user_group_members": (MEMBERS_COLUMNS, MEMBERS),
    "learning_paths": (PATHS_COLUMNS, PATHS),
    "learning_path_courses": (PATH_COURSES_COLUMNS, [(7, 40, L1, None), (7, 20, L1, None)]),
    "learning_path_user_groups": (PATH_GROUPS_COLUMNS, [(7, 2, L1, None)]),
    "instructor_led_trainings": (
        TRAININGS_COLUMNS,
        [(50, "Classroom: first aid", None, 40, ts("2024-01-01"), ts("2024-01-01"), L1, None)],
    ),
    "instructor_led_training_timeslots": (
        TIMESLOTS_COLUMNS,
        [timeslot(60, "2024-06-01 09:00", 10), timeslot(61, "2024-08-01 09:00", 20)],
    ),
    "instructor_led_training_timeslot_registrations": (
        REGISTRATIONS_COLUMNS,
        [
            registration(70, 60, 1, "attended"),
            registration(71, 60, 2, "registered"),  # held without Ben: missed
            registration(72, 61, 1, "registered"),  # ahead
            registration(73, 61, 3, "registered"),
        ],
    ),
    "skills": (SKILLS_COLUMNS, [(80, "safety", "Safety", None, 1, L1, None)]),
    "competencies": (
        COMPETENCIES_COLUMNS,
        [(90, "safe handler", "Safe handler", None, "[]", L1, None)],
    ),
    "competency_awards": (
        AWARDS_COLUMNS,
        [
            (90, 1, "Ana Test", ts("2024-03-01"), L1, None),
            (90, 4, "Di Test", ts("2024-03-02"), L1, L3),  # Di was deleted
        ],
    ),
    "skill_leaderboards": (
        LEADERBOARDS_COLUMNS,
        [(80, 1, 1, "Ana Test", 500, L1, None), (80, 2, 2, "Ben Test", 200, L1, None)],
    ),
    "_dlt_loads": (LOADS_COLUMNS, LOADS),
}

DEPARTMENT = ModelSettings(org_dimensions={"department": "ca_0"})


def build(
    destination: str,
    tmp_path: Path,
    tables: dict[str, tuple[Columns, list[Row]]] = RAW_TABLES,
    settings: ModelSettings = DEPARTMENT,
) -> Iterator[dlt.Pipeline]:
    pipelines = make_pipeline(destination, tmp_path)
    pipeline = next(pipelines)
    write_raw_world(pipeline, tables)
    result = build_models(pipeline, analytics_dataset(pipeline), settings=settings)
    assert set(result.skipped) == {"stg_payments", "fct_payments", "agg_revenue_monthly"}
    assert result.as_of == AT_4
    yield pipeline
    next(pipelines, None)


DESTINATIONS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module", params=DESTINATIONS)
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    yield from build(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(params=DESTINATIONS)
def destination(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rows(pipeline: dlt.Pipeline, name: str, order_by: str, columns: str) -> list[tuple]:
    return [tuple(row.values()) for row in mart(pipeline, name, order_by, columns)]


# ---- required vs optional -------------------------------------------------------------------


def test_groups_and_learning_paths_decide_what_is_required(world: dlt.Pipeline) -> None:
    columns = "course_progress_id, user_id, course_id, is_required, required_rule"
    got = rows(world, "fct_course_progress", "course_progress_id", columns)
    rule = "group_assignments"
    assert got == [
        (1, 1, 10, True, rule),  # Warehouse assigns 10 and 20
        (2, 1, 20, True, rule),
        (3, 1, 30, False, rule),  # self-enrolled: optional
        (4, 2, 10, True, rule),
        (5, 2, 20, True, rule),
        (6, 3, 10, False, rule),  # Cy left Warehouse: its course is no longer required
        (7, 3, 40, True, rule),  # through learning path 7, assigned to Office
        (9, 5, 30, False, rule),  # no group: nothing required
    ]
    via = rows(
        world,
        "fct_course_progress",
        "course_progress_id",
        "course_progress_id, is_assigned_through_group, is_assigned_through_learning_path",
    )
    assert (7, False, True) in via and (1, True, False) in via


def test_status_order_expired_before_overdue_and_optional_failures_do_not_count(
    world: dlt.Pipeline,
) -> None:
    columns = "user_id, assigned, passed, failed, overdue, expired, compliance_status, is_compliant"
    assert rows(world, "agg_user_compliance", "user_id", columns) == [
        # code of conduct expired 05-01 and not passed again; the failed course 30 is optional
        (1, 2, 2, 0, 0, 1, "expired", False),
        (2, 2, 2, 0, 0, 0, "compliant", True),  # failed then passed; the overdue one passed
        (3, 1, 1, 0, 0, 0, "compliant", True),  # course 10 (overdue since 04-30) is optional
        # Ed has no required course: no row
    ]


def test_configured_courses_win_over_group_assignments(destination: str, tmp_path: Path) -> None:
    settings = ModelSettings(required_course_ids=(30,), required_course_tags=("Annual",))
    pipelines = build(destination, tmp_path, settings=settings)
    pipeline = next(pipelines)
    required = rows(
        pipeline, "fct_course_progress", "course_progress_id",
        "course_progress_id, is_required, required_rule",
    )  # fmt: skip
    # tag "annual" (any case): courses 10 and 40; id 30; never 20
    assert [(pid, flag) for pid, flag, _ in required] == [
        (1, True), (2, False), (3, True), (4, True), (5, False), (6, True), (7, True),
        (9, True),
    ]  # fmt: skip
    assert {rule for *_, rule in required} == {"configured_courses"}
    statuses = rows(pipeline, "agg_user_compliance", "user_id", "user_id, compliance_status")
    assert statuses == [
        (1, "not_compliant"),  # course 30 is required now, and failed: wins over expired
        (2, "compliant"),
        (3, "overdue"),  # course 10 (deadline 04-30) is required for everyone now
        (5, "compliant"),
    ]
    next(pipelines, None)


def test_without_any_assignment_every_enrolment_is_required(
    destination: str, tmp_path: Path
) -> None:
    tables = {
        **RAW_TABLES,
        "user_groups": (GROUPS_COLUMNS, [group(1, "Warehouse", "[]"), group(2, "Office", "[]")]),
    }
    for name in ("learning_paths", "learning_path_courses", "learning_path_user_groups"):
        del tables[name]  # never loaded: read as empty
    pipelines = build(destination, tmp_path, tables)
    pipeline = next(pipelines)
    statuses = rows(
        pipeline, "agg_user_compliance", "user_id", "user_id, required_rule, compliance_status"
    )
    assert statuses == [
        (1, "every_enrolment", "not_compliant"),  # course 30 failed counts again
        (2, "every_enrolment", "compliant"),
        (3, "every_enrolment", "overdue"),
        (5, "every_enrolment", "compliant"),
    ]
    next(pipelines, None)


# ---- org dimensions --------------------------------------------------------------------------


def test_mapped_attribute_becomes_a_named_column_and_unmapped_stays_unnamed(
    world: dlt.Pipeline,
) -> None:
    users = query(world, "select * from {a}.dim_users order by user_id")
    assert [row["department"] for row in users] == ["Logistics", "Logistics", "Office", None]
    assert "location" not in users[0]  # ca_1 is not mapped
    assert users[0]["ca_1"] == "Berlin"


def test_agg_org_compliance_counts_each_value_of_a_mapped_dimension(world: dlt.Pipeline) -> None:
    got = mart(world, "agg_org_compliance", "dimension, dimension_value")
    keys = ["dimension", "dimension_value", "members", "members_with_assignments",
            "compliant_members", "in_progress_members", "overdue_members", "expired_members",
            "not_compliant_members", "share_compliant", "assigned", "passed",
            "training_progress"]  # fmt: skip
    expected = [
        ("department", "(not set)", 1, 0, 0, 0, 0, 0, 0, None, 0, 0, None),  # Ed
        ("department", "Logistics", 2, 2, 1, 0, 0, 1, 0, 0.5, 4, 4, 1.0),  # Ben, Ana
        ("department", "Office", 1, 1, 1, 0, 0, 0, 0, 1.0, 1, 1, 1.0),  # Cy (Di deleted)
    ]
    assert got == [dict(zip(keys, row, strict=True)) for row in expected]


def test_group_compliance_has_the_expired_bucket(world: dlt.Pipeline) -> None:
    got = rows(
        world, "agg_group_compliance", "user_group_id",
        "user_group_id, members, compliant_members, expired_members, overdue_members",
    )  # fmt: skip
    assert got == [(1, 2, 1, 1, 0), (2, 1, 1, 0, 0)]


# ---- compliance as recorded over time -------------------------------------------------------

TREND_COLUMNS = (
    "as_of_at, user_group_id, learners_with_assignments, compliant, in_progress, overdue,"
    " expired, not_compliant, share_compliant, overdue_assignments"
)


EXPECTED_TREND = [
    # L1: Ana compliant, Ben failed, Cy in progress (10 due 04-30), Di failed
    (AT_1, None, 4, 1, 1, 0, 0, 2, 0.25, 0),
    (AT_1, 1, 3, 1, 1, 0, 0, 1, round(1 / 3, 9), 0),  # Ana, Ben, Cy
    (AT_1, 2, 2, 0, 1, 0, 0, 1, 0.0, 0),  # Cy, Di
    # L2, the same day: Ben passed course 10 and is in progress with course 20
    (AT_2, None, 4, 1, 2, 0, 0, 1, 0.25, 0),
    (AT_2, 1, 3, 1, 2, 0, 0, 0, round(1 / 3, 9), 0),
    (AT_2, 2, 2, 0, 1, 0, 0, 1, 0.0, 0),
    # L3: Ana's pass expired 05-01; Ben's course 20 overdue since 05-01; Cy left
    # Warehouse (only the path's course 40 is required: passed); Di deleted
    (AT_3, None, 3, 1, 0, 1, 1, 0, round(1 / 3, 9), 1),
    (AT_3, 1, 2, 0, 0, 1, 1, 0, 0.0, 1),
    (AT_3, 2, 1, 1, 0, 0, 0, 0, 1.0, 0),
    # L4: Ben passed course 20
    (AT_4, None, 3, 2, 0, 0, 1, 0, round(2 / 3, 9), 0),
    (AT_4, 1, 2, 1, 0, 0, 1, 0, 0.5, 0),
    (AT_4, 2, 1, 1, 0, 0, 0, 0, 1.0, 0),
]


def test_trend_evaluates_every_load_at_its_own_time(world: dlt.Pipeline) -> None:
    got = rows(
        world,
        "agg_compliance_trend",
        "as_of_at, coalesce(user_group_id, 0)",
        TREND_COLUMNS,
    )
    assert got == EXPECTED_TREND


def test_the_trend_at_the_last_load_matches_the_current_marts(world: dlt.Pipeline) -> None:
    (last,) = query(
        world, "select * from {a}.agg_compliance_trend where user_group_id is null"
        " and as_of_at = (select max(as_of_at) from {a}.agg_compliance_trend)",
    )  # fmt: skip
    current = query(
        world,
        "select compliance_status, count(*) as n from {a}.agg_user_compliance group by 1",
    )
    counts = {row["compliance_status"]: row["n"] for row in current}
    assert last["learners_with_assignments"] == sum(counts.values())
    for status in ("compliant", "in_progress", "overdue", "expired", "not_compliant"):
        assert last[status] == counts.get(status, 0), status


MONTHLY_COLUMNS = "month_start, month_end, user_id, as_of_at, compliance_status"
EXPECTED_MONTHLY = [
    # April: the last load of the month is L2 (the second of 04-10)
    (dt.date(2024, 4, 1), dt.date(2024, 4, 30), 1, AT_2, "compliant"),
    (dt.date(2024, 4, 1), dt.date(2024, 4, 30), 2, AT_2, "in_progress"),
    (dt.date(2024, 4, 1), dt.date(2024, 4, 30), 3, AT_2, "in_progress"),
    (dt.date(2024, 4, 1), dt.date(2024, 4, 30), 4, AT_2, "not_compliant"),
    (dt.date(2024, 5, 1), dt.date(2024, 5, 31), 1, AT_3, "expired"),
    (dt.date(2024, 5, 1), dt.date(2024, 5, 31), 2, AT_3, "overdue"),
    (dt.date(2024, 5, 1), dt.date(2024, 5, 31), 3, AT_3, "compliant"),
    # June had no load: the status recorded by L3 stands (evaluated at L3's time)
    (dt.date(2024, 6, 1), dt.date(2024, 6, 30), 1, AT_3, "expired"),
    (dt.date(2024, 6, 1), dt.date(2024, 6, 30), 2, AT_3, "overdue"),
    (dt.date(2024, 6, 1), dt.date(2024, 6, 30), 3, AT_3, "compliant"),
    # July, the as-of month: as of the last load
    (dt.date(2024, 7, 1), dt.date(2024, 7, 31), 1, AT_4, "expired"),
    (dt.date(2024, 7, 1), dt.date(2024, 7, 31), 2, AT_4, "compliant"),
    (dt.date(2024, 7, 1), dt.date(2024, 7, 31), 3, AT_4, "compliant"),
]


def test_monthly_status_is_the_last_load_on_or_before_each_month_end(
    world: dlt.Pipeline,
) -> None:
    got = rows(world, "fct_user_compliance_monthly", "month_start, user_id", MONTHLY_COLUMNS)
    assert got == EXPECTED_MONTHLY


def test_monthly_answer_does_not_depend_on_how_often_loads_ran(
    destination: str, tmp_path: Path
) -> None:
    """Without the morning load of 04-10 (one load that day instead of two) every month's last
    load saw the same state, so the monthly rows are the same; the trend just has one row less."""
    tables = {**RAW_TABLES, "_dlt_loads": (LOADS_COLUMNS, LOADS[1:])}
    pipelines = build(destination, tmp_path, tables)
    pipeline = next(pipelines)
    got = rows(pipeline, "fct_user_compliance_monthly", "month_start, user_id", MONTHLY_COLUMNS)
    assert got == EXPECTED_MONTHLY
    trend = query(pipeline, "select distinct as_of_at from {a}.agg_compliance_trend")
    assert len(trend) == 3
    next(pipelines, None)


def test_history_keys_are_unique(world: dlt.Pipeline) -> None:
    keys: dict[str, str] = {
        "agg_compliance_trend": "load_id, coalesce(user_group_id, -1)",
        "fct_user_compliance_at_load": "load_id, user_id",
        "fct_user_compliance_monthly": "month_start, user_id",
        "bridge_user_group_members_at_load": "load_id, user_group_id, user_id",
        **{name: ", ".join(key) for name, key in OTHER_MART_KEYS.items()},
    }
    for name, key in keys.items():
        (counts,) = query(
            world,
            f"select count(*) as n, count(distinct ({key})) as k from {{a}}.{name}",
        )
        assert counts["n"] > 0 and counts["n"] == counts["k"], name


# ---- incremental history marts ---------------------------------------------------------------

HISTORY_MARTS = {
    "bridge_user_group_members_at_load": "load_id, user_group_id, user_id",
    "fct_user_compliance_at_load": "load_id, user_id",
    "agg_compliance_trend": "load_id, coalesce(user_group_id, -1)",
}


def add_loads(pipeline: dlt.Pipeline, loads: list[Row]) -> None:
    """Record more successful loads in the raw `_dlt_loads`, as dlt does after each load."""
    with pipeline.sql_client() as client:
        table = client.make_qualified_table_name("_dlt_loads")
        for load_id, schema, status, at, version_hash in loads:
            client.execute_sql(
                f"insert into {table} values ('{load_id}', '{schema}', {status},"
                f" '{at.isoformat()}', '{version_hash}')"
            )


def history(pipeline: dlt.Pipeline) -> dict[str, list[dict]]:
    return {name: mart(pipeline, name, key) for name, key in HISTORY_MARTS.items()}


def test_history_marts_append_each_new_load_and_equal_a_full_build(
    destination: str, tmp_path: Path
) -> None:
    """Built after L2, then after L4: the second build evaluates L3 and L4 only, and the marts
    are the paper's and a full build's, row for row."""
    tables = {**RAW_TABLES, "_dlt_loads": (LOADS_COLUMNS, LOADS[:2])}
    pipelines = make_pipeline(destination, tmp_path)
    pipeline = next(pipelines)
    write_raw_world(pipeline, tables)
    first = build_models(pipeline, analytics_dataset(pipeline), settings=DEPARTMENT)
    assert first.appended == []  # the first build is a full one
    assert first.rows["agg_compliance_trend"] == 6

    add_loads(pipeline, LOADS[2:])
    second = build_models(pipeline, analytics_dataset(pipeline), settings=DEPARTMENT)
    assert second.appended == [
        "bridge_user_group_members_at_load",
        "fct_user_compliance_at_load",
        "agg_compliance_trend",
    ]
    trend = rows(pipeline, "agg_compliance_trend", "as_of_at, coalesce(user_group_id, 0)",
                 TREND_COLUMNS)  # fmt: skip
    assert trend == EXPECTED_TREND
    monthly = rows(pipeline, "fct_user_compliance_monthly", "month_start, user_id",
                   MONTHLY_COLUMNS)  # fmt: skip
    assert monthly == EXPECTED_MONTHLY
    appended = history(pipeline)

    full = build_models(
        pipeline, analytics_dataset(pipeline), settings=DEPARTMENT, full_refresh=True
    )
    assert full.appended == []
    assert history(pipeline) == appended
    next(pipelines, None)


def test_a_history_mart_is_rebuilt_in_full_only_when_what_it_depends_on_changed(
    destination: str, tmp_path: Path
) -> None:
    """A row of an evaluated load is never evaluated again (a hand-edited row stays), until
    the settings change, the table is dropped, or a full refresh is asked for."""
    pipelines = build(destination, tmp_path)
    pipeline = next(pipelines)
    analytics = analytics_dataset(pipeline)
    before = history(pipeline)

    def tamper() -> None:
        with pipeline.sql_client() as client:
            client.execute_sql(
                f"update {analytics}.fct_user_compliance_at_load"
                " set compliance_status = 'edited' where load_id = '1'"
            )

    def edited() -> int:
        (row,) = query(
            pipeline,
            "select count(*) as n from {a}.fct_user_compliance_at_load"
            " where compliance_status = 'edited'",
        )
        return int(row["n"])

    tamper()
    again = build_models(pipeline, analytics, settings=DEPARTMENT)
    assert len(again.appended) == 3 and edited() == 4  # nothing new to evaluate: kept
    assert again.rows["fct_user_compliance_at_load"] == len(before["fct_user_compliance_at_load"])

    # other settings: every history mart is built in full (their rows depend on the settings)
    other = ModelSettings(org_dimensions={"location": "ca_1"})
    rebuilt = build_models(pipeline, analytics, settings=other)
    assert rebuilt.appended == [] and edited() == 0
    assert history(pipeline) == before

    tamper()
    assert build_models(pipeline, analytics, settings=other).appended != [] and edited() == 4
    refreshed = build_models(pipeline, analytics, settings=other, full_refresh=True)
    assert refreshed.appended == [] and edited() == 0

    # a dropped history mart is built in full; the others, untouched, are appended to
    tamper()
    with pipeline.sql_client() as client:
        client.execute_sql(f"drop table {analytics}.bridge_user_group_members_at_load")
    dropped = build_models(pipeline, analytics, settings=other)
    assert dropped.appended == ["fct_user_compliance_at_load", "agg_compliance_trend"]
    assert edited() == 4
    assert (
        history(pipeline)["bridge_user_group_members_at_load"]
        == (before["bridge_user_group_members_at_load"])
    )
    next(pipelines, None)


# ---- learning paths, classroom attendance, skills -------------------------------------------


def test_learning_path_progress_counts_the_paths_courses_per_assigned_learner(
    world: dlt.Pipeline,
) -> None:
    columns = (
        "learning_path_id, user_id, courses_in_path, courses_enrolled, courses_passed,"
        " share_passed, is_completed"
    )
    # Office's current members: Cy (Di was deleted); Cy passed 40, has no progress on 20
    assert rows(world, "fct_learning_path_progress", "user_id", columns) == [
        (7, 3, 2, 1, 1, 0.5, False)
    ]


def test_classroom_sessions_and_attendance_per_learner(world: dlt.Pipeline) -> None:
    columns = "timeslot_id, training_name, is_held, registrations, attended, attendance_rate"
    assert rows(world, "agg_classroom_sessions", "timeslot_id", columns) == [
        (60, "Classroom: first aid", True, 2, 1, 0.5),
        (61, "Classroom: first aid", False, 2, 0, None),  # ahead of the as-of time
    ]
    columns = "user_id, registrations, attended, missed, upcoming, last_attended_at"
    assert rows(world, "agg_classroom_attendance", "user_id", columns) == [
        (1, 2, 1, 0, 1, ts("2024-06-01 09:00")),
        (2, 1, 0, 1, 0, None),
        (3, 1, 0, 0, 1, None),
    ]


def test_skills_and_competencies_held_per_learner(world: dlt.Pipeline) -> None:
    assert rows(
        world, "fct_user_competencies", "user_id", "user_id, competency_name, awarded_at"
    ) == [(1, "Safe handler", ts("2024-03-01"))]  # Di's award went with her
    columns = "user_id, competencies_held, skills_with_balance, total_skill_balance"
    assert rows(world, "agg_learner_skills", "user_id", columns) == [(1, 1, 1, 500), (2, 0, 1, 200)]
    personal = set(query(world, "select * from {a}.fct_user_skill_balances")[0])
    assert "user_display_name" not in personal
