"""The models runner: builds the SQL models in ``sql/`` on a pipeline's own destination.

The models are plain SELECT files written once in DuckDB's dialect. Staging models
(``sql/staging/stg_*.sql``) name raw tables unqualified (``from users``); intermediate models
(``sql/intermediate/int_*.sql``) and marts (``sql/marts/{dim,fct,agg,bridge}_*.sql``) name
other models unqualified (``from stg_users``).
This module parses each file with sqlglot, derives the build order from the table references,
qualifies every reference with the raw or the analytics dataset, transpiles to the
destination's dialect (rewriting what sqlglot cannot, e.g. ``median`` for BigQuery) and executes through ``pipeline.sql_client()``: staging as views,
marts as tables; an intermediate model is ephemeral, a CTE of each model that reads it (rules
shared by several marts, written once, with nothing more in the analytics dataset). A mart
with an ``-- incremental: <model>.<key>`` line (the history marts, one row set per load) is
built in full once and then only appended: each build evaluates the rows of ``<model>`` whose
``<key>`` the table does not hold yet; it is rebuilt in full when its SQL, the SQL of anything
it reads, the settings or the datasets change (the fingerprint kept in ``_skyprep_models``),
or when asked (``full_refresh``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.resources
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
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

from skyprep_source import ANALYTICS_DATASET_NAME

DEFAULT_ANALYTICS_DATASET = ANALYTICS_DATASET_NAME
MODELS_DIALECT = "duckdb"
STAGING_PREFIX = "stg_"
INTERMEDIATE_PREFIX = "int_"
MART_PREFIXES = ("dim_", "fct_", "agg_", "bridge_")

Layer = Literal["staging", "intermediate", "marts"]
LAYERS: tuple[Layer, ...] = ("staging", "intermediate", "marts")

# The one relation that carries the model settings into the SQL (docs/models.md, "Settings"):
# a table the runner writes into the analytics dataset before any model, read by marts like
# any other model. Columns (setting, name, value), all text.
SETTINGS_RELATION = "model_settings"
# the custom attributes an org dimension can name
CUSTOM_ATTRIBUTES = ("ca_0", "ca_1", "ca_2", "ca_3", "ca_4")
# the model whose select list gains one column per org dimension (`<attribute> as <name>`)
ORG_DIMENSION_MODEL = "dim_users"
# a staging file with this line reads as empty (the columns the source declares for its raw
# table) when the raw table was never loaded, instead of being skipped with its dependents
OPTIONAL_MARKER = "-- optional:"
# a mart with this line (`-- incremental: stg_dlt_loads.load_id`) is appended at each build with
# the rows of the named model whose key the table does not hold yet (docs/models.md, "Incremental
# history marts")
INCREMENTAL_MARKER = "-- incremental:"
# the runner's record of each incremental mart's fingerprint (model, fingerprint), in the
# analytics dataset; the leading underscore marks it as bookkeeping, like dlt's _dlt_loads
FINGERPRINTS_RELATION = "_skyprep_models"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class ModelSettingsError(ValueError):
    """A model setting the runner cannot use (the message names the fix)."""


@dataclass(frozen=True)
class ModelSettings:
    """What the compliance models need to know about the account (docs/models.md, "Settings").

    required_course_ids / required_course_tags: rule (a) of required training; when both are
    empty the rule comes from the data (group and learning-path assignments, else every
    enrolment). org_dimensions: a name for each custom attribute that holds an org dimension,
    e.g. {"department": "ca_0", "location": "ca_1"}.
    """

    required_course_ids: tuple[int, ...] = ()
    required_course_tags: tuple[str, ...] = ()
    org_dimensions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, attribute in self.org_dimensions.items():
            if attribute not in CUSTOM_ATTRIBUTES:
                raise ModelSettingsError(
                    f"models.org_dimensions: {name} = {attribute!r} is not a custom attribute; "
                    f"use one of {', '.join(CUSTOM_ATTRIBUTES)}"
                )
            if not _NAME.match(name):
                raise ModelSettingsError(
                    f"models.org_dimensions: {name!r} is not a usable column name; use lower "
                    "case letters, digits and '_', starting with a letter (e.g. department)"
                )
        taken = [a for a in CUSTOM_ATTRIBUTES if list(self.org_dimensions.values()).count(a) > 1]
        if taken:
            raise ModelSettingsError(
                f"models.org_dimensions: {', '.join(taken)} is named twice; give each custom "
                "attribute one name"
            )

    @classmethod
    def from_config(cls) -> ModelSettings:
        """The `[models]` section of dlt's config (config.toml, or env such as
        `MODELS__REQUIRED_COURSE_IDS='[12, 15]'`, `MODELS__ORG_DIMENSIONS='{"department":
        "ca_0"}'`); every setting is optional."""
        ids = dlt.config.get("models.required_course_ids", list) or []
        tags = dlt.config.get("models.required_course_tags", list) or []
        dimensions = dlt.config.get("models.org_dimensions", dict) or {}
        try:
            course_ids = tuple(int(i) for i in ids)
        except (TypeError, ValueError):
            raise ModelSettingsError(
                f"models.required_course_ids: {ids!r} is not a list of course ids; "
                "write e.g. required_course_ids = [12, 15]"
            ) from None
        if isinstance(tags, str):
            tags = [tags]
        return cls(
            course_ids, tuple(str(t) for t in tags), {str(k): str(v) for k, v in dimensions.items()}
        )

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> ModelSettings:
        """The settings a `model_settings` relation holds (the inverse of `rows`)."""
        rows = list(rows)
        return cls(
            tuple(int(value) for setting, _, value in rows if setting == "required_course_id"),
            tuple(str(value) for setting, _, value in rows if setting == "required_course_tag"),
            {str(name): str(value) for setting, name, value in rows if setting == "org_dimension"},
        )

    def rows(self) -> list[tuple[str, str | None, str]]:
        """The rows of the settings relation: (setting, name, value)."""
        return [
            *(("required_course_id", None, str(i)) for i in self.required_course_ids),
            *(("required_course_tag", None, tag) for tag in self.required_course_tags),
            *(("org_dimension", name, attr) for name, attr in self.org_dimensions.items()),
        ]


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
    # staging only: reads as empty instead of being skipped when its raw table is not loaded
    optional: bool = False
    # marts only: (model, key column) whose new rows are appended at each build
    incremental: tuple[str, str] | None = None

    @property
    def materialization(self) -> Literal["view", "table", "ephemeral", "incremental"]:
        """Staging models are views (always fresh, no copy); marts are tables (fast to read),
        appended to when incremental; intermediate models are ephemeral (inlined as a CTE where
        they are read)."""
        if self.layer == "staging":
            return "view"
        if self.layer == "intermediate":
            return "ephemeral"
        return "incremental" if self.incremental else "table"

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
    # incremental marts that were appended to (the others of `built` were built in full)
    appended: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        marts = ", ".join(f"{name}={count}" for name, count in self.rows.items())
        text = (
            f"built {len(self.built)} models in {self.dataset_name} on {self.destination} "
            f"(as of {self.as_of}): {marts}"
        )
        if self.appended:
            text += f"; appended to {', '.join(self.appended)}"
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
    if name.startswith(INTERMEDIATE_PREFIX):
        return "intermediate"
    if name.startswith(MART_PREFIXES):
        return "marts"
    raise ModelDefinitionError(
        f"{name}: a model's name starts with {STAGING_PREFIX!r}, {INTERMEDIATE_PREFIX!r} or "
        f"one of {MART_PREFIXES}"
    )


def load_models(directory: Traversable | None = None) -> dict[str, Model]:
    """Read and check every model under ``staging/`` and ``marts/`` of `directory`.

    Raises `ModelDefinitionError` when a file lacks its grain comment, sits in the wrong
    folder, or reads across layers (staging reads raw tables only; intermediate models and
    marts read models only).
    """
    root = directory or models_directory()
    files: list[tuple[Layer, Traversable]] = []
    for layer in LAYERS:
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
        reads_settings = SETTINGS_RELATION in refs
        refs.discard(SETTINGS_RELATION)
        if layer == "staging" and reads_settings:
            raise ModelDefinitionError(
                f"{name}: staging reads raw tables only; read {SETTINGS_RELATION} from a mart"
            )
        model_refs = frozenset(refs & names)
        raw_refs = frozenset(refs - names)
        if layer == "staging" and model_refs:
            raise ModelDefinitionError(
                f"{name}: staging reads raw tables only, not {sorted(model_refs)}"
            )
        if layer == "staging" and len(raw_refs) != 1:
            raise ModelDefinitionError(f"{name}: staging reads exactly one raw table")
        if layer != "staging" and raw_refs:
            what = (
                "marts read staging or other marts" if layer == "marts" else f"{layer} reads models"
            )
            raise ModelDefinitionError(f"{name}: {what} only, not {sorted(raw_refs)}")
        optional = layer == "staging" and any(
            line.strip().lower().startswith(OPTIONAL_MARKER) for line in sql.splitlines()
        )
        incremental = _incremental_marker(name, layer, sql, model_refs)
        models[name] = Model(name, layer, sql, model_refs, raw_refs, optional, incremental)
    return models


def _incremental_marker(
    name: str, layer: Layer, sql: str, model_refs: frozenset[str]
) -> tuple[str, str] | None:
    """(model, key) of a mart's `-- incremental: <model>.<key>` line, checked."""
    lines = [
        line.strip()[len(INCREMENTAL_MARKER) :].strip()
        for line in sql.splitlines()
        if line.strip().lower().startswith(INCREMENTAL_MARKER)
    ]
    if not lines:
        return None
    spec = lines[0].split()[0] if lines[0] else ""
    source, _, key = spec.partition(".")
    if layer != "marts" or len(lines) > 1 or not key or source not in model_refs:
        raise ModelDefinitionError(
            f"{name}: an incremental mart has one line '{INCREMENTAL_MARKER} <model>.<key>' "
            "naming a model it reads and that model's key column "
            f"(e.g. '{INCREMENTAL_MARKER} stg_dlt_loads.load_id')"
        )
    return source, key


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


