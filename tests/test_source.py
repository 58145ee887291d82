"""The `skyprep` source end to end: real HTTP against the sandbox, real DuckDB files on disk.

Each test loads a tiny world, changes it (or breaks the transport), loads again and compares
the warehouse with the world row for row.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.common.pipeline import LoadInfo
from dlt.pipeline.exceptions import PipelineStepFailed

from skyprep_sandbox import Sandbox, World
from skyprep_source import DATASET_NAME, READ_ROUTES, skyprep
from skyprep_source.catalogue import TABLES
from skyprep_source.errors import SkyPrepCredentialsError, SkyPrepRequestFailed
from skyprep_source.normalize import records_to_table

SECRET = "e2e-secret-api-key-7Qz1"
SNAPSHOT_TABLES = (
    "users",
    "courses",
    "course_progresses",
    "skills",
    "competencies",
    "user_groups",
    "saved_advanced_reports",
)
SCD2_TABLES = (*SNAPSHOT_TABLES, "payments", "user_group_members")
DLT_COLUMNS = ("_dlt_valid_from", "_dlt_valid_to", "_dlt_load_id", "_dlt_id", "_row_hash")


@pytest.fixture(autouse=True)
def _stamp_load_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # as .dlt/config.toml does for users: Arrow rows carry their _dlt_load_id
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


class Warehouse:
    """A pipeline into a DuckDB file under tmp_path, loading from one sandbox."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self.sandbox = sandbox
        self.root = root
        self.pipeline = dlt.pipeline(
            pipeline_name="skyprep_e2e",
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
            dataset_name=DATASET_NAME,
        )

    def load(self, **options: Any) -> LoadInfo:
        settings: dict[str, Any] = {
            "api_key": self.sandbox.api_key,
            "acct_key": self.sandbox.acct_key,
            "base_url": self.sandbox.base_url,
            "requests_per_minute": None,
            "max_attempts": 3,
            "backoff_base_s": 0.01,
            "backoff_max_s": 0.05,
            "request_timeout": 5.0,
            **options,
        }
        return self.pipeline.run(skyprep(**settings))

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.pipeline.sql_client() as client, client.execute_query(sql, *args) as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def current(self, table: str) -> list[dict[str, Any]]:
        """The current version of every record (scd2: `_dlt_valid_to IS NULL`)."""
        return self.rows(f"select * from {DATASET_NAME}.{table} where _dlt_valid_to is null")

    def count(self, table: str, where: str = "true", *args: Any) -> int:
        found = self.rows(f"select count(*) as n from {DATASET_NAME}.{table} where {where}", *args)
        return int(found[0]["n"])

    def tables(self) -> set[str]:
        found = self.rows(
            "select table_name from information_schema.tables where table_schema = %s",
            DATASET_NAME,
        )
        return {row["table_name"] for row in found}


@pytest.fixture
def warehouse_for(tmp_path: Path) -> Iterator[Callable[[Sandbox], Warehouse]]:
    made: list[Warehouse] = []

    def make(sandbox: Sandbox) -> Warehouse:
        made.append(Warehouse(sandbox, tmp_path / f"w{len(made)}"))
        return made[-1]

    yield make


def world_rows(world: World, table: str) -> list[dict[str, Any]]:
    """What the world holds for `table`, typed like the source types it."""
    if table == "user_group_members":
        return sorted(
            (
                {"user_group_id": gid, "user_id": uid}
                for gid, members in world.group_members.items()
                if gid in world.user_groups
                for uid in members
            ),
            key=lambda r: (r["user_group_id"], r["user_id"]),
        )
    endpoint = TABLES[table]
    return records_to_table(world.records(endpoint.route), endpoint.schema).to_pylist()


