"""The call plan: what a run will cost in API calls, and in time at the rate budget, before
it makes its first data call.

Some resources cost one call per record of another (progresses per course, members per group,
registrations per timeslot) or per user (balances): at 100 calls per minute that can mean
hours. `plan_run` estimates each resource's calls from a few cheap facts, asked first:

- `get_data` counts (users, courses, user groups): 3 calls;
- the short lists that set a fan-out (skills, competencies, timeslots in the window, saved
  reports; the items and enrollments of courses listed for `course_item_progresses`): 1 call
  each, skipped when `known_counts` already says how many there are;
- what is known without asking: the page size, the listed course ids and manager pairs, the
  async reports asked for.

Lists whose size nothing tells (learning paths, materials, payments, ...) are assumed to fit
one page unless `known_counts` (rows per resource from an earlier run) says otherwise; each
course's progress list likewise, unless `course_progress_counts` (rows per course) says more.
`resource_states` (the resources' dlt state after an earlier run) adds what a later run does
differently: the re-read of page 1 after each multi-page snapshot list (`verify_paging`), the
timeslot window since the last run, and the calls that confirmed records missing from a list
before retiring them (`confirm_calls`, retirement.py): this run is assumed to make as many.
The job reads all three from the destination and the pipeline's state when the pipeline has
loaded before (`known_facts`).

    plan = plan_run({"api_key": ..., "acct_key": ..., "base_url": ...})
    print(plan)                       # calls per resource, total, time at the budget
    plan.check(max_calls=5000)        # raises CallPlanExceeded naming the costliest resources
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlglot import exp

from skyprep_source.account_resources import read_api_options, timeslot_window
from skyprep_source.async_reports import parse_async_reports
from skyprep_source.catalogue import (
    LIST_KINDS,
    SNAPSHOT_RESOURCES,
    TABLES,
    TableSpec,
    is_enabled,
    resource_specs,
)
from skyprep_source.client import RateBudget, RetryPolicy, SkyPrepClient, key_of
from skyprep_source.errors import SkyPrepError
from skyprep_source.retirement import CONFIRM_CALLS
from skyprep_source.scopes import timestamptz

logger = logging.getLogger(__name__)

# polls an async report is assumed to need (the first answer is usually "pending")
ASYNC_REPORT_POLLS = 2
# a call's round trip when the rate budget does not bind and the planning calls were too few
# to time (the sandbox answers in ~1 ms, the real API in a few hundred)
SECONDS_PER_CALL = 0.3
MIN_TIMED_CALLS = 5
# on a first run of an account with more users than a page holds, the progresses of this
# many courses (spread over the course list) are read to price every course's list
PROGRESS_SAMPLE_COURSES = 25


class CallPlanExceeded(SkyPrepError):
    """The run would make more calls than the configured ceiling (`max_calls`)."""


@dataclass(frozen=True)
class ResourceCost:
    """The calls one resource will make, and how that number was reached."""

    resource: str
    calls: int
    basis: str
    loaded: bool = True  # False: extracted only because a selected resource fans out over it


@dataclass
class CallPlan:
    """What a run will cost: calls per resource, their total, and the time at the budget."""

    costs: list[ResourceCost]
    planning_calls: int
    requests_per_minute: int | None
    rate_window_s: float = 60.0
    concurrency: int = 1
    notes: list[str] = field(default_factory=list)
    # a call's round trip as the planning calls measured it (None: SECONDS_PER_CALL assumed)
    seconds_per_call: float | None = None

    @property
    def total_calls(self) -> int:
        """Calls the run itself will make (planning calls not included)."""
        return sum(cost.calls for cost in self.costs)

    @property
    def seconds(self) -> float:
        """The run's expected duration from its calls alone: the rate budget lets
        `requests_per_minute` calls through per window, and each call takes a round trip."""
        calls = self.total_calls
        per_call = self.seconds_per_call if self.seconds_per_call else SECONDS_PER_CALL
        round_trips = calls * per_call / max(self.concurrency, 1)
        if not self.requests_per_minute or calls <= self.requests_per_minute:
            return round_trips
        windows = math.ceil(calls / self.requests_per_minute) - 1
        return max(windows * self.rate_window_s, round_trips)

    def costliest(self, count: int = 3) -> list[ResourceCost]:
        """The resources that cost most, most first."""
        return sorted(self.costs, key=lambda cost: (-cost.calls, cost.resource))[:count]

    def check(self, max_calls: int | None) -> None:
        """Raise `CallPlanExceeded` when the plan's calls exceed `max_calls` (None: no ceiling)."""
        if max_calls is None or self.total_calls <= max_calls:
            return
        worst = ", ".join(f"{c.resource} ({c.calls} calls)" for c in self.costliest())
        raise CallPlanExceeded(
            f"this run would make about {self.total_calls} SkyPrep API calls "
            f"({_duration(self.seconds)}), more than max_calls={max_calls}; most go to {worst}. "
            "Leave out resources (--resources), narrow them (the course_ids or "
            "per_user_resources settings of [sources.skyprep]) or raise the ceiling (--max-calls)"
        )

    def __str__(self) -> str:
        if self.requests_per_minute:
            budget = f"{self.requests_per_minute} calls per {self.rate_window_s:g}s"
        elif self.seconds_per_call:
            budget = (
                f"no rate budget (at the {self.seconds_per_call:.2f} s a call the planning "
                "calls took)"
            )
        else:
            budget = f"no rate budget (if a call takes {SECONDS_PER_CALL:g} s)"
        lines = [
            f"call plan: about {self.total_calls} API calls, {_duration(self.seconds)} at "
            f"{budget} (planning took {self.planning_calls} calls)"
        ]
        width = max((len(c.resource) for c in self.costs), default=0)
        for cost in sorted(self.costs, key=lambda c: (-c.calls, c.resource)):
            extracted = "" if cost.loaded else " [feeds a selected resource, not loaded]"
            lines.append(f"  {cost.resource:<{width}}  {cost.calls:>8}  {cost.basis}{extracted}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def list_calls(rows: int, page_size: int) -> int:
    """Calls the client makes to read a list of `rows` rows, `page_size` per page: every full
    page and the short (or empty) page that ends it. (From a snapshot's second run on, the
    source adds one re-read of page 1 per multi-page list: the drift check.)"""
    return rows // page_size + 1


def plan_run(
    source_or_config: Any,
    resources: Iterable[str] | None = None,
    *,
    known_counts: Mapping[str, int] | None = None,
    course_progress_counts: Mapping[Any, int] | None = None,
    resource_states: Mapping[str, Mapping[str, Any]] | None = None,
    client: SkyPrepClient | None = None,
    now: datetime | None = None,
) -> CallPlan:
    """Estimate the calls of a run of `skyprep()` with this configuration.

    Args:
        source_or_config: the `skyprep()` arguments as a mapping, or its resolved configuration
            (`skyprep.ref.SPEC` with attributes, as the job resolves it); unset values take
            `skyprep()`'s defaults.
        resources: the resources the run selects (default: every resource the configuration
            creates).
        known_counts: rows per resource known from an earlier run; they replace probes and
            the one-page assumption (`payments`: the rows the run's window will re-read).
        course_progress_counts: `course_progresses` rows per course id from an earlier run:
            each course's list is priced from its own count (a course not in it: one page).
        resource_states: each resource's dlt state after an earlier run: a snapshot that
            loaded before re-reads page 1 after each multi-page list (`verify_paging`), the
            timeslot window starts from the last run's date, and a table's confirming calls
            are priced from its last run's (`confirm_calls`, at most `max_confirm_calls`).
        client: the client to ask (default: one built from the configuration).
        now: the run's time (tests); the timeslot window is computed from it (and from the
            last run's date in `resource_states`).
    """
    config = _Config(source_or_config)
    known = dict(known_counts or {})
    page_size = int(config.get("page_size"))
    own_client = client is None
    if client is None:
        client = SkyPrepClient(
            config.get("api_key"),
            config.get("acct_key"),
            config.get("base_url"),
            # the account's shared budget: the run that follows pays into the same one
            rate_budget=RateBudget.for_account(
                config.get("base_url"),
                config.get("acct_key"),
                config.get("requests_per_minute"),
                float(config.get("rate_window_s")),
            ),
            retry=RetryPolicy(
                int(config.get("max_attempts")),
                float(config.get("backoff_base_s")),
                float(config.get("backoff_max_s")),
            ),
            request_timeout=float(config.get("request_timeout")),
            page_size=page_size,
        )
    calls_before = client.calls
    try:
        available = available_resources(config)
        selected = list(available) if resources is None else list(dict.fromkeys(resources))
        unknown = sorted(set(selected) - set(available))
        if unknown:
            raise ValueError(
                f"unknown resource(s) {', '.join(unknown)}; choose from {', '.join(available)}"
            )
        planner = _Planner(client, config, known, page_size, now)
        planner.per_course = {str(k): int(v) for k, v in (course_progress_counts or {}).items()}
        planner.states = dict(resource_states or {})
        planning_started = time.monotonic()
        costs = planner.costs(selected)
        planning_seconds = time.monotonic() - planning_started
    finally:
        if own_client:
            client.close()
    planning_calls = client.calls - calls_before
    return CallPlan(
        costs=costs,
        planning_calls=planning_calls,
        # the planning calls are the run's first calls: their pace is the server's
        seconds_per_call=planning_seconds / planning_calls
        if planning_calls >= MIN_TIMED_CALLS
        else None,
        requests_per_minute=config.get("requests_per_minute"),
        rate_window_s=float(config.get("rate_window_s")),
        concurrency=int(config.get("concurrency")),
        notes=planner.notes,
    )


def available_resources(config: Any) -> list[str]:
    """The resources `skyprep()` creates with this configuration, in its order (the
    catalogue's: every table with a resource of its own whose argument enables it)."""
    config = config if isinstance(config, _Config) else _Config(config)
    options = _read_api_options(config)
    return [
        spec.name
        for spec in resource_specs()
        if is_enabled(spec, _setting(config, options, spec.enabled_by))
    ]


def _setting(config: _Config, options: Any, name: str | None) -> Any:
    """The value of a `skyprep()` argument, normalised as the source reads it."""
    if name is None:
        return None
    if hasattr(options, name):
        return getattr(options, name)
    return config.get(name)


@dataclass
class KnownFacts:
    """What earlier runs already know, as `plan_run`'s keyword arguments."""

    known_counts: dict[str, int] = field(default_factory=dict)
    course_progress_counts: dict[Any, int] = field(default_factory=dict)
    resource_states: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "known_counts": self.known_counts,
            "course_progress_counts": self.course_progress_counts,
            "resource_states": self.resource_states,
        }


