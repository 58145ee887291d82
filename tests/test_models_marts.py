"""Expected-output tests of every mart over a hand-built raw dataset with fixed load times.

The raw tables are written by hand in the layout the source loads (docs/internals.md §3: scd2
columns, API field names, typed columns, dlt's `_dlt_loads`), with every timestamp chosen so
that each expected value below can be worked out on paper. The same world is built on DuckDB
and on a real PostgreSQL server, and both must give exactly these answers.

The as-of time is the last successful load: 2024-06-30 12:00 UTC (a later failed load,
status 1, must be ignored).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dlt
import pytest
import sqlglot

from skyprep_source import build_models
from skyprep_source.models import ModelsBuild

RAW_DATASET = "skyprep_data"
UTC = dt.timezone.utc
AS_OF = dt.datetime(2024, 6, 30, 12, tzinfo=UTC)


def ts(text: str) -> dt.datetime:
    """A UTC timestamp from 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM'."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return dt.datetime.strptime(text, fmt).replace(tzinfo=UTC)


# the loads that observed the world: scd2 versions start at a load's boundary (11:00)
LOAD_1, LOAD_2, LOAD_3, LOAD_4 = (
    ts("2024-06-01 11:00"),
    ts("2024-06-10 11:00"),
    ts("2024-06-20 11:00"),
    ts("2024-06-30 11:00"),
)

Columns = dict[str, str]
Row = Sequence[Any]

SCD2_COLUMNS: Columns = {"_dlt_valid_from": "timestamptz", "_dlt_valid_to": "timestamptz"}

USERS_COLUMNS: Columns = {
    "id": "bigint",
    "first_name": "varchar",
    "last_name": "varchar",
    "username": "varchar",
    "email": "varchar",
    "card_no": "varchar",
    "role": "varchar",
    "status": "varchar",
    "title": "varchar",
    "cell": "varchar",
    "work_phone": "varchar",
    "address": "varchar",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "last_login_at": "timestamptz",
    "access_start_date": "timestamptz",
    "access_end_date": "timestamptz",
    "ca_0": "varchar",
    "ca_1": "varchar",
    "ca_2": "varchar",
    "ca_3": "varchar",
    "ca_4": "varchar",
    **SCD2_COLUMNS,
}


def user(
    user_id: int,
    first: str,
    last: str,
    role: str = "learner",
    status: str = "active",
    valid_from: dt.datetime = LOAD_1,
    valid_to: dt.datetime | None = None,
) -> Row:
    email = f"{first.lower().replace(' ', '.')}@example.com"
    created = ts("2024-01-02")
    return (
        user_id, first, last, email, email, None, role, status, None, None, None, None,
        created, created, None, None, None, "dept-a", None, None, None, None,
        valid_from, valid_to,
    )  # fmt: skip


USERS = [
    user(1, "Ada Old", "Lovelace", valid_to=LOAD_2),  # renamed: the old version is retired
    user(1, "Ada", "Lovelace", valid_from=LOAD_2),
    user(2, "Bob", "Brown"),
    user(3, "Cy", "Chen"),
    user(4, "Di", "Diaz", role="manager"),
    user(5, "Ed", "Evans", status="disabled"),
    user(6, "Fay", "Gone", valid_to=LOAD_3),  # deleted upstream
]

COURSES_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "description": "varchar",
    "active": "boolean",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "course_code": "varchar",
    "price": "decimal(18,2)",
    "days_until_expiration": "bigint",
    "tags": "json",
    "course_items": "json",
    **SCD2_COLUMNS,
}


def course(
    course_id: int,
    name: str,
    valid_from: dt.datetime = LOAD_1,
    valid_to: dt.datetime | None = None,
) -> Row:
    created = ts("2023-12-01")
    return (
        course_id, name, f"{name} training", True, created, created, f"C{course_id}",
        Decimal("49.99"), 365, '["compliance"]', "[]", valid_from, valid_to,
    )  # fmt: skip


COURSES = [
    course(10, "Safety"),
    # two current rows for one course (a duplicate): the later version wins
    course(20, "Privacy (old)"),
    course(20, "Privacy", valid_from=LOAD_2),
    course(30, "Ethics"),
    course(40, "Retired course", valid_to=LOAD_2),
]

