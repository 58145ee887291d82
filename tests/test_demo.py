"""`make demo`: run as a subprocess at tiny scale in a temporary working directory, and its
change report checked against what really changed in the sandbox."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import dlt
import duckdb
import pytest

from skyprep_sandbox import Sandbox, World
from skyprep_source.job import RunOptions, run_load

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "pipelines" / "demo.py"
SECTIONS = (
    "== Day 1: first load ==",
    "== Day 2: second load ==",
    "== What changed on day 2 ==",
    "== Completion summary (skyprep_analytics) ==",
    "== Compliance trend (required training: group_assignments) ==",
)


def load_demo_module() -> ModuleType:
    """pipelines/demo.py is a script, not a package module: load it from its path."""
    spec = importlib.util.spec_from_file_location("skyprep_demo", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


def run_demo(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOURCES__", "DLT_"))}
    env["SKYPREP_DEMO_SCALE"] = "tiny"
    env["DLT_DATA_DIR"] = str(cwd / "dlt-data")  # the demo must not leave state here
    return subprocess.run(
        [sys.executable, str(DEMO)], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def section(output: str, title: str) -> str:
    """The text of one `== title ==` section."""
    return output.split(title, 1)[1].split("\n== ", 1)[0]


def test_demo_prints_each_section_leaves_the_database_and_repeats_identically(
    tmp_path: Path,
) -> None:
    first = run_demo(tmp_path)
    second = run_demo(tmp_path)  # same directory: the old database must not leak in

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    positions = [first.stdout.index(title) for title in SECTIONS]
    assert positions == sorted(positions)
    headline = section(first.stdout, SECTIONS[0]).strip().splitlines()[0]
    assert re.fullmatch(
        r"read \d+ rows into \d+ tables in [\d.]+s with [1-9]\d* API calls", headline
    )
    changes = section(first.stdout, SECTIONS[2])
    assert re.search(r"^\s+table\s+new\s+updated\s+retired\s+unchanged$", changes, re.MULTILINE)
    assert re.search(r"^\s+course_progresses\s+\d+\s+\d+\s+\d+\s+\d+$", changes, re.MULTILINE)
    assert "top courses by completion rate:" in first.stdout
    assert "learners by compliance status:" in first.stdout
    trend = section(first.stdout, SECTIONS[4]).strip().splitlines()
    assert [line.split()[0] for line in trend[1:3]] == ["1", "2"]  # one row per load
    assert re.search(
        r"^compliant share now: \d+\.\d% of [1-9]\d* learners$", "\n".join(trend), re.MULTILINE
    )
    # a fresh start each time: both runs report the very same loads and changes
    for title in SECTIONS[1:]:
        assert _without_timings(section(first.stdout, title)) == _without_timings(
            section(second.stdout, title)
        )
    with duckdb.connect(str(tmp_path / "skyprep.duckdb"), read_only=True) as db:
        (users,) = db.execute(
            "select count(*) from skyprep_data.users where _dlt_valid_to is null"
        ).fetchone() or (0,)
        (courses,) = db.execute(
            "select count(*) from skyprep_analytics.agg_course_completion"
        ).fetchone() or (0,)
    assert users > 0 and courses > 0
    assert not (tmp_path / "dlt-data" / "pipelines" / "skyprep").exists()
    # the report, with compliance by the department and location the demo maps
    report = tmp_path / "skyprep_report.html"
    assert f"The compliance report (open it in a browser): {report}" in first.stdout
    html = report.read_text(encoding="utf-8")
    assert 'data-chart="org"' in html
    assert "department: " in html and "location: " in html


def _without_timings(text: str) -> str:
    return re.sub(r"in [\d.]+s", "in <t>s", text)


@pytest.fixture
def demo() -> ModuleType:
    return load_demo_module()


def _snapshot(world: World) -> dict[str, dict[Any, dict[str, Any]]]:
    """What the API serves now, per table, by entity key."""
    progresses: dict[Any, dict[str, Any]] = {}
    for course in world.records("get_courses"):
        for record in world.records("get_course_progresses", course_id=course["id"]):
            progresses[str(record["id"])] = record
    users = {str(record["id"]): record for record in world.records("get_users")}
    return {"users": users, "course_progresses": progresses}


def test_change_report_matches_what_changed_in_the_sandbox(
    demo: ModuleType, tmp_path: Path, tiny_world: World
) -> None:
    database = tmp_path / "changes.duckdb"
    before = _snapshot(tiny_world)
    with Sandbox(tiny_world) as sandbox:
        options = RunOptions(
            destination=dlt.destinations.duckdb(str(database)),
            pipeline_name="demo_changes",
            resources=["users", "courses", "course_progresses"],
            build_models=False,
            pipelines_dir=str(tmp_path / "state"),
            source_options={
                "api_key": sandbox.api_key,
                "acct_key": sandbox.acct_key,
                "base_url": sandbox.base_url,
                "requests_per_minute": None,
            },
        )
        run_load(options)
        sandbox.advance(days=5)
        after = _snapshot(tiny_world)
        second = run_load(options)

    boundary = demo.load_boundary(second.load_ids[-1])
    with duckdb.connect(str(database), read_only=True) as db:
        for table in ("users", "course_progresses"):
            old, new = before[table], after[table]
            expected = (
                len(new.keys() - old.keys()),
                sum(1 for key in new.keys() & old.keys() if new[key] != old[key]),
                len(old.keys() - new.keys()),
            )
            change = demo.table_changes(db, "skyprep_data", table, boundary, None)
            assert (change.new, change.updated, change.deleted) == expected, table
            assert sum(expected) > 0, f"five days should change some {table}"
