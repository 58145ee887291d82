"""The scheduled job end to end: the `skyprep` console script run as a subprocess against a
sandbox over real HTTP, loading real DuckDB files in a temporary working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from skyprep_sandbox import Sandbox
from skyprep_source.cli import requests_per_minute
from skyprep_source.job import ExitCode, describe_failure, redact

REPO = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).parent / "skyprep"
WRONG_KEY = "wrong-key-7f3a9c21"
# settings that would leak in from the developer's shell and change what the job reads
_LEAKY_PREFIXES = ("SOURCES__", "DESTINATION__", "RUNTIME__", "NORMALIZE__", "LOAD__", "DLT_")
_LEAKY_NAMES = {"API_KEY", "ACCT_KEY", "BASE_URL", "CREDENTIALS"}


def clean_environment(tmp_path: Path) -> dict[str, str]:
    """The parent environment without any dlt/SkyPrep setting, with dlt's state in tmp."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_LEAKY_PREFIXES) and name not in _LEAKY_NAMES
    }
    env["DLT_DATA_DIR"] = str(tmp_path / "dlt-data")
    return env


def sandbox_environment(tmp_path: Path, sandbox: Sandbox) -> dict[str, str]:
    """What a scheduled job gets from its scheduler: the account in environment variables."""
    env = clean_environment(tmp_path)
    env.update(
        SOURCES__SKYPREP__API_KEY=sandbox.api_key,
        SOURCES__SKYPREP__ACCT_KEY=sandbox.acct_key,
        SOURCES__SKYPREP__BASE_URL=sandbox.base_url,
    )
    return env