PROGRESS_COLUMNS: Columns = {
    "id": "bigint",
    "status": "varchar",
    "days_until_deadline": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "skip_prerequisites": "boolean",
    "course_id": "bigint",
    "course_name": "varchar",
    "user_id": "bigint",
    "user_email": "varchar",
    "commencement_date": "timestamptz",
    "completion_date": "timestamptz",
    "last_course_item_id": "bigint",
    "percent_viewed": "double",
    "expiration_date": "timestamptz",
    "expired": "boolean",
    "access_date": "timestamptz",
    "deadline_date": "timestamptz",
    "override_dates": "boolean",
    "real_end_date": "timestamptz",
    "real_start_date": "timestamptz",
    "certificate_view_link": "varchar",
    "computed_deadline_date": "timestamptz",
    **SCD2_COLUMNS,
}


def progress(
    progress_id: int,
    user_id: int,
    course_id: int,
    status: str,
    *,
    created: str,
    started: str | None = None,
    completed: str | None = None,
    deadline: str | None = None,
    computed_deadline: str | None = None,
    expires: str | None = None,
    valid_from: dt.datetime = LOAD_1,
    valid_to: dt.datetime | None = None,
    percent_viewed: float = 0.0,
) -> Row:
    def opt(text: str | None) -> dt.datetime | None:
        return ts(text) if text else None

    return (
        progress_id, status, None, ts(created), ts(created), False, course_id, "?", user_id,
        f"user{user_id}@example.com", opt(started), opt(completed), None, percent_viewed,
        opt(expires), False, None, opt(deadline), False, None, None, None,
        opt(computed_deadline), valid_from, valid_to,
    )  # fmt: skip


PROGRESSES = [
    # user 1: both passed -> compliant (course 20 was failed first, then passed: history)
    progress(101, 1, 10, "passed", created="2024-01-10", started="2024-01-11",
             completed="2024-01-20", deadline="2024-02-01", expires="2024-07-15 12:00"),
    progress(102, 1, 20, "failed", created="2024-02-01", started="2024-02-02",
             completed="2024-02-05", valid_to=LOAD_2),
    progress(102, 1, 20, "passed", created="2024-02-01", started="2024-02-02",
             completed="2024-06-08", expires="2024-08-20", valid_from=LOAD_2),
    # user 2: failed one (past its deadline), passed one that has expired -> not compliant
    progress(103, 2, 10, "failed", created="2024-03-01", started="2024-03-02",
             completed="2024-03-15", deadline="2024-04-01"),
    progress(104, 2, 20, "passed", created="2024-03-01", started="2024-03-05",
             completed="2024-03-31", expires="2024-06-15"),
    # user 3: in progress past the course's computed deadline -> overdue;
    # not started with an explicit future deadline (the explicit one wins over the computed)
    progress(105, 3, 10, "not-started", created="2024-05-01", computed_deadline="2024-06-20",
             valid_to=LOAD_2),
    progress(105, 3, 10, "in-progress", created="2024-05-01", started="2024-05-03",
             computed_deadline="2024-06-20", percent_viewed=10.0, valid_from=LOAD_2,
             valid_to=LOAD_3),
    progress(105, 3, 10, "in-progress", created="2024-05-01", started="2024-05-03",
             computed_deadline="2024-06-20", percent_viewed=50.0, valid_from=LOAD_3),
    progress(106, 3, 20, "not-started", created="2024-06-10", deadline="2024-07-10",
             computed_deadline="2024-06-01", valid_from=LOAD_2),
    # user 4: not started, no deadline; a not-applicable row past a deadline does not count
    progress(107, 4, 10, "not-started", created="2024-06-15", valid_from=LOAD_3),
    progress(108, 4, 20, "not-applicable", created="2024-06-15", deadline="2024-01-01",
             valid_from=LOAD_3),
    # user 5: passed after the deadline (still not overdue), and a full funnel in the history
    progress(109, 5, 10, "passed", created="2024-04-01", started="2024-04-01",
             completed="2024-04-02", deadline="2024-03-01", expires="2024-09-15 12:00"),
    progress(111, 5, 20, "not-started", created="2024-05-25", valid_to=LOAD_2),
    progress(111, 5, 20, "in-progress", created="2024-05-25", started="2024-06-05",
             valid_from=LOAD_2, valid_to=LOAD_3),
    progress(111, 5, 20, "passed", created="2024-05-25", started="2024-06-05",
             completed="2024-06-15", expires="2025-01-01", valid_from=LOAD_3),
    # deleted upstream: retired, so not current, but still part of the observed history
    progress(110, 1, 30, "in-progress", created="2024-05-01", started="2024-05-02",
             valid_to=LOAD_3),
]  # fmt: skip

