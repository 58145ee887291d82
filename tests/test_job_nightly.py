"""The nightly job as a new user meets it (issue #10): where the file and the state go, what
it prints, and the configuration traps, each refused in one line that names the setting.

The `skyprep` console script runs as a subprocess against a sandbox over real HTTP, into real
DuckDB files in temporary directories."""

from __future__ import annotations

import importlib.util
import io
import shutil
from pathlib import Path

import dlt
import duckdb
import pytest
from test_job import REPO, clean_environment, sandbox_environment, skyprep, tables_of

from skyprep_sandbox import Sandbox
from skyprep_source import skyprep as skyprep_source
from skyprep_source.job import ExitCode, ProgressLines
from skyprep_source.settings import (
    PLACEHOLDER_ACCT_KEY,
    PLACEHOLDER_API_KEY,
    InvalidSetting,
    parse_requests_per_minute,
)


def last_line(result: object) -> str:
    lines = str(getattr(result, "stderr", "")).strip().splitlines()
    return lines[-1] if lines else ""


# ---- the file and the state --------------------------------------------------------------


def test_two_directories_get_two_files_and_the_summary_says_where(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for directory in (first, second):
        # each directory its own state (DLT_DATA_DIR), as two jobs on one machine would have
        env = sandbox_environment(directory, sandbox)
        result = skyprep("run", "--no-models", "-q", "--resources", "users", cwd=directory, env=env)
        assert result.returncode == 0, result.stderr
        assert f"  data:  {directory / 'skyprep.duckdb'}" in result.stdout.splitlines()
        state = directory / "dlt-data" / "pipelines" / "skyprep"
        assert f"  state: {state}" in result.stdout.splitlines()
        assert state.is_dir()
        assert "users" in tables_of(directory / "skyprep.duckdb", "skyprep_data")


def test_a_run_whose_state_belongs_to_another_file_stops(tmp_path: Path, sandbox: Sandbox) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    env = sandbox_environment(tmp_path, sandbox)  # one state directory for both, like ~/.dlt
    args = ("run", "--no-models", "-q", "--resources", "users")
    assert skyprep(*args, cwd=first, env=env).returncode == 0
    calls = sandbox.stats()["calls_total"]

    result = skyprep(*args, cwd=second, env=env)

    assert result.returncode == ExitCode.CONFIG == 3
    reason = last_line(result)
    assert str(first / "skyprep.duckdb") in reason and str(second / "skyprep.duckdb") in reason
    assert "--pipelines-dir" in reason
    assert not (second / "skyprep.duckdb").exists()
    assert sandbox.stats()["calls_total"] == calls  # stopped before reading anything

    # its own state directory: a second, separate file
    result = skyprep(*args, "--pipelines-dir", str(second / "state"), cwd=second, env=env)
    assert result.returncode == 0, result.stderr
    assert (second / "skyprep.duckdb").exists()
    assert (second / "state" / "skyprep").is_dir()


def test_a_file_moved_with_its_state_loads_on_and_a_file_copied_without_it_stops(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    first = tmp_path / "first"
    first.mkdir()
    env = sandbox_environment(tmp_path, sandbox)  # one state directory, like ~/.dlt
    args = ("run", "--no-models", "-q", "--resources", "users,payments")
    assert skyprep(*args, cwd=first, env=env).returncode == 0
    stale = tmp_path / "stale"
    shutil.copytree(first, stale)  # a copy of the file as it is now
    sandbox.advance(days=8)  # new payments: their cursor in the state moves on
    assert skyprep(*args, cwd=first, env=env).returncode == 0

    # the file moved to a new directory: it holds the state's last version, so it is the
    # same history and the run goes on (and the state now names the new place)
    moved = tmp_path / "moved"
    first.rename(moved)
    result = skyprep(*args, cwd=moved, env=env)
    assert result.returncode == 0, result.stderr
    assert f"  data:  {moved / 'skyprep.duckdb'}" in result.stdout.splitlines()
    assert skyprep(*args, cwd=moved, env=env).returncode == 0

    # an older copy of the file holds an older state: not this history, refused
    result = skyprep(*args, cwd=stale, env=env)
    assert result.returncode == ExitCode.CONFIG, result.stderr
    assert str(moved / "skyprep.duckdb") in last_line(result)


def test_the_python_destination_resolves_a_relative_file_against_the_current_directory(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skyprep_source.duckdb_destination import duckdb_destination

    state = tmp_path / "state"
    for name in ("one", "two"):
        directory = tmp_path / name
        directory.mkdir()
        monkeypatch.chdir(directory)
        pipeline = dlt.pipeline(
            "readme_example",
            destination=duckdb_destination("skyprep.duckdb"),
            dataset_name="skyprep_data",
            pipelines_dir=str(state),  # shared: dlt would reuse the first directory's file
        )
        pipeline.run(
            skyprep_source(
                api_key=sandbox.api_key,
                acct_key=sandbox.acct_key,
                base_url=sandbox.base_url,
                requests_per_minute="off",
            ).with_resources("users")
        )
        assert (directory / "skyprep.duckdb").exists()


# ---- output -------------------------------------------------------------------------------


def test_progress_and_summary_name_each_step_and_the_changes_per_table(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    first = skyprep("run", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    sandbox.world.advance(days=1)

    result = skyprep("run", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    progress = result.stderr.splitlines()
    for expected in ("load: started", "models: building in skyprep_analytics"):
        assert f"[skyprep] {expected}" in progress
    assert any(line.startswith("[skyprep] load done in ") for line in progress)
    assert any(line.startswith("[skyprep] models done in ") for line in progress)
    extract_done = next(line for line in progress if "extract done" in line)
    assert extract_done.endswith(" calls")
    lines = result.stdout.splitlines()
    header = lines.index("changes in this load:") + 1
    assert lines[header].split() == ["table", "new", "updated", "retired", "unchanged"]
    users = next(line.split() for line in lines[header:] if line.split()[:1] == ["users"])
    new, updated, retired, unchanged = (int(n) for n in users[1:])
    assert new + updated + retired > 0  # a day passed: users came, changed or went
    with duckdb.connect(str(tmp_path / "skyprep.duckdb"), read_only=True) as db:
        (current,) = db.execute(
            "select count(*) from skyprep_data.users where _dlt_valid_to is null"
        ).fetchone() or (0,)
    assert new + updated + unchanged == current == len(sandbox.world.users.ids())


def test_quiet_leaves_stderr_empty_on_success(tmp_path: Path, sandbox: Sandbox) -> None:
    result = skyprep("run", "-q", cwd=tmp_path, env=sandbox_environment(tmp_path, sandbox))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_a_progress_line_has_calls_of_the_plan_rows_resource_and_eta() -> None:
    stream = io.StringIO()  # not a terminal: plain lines
    progress = ProgressLines(stream, period_s=0.0)
    progress.planned_calls = 10**9  # far more than this process made: the share is small
    progress.step = "Extract"
    progress._start("Extract")
    progress.update("users", 1000)
    progress.update("course_progresses", 500)

    line = stream.getvalue().splitlines()[-1]
    assert line.startswith("[skyprep] extract ")
    assert "/1,000,000,000 calls (" in line
    assert "1,500 rows, reading course_progresses" in line
    assert "\r" not in stream.getvalue()


def test_skipped_models_are_listed_with_their_reason(tmp_path: Path, sandbox: Sandbox) -> None:
    result = skyprep(
        "run",
        "-q",
        "--resources",
        "users",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("  skipped ")]
    assert skipped
    assert all(": " in line and line.split(": ", 1)[1] for line in skipped)
    assert any("not loaded" in line for line in skipped)


# ---- commands -----------------------------------------------------------------------------


def test_models_rebuilds_the_models_alone(tmp_path: Path, sandbox: Sandbox) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    assert skyprep("run", "--no-models", "-q", cwd=tmp_path, env=env).returncode == 0
    assert tables_of(tmp_path / "skyprep.duckdb", "skyprep_analytics") == set()
    calls = sandbox.stats()["calls_total"]

    result = skyprep("models", cwd=tmp_path, env=env)

    assert result.returncode == 0, result.stderr
    assert {"agg_course_completion", "agg_user_compliance"} <= tables_of(
        tmp_path / "skyprep.duckdb", "skyprep_analytics"
    )
    assert sandbox.stats()["calls_total"] == calls  # SkyPrep is not read
    assert any(line.startswith("models: ") for line in result.stdout.splitlines())
    appended = "  new loads appended to bridge_user_group_members_at_load,"
    assert not any(line.startswith(appended) for line in result.stdout.splitlines())

    # the history marts hold the load now: the next build only appends, unless asked
    again = skyprep("models", cwd=tmp_path, env=env)
    assert any(line.startswith(appended) for line in again.stdout.splitlines()), again.stdout
    assert "(3 appended to)" in again.stderr
    full = skyprep("models", "--full-refresh", cwd=tmp_path, env=env)
    assert full.returncode == 0, full.stderr
    assert not any(line.startswith(appended) for line in full.stdout.splitlines())


def test_models_without_a_pipeline_names_the_fix(tmp_path: Path) -> None:
    result = skyprep("models", "-q", cwd=tmp_path, env=clean_environment(tmp_path))
    assert result.returncode == ExitCode.CONFIG
    assert "run `skyprep run` first" in last_line(result)


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = skyprep("--version", cwd=tmp_path, env=clean_environment(tmp_path))
    assert result.returncode == 0
    assert result.stdout.strip() == f"skyprep {version('skyprep-source')}"


# ---- memory -------------------------------------------------------------------------------


def test_out_of_memory_ends_with_the_setting_to_raise(tmp_path: Path, sandbox: Sandbox) -> None:
    env = sandbox_environment(tmp_path, sandbox) | {
        # the user's setting wins: a limit far too small for the models
        "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG": '{"memory_limit": "1MB"}'
    }
    result = skyprep("run", "-q", cwd=tmp_path, env=env)

    assert result.returncode in (ExitCode.LOAD, ExitCode.MODELS), result.stderr
    (reason,) = result.stderr.strip().splitlines()  # -q: no retry tracebacks, the line alone
    assert "DuckDB ran out of memory" in reason
    assert "memory_limit" in reason and "DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG" in reason


# ---- configuration traps ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("off", None), ("OFF", None), (" none ", None), ("250", 250), (7, 7)],
)
def test_requests_per_minute_values(value: object, expected: int | None) -> None:
    assert parse_requests_per_minute(value) == expected


@pytest.mark.parametrize("value", [0, -5, "0", "-1", "fast", "", True, 2.5])
def test_requests_per_minute_refuses_what_is_not_a_budget(value: object) -> None:
    with pytest.raises(InvalidSetting, match="SOURCES__SKYPREP__REQUESTS_PER_MINUTE"):
        parse_requests_per_minute(value)


def test_the_budget_turns_off_from_the_environment(tmp_path: Path, sandbox: Sandbox) -> None:
    env = sandbox_environment(tmp_path, sandbox) | {"SOURCES__SKYPREP__REQUESTS_PER_MINUTE": "off"}
    result = skyprep("run", "--plan", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "at no rate budget" in result.stdout.splitlines()[0]


def test_the_budget_turns_off_from_config_toml(tmp_path: Path, sandbox: Sandbox) -> None:
    (tmp_path / ".dlt").mkdir()
    (tmp_path / ".dlt" / "config.toml").write_text(
        '[sources.skyprep]\nrequests_per_minute = "off"\n'
    )
    result = skyprep("run", "--plan", cwd=tmp_path, env=sandbox_environment(tmp_path, sandbox))
    assert result.returncode == 0, result.stderr
    assert "at no rate budget" in result.stdout.splitlines()[0]


@pytest.mark.parametrize("value", ["off", None])
def test_the_budget_turns_off_from_python(
    tmp_path: Path, sandbox: Sandbox, value: str | None
) -> None:
    pipeline = dlt.pipeline(
        "budget_off",
        destination=dlt.destinations.duckdb(str(tmp_path / "off.duckdb")),
        dataset_name="skyprep_data",
        pipelines_dir=str(tmp_path / "state"),
    )
    source = skyprep_source(
        api_key=sandbox.api_key,
        acct_key=sandbox.acct_key,
        base_url=sandbox.base_url,
        requests_per_minute=value,
    )
    pipeline.run(source.with_resources("users"))
    assert "users" in tables_of(tmp_path / "off.duckdb", "skyprep_data")


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("SOURCES__SKYPREP__REQUESTS_PER_MINUTE", "0", "SOURCES__SKYPREP__REQUESTS_PER_MINUTE"),
        ("SOURCES__SKYPREP__REQUESTS_PER_MINUTE", "-3", "SOURCES__SKYPREP__REQUESTS_PER_MINUTE"),
        ("SOURCES__SKYPREP__REQUESTS_PER_MINUTE", "fast", "SOURCES__SKYPREP__REQUESTS_PER_MINUTE"),
        ("SOURCES__SKYPREP__ACCT_KEY", "https://acme.skyprepapp.com", "SOURCES__SKYPREP__ACCT_KEY"),
        ("SOURCES__SKYPREP__BASE_URL", "BASE_WITHOUT_PATH", "SOURCES__SKYPREP__BASE_URL"),
    ],
)
def test_an_invalid_setting_is_refused_in_one_line_before_any_call(
    tmp_path: Path, sandbox: Sandbox, variable: str, value: str, named: str
) -> None:
    if value == "BASE_WITHOUT_PATH":
        value = sandbox.root_url  # the sandbox's address without /admin/api
    env = sandbox_environment(tmp_path, sandbox) | {variable: value}

    result = skyprep("run", "-q", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CONFIG == 3, result.stderr
    (reason,) = result.stderr.strip().splitlines()
    assert reason.startswith("skyprep run: error: ") and named in reason
    assert "Traceback" not in result.stderr
    assert sandbox.stats()["calls_total"] == 0


def test_the_examples_placeholder_secrets_are_refused(tmp_path: Path, sandbox: Sandbox) -> None:
    (tmp_path / ".dlt").mkdir()
    shutil.copy(REPO / ".dlt" / "secrets.toml.example", tmp_path / ".dlt" / "secrets.toml")
    env = clean_environment(tmp_path) | {"SOURCES__SKYPREP__BASE_URL": sandbox.base_url}

    result = skyprep("check", cwd=tmp_path, env=env)

    assert result.returncode == ExitCode.CONFIG
    (reason,) = result.stderr.strip().splitlines()
    assert "api_key is still the example's placeholder" in reason
    assert PLACEHOLDER_API_KEY not in reason  # a secret's value is never printed
    assert sandbox.stats()["calls_total"] == 0

    env["SOURCES__SKYPREP__API_KEY"] = sandbox.api_key  # the key filled in, the domain not
    result = skyprep("check", cwd=tmp_path, env=env)
    assert result.returncode == ExitCode.CONFIG
    assert "acct_key is still the example's placeholder" in last_line(result)


def test_the_placeholders_are_the_examples_values() -> None:
    example = (REPO / ".dlt" / "secrets.toml.example").read_text()
    assert f'api_key = "{PLACEHOLDER_API_KEY}"' in example
    assert f'acct_key = "{PLACEHOLDER_ACCT_KEY}"' in example


@pytest.mark.parametrize(
    ("destination", "module"), [("snowflake", "snowflake"), ("bigquery", "google.cloud.bigquery")]
)
def test_a_missing_destination_driver_names_the_extra_to_install(
    tmp_path: Path, sandbox: Sandbox, destination: str, module: str
) -> None:
    try:
        installed = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        installed = False
    if installed:
        pytest.skip(f"the {destination} driver is installed here")

    result = skyprep(
        "run",
        "-q",
        "--destination",
        destination,
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )

    assert result.returncode == ExitCode.CONFIG
    assert f'pip install "skyprep-source[{destination}]"' in last_line(result)
    assert sandbox.stats()["calls_total"] == 0
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'{destination} = ["dlt[{destination}]' in pyproject
