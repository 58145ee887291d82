"""The source into a real PostgreSQL destination ("any dlt destination"), end to end.

The tiny sandbox world with every default resource goes through `skyprep()` into dlt's
`postgres` destination in a schema of its own: a second run without upstream change rewrites
nothing, a day later the changed records get new versions and the deleted ones are retired,
and the models build there. The timeslots' scd2 window is checked on a server whose session
time zone is far from UTC. Skipped without a server locally, failed in CI (as the other
PostgreSQL tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import dlt
import pytest
import requests
from test_models_marts import postgres_dsn, with_password

from skyprep_sandbox import Sandbox, World
from skyprep_source import build_models, skyprep

pytestmark = pytest.mark.postgres

SLOTS = "instructor_led_training_timeslots"
# UTC+14: its midnight is 10:00 UTC the day before
FAR_EAST = "Pacific/Kiritimati"


def postgres_pipeline(tmp_path: Path, session_timezone: str | None = None) -> dlt.Pipeline:
    """A pipeline into a fresh, uniquely named schema on the test server."""
    dsn = with_password(postgres_dsn())
    if session_timezone:
        dsn += f"?options=-ctimezone%3D{session_timezone.replace('/', '%2F')}"
    suffix = uuid.uuid4().hex[:8]
    return dlt.pipeline(
        pipeline_name=f"pg_e2e_{suffix}",
        destination=dlt.destinations.postgres(credentials=dsn),
        dataset_name=f"skyprep_data_{suffix}",
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def drop_schemas(pipeline: dlt.Pipeline, *others: str) -> None:
    with pipeline.sql_client() as client:
        # dlt's merge loads leave a <dataset>_staging schema beside the dataset
        for name in (pipeline.dataset_name, f"{pipeline.dataset_name}_staging", *others):
            with client.with_alternative_dataset_name(name):
                if client.has_dataset():
                    client.drop_dataset()


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[dlt.Pipeline]:
    made = postgres_pipeline(tmp_path)
    yield made
    drop_schemas(made, analytics_of(made))


def analytics_of(pipeline: dlt.Pipeline) -> str:
    return pipeline.dataset_name.replace("skyprep_data", "skyprep_analytics")


def load(pipeline: dlt.Pipeline, sandbox: Sandbox, *resources: str, **options: Any) -> None:
    source = skyprep(
        api_key=sandbox.api_key,
        acct_key=sandbox.acct_key,
        base_url=sandbox.base_url,
        requests_per_minute=None,
        max_attempts=3,
        backoff_base_s=0.01,
        backoff_max_s=0.05,
        request_timeout=10.0,
        **options,
    )
    info = pipeline.run(source.with_resources(*resources) if resources else source)
    info.raise_on_failed_jobs()


def scalar(pipeline: dlt.Pipeline, sql: str) -> Any:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(sql)
    return rows[0][0] if rows else None


def data_tables(pipeline: dlt.Pipeline) -> dict[str, str]:
    """Every loaded data table and its write disposition."""
    return {
        str(table["name"]): str(table.get("write_disposition"))
        for table in pipeline.default_schema.data_tables(seen_data_only=True)
    }


def row_counts(pipeline: dlt.Pipeline) -> dict[str, int]:
    dataset = pipeline.dataset_name
    return {
        name: int(scalar(pipeline, f'select count(*) from "{dataset}"."{name}"'))
        for name in data_tables(pipeline)
    }


def retired_rows(pipeline: dlt.Pipeline, table: str) -> int:
    dataset = pipeline.dataset_name
    sql = f'select count(*) from "{dataset}"."{table}" where _dlt_valid_to is not null'
    return int(scalar(pipeline, sql))


def scd2_tables(pipeline: dlt.Pipeline) -> list[str]:
    return [
        str(table["name"])
        for table in pipeline.default_schema.data_tables(seen_data_only=True)
        if "_dlt_valid_to" in table.get("columns", {})
    ]


def current_ids(pipeline: dlt.Pipeline, table: str) -> set[int]:
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            f'select id from "{pipeline.dataset_name}"."{table}" where _dlt_valid_to is null'
        )
    return {int(row[0]) for row in rows or ()}


def test_every_default_resource_loads_reruns_changes_and_builds_on_postgres(
    pipeline: dlt.Pipeline, tiny_world: World
) -> None:
    with Sandbox(tiny_world) as sandbox:
        load(pipeline, sandbox)
        first = row_counts(pipeline)
        load(pipeline, sandbox)
        second = row_counts(pipeline)
        retired_after_rerun = {name: retired_rows(pipeline, name) for name in scd2_tables(pipeline)}
        sandbox.advance(days=5)
        load(pipeline, sandbox)
        third = row_counts(pipeline)

    dispositions = data_tables(pipeline)
    assert {"users", "courses", "course_progresses", SLOTS, "platform_counts"} <= set(first)
    assert any(name.startswith("saved_report__") for name in first)
    assert all(first[name] > 0 for name in ("users", "courses", "course_progresses", SLOTS))
    # the second run rewrote nothing: same rows everywhere, nothing retired; only the
    # append-only history gained its one row for the run
    for name, count in first.items():
        expected = count + 1 if dispositions[name] == "append" else count
        assert second[name] == expected, name
    assert {"users", "course_progresses", SLOTS} <= set(retired_after_rerun)
    assert set(retired_after_rerun.values()) == {0}, retired_after_rerun
    # five days later: changed records have new versions, the old ones are retired
    assert retired_rows(pipeline, "course_progresses") > 0
    assert third["course_progresses"] > second["course_progresses"]
    assert current_ids(pipeline, "users") == {
        int(user["id"]) for user in tiny_world.records("get_users")
    }
    current_slots = {int(slot["id"]) for slot in tiny_world.records(f"get_{SLOTS}")}
    assert current_ids(pipeline, SLOTS) == current_slots

    built = build_models(pipeline, analytics_of(pipeline))
    assert built.skipped == {}
    assert {"agg_course_completion", "agg_user_compliance", "fct_course_progress"} <= set(
        built.built
    )
    assert built.rows["fct_course_progress"] == len(
        [
            record
            for course in tiny_world.records("get_courses")
            for record in tiny_world.records("get_course_progresses", course_id=course["id"])
        ]
    )


def test_timeslot_window_is_midnight_utc_whatever_the_session_time_zone(
    tmp_path: Path, tiny_world: World
) -> None:
    """A session the day before the re-read window lies outside it in UTC, but inside it if
    the window's start date were read in a UTC+14 session: it must keep its version."""
    today = datetime.now(timezone.utc).date()
    evening_day = today - timedelta(days=40)
    evening = add_timeslot(tiny_world, evening_day, hour=20)
    newest = max(tiny_world.timeslots.ids(), key=lambda tid: tiny_world.timeslots.meta[tid][1])
    pipeline = postgres_pipeline(tmp_path, session_timezone=FAR_EAST)
    try:
        with Sandbox(tiny_world) as sandbox:
            load(pipeline, sandbox, SLOTS)
            assert {evening, newest} <= current_ids(pipeline, SLOTS)
            delete_timeslot(sandbox, newest)
            # the next window starts the day after the evening session
            lookback = (today - (evening_day + timedelta(days=1))).days
            load(pipeline, sandbox, SLOTS, timeslots_lookback_days=lookback)
        current = current_ids(pipeline, SLOTS)
        assert newest not in current, "a session deleted inside the window is retired"
        assert evening in current, "a session before the window keeps its last version"
        assert scalar(pipeline, "show timezone") == FAR_EAST
    finally:
        drop_schemas(pipeline)


