"""The default destination: DuckDB in this process, with its memory bounded.

DuckDB runs inside the pipeline's process and by default may use 80% of the machine's RAM:
a large first sync (a million rows staged, then merged as scd2) would take ~900 MB. With
a memory limit it spills to a temporary directory beside the database instead, and without
insertion order it can stream the merge (dlt's SQL orders what needs ordering itself).
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

# Measured on the benchmark's 1,000,000-progress world on 2 cores (docs/source.md §4): the
# sync's peak RSS is ~310-325 MB (~360 MB in a freshly installed venv, whose shared libraries
# are all in the page cache and so count in full) against ~840 MB unbounded. 96MB makes the
# load step ~0.4 s faster but peaks at ~390-399 MB in a fresh venv: too close to the 400 MB
# target. DuckDB's memory beyond the limit grows per thread, so the threads are capped too:
# the bound then holds on a machine with more cores.
DUCKDB_SETTINGS: dict[str, Any] = {
    "memory_limit": "64MB",
    "threads": 2,
    "preserve_insertion_order": False,
}
# where a user sets DuckDB up through dlt's config (env, config.toml or secrets.toml)
_USER_KEYS = (
    "destination.duckdb.credentials",
    "destination.duckdb.credentials.database",
    "destination.duckdb.credentials.global_config",
)


def duckdb_destination(database: str | None = None) -> Any:
    """dlt's `duckdb` destination with `DUCKDB_SETTINGS`, into `database` (default: dlt's
    `<pipeline name>.duckdb`).

    If the user configured `destination.duckdb.credentials` (a path, or any of its fields
    such as `global_config`), that configuration wins whole: dlt resolves it as usual and
    these settings are not applied.
    """
    path: Any = database  # None: dlt's default file, named after the pipeline
    if user_configured_duckdb():
        return dlt.destinations.duckdb(credentials=path)
    credentials = DuckDbCredentials(path, global_config=dict(DUCKDB_SETTINGS))
    return dlt.destinations.duckdb(credentials=credentials)


def user_configured_duckdb() -> bool:
    """Whether dlt's configuration holds DuckDB credentials or settings of the user's."""
    for key in _USER_KEYS:
        for accessor in (dlt.config, dlt.secrets):
            if accessor.get(key) is not None:
                return True
    return False
