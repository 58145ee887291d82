"""`kill -9` at each step of `skyprep run`, then a plain rerun: the destination equals an
uninterrupted run's (DESIGN rule 5; issue #11 item 3).

Every run is the real console entry point in its own process against the sandbox over HTTP,
into a real DuckDB file (and PostgreSQL for the load step). `tests/crash_harness.py` sends the
run a real SIGKILL at a fixed point (a dlt or job function), so each case kills at the same
place on every machine. One world (the tiny one, seed 7): a first night is loaded once into a
template directory, a day passes, and every case starts from a copy of that template:

- the baseline: the second night uninterrupted, then a no-change rerun;
- a case: the second night killed at its point, then a plain rerun.

Every data table is then compared with the baseline as a multiset of rows (every version,
current and retired), leaving out only what differs between any two runs (dlt's load ids, row
ids and validity timestamps). `platform_counts` gains one measurement per run that reached the
load: it is compared by its distinct measurements and checked for doubled rows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_job import sandbox_environment

from skyprep_sandbox import Sandbox, World

HARNESS = Path(__file__).with_name("crash_harness.py")
RAW = "skyprep_data"
ANALYTICS = "skyprep_analytics"
# columns that differ between any two runs of the same data
RUN_COLUMNS = {"_dlt_load_id", "_dlt_id", "_dlt_valid_from", "_dlt_valid_to"}
# one row per run: the time of the measurement and its hash differ between runs
MEASUREMENTS = "platform_counts"
MEASUREMENT_RUN_COLUMNS = {"measured_at", "_row_hash"}


def skyprep(
    cwd: Path, env: dict[str, str], *args: str, crash_at: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(env)
    env.pop("SKYPREP_CRASH_AT", None)
    if crash_at:
        env["SKYPREP_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, str(HARNESS), "run", "--requests-per-minute", "off", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@dataclass
class Night:
    """The sandbox a day after the template's first load, and the two ways to load it."""

    sandbox: Sandbox
    template: Path
    root: Path

    def copy(self, name: str) -> tuple[Path, dict[str, str]]:
        """A copy of the first night's working directory (DuckDB file and dlt's state)."""
        target = self.root / name
        shutil.copytree(self.template, target)
        # dlt keeps the directory the pipeline first ran in and puts its DuckDB file there
        state_file = target / "dlt-data" / "pipelines" / "skyprep" / "state.json"
        state = json.loads(state_file.read_text())
        assert state["_local"]["initial_cwd"] == str(self.template)
        state["_local"]["initial_cwd"] = str(target)
        state_file.write_text(json.dumps(state))
        return target, sandbox_environment(target, self.sandbox)

    def uninterrupted(self, name: str, *args: str) -> Path:
        """The night loaded without a kill, then rerun once (as a killed night is)."""
        cwd, env = self.copy(name)
        for _ in range(2):
            result = skyprep(cwd, env, *args)
            assert result.returncode == 0, result.stderr
        return cwd

    def killed(self, name: str, crash_at: str, *args: str, kills: int = 1) -> tuple[Path, str]:
        """The night killed at `crash_at` (`kills` runs in a row), then rerun: (directory, the
        rerun's stderr)."""
        cwd, env = self.copy(name)
        for _ in range(kills):
            killed = skyprep(cwd, env, *args, crash_at=crash_at)
            assert killed.returncode == -9, (killed.returncode, killed.stderr[-3000:])
            assert f"[crash_harness] SIGKILL at {crash_at}" in killed.stderr
        if crash_at.startswith("extract"):
            assert unfinished_extracts(cwd)  # the kill left a half-written extract
        rerun = skyprep(cwd, env, *args)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert unfinished_extracts(cwd) == []
        headline = rerun.stdout.splitlines()[0]
        # the rerun read the night itself, not only the package the kill left
        assert headline.startswith("read ") and not headline.startswith("read 0 rows"), headline
        return cwd, rerun.stderr


def unfinished_extracts(cwd: Path) -> list[Path]:
    """dlt's folders of extracts in progress (named by a random 16-hex-digit id)."""
    normalize = cwd / "dlt-data" / "pipelines" / "skyprep" / "normalize"
    return [path for path in normalize.glob("?" * 16) if path.name != "extracted"]


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Night]:
    root = tmp_path_factory.mktemp("crash")
    with Sandbox(World.generate(seed=7, scale="tiny")) as sandbox:
        template = root / "night1"
        template.mkdir()
        first = skyprep(template, sandbox_environment(template, sandbox))
        assert first.returncode == 0, first.stderr
        sandbox.advance(days=1)
        yield Night(sandbox, template, root)


