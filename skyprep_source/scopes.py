"""The scd2 scopes as SQL: which current rows a load may retire (dlt's `destination_scope`).

A complete snapshot may retire any current row (`catalogue.WHOLE_TABLE`); a read of some
courses only the rows of those courses (`ids_in`); a date window only the rows inside it
(`utc_day_range_sql`). Moments are written as time-zone-aware literals (`timestamptz`), so the
destination session's time zone cannot shift them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone

import dlt
from sqlglot import exp


def timestamptz(moment: datetime) -> exp.Expr:
    """`moment` as a time-zone-aware SQL literal (cast to the dialect's TIMESTAMPTZ)."""
    text = exp.Literal.string(moment.isoformat(sep=" "))
    return exp.cast(text, exp.DataType.build("timestamptz"))


def ids_in(column: str, ids: Iterable[int]) -> str:
    """`column IN (...)` of these integer ids (`1 = 0` when there are none: nothing)."""
    wanted = sorted({int(i) for i in ids})
    return f"{column} IN ({', '.join(map(str, wanted))})" if wanted else "1 = 0"


def utc_day_range_sql(
    column: str, first_day: date, end_day: date, dialect: str | None = None
) -> str:
    """`column >= first_day AND column < end_day`, both midnight UTC, as SQL of `dialect`
    (default: the running pipeline's destination).

    The bounds are timestamps with an explicit +00:00 offset cast to the destination's
    time-zone-aware type (TIMESTAMPTZ, BigQuery's TIMESTAMP, ...): a bare date string would be
    read in the session's time zone on PostgreSQL and DuckDB, so on a server not set to UTC the
    scd2 scope would reach into the day before the window and retire sessions it never read.
    """
    dialect = dialect or destination_dialect()

    def midnight_utc(day: date) -> exp.Expr:
        return timestamptz(datetime.combine(day, datetime.min.time(), timezone.utc))

    column_sql = exp.column(column)
    condition = exp.and_(
        exp.GTE(this=column_sql, expression=midnight_utc(first_day)),
        exp.LT(this=column_sql.copy(), expression=midnight_utc(end_day)),
    )
    return condition.sql(dialect=dialect)


def destination_dialect() -> str:
    """The sqlglot dialect of the running pipeline's destination (DuckDB when there is none:
    an extract without a destination)."""
    try:
        destination = dlt.current.pipeline().destination
        dialect = destination.capabilities().sqlglot_dialect if destination else None
    except Exception:  # no active pipeline, or a destination without capabilities
        dialect = None
    return str(dialect or "duckdb")