# tables whose current rows price a list (the get_data counts and the timeslot window are
# asked afresh: cheap, and they see what changed since)
_COUNTED_TABLES = (
    *(spec.name for spec in TABLES.values() if spec.kind == "snapshot" and not spec.counted_by),
    *(spec.name for spec in TABLES.values() if spec.kind == "window" and not spec.probed),
    "course_progresses",
)


def known_facts(
    pipeline: Any,
    source_name: str,
    config: Any,
    *,
    with_states: bool = True,
    now: datetime | None = None,
) -> KnownFacts:
    """What the destination and the pipeline's state know from earlier runs of `pipeline`:
    current rows per list table (scd2: `_dlt_valid_to` null; `payments`: those inside this
    run's window), `course_progresses` rows per course, and the resources' state (unless
    `with_states` is False: a full refresh starts them over). One query per table, only tables
    that were loaded; nothing when the pipeline never loaded; on any failure nothing (a debug
    log), and the plan falls back to its first-run estimate."""
    try:
        return _known_facts(pipeline, source_name, _Config(config), with_states, now)
    except Exception as failure:
        logger.debug("call plan: earlier runs' counts unavailable (%r)", failure, exc_info=True)
        return KnownFacts()


def _known_facts(
    pipeline: Any, source_name: str, config: _Config, with_states: bool, now: datetime | None
) -> KnownFacts:
    if pipeline.first_run or not pipeline.default_schema_name:
        return KnownFacts()
    schema = pipeline.default_schema
    loaded = set(schema.data_table_names(seen_data_only=True))
    source_state = pipeline.state.get("sources", {}).get(source_name, {})
    states: dict[str, Mapping[str, Any]] = dict(source_state.get("resources", {}))
    facts = KnownFacts(resource_states=states if with_states else {})
    dialect = str(pipeline.destination.capabilities().sqlglot_dialect or "duckdb")
    with pipeline.sql_client() as client:
        for table in _COUNTED_TABLES:
            if table not in loaded:
                continue
            columns = schema.get_table_columns(table)
            conditions = [
                exp.column(name).is_(exp.null()).sql(dialect=dialect)
                for name, column in columns.items()
                if column.get("x-valid-to")
            ]
            if table == "payments" and with_states:
                cutoff = _payments_cutoff(states.get(table) or {}, config, now)
                if cutoff is not None and "created_at" in columns:
                    bound = timestamptz(cutoff)
                    since = exp.GTE(this=exp.column("created_at"), expression=bound)
                    conditions.append(since.sql(dialect=dialect))
            where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            name = client.make_qualified_table_name(table)
            if table == "course_progresses":
                rows = client.execute_sql(
                    f"SELECT course_id, COUNT(*) FROM {name}{where} GROUP BY course_id"
                )
                per_course = {key: int(n) for key, n in rows or () if key is not None}
                facts.course_progress_counts = per_course
                facts.known_counts[table] = sum(per_course.values())
            else:
                rows = client.execute_sql(f"SELECT COUNT(*) FROM {name}{where}")
                facts.known_counts[table] = int(rows[0][0]) if rows else 0
    return facts


