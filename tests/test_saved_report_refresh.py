"""Which saved reports a run downloads (issue #11 item 7), against the sandbox over HTTP.

The sandbox's "Overdue Learners" is a live report (`saved_report_type` `saved_report`): its CSV
is rendered at download time, so its rows follow the account while its `updated_at` never
moves. The two others store their result (`saved_report_with_data`) and change only when they
are regenerated, which moves `updated_at`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_source import Warehouse

from skyprep_sandbox import Sandbox
from skyprep_source.reports import csv_to_table, report_table_name

LIVE = "Overdue Learners"


@pytest.fixture
def warehouse(sandbox: Sandbox, tmp_path: Path) -> Warehouse:
    """A pipeline into a DuckDB file under tmp_path, loading from the sandbox."""
    return Warehouse(sandbox, tmp_path / "warehouse")


def report(sandbox: Sandbox, name: str) -> dict[str, Any]:
    return next(r for r in sandbox.world.records("get_saved_advanced_reports") if r["name"] == name)


def downloads(sandbox: Sandbox) -> list[Any]:
    """The report ids downloaded since the last stats reset, from the sandbox's request log."""
    return [
        int(entry["params"]["saved_advanced_report_id"])
        for entry in sandbox.request_log
        if entry["route"] == "get_saved_advanced_report"
    ]


def served_rows(api: Callable[..., Any], report_id: int) -> list[dict[str, Any]]:
    """The report's rows as SkyPrep serves them now, typed as the source types them."""
    answer = api("get_saved_advanced_report", saved_advanced_report_id=report_id, format="csv")
    return sorted_rows(csv_to_table(answer.content).to_pylist())


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=repr)


def loaded_rows(warehouse: Warehouse, name: str) -> list[dict[str, Any]]:
    table = report_table_name(name)
    rows = warehouse.rows(f"select * from skyprep_data.{table}")
    # the CSV's headers as dlt names them: compare by values in header order
    return sorted_rows([dict(enumerate(row.values())) for row in rows])


def test_a_live_report_follows_the_account_while_its_updated_at_stays(
    sandbox: Sandbox, warehouse: Warehouse, api: Callable[..., Any]
) -> None:
    live = report(sandbox, LIVE)
    assert live["saved_report_type"] == "saved_report"
    warehouse.load()
    first = loaded_rows(warehouse, LIVE)

    sandbox.advance(days=3)  # deadlines pass, days overdue grow
    assert report(sandbox, LIVE)["updated_at"] == live["updated_at"]
    now = served_rows(api, live["id"])
    assert [dict(enumerate(r.values())) for r in now] != first  # the premise: rows moved
    sandbox.reset_stats()
    warehouse.load()

    assert live["id"] in downloads(sandbox)
    assert loaded_rows(warehouse, LIVE) == sorted_rows([dict(enumerate(r.values())) for r in now])


def test_an_unchanged_live_report_is_downloaded_but_its_table_not_rewritten(
    sandbox: Sandbox, warehouse: Warehouse
) -> None:
    warehouse.load()
    sandbox.reset_stats()

    warehouse.load()

    live = report(sandbox, LIVE)
    assert downloads(sandbox) == [live["id"]]  # the stored reports did not change
    written = warehouse.pipeline.last_trace.last_normalize_info.row_counts
    assert report_table_name(LIVE) not in written
    assert warehouse.count(report_table_name(LIVE)) > 0


@pytest.mark.parametrize("change", ["updated_at", "report_params_digest"])
def test_a_stored_report_is_downloaded_again_when_its_version_or_parameters_change(
    sandbox: Sandbox, warehouse: Warehouse, change: str
) -> None:
    warehouse.load()
    world = sandbox.world
    stored = report(sandbox, "Compliance Matrix")
    assert stored["saved_report_type"] == "saved_report_with_data"
    record = dict(world.saved_reports.get(stored["id"]))
    if change == "updated_at":
        record["updated_at"] = "2031-01-01T00:00:00.000-05:00"
    else:
        record["report_params_digest"] = "0" * 64  # its definition edited, same updated_at
    world.saved_reports.put(stored["id"], record, world.saved_reports.meta[stored["id"]])
    world.changed()
    sandbox.reset_stats()

    warehouse.load()

    assert sorted(downloads(sandbox)) == sorted([stored["id"], report(sandbox, LIVE)["id"]])