@pytest.fixture(scope="module")
def baseline(night: Night) -> dict[str, Counter[str]]:
    return duckdb_content(night.uninterrupted("baseline") / "skyprep.duckdb")


# ---- reading a destination ------------------------------------------------------------------


def table_content(query: Any, dataset: str, table: str, columns: list[str]) -> Counter[str]:
    """The rows of a table as a multiset, without the columns that differ between runs; a
    version's `_dlt_valid_to` is kept as whether it is current."""
    excluded = RUN_COLUMNS | (MEASUREMENT_RUN_COLUMNS if table == MEASUREMENTS else set())
    kept = [f'"{name}"' for name in columns if name not in excluded]
    current = ', "_dlt_valid_to" IS NULL' if "_dlt_valid_to" in columns else ""
    rows = query(f'SELECT {", ".join(kept)}{current} FROM {dataset}."{table}"')
    if table == MEASUREMENTS:
        # one row per run that reached the load; never two of one run (one measured_at)
        taken = Counter(row for row in query(f'SELECT "measured_at" FROM {dataset}."{table}"'))
        assert max(taken.values(), default=1) == 1, f"doubled {table} rows: {taken}"
        return Counter({repr(row): 1 for row in set(rows)})
    return Counter(repr(row) for row in rows)


def content(query: Any, dataset: str) -> dict[str, Counter[str]]:
    tables = [
        name
        for (name,) in query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            f"'{dataset}' AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'"
        )
    ]
    out = {}
    for table in tables:
        columns = [
            name
            for (name,) in query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                f"'{dataset}' AND table_name = '{table}' ORDER BY ordinal_position"
            )
        ]
        out[table] = table_content(query, dataset, table, columns)
    loads = Counter(load_id for (load_id,) in query(f"SELECT load_id FROM {dataset}._dlt_loads"))
    assert max(loads.values()) == 1, f"a load recorded twice in _dlt_loads: {loads}"
    return out


def duckdb_content(database: Path, dataset: str = RAW) -> dict[str, Counter[str]]:
    with duckdb.connect(str(database), read_only=True) as db:
        return content(lambda sql: db.execute(sql).fetchall(), dataset)


def mart_counts(database: Path) -> dict[str, int]:
    with duckdb.connect(str(database), read_only=True) as db:
        tables = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? "
            "AND table_type = 'BASE TABLE'",
            [ANALYTICS],
        ).fetchall()
        counts = {}
        for (name,) in tables:
            table = f'{ANALYTICS}."{name}"'
            columns = {c[0] for c in db.execute(f"DESCRIBE {table}").fetchall()}
            # a history mart has rows per load, and the baseline loads once more than a
            # killed night (its rerun is a no-change load): compare the last load's rows
            latest = f" WHERE load_id = (SELECT max(load_id) FROM {table})"
            where = latest if "load_id" in columns else ""
            counts[name] = db.execute(f"SELECT COUNT(*) FROM {table}{where}").fetchone()[0]
        return counts


def differences(
    expected: dict[str, Counter[str]], actual: dict[str, Counter[str]]
) -> dict[str, str]:
    """Per table that differs: how many rows are extra and how many are missing."""
    out = {}
    for table in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(table, Counter()), actual.get(table, Counter())
        if want != got:
            out[table] = (
                f"{sum(got.values())} rows against {sum(want.values())}: "
                f"{sum((got - want).values())} extra, {sum((want - got).values())} missing"
            )
    return out


# ---- the cases ------------------------------------------------------------------------------

KILL_POINTS = [
    # reading: before the 10th HTTP call (nothing extracted yet)
    pytest.param("extract:10", id="extract"),
    # the package extracted, normalize running
    pytest.param("normalize:1", id="normalize"),
    # a copy job committed, not yet recorded by dlt: the doubled rows of the issue
    pytest.param("load-committed:course_progresses/copy", id="load-scd2-staging-copy"),
    pytest.param(
        "load-committed:saved_report__all_course_progresses_report/copy", id="load-replace-copy"
    ),
    pytest.param("load-committed:platform_counts/copy", id="load-append-copy"),
    pytest.param("load-committed:_dlt_pipeline_state/copy", id="load-state-copy"),
    # the scd2 merge (staging -> final) committed, not yet recorded
    pytest.param("load-committed:course_progresses/merge", id="load-scd2-merge"),
    # a job recorded as done, not yet moved to completed
    pytest.param("load-recorded:users/copy", id="load-recorded"),
    # the merge jobs created, the job that completed the chain not yet moved
    pytest.param("load-followup:3", id="load-followup"),
    # the package's _dlt_loads row written, the package not yet archived
    pytest.param("load-package:1", id="load-package"),
    # data loaded, the 5th model statement
    pytest.param("models:5", id="models"),
]