def _payments_cutoff(state: Mapping[str, Any], config: _Config, now: datetime | None) -> Any:
    """The oldest `created_at` the run's payments window re-reads (None: all of them)."""
    from skyprep_source.core_resources import payments_window_days

    now = now or datetime.now(timezone.utc)
    full_read_days = config.get("payments_full_read_days")
    days = payments_window_days(
        state.get("last_created_at"),
        int(config.get("payments_lookback_days")),
        now,
        last_full_read_at=state.get("last_full_read_at"),
        full_read_days=None if full_read_days is None else int(full_read_days),
    )
    return None if days is None else now - timedelta(days=days)


# ---- internals ---------------------------------------------------------------------------


class _Config:
    """`skyprep()` arguments from a mapping or a resolved configuration, with its defaults."""

    def __init__(self, source: Any) -> None:
        from skyprep_source.source import skyprep

        self._source = source
        self._defaults = skyprep.ref.SPEC()

    def get(self, name: str) -> Any:
        if name == "requests_per_minute":  # `off` from TOML/env, as `skyprep()` takes it
            from skyprep_source.settings import parse_requests_per_minute

            return parse_requests_per_minute(self._get(name))
        return self._get(name)

    def _get(self, name: str) -> Any:
        if isinstance(self._source, Mapping):
            if name in self._source:
                return self._source[name]
        elif hasattr(self._source, name):
            # a resolved configuration: None is a value (requests_per_minute=None: no budget)
            return getattr(self._source, name)
        return getattr(self._defaults, name, None)


