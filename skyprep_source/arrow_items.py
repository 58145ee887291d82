"""Pages -> Arrow: the items dlt receives (typed tables with a `_row_hash` row version).

Records are typed by the table's schema (`normalize`), rows without a valid key are dropped
and counted, personal data is kept, hashed or dropped (`pii`), and the row version is added
(`row_hash`). Pages are joined into batches of about `BATCH_ROWS` rows first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

from skyprep_source.catalogue import ROW_HASH, TableSpec
from skyprep_source.normalize import json_columns, records_to_table
from skyprep_source.pii import apply_pii
from skyprep_source.retirement import RunReport
from skyprep_source.row_hash import add_row_hash

logger = logging.getLogger("skyprep_source")

# pages are joined up to this many rows before they become one Arrow table: dlt's and the
# row hash's cost per item is paid per ~5,000 rows, memory stays a few pages
BATCH_ROWS = 5_000


def page_table(records: Sequence[dict[str, Any]], endpoint: TableSpec) -> pa.Table:
    """One page of records -> its typed Arrow table, with the `_row_hash` row version."""
    # declared non-null (add_row_hash does), or dlt warns that the arrow and scd2 hints differ
    return add_row_hash(
        apply_pii(rows_with_keys(records_to_table(records, endpoint.schema), endpoint)), ROW_HASH
    )


def rows_with_keys(table: pa.Table, endpoint: TableSpec) -> pa.Table:
    """The rows whose id key (`primary_key` columns of kind `id`) is there and an integer.

    A row whose id is missing, `null`, `"abc"` or an object would load as a current row with a
    NULL key, and its real record, missing from the snapshot, would be retired: it is dropped
    and counted in the run's report (the real record is then confirmed by its own route)."""
    keys = [
        name
        for name in endpoint.primary_key
        if endpoint.schema.fields.get(name) == "id" and name in table.column_names
    ]
    if not keys or table.num_rows == 0:
        return table
    mask = pc.is_valid(table.column(keys[0]))
    for name in keys[1:]:
        mask = pc.and_(mask, pc.is_valid(table.column(name)))
    valid = int(pc.sum(mask).as_py() or 0)
    if valid == table.num_rows:
        return table
    report = RunReport.latest()
    if report is not None:
        report.bad_keys(endpoint.name, table.num_rows - valid)
    logger.warning(
        "SkyPrep %s: %d row(s) without a valid %s were not loaded",
        endpoint.name,
        table.num_rows - valid,
        "/".join(keys),
    )
    return table.filter(mask)


def as_item(table: pa.Table, endpoint: TableSpec) -> Any:
    """The item dlt receives: the table, hinted when extra fields hold JSON objects/arrays."""
    extra_json = [name for name in json_columns(table) if name not in endpoint.schema.fields]
    if extra_json:
        hints = dlt.mark.make_hints(columns=[{"name": n, "data_type": "json"} for n in extra_json])
        return dlt.mark.with_hints(table, hints)
    return table


def page_to_table(records: Sequence[dict[str, Any]], endpoint: TableSpec) -> Any:
    """One page of records -> the item dlt receives (typed Arrow table with `_row_hash`)."""
    return as_item(page_table(records, endpoint), endpoint)


def hashed_batches(pages: Iterable[pa.Table], endpoint: TableSpec) -> Iterator[pa.Table]:
    """Page tables joined into batches of about `BATCH_ROWS` rows, each with its `_row_hash`;
    at least one table (an empty snapshot is one empty typed table, so dlt still merges it and
    retires the records that are gone). Runs on the prefetch thread."""
    empty = True
    for table in batched_tables(pages):
        empty = False
        yield add_row_hash(apply_pii(rows_with_keys(table, endpoint)), ROW_HASH)
    if empty:
        yield page_table([], endpoint)


def empty_item(endpoint: TableSpec) -> Callable[[], Any]:
    """A factory of the empty typed table of `endpoint`."""
    return lambda: page_to_table([], endpoint)


def json_hints(endpoint: TableSpec) -> list[dict[str, Any]]:
    """dlt column hints for the schema's JSON columns (Arrow carries them as text)."""
    return [
        {"name": name, "data_type": "json"}
        for name, kind in endpoint.schema.fields.items()
        if kind == "json"
    ]


def record_ids(table: pa.Table, column: str = "id") -> list[int]:
    """The non-null values of an id column: the records a fan-out calls for."""
    return [i for i in table.column(column).to_pylist() if i is not None]


def batched_tables(pages: Iterable[pa.Table], min_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """Join consecutive page tables until they hold at least `min_rows` rows."""
    batch: list[pa.Table] = []
    rows = 0
    for page in pages:
        batch.append(page)
        rows += page.num_rows
        if rows >= min_rows:
            yield from _joined(batch)
            batch, rows = [], 0
    if batch:
        yield from _joined(batch)


def _joined(tables: list[pa.Table]) -> Iterator[pa.Table]:
    if len(tables) == 1:
        yield tables[0]
        return
    try:
        yield pa.concat_tables(tables, promote_options="default")  # no copy: chunks
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # pages whose extra fields disagree (a number on one page, text on the next): each
        # goes alone, and dlt's schema evolution decides, as for any two items
        yield from tables