PAYMENTS_COLUMNS: Columns = {
    "id": "bigint",
    "model_type": "varchar",
    "status": "varchar",
    "transaction_number": "varchar",
    "amount": "decimal(18,2)",
    "currency": "varchar",
    "first_name": "varchar",
    "last_name": "varchar",
    "payer_email": "varchar",
    "latest_ipn_data": "varchar",
    "payment_type": "varchar",
    "course_id": "bigint",
    "user_id": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    **SCD2_COLUMNS,
}


def payment(
    payment_id: int,
    user_id: int,
    course_id: int,
    status: str,
    payment_type: str,
    amount: str,
    created: str,
    valid_from: dt.datetime = LOAD_1,
    valid_to: dt.datetime | None = None,
) -> Row:
    return (
        payment_id, "payment", status, f"T{payment_id}", Decimal(amount), "usd", "Pay", "Er",
        "payer@example.com", "IPN", payment_type, course_id, user_id, ts(created),
        ts(created), valid_from, valid_to,
    )  # fmt: skip


PAYMENTS = [
    payment(1, 1, 10, "complete", "stripe", "49.99", "2024-05-03"),
    payment(2, 2, 10, "complete", "stripe", "50.01", "2024-05-20"),
    payment(3, 3, 20, "refunded", "paypal", "20.00", "2024-05-25"),
    payment(4, 1, 20, "pending", "paypal", "30.00", "2024-06-01", valid_to=LOAD_4),
    payment(4, 1, 20, "complete", "paypal", "30.00", "2024-06-01", valid_from=LOAD_4),
]

GROUPS_COLUMNS: Columns = {
    "id": "bigint",
    "name": "varchar",
    "description": "varchar",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "user_count": "bigint",
    "course_ids": "json",
    **SCD2_COLUMNS,
}

GROUPS: list[Row] = [
    (1, "Sales", None, ts("2024-01-01"), ts("2024-01-01"), 3, "[10, 20]", LOAD_1, None),
    (2, "Ops", None, ts("2024-01-01"), ts("2024-01-01"), 3, "[10]", LOAD_1, None),
    (3, "Empty", None, ts("2024-01-01"), ts("2024-01-01"), 0, "[]", LOAD_1, None),
]

MEMBERS_COLUMNS: Columns = {"user_group_id": "bigint", "user_id": "bigint", **SCD2_COLUMNS}

MEMBERS: list[Row] = [
    (1, 1, LOAD_1, None),
    (1, 2, LOAD_1, None),
    (1, 3, LOAD_1, None),
    (2, 4, LOAD_1, None),
    (2, 5, LOAD_1, None),
    (2, 6, LOAD_1, None),  # user 6 was deleted: not a member any more
    (2, 1, LOAD_1, LOAD_2),  # left the group
]

LOADS_COLUMNS: Columns = {
    "load_id": "varchar",
    "schema_name": "varchar",
    "status": "bigint",
    "inserted_at": "timestamptz",
    "schema_version_hash": "varchar",
}

LOADS: list[Row] = [
    ("1", "skyprep", 0, ts("2024-06-01 11:30"), "h"),
    ("2", "skyprep", 0, ts("2024-06-10 11:30"), "h"),
    ("3", "skyprep", 0, ts("2024-06-20 11:30"), "h"),
    ("4", "skyprep", 0, ts("2024-06-30 12:00"), "h"),
    ("5", "skyprep", 1, ts("2024-07-05 12:00"), "h"),  # not successful: not the as-of time
]

RAW_TABLES: dict[str, tuple[Columns, list[Row]]] = {
    "users": (USERS_COLUMNS, USERS),
    "courses": (COURSES_COLUMNS, COURSES),
    "course_progresses": (PROGRESS_COLUMNS, PROGRESSES),
    "payments": (PAYMENTS_COLUMNS, PAYMENTS),
    "user_groups": (GROUPS_COLUMNS, GROUPS),
    "user_group_members": (MEMBERS_COLUMNS, MEMBERS),
    "_dlt_loads": (LOADS_COLUMNS, LOADS),
}


def sql_literal(value: Any) -> str:
    """A DuckDB literal for a Python value (the statements are transpiled per destination)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"cast('{value.isoformat()}' as timestamptz)"
    return "'" + str(value).replace("'", "''") + "'"


def write_raw_world(
    pipeline: dlt.Pipeline, tables: dict[str, tuple[Columns, list[Row]]] = RAW_TABLES
) -> None:
    """Create the raw tables in the pipeline's dataset through its own sql client."""
    with pipeline.sql_client() as client:
        dialect = client.capabilities.sqlglot_dialect
        if not client.has_dataset():
            client.create_dataset()
        for table, (columns, rows) in tables.items():
            name = client.make_qualified_table_name(table)
            column_defs = ", ".join(f"{column} {kind}" for column, kind in columns.items())
            create = f"create table {name} ({column_defs})"
            client.execute_sql(sqlglot.transpile(create, read="duckdb", write=dialect)[0])
            if rows:
                values = ", ".join(
                    "(" + ", ".join(sql_literal(v) for v in row) + ")" for row in rows
                )
                insert = f"insert into {name} values {values}"
                client.execute_sql(sqlglot.transpile(insert, read="duckdb", write=dialect)[0])