@pytest.mark.parametrize("crash_at", KILL_POINTS)
def test_a_rerun_after_kill_9_loads_the_night_exactly_once(
    night: Night, baseline: dict[str, Counter[str]], crash_at: str
) -> None:
    name = crash_at.replace(":", "_").replace("/", "_")
    cwd, _ = night.killed(name, crash_at)

    assert differences(baseline, duckdb_content(cwd / "skyprep.duckdb")) == {}
    assert mart_counts(cwd / "skyprep.duckdb") == mart_counts(
        night.root / "baseline" / "skyprep.duckdb"
    )


def test_a_kill_while_a_rerun_finishes_the_package_is_recovered_as_well(
    night: Night, baseline: dict[str, Counter[str]]
) -> None:
    # the second run is killed at the same point of the package it finishes
    cwd, _ = night.killed("twice", "load-committed:course_progresses/copy", kills=2)

    assert differences(baseline, duckdb_content(cwd / "skyprep.duckdb")) == {}


def test_a_rerun_says_it_finished_the_package_a_kill_left(night: Night) -> None:
    _, stderr = night.killed("says", "load-committed:course_progresses/copy")

    finished = [line for line in stderr.splitlines() if "left by an interrupted run" in line]
    assert len(finished) == 1, stderr[-2000:]
    # the job killed in the window, and any other job started then, are loaded again
    reloaded = finished[0].split("; reloaded ", 1)[1].removesuffix(" (half-loaded when it stopped)")
    assert "course_progresses" in reloaded.split(", ")


def test_a_kill_during_a_full_refresh_load_then_a_rerun_equals_a_full_refresh(
    night: Night,
) -> None:
    expected = duckdb_content(
        night.uninterrupted("refresh-baseline", "--full-refresh") / "skyprep.duckdb"
    )

    cwd, _ = night.killed(
        "refresh-killed", "load-committed:course_progresses/copy", "--full-refresh"
    )

    assert differences(expected, duckdb_content(cwd / "skyprep.duckdb")) == {}


# ---- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    "crash_at",
    [
        "load-committed:course_progresses/copy",
        "load-committed:saved_report__all_course_progresses_report/copy",
        "load-package:1",
    ],
)
def test_a_rerun_after_kill_9_during_a_postgres_load_loads_exactly_once(
    night: Night, tmp_path: Path, crash_at: str
) -> None:
    """The night as a first load into PostgreSQL, killed and rerun, against one uninterrupted
    first load (and its rerun) into a schema of its own."""
    import psycopg2
    from test_models_marts import postgres_dsn, with_password

    dsn = with_password(postgres_dsn())
    suffix = uuid.uuid4().hex[:8]
    datasets = {"baseline": f"crash_base_{suffix}", "killed": f"crash_kill_{suffix}"}

    def start(kind: str) -> tuple[Path, dict[str, str], list[str]]:
        cwd = tmp_path / kind
        cwd.mkdir()
        env = sandbox_environment(cwd, night.sandbox)
        env["DESTINATION__POSTGRES__CREDENTIALS"] = dsn
        dataset = datasets[kind]
        args = ["--destination", "postgres", "--dataset", dataset]
        return cwd, env, [*args, "--analytics-dataset", f"{dataset}_analytics"]

    try:
        cwd, env, args = start("baseline")
        for _ in range(2):
            assert skyprep(cwd, env, *args).returncode == 0
        cwd, env, args = start("killed")
        killed = skyprep(cwd, env, *args, crash_at=crash_at)
        assert killed.returncode == -9, killed.stderr[-3000:]
        rerun = skyprep(cwd, env, *args)
        assert rerun.returncode == 0, rerun.stderr[-3000:]

        with psycopg2.connect(dsn) as conn:

            def query(sql: str) -> list[tuple[Any, ...]]:
                with conn.cursor() as cursor:
                    cursor.execute(sql.replace("%", "%%"))
                    return cursor.fetchall()

            expected = content(query, datasets["baseline"])
            actual = content(query, datasets["killed"])
        assert {"course_progresses", "users", MEASUREMENTS} <= set(expected)
        assert differences(expected, actual) == {}
    finally:
        with psycopg2.connect(dsn) as conn, conn.cursor() as cursor:
            for dataset in datasets.values():
                for schema in (dataset, f"{dataset}_staging", f"{dataset}_analytics"):
                    cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