_SQL_TYPES = {
    "id": "bigint",
    "int": "bigint",
    "float": "double",
    "decimal": "decimal(18, 2)",
    "bool": "boolean",
    "timestamp": "timestamptz",
    "text": "varchar",
    "json": "json",
}


def empty_raw_select(raw: str) -> exp.Select:
    """An empty SELECT with the columns the source declares for raw table `raw` (plus the scd2
    validity columns): what an optional staging model reads when `raw` was never loaded."""
    from skyprep_source.catalogue import TABLES

    endpoint = TABLES.get(raw)
    if endpoint is None:
        raise ModelDefinitionError(f"{raw}: no source table of that name to stand in for")
    columns = {name: _SQL_TYPES[kind] for name, kind in endpoint.schema.fields.items()}
    columns |= {"_dlt_valid_from": "timestamptz", "_dlt_valid_to": "timestamptz"}
    select = exp.select(
        *(
            exp.alias_(exp.cast(exp.null(), exp.DataType.build(kind, dialect=MODELS_DIALECT)), name)
            for name, kind in columns.items()
        )
    )
    return select.where(exp.false())


def org_dimension_columns(expression: exp.Expr, dimensions: Mapping[str, str]) -> exp.Expr:
    """`expression` (the org-dimension model's SELECT) with `<attribute> as <name>` appended to
    its outermost select list, one per configured org dimension, in the configured order.

    The one dynamic step of the models; a dbt project mirrors it with a loop over the
    `org_dimensions` var at the end of dim_users' select list."""
    if not dimensions:
        return expression
    if not isinstance(expression, exp.Select):
        raise ModelDefinitionError(f"{ORG_DIMENSION_MODEL}: the model must end in a plain SELECT")
    existing = {projection.alias_or_name for projection in expression.expressions}
    if clash := sorted(existing & set(dimensions)):
        raise ModelSettingsError(
            f"models.org_dimensions: {', '.join(clash)} is already a column of "
            f"{ORG_DIMENSION_MODEL}; choose another name"
        )
    return expression.select(
        *(exp.alias_(exp.column(attr), name) for name, attr in dimensions.items()), copy=False
    )


