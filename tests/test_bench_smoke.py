"""The benchmark harness end to end at the smallest scale: keys present, figures consistent.

No timing assertions: this machine is shared, and the figures only mean something in a
full `make bench` run. This pins that the harness runs and that what it writes adds up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CONTENDERS = ("source", "naive_dlt", "floor")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--scale",
            "tiny",
            "--rate-scale",
            "tiny",
            "--out",
            str(out),
            "--workdir",
            str(tmp / "work"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:] + completed.stdout[-2000:]
    return dict(json.loads(out.read_text()))


def test_bench_quick_writes_every_key(results: dict[str, Any]) -> None:
    for key in (
        "speedup_vs_naive",
        "ratio_to_floor",
        "calls_full_sync",
        "calls_minimum",
        "incremental_noop",
        "rate_limited",
        "machine",
        "scale",
        "page_size",
        "date",
        "git",
        "targets",
    ):
        assert key in results, key
    for name in CONTENDERS:
        assert {"seconds", "rows", "rows_per_s", "peak_rss_mb"} <= results[name].keys(), name
    noop = results["incremental_noop"]
    assert {"calls", "calls_verify_paging", "rows_rewritten", "report_downloads"} <= noop.keys()
    assert {"rows_rewritten", "append_only_tables", "rows_appended_to_history"} <= noop[
        "all_resources"
    ].keys()
    assert {"throttled_calls", "seconds", "floor_seconds"} <= results["rate_limited"].keys()
    assert all(isinstance(check["met"], bool) for check in results["targets"].values())


def test_bench_quick_figures_are_positive(results: dict[str, Any]) -> None:
    for name in CONTENDERS:
        measured = results[name]
        assert measured["seconds"] > 0 and measured["rows"] > 0 and measured["peak_rss_mb"] > 0
        assert measured["rows_per_s"] == pytest.approx(
            measured["rows"] / measured["seconds"], rel=0.01
        )
    assert results["calls_minimum"] > 0 and results["calls_full_sync"] > 0
    assert results["rate_limited"]["calls"] > 0


def test_bench_quick_counts_history_appends_apart_from_rewrites(results: dict[str, Any]) -> None:
    every_resource = results["incremental_noop"]["all_resources"]
    assert "platform_counts" in every_resource["append_only_tables"]
    assert every_resource["rows_appended_to_history"] == sum(
        every_resource["rows_rewritten_by_table"].get(table, 0)
        for table in every_resource["append_only_tables"]
    )
    assert every_resource["rows_rewritten"] == 0


def test_bench_quick_ratios_follow_from_the_figures(results: dict[str, Any]) -> None:
    source, naive, floor = (results[name] for name in CONTENDERS)
    assert results["speedup_vs_naive"] == pytest.approx(
        source["rows_per_s"] / naive["rows_per_s"], rel=0.01
    )
    assert results["ratio_to_floor"] == pytest.approx(
        source["seconds"] / floor["seconds"], rel=0.01
    )


def test_bench_quick_source_and_floor_load_the_same_world(results: dict[str, Any]) -> None:
    world = results["world"]
    assert (
        results["floor"]["rows"] == world["users"] + world["courses"] + world["course_progresses"]
    )
    assert results["same_rows_as_floor"] is True
    # the floor makes exactly the minimum calls by construction: a check on the harness itself
    assert results["floor"]["calls"] == results["calls_minimum"]


def test_bench_quick_runs_the_nightly_job_three_nights(results: dict[str, Any]) -> None:
    nightly = results["nightly"]
    nights = nightly["nights"]
    assert [night["night"] for night in nights] == [1, 2, 3]
    for night in nights:
        assert night["exit_code"] == 0, night["last_stderr_line"]
        assert night["calls"] > 0 and night["peak_rss_mb"] > 0 and night["seconds"] > 0
        assert {"extract", "normalize", "load", "models"} <= night["seconds_by_step"].keys()
    assert nightly["peak_rss_ratio_to_floor"] == [
        pytest.approx(night["peak_rss_mb"] / nightly["floor"]["peak_rss_mb"], rel=0.01)
        for night in nights
    ]
    assert results["targets"]["nightly_exit_codes"]["met"] is True
