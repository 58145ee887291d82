"""The call plan of a later run: priced from what the destination and the pipeline's state
already know (rows per list, progresses per course, the re-check of multi-page lists)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import dlt
import pytest

from skyprep_sandbox import Sandbox
from skyprep_source.job import RunOptions, run_load
from skyprep_source.plan import CONFIRM_LINE, KnownFacts, known_facts, plan_run
from skyprep_source.retirement import RunReport

PAGE_SIZE = 5  # the tiny world's courses hold ~16 progresses each: several pages per course


@pytest.fixture(autouse=True)
def _stamp_load_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def offline_config(**options: Any) -> dict[str, Any]:
    # an address nobody answers: any call would fail the test
    return {"api_key": "k", "acct_key": "a.skyprepapp.com", "base_url": "http://127.0.0.1:9/x"} | (
        options
    )


def sandbox_run_options(sandbox: Sandbox, tmp_path: Path, **source_options: Any) -> RunOptions:
    """The job's load (no models) against the sandbox, rate budget off, into tmp_path."""
    config = {
        "api_key": sandbox.api_key,
        "acct_key": sandbox.acct_key,
        "base_url": sandbox.base_url,
        "requests_per_minute": None,
        "request_timeout": 5.0,
        "page_size": PAGE_SIZE,
    } | source_options
    return RunOptions(
        destination=dlt.destinations.duckdb(str(tmp_path / "skyprep.duckdb")),
        pipelines_dir=str(tmp_path / "pipelines"),
        source_options=config,
        build_models=False,
    )