def inline_ephemeral(
    expression: exp.Expr, reads: Iterable[str], models: Mapping[str, Model]
) -> exp.Expr:
    """`expression` (a model reading `reads`) with every ephemeral model it reads, directly or
    through another ephemeral one, as a leading CTE named after the model, in dependency
    order: what dbt does with an ephemeral model."""
    needed: list[str] = []

    def visit(name: str) -> None:
        model = models.get(name)
        if model is None or model.materialization != "ephemeral" or name in needed:
            return
        for dependency in sorted(model.model_refs):
            visit(dependency)
        needed.append(name)

    for name in sorted(reads):
        visit(name)
    if not needed:
        return expression
    if not isinstance(expression, exp.Query):
        raise ModelDefinitionError("a model reading an intermediate model must be a SELECT")
    ctes = [
        exp.CTE(this=models[name].parse(), alias=exp.TableAlias(this=exp.to_identifier(name)))
        for name in needed
    ]
    existing = expression.args.get("with_")
    if existing is None:
        expression.set("with_", exp.With(expressions=ctes))
    else:
        existing.set("expressions", [*ctes, *existing.expressions])
    return expression


def new_rows_condition(model: Model) -> exp.Expr:
    """`<key> NOT IN (SELECT DISTINCT held.<key> FROM <the mart> AS held)`: the rows of an
    incremental mart's source model that the mart does not hold yet (unqualified: the namer
    qualifies the mart)."""
    if model.incremental is None:
        raise ModelDefinitionError(f"{model.name}: not an incremental model")
    _, key = model.incremental
    # the key qualified by the mart's own alias: were the mart to lack the column, an
    # unqualified name would silently bind to the outer row (nothing would ever be new)
    this = exp.Table(
        this=exp.to_identifier(model.name), alias=exp.TableAlias(this=exp.to_identifier("held"))
    )
    # DISTINCT: the mart has a row per learner per load but a few hundred keys; without it
    # DuckDB builds a join table of every row (a year of 100,000 learners: 2.9 GB against
    # 0.1 GB) and PostgreSQL cannot hash the subquery (bench/incremental_filter.py)
    held = exp.select(exp.column(key, table="held")).distinct().from_(this)
    return exp.not_(exp.column(key).isin(query=held))


