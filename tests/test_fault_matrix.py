"""The fault matrix: each way SkyPrep can answer wrongly, driven through the sandbox over real
HTTP into a real DuckDB file, and what it does to the destination (docs/source.md, "What can
go wrong"). Every test loads once cleanly, arms a fault, loads again and looks at the tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from skyprep_sandbox import Sandbox
from skyprep_source import DATASET_NAME, skyprep
from skyprep_source.errors import SkyPrepRequestFailed
from skyprep_source.retirement import RunReport

SCD2 = "_dlt_valid_to is null"


class Warehouse:
    """A pipeline into a DuckDB file under tmp_path, loading from one sandbox."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self.sandbox = sandbox
        self.pipeline = dlt.pipeline(
            pipeline_name="skyprep_faults",
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
            dataset_name=DATASET_NAME,
        )

    def load(self, **options: Any) -> RunReport:
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
        self.pipeline.run(skyprep(**settings))
        report = RunReport.latest()
        assert report is not None
        return report

    def count(self, table: str, where: str = "true") -> int:
        sql = f"select count(*) from {DATASET_NAME}.{table} where {where}"
        with self.pipeline.sql_client() as client:
            return int(client.execute_sql(sql)[0][0])

    def state(self, *tables: str) -> dict[str, tuple[int, int]]:
        """(current rows, all rows) per table: what a run may not change."""
        return {t: (self.count(t, SCD2), self.count(t)) for t in tables}


@pytest.fixture
def warehouse(sandbox: Sandbox, tmp_path: Path) -> Iterator[Warehouse]:
    made = Warehouse(sandbox, tmp_path)
    made.load()
    sandbox.reset_stats()
    yield made


def root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None:
        error = error.__cause__
    return error


# ---- wrong-shaped answers of a core list: never an empty snapshot ---------------------------


@pytest.mark.parametrize("kind", ["empty_object", "error_object"])
def test_given_one_empty_or_error_object_for_users_when_read_then_retried_and_nothing_retired(
    sandbox: Sandbox, warehouse: Warehouse, kind: str
) -> None:
    before = warehouse.state("users")
    sandbox.inject_fault(kind, route="get_users", count=1)
    report = warehouse.load()
    # the glitch, then the list as a clean run reads it (its short page 1 and a confirming page 2)
    assert sandbox.stats()["calls"]["get_users"] == 1 + 2
    assert warehouse.state("users") == before
    assert not report.held and not report.skipped