def postgres_dsn() -> str | None:
    """The test server's DSN when reachable; skip locally, fail in CI, when it is not."""
    dsn = os.environ.get(
        "SKYPREP_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:55432/postgres"
    )
    try:
        import psycopg2

        psycopg2.connect(dsn, connect_timeout=3).close()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {dsn} is unreachable in CI: {exc}")
        pytest.skip(f"no PostgreSQL server reachable at {dsn} (set SKYPREP_TEST_POSTGRES_DSN)")
    return dsn


def with_password(dsn: str | None) -> str:
    """dlt's PostgreSQL credentials insist on a password; a trust-auth server ignores it."""
    parts = urlsplit(dsn or "")
    if parts.password is not None:
        return dsn or ""
    netloc = f"{parts.username or 'postgres'}:unused@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def make_pipeline(destination_name: str, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    """A pipeline on DuckDB (a file in tmp_path) or PostgreSQL, with unique dataset names."""
    suffix = uuid.uuid4().hex[:8]
    if destination_name == "duckdb":
        destination: Any = dlt.destinations.duckdb(str(tmp_path / "models.duckdb"))
        dataset = RAW_DATASET
    else:
        destination = dlt.destinations.postgres(credentials=with_password(postgres_dsn()))
        dataset = f"{RAW_DATASET}_{suffix}"
    pipeline = dlt.pipeline(
        pipeline_name=f"models_{suffix}",
        destination=destination,
        dataset_name=dataset,
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    yield pipeline
    if destination_name == "postgres":
        with pipeline.sql_client() as client:
            # dlt's merge loads leave a <dataset>_staging schema beside the dataset
            for name in (dataset, f"{dataset}_staging", f"skyprep_analytics_{suffix}"):
                with client.with_alternative_dataset_name(name):
                    if client.has_dataset():
                        client.drop_dataset()


def analytics_dataset(pipeline: dlt.Pipeline) -> str:
    """The analytics dataset of a test pipeline (unique per pipeline on a shared server)."""
    return pipeline.dataset_name.replace(RAW_DATASET, "skyprep_analytics")


def query(pipeline: dlt.Pipeline, sql: str) -> list[dict[str, Any]]:
    """Rows as dicts; `{a}` in `sql` stands for the analytics dataset."""
    with (
        pipeline.sql_client() as client,
        client.execute_query(sql.format(a=analytics_dataset(pipeline))) as cursor,
    ):
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def normalised(value: Any) -> Any:
    """Make DuckDB and PostgreSQL values comparable (Decimal vs float, tz-aware datetimes)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    return value