def only_new_rows(expression: exp.Expr, model: Model, condition: exp.Expr) -> exp.Expr:
    """`expression` with every read of the incremental mart's source model replaced by
    `(SELECT * FROM <source> WHERE <condition>) AS <source>`."""
    if model.incremental is None:
        raise ModelDefinitionError(f"{model.name}: not an incremental model")
    source, _ = model.incremental
    reads = [t for t in expression.find_all(exp.Table) if t.name == source and not t.db]
    if not reads:
        raise ModelDefinitionError(f"{model.name}: reads no {source} to take new rows from")
    for table in reads:
        alias = table.alias_or_name
        filtered = exp.select("*").from_(exp.to_table(source)).where(condition.copy())
        table.replace(
            exp.Subquery(this=filtered, alias=exp.TableAlias(this=exp.to_identifier(alias)))
        )
    return expression


def qualified_select(
    model: Model,
    name_table: TableNamer,
    *,
    empty_raw: Iterable[str] = (),
    org_dimensions: Mapping[str, str] | None = None,
    ephemeral: Mapping[str, Model] | None = None,
    new_rows_where: exp.Expr | None = None,
) -> exp.Expr:
    """The model's SELECT with every table reference qualified by `name_table`; the raw tables
    in `empty_raw` replaced by an empty stand-in (optional staging models), for dim_users the
    org-dimension columns appended and, given the models as `ephemeral`, the intermediate
    models it reads inlined as CTEs (else they stay references, as dbt wants them). With
    `new_rows_where` (an incremental mart), its source model read through that condition
    (`only_new_rows`)."""
    expression = model.parse()
    if model.name == ORG_DIMENSION_MODEL and org_dimensions:
        expression = org_dimension_columns(expression, org_dimensions)
    if new_rows_where is not None:
        expression = only_new_rows(expression, model, new_rows_where)
    if ephemeral:
        expression = inline_ephemeral(expression, model.model_refs, ephemeral)
    empty = set(empty_raw)
    for table in list(expression.find_all(exp.Table)):
        if table.name in empty and not table.db:
            stand_in = exp.Subquery(
                this=empty_raw_select(table.name),
                alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name)),
            )
            table.replace(stand_in)
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


