"""Read the marts of a pipeline's destination: one small aggregate query at a time.

Queries are written once in DuckDB's dialect with unqualified mart names (as the models are),
qualified with the analytics dataset and transpiled to the destination's dialect by sqlglot,
then run through `pipeline.sql_client()`: the same queries on DuckDB and PostgreSQL.
Every query aggregates in SQL, so what comes back is bounded by the number of courses, groups,
weeks or loads, never by the number of progresses.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase
from sqlglot import exp

QUERY_DIALECT = "duckdb"


class MartReader:
    """Runs report queries against the marts in `analytics_dataset` of an open sql client."""

    def __init__(self, client: SqlClientBase[Any], analytics_dataset: str) -> None:
        self.client = client
        self.analytics_dataset = analytics_dataset
        self.dialect = client.capabilities.sqlglot_dialect or QUERY_DIALECT
        self._columns: dict[str, list[str] | None] = {}

    def table(self, name: str) -> exp.Table:
        """A mart's name qualified with the analytics dataset (and catalog where there is one)."""
        path = self.client.make_qualified_table_name_path(
            name, quote=False, dataset_name=self.analytics_dataset
        )
        *prefix, table = path
        # DuckDB: schema-qualified only (the file's catalog name depends on how it is attached)
        if self.dialect == "duckdb":
            prefix = prefix[-1:]
        catalog, db = (None, prefix[0]) if len(prefix) == 1 else (prefix[0], prefix[1])
        return exp.Table(
            this=exp.to_identifier(table, quoted=True),
            db=exp.to_identifier(db, quoted=True) if db else None,
            catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
        )

    def sql(self, query: str) -> str:
        """`query` (DuckDB dialect, unqualified marts) ready for the destination."""
        expression = sqlglot.parse_one(query, read=QUERY_DIALECT)
        ctes = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
        for table in list(expression.find_all(exp.Table)):
            if table.name in ctes and not table.db:
                continue
            qualified = self.table(table.name)
            for part in ("this", "db", "catalog"):
                table.set(part, qualified.args.get(part))
        return expression.sql(dialect=self.dialect)

    def columns(self, mart: str) -> list[str] | None:
        """The mart's column names, or None when it was not built (skipped or never run)."""
        if mart not in self._columns:
            try:
                with self.client.execute_query(
                    f"SELECT * FROM {self.table(mart).sql(dialect=self.dialect)} WHERE 1 = 0"
                ) as cursor:
                    self._columns[mart] = [str(c[0]).lower() for c in cursor.description or []]
            except (DatabaseUndefinedRelation, DestinationUndefinedEntity):
                self._columns[mart] = None
        return self._columns[mart]

    def has(self, mart: str, *columns: str) -> bool:
        """Whether the mart exists and has every one of `columns`."""
        present = self.columns(mart)
        return present is not None and set(columns) <= set(present)

    def rows(self, query: str) -> list[dict[str, Any]]:
        """The rows of `query` as dicts keyed by lower-case column name."""
        with self.client.execute_query(self.sql(query)) as cursor:
            names = [str(c[0]).lower() for c in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def one(self, query: str) -> dict[str, Any]:
        """The single row of an aggregate `query` (empty dict when there is none)."""
        found = self.rows(query)
        return found[0] if found else {}