def _read_api_options(config: _Config) -> Any:
    return read_api_options(
        config.get("timeslots_lookback_days"),
        config.get("timeslots_horizon_days"),
        config.get("per_user_resources"),
        config.get("course_item_progress_course_ids"),
        config.get("manager_permission_pairs"),
    )


class _Planner:
    """Counts what it must (cached), then prices each resource."""

    def __init__(
        self,
        client: SkyPrepClient,
        config: _Config,
        known: dict[str, int],
        page_size: int,
        now: datetime | None,
    ) -> None:
        self.client = client
        self.config = config
        self.known = known
        self.page_size = page_size
        self.now = now or datetime.now(timezone.utc)
        self.options = _read_api_options(config)
        self.notes: list[str] = []
        self._counts: dict[str, int] = {}
        self.per_course: dict[str, int] = {}  # course_progresses rows per course id (as text)
        self.states: dict[str, Mapping[str, Any]] = {}  # resource -> its state after a run

    def rechecked(self, name: str) -> bool:
        """Whether the run re-reads page 1 after each multi-page list of `name` (the source's
        `verify_paging`, from a snapshot's second run on: source.snapshot_loaded_before)."""
        state = self.states.get(name) or {}
        return (
            name in _RECHECKED
            and bool(self.config.get("verify_paging"))
            and bool(state.get("snapshot_loaded"))
        )

    def paged_calls(self, name: str, rows: int) -> tuple[int, str]:
        """Calls to read one list of `name` with `rows` rows, re-check included."""
        calls = list_calls(rows, self.page_size)
        if calls > 1 and self.rechecked(name):
            return calls + 1, " + 1 re-check of page 1"
        return calls, ""

    # -- facts ------------------------------------------------------------------------------

    def count(self, name: str) -> int:
        """Rows of a resource: known, from get_data, or by reading its (short) list."""
        if name in self._counts:
            return self._counts[name]
        spec = TABLES[name]
        if name in self.known:
            value = int(self.known[name])
        elif spec.counted_by:
            answer = self.client.call("get_data", {"data_type": spec.counted_by})
            data = answer.get("data") if isinstance(answer, dict) else None
            try:
                value = int(str(data).strip())  # a numeric string: {"data": "587"}
            except ValueError:
                self.notes.append(f"get_data {spec.counted_by} answered {data!r}: counted 0")
                value = 0
        elif spec.kind == "window":
            # the probed window is the timeslots' (payments are never probed)
            last_run = (self.states.get(name) or {}).get("last_run_date")
            start, end = timeslot_window(
                last_run,
                self.options.timeslots_lookback_days,
                self.options.timeslots_horizon_days,
                self.now.date(),
            )
            value = self._list_length(spec.route, {"start_date": start, "end_date": end})
        else:
            value = self._list_length(spec.route, {})
        self._counts[name] = value
        return value

    def _list_length(self, route: str, params: Mapping[str, Any]) -> int:
        return sum(len(page) for page in self.client.pages(route, params, key_of("id")))

    def list_cost(self, name: str, why: str = "") -> ResourceCost:
        """A list resource: its pages, from its row count when one is known or cheap."""
        spec = TABLES[name]
        if name in self.known or spec.counted_by or spec.probed:
            rows = self.count(name)
            calls, recheck = self.paged_calls(name, rows)
            return ResourceCost(name, calls, f"{rows} rows{why}{recheck}")
        return ResourceCost(name, 1, "assumed one page (size unknown before a first run)")

    # -- prices -----------------------------------------------------------------------------

    def costs(self, selected: list[str]) -> list[ResourceCost]:
        costs: list[ResourceCost] = []
        priced: set[str] = set()
        for name in selected:
            parent = self.parent_of(TABLES[name])
            if parent and parent not in selected and parent not in priced:
                cost = self.price(parent)
                costs.append(ResourceCost(cost.resource, cost.calls, cost.basis, loaded=False))
                priced.add(parent)
            if name not in priced:
                costs.append(self.price(name))
                priced.add(name)
        # the client checks once whether a short first page is the whole list (one extra call)
        if not any(c.calls > 1 and c.resource in _LISTS for c in costs):
            costs.append(ResourceCost("(paging check)", 1, "a short first page confirmed once"))
        confirming = self.confirm_cost(priced)
        if confirming is not None:
            costs.append(confirming)
        return costs

    def confirm_cost(self, priced: set[str]) -> ResourceCost | None:
        """Confirm before retiring (retirement.py): a table that loaded before asks for each
        record missing from its list (`user_group_members`: reads its group again). How many
        is unknown until the lists are read: priced as many as its last run made
        (`confirm_calls` in its state), at most `max_confirm_calls`; without that count,
        a note."""
        cap = int(self.config.get("max_confirm_calls"))
        last_run: dict[str, int] = {}
        uncounted = False
        # every snapshot table records its confirming calls (0 without a confirming route)
        # from its second run on: the states say which tables confirm, no list of them here
        for name in sorted(priced):
            state = self.states.get(name) or {}
            if CONFIRM_CALLS in state:
                last_run[name] = min(int(state[CONFIRM_CALLS]), cap)
            elif state.get("snapshot_loaded"):  # loaded before, its confirming calls unknown
                uncounted = True
        if uncounted:
            self.notes.append(
                "plus 1 call per record missing from its list since the last run (its own "
                f"route confirms it is gone), at most {cap} per table; none on a night without "
                "deletions"
            )
        if not last_run:
            return None
        made = [f"{name} {calls}" for name, calls in last_run.items() if calls]
        basis = (
            f"as many as the last run made ({', '.join(made)})"
            if made
            else "none: the last run had no record missing from its lists"
        )
        return ResourceCost(
            CONFIRM_LINE, sum(last_run.values()), f"{basis}, at most {cap} per table"
        )

    def parent_of(self, spec: TableSpec) -> str | None:
        """The table whose records `spec` fans out over under this configuration."""
        if any(self.config.get(k) != v for k, v in spec.parent_when.items()):
            return None
        return spec.parent

    def price(self, name: str) -> ResourceCost:
        """One resource's calls, by its kind and parent (a few tables, whose calls depend on
        settings more than on a parent's rows, name their own `cost_model`)."""
        spec = TABLES[name]
        if spec.cost_model:
            return getattr(self, f"cost_{spec.cost_model}")(spec)
        if spec.kind in LIST_KINDS:
            return self.list_cost(name, " in the window" if spec.probed else "")
        if spec.kind == "derived":
            return ResourceCost(name, 0, f"unpacked from {spec.parent}, no calls")
        if spec.parent:  # fan_out, per_user, download: one call per record of the parent
            count = self.count(spec.parent)
            basis = f"1 {spec.route} per {spec.per} × {count}"
            if spec.kind == "download":
                basis = f"at most {basis} (changed only)"
            return ResourceCost(name, count, basis)
        # one_record, history: a fixed number of calls
        return ResourceCost(name, spec.calls, f"{spec.route} × {spec.calls}")

    def cost_manager_permissions(self, spec: TableSpec) -> ResourceCost:
        pairs = len(self.options.manager_permission_pairs)
        return ResourceCost(spec.name, pairs, f"1 per (user, group) pair × {pairs}")

    def cost_async_reports(self, spec: TableSpec) -> ResourceCost:
        reports = len(parse_async_reports(self.config.get("async_reports") or ()))
        per_report = 1 + ASYNC_REPORT_POLLS + 1
        self.notes.append(
            "async reports: each slow report adds one status poll per wait "
            "(waits double from async_report_poll_s up to 30 s)"
        )
        return ResourceCost(
            spec.name,
            reports * per_report,
            f"(1 request + {ASYNC_REPORT_POLLS} polls + 1 download) per report × {reports}",
        )

    def _progress_mode(self) -> str:
        return str(self.config.get("course_progress_mode"))

    def cost_course_progresses(self, spec: TableSpec) -> ResourceCost:
        name = spec.name
        listed = self.config.get("course_ids")
        if self._progress_mode() == "account_wide" and listed is None:
            return self.list_cost(name, " account-wide")
        courses = len(set(listed)) if listed is not None else self.count("courses")
        if self.per_course:
            # each course's own list: floor(n / page_size) + 1 pages (+ its re-check); a course
            # not seen before (or with no progresses) costs one page
            if listed is not None:
                known = [self.per_course[str(c)] for c in set(listed) if str(c) in self.per_course]
            else:
                known = list(self.per_course.values())
            unseen = max(courses - len(known), 0)
            paged = [self.paged_calls(name, rows)[0] for rows in known]
            rechecks = sum(1 for rows in known if self.paged_calls(name, rows)[1])
            calls = sum(paged) + unseen
            basis = f"1 list per course × {courses}, {sum(known)} rows known in {len(known)}"
            if rechecks:
                basis += f" (+ {rechecks} re-checks of page 1)"
        elif name in self.known and self.count("courses"):
            per_course = self.known[name] / max(self.count("courses"), 1)
            calls = courses * list_calls(math.ceil(per_course), self.page_size)
            basis = f"lists of ~{per_course:.0f} rows × {courses} courses"
        else:
            users = self.count("users")
            sample = self._progress_sample(listed) if users >= self.page_size else []
            if sample:
                # a course's list may take several pages: price them from a sample of courses
                per_course = sum(list_calls(rows, self.page_size) for rows in sample) / len(sample)
                calls = math.ceil(courses * per_course)
                basis = (
                    f"1 list per course × {courses}, ~{per_course:.2f} pages each "
                    f"(a sample of {len(sample)} courses)"
                )
                self.notes.append(
                    f"course_progresses is priced from {len(sample)} courses' lists, read to "
                    "plan; a later run prices every course from the rows it loaded"
                )
            else:
                # a course cannot have more progresses than the account has users
                calls = courses * list_calls(min(users, self.page_size - 1), self.page_size)
                basis = f"1 list per course × {courses}"
        return ResourceCost(name, calls, basis)

    def _progress_sample(self, listed: Any) -> list[int]:
        """Rows of the progress lists of up to PROGRESS_SAMPLE_COURSES courses, spread evenly
        over the course list (or over `course_ids`)."""
        if listed is not None:
            course_ids = sorted({int(c) for c in listed})
        else:
            course_ids = sorted(
                int(record["id"])
                for page in self.client.pages("get_courses", {}, key_of("id"))
                for record in page
                if isinstance(record, dict) and record.get("id") is not None
            )
        if not course_ids:
            return []
        step = max(len(course_ids) / PROGRESS_SAMPLE_COURSES, 1.0)
        picked = sorted(
            {
                course_ids[int(i * step)]
                for i in range(PROGRESS_SAMPLE_COURSES)
                if int(i * step) < len(course_ids)
            }
        )
        return [
            self._list_length("get_course_progresses", {"course_id": course_id})
            for course_id in picked
        ]

    def cost_course_item_progresses(self, spec: TableSpec) -> ResourceCost:
        calls = 0
        pairs = 0
        for course_id in self.options.course_item_progress_course_ids:
            course = self.client.call("get_course", {"course_id": course_id})
            items = course.get("course_items") if isinstance(course, dict) else None
            item_count = len(items) if isinstance(items, list) else 0
            calls += 1
            if not item_count:
                continue
            enrolled = self._list_length("get_course_progresses", {"course_id": course_id})
            calls += list_calls(enrolled, self.page_size) + enrolled * item_count
            pairs += enrolled * item_count
        courses = len(self.options.course_item_progress_course_ids)
        return ResourceCost(
            spec.name,
            calls,
            f"1 per (enrolled user, course item) × {pairs} in {courses} course(s)",
        )


# the plan's line for the calls that confirm records missing from a list before retiring them
CONFIRM_LINE = "(confirm before retiring)"
# the lists the source reads with `verify_stable` (snapshot_resource, course_progresses)
_RECHECKED = frozenset({*SNAPSHOT_RESOURCES, "course_progresses"})
_LISTS = frozenset(spec.name for spec in TABLES.values() if spec.kind in LIST_KINDS)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
