"""The default DuckDB destination bounds DuckDB's memory unless the user sets DuckDB up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from skyprep_source.duckdb_destination import DUCKDB_SETTINGS, duckdb_destination

SETTINGS_SQL = (
    "select current_setting('memory_limit'), current_setting('threads'), "
    "current_setting('preserve_insertion_order')"
)


def settings_after_a_load(tmp_path: Path, destination: Any) -> tuple[Any, ...]:
    pipeline = dlt.pipeline(
        "duckdb_settings",
        destination=destination,
        dataset_name="skyprep_data",
        pipelines_dir=str(tmp_path / "pipelines"),
    )
    pipeline.run([{"id": 1}], table_name="rows")
    with pipeline.sql_client() as client:
        rows = client.execute_sql(SETTINGS_SQL)
    assert rows
    return tuple(rows[0])


def test_the_default_destination_bounds_duckdb_memory(tmp_path: Path) -> None:
    database = tmp_path / "bounded.duckdb"
    memory_limit, threads, insertion_order = settings_after_a_load(
        tmp_path, duckdb_destination(str(database))
    )
    assert memory_limit == "61.0 MiB"  # DuckDB prints 64MB in MiB
    assert int(threads) == DUCKDB_SETTINGS["threads"]
    assert insertion_order is False
    assert database.exists()


def test_settings_configured_by_the_user_win_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1GB"}')
    memory_limit, _, insertion_order = settings_after_a_load(
        tmp_path, duckdb_destination(str(tmp_path / "user.duckdb"))
    )
    assert memory_limit == "953.6 MiB"
    assert insertion_order is True  # DuckDB's own default: the user's config replaced ours
