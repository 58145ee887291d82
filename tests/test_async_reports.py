"""Async reports end to end: request, poll, download, load — and the report that never
finishes, the one that fails, and where the credentials may go."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from skyprep_sandbox import Sandbox
from skyprep_source import DATASET_NAME, skyprep
from skyprep_source.async_reports import (
    AsyncReportRequest,
    SkyPrepAsyncReportFailed,
    async_reports_resource,
    parse_async_reports,
    status_route,
)
from skyprep_source.client import SkyPrepClient
from skyprep_source.errors import SkyPrepAPIError

FAST = {"async_report_poll_s": 0.01, "async_report_timeout_s": 5.0}


@pytest.fixture(autouse=True)
def _stamp_load_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def pipeline_in(root: Path) -> Any:
    return dlt.pipeline(
        pipeline_name="skyprep_async",
        pipelines_dir=str(root / "pipelines"),
        destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
        dataset_name=DATASET_NAME,
    )


def source_for(sandbox: Sandbox, **options: Any) -> Any:
    return skyprep(
        api_key=sandbox.api_key,
        acct_key=sandbox.acct_key,
        base_url=sandbox.base_url,
        requests_per_minute=None,
        max_attempts=2,
        backoff_base_s=0.01,
        backoff_max_s=0.02,
        request_timeout=5.0,
        **options,
    )


def table_names(pipeline: Any) -> set[str]:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            "select table_name from information_schema.tables where table_schema = %s",
            DATASET_NAME,
        )
    return {row[0] for row in rows}


def root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def test_listed_reports_load_as_typed_report_tables(sandbox: Sandbox, tmp_path: Path) -> None:
    world = sandbox.world
    course_id = world.courses.ids()[0]
    pipeline = pipeline_in(tmp_path)
    source = source_for(
        sandbox, async_reports=["all_users", ("single_course", {"course_id": course_id})], **FAST
    )
    pipeline.run(source.with_resources("async_reports"))

    users_table = f"{DATASET_NAME}.report__all_users"
    course_table = f"report__single_course__course_id_{course_id}"
    assert {"report__all_users", course_table} <= table_names(pipeline)
    with pipeline.sql_client() as client:
        user_ids = {row[0] for row in client.execute_sql(f'select "user_id" from {users_table}')}
        types = dict(
            client.execute_sql(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = %s and table_name = 'report__all_users'",
                DATASET_NAME,
            )
        )
        course_rows = client.execute_sql(f"select count(*) from {DATASET_NAME}.{course_table}")
    assert user_ids == set(world.users.ids())
    assert types["user_id"] == "BIGINT"  # typed like a saved report: "User ID" -> user_id
    assert course_rows[0][0] == len(world.progresses_by_course[course_id])
    stats = sandbox.stats()
    assert stats["calls"]["generate_async_report"] == 2
    assert stats["calls"]["get_async_report"] >= 4  # pending once, then complete, each
    downloads = [e for e in sandbox.request_log if e["route"] == "download_async_report"]
    assert len(downloads) == 2 and all(e["key_source"] is None for e in downloads)
    assert all(e["key_source"] == "body" for e in sandbox.request_log if e not in downloads)


def test_a_report_that_never_finishes_fails_the_run_clearly_and_loads_nothing(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(async_report_mode="never")
    pipeline = pipeline_in(tmp_path)
    source = source_for(
        sandbox,
        async_reports=["all_users"],
        async_report_poll_s=0.01,
        async_report_timeout_s=0.2,
    )
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(source.with_resources("users", "async_reports"))
    cause = root_cause(failed.value)
    assert isinstance(cause, SkyPrepAsyncReportFailed)
    assert "report__all_users was still pending" in str(cause)
    assert "async_report_timeout_s" in str(cause)
    assert sandbox.stats()["calls"]["get_async_report"] >= 2  # it polled, then gave up
    assert not pipeline.list_completed_load_packages()
    assert not {"users", "report__all_users"} & tables_if_any(pipeline, tmp_path)


def test_a_failed_report_fails_the_run_with_the_servers_reason(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = sandbox_factory(async_report_mode="fail")
    pipeline = pipeline_in(tmp_path)
    with pytest.raises(PipelineStepFailed) as failed:
        pipeline.run(source_for(sandbox, async_reports=["all_courses"], **FAST))
    cause = root_cause(failed.value)
    assert isinstance(cause, SkyPrepAsyncReportFailed)
    assert "report__all_courses failed: The report could not be generated" in str(cause)
    assert sandbox.stats()["calls"]["get_async_report"] == 1
    assert not pipeline.list_completed_load_packages()


def test_polling_waits_double_until_the_report_is_done(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sandbox = sandbox_factory(async_report_pending_polls=3)
    waits: list[float] = []
    with SkyPrepClient(sandbox.api_key, sandbox.acct_key, sandbox.base_url) as client:
        resource = async_reports_resource(
            client, ["all_courses"], timeout_s=30.0, poll_s=0.5, sleep=waits.append
        )
        (item,) = list(resource)
    assert waits == [0.5, 1.0, 2.0]  # three pending answers, then complete
    assert item.num_rows == len(sandbox.world.courses)


def test_status_url_names_a_route_polled_at_base_url_never_its_own_host() -> None:
    route, query = status_route(
        "https://api.skyprepapp.com/admin/api/get_async_report?report_id=1234",
        "https://api.skyprep.io/admin/api",
    )
    assert (route, query) == ("get_async_report", {"report_id": "1234"})


def test_status_url_carrying_credentials_is_refused() -> None:
    with pytest.raises(SkyPrepAPIError, match="carrying credentials"):
        status_route(
            "https://evil.example/admin/api/get_async_report?report_id=1&api_key=x",
            "https://api.skyprep.io/admin/api",
        )


def test_async_reports_accept_names_pairs_and_mappings_and_refuse_doubles() -> None:
    parsed = parse_async_reports(
        [
            "all_users",
            ("single_course", {"course_id": 5}),
            {"report_type": "single_user", "user_id": 7},
        ]
    )
    assert parsed == [
        AsyncReportRequest("all_users"),
        AsyncReportRequest("single_course", {"course_id": 5}),
        AsyncReportRequest("single_user", {"user_id": 7}),
    ]
    assert [r.table_name for r in parsed] == [
        "report__all_users",
        "report__single_course__course_id_5",
        "report__single_user__user_id_7",
    ]
    with pytest.raises(ValueError, match="listed twice"):
        parse_async_reports(["all_users", "all_users"])
    with pytest.raises(ValueError, match="report type"):
        parse_async_reports([42])


def tables_if_any(pipeline: Any, root: Path) -> set[str]:
    """The dataset's tables; none when the failed run never created the database file."""
    if not (root / "skyprep.duckdb").exists():
        return set()
    return table_names(pipeline) if DATASET_NAME in _schemas(root) else set()


def _schemas(root: Path) -> set[str]:
    import duckdb

    with duckdb.connect(str(root / "skyprep.duckdb"), read_only=True) as connection:
        rows = connection.execute("select schema_name from information_schema.schemata").fetchall()
    return {row[0] for row in rows}
