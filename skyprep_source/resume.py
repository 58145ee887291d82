"""A run killed at any step, re-run, ends with exactly the upstream data (DESIGN rule 5).

What a `kill -9` leaves behind, and why dlt alone would double rows:

- killed while extracting: an unfinished package in a folder of dlt's extract
  (`normalize/<random id>/`) that no step ever reads or deletes; the state it carried was
  never committed. `discard_unfinished_extracts` deletes it (its files can be a partial
  snapshot: megabytes to gigabytes).
- killed while normalizing: the package is still `extracted`; dlt normalizes it again.
- killed while loading: the package is `normalized` with some jobs done. dlt resumes it on
  the next `pipeline.run` and then **returns without extracting** ("read 0 rows": that
  night's data is not loaded). `finish_pending_packages` therefore finishes the package
  first; the job then reads the night as usual.
- the doubled rows: a load job commits in the destination, *then* dlt writes the job's
  "pending transition" marker (dlt 1.31, `RunnableLoadJob._release`). A kill between the two
  leaves a started job without a marker, and dlt runs it again. A copy job is not
  idempotent: into the staging dataset of a `merge` table it appends the file a second
  time, and the scd2 merge then inserts every new or changed row twice (two current
  versions); into a `replace` table (the saved reports) or an `append` table it doubles the
  rows in place. The merge (a SQL followup job) is idempotent given its staging table:
  re-running it retires and inserts nothing more.
- killed after the package's `_dlt_loads` row was written, before dlt archived it: dlt
  writes the row again.

The fix makes each job *in doubt* (started, no marker) exactly-once: before dlt resumes the
package, every copy job of that table in this package is undone in the destination and put
back to `new_jobs`, and dlt loads them again:

| where the table's files land        | undone by                                     |
|-------------------------------------|-----------------------------------------------|
| staging dataset (`merge`)           | emptying the staging table (it holds only this package's files: dlt truncates it when the package starts) |
| final table, `replace`              | emptying it (dlt truncated it when the package started) |
| final table, `append`               | deleting its rows with this package's `_dlt_load_id` |

A followup (merge) job in doubt is left to dlt: it is re-run, which changes nothing. A
pending package's `_dlt_loads` row is deleted; dlt writes it once when the package completes.
Deleting files in the destination (not dlt's `delete_completed_jobs`) is what undoes a job:
the package's job files are deleted only after the package is archived as loaded.

Each step is itself safe to kill: the job in doubt is moved last, so a kill during the
recovery finds it still in doubt and redoes the recovery.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from dlt.common.schema.utils import get_nested_tables, get_root_table
from dlt.common.storages.load_package import PackageStorage, ParsedLoadJobFileName

# the folder of an extract in progress: dlt's `uniq_id(8)`
_UNFINISHED_EXTRACT = re.compile(r"[0-9a-f]{16}")
# job file extensions that are SQL the destination runs (followup jobs), not data files
_SQL_JOBS = frozenset({"sql"})


@dataclass
class PackageRecovery:
    """What was done to one pending package before dlt resumed it."""

    load_id: str
    redone_tables: list[str] = field(default_factory=list)  # copy jobs undone, to load again
    left_to_dlt: list[str] = field(default_factory=list)  # jobs in doubt dlt re-runs as they are


def pending_load_ids(pipeline: Any) -> list[str]:
    """The packages a killed run left: extracted (to normalize) and normalized (to load)."""
    return [*pipeline.list_extracted_load_packages(), *pipeline.list_normalized_load_packages()]


def finish_pending_packages(pipeline: Any) -> list[PackageRecovery]:
    """Make every job in doubt exactly-once, then normalize and load what a killed run left.
    Call it holding the pipeline's run lock (skyprep_source.run_lock): it assumes no other
    process works on the pipeline.

    Returns what was recovered (empty when nothing was pending). Raises what dlt raises when
    the destination refuses the load, as `pipeline.load` does."""
    discard_unfinished_extracts(pipeline)
    if not pending_load_ids(pipeline):
        return []
    if pipeline.list_extracted_load_packages():
        pipeline.normalize()
    recoveries = [
        prepare_package(pipeline, load_id) for load_id in pipeline.list_normalized_load_packages()
    ]
    if recoveries:
        pipeline.load()
    return recoveries


def discard_unfinished_extracts(pipeline: Any) -> list[str]:
    """Delete the folders of extracts a killed run never finished (dlt names each after a
    random 16-hex-digit id beside `normalize/extracted`); returns their paths."""
    root = os.path.join(pipeline.working_dir, "normalize")
    if not os.path.isdir(root):
        return []
    unfinished = [
        os.path.join(root, name)
        for name in os.listdir(root)
        if _UNFINISHED_EXTRACT.fullmatch(name) and os.path.isdir(os.path.join(root, name))
    ]
    for path in unfinished:
        shutil.rmtree(path, ignore_errors=True)
    return unfinished


def prepare_package(pipeline: Any, load_id: str) -> PackageRecovery:
    """Undo the copy jobs in doubt of one normalized package and requeue them (see module)."""
    packages: PackageStorage = pipeline._get_load_storage().normalized_packages
    recovery = PackageRecovery(load_id)
    schema = pipeline.schemas[packages.schema_name(load_id)]
    in_doubt = [
        os.path.basename(path)
        for path in packages.list_started_jobs(load_id)
        if packages.load_pending_transition(load_id, os.path.basename(path)) is None
    ]
    roots: set[str] = set()
    for name in in_doubt:
        info = ParsedLoadJobFileName.parse(name)
        if info.file_format in _SQL_JOBS or info.table_name not in schema.tables:
            recovery.left_to_dlt.append(name)
            continue
        roots.add(str(get_root_table(schema.tables, info.table_name)["name"]))
    with pipeline.destination_client(schema.name) as client:
        sql_client = getattr(client, "sql_client", None)
        if sql_client is None:  # not a SQL destination: dlt's own resume is all there is
            recovery.left_to_dlt.extend(sorted(roots))
            return recovery
        for root in sorted(roots):
            chain = [str(table["name"]) for table in get_nested_tables(schema.tables, root)]
            _undo_table_chain(client, sql_client, schema, load_id, chain)
            _requeue(packages, load_id, chain)
            recovery.redone_tables.append(root)
        _forget_load(sql_client, schema, load_id)
    return recovery


def _undo_table_chain(
    client: Any, sql_client: Any, schema: Any, load_id: str, chain: list[str]
) -> None:
    """Remove from the destination every row this package's copy jobs wrote to `chain`."""
    root = chain[0]
    to_staging = bool(
        getattr(client, "should_load_data_to_staging_dataset", lambda _n: False)(root)
    )
    where, params = "", []
    if not (to_staging or client.should_truncate_table_before_load(root)):
        # append: only this package's rows
        load_id_column = schema.naming.normalize_identifier("_dlt_load_id")
        missing = [name for name in chain if load_id_column not in schema.tables[name]["columns"]]
        if missing:
            raise RuntimeError(
                f"cannot undo a half-loaded append to {', '.join(missing)}: the table has no "
                f"{load_id_column} column"
            )
        where, params = f" WHERE {sql_client.escape_column_name(load_id_column)} = %s", [load_id]
    with sql_client.with_staging_dataset() if to_staging else nullcontext():
        for name in chain:
            if _table_exists(sql_client, name):
                table = sql_client.make_qualified_table_name(name)
                sql_client.execute_sql(f"DELETE FROM {table}{where}", *params)