def add_timeslot(world: World, day: date, hour: int) -> int:
    """A timeslot of an existing instructor-led training starting `day` at `hour`:00 UTC."""
    begins = datetime.combine(day, time(hour), timezone.utc)
    stamp = begins.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with world.lock:
        owner = next(iter(world.ilts.ids()))
        slot_id = world.next_id("timeslot")
        world.timeslots.put(
            slot_id,
            {
                "id": slot_id,
                "instructor_led_training_id": owner,
                "description": "Evening session",
                "start_date": stamp,
                "end_date": stamp,
                "display_timezone": "UTC",
                "created_at": stamp,
                "updated_at": stamp,
            },
            (owner, int(begins.timestamp())),
        )
    return slot_id


def delete_timeslot(sandbox: Sandbox, slot_id: int) -> None:
    """As an LMS admin would: through the sandbox's own mutating route."""
    response = requests.post(
        f"{sandbox.base_url}/delete_instructor_led_training_timeslot",
        data={
            "api_key": sandbox.api_key,
            "acct_key": sandbox.acct_key,
            "instructor_led_training_timeslot_id": slot_id,
        },
        timeout=10,
    )
    response.raise_for_status()


def test_held_retirement_and_a_skipped_group_fan_out_retire_nothing_on_postgres(
    pipeline: dlt.Pipeline, tiny_world: World
) -> None:
    """The held scope (`id IN (SELECT id FROM {staging_table})`, and its two-column form for
    `user_group_members`) is valid SQL on PostgreSQL and retires nothing."""
    from skyprep_source.retirement import RunReport

    with Sandbox(tiny_world) as sandbox:
        load(pipeline, sandbox)
        users = current_ids(pipeline, "users")
        members = int(
            scalar(
                pipeline,
                f'select count(*) from "{pipeline.dataset_name}"."user_group_members" '
                "where _dlt_valid_to is null",
            )
        )
        sandbox.inject_fault("empty_list", route="get_users", count=1)
        sandbox.inject_fault("error_object", route="get_user_group", count=3)
        load(pipeline, sandbox, retire_floor=5)
    report = RunReport.latest()
    assert report is not None
    assert "users" in report.held and "user_group_members" in report.skipped
    assert current_ids(pipeline, "users") == users
    assert retired_rows(pipeline, "users") == 0
    assert retired_rows(pipeline, "user_group_members") == 0
    assert (
        int(
            scalar(
                pipeline,
                f'select count(*) from "{pipeline.dataset_name}"."user_group_members" '
                "where _dlt_valid_to is null",
            )
        )
        == members
    )