def skyprep(
    *args: str, cwd: Path, env: dict[str, str], script: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script (or the module when not installed as a script)."""
    command = script or (
        [str(CONSOLE_SCRIPT)]
        if CONSOLE_SCRIPT.exists()
        else [sys.executable, "-m", "skyprep_source.cli"]
    )
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def tables_of(database: Path, dataset: str) -> set[str]:
    with duckdb.connect(str(database), read_only=True) as db:
        rows = db.execute(
            "select table_name from information_schema.tables where table_schema = ?", [dataset]
        ).fetchall()
    return {name for (name,) in rows}


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr lines that are not dlt's own log records (those carry a `|[LEVEL]|` tag)."""
    return [line for line in result.stderr.splitlines() if line and "|[" not in line]


# ---- check --------------------------------------------------------------------------------


def test_check_with_the_sandbox_credentials_prints_ok(tmp_path: Path, sandbox: Sandbox) -> None:
    result = skyprep("check", cwd=tmp_path, env=sandbox_environment(tmp_path, sandbox))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: connected to")
    assert sandbox.stats()["calls"] == {"test_connection": 1}


def test_check_with_a_wrong_api_key_fails_in_one_line_without_the_key(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox) | {"SOURCES__SKYPREP__API_KEY": WRONG_KEY}

    result = skyprep("check", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CREDENTIALS == 4
    (reason,) = error_lines(result)
    assert reason.startswith("skyprep check: error: ")
    assert "HTML page" in reason and "SOURCES__SKYPREP__API_KEY" in reason
    assert WRONG_KEY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_check_without_an_api_key_names_the_environment_variable_to_set(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    del env["SOURCES__SKYPREP__API_KEY"]

    result = skyprep("check", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CONFIG == 3
    (reason,) = error_lines(result)
    assert "api_key: set SOURCES__SKYPREP__API_KEY" in reason
    assert "[sources.skyprep]" in reason
    assert "acct_key" not in reason  # only what is missing is named
    assert sandbox.stats()["calls_total"] == 0


def test_check_with_a_base_url_that_is_not_http_is_a_configuration_error(tmp_path: Path) -> None:
    env = clean_environment(tmp_path) | {
        "SOURCES__SKYPREP__API_KEY": "some-key-123",
        "SOURCES__SKYPREP__ACCT_KEY": "acme.skyprepapp.com",
    }

    result = skyprep("check", "--base-url", "ftp://skyprep.example", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CONFIG
    (reason,) = error_lines(result)
    assert "base_url must be an http:// or https:// URL ending in /admin/api" in reason
    assert "SOURCES__SKYPREP__BASE_URL" in reason


# ---- run ----------------------------------------------------------------------------------


def test_run_loads_every_table_builds_the_models_and_prints_a_summary(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = skyprep(
        "run",
        "--requests-per-minute",
        "off",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )

    assert result.returncode == 0, result.stderr
    database = tmp_path / "skyprep.duckdb"
    raw = tables_of(database, "skyprep_data")
    assert {
        "users",
        "courses",
        "course_progresses",
        "payments",
        "skills",
        "competencies",
        "user_groups",
        "user_group_members",
        "saved_advanced_reports",
    } <= raw
    assert any(name.startswith("saved_report__") for name in raw)
    assert {"agg_course_completion", "agg_user_compliance"} <= tables_of(
        database, "skyprep_analytics"
    )
    headline, *table_lines = result.stdout.splitlines()
    assert headline.startswith("read ") and "tables of duckdb:skyprep_data" in headline
    assert headline.endswith(f", {sandbox.stats()['calls_total']} API calls")
    # the tiny world's 30 users, all new in a first load
    assert any(line.split() == ["users", "30", "0", "0", "0"] for line in table_lines)
    # the report's line follows the models' (tests/test_report.py checks the file)
    top_level = [line.split(":")[0] for line in table_lines if not line.startswith(" ")]
    assert top_level[-2:] == ["models", "report"]
    assert any(line.startswith("report: skyprep_report.html (") for line in table_lines)
    assert "[skyprep] extract done in" in result.stderr  # progress goes to stderr


def test_run_with_selected_resources_and_no_models_loads_only_those(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = skyprep(
        "run",
        "--resources",
        "users,courses",
        "--no-models",
        "--dataset",
        "acme_raw",
        "--quiet",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )

    assert result.returncode == 0, result.stderr
    database = tmp_path / "skyprep.duckdb"
    assert {t for t in tables_of(database, "acme_raw") if not t.startswith("_dlt")} == {
        "users",
        "courses",
    }
    assert tables_of(database, "skyprep_analytics") == set()
    assert "models: skipped (--no-models)" in result.stdout
    assert "[skyprep]" not in result.stderr  # --quiet: no progress lines
    # get_data: the call plan asks for the user and course counts before the first data call
    assert set(sandbox.stats()["calls"]) == {"get_users", "get_courses", "get_data"}
    assert sandbox.stats()["calls"]["get_data"] == 2


def loaded_data_files(tmp_path: Path) -> list[Path]:
    loaded = tmp_path / "dlt-data" / "pipelines" / "skyprep" / "load" / "loaded"
    assert loaded.is_dir(), "the job left no loaded package to inspect"
    return [p for p in loaded.rglob("*") if p.is_file() and ".parquet" in p.name]


def test_nightly_runs_keep_no_loaded_data_files_unless_the_user_asks(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    for _ in range(2):  # every run re-reads whole snapshots: their files must not pile up
        result = skyprep("run", "--resources", "users", "--no-models", "-q", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
    assert loaded_data_files(tmp_path) == []

    keep = tmp_path / "keep"
    keep.mkdir()
    env = {**sandbox_environment(keep, sandbox), "LOAD__DELETE_COMPLETED_JOBS": "false"}
    result = skyprep("run", "--resources", "users", "--no-models", "-q", cwd=keep, env=env)
    assert result.returncode == 0, result.stderr
    assert loaded_data_files(keep)  # the user's own setting wins


def test_run_with_an_unknown_resource_is_a_usage_error_naming_the_choices(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = skyprep(
        "run",
        "--resources",
        "users,bogus",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )

    assert result.returncode == ExitCode.USAGE == 2
    (reason,) = error_lines(result)
    assert "unknown resource(s) bogus" in reason and "course_progresses" in reason
    assert sandbox.stats()["calls_total"] == 0


def test_run_with_a_wrong_api_key_exits_4_and_verbose_adds_a_traceback_without_the_key(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox) | {"SOURCES__SKYPREP__API_KEY": WRONG_KEY}

    result = skyprep("run", "--verbose", "--quiet", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CREDENTIALS
    assert "Traceback" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("skyprep run: error: SkyPrep ") and "check api_key" in last
    assert WRONG_KEY not in result.stdout + result.stderr


def test_run_against_an_unreachable_api_exits_5_naming_base_url(tmp_path: Path) -> None:
    env = clean_environment(tmp_path) | {
        "SOURCES__SKYPREP__API_KEY": "some-key-123",
        "SOURCES__SKYPREP__ACCT_KEY": "acme.skyprepapp.com",
    }

    # the default attempts: a refused connection at the first contact is not retried
    result = skyprep(
        "run", "--quiet", "--base-url", "http://127.0.0.1:9/admin/api", cwd=tmp_path, env=env
    )

    assert result.returncode == ExitCode.API == 5
    (reason,) = result.stderr.strip().splitlines()  # -q: the error line alone
    assert "http://127.0.0.1:9/admin/api" in reason and "connection refused" in reason
    assert "check base_url (SOURCES__SKYPREP__BASE_URL" in reason
    assert "some-key-123" not in reason


def test_run_without_destination_credentials_names_the_environment_variable(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    result = skyprep(
        "run",
        "--destination",
        "postgres",
        "--quiet",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )

    assert result.returncode == ExitCode.CONFIG
    (reason,) = error_lines(result)
    assert "set DESTINATION__POSTGRES__CREDENTIALS" in reason


def test_credentials_without_a_password_say_so_rather_than_unset(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """A DSN without a password (a server that trusts local connections) is set: the line
    names what it lacks, not "set DESTINATION__POSTGRES__CREDENTIALS"."""
    env = {
        **sandbox_environment(tmp_path, sandbox),
        "DESTINATION__POSTGRES__CREDENTIALS": "postgresql://loader@127.0.0.1:9/warehouse",
    }
    result = skyprep("run", "--destination", "postgres", "--quiet", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CONFIG
    (reason,) = error_lines(result)
    assert "DESTINATION__POSTGRES__CREDENTIALS is set but has no password" in reason
    assert "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD" in reason
    assert "loader@127.0.0.1" not in reason  # a connection string is never echoed


def test_full_refresh_drops_the_history_and_reloads_the_current_snapshot(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    args = ("run", "--no-models", "--quiet", "--resources", "users,courses,course_progresses")
    database = tmp_path / "skyprep.duckdb"

    def versions() -> tuple[int, int]:
        with duckdb.connect(str(database), read_only=True) as db:
            (total, retired) = db.execute(
                "select count(*), count(_dlt_valid_to) from skyprep_data.course_progresses"
            ).fetchone() or (0, 0)
        return int(total), int(retired)

    assert skyprep(*args, cwd=tmp_path, env=env).returncode == 0
    sandbox.advance(days=5)
    assert skyprep(*args, cwd=tmp_path, env=env).returncode == 0
    total, retired = versions()
    assert retired > 0  # days of learning retired some progress versions: history exists

    refreshed = skyprep(*args, "--full-refresh", cwd=tmp_path, env=env)

    assert refreshed.returncode == 0, refreshed.stderr
    assert versions() == (total - retired, 0)


def test_pipeline_script_runs_the_load_by_default(tmp_path: Path, sandbox: Sandbox) -> None:
    result = skyprep(
        "--resources",
        "skills",
        "--no-models",
        "--quiet",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
        script=[sys.executable, str(REPO / "pipelines" / "skyprep_pipeline.py")],
    )

    assert result.returncode == 0, result.stderr
    assert "skills" in tables_of(tmp_path / "skyprep.duckdb", "skyprep_data")


# ---- in-process pieces --------------------------------------------------------------------


def test_an_unexpected_error_is_exit_1_with_the_key_redacted() -> None:
    failure = describe_failure(
        RuntimeError("boom near secret-key-42\nsecond line"), ["secret-key-42"]
    )

    assert failure.exit_code == ExitCode.FAILED
    assert failure.reason == (
        "unexpected error RuntimeError: boom near ***; re-run with --verbose for the traceback"
    )


def test_redact_leaves_text_without_the_secret_unchanged() -> None:
    assert redact("nothing to hide", ["secret-key-42"]) == "nothing to hide"


@pytest.mark.parametrize(("flag", "budget"), [("off", None), ("OFF", None), ("250", 250)])
def test_requests_per_minute_flag_accepts_a_number_or_off(flag: str, budget: int | None) -> None:
    assert requests_per_minute(flag) == budget


def test_a_held_retirement_exits_9_and_a_skipped_resource_exits_8_after_loading(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    args = ("run", "--requests-per-minute", "off", "--no-models")
    assert skyprep(*args, cwd=tmp_path, env=env).returncode == 0
    database = tmp_path / "skyprep.duckdb"

    def current_users() -> int:
        with duckdb.connect(str(database), read_only=True) as db:
            (count,) = db.execute(
                "select count(*) from skyprep_data.users where _dlt_valid_to is null"
            ).fetchone() or (0,)
        return int(count)

    users = current_users()
    sandbox.inject_fault("empty_list", route="get_users", count=1)
    held = skyprep(*args, cwd=tmp_path, env={**env, "SOURCES__SKYPREP__RETIRE_FLOOR": "5"})
    assert held.returncode == 9, held.stderr
    (line,) = [x for x in error_lines(held) if "attention" in x]
    assert f"users: {users} of {users} current rows are missing" in line
    assert "SOURCES__SKYPREP__RETIRE_MAX_SHARE" in line
    assert current_users() == users  # none retired

    sandbox.inject_fault("json_answer", route="get_program", body=[])
    partial = skyprep(*args, cwd=tmp_path, env=env)
    assert partial.returncode == 8, partial.stderr
    assert any("program: skipped this run" in x for x in error_lines(partial))
    assert partial.stdout.startswith("read ")  # the rest loaded, with its summary
