"""The models runner: builds the SQL models in ``sql/`` on a pipeline's own destination.

The models are plain SELECT files written once in DuckDB's dialect. Staging models
(``sql/staging/stg_*.sql``) name raw tables unqualified (``from users``); marts
(``sql/marts/{dim,fct,agg,bridge}_*.sql``) name other models unqualified (``from stg_users``).
This module parses each file with sqlglot, derives the build order from the table references,
qualifies every reference with the raw or the analytics dataset, transpiles to the
destination's dialect (rewriting what sqlglot cannot, e.g. ``median`` for BigQuery) and executes through ``pipeline.sql_client()``: staging as views,
marts as tables.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any, Literal

import dlt
import sqlglot
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.destinations.sql_client import SqlClientBase
from sqlglot import exp

DEFAULT_ANALYTICS_DATASET = "skyprep_analytics"
MODELS_DIALECT = "duckdb"
STAGING_PREFIX = "stg_"
MART_PREFIXES = ("dim_", "fct_", "agg_", "bridge_")

Layer = Literal["staging", "marts"]


class ModelDefinitionError(ValueError):
    """A model file breaks the models' rules (layering, naming, grain comment, cycles)."""


@dataclass(frozen=True)
class Model:
    """One SQL model: its file's SELECT, parsed, and what it reads."""

    name: str
    layer: Layer
    sql: str
    model_refs: frozenset[str]
    raw_refs: frozenset[str]

    @property
    def materialization(self) -> Literal["view", "table"]:
        """Staging models are views (always fresh, no copy); marts are tables (fast to read)."""
        return "view" if self.layer == "staging" else "table"

    def parse(self) -> exp.Expr:
        """A fresh syntax tree of the model's SELECT (callers may mutate it)."""
        return sqlglot.parse_one(self.sql, read=MODELS_DIALECT)


@dataclass
class ModelsBuild:
    """What `build_models` did: returned to the caller (the scheduled load logs it)."""

    dataset_name: str
    destination: str
    as_of: dt.datetime | None = None
    built: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        marts = ", ".join(f"{name}={count}" for name, count in self.rows.items())
        text = (
            f"built {len(self.built)} models in {self.dataset_name} on {self.destination} "
            f"(as of {self.as_of}): {marts}"
        )
        if self.skipped:
            text += f"; skipped {', '.join(sorted(self.skipped))}"
        return text


def models_directory() -> Traversable:
    """The ``sql`` directory shipped inside the package (works from a wheel, not only a checkout)."""
    return importlib.resources.files("skyprep_source") / "sql"


def table_references(expression: exp.Expr) -> set[str]:
    """Names of the tables a query reads, leaving out its own CTEs."""
    cte_names = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    names: set[str] = set()
    for table in expression.find_all(exp.Table):
        if table.name in cte_names and not table.db:
            continue
        if table.db or table.catalog:
            raise ModelDefinitionError(
                f"{table.sql(MODELS_DIALECT)}: models name tables unqualified; "
                "the runner qualifies them with the right dataset"
            )
        names.add(table.name)
    return names


def _layer_of(name: str) -> Layer:
    if name.startswith(STAGING_PREFIX):
        return "staging"
    if name.startswith(MART_PREFIXES):
        return "marts"
    raise ModelDefinitionError(
        f"{name}: a model's name starts with {STAGING_PREFIX!r} or one of {MART_PREFIXES}"
    )