def root_cause(error: BaseException) -> BaseException:
    """The source's own error under dlt's PipelineStepFailed / ResourceExtractionError."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def assert_matches_world(warehouse: Warehouse, world: World, *tables: str) -> None:
    for table in tables or SCD2_TABLES:
        expected = world_rows(world, table)
        key = ("user_group_id", "user_id") if table == "user_group_members" else ("id",)
        got = {tuple(r[k] for k in key): r for r in warehouse.current(table)}
        want = {tuple(r[k] for k in key): r for r in expected}
        assert got.keys() == want.keys(), f"{table}: other records than the world's"
        for row_key, row in want.items():
            loaded = {name: got[row_key][name] for name in row}
            assert loaded == row, f"{table} {row_key}"


# ---- loads ---------------------------------------------------------------------------------


def test_full_load_equals_the_world_row_for_row(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    assert_matches_world(warehouse, sandbox.world)
    assert {
        "saved_report__all_course_progresses_report",
        "saved_report__compliance_matrix",
        "saved_report__overdue_learners",
    } <= warehouse.tables()


def test_columns_have_the_contract_types(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    found = warehouse.rows(
        "select table_name, column_name, data_type from information_schema.columns "
        "where table_schema = %s",
        DATASET_NAME,
    )
    types = {(r["table_name"], r["column_name"]): r["data_type"] for r in found}
    assert types["users", "id"] == "BIGINT"
    assert types["users", "created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["course_progresses", "user_id"] == "BIGINT"
    assert types["course_progresses", "completion_date"] == "TIMESTAMP WITH TIME ZONE"
    assert types["course_progresses", "expired"] == "BOOLEAN"
    assert types["payments", "amount"] == "DECIMAL(18,2)"
    assert types["courses", "active"] == "BOOLEAN"
    assert types["courses", "tags"] == "JSON"
    assert types["competencies", "skills"] == "JSON"
    assert types["skills", "competency_count"] == "BIGINT"
    assert types["user_group_members", "user_group_id"] == "BIGINT"


def test_rerun_without_changes_rewrites_nothing(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    before = {table: warehouse.count(table) for table in SCD2_TABLES}
    info = warehouse.load()
    load_id = info.loads_ids[-1]
    for table in SCD2_TABLES:
        assert warehouse.count(table) == before[table], table
        assert warehouse.count(table, "_dlt_load_id = %s", load_id) == 0, table
        assert warehouse.count(table, "_dlt_valid_to is not null") == 0, table


def test_incremental_load_after_days_pass_equals_the_new_world(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    sandbox.advance(days=3)
    # the sandbox refunds old payments too; a window reaching back to them catches every one
    warehouse.load(payments_lookback_days=3650)
    assert_matches_world(warehouse, sandbox.world)
    # the status history: some progress now has an earlier, retired version
    assert warehouse.count("course_progresses", "_dlt_valid_to is not null") > 0


def test_a_late_refund_is_caught_by_the_periodic_full_read_of_payments(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    oldest = min(world.payments.ids(), key=lambda pid: world.payments.meta[pid][2])
    world.set_payment_status(oldest, "refunded")  # months after it was made

    def payments_calls() -> list[dict[str, Any]]:
        return [e["params"] for e in sandbox.request_log if e["route"] == "get_payments"]

    def status_of(payment_id: int) -> list[tuple[str, bool]]:
        rows = warehouse.rows(
            f"select status, _dlt_valid_to is null as current from {DATASET_NAME}.payments "
            "where id = %s order by _dlt_valid_from",
            payment_id,
        )
        return [(row["status"], row["current"]) for row in rows]

    before = status_of(oldest)
    assert before and before[-1][0] != "refunded"
    sandbox.reset_stats()
    warehouse.load()  # the next run: the window since the newest payment; the refund is older
    assert payments_calls() and all("created_after_days_ago" in p for p in payments_calls())
    assert status_of(oldest) == before

    sandbox.reset_stats()
    warehouse.load(payments_full_read_days=0)  # the full read is due
    assert payments_calls() and not any("created_after_days_ago" in p for p in payments_calls())
    assert status_of(oldest) == [(before[-1][0], False), ("refunded", True)]  # versioned
    assert_matches_world(warehouse, world, "payments")

    sandbox.reset_stats()
    warehouse.load()  # the full read was just made: back to the window
    assert all("created_after_days_ago" in p for p in payments_calls())


def test_payments_window_reads_in_full_on_the_first_run_and_when_a_full_read_is_due() -> None:
    from datetime import datetime, timezone

    from skyprep_source.core_resources import payments_window_days

    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    newest = "2026-11-26T09:00:00+00:00"
    assert payments_window_days(None, 7, now) is None  # the first run
    assert payments_window_days(newest, 7, now) == 3 + 7  # no full reads asked for
    recent = "2026-11-25T12:00:00+00:00"
    assert payments_window_days(newest, 7, now, last_full_read_at=recent, full_read_days=7) == 10
    week_old = "2026-11-21T12:00:00+00:00"
    assert (
        payments_window_days(newest, 7, now, last_full_read_at=week_old, full_read_days=7) is None
    )
    # a pipeline loaded before full reads existed: one now
    assert payments_window_days(newest, 7, now, full_read_days=7) is None


def test_destroyed_users_and_progresses_are_retired(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    user_id = world.users.ids()[0]
    progress_id = next(p for p in world.progresses.ids() if world.progresses.meta[p][1] != user_id)
    world.destroy_user(user_id)
    world.destroy_progress(progress_id)
    warehouse.load()
    for table, record_id in (("users", user_id), ("course_progresses", progress_id)):
        assert warehouse.count(table, "id = %s and _dlt_valid_to is null", record_id) == 0
        assert warehouse.count(table, "id = %s and _dlt_valid_to is not null", record_id) == 1
    assert_matches_world(warehouse, world, "users", "course_progresses")


def test_course_ids_reads_those_courses_and_never_retires_the_others(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    chosen, other = world.courses.ids()[:2]
    gone_chosen = next(iter(world.progresses_by_course[chosen]))
    gone_other = next(iter(world.progresses_by_course[other]))
    world.destroy_progress(gone_chosen)
    world.destroy_progress(gone_other)
    sandbox.reset_stats()
    warehouse.load(course_ids=[chosen])
    calls = [e["params"].get("course_id") for e in sandbox.request_log]
    assert {str(c) for c in calls if c is not None} == {str(chosen)}
    current = warehouse.count
    assert current("course_progresses", "id = %s and _dlt_valid_to is null", gone_chosen) == 0
    assert current("course_progresses", "id = %s and _dlt_valid_to is null", gone_other) == 1


def test_account_wide_progresses_equal_per_course(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load(course_progress_mode="account_wide")
    assert_matches_world(warehouse, sandbox.world, "course_progresses")
    assert sandbox.stats()["calls"]["get_course_progresses"] <= 2


def test_payments_window_catches_late_refunds_and_keeps_older_payments(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    newest = world.records("get_payments")[0]
    world.set_payment_status(int(newest["id"]), "refunded")
    sandbox.advance(days=1)
    sandbox.reset_stats()
    warehouse.load()
    windows = [
        e["params"].get("created_after_days_ago")
        for e in sandbox.request_log
        if e["route"] == "get_payments"
    ]
    assert windows and all(w is not None for w in windows)
    assert_matches_world(warehouse, world, "payments")  # older payments are still current
    versions = warehouse.rows(
        f"select status from {DATASET_NAME}.payments where id = %s order by _dlt_valid_from",
        int(newest["id"]),
    )
    assert [v["status"] for v in versions] == [newest["status"], "refunded"]


def test_saved_reports_are_downloaded_only_when_they_changed(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    first = sandbox.stats()["calls"]["get_saved_advanced_report"]
    assert first == len(sandbox.world.records("get_saved_advanced_reports"))
    sandbox.reset_stats()
    warehouse.load()
    live = [
        r
        for r in sandbox.world.records("get_saved_advanced_reports")
        if r["saved_report_type"] != "saved_report_with_data"
    ]
    # only the live reports (rendered at download time) are downloaded again
    assert sandbox.stats()["calls"].get("get_saved_advanced_report", 0) == len(live)
    matrix = warehouse.count("saved_report__compliance_matrix")
    assert matrix > 0  # an unchanged report's table is kept, not emptied


def test_concurrent_fetching_gives_the_same_data(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load(concurrency=3)
    assert_matches_world(warehouse, sandbox.world, "course_progresses", "users")


def test_rate_budget_keeps_under_the_server_limit(
    sandbox_factory: Callable[..., Sandbox],
    tiny_world: World,
    warehouse_for: Callable[[Sandbox], Warehouse],
) -> None:
    sandbox = sandbox_factory(tiny_world, rate_limit=10, rate_window_s=1.0)
    warehouse = warehouse_for(sandbox)
    warehouse.load(requests_per_minute=10, rate_window_s=1.0)
    assert sandbox.stats()["throttled"] == 0
    assert_matches_world(warehouse, tiny_world, "users", "course_progresses")


# ---- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        ("http_500", {}),
        ("http_502", {}),
        ("http_503", {"retry_after": 0}),
        ("http_504", {}),
        ("rate_limit_429", {"retry_after": 0}),
        ("rate_limit_429", {"retry_after": None}),
        ("drop_connection", {}),
        ("truncated_body", {}),
        ("slow", {"delay_s": 1.0}),
    ],
)
def test_transient_faults_end_in_the_correct_data(
    sandbox: Sandbox,
    warehouse_for: Callable[[Sandbox], Warehouse],
    kind: str,
    options: dict[str, Any],
) -> None:
    sandbox.inject_fault(kind, route="get_course_progresses", count=2, skip=1, **options)
    sandbox.inject_fault(kind, route="get_users", count=1, **options)
    warehouse = warehouse_for(sandbox)
    warehouse.load(request_timeout=0.5)
    assert sandbox.stats()["faults"] == 3
    assert_matches_world(warehouse, sandbox.world)


@pytest.mark.parametrize("kind", ["page_drift_insert", "page_drift_delete"])
@pytest.mark.parametrize("table", ["users", "course_progresses"])
@pytest.mark.parametrize("verify_paging", [False, True])
def test_page_drift_never_doubles_misses_or_wrongly_retires_a_record(
    sandbox: Sandbox,
    warehouse_for: Callable[[Sandbox], Warehouse],
    kind: str,
    table: str,
    verify_paging: bool,
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load(page_size=7, verify_paging=verify_paging)
    before = {r["id"] for r in warehouse.current(table)}
    route = TABLES[table].route
    sandbox.inject_fault(kind, route=route, count=1, records=3)
    warehouse.load(page_size=7, verify_paging=verify_paging)
    assert sandbox.stats()["faults"] == 1
    world_ids = {r["id"] for r in world_rows(sandbox.world, table)}
    loaded = [r["id"] for r in warehouse.current(table)]
    assert len(loaded) == len(set(loaded))  # no record twice
    # none retired while it still exists: a row that slid past the pager is confirmed by its
    # own route and kept
    assert world_ids & before <= set(loaded)
    if verify_paging:  # the re-read of a list whose page 1 moved also catches new records
        assert world_ids <= set(loaded)
    warehouse.load(page_size=7)  # the next run settles what changed while paging
    assert_matches_world(warehouse, sandbox.world, table)


def test_page_drift_on_a_first_load_doubles_nothing_in_minimal_calls(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    sandbox.inject_fault("page_drift_insert", route="get_users", count=1, records=3)
    warehouse = warehouse_for(sandbox)
    warehouse.load(page_size=7)
    loaded = [r["id"] for r in warehouse.current("users")]
    assert len(loaded) == len(set(loaded))
    users_before_drift = len(sandbox.world.records("get_users")) - 3
    assert len(loaded) >= users_before_drift
    assert sandbox.stats()["calls"]["get_users"] == users_before_drift // 7 + 1


def test_paging_ignored_by_the_server_loads_each_record_once(
    sandbox_factory: Callable[..., Sandbox],
    tiny_world: World,
    warehouse_for: Callable[[Sandbox], Warehouse],
) -> None:
    sandbox = sandbox_factory(tiny_world, paging="ignore")
    warehouse = warehouse_for(sandbox)
    warehouse.load(page_size=7)
    assert_matches_world(warehouse, tiny_world)
    assert sandbox.stats()["calls"]["get_users"] == 1


def test_server_page_cap_is_followed(
    sandbox_factory: Callable[..., Sandbox],
    tiny_world: World,
    warehouse_for: Callable[[Sandbox], Warehouse],
) -> None:
    sandbox = sandbox_factory(tiny_world, max_per_page=8)
    warehouse = warehouse_for(sandbox)
    warehouse.load(page_size=1000)
    assert_matches_world(warehouse, tiny_world, "users", "course_progresses")


def test_run_failing_midway_loads_and_retires_nothing_then_rerun_equals_the_world(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    loads_before = warehouse.count("_dlt_loads")
    destroyed = world.users.ids()[0]
    world.destroy_user(destroyed)
    sandbox.advance(days=2)
    # the 6th call and its retries fail: the run dies with some resources read, some not
    sandbox.inject_fault("http_503", count=3, skip=5)
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load(all_or_nothing=True)  # the old behaviour: any failure fails the run
    assert isinstance(root_cause(raised.value), SkyPrepRequestFailed)
    assert warehouse.count("_dlt_loads") == loads_before
    assert warehouse.count("users", "id = %s and _dlt_valid_to is null", destroyed) == 1
    warehouse.load()
    assert_matches_world(warehouse, world)


def test_html_page_fails_with_a_credentials_error_and_loads_nothing(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    sandbox.inject_fault("html_error", route="get_courses", count=1)
    warehouse = warehouse_for(sandbox)
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load()
    assert isinstance(root_cause(raised.value), SkyPrepCredentialsError)
    assert "sources.skyprep.api_key" in str(raised.value)
    assert not warehouse.pipeline.list_extracted_load_packages()
    assert "users" not in warehouse.tables()  # users were read before courses failed


def test_wrong_key_is_a_credentials_error_that_never_shows_the_key(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load(api_key=SECRET)
    assert isinstance(root_cause(raised.value), SkyPrepCredentialsError)
    assert SECRET not in str(raised.value) and SECRET not in repr(root_cause(raised.value))


# ---- secrets and the read-only rule -------------------------------------------------------


def test_the_key_appears_in_no_log_exception_file_or_table(
    sandbox_factory: Callable[..., Sandbox],
    warehouse_for: Callable[[Sandbox], Warehouse],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = sandbox_factory(api_key=SECRET)
    warehouse = warehouse_for(sandbox)
    caplog.set_level("DEBUG")
    sandbox.inject_fault("http_503", route="get_users", count=1)
    warehouse.load()
    sandbox.inject_fault("http_503", count=5)  # a run that fails, with its trace written
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load()
    assert SECRET not in caplog.text
    assert SECRET not in str(raised.value)
    leaking = [
        str(path)
        for path in warehouse.root.rglob("*")
        if path.is_file() and SECRET.encode() in path.read_bytes()
    ]
    assert leaking == []


def test_only_read_routes_are_called(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse_for(sandbox).load()
    routes = {entry["route"] for entry in sandbox.request_log}
    assert routes <= READ_ROUTES
    assert sandbox.stats()["mutating_calls"] == 0
    assert all(entry.get("key_source") == "body" for entry in sandbox.request_log)


def test_configuration_comes_from_sources_skyprep_environment_variables(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse], monkeypatch: pytest.MonkeyPatch
) -> None:
    course_id = sandbox.world.courses.ids()[0]
    monkeypatch.setenv("SOURCES__SKYPREP__API_KEY", sandbox.api_key)
    monkeypatch.setenv("SOURCES__SKYPREP__ACCT_KEY", sandbox.acct_key)
    monkeypatch.setenv("SOURCES__SKYPREP__BASE_URL", sandbox.base_url)
    monkeypatch.setenv("SOURCES__SKYPREP__COURSE_IDS", f"[{course_id}]")
    monkeypatch.setenv("SOURCES__SKYPREP__SAVED_REPORTS", "false")
    warehouse = warehouse_for(sandbox)
    source = skyprep()
    assert "saved_reports" not in source.resources  # SAVED_REPORTS=false
    warehouse.pipeline.run(source.with_resources("users", "course_progresses"))
    assert warehouse.count("users") == len(sandbox.world.records("get_users"))
    read = {e["params"].get("course_id") for e in sandbox.request_log}
    assert {str(c) for c in read if c is not None} == {str(course_id)}


def test_a_course_whose_progresses_are_all_gone_has_them_all_retired(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    course_id = world.courses.ids()[0]
    for progress_id in list(world.progresses_by_course[course_id]):
        world.destroy_progress(progress_id)
    warehouse.load(course_ids=[course_id])  # an empty snapshot of that course
    assert warehouse.count("course_progresses", "course_id = %s", course_id) > 0
    assert (
        warehouse.count("course_progresses", "course_id = %s and _dlt_valid_to is null", course_id)
        == 0
    )


CHILD_RUN = """
import sys, dlt
from skyprep_source import skyprep
base_url, root = sys.argv[1], sys.argv[2]
pipeline = dlt.pipeline(
    pipeline_name="skyprep_e2e", pipelines_dir=root + "/pipelines",
    destination=dlt.destinations.duckdb(root + "/skyprep.duckdb"), dataset_name="skyprep_data",
)
pipeline.run(skyprep(api_key="sandbox-api-key", acct_key="sandbox.skyprepapp.com",
                     base_url=base_url, requests_per_minute=None))
