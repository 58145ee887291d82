"""The call plan: its estimate against the calls a run really makes on the sandbox, what it
names, and how the job shows it (`skyprep run --plan`, `--max-calls`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import dlt
import pytest

from skyprep_sandbox import Sandbox, World
from skyprep_source import DATASET_NAME, skyprep
from skyprep_source.cli import main
from skyprep_source.client import SkyPrepClient
from skyprep_source.job import ExitCode
from skyprep_source.plan import CallPlanExceeded, available_resources, list_calls, plan_run

# what the planner knows without asking: no call is made
KNOWN = {
    "users": 3000,
    "courses": 60,
    # known too: without it an account of more users than a page holds has its progresses
    # priced from a sample of courses' lists, read to plan
    "course_progresses": 19045,
    "user_groups": 40,
    "skills": 30,
    "competencies": 12,
    "saved_advanced_reports": 3,
    "instructor_led_training_timeslots": 24,
}


@pytest.fixture(autouse=True)
def _stamp_load_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


def config_for(sandbox: Sandbox, **options: Any) -> dict[str, Any]:
    return {
        "api_key": sandbox.api_key,
        "acct_key": sandbox.acct_key,
        "base_url": sandbox.base_url,
        "requests_per_minute": None,
        "request_timeout": 5.0,
        "async_report_poll_s": 0.01,
        **options,
    }


def run_calls(sandbox: Sandbox, root: Path, config: dict[str, Any]) -> int:
    """The calls one run of the source makes on the sandbox."""
    sandbox.reset_stats()
    pipeline = dlt.pipeline(
        pipeline_name="skyprep_plan",
        pipelines_dir=str(root / "pipelines"),
        destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
        dataset_name=DATASET_NAME,
    )
    pipeline.run(skyprep(**config))
    return int(sandbox.stats()["calls_total"])


def offline_config(**options: Any) -> dict[str, Any]:
    # an address nobody answers: any call would fail the test
    return {"api_key": "k", "acct_key": "a.skyprepapp.com", "base_url": "http://127.0.0.1:9/x"} | (
        options
    )


def test_plan_is_within_ten_percent_of_a_default_run(sandbox: Sandbox, tmp_path: Path) -> None:
    config = config_for(sandbox)
    plan = plan_run(config)
    assert plan.planning_calls > 0
    actual = run_calls(sandbox, tmp_path, config)
    assert abs(plan.total_calls - actual) <= 0.1 * actual, (plan.total_calls, actual, str(plan))


def test_a_first_runs_plan_prices_multi_page_progress_lists_from_a_sample(
    sandbox_factory: Callable[..., Sandbox], tmp_path: Path
) -> None:
    # more users than a page holds, and the courses' progress lists of several pages: the
    # large world at page size 1,000 (where "one page per course" planned 1,984 of 2,526)
    world = World.generate(seed=7, scale="demo")
    sandbox = sandbox_factory(world)
    config = config_for(sandbox, page_size=100)
    plan = plan_run(config)
    costs = {cost.resource: cost for cost in plan.costs}
    assert "a sample of 25 courses" in costs["course_progresses"].basis
    actual = run_calls(sandbox, tmp_path, config)
    progress_calls = sandbox.stats()["calls"]["get_course_progresses"]
    assert progress_calls > 1.5 * len(world.courses.ids())  # most lists took several pages
    assert abs(costs["course_progresses"].calls - progress_calls) <= 0.1 * progress_calls
    assert abs(plan.total_calls - actual) <= 0.1 * actual, (plan.total_calls, actual, str(plan))


def test_plan_is_within_ten_percent_with_every_opt_in_resource(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    world = sandbox.world
    config = config_for(
        sandbox,
        per_user_resources=["user_gamification_balances", "user_skill_balances", "user_courses"],
        course_item_progress_course_ids=[world.courses.ids()[0]],
        manager_permission_pairs=[(world.users.ids()[0], world.user_groups.ids()[0])],
        async_reports=["all_users"],
    )
    plan = plan_run(config)
    per_user = {c.resource: c.calls for c in plan.costs}
    assert per_user["user_gamification_balances"] == len(world.users)
    assert per_user["user_courses"] == len(world.users)
    actual = run_calls(sandbox, tmp_path, config)
    assert abs(plan.total_calls - actual) <= 0.1 * actual, (plan.total_calls, actual, str(plan))


def test_plan_knows_the_resources_the_source_creates(sandbox: Sandbox) -> None:
    for options in (
        {},
        {"saved_reports": False},
        {
            "per_user_resources": ["user_skill_balances"],
            "manager_permission_pairs": [[1, 2]],
            "course_item_progress_course_ids": [3],
            "async_reports": ["all_courses"],
        },
    ):
        config = config_for(sandbox, **options)
        assert available_resources(config) == list(skyprep(**config).resources.keys()), options


def test_list_calls_match_what_the_client_pays_for_a_paged_list(sandbox: Sandbox) -> None:
    users = len(sandbox.world.users)  # 30
    for page_size in (7, 10, 1000):
        with SkyPrepClient(
            sandbox.api_key, sandbox.acct_key, sandbox.base_url, page_size=page_size
        ) as client:
            client.paging.honours_page_size = True  # learned earlier in a run
            sandbox.reset_stats()
            assert sum(len(page) for page in client.pages("get_users")) == users
        assert sandbox.stats()["calls_total"] == list_calls(users, page_size), page_size


def test_selecting_a_fan_out_prices_the_list_it_fans_out_over() -> None:
    plan = plan_run(offline_config(), ["competency_awards"], known_counts=KNOWN)
    parent, awards = (cost for cost in plan.costs if cost.resource != "(paging check)")
    assert (parent.resource, parent.loaded) == ("competencies", False)
    assert (awards.resource, awards.calls) == ("competency_awards", 12)
    assert plan.planning_calls == 0


def test_plan_check_fails_naming_the_costliest_resources() -> None:
    config = offline_config(per_user_resources=["user_gamification_balances"])
    plan = plan_run(config, known_counts=KNOWN)
    plan.check(max_calls=None)
    plan.check(max_calls=plan.total_calls)
    with pytest.raises(CallPlanExceeded) as exceeded:
        plan.check(max_calls=500)
    message = str(exceeded.value)
    assert f"about {plan.total_calls} SkyPrep API calls" in message
    assert "most go to user_gamification_balances (3000 calls)" in message
    assert "--max-calls" in message


def test_plan_prices_time_at_the_rate_budget() -> None:
    config = offline_config(per_user_resources=["user_gamification_balances"])
    plan = plan_run(config, known_counts=KNOWN)  # about 3.3k calls at 100 per minute
    windows = -(-plan.total_calls // 100) - 1
    assert plan.seconds == windows * 60.0
    text = str(plan)
    assert text.startswith(f"call plan: about {plan.total_calls} API calls, about {windows} min")
    assert "user_gamification_balances" in text.splitlines()[1]  # the costliest first
    unbounded = plan_run(offline_config(requests_per_minute=None), known_counts=KNOWN)
    assert "no rate budget" in str(unbounded)


# ---- the job -----------------------------------------------------------------------------------


@pytest.fixture
def job_env(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOURCES__SKYPREP__API_KEY", sandbox.api_key)
    monkeypatch.setenv("SOURCES__SKYPREP__ACCT_KEY", sandbox.acct_key)
    monkeypatch.setenv("SOURCES__SKYPREP__BASE_URL", sandbox.base_url)
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    return sandbox


def test_run_with_plan_prints_the_plan_and_makes_no_data_call(
    job_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--plan", "--requests-per-minute", "off"])
    out = capsys.readouterr().out
    assert code == ExitCode.OK
    assert out.startswith("call plan: about ")
    assert "no rate budget" in out.splitlines()[0]  # --requests-per-minute off reaches the plan
    assert "course_progresses" in out and "user_group_members" in out
    # only the planner's counts and short lists were read
    assert set(job_env.stats()["calls"]) <= {
        "get_data",
        "get_skills",
        "get_competencies",
        "get_saved_advanced_reports",
        "get_instructor_led_training_timeslots",
    }
    assert not (Path.cwd() / "skyprep.duckdb").exists()


def test_run_above_max_calls_fails_before_its_first_data_call(
    job_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "--max-calls", "10", "--requests-per-minute", "off", "--quiet"])
    err = capsys.readouterr().err
    assert code == ExitCode.CONFIG
    assert "more than max_calls=10; most go to " in err
    assert "get_users" not in job_env.stats()["calls"]
    assert not (Path.cwd() / "skyprep.duckdb").exists()


def test_every_run_prints_its_plan_first(
    job_env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--resources", "users,courses", "--no-models", "--requests-per-minute", "off"]
    )
    captured = capsys.readouterr()
    assert code == ExitCode.OK, captured.err
    first = captured.err.splitlines()[0]
    assert first.startswith("[skyprep] call plan: about 3 API calls")  # 2 lists + paging check
