"""Retirement safety: what a run may retire, and what it holds back or skips.

scd2 retires every current row that is absent from the extract. Three rules keep an API
glitch from becoming a deletion:

- *Confirm before retiring*: the keys current in the destination but missing from this run's
  snapshot are the candidates; each is asked for by its own single-record route
  (`CONFIRM_ROUTES`). Only a clear "not found" (`SkyPrepNotFound`) lets it be retired; a record
  that still exists joins the snapshot (so a record that slid past the pager is kept); any
  other answer is an error of that call.
- *Mass-retirement guard*: when the candidates are more than `max_share` of the table's
  current rows and more than `floor` rows, or more than `max_confirm_calls`, the table retires
  nothing this run: its scd2 scope is narrowed to the keys of this run's extract
  (`hold_retirement`), so changed records still get their new version and nothing absent is
  retired. The job exits with RETIREMENT_HELD and names the setting that accepts it.
- *Failure isolation*: a resource outside `CORE_RESOURCES` that fails after its retries is
  skipped (`isolated`): what it read so far loads, nothing of its table is retired, the job
  exits with PARTIAL. Core failures fail the run, as does any failure with `all_or_nothing`.

`RunReport` collects what happened, for the job's summary and exit code. The confirming calls
a table made are also kept in its resource's state (`confirm_calls`): the next run's call plan
prices its own from them (plan.py).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dlt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from skyprep_source.catalogue import TABLES, TableSpec
from skyprep_source.errors import (
    SkyPrepCredentialsError,
    SkyPrepError,
    SkyPrepNotFound,
    SkyPrepRouteRefused,
    SkyPrepRunDeadline,
)

logger = logging.getLogger("skyprep_source")

# a failure here fails the run, whatever `all_or_nothing` says
CORE_RESOURCES: frozenset[str] = frozenset({"users", "courses", "course_progresses"})

# table -> (single-record route, its id parameter): how a candidate for retirement is confirmed
# (the catalogue's `confirm`)
CONFIRM_ROUTES: dict[str, tuple[str, str]] = {
    spec.name: spec.confirm for spec in TABLES.values() if spec.confirm
}
# fields a single-record answer adds to the list's record (members, leaderboards): dropped, so
# a confirmed record hashes as its list record does
DETAIL_FIELDS: frozenset[str] = frozenset({"users", "details"})
# rows fetched per round trip when the destination's current keys are read
KEY_BATCH_ROWS = 50_000
# the resource-state key of the confirming calls its table made in its last run (plan.py)
CONFIRM_CALLS = "confirm_calls"


@dataclass(frozen=True)
class RetirementPolicy:
    """The source settings that bound what one run may retire."""

    max_share: float = 0.10  # retire_max_share
    floor: int = 50  # retire_floor
    max_confirm_calls: int = 500  # max_confirm_calls, per table
    all_or_nothing: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.max_share <= 1:
            raise ValueError("retire_max_share must be between 0 and 1 (e.g. 0.1 for 10%)")
        if self.floor < 0 or self.max_confirm_calls < 0:
            raise ValueError("retire_floor and max_confirm_calls must be >= 0")


@dataclass(frozen=True)
class HeldRetirement:
    """A table whose absent rows were not retired this run, and why."""

    table: str
    missing: int
    current: int
    reason: str

    def line(self) -> str:
        return (
            f"{self.table}: {self.missing} of {self.current} current rows are missing from this "
            f"run's snapshot and were not retired ({self.reason}); if they really are gone, "
            "re-run with a higher retire_max_share / max_confirm_calls "
            "(SOURCES__SKYPREP__RETIRE_MAX_SHARE, SOURCES__SKYPREP__MAX_CONFIRM_CALLS)"
        )


@dataclass
class RunReport:
    """What a run held back, skipped and confirmed: read by the job after the load."""

    held: dict[str, HeldRetirement] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # resource -> why
    confirmed: dict[str, tuple[int, int]] = field(default_factory=dict)  # table -> (kept, gone)
    confirm_calls: dict[str, int] = field(default_factory=dict)  # table -> calls confirming
    finished: set[str] = field(default_factory=set)  # snapshot resources read to their end
    yielded: dict[str, int] = field(default_factory=dict)  # items each snapshot resource gave
    dropped: dict[str, int] = field(default_factory=dict)  # table -> rows without a valid key
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # the report of the source created last in this process (the job reads it after the run)
    _latest: ClassVar[RunReport | None] = None

    @classmethod
    def start(cls) -> RunReport:
        """A new report, the one `latest()` answers from now on."""
        report = cls()
        RunReport._latest = report
        return report

    @classmethod
    def latest(cls) -> RunReport | None:
        return cls._latest

    def count_item(self, resource: str) -> None:
        """One more item of `resource` handed to dlt (and so to its transformers)."""
        self.yielded[resource] = self.yielded.get(resource, 0) + 1

    def parent_complete(self, parent: str, processed: int) -> bool:
        """Whether a transformer that has processed `processed` items of `parent` has seen
        all of them, the parent's snapshot being complete (dlt may run a transformer's calls
        after its parent has finished, so the count, not the order, decides)."""
        return parent in self.finished and processed >= self.yielded.get(parent, 0)

    def bad_keys(self, table: str, rows: int) -> None:
        """`rows` rows of `table` were not loaded: their key was missing or not an integer."""
        with self._lock:
            self.dropped[table] = self.dropped.get(table, 0) + rows

    def count_confirm_calls(self, table: str, calls: int) -> None:
        """`table` made `calls` calls to confirm its missing rows this run."""
        with self._lock:
            self.confirm_calls[table] = calls

    def hold(self, held: HeldRetirement) -> None:
        with self._lock:
            self.held[held.table] = held

    def skip(self, resource: str, reason: str) -> None:
        with self._lock:
            self.skipped.setdefault(resource, reason)

    def lines(self) -> list[str]:
        """One line per held table and per skipped resource."""
        out = [held.line() for held in self.held.values()]
        out += [
            f"{name}: skipped this run, its tables untouched ({reason})"
            for name, reason in self.skipped.items()
        ]
        out += [
            f"{table}: {rows} row(s) without a valid key (missing, null or not an integer) "
            "were not loaded"
            for table, rows in self.dropped.items()
        ]
        return out


# ---- the keys of a snapshot and of the destination ---------------------------------------


class SeenKeys:
    """The keys of one run's snapshot of a table: 8 bytes a row for a single integer key
    (kept as numpy arrays, sorted once at the end), a set of tuples for composite keys."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        self._chunks: list[np.ndarray] = []
        self._pairs: set[tuple[Any, ...]] = set()
        self._sorted: np.ndarray | None = None

    def add(self, table: pa.Table) -> None:
        if table.num_rows == 0 or not set(self.columns) <= set(table.column_names):
            return
        self._sorted = None
        if len(self.columns) == 1:
            ids = pc.drop_null(table.column(self.columns[0]))
            self._chunks.append(np.asarray(ids.to_numpy(), dtype=np.int64))
            return
        values = [table.column(name).to_pylist() for name in self.columns]
        self._pairs.update(k for k in zip(*values, strict=True) if None not in k)

    def missing(self, keys: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Those of `keys` (rows of key values) not in the snapshot."""
        if len(self.columns) > 1:
            return [k for k in keys if tuple(k) not in self._pairs]
        if self._sorted is None:
            joined = np.concatenate(self._chunks) if self._chunks else np.empty(0, np.int64)
            self._sorted = np.unique(joined)
            self._chunks = [self._sorted]
        wanted = np.asarray([int(k[0]) for k in keys], dtype=np.int64)
        at = np.searchsorted(self._sorted, wanted)
        if len(self._sorted) == 0:
            return list(keys)
        found = (at < len(self._sorted)) & (
            self._sorted[np.minimum(at, len(self._sorted) - 1)] == wanted
        )
        return [k for k, hit in zip(keys, found, strict=True) if not hit]


@dataclass
class Candidates:
    """Current destination rows missing from the snapshot: how many, and the first ones."""

    current: int = 0
    missing: int = 0
    keys: list[tuple[Any, ...]] = field(default_factory=list)


def find_candidates(
    table: str, seen: SeenKeys, keep_at_most: int, scope_sql: str | None = None
) -> Candidates:
    """Read the destination's current keys of `table` (batch by batch) and keep those missing
    from `seen`, at most `keep_at_most` of them (all are counted). Nothing when the pipeline
    has no destination or the table was never loaded."""
    found = Candidates()
    try:
        pipeline = dlt.current.pipeline()
    except Exception:
        return found
    if pipeline is None or pipeline.destination is None or not pipeline.default_schema_name:
        return found
    schema = pipeline.default_schema
    if table not in schema.data_table_names(seen_data_only=True):
        return found
    columns = schema.get_table_columns(table)
    valid_to = [name for name, column in columns.items() if column.get("x-valid-to")]
    conditions = [f"{name} IS NULL" for name in valid_to]
    if scope_sql:
        conditions.append(f"({scope_sql})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    with pipeline.sql_client() as client:
        name = client.make_qualified_table_name(table)
        sql = f"SELECT {', '.join(seen.columns)} FROM {name}{where}"
        with client.execute_query(sql) as cursor:
            while True:
                rows = cursor.fetchmany(KEY_BATCH_ROWS)
                if not rows:
                    break
                found.current += len(rows)
                missing = seen.missing([tuple(row) for row in rows])
                found.missing += len(missing)
                room = keep_at_most - len(found.keys)
                if room > 0:
                    found.keys.extend(missing[:room])
    return found


# ---- holding back and confirming ----------------------------------------------------------


def hold_retirement(endpoint: TableSpec, keys: Sequence[str] | None = None) -> None:
    """Narrow this run's scd2 scope of the current resource's table to the keys of its own
    extract: changed records still get their new version, no absent row is retired.

    dlt's `destination_scope` merge option, set for this run only: the resource's own
    disposition states its scope again on the next run (WHOLE_TABLE or its own). `keys`
    (default: the primary key) must be columns of every table the resource writes."""
    columns = tuple(keys or endpoint.primary_key)
    listed = ", ".join(columns)
    target = listed if len(columns) == 1 else f"({listed})"
    scope = f"{target} IN (SELECT {listed} FROM {{staging_table}})"
    dlt.current.resource().apply_hints(write_disposition=endpoint.write_disposition(scope))


def guard_and_confirm(
    client: Any,
    endpoint: TableSpec,
    seen: SeenKeys,
    policy: RetirementPolicy,
    report: RunReport,
    scope_sql: str | None = None,
) -> list[dict[str, Any]]:
    """At the end of a complete snapshot: the records to add to it (candidates that still
    exist), after holding the table back if too much would go. Raises on a call that neither
    finds the record nor says clearly that it is gone."""
    table = endpoint.name
    found = find_candidates(table, seen, policy.max_confirm_calls + 1, scope_sql)
    if not found.missing:
        remember_confirm_calls(report, table, 0)
        return []
    reason = None
    if found.missing > policy.max_confirm_calls:
        reason = f"more than max_confirm_calls={policy.max_confirm_calls}"
    elif found.missing > policy.floor and found.missing > policy.max_share * found.current:
        reason = f"more than retire_max_share={policy.max_share:g} and retire_floor={policy.floor}"
    if reason is not None:
        hold_retirement(endpoint)
        held = HeldRetirement(table, found.missing, found.current, reason)
        report.hold(held)
        logger.warning("SkyPrep %s", held.line())
        remember_confirm_calls(report, table, 0)
        return []
    confirm = CONFIRM_ROUTES.get(table)
    if confirm is None:  # no single-record route: a complete, guarded snapshot decides
        remember_confirm_calls(report, table, 0)
        return []
    route, parameter = confirm
    fresh: list[dict[str, Any]] = []
    gone = 0
    for key in found.keys:
        try:
            record = client.call_record(route, {parameter: key[0]})
        except SkyPrepNotFound:
            gone += 1
            continue
        fresh.append({k: v for k, v in record.items() if k not in DETAIL_FIELDS})
    report.confirmed[table] = (len(fresh), gone)
    remember_confirm_calls(report, table, len(found.keys))
    if fresh:
        logger.warning(
            "SkyPrep %s: %d record(s) missing from the list still exist (%s); kept",
            table,
            len(fresh),
            route,
        )
    return fresh


def remember_confirm_calls(report: RunReport, table: str, calls: int) -> None:
    """`table` made `calls` confirming calls this run (0: nothing missing, or held): in the
    report, and in its resource's state, saved with the load, so that the next run's call plan
    prices its confirming calls from them (`plan.known_facts`)."""
    report.count_confirm_calls(table, calls)
    dlt.current.resource_state()[CONFIRM_CALLS] = calls


def guarded_fan_out(
    endpoint: TableSpec,
    parent: str,
    read: Callable[[Any], Iterator[Any]],
    report: RunReport,
    policy: RetirementPolicy,
    empty_item: Callable[[], Any],
) -> Callable[[Any], Iterator[Any]]:
    """A transformer over a snapshot `parent` (awards, leaderboards, learning-path bridges),
    with the mass-retirement guard once the parent's last item is processed: its rows have no
    single-record route to confirm them, so a complete snapshot decides, unless too much would
    go. `read(parent_page)` yields Arrow tables (possibly with dlt hints)."""
    run: dict[str, Any] = {}

    @functools.wraps(read)
    def guarded(parent_page: Any) -> Iterator[Any]:
        if not run:
            run.update(seen=SeenKeys(endpoint.primary_key), processed=0)
            run["loaded_before"] = snapshot_loaded_before()
        for item in read(parent_page):
            table = item if isinstance(item, pa.Table) else getattr(item, "data", item)
            if isinstance(table, pa.Table):
                run["seen"].add(table)
            yield item
        run["processed"] += 1
        if report.parent_complete(parent, run["processed"]):
            if run["loaded_before"]:
                guard_and_confirm(None, endpoint, run["seen"], policy, report)
            yield empty_item()  # dlt takes a held scope from the table's last item
            run.clear()

    return guarded


# ---- failure isolation ---------------------------------------------------------------------


def is_isolated_failure(error: BaseException) -> bool:
    """A failure an optional resource is skipped for: the API's, after its retries (never
    credentials, never a refused route: those are the whole run's)."""
    return isinstance(error, SkyPrepError) and not isinstance(
        error, (SkyPrepCredentialsError, SkyPrepRouteRefused, SkyPrepRunDeadline)
    )


def isolated(
    name: str,
    read: Callable[..., Iterator[Any]],
    report: RunReport,
    policy: RetirementPolicy,
    *,
    endpoint: TableSpec | None = None,
    parent: str | None = None,
    empty_item: Callable[[], Any] | None = None,
    hold_keys: Sequence[str] | None = None,
) -> Callable[..., Iterator[Any]]:
    """`read` (a resource's or transformer's generator function), skipped for the rest of the
    run when it fails with an API error, or when `parent` was skipped: its table (`endpoint`)
    then retires nothing this run. Core resources and `all_or_nothing` keep the failure."""
    if name in CORE_RESOURCES or policy.all_or_nothing:
        return read
    holds = endpoint is not None and _has_scope(endpoint)

    def skip(reason: str) -> Iterator[Any]:
        first = name not in report.skipped
        report.skip(name, reason)
        if first:
            logger.warning("SkyPrep %s: skipped this run, its tables untouched (%s)", name, reason)
        if holds and endpoint is not None:
            hold_retirement(endpoint, hold_keys)
            if empty_item is not None:
                yield empty_item()  # makes dlt take the held scope for the table

    @functools.wraps(read)
    def guarded(*args: Any, **kwargs: Any) -> Iterator[Any]:
        if name in report.skipped:
            yield from skip(report.skipped[name])
            return
        if parent is not None and parent in report.skipped:
            yield from skip(f"{parent} was skipped")
            return
        try:
            yield from read(*args, **kwargs)
        except Exception as error:
            if not is_isolated_failure(error):
                raise
            yield from skip(str(error).splitlines()[0][:300])

    return guarded


def _has_scope(endpoint: TableSpec) -> bool:
    """Whether the table's scd2 may retire rows absent from the extract, under a scope its
    resource states on every run (so a held scope lasts this run only). Payments and timeslot
    registrations retire only within the merge keys of the extract: nothing to hold."""
    return endpoint.kind not in ("download", "report", "history") and endpoint.name not in (
        "payments",
        "instructor_led_training_timeslot_registrations",
    )


def snapshot_loaded_before() -> bool:
    """Whether this resource has loaded a snapshot before (its state, saved with the load).

    From the second run on, a record missing from a snapshot gets retired, so a list that
    moved while it was paged (rows sliding past the pager) must be re-read: the client's
    `verify_stable` check, one call per multi-page list. A first run retires nothing, so it
    pays only the minimum calls.
    """
    state = dlt.current.resource_state()
    loaded_before = bool(state.get("snapshot_loaded"))
    state["snapshot_loaded"] = True
    return loaded_before