"""


def test_process_killed_mid_extract_then_rerun_equals_the_world(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    sandbox.world.destroy_user(sandbox.world.users.ids()[0])
    sandbox.advance(days=2)
    sandbox.reset_stats()
    # the child hangs on its first progress list: killed there, users were already read
    sandbox.inject_fault("slow", route="get_course_progresses", count=1, delay_s=30)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_RUN, sandbox.base_url, str(warehouse.root)],
        env={**os.environ, "RUNTIME__LOG_LEVEL": "CRITICAL"},
    )
    try:
        deadline = time.monotonic() + 60
        while "get_course_progresses" not in sandbox.stats()["calls"]:
            assert child.poll() is None, "the child finished before it could be killed"
            assert time.monotonic() < deadline, "the child never reached the progresses"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    sandbox.clear_faults()
    warehouse.load()
    assert_matches_world(warehouse, sandbox.world)


def test_a_course_destroyed_upstream_answers_404_and_its_progresses_are_retired(
    sandbox: Sandbox,
    warehouse_for: Callable[[Sandbox], Warehouse],
    caplog: pytest.LogCaptureFixture,
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load()
    course_id = sandbox.world.courses.ids()[0]
    sandbox.world.destroy_course(course_id)
    warehouse.load(course_ids=[course_id])  # get_course_progresses answers 404 for it
    assert "vanished" in caplog.text
    assert warehouse.count("course_progresses", "course_id = %s", course_id) > 0
    assert (
        warehouse.count("course_progresses", "course_id = %s and _dlt_valid_to is null", course_id)
        == 0
    )


# ---- the prefetching helper ----------------------------------------------------------------


def test_prefetched_yields_every_item_in_order() -> None:
    from skyprep_source.read_ahead import prefetched

    assert list(prefetched(iter(range(50)), depth=2)) == list(range(50))


def _ahead_of_one(helper: str, make: Callable[[], Iterator[int]]) -> Iterator[int]:
    """One producer through `prefetched`, or through `read_ahead` among two more sources."""
    from skyprep_source.read_ahead import prefetched, read_ahead

    if helper == "prefetched":
        return prefetched(make(), depth=1)
    return read_ahead([make, lambda: iter([-1]), lambda: iter([-2])], workers=2, depth=1)


@pytest.mark.parametrize("helper", ["prefetched", "read_ahead"])
def test_the_producers_error_is_raised_in_the_consumer(helper: str) -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise SkyPrepRequestFailed("get_users failed 3 times in a row")

    consumer = _ahead_of_one(helper, failing)
    assert next(consumer) == 1
    with pytest.raises(SkyPrepRequestFailed, match="get_users"):
        next(consumer)


@pytest.mark.parametrize("helper", ["prefetched", "read_ahead"])
def test_the_producers_stop_when_the_consumer_stops(helper: str) -> None:
    produced: list[int] = []

    def endless() -> Iterator[int]:
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    consumer = _ahead_of_one(helper, endless)
    assert next(consumer) == 0
    consumer.close()
    settled = len(produced)
    time.sleep(0.3)
    assert len(produced) == settled <= 3  # the producer stopped a step or two ahead


def test_read_ahead_yields_every_source_in_order() -> None:
    from skyprep_source.read_ahead import read_ahead

    sources = [lambda n=n: iter(range(n * 10, n * 10 + n)) for n in range(8)]
    expected = [i for n in range(8) for i in range(n * 10, n * 10 + n)]
    assert list(read_ahead(sources, workers=2, depth=1)) == expected
    assert list(read_ahead(sources, workers=5, depth=3)) == expected
    assert list(read_ahead([], workers=2)) == []


def test_read_ahead_works_sources_at_once_and_stays_bounded() -> None:
    from skyprep_source.read_ahead import read_ahead

    running: list[int] = []
    peak_running = [0]
    produced = [0]
    lock = threading.Lock()

    def source(n: int) -> Iterator[int]:
        with lock:
            running.append(n)
            peak_running[0] = max(peak_running[0], len(running))
        try:
            for i in range(20):
                with lock:
                    produced[0] += 1
                time.sleep(0.002)
                yield i
        finally:
            with lock:
                running.remove(n)

    consumer = read_ahead([lambda n=n: source(n) for n in range(6)], workers=2, depth=2)
    assert next(consumer) == 0
    time.sleep(0.3)  # the producers run ahead until their queues are full
    assert peak_running[0] == 2  # the next source was read while the first was consumed
    assert produced[0] <= 2 * (2 + 1) + 1  # a few items ahead, never whole sources
    assert sum(1 for _ in consumer) == 6 * 20 - 1


def test_read_ahead_raises_a_sources_error_in_its_place() -> None:
    from skyprep_source.read_ahead import read_ahead

    def failing() -> Iterator[int]:
        yield 10
        raise SkyPrepRequestFailed("get_course_progresses failed 3 times in a row")

    consumer = read_ahead([lambda: iter([1, 2]), failing, lambda: iter([3])], workers=2)
    assert [next(consumer) for _ in range(3)] == [1, 2, 10]
    with pytest.raises(SkyPrepRequestFailed, match="get_course_progresses"):
        next(consumer)


def test_second_run_checks_multi_page_lists_once_only_with_verify_paging(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    users = len(sandbox.world.records("get_users"))
    minimum = users // 7 + 1
    warehouse = warehouse_for(sandbox)
    warehouse.load(page_size=7, verify_paging=True)
    assert sandbox.stats()["calls"]["get_users"] == minimum  # a first run: the minimum
    sandbox.reset_stats()
    warehouse.load(page_size=7, verify_paging=True)
    assert sandbox.stats()["calls"]["get_users"] == minimum + 1  # and a look at page 1
    sandbox.reset_stats()
    warehouse.load(page_size=7)  # the default: no look back (confirm-before-retire instead)
    assert sandbox.stats()["calls"]["get_users"] == minimum
    assert "get_user" not in sandbox.stats()["calls"]  # nothing missing: nothing to confirm
