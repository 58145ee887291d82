"""What one load changed per table: rows new, updated, retired and unchanged.

Read from the scd2 validity columns dlt writes (`_dlt_valid_from`, `_dlt_valid_to`): every
version a load inserts or retires is stamped with the creation time of its load package, which
the load id encodes. The job prints this table after every run; `make demo` after its second
load. The SQL is written through sqlglot's dialects, so it runs on any SQL destination.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlglot import exp

from skyprep_source.catalogue import TABLES

# runs one SQL statement and returns its rows
Execute = Callable[[str], Sequence[Sequence[Any]]]


@dataclass
class TableChanges:
    """What one load did to one table."""

    table: str
    new: int
    updated: int
    retired: int
    unchanged: int | None = None  # current entities the load left as they were (scd2 tables)
    replaced: int | None = None  # rows of a `replace` table rewritten by this load
    appended: int | None = None  # rows an `append` table (a history) gained in this load

    @property
    def deleted(self) -> int:
        """`retired` under the demo's older name."""
        return self.retired

    @property
    def changed(self) -> bool:
        return bool(self.new or self.updated or self.retired or self.replaced or self.appended)


@dataclass
class ChangeReader:
    """How to query one dataset: run SQL, qualify a table name, and in which SQL dialect."""

    execute: Execute
    qualify: Callable[[str], str]
    dialect: str = "duckdb"

    @classmethod
    def for_duckdb(cls, db: Any, dataset: str) -> ChangeReader:
        """A reader over an open `duckdb` connection."""
        return cls(
            execute=lambda sql: db.execute(sql).fetchall(),
            qualify=lambda table: f'"{dataset}"."{table}"',
            dialect="duckdb",
        )

    @classmethod
    def for_pipeline(cls, pipeline: Any, client: Any) -> ChangeReader:
        """A reader over a pipeline's open `sql_client()`."""
        dialect = str(pipeline.destination.capabilities().sqlglot_dialect or "duckdb")
        return cls(
            execute=lambda sql: client.execute_sql(sql) or [],
            qualify=client.make_qualified_table_name,
            dialect=dialect,
        )


def natural_key(table: str) -> tuple[str, ...] | None:
    """The entity key of an scd2 table, from the source's endpoint catalogue."""
    endpoint = TABLES.get(table)
    return tuple(endpoint.primary_key) if endpoint is not None else None


def load_boundary(load_id: str) -> datetime:
    """The scd2 boundary of a load: dlt stamps every version a load inserts (and retires)
    with the creation time of its load package, which the load id encodes (Unix seconds)."""
    return datetime.fromtimestamp(float(load_id), tz=timezone.utc)


def table_changes(
    reader: ChangeReader,
    table: str,
    columns: Iterable[str],
    boundary: datetime,
    rows_loaded: int | None,
    disposition: str | None = None,
) -> TableChanges:
    """New, updated, retired and unchanged entities of `table` at the load `boundary`.

    A version inserted at the boundary (`_dlt_valid_from`) whose key also lost a version there
    (`_dlt_valid_to`) is an update, otherwise it is new; a version retired at the boundary whose
    key has no current version is a retirement; the other current entities are unchanged. An
    `append` table (a history, e.g. one row per run) reports the rows the load added; any other
    table without scd2 columns (a downloaded report, `replace`) the rows the load rewrote
    (`rows_loaded`, None = untouched).
    """
    if disposition == "append":
        return TableChanges(table, 0, 0, 0, appended=rows_loaded or 0)
    column_names = set(columns)
    key = natural_key(table)
    if "_dlt_valid_to" not in column_names or key is None or not set(key) <= column_names:
        return TableChanges(table, 0, 0, 0, replaced=rows_loaded or 0)
    key_sql = " || '|' || ".join(
        exp.cast(exp.column(name, quoted=True), "text").sql(dialect=reader.dialect) for name in key
    )
    # dlt and the destination may round the boundary's microseconds differently: a millisecond
    at_boundary = {
        column: exp.Between(
            this=exp.column(column),
            low=_timestamp(boundary - timedelta(milliseconds=1)),
            high=_timestamp(boundary + timedelta(milliseconds=1)),
        ).sql(dialect=reader.dialect)
        for column in ("_dlt_valid_from", "_dlt_valid_to")
    }
    qualified = reader.qualify(table)
    rows = reader.execute(
        f"""
        with added as (
            select distinct {key_sql} as k from {qualified} where {at_boundary["_dlt_valid_from"]}
        ),
        retired as (
            select distinct {key_sql} as k from {qualified} where {at_boundary["_dlt_valid_to"]}
        ),
        current_keys as (
            select distinct {key_sql} as k from {qualified} where _dlt_valid_to is null
        )
        select
            (select count(*) from added where k not in (select k from retired)),
            (select count(*) from added where k in (select k from retired)),
            (select count(*) from retired where k not in (select k from current_keys)),
            (select count(*) from current_keys)
        """
    )
    new, updated, retired, current = (int(n) for n in (rows[0] if rows else (0, 0, 0, 0)))
    return TableChanges(table, new, updated, retired, unchanged=max(current - new - updated, 0))


def _timestamp(moment: datetime) -> exp.Expression:
    text = exp.Literal.string(moment.isoformat(sep=" "))
    return exp.cast(text, exp.DataType.build("timestamptz"))


def pipeline_changes(pipeline: Any, load_id: str, rows: dict[str, int]) -> list[TableChanges]:
    """Every data table's changes in `pipeline`'s load `load_id`, from its destination."""
    schema = pipeline.default_schema
    boundary = load_boundary(load_id)
    loaded = schema.data_table_names(seen_data_only=True)
    with pipeline.sql_client() as client:
        reader = ChangeReader.for_pipeline(pipeline, client)
        return [
            table_changes(
                reader,
                table,
                schema.get_table_columns(table).keys(),
                boundary,
                rows.get(table),
                str(schema.tables[table].get("write_disposition", "append")),
            )
            for table in sorted(loaded)
            if not table.startswith("_dlt")
        ]


def changes_lines(changes: Sequence[TableChanges], *, with_unchanged: bool = True) -> list[str]:
    """The change table: history tables with their counts, rewritten and appended tables in
    one line each, untouched tables named in one wrapped line."""
    history = [c for c in changes if c.replaced is None and c.appended is None]
    shown_history = [c for c in history if c.new or c.updated or c.retired]
    rewritten = [c for c in changes if c.replaced]
    appended = [c for c in changes if c.appended]
    shown = [*shown_history, *rewritten, *appended]
    unchanged = sorted(c.table for c in changes if c not in shown)
    width = max((len(c.table) for c in shown), default=5)
    header = f"  {'table':<{width}}  {'new':>7}  {'updated':>7}  {'retired':>7}"
    lines = [header + (f"  {'unchanged':>9}" if with_unchanged else "")]
    for change in shown_history:
        line = (
            f"  {change.table:<{width}}  {change.new:>7}  {change.updated:>7}  {change.retired:>7}"
        )
        if with_unchanged:
            line += f"  {change.unchanged if change.unchanged is not None else '':>9}"
        lines.append(line)
    for change in rewritten:  # snapshot tables without history: rewritten as a whole
        lines.append(f"  {change.table:<{width}}  replaced ({change.replaced} rows)")
    for change in appended:  # histories: this load's rows added beside the earlier ones
        lines.append(f"  {change.table:<{width}}  appended ({change.appended} rows)")
    if unchanged:
        lines += textwrap.wrap(
            ", ".join(unchanged), 96, initial_indent="  no change: ", subsequent_indent="    "
        )
    return lines