def load_models(directory: Traversable | None = None) -> dict[str, Model]:
    """Read and check every model under ``staging/`` and ``marts/`` of `directory`.

    Raises `ModelDefinitionError` when a file lacks its grain comment, sits in the wrong
    folder, or reads across layers (staging reads raw tables only; marts read models only).
    """
    root = directory or models_directory()
    files: list[tuple[Layer, Traversable]] = []
    for layer in ("staging", "marts"):
        folder = root / layer
        if folder.is_dir():
            files += [(layer, f) for f in folder.iterdir() if f.name.endswith(".sql")]
    names = {f.name.removesuffix(".sql") for _, f in files}
    models: dict[str, Model] = {}
    for layer, file in sorted(files, key=lambda item: item[1].name):
        name = file.name.removesuffix(".sql")
        if _layer_of(name) != layer:
            raise ModelDefinitionError(f"{name}: belongs in sql/{_layer_of(name)}/")
        sql = file.read_text(encoding="utf-8")
        if not sql.lstrip().lower().startswith("-- grain:"):
            raise ModelDefinitionError(f"{name}: the file starts with a '-- grain: ...' comment")
        refs = table_references(sqlglot.parse_one(sql, read=MODELS_DIALECT))
        model_refs = frozenset(refs & names)
        raw_refs = frozenset(refs - names)
        if layer == "staging" and model_refs:
            raise ModelDefinitionError(
                f"{name}: staging reads raw tables only, not {sorted(model_refs)}"
            )
        if layer == "staging" and len(raw_refs) != 1:
            raise ModelDefinitionError(f"{name}: staging reads exactly one raw table")
        if layer == "marts" and raw_refs:
            raise ModelDefinitionError(
                f"{name}: marts read staging or other marts only, not {sorted(raw_refs)}"
            )
        models[name] = Model(name, layer, sql, model_refs, raw_refs)
    return models


def build_order(models: Mapping[str, Model]) -> list[str]:
    """Models in dependency order (a model after everything it reads), ties by name."""
    waiting = {name: set(model.model_refs) for name, model in models.items()}
    order: list[str] = []
    while waiting:
        ready = sorted(name for name, deps in waiting.items() if not deps)
        if not ready:
            raise ModelDefinitionError(f"models reference each other in a cycle: {sorted(waiting)}")
        for name in ready:
            order.append(name)
            del waiting[name]
        for deps in waiting.values():
            deps.difference_update(ready)
    return order


TableNamer = Callable[[str], exp.Table]


def qualified_select(model: Model, name_table: TableNamer) -> exp.Expr:
    """The model's SELECT with every table reference qualified by `name_table`."""
    expression = model.parse()
    cte_names = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    for table in list(expression.find_all(exp.Table)):
        if table.name in cte_names and not table.db:
            continue
        qualified = name_table(table.name)
        for part in ("this", "db", "catalog"):
            table.set(part, qualified.args.get(part))
    return expression


def _bigquery_median(node: exp.Expr) -> exp.Expr:
    """`median(x)` -> `APPROX_QUANTILES(x, 100)[SAFE_OFFSET(50)]`: BigQuery has no MEDIAN, and
    its PERCENTILE_CONT is an analytic function only, which does not fit a GROUP BY. This is an
    aggregate (nulls ignored, NULL for no rows), approximate on large groups and, for an even
    count, one of the two middle values rather than their mean."""
    if not isinstance(node, exp.Median):
        return node
    quantiles = exp.ApproxQuantiles(this=node.this.copy(), expression=exp.Literal.number(100))
    return exp.Bracket(this=quantiles, expressions=[exp.Literal.number(50)], offset=0, safe=True)


# rewrites for constructs sqlglot carries over to a dialect that lacks them
_DIALECT_REWRITES: dict[str, Callable[[exp.Expr], exp.Expr]] = {"bigquery": _bigquery_median}


def for_dialect(expression: exp.Expr, dialect: str) -> exp.Expr:
    """`expression` (DuckDB's dialect) with the constructs `dialect` lacks rewritten, ready
    for `.sql(dialect=dialect)`."""
    rewrite = _DIALECT_REWRITES.get(dialect)
    return expression.transform(rewrite) if rewrite else expression


def render_statements(model: Model, dialect: str, name_table: TableNamer) -> list[str]:
    """DROP + CREATE of the model as a view or a table, transpiled to `dialect`.

    Drop-then-create rather than CREATE OR REPLACE: PostgreSQL has no CREATE OR REPLACE TABLE
    and refuses to replace a view whose columns changed.
    """
    target = name_table(model.name)
    kind = model.materialization.upper()
    drop = exp.Drop(tables=[target.copy()], kind=kind, exists=True)
    select = for_dialect(qualified_select(model, name_table), dialect)
    create = exp.Create(this=target.copy(), kind=kind, expression=select)
    return [drop.sql(dialect=dialect), create.sql(dialect=dialect, pretty=True)]


