"""The default DuckDB destination bounds DuckDB's memory unless the user sets DuckDB up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from skyprep_source.duckdb_destination import (
    GIB,
    THREADS,
    default_memory_limit,
    duckdb_destination,
    machine_memory_bytes,
)

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


def mib(setting: str) -> float:
    """DuckDB's printed memory_limit ("1.4 GiB", "953.6 MiB") in MiB."""
    number, unit = setting.split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "TiB": 1024**2}[unit]


def test_the_default_destination_sizes_duckdb_memory_from_the_machine(tmp_path: Path) -> None:
    database = tmp_path / "bounded.duckdb"
    memory_limit, threads, insertion_order = settings_after_a_load(
        tmp_path, duckdb_destination(str(database))
    )
    expected = int(default_memory_limit().removesuffix("MB"))
    # DuckDB reads "NMB" as N * 1000^2 bytes and prints MiB/GiB
    assert abs(mib(memory_limit) - expected * 1000**2 / 1024**2) < 0.1 * expected
    assert mib(memory_limit) >= 900  # the floor (1 GiB): the large world's nightly run passes
    assert int(threads) == THREADS
    assert insertion_order is False
    assert database.exists()


@pytest.mark.parametrize(
    ("memory", "limit"),
    [
        (24 * GIB, f"{6 * 1024}MB"),  # a quarter of the machine
        (2 * GIB, "1024MB"),  # the floor
        (1 * GIB, "819MB"),  # the floor does not fit: DuckDB's own 80%
    ],
)
def test_the_memory_limit_is_a_share_of_the_machine_with_a_floor(memory: int, limit: str) -> None:
    assert default_memory_limit(memory) == limit


def test_the_machine_memory_is_read() -> None:
    memory = machine_memory_bytes()
    assert memory is not None and memory > 256 * 1024**2


def test_a_relative_database_is_resolved_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    destination = duckdb_destination("relative.duckdb")
    assert destination.config_params["credentials"].database == str(tmp_path / "relative.duckdb")
    assert duckdb_destination().config_params["credentials"].database == str(
        tmp_path / "skyprep.duckdb"
    )


def test_settings_configured_by_the_user_win_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG", '{"memory_limit": "1GB"}')
    memory_limit, _, insertion_order = settings_after_a_load(
        tmp_path, duckdb_destination(str(tmp_path / "user.duckdb"))
    )
    assert memory_limit == "953.6 MiB"
    assert insertion_order is True  # DuckDB's own default: the user's config replaced ours