def mart(pipeline: dlt.Pipeline, name: str, order_by: str, columns: str = "*") -> list[dict]:
    rows = query(pipeline, f"select {columns} from {{a}}.{name} order by {order_by}")
    return [{k: normalised(v) for k, v in row.items()} for row in rows]


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The hand-built world, built once per destination."""
    tmp_path = tmp_path_factory.mktemp(request.param)
    pipelines = make_pipeline(request.param, tmp_path)
    pipeline = next(pipelines)
    write_raw_world(pipeline)
    result = build_models(pipeline, analytics_dataset(pipeline))
    yield pipeline, result
    next(pipelines, None)


def test_build_reports_every_model_the_as_of_time_and_rows_per_mart(
    built: tuple[dlt.Pipeline, ModelsBuild],
) -> None:
    _, result = built
    assert result.skipped == {}
    assert result.as_of == AS_OF
    assert len(result.built) == 48
    assert result.rows["fct_course_progress"] == 10  # 11 progresses, one retired
    assert result.rows["dim_users"] == 5
    assert result.rows["agg_course_completion"] == 3
    assert result.rows["fct_course_progress_status_history"] == 15
    assert "stg_users" not in result.rows  # views are not counted as marts


def test_dim_users_holds_one_row_per_current_user_with_the_latest_version(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "dim_users", "user_id", "user_id, full_name, role, is_active, email")
    assert rows == [
        {"user_id": 1, "full_name": "Ada Lovelace", "role": "learner", "is_active": True,
         "email": "ada@example.com"},
        {"user_id": 2, "full_name": "Bob Brown", "role": "learner", "is_active": True,
         "email": "bob@example.com"},
        {"user_id": 3, "full_name": "Cy Chen", "role": "learner", "is_active": True,
         "email": "cy@example.com"},
        {"user_id": 4, "full_name": "Di Diaz", "role": "manager", "is_active": True,
         "email": "di@example.com"},
        {"user_id": 5, "full_name": "Ed Evans", "role": "learner", "is_active": False,
         "email": "ed@example.com"},
    ]  # fmt: skip


def test_dim_courses_deduplicates_current_rows_and_drops_retired_courses(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "dim_courses", "course_id", "course_id, course_name, price, is_active")
    assert rows == [
        {"course_id": 10, "course_name": "Safety", "price": 49.99, "is_active": True},
        {"course_id": 20, "course_name": "Privacy", "price": 49.99, "is_active": True},
        {"course_id": 30, "course_name": "Ethics", "price": 49.99, "is_active": True},
    ]


def test_group_dimension_and_bridge_keep_current_members_of_current_users(built) -> None:
    pipeline, _ = built
    assert mart(pipeline, "bridge_user_group_members", "user_group_id, user_id") == [
        {"user_group_id": 1, "user_id": 1},
        {"user_group_id": 1, "user_id": 2},
        {"user_group_id": 1, "user_id": 3},
        {"user_group_id": 2, "user_id": 4},
        {"user_group_id": 2, "user_id": 5},
    ]
    groups = mart(
        pipeline, "dim_user_groups", "user_group_id", "user_group_id, user_group_name, members"
    )
    assert groups == [
        {"user_group_id": 1, "user_group_name": "Sales", "members": 3},
        {"user_group_id": 2, "user_group_name": "Ops", "members": 2},
        {"user_group_id": 3, "user_group_name": "Empty", "members": 0},
    ]


def test_fct_course_progress_flags_every_status_deadline_and_expiry_case(built) -> None:
    pipeline, _ = built
    columns = (
        "course_progress_id, user_id, course_id, status, is_started, is_passed, is_failed,"
        " is_overdue, days_overdue, is_expired, expires_within_30d, deadline_at,"
        " days_to_complete"
    )
    rows = mart(pipeline, "fct_course_progress", "course_progress_id", columns)
    keys = ["course_progress_id", "user_id", "course_id", "status", "is_started", "is_passed",
            "is_failed", "is_overdue", "days_overdue", "is_expired", "expires_within_30d",
            "deadline_at", "days_to_complete"]  # fmt: skip
    expected = [
        # passed 2024-01-20 after enrolling 01-10; expires 07-15 12:00, 15 days after the as-of
        (101, 1, 10, "passed", True, True, False, False, None, False, True, ts("2024-02-01"), 10),
        # enrolled 02-01, passed 06-08: 128 days (2024 is a leap year)
        (102, 1, 20, "passed", True, True, False, False, None, False, False, None, 128),
        # failed and its deadline 04-01 passed: 90 days and 12 hours before the as-of
        (103, 2, 10, "failed", True, False, True, True, 90, False, False, ts("2024-04-01"), None),
        # expired 06-15; enrolled 03-01, passed 03-31
        (104, 2, 20, "passed", True, True, False, False, None, True, False, None, 30),
        # the computed deadline 06-20 applies: overdue by 10 days 12 hours
        (105, 3, 10, "in-progress", True, False, False, True, 10, False, False,
         ts("2024-06-20"), None),
        # the explicit deadline 07-10 wins over the computed 06-01: not overdue
        (106, 3, 20, "not-started", False, False, False, False, None, False, False,
         ts("2024-07-10"), None),
        (107, 4, 10, "not-started", False, False, False, False, None, False, False, None, None),
        # not-applicable is never overdue, whatever its deadline
        (108, 4, 20, "not-applicable", False, False, False, False, None, False, False,
         ts("2024-01-01"), None),
        # passed after its deadline: passed is never overdue
        (109, 5, 10, "passed", True, True, False, False, None, False, False, ts("2024-03-01"), 1),
        (111, 5, 20, "passed", True, True, False, False, None, False, False, None, 21),
    ]  # fmt: skip
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_fct_course_progress_keeps_personal_data_out(built) -> None:
    pipeline, _ = built
    columns = set(query(pipeline, "select * from {a}.fct_course_progress")[0])
    assert not columns & {"user_email", "email", "first_name", "last_name", "username"}
    payment_columns = set(query(pipeline, "select * from {a}.fct_payments")[0])
    assert not payment_columns & {"payer_email", "first_name", "last_name", "latest_ipn_data"}


def test_agg_course_completion_counts_rates_and_median_days(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "agg_course_completion", "course_id")
    keys = ["course_id", "course_name", "enrolled", "not_started", "in_progress", "passed",
            "failed", "overdue", "expired", "completion_rate", "pass_rate",
            "median_days_to_complete"]  # fmt: skip
    expected = [
        # 101 passed, 103 failed+overdue, 105 in-progress+overdue, 107 not-started, 109 passed;
        # days to complete 10 and 1 -> median 5.5
        (10, "Safety", 5, 1, 1, 2, 1, 2, 0, 0.4, round(2 / 3, 9), 5.5),
        # 102, 104 (expired), 111 passed, 106 not-started; 108 not-applicable is not enrolled;
        # days 128, 30, 21 -> median 30
        (20, "Privacy", 4, 1, 0, 3, 0, 0, 1, 0.75, 1.0, 30.0),
        # no current progress (110 was deleted): no rates
        (30, "Ethics", 0, 0, 0, 0, 0, 0, 0, None, None, None),
    ]
    assert [{k: row[k] for k in keys} for row in rows] == [
        dict(zip(keys, row, strict=True)) for row in expected
    ]


def test_agg_user_compliance_applies_failed_then_overdue_then_passed_precedence(built) -> None:
    # required rule: group assignments (Sales assigns courses 10 and 20, Ops course 10)
    pipeline, _ = built
    rows = mart(
        pipeline,
        "agg_user_compliance",
        "user_id",
        "user_id, assigned, passed, failed, overdue, open_assignments, expired, compliance_status",
    )
    keys = ["user_id", "assigned", "passed", "failed", "overdue", "open_assignments", "expired",
            "compliance_status"]  # fmt: skip
    expected = [
        (1, 2, 2, 0, 0, 0, 0, "compliant"),  # failed course 20 once, passed it since
        (2, 2, 1, 1, 1, 0, 1, "not_compliant"),  # failed wins over overdue
        (3, 2, 0, 0, 1, 2, 0, "overdue"),
        (4, 1, 0, 0, 0, 1, 0, "in_progress"),  # the not-applicable row is not assigned
        # course 20 is optional for user 5: their group (Ops) assigns course 10 only
        (5, 1, 1, 0, 0, 0, 0, "compliant"),
    ]
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_agg_group_compliance_reports_share_compliant_and_training_progress_apart(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "agg_group_compliance", "user_group_id")
    keys = ["user_group_id", "user_group_name", "members", "members_with_assignments",
            "compliant_members", "in_progress_members", "overdue_members",
            "expired_members", "not_compliant_members", "share_compliant", "assigned", "passed",
            "training_progress"]  # fmt: skip
    expected = [
        # users 1 (compliant), 2 (not compliant), 3 (overdue): 3 of 6 courses passed
        (1, "Sales", 3, 3, 1, 0, 1, 0, 1, round(1 / 3, 9), 6, 3, 0.5),
        # users 4 (in progress) and 5 (compliant): 1 of the 2 required courses passed (user 5's
        # course 20 is optional: Ops assigns course 10 only)
        (2, "Ops", 2, 2, 1, 1, 0, 0, 0, 0.5, 2, 1, 0.5),
        (3, "Empty", 0, 0, 0, 0, 0, 0, 0, None, 0, 0, None),
    ]
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_agg_completions_monthly_counts_each_event_in_its_own_month(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "agg_completions_monthly", "month_start")
    expected = [
        # enrolled 101; started 101; passed 101
        (dt.date(2024, 1, 1), 1, 1, 1, 0),
        # enrolled and started 102 (it passed in June)
        (dt.date(2024, 2, 1), 1, 1, 0, 0),
        # enrolled and started 103, 104; 104 passed, 103 failed
        (dt.date(2024, 3, 1), 2, 2, 1, 1),
        (dt.date(2024, 4, 1), 1, 1, 1, 0),  # 109
        # enrolled 105 and 111, started 105
        (dt.date(2024, 5, 1), 2, 1, 0, 0),
        # enrolled 106, 107 (108 is not-applicable); started 111; passed 102 and 111
        (dt.date(2024, 6, 1), 2, 1, 2, 0),
    ]
    keys = ["month_start", "enrollments", "starts", "passes", "fails"]
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_agg_certification_expiry_puts_each_passed_expiry_in_one_window(built) -> None:
    pipeline, _ = built
    columns = (
        "course_progress_id, user_id, course_id, course_name, expiry_window, is_expired,"
        " expires_within_30d, expires_within_60d, expires_within_90d, days_until_expiry"
    )
    rows = mart(pipeline, "agg_certification_expiry", "course_progress_id", columns)
    keys = [c.strip() for c in columns.split(",")]
    expected = [
        (101, 1, 10, "Safety", "within_30d", False, True, True, True, 15),  # 07-15 12:00
        (102, 1, 20, "Privacy", "within_60d", False, False, True, True, 50),  # 08-20 00:00
        (104, 2, 20, "Privacy", "expired", True, False, False, False, None),  # 06-15
        (109, 5, 10, "Safety", "within_90d", False, False, False, True, 77),  # 09-15 12:00
        (111, 5, 20, "Privacy", "later", False, False, False, False, 184),  # 2025-01-01
    ]
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_payments_keep_the_latest_version_and_revenue_sums_by_month_status_and_type(built) -> None:
    pipeline, _ = built
    payments = mart(
        pipeline, "fct_payments", "payment_id", "payment_id, status, amount, is_complete"
    )
    assert payments == [
        {"payment_id": 1, "status": "complete", "amount": 49.99, "is_complete": True},
        {"payment_id": 2, "status": "complete", "amount": 50.01, "is_complete": True},
        {"payment_id": 3, "status": "refunded", "amount": 20.0, "is_complete": False},
        {"payment_id": 4, "status": "complete", "amount": 30.0, "is_complete": True},
    ]
    revenue = mart(pipeline, "agg_revenue_monthly", "month_start, status, payment_type")
    assert revenue == [
        {"month_start": dt.date(2024, 5, 1), "status": "complete", "payment_type": "stripe",
         "currency": "USD", "payments": 2, "amount": 100.0},
        {"month_start": dt.date(2024, 5, 1), "status": "refunded", "payment_type": "paypal",
         "currency": "USD", "payments": 1, "amount": 20.0},
        {"month_start": dt.date(2024, 6, 1), "status": "complete", "payment_type": "paypal",
         "currency": "USD", "payments": 1, "amount": 30.0},
    ]  # fmt: skip


def test_status_history_collapses_versions_with_the_same_status(built) -> None:
    pipeline, _ = built
    columns = "course_progress_id, status_seq, status, valid_from, valid_to, versions, is_current, hours_in_status"
    rows = mart(
        pipeline, "fct_course_progress_status_history", "course_progress_id, status_seq", columns
    )
    keys = [c.strip() for c in columns.split(",")]
    # hours run to the next status, or to the as-of time (06-30 12:00) while current:
    # from 06-01 11:00 that is 29 days 1 hour = 697 h; from 06-10 11:00, 481 h; from 06-20, 241 h
    expected = [
        (101, 1, "passed", LOAD_1, None, 1, True, 697.0),
        (102, 1, "failed", LOAD_1, LOAD_2, 1, False, 216.0),
        (102, 2, "passed", LOAD_2, None, 1, True, 481.0),
        (103, 1, "failed", LOAD_1, None, 1, True, 697.0),
        (104, 1, "passed", LOAD_1, None, 1, True, 697.0),
        (105, 1, "not-started", LOAD_1, LOAD_2, 1, False, 216.0),
        # two versions in progress (percent viewed changed): one episode
        (105, 2, "in-progress", LOAD_2, None, 2, True, 481.0),
        (106, 1, "not-started", LOAD_2, None, 1, True, 481.0),
        (107, 1, "not-started", LOAD_3, None, 1, True, 241.0),
        (108, 1, "not-applicable", LOAD_3, None, 1, True, 241.0),
        (109, 1, "passed", LOAD_1, None, 1, True, 697.0),
        # deleted upstream at the third load: the episode ends there, 19 days
        (110, 1, "in-progress", LOAD_1, LOAD_3, 1, False, 456.0),
        (111, 1, "not-started", LOAD_1, LOAD_2, 1, False, 216.0),
        (111, 2, "in-progress", LOAD_2, LOAD_3, 1, False, 240.0),
        (111, 3, "passed", LOAD_3, None, 1, True, 241.0),
    ]
    assert rows == [dict(zip(keys, row, strict=True)) for row in expected]


def test_funnel_timing_times_only_steps_whose_both_ends_were_observed(built) -> None:
    pipeline, _ = built
    rows = mart(pipeline, "agg_progress_funnel_timing", "course_id")
    keys = ["course_id", "progresses_observed", "reached_started", "reached_passed",
            "timed_enrolled_to_started", "median_hours_enrolled_to_started",
            "timed_started_to_passed", "median_hours_started_to_passed",
            "timed_enrolled_to_passed", "median_hours_enrolled_to_passed"]  # fmt: skip
    expected = [
        # 101, 109 first seen passed, 103 failed: they reach the steps untimed; 105 was seen
        # not-started at the first load and in progress at the second: 9 days = 216 h
        (10, 5, 4, 2, 1, 216.0, 0, None, 0, None),
        # 111: not-started -> in-progress (216 h) -> passed (240 h), 456 h end to end;
        # 102 went failed -> passed (no in-progress seen), 104 first seen passed
        (20, 4, 3, 3, 1, 216.0, 1, 240.0, 1, 456.0),
        # 110, deleted, was only seen in progress
        (30, 1, 1, 0, 0, None, 0, None, 0, None),
    ]
    assert [{k: row[k] for k in keys} for row in rows] == [
        dict(zip(keys, row, strict=True)) for row in expected
    ]


MART_KEYS = {
    "dim_users": ["user_id"],
    "dim_courses": ["course_id"],
    "dim_user_groups": ["user_group_id"],
    "bridge_user_group_members": ["user_group_id", "user_id"],
    "fct_course_progress": ["course_progress_id"],
    "fct_course_progress_status_history": ["course_progress_id", "status_seq"],
    "fct_payments": ["payment_id"],
    "agg_course_completion": ["course_id"],
    "agg_user_compliance": ["user_id"],
    "agg_group_compliance": ["user_group_id"],
    "agg_completions_monthly": ["month_start"],
    "agg_certification_expiry": ["course_progress_id"],
    "agg_revenue_monthly": ["month_start", "status", "payment_type", "currency"],
    "agg_progress_funnel_timing": ["course_id"],
    "bridge_user_group_members_at_load": ["load_id", "user_group_id", "user_id"],
    "fct_user_compliance_at_load": ["load_id", "user_id"],
    "fct_user_compliance_monthly": ["month_start", "user_id"],
}
# marts whose inputs the hand-built world above does not hold (learning paths, classroom,
# skills, org dimensions): keys checked on the compliance world and the generated world
OTHER_MART_KEYS = {
    "agg_org_compliance": ["dimension", "dimension_value"],
    "fct_learning_path_progress": ["learning_path_id", "user_id"],
    "agg_classroom_sessions": ["timeslot_id"],
    "agg_classroom_attendance": ["user_id"],
    "fct_user_competencies": ["user_id", "competency_id"],
    "fct_user_skill_balances": ["user_id", "skill_id"],
    "agg_learner_skills": ["user_id"],
}

PROGRESS_STATUSES = {"passed", "failed", "in-progress", "not-started", "not-applicable"}
COMPLIANCE_STATUSES = {"compliant", "in_progress", "overdue", "expired", "not_compliant"}
REQUIRED_RULES = {"configured_courses", "group_assignments", "every_enrolment"}
ACCEPTED_VALUES = {
    ("fct_course_progress", "status"): PROGRESS_STATUSES,
    ("fct_course_progress_status_history", "status"): PROGRESS_STATUSES,
    ("agg_user_compliance", "compliance_status"): COMPLIANCE_STATUSES,
    ("fct_user_compliance_at_load", "compliance_status"): COMPLIANCE_STATUSES,
    ("fct_user_compliance_monthly", "compliance_status"): COMPLIANCE_STATUSES,
    ("fct_course_progress", "required_rule"): REQUIRED_RULES,
    ("agg_user_compliance", "required_rule"): REQUIRED_RULES,
    ("agg_certification_expiry", "expiry_window"): {
        "expired", "within_30d", "within_60d", "within_90d", "later",
    },
    ("fct_payments", "status"): {"complete", "pending", "refunded", "failed"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(MART_KEYS))
def test_mart_keys_are_unique_and_not_null(built, name: str) -> None:
    pipeline, _ = built
    key = MART_KEYS[name]
    rows = query(pipeline, f"select {', '.join(key)} from {{a}}.{name}")
    assert rows, f"{name} is empty in the test world: the check would prove nothing"
    values = [tuple(row[column] for column in key) for row in rows]
    assert all(v is not None for value in values for v in value), name
    assert len(set(values)) == len(values), name


@pytest.mark.parametrize(("name", "column"), sorted(ACCEPTED_VALUES))
def test_status_columns_hold_only_known_values(built, name: str, column: str) -> None:
    pipeline, _ = built
    rows = query(pipeline, f"select distinct {column} as value from {{a}}.{name}")
    values = {row["value"] for row in rows}
    assert values, name
    assert values <= ACCEPTED_VALUES[(name, column)]