def render_statements(
    model: Model,
    dialect: str,
    name_table: TableNamer,
    *,
    empty_raw: Iterable[str] = (),
    org_dimensions: Mapping[str, str] | None = None,
    ephemeral: Mapping[str, Model] | None = None,
    append: bool = False,
) -> list[str]:
    """DROP + CREATE of the model as a view or a table, transpiled to `dialect`; with `append`
    (an incremental mart whose table exists), one INSERT of the rows it does not hold yet.

    Drop-then-create rather than CREATE OR REPLACE: PostgreSQL has no CREATE OR REPLACE TABLE
    and refuses to replace a view whose columns changed.
    """
    if model.materialization == "ephemeral":
        raise ModelDefinitionError(f"{model.name}: ephemeral; it is inlined where it is read")
    if append and model.materialization != "incremental":
        raise ModelDefinitionError(f"{model.name}: only an incremental mart is appended to")
    target = name_table(model.name)
    select = qualified_select(
        model,
        name_table,
        empty_raw=empty_raw,
        org_dimensions=org_dimensions,
        ephemeral=ephemeral,
        new_rows_where=new_rows_condition(model) if append else None,
    )
    select = for_dialect(select, dialect)
    if append:
        assert isinstance(select, exp.Query)
        columns = [exp.to_identifier(name) for name in select.named_selects]
        into = exp.Schema(this=target.copy(), expressions=columns)
        insert = exp.Insert(this=into, expression=select)
        return [insert.sql(dialect=dialect, pretty=True)]
    kind = "VIEW" if model.materialization == "view" else "TABLE"
    drop = exp.Drop(tables=[target.copy()], kind=kind, exists=True)
    create = exp.Create(this=target.copy(), kind=kind, expression=select)
    return [drop.sql(dialect=dialect), create.sql(dialect=dialect, pretty=True)]


def fingerprint(
    model: Model,
    models: Mapping[str, Model],
    create_sql: str,
    settings: ModelSettings,
) -> str:
    """What an incremental mart's rows depend on: its CREATE as rendered for the destination
    (datasets included), the SQL of every model it reads (directly or not) and the settings.
    A table built under another fingerprint is rebuilt in full."""
    upstream: set[str] = set()
    waiting = list(model.model_refs)
    while waiting:
        name = waiting.pop()
        if name in upstream or name not in models:
            continue
        upstream.add(name)
        waiting += models[name].model_refs
    digest = hashlib.sha256(create_sql.encode())
    for name in sorted(upstream):
        digest.update(f"\0{name}\0{models[name].sql}".encode())
    digest.update(repr(sorted(settings.rows(), key=repr)).encode())
    return digest.hexdigest()


def settings_statements(settings: ModelSettings, dialect: str, name_table: TableNamer) -> list[str]:
    """DROP + CREATE + INSERT of the settings relation (setting, name, value), in `dialect`."""
    target = name_table(SETTINGS_RELATION)
    drop = exp.Drop(tables=[target.copy()], kind="TABLE", exists=True)
    columns = ", ".join(f"{column} varchar" for column in ("setting", "name", "value"))
    create = f"create table {target.sql(dialect=MODELS_DIALECT)} ({columns})"
    statements = [
        drop.sql(dialect=dialect),
        sqlglot.transpile(create, read=MODELS_DIALECT, write=dialect)[0],
    ]
    if rows := settings.rows():
        values = [
            exp.Tuple(
                expressions=[exp.Literal.string(v) if v is not None else exp.null() for v in row]
            )
            for row in rows
        ]
        insert = exp.insert(exp.values(values), target.copy())
        statements.append(insert.sql(dialect=dialect))
    return statements


def fingerprint_statements(
    fingerprints: Mapping[str, str], dialect: str, name_table: TableNamer
) -> list[str]:
    """DROP + CREATE + INSERT of `_skyprep_models` (model, fingerprint), in `dialect`: the
    fingerprint each incremental mart was just built under."""
    target = name_table(FINGERPRINTS_RELATION)
    drop = exp.Drop(tables=[target.copy()], kind="TABLE", exists=True)
    create = (
        f"create table {target.sql(dialect=MODELS_DIALECT)} (model varchar, fingerprint varchar)"
    )
    statements = [
        drop.sql(dialect=dialect),
        sqlglot.transpile(create, read=MODELS_DIALECT, write=dialect)[0],
    ]
    if fingerprints:
        values = [
            exp.Tuple(expressions=[exp.Literal.string(name), exp.Literal.string(digest)])
            for name, digest in sorted(fingerprints.items())
        ]
        statements.append(exp.insert(exp.values(values), target.copy()).sql(dialect=dialect))
    return statements