def test_a_later_runs_plan_is_within_ten_percent_of_its_calls(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # priced with its re-checks (verify_paging is off by default)
    options = sandbox_run_options(sandbox, tmp_path, verify_paging=True)
    first = run_load(options)
    assert first.plan.planning_calls > 0
    sandbox.reset_stats()
    second = run_load(options)
    plan = second.plan
    actual = int(sandbox.stats()["calls_total"]) - plan.planning_calls
    assert abs(plan.total_calls - actual) <= 0.1 * actual, (plan.total_calls, actual, str(plan))
    costs = {cost.resource: cost for cost in plan.costs}
    # every course's progress list took several pages, and is re-checked once after them
    assert "re-checks of page 1" in costs["course_progresses"].basis
    assert costs["course_progresses"].calls == sandbox.stats()["calls"]["get_course_progresses"]
    # without what the first run learned (a first run's plan: progresses priced from a sample
    # of courses, no re-checks of page 1), the plan of the same run is further off
    blind = plan_run(options.source_options).total_calls
    assert blind < actual, (blind, actual)
    assert abs(blind - actual) > abs(plan.total_calls - actual), (blind, plan.total_calls)
    # a dry run (`skyprep run --plan`) reads the same facts: only the counts it asks afresh
    sandbox.reset_stats()
    dry = run_load(replace(options, plan_only=True))
    assert dry.plan.total_calls == plan.total_calls
    assert set(sandbox.stats()["calls"]) <= {"get_data", "get_instructor_led_training_timeslots"}


def users_alike(sandbox: Sandbox, count: int) -> list[int]:
    """`count` users of the sandbox with as many progresses and group memberships each (and
    none a power user): deleting two of them costs about the same confirming calls as two
    others."""
    world = sandbox.world
    alike: dict[tuple[int, int], list[int]] = {}
    for user_id in world.users.ids():
        if user_id in world.power_users:
            continue
        groups = sum(1 for members in world.group_members.values() if user_id in members)
        progresses = len(world.progresses_by_user.get(user_id, {}))
        alike.setdefault((progresses, groups), []).append(user_id)
    users = max(alike.values(), key=len)
    assert len(users) >= count, alike
    return users[:count]


def test_a_later_runs_plan_prices_the_confirming_calls_the_run_before_made(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    options = sandbox_run_options(sandbox, tmp_path)
    leavers = users_alike(sandbox, 4)
    groups = len(sandbox.world.user_groups)
    run_load(options)

    # night 2: two users leave (with their progresses and memberships); each missing user
    # and progress is asked for by its own route, each group that lost a member read again
    for user_id in leavers[:2]:
        sandbox.world.destroy_user(user_id)
    sandbox.reset_stats()
    second = run_load(options)
    assert CONFIRM_LINE not in {cost.resource for cost in second.plan.costs}  # not known yet
    assert any("missing from its list" in note for note in second.plan.notes)
    report = RunReport.latest()
    assert report is not None
    confirm_calls = report.confirm_calls
    made = sandbox.stats()["calls"]
    assert confirm_calls["users"] == made["get_user"] == 2
    assert confirm_calls["course_progresses"] == made["get_course_progress"] > 0
    assert confirm_calls["user_group_members"] == made["get_user_group"] - groups > 0
    confirming = sum(confirm_calls.values())

    # night 3: two users alike leave; the plan prices the confirming calls night 2 made
    for user_id in leavers[2:]:
        sandbox.world.destroy_user(user_id)
    sandbox.reset_stats()
    third = run_load(options)
    plan = third.plan
    costs = {cost.resource: cost for cost in plan.costs}
    assert CONFIRM_LINE in costs, str(plan)
    line = costs[CONFIRM_LINE]
    assert line.calls == confirming, str(plan)
    assert f"users {confirm_calls['users']}" in line.basis
    assert not any("missing from its list" in note for note in plan.notes)
    actual = int(sandbox.stats()["calls_total"]) - plan.planning_calls
    assert abs(plan.total_calls - actual) <= 0.05 * actual, (plan.total_calls, actual, str(plan))


def test_confirming_calls_are_priced_from_the_last_run_at_most_max_confirm_calls() -> None:
    states = {
        "users": {"snapshot_loaded": True, "confirm_calls": 7},
        "course_progresses": {"snapshot_loaded": True, "confirm_calls": 900},
        "courses": {"snapshot_loaded": True, "confirm_calls": 0},
        "skills": {"snapshot_loaded": True, "confirm_calls": 40},  # not selected: not priced
    }
    plan = plan_run(
        offline_config(max_confirm_calls=500),
        ["users", "course_progresses"],
        known_counts={"users": 10, "courses": 5, "course_progresses": 50},
        resource_states=states,
    )
    line = next(cost for cost in plan.costs if cost.resource == CONFIRM_LINE)
    assert line.calls == 7 + 500
    assert line.basis.startswith("as many as the last run made (course_progresses 500, users 7)")
    assert not plan.notes
    # a table that loaded before but has no count yet (the run that first confirms): a note
    uncounted = plan_run(
        offline_config(),
        ["users"],
        known_counts={"users": 10},
        resource_states={"users": {"snapshot_loaded": True}},
    )
    assert CONFIRM_LINE not in {cost.resource for cost in uncounted.costs}
    assert any("missing from its list" in note for note in uncounted.notes)
    # a first run confirms nothing: neither line nor note
    first = plan_run(offline_config(), ["users"], known_counts={"users": 10})
    assert CONFIRM_LINE not in {cost.resource for cost in first.costs} and not first.notes


def test_progress_lists_are_priced_per_course_with_their_re_check() -> None:
    known = {"courses": 5, "users": 100}
    per_course = {1: 25, 2: 9, 3: 10}  # 3, 1 and 2 pages; courses 4 and 5 unseen: 1 page each
    first = plan_run(
        offline_config(page_size=10),
        ["course_progresses"],
        known_counts=known,
        course_progress_counts=per_course,
    )
    progresses = next(c for c in first.costs if c.resource == "course_progresses")
    assert progresses.calls == 3 + 1 + 2 + 2
    states = {"course_progresses": {"snapshot_loaded": True}, "courses": {"snapshot_loaded": True}}
    later = plan_run(
        offline_config(page_size=10, verify_paging=True),
        ["course_progresses"],
        known_counts=known,
        course_progress_counts=per_course,
        resource_states=states,
    )
    progresses = next(c for c in later.costs if c.resource == "course_progresses")
    assert progresses.calls == 3 + 1 + 2 + 2 + 2  # the two multi-page lists re-checked
    unverified = plan_run(
        offline_config(page_size=10, verify_paging=False),
        ["course_progresses"],
        known_counts=known,
        course_progress_counts=per_course,
        resource_states=states,
    )
    assert next(c for c in unverified.costs if c.resource == "course_progresses").calls == 8
    listed = plan_run(
        offline_config(page_size=10, course_ids=[1, 2, 7]),
        ["course_progresses"],
        known_counts=known,
        course_progress_counts=per_course,
    )
    assert next(c for c in listed.costs if c.resource == "course_progresses").calls == 3 + 1 + 1


def test_a_snapshot_list_that_loaded_before_pays_its_re_check() -> None:
    states = {"materials": {"snapshot_loaded": True}}
    plan = plan_run(
        offline_config(page_size=10, verify_paging=True),
        ["materials", "payments"],
        known_counts={"materials": 25, "payments": 25},
        resource_states={**states, "payments": {"snapshot_loaded": True}},
    )
    calls = {c.resource: c.calls for c in plan.costs}
    assert calls["materials"] == 3 + 1
    assert calls["payments"] == 3  # payments are never re-checked (not a snapshot)


def test_unreadable_earlier_runs_fall_back_to_the_first_run_estimate() -> None:
    class Broken:
        first_run = False
        default_schema_name = "skyprep"

        @property
        def default_schema(self) -> Any:
            raise RuntimeError("no destination")

    assert known_facts(Broken(), "skyprep", offline_config()) == KnownFacts()


def test_payments_are_priced_whole_when_their_full_read_is_due() -> None:
    from datetime import datetime, timezone

    from skyprep_source.plan import _Config, _payments_cutoff

    now = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    state = {
        "last_created_at": "2026-11-27T12:00:00+00:00",
        "last_full_read_at": "2026-11-24T12:00:00+00:00",
    }
    # the default: a full read every 7 days, the last 4 days ago: the window (1 + 7 days)
    assert _payments_cutoff(state, _Config({}), now) == datetime(
        2026, 11, 20, 12, tzinfo=timezone.utc
    )
    # due: every payment is read, so every payment is priced
    assert _payments_cutoff(state, _Config({"payments_full_read_days": 3}), now) is None
    assert _payments_cutoff(state, _Config({"payments_full_read_days": None}), now) is not None