def test_given_users_answering_an_empty_object_every_time_then_the_run_fails_and_loads_nothing(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    before = warehouse.state("users", "course_progresses")
    sandbox.inject_fault("empty_object", route="get_users", count=10)
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load()
    assert isinstance(root_cause(raised.value), SkyPrepRequestFailed)
    assert warehouse.state("users", "course_progresses") == before


def test_given_an_empty_users_list_at_200_then_each_missing_user_is_confirmed_and_kept(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    users = warehouse.count("users", SCD2)
    before = warehouse.state("users")
    sandbox.inject_fault("empty_list", route="get_users", count=1)
    report = warehouse.load()
    assert sandbox.stats()["calls"]["get_user"] == users  # one confirming call per user
    assert warehouse.state("users") == before  # every user still exists: none retired
    assert report.confirmed["users"] == (users, 0)


def test_given_an_empty_users_list_above_the_share_then_users_are_held_and_the_rest_loads(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    before = warehouse.state("users")
    new_skill_rows = warehouse.count("skills", SCD2)
    sandbox.inject_fault("empty_list", route="get_users", count=1)
    report = warehouse.load(retire_floor=5)  # 30 users missing: > 5 and > 10%
    assert "get_user" not in sandbox.stats()["calls"]  # held without a confirming call
    assert warehouse.state("users") == before
    held = report.held["users"]
    assert (held.missing, held.current) == (before["users"][0], before["users"][0])
    assert "retire_max_share" in held.line()
    assert warehouse.count("skills", SCD2) == new_skill_rows  # the other tables loaded


def test_given_a_progress_list_cut_short_at_200_then_the_missing_progresses_are_kept(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    course_id = sandbox.world.courses.ids()[0]
    enrolled = len(sandbox.world.progresses_by_course[course_id])
    before = warehouse.state("course_progresses")
    sandbox.inject_fault("cut_list", route="get_course_progresses", count=1, rows=1)
    report = warehouse.load()
    assert warehouse.state("course_progresses") == before
    kept, gone = report.confirmed["course_progresses"]
    assert (kept, gone) == (enrolled - 1, 0)


def test_given_a_progress_destroyed_then_its_own_route_confirms_it_and_it_is_retired(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    progress_id = sandbox.world.progresses.ids()[0]
    sandbox.world.destroy_progress(progress_id)
    report = warehouse.load()
    assert warehouse.count("course_progresses", f"id = {progress_id} and {SCD2}") == 0
    assert warehouse.count("course_progresses", f"id = {progress_id}") == 1
    assert report.confirmed["course_progresses"] == (0, 1)


# ---- optional resources: skipped, their tables untouched, the rest loads --------------------


@pytest.mark.parametrize(
    ("route", "kind", "options", "skipped", "untouched"),
    [
        (
            "get_user_group",
            "error_object",
            {"count": 3},
            "user_group_members",
            "user_group_members",
        ),
        ("get_skill", "error_object", {"count": 3}, "skill_leaderboards", "skill_leaderboards"),
        (
            "get_competency",
            "json_answer",
            {"body": [{"id": 1}]},
            "competency_awards",
            "competency_awards",
        ),
        ("get_program", "json_answer", {"body": [{"id": 1}]}, "program", "program"),
        (
            "get_learning_paths",
            "error_object",
            {"count": 3},
            "learning_paths",
            "learning_path_courses",
        ),
        (
            "get_learning_paths",
            "error_object",
            {"status": 404, "message": "no route"},
            "learning_paths",
            "learning_paths",
        ),
    ],
)
def test_given_an_optional_route_failing_then_it_is_skipped_and_the_core_still_loads(
    sandbox: Sandbox,
    warehouse: Warehouse,
    route: str,
    kind: str,
    options: dict[str, Any],
    skipped: str,
    untouched: str,
) -> None:
    before = warehouse.state(untouched)
    user_id = sandbox.world.users.ids()[0]
    sandbox.world.destroy_user(user_id)  # the core must still see this
    sandbox.inject_fault(kind, route=route, **options)
    report = warehouse.load()
    assert skipped in report.skipped
    assert warehouse.state(untouched) == before
    assert warehouse.count("users", f"id = {user_id} and {SCD2}") == 0  # the core loaded


def test_given_all_or_nothing_then_an_optional_failure_fails_the_run(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    sandbox.inject_fault("json_answer", route="get_program", body=[])
    with pytest.raises(PipelineStepFailed):
        warehouse.load(all_or_nothing=True)


def test_given_a_saved_report_answering_json_then_only_the_reports_are_skipped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    fresh = Warehouse(sandbox, tmp_path / "fresh")
    sandbox.inject_fault("json_answer", route="get_saved_advanced_report", body={"id": 1})
    report = fresh.load()
    assert "saved_reports" in report.skipped
    assert fresh.count("users", SCD2) == len(sandbox.world.users.ids())
    report = fresh.load()  # next night: downloaded, since none was recorded as done
    assert not report.skipped
    tables = fresh.pipeline.default_schema.data_table_names()
    assert any(name.startswith("saved_report__") for name in tables)


# ---- the job's exit codes -------------------------------------------------------------------


def test_the_job_maps_held_and_skipped_to_their_exit_codes() -> None:
    from skyprep_source.job import ExitCode, source_outcome
    from skyprep_source.retirement import HeldRetirement

    report = RunReport.start()
    assert source_outcome() == ([], ExitCode.OK)
    report.skip("program", "SkyPrep get_program answered a list")
    lines, code = source_outcome()
    assert code == ExitCode.PARTIAL == 8
    assert lines == [
        "program: skipped this run, its tables untouched (SkyPrep get_program answered a list)"
    ]
    report.hold(HeldRetirement("users", 3000, 3000, "more than retire_max_share=0.1"))
    lines, code = source_outcome()
    assert code == ExitCode.RETIREMENT_HELD == 9
    assert lines[0].startswith("users: 3000 of 3000 current rows are missing")
    assert "SOURCES__SKYPREP__RETIRE_MAX_SHARE" in lines[0]


# ---- bad values ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [None, "abc", {"id": 1}])
def test_given_a_user_whose_id_is_not_an_integer_then_the_row_is_dropped_and_the_user_kept(
    sandbox: Sandbox, warehouse: Warehouse, bad_id: Any
) -> None:
    before = warehouse.state("users")
    sandbox.inject_fault("bad_value", route="get_users", field="id", value=bad_id)
    report = warehouse.load()
    assert warehouse.count("users", "id is null") == 0  # never a NULL-keyed current row
    assert warehouse.state("users") == before  # the real user confirmed by get_user: kept
    assert report.dropped == {"users": 1}
    assert report.confirmed["users"] == (1, 0)
    assert any("users: 1 row(s) without a valid key" in line for line in report.lines())


def test_given_a_text_course_id_on_every_progress_then_one_warning_for_the_column(
    sandbox: Sandbox, warehouse: Warehouse, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.inject_fault(
        "bad_value",
        route="get_course_progresses",
        count=10,
        field="course_id",
        value="x7",
        rows=10_000,
    )
    warehouse.load()
    warnings = [r for r in caplog.records if "field course_id" in r.getMessage()]
    assert len(warnings) == 1
    assert warehouse.count("course_progresses", f"course_id is null and {SCD2}") > 1


@pytest.mark.parametrize(
    ("wire", "loaded"), [("12,50", "12.50"), ("1.234,56", "1234.56"), ("1,234", None)]
)
def test_given_an_amount_in_another_locale_then_the_decimal_point_never_moves(
    sandbox: Sandbox, warehouse: Warehouse, wire: str, loaded: str | None
) -> None:
    payment_id = sandbox.world.records("get_payments")[0]["id"]  # the list's first record
    sandbox.inject_fault("bad_value", route="get_payments", field="amount", value=wire)
    warehouse.load(payments_full_read_days=0)  # a full read: every payment is re-read
    with warehouse.pipeline.sql_client() as client:
        rows = client.execute_sql(
            f"select amount from {DATASET_NAME}.payments where id = {payment_id} and {SCD2}"
        )
    (amount,) = rows[0]
    assert (None if amount is None else f"{amount:.2f}") == loaded


def test_given_every_leaderboard_answering_empty_then_the_guard_holds_the_fan_out_table(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    before = warehouse.state("skill_leaderboards")
    assert before["skill_leaderboards"][0] > 0
    sandbox.inject_fault(
        "json_answer", route="get_skill", count=1000, body={"id": 1, "details": {"leaderboard": []}}
    )
    report = warehouse.load(retire_floor=0)
    assert "skill_leaderboards" in report.held
    assert warehouse.state("skill_leaderboards") == before
    sandbox.clear_faults()
    report = warehouse.load(retire_floor=0)  # the next night, whole again: nothing held
    assert not report.held and warehouse.state("skill_leaderboards") == before


# ---- bounded runs ---------------------------------------------------------------------------


def test_given_a_run_deadline_that_passes_then_the_run_fails_whole_and_loads_nothing(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    from skyprep_source.errors import SkyPrepRunDeadline

    sandbox.world.destroy_user(sandbox.world.users.ids()[0])
    before = warehouse.state("users", "course_progresses")
    # every progress list answers after 0.4 s: the run cannot finish within 1 s
    sandbox.inject_fault("slow", route="get_course_progresses", count=100, delay_s=0.4)
    with pytest.raises(PipelineStepFailed) as raised:
        warehouse.load(run_deadline_s=1.0)
    assert isinstance(root_cause(raised.value), SkyPrepRunDeadline)
    assert "run_deadline_s" in str(root_cause(raised.value))
    assert warehouse.state("users", "course_progresses") == before


def test_given_the_per_user_route_failing_midway_then_both_its_tables_stay_untouched(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`user_skill_balances` writes two tables; held by `user_id`, the key both have."""
    per_user = {"per_user_resources": ["user_skill_balances", "user_gamification_balances"]}
    fresh = Warehouse(sandbox, tmp_path / "per_user")
    fresh.load(**per_user)
    tables = ("user_skill_balances", "user_competencies_achieved", "user_gamification_balances")
    before = fresh.state(*tables)
    assert all(current > 0 for current, _ in before.values())
    route = "get_user_skill_balances_and_competencies"
    sandbox.inject_fault("error_object", route=route, count=3, skip=5)  # the 6th user fails
    sandbox.inject_fault("error_object", route="get_user_gamification_balance", count=3, skip=5)
    report = fresh.load(**per_user)
    assert {"user_skill_balances", "user_gamification_balances"} <= set(report.skipped)
    assert fresh.state(*tables) == before