def _fingerprints(
    client: SqlClientBase[Any], dialect: str, name_table: TableNamer
) -> dict[str, str]:
    """The fingerprints of the last build (`_skyprep_models`); none before the first."""
    table = name_table(FINGERPRINTS_RELATION)
    if not _raw_table_exists(client, table, dialect):
        return {}
    rows = client.execute_sql(f"SELECT model, fingerprint FROM {table.sql(dialect=dialect)}")
    return {str(model): str(digest) for model, digest in rows or []}


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
        own = name in models or name in (SETTINGS_RELATION, FINGERPRINTS_RELATION)
        dataset = analytics if own else raw_dataset
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
    settings: ModelSettings | None = None,
    full_refresh: bool = False,
) -> ModelsBuild:
    """Build every model on the pipeline's own destination into `dataset_name`.

    Raw tables are read from ``pipeline.dataset_name``; staging models become views and marts
    tables in `dataset_name` (created when missing). Models are transpiled from DuckDB's
    dialect to the destination's. A model whose raw table was never loaded (e.g. the resource
    was not selected) is skipped with everything that reads it, and listed in
    ``ModelsBuild.skipped``. On destinations with transactional DDL the whole build is one
    transaction, so readers never see half-built marts.

    `settings` (default: the `[models]` section of dlt's config, `ModelSettings.from_config`)
    is written first, as the table `model_settings` of `dataset_name`, which the marts read.
    An optional staging model (an `-- optional:` line) whose raw table was never loaded reads
    as empty instead of being skipped.

    An incremental mart (an `-- incremental:` line: the history marts) is appended to with the
    loads it does not hold yet; it is built in full when its table is missing, when its
    fingerprint (`fingerprint`, kept in `_skyprep_models`) changed, or with `full_refresh`.

    Returns a `ModelsBuild`: the models built in order, the as-of time (the last successful
    load) and the row count of every mart.
    """
    settings = settings if settings is not None else ModelSettings.from_config()
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
            if model.optional:
                to_build.append(model)
            elif absent := sorted(model.raw_refs & missing):
                result.skipped[name] = f"raw table {', '.join(absent)} not loaded"
            elif skipped := sorted(model.model_refs & result.skipped.keys()):
                result.skipped[name] = f"reads skipped {', '.join(skipped)}"
            elif model.materialization == "ephemeral":
                continue  # inlined into the models that read it
            else:
                to_build.append(model)

        with client.with_alternative_dataset_name(dataset_name):
            if not client.has_dataset():
                client.create_dataset()
        # what the incremental marts were last built under (read before the transaction: a
        # failed probe would abort a PostgreSQL transaction); a dropped table is built in full
        built_under = {} if full_refresh else _fingerprints(client, dialect, name_table)
        built_under = {
            name: digest
            for name, digest in built_under.items()
            if _raw_table_exists(client, name_table(name), dialect)
        }
        transaction = (
            client.begin_transaction()
            if client.capabilities.supports_ddl_transactions
            else nullcontext()
        )
        with transaction:
            for statement in settings_statements(settings, dialect, name_table):
                client.execute_sql(statement)
            fingerprints: dict[str, str] = {}
            for model in to_build:
                options: dict[str, Any] = {
                    "empty_raw": model.raw_refs & missing,
                    "org_dimensions": settings.org_dimensions,
                    "ephemeral": models,
                }
                statements = render_statements(model, dialect, name_table, **options)
                if model.materialization == "incremental":
                    fingerprints[model.name] = fingerprint(model, models, statements[-1], settings)
                    if built_under.get(model.name) == fingerprints[model.name]:
                        statements = render_statements(
                            model, dialect, name_table, append=True, **options
                        )
                        result.appended.append(model.name)
                for statement in statements:
                    client.execute_sql(statement)
                result.built.append(model.name)
            for statement in fingerprint_statements(fingerprints, dialect, name_table):
                client.execute_sql(statement)

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