def _requeue(packages: PackageStorage, load_id: str, chain: Iterable[str]) -> None:
    """Move every data job of `chain` back to new_jobs: completed first, in doubt last."""
    tables = set(chain)
    for folder in (PackageStorage.COMPLETED_JOBS_FOLDER, PackageStorage.STARTED_JOBS_FOLDER):
        names = [
            os.path.basename(path)
            for path in packages.storage.list_folder_files(
                packages.get_job_state_folder_path(load_id, folder), to_root=False
            )
        ]
        for name in names:
            info = _parse(name)
            if info is None or info.table_name not in tables or info.file_format in _SQL_JOBS:
                continue
            packages.storage.atomic_rename(
                packages.get_job_file_path(load_id, folder, name),
                packages.get_job_file_path(load_id, PackageStorage.NEW_JOBS_FOLDER, name),
            )
            packages.clear_pending_transition(load_id, name)


def _forget_load(sql_client: Any, schema: Any, load_id: str) -> None:
    """Delete a pending package's `_dlt_loads` row: dlt writes it when the package completes
    (a kill after that write and before dlt archived the package would leave two)."""
    if _table_exists(sql_client, schema.loads_table_name):
        table = sql_client.make_qualified_table_name(schema.loads_table_name)
        column = sql_client.escape_column_name(schema.naming.normalize_identifier("load_id"))
        sql_client.execute_sql(f"DELETE FROM {table} WHERE {column} = %s", load_id)


def _table_exists(sql_client: Any, table_name: str) -> bool:
    try:
        sql_client.execute_sql(
            f"SELECT 1 FROM {sql_client.make_qualified_table_name(table_name)} WHERE 1 = 0"
        )
    except Exception:  # the table was never created (dlt creates it when the package starts)
        return False
    return True


def _parse(name: str) -> ParsedLoadJobFileName | None:
    try:
        return ParsedLoadJobFileName.parse(name)
    except Exception:  # exception files and other bookkeeping beside the jobs
        return None
