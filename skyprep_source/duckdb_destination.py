"""The default destination: DuckDB in this process, with its memory sized to the machine.

DuckDB runs inside the pipeline's process. Left alone it may take 80% of the machine's RAM;
with a fixed small limit (64MB, tuned on a three-table benchmark) the default nightly job on a
large account ran out of memory building the models. So the limit is a share of the
machine's memory (the cgroup's limit in a container) with a floor that the large sandbox
world's default run, models included, passes; beyond it DuckDB spills to its temporary
directory beside the database file. Without insertion order it can stream the merge (dlt's
SQL orders what needs ordering itself).

The database file is always resolved to an absolute path against the directory the job runs
in (or is an explicit path): dlt would otherwise put a relative or default file in the
directory where the pipeline's state was first created, whatever the current directory.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import dlt
from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

from skyprep_source import PIPELINE_NAME

GIB = 1024**3
# the floor: the sandbox's large world (100,000 users, 1,000 courses, ~1,000,000 progresses),
# default `skyprep run` with the models, three nights, passes at 1 GiB (docs/job.md §3)
MEMORY_LIMIT_FLOOR = 1 * GIB
# the share of the machine's memory above the floor, and DuckDB's own ceiling (its default)
MEMORY_SHARE = 0.25
MEMORY_CEILING_SHARE = 0.8
# the setting that raises the limit (a user's DuckDB configuration wins over these settings)
MEMORY_SETTING = 'DESTINATION__DUCKDB__CREDENTIALS__GLOBAL_CONFIG=\'{"memory_limit": "4GB"}\''
# DuckDB's memory beyond the limit grows per thread, so the threads are capped too
THREADS = 2
# where a user sets DuckDB up through dlt's config (env, config.toml or secrets.toml)
_USER_KEYS = (
    "destination.duckdb.credentials",
    "destination.duckdb.credentials.database",
    "destination.duckdb.credentials.global_config",
)


def machine_memory_bytes() -> int | None:
    """The memory this process may use: the machine's RAM, or the container's (cgroup v2 or
    v1) limit when lower. None when neither can be read."""
    sizes: list[int] = []
    with contextlib.suppress(ValueError, OSError, AttributeError):
        sizes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    for limit_file in (
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < 1 << 60:  # "max" or a huge number: no limit
            sizes.append(int(text))
    return min(sizes) if sizes else None


def default_memory_limit(memory_bytes: int | None = None) -> str:
    """DuckDB's `memory_limit`: 25% of the machine's memory, at least 1 GiB, at most DuckDB's
    own default of 80% (on a machine smaller than 1.25 GiB the floor does not fit)."""
    memory = memory_bytes if memory_bytes is not None else machine_memory_bytes()
    if memory is None:
        return f"{MEMORY_LIMIT_FLOOR // 1024**2}MB"
    limit = max(MEMORY_LIMIT_FLOOR, int(memory * MEMORY_SHARE))
    limit = min(limit, int(memory * MEMORY_CEILING_SHARE))
    return f"{limit // 1024**2}MB"


def duckdb_settings() -> dict[str, Any]:
    """The settings `duckdb_destination` gives DuckDB (unless the user configured DuckDB)."""
    return {
        "memory_limit": default_memory_limit(),
        "threads": THREADS,
        "preserve_insertion_order": False,
    }


def resolve_database_path(database: str | os.PathLike[str] | None, pipeline_name: str) -> str:
    """The database file as an absolute path: `database`, else the user's configured path
    (`destination.duckdb.credentials`), else `<pipeline_name>.duckdb`; a relative path is
    taken from the current directory. Special locations (`:memory:`) stay as they are."""
    path: Any = database if database is not None else user_database_path()
    if path is None:
        path = f"{pipeline_name}.duckdb"
    text = os.fspath(path)
    if text.startswith(":"):
        return text
    return os.path.abspath(os.path.expanduser(text))


def duckdb_destination(
    database: str | os.PathLike[str] | None = None, pipeline_name: str = PIPELINE_NAME
) -> Any:
    """dlt's `duckdb` destination with `duckdb_settings()`, into `database` (default:
    `./<pipeline_name>.duckdb`, resolved against the current directory).

    If the user configured `destination.duckdb.credentials` (a path, or any of its fields
    such as `global_config`), that configuration wins whole: dlt resolves it as usual and
    these settings are not applied (only the path is made absolute).
    """
    path = resolve_database_path(database, pipeline_name)
    if user_configured_duckdb():
        return dlt.destinations.duckdb(credentials=path)
    credentials = DuckDbCredentials(path, global_config=duckdb_settings())
    return dlt.destinations.duckdb(credentials=credentials)


def user_database_path() -> str | None:
    """The database path the user configured, if any."""
    for key in ("destination.duckdb.credentials.database", "destination.duckdb.credentials"):
        for accessor in (dlt.secrets, dlt.config):
            value: Any = accessor.get(key)
            if isinstance(value, (str, os.PathLike)) and os.fspath(value):
                return os.fspath(value)
    return None


def user_configured_duckdb() -> bool:
    """Whether dlt's configuration holds DuckDB credentials or settings of the user's."""
    for key in _USER_KEYS:
        for accessor in (dlt.config, dlt.secrets):
            if accessor.get(key) is not None:
                return True
    return False


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is DuckDB running out of memory."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if name == "OutOfMemoryException" or "Out of Memory Error" in str(current):
            return True
        wrapped = getattr(current, "exception", None)
        current = (
            wrapped
            if isinstance(wrapped, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return False
