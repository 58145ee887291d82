"""The demo's change report names what a load did to each kind of table: an append-only
history (platform_counts, one row per run) is "appended", never "replaced"; its closing hint
runs with what is installed."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import dlt
import duckdb
import pytest
from test_demo import load_demo_module

from skyprep_sandbox import Sandbox, World
from skyprep_source.job import RunOptions, run_load


def test_a_history_table_is_reported_as_appended_rows(
    tmp_path: Path, tiny_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = load_demo_module()
    database = tmp_path / "labels.duckdb"
    with Sandbox(tiny_world) as sandbox:
        options = RunOptions(
            destination=dlt.destinations.duckdb(str(database)),
            pipeline_name="demo_labels",
            resources=["platform_counts", "users"],
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
        second = run_load(options)

    with duckdb.connect(str(database), read_only=True) as db:
        dispositions = demo.write_dispositions(db, "skyprep_data")
        assert dispositions["platform_counts"] == "append"
        assert dispositions["users"] == "merge"
        boundary = demo.load_boundary(second.load_ids[-1])
        changes = [
            demo.table_changes(
                db, "skyprep_data", table, boundary, second.rows.get(table), dispositions[table]
            )
            for table in demo.data_tables(db, "skyprep_data")
        ]
    demo.print_changes(changes)
    report = capsys.readouterr().out
    assert "platform_counts" in report
    assert "appended (1 rows)" in report
    assert "replaced" not in report


def test_the_closing_hint_runs_an_installed_program() -> None:
    demo = load_demo_module()
    program, *arguments = shlex.split(demo.explore_hint())
    assert shutil.which(program) or Path(program).exists(), program
    assert "import duckdb" in " ".join(arguments)