def _table_expression(path: Iterable[str]) -> exp.Table:
    """An exp.Table from dlt's [catalog,] dataset, table path (already case-folded)."""
    *prefix, name = path
    catalog, db = (None, prefix[0]) if len(prefix) == 1 else (prefix[0], prefix[1])
    return exp.Table(
        this=exp.to_identifier(name, quoted=True),
        db=exp.to_identifier(db, quoted=True) if db else None,
        catalog=exp.to_identifier(catalog, quoted=True) if catalog else None,
    )


def _namer(client: SqlClientBase[Any], models: Mapping[str, Model], analytics: str) -> TableNamer:
    """Qualifies a model name with the analytics dataset and any other name with the raw one."""
    raw_dataset = client.dataset_name
    # DuckDB stores view text: a catalog prefix (the file's name) would break the views when the
    # file is attached under another name, so DuckDB names stay schema-qualified only.
    keep_catalog = client.capabilities.sqlglot_dialect != "duckdb"

    def name_table(name: str) -> exp.Table:
        dataset = analytics if name in models else raw_dataset
        path = client.make_qualified_table_name_path(name, quote=False, dataset_name=dataset)
        return _table_expression(path if keep_catalog else path[-2:])

    return name_table


def _raw_table_exists(client: SqlClientBase[Any], table: exp.Table, dialect: str) -> bool:
    try:
        client.execute_sql(f"SELECT 1 FROM {table.sql(dialect=dialect)} WHERE 1 = 0")
    except (DatabaseUndefinedRelation, DestinationUndefinedEntity):
        return False
    return True


def build_models(
    pipeline: dlt.Pipeline,
    dataset_name: str = DEFAULT_ANALYTICS_DATASET,
    *,
    models_dir: Traversable | None = None,
) -> ModelsBuild:
    """Build every model on the pipeline's own destination into `dataset_name`.

    Raw tables are read from ``pipeline.dataset_name``; staging models become views and marts
    tables in `dataset_name` (created when missing). Models are transpiled from DuckDB's
    dialect to the destination's. A model whose raw table was never loaded (e.g. the resource
    was not selected) is skipped with everything that reads it, and listed in
    ``ModelsBuild.skipped``. On destinations with transactional DDL the whole build is one
    transaction, so readers never see half-built marts.

    Returns a `ModelsBuild`: the models built in order, the as-of time (the last successful
    load) and the row count of every mart.
    """
    models = load_models(models_dir)
    order = build_order(models)
    with pipeline.sql_client() as client:
        dialect = client.capabilities.sqlglot_dialect or MODELS_DIALECT
        name_table = _namer(client, models, dataset_name)
        result = ModelsBuild(
            dataset_name=dataset_name, destination=pipeline.destination.destination_name
        )

        raw_tables = sorted({raw for model in models.values() for raw in model.raw_refs})
        missing = {
            raw for raw in raw_tables if not _raw_table_exists(client, name_table(raw), dialect)
        }
        to_build: list[Model] = []
        for name in order:
            model = models[name]
            if absent := sorted(model.raw_refs & missing):
                result.skipped[name] = f"raw table {', '.join(absent)} not loaded"
            elif skipped := sorted(model.model_refs & result.skipped.keys()):
                result.skipped[name] = f"reads skipped {', '.join(skipped)}"
            else:
                to_build.append(model)

        with client.with_alternative_dataset_name(dataset_name):
            if not client.has_dataset():
                client.create_dataset()
        transaction = (
            client.begin_transaction()
            if client.capabilities.supports_ddl_transactions
            else nullcontext()
        )
        with transaction:
            for model in to_build:
                for statement in render_statements(model, dialect, name_table):
                    client.execute_sql(statement)
                result.built.append(model.name)

        for model in to_build:
            if model.layer == "marts":
                count_sql = f"SELECT COUNT(*) FROM {name_table(model.name).sql(dialect=dialect)}"
                rows = client.execute_sql(count_sql)
                result.rows[model.name] = int(rows[0][0]) if rows else 0
        if "stg_dlt_loads" in result.built:
            loads = name_table("stg_dlt_loads").sql(dialect=dialect)
            as_of = client.execute_sql(f"SELECT MAX(loaded_at) FROM {loads}")
            result.as_of = as_of[0][0] if as_of else None
    return result
