"""The rest of the read API: learning paths, classroom training, competencies held, the account.

The plain list routes (learning paths, instructor-led trainings, materials, power users, user
roles, datasets) are snapshot entries of the catalogue and need nothing here. This module holds
the builders of the tables that are not a plain list (`source.BUILDERS` picks them by kind):

- rows unpacked from a parent's records (`learning_path_courses`, `learning_path_user_groups`);
- a server-side date window (`instructor_led_training_timeslots`, with a lookback);
- one call per parent record (timeslot registrations, competency awards, skill leaderboards);
- one object (`program`) and a history row per run (`platform_counts`);
- the opt-in resources that cost one call per user or per record (off unless asked for).

Every resource reuses the run's client, the pages -> Arrow conventions (`arrow_items`) and the
scd2 conventions of the catalogue.
See docs/routes.md for which route feeds which table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.extract.resource import DltResource

from skyprep_source.arrow_items import json_hints, page_to_table, record_ids
from skyprep_source.catalogue import PER_USER_RESOURCES, TABLES, WHOLE_TABLE, TableSpec
from skyprep_source.client import SkyPrepClient, key_of
from skyprep_source.errors import SkyPrepAPIError, unless_vanished
from skyprep_source.retirement import RetirementPolicy, RunReport, guarded_fan_out, isolated
from skyprep_source.schemas import PLATFORM_COUNT_TYPES
from skyprep_source.scopes import ids_in, utc_day_range_sql

logger = logging.getLogger("skyprep_source")

# the timeslot window's first start when nothing was loaded yet (the route wants a date)
FIRST_TIMESLOT_DATE = "2000-01-01"


@dataclass(frozen=True)
class ReadApiOptions:
    """The source arguments that shape the resources of this module."""

    timeslots_lookback_days: int = 30
    timeslots_horizon_days: int = 730
    per_user_resources: tuple[str, ...] = ()
    course_item_progress_course_ids: tuple[int, ...] = ()
    manager_permission_pairs: tuple[tuple[int, int], ...] = ()
    today: date | None = None  # fixed in tests; the run's UTC date otherwise

    def __post_init__(self) -> None:
        unknown = sorted(set(self.per_user_resources) - set(PER_USER_RESOURCES))
        if unknown:
            raise ValueError(
                f"per_user_resources: unknown {', '.join(unknown)}; choose from "
                f"{', '.join(PER_USER_RESOURCES)}"
            )
        if self.timeslots_lookback_days < 0 or self.timeslots_horizon_days < 0:
            raise ValueError("timeslots_lookback_days and timeslots_horizon_days must be >= 0")


def read_api_options(
    timeslots_lookback_days: int = 30,
    timeslots_horizon_days: int = 730,
    per_user_resources: Iterable[str] | None = None,
    course_item_progress_course_ids: Iterable[Any] | None = None,
    manager_permission_pairs: Iterable[Any] | None = None,
) -> ReadApiOptions:
    """`ReadApiOptions` from the loosely typed values dlt config hands over (lists from TOML,
    pairs as two-element lists, ids as strings)."""
    pairs = []
    for entry in manager_permission_pairs or ():
        pair: Sequence[Any] = (
            (entry["user_id"], entry["user_group_id"]) if isinstance(entry, Mapping) else entry
        )
        if len(pair) != 2:
            raise ValueError(
                f"manager_permission_pairs: each entry is (user_id, user_group_id), got {pair!r}"
            )
        pairs.append((int(pair[0]), int(pair[1])))
    return ReadApiOptions(
        timeslots_lookback_days=int(timeslots_lookback_days),
        timeslots_horizon_days=int(timeslots_horizon_days),
        per_user_resources=tuple(dict.fromkeys(per_user_resources or ())),
        course_item_progress_course_ids=tuple(
            sorted({int(c) for c in course_item_progress_course_ids or ()})
        ),
        manager_permission_pairs=tuple(dict.fromkeys(pairs)),
    )


def use_run(report: RunReport | None = None, policy: RetirementPolicy | None = None) -> None:
    """The run's report and retirement policy, for the resources built next.

    Opt-in resources are created only when asked for (the catalogue's `enabled_by`): absent,
    they cannot be selected by mistake and cost nothing. Each is isolated
    (retirement.isolated): one that fails after its retries is skipped, its table retiring
    nothing, unless `policy.all_or_nothing`.
    """
    _isolation.update(report=report or RunReport(), policy=policy or RetirementPolicy())


# ---- shared pieces (the source's own conventions) -----------------------------------------

# the run's report and policy, set by use_run (resources are built right after)
_isolation: dict[str, Any] = {}


def _isolated(
    name: str,
    read: Any,
    endpoint: TableSpec | None,
    parent: str | None = None,
    hold_keys: tuple[str, ...] | None = None,
) -> Any:
    """`read` skipped for the run when it fails (retirement.isolated), its table held; a
    transformer over a snapshot (`parent`) also under the mass-retirement guard."""
    report = _isolation.get("report") or RunReport()
    policy = _isolation.get("policy") or RetirementPolicy()
    empty = (lambda: _rows_to_item([], endpoint)) if endpoint is not None else None
    # the guard holds by the primary key: not for a resource held by other keys
    # (a snapshot parent's last item tells its transformers the snapshot is complete)
    guarded = parent is not None and TABLES[parent].kind == "snapshot" and not hold_keys
    if guarded and parent and endpoint is not None and empty is not None:
        read = guarded_fan_out(endpoint, parent, read, report, policy, empty)
    return isolated(
        name,
        read,
        report,
        policy,
        endpoint=endpoint,
        parent=parent,
        empty_item=empty,
        hold_keys=hold_keys,
    )


def _scd2(endpoint: TableSpec, scope: str | None = None) -> Any:
    return endpoint.write_disposition(scope or WHOLE_TABLE)


def _rows_to_item(rows: Sequence[dict[str, Any]], endpoint: TableSpec) -> Any:
    return page_to_table(rows, endpoint)


def _object(answer: Any, route: str, what: str) -> dict[str, Any]:
    """The answer as a JSON object, or an error naming the route and the record."""
    if not isinstance(answer, dict):
        raise SkyPrepAPIError(
            f"SkyPrep {route} answered a {type(answer).__name__} for {what} where an object "
            "was expected"
        )
    return answer


def _id_list(value: Any) -> list[Any]:
    """An id array as the API gives it: a JSON array, or a comma list in a string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part for part in value.strip("[] ").replace(" ", "").split(",") if part]
    if isinstance(value, list):
        return [v.get("id") if isinstance(v, dict) else v for v in value]
    return []


# ---- learning paths: their courses and groups -----------------------------------------------


def bridge_resource(parent: DltResource, spec: TableSpec) -> DltResource:
    """A derived table: (parent id, value) pairs unpacked from an id array of the parent's
    records (`spec.unpack`, e.g. the `course_ids` of learning paths): no call of its own."""
    array = spec.unpack or ""
    parent_key, column = spec.primary_key

    def unpack(parent_page: pa.Table) -> Iterator[Any]:
        if array not in parent_page.column_names:
            return
        rows: list[dict[str, Any]] = []
        ids = parent_page.column("id").to_pylist()
        arrays = parent_page.column(array).to_pylist()
        for parent_id, text in zip(ids, arrays, strict=True):
            for value in dict.fromkeys(str(v) for v in _id_list(_load_json(text))):
                rows.append({parent_key: parent_id, column: value})
        if rows:
            yield _rows_to_item(rows, spec)

    return dlt.transformer(
        _isolated(spec.name, unpack, spec, spec.parent),
        data_from=parent,
        name=spec.name,
        write_disposition=_scd2(spec),
    )


def _load_json(text: Any) -> Any:
    """A JSON column's text back to its value (a plain string stays as it is)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


# ---- instructor-led training timeslots: a date window with a lookback ------------------------


def timeslot_window(
    last_run_date: str | None, lookback_days: int, horizon_days: int, today: date
) -> tuple[str, str]:
    """(`start_date`, `end_date`) of this run's timeslot window, as YYYY-MM-DD.

    The first run reads from FIRST_TIMESLOT_DATE; later runs from the previous run's date minus
    the lookback (attendance is marked after a session, so recent sessions are read again).
    The end is `horizon_days` ahead: sessions are scheduled in advance."""
    if last_run_date:
        start = min(date.fromisoformat(last_run_date), today) - timedelta(days=lookback_days)
        start_text = start.isoformat()
    else:
        start_text = FIRST_TIMESLOT_DATE
    return start_text, (today + timedelta(days=horizon_days)).isoformat()


def timeslots_resource(client: SkyPrepClient, options: ReadApiOptions) -> DltResource:
    """Timeslots in the `start_date`/`end_date` window since the last run (minus the lookback).

    scd2 scoped to the window: a timeslot inside the window that the API no longer lists is
    retired; timeslots outside it (older sessions) keep their last version."""
    endpoint = TABLES["instructor_led_training_timeslots"]
    key = key_of(*endpoint.primary_key)

    def read_timeslots() -> Iterator[Any]:
        state = dlt.current.resource_state()
        today = options.today or datetime.now(timezone.utc).date()
        start, end = timeslot_window(
            state.get("last_run_date"),
            options.timeslots_lookback_days,
            options.timeslots_horizon_days,
            today,
        )
        # end_date is inclusive (a whole day): the scope ends the day after
        until = date.fromisoformat(end) + timedelta(days=1)
        scope = utc_day_range_sql("start_date", date.fromisoformat(start), until)
        # the scope is known only now (it depends on the state), so it rides on the items
        hints = dlt.mark.make_hints(write_disposition=_scd2(endpoint, scope))
        params = {**endpoint.params, "start_date": start, "end_date": end}
        for page in client.pages(endpoint.route, params, key):
            yield dlt.mark.with_hints(_rows_to_item(page, endpoint), hints)
        state["last_run_date"] = today.isoformat()

    return dlt.resource(
        _isolated(endpoint.name, read_timeslots, endpoint),
        name=endpoint.name,
        write_disposition=_scd2(endpoint),
        columns=json_hints(endpoint),
    )


def timeslot_registrations_resource(client: SkyPrepClient, timeslots: DltResource) -> DltResource:
    """Registrations (attendance status) of each timeslot this run read: one list per timeslot.

    scd2 with `instructor_led_training_timeslot_id` as merge key: the registrations of a
    re-read timeslot are compared in full (a cancelled registration is retired), those of
    timeslots outside the window stay as they are."""
    endpoint = TABLES["instructor_led_training_timeslot_registrations"]
    key = key_of(*endpoint.primary_key)
    merge_key = "instructor_led_training_timeslot_id"
    # stated on every item: a transformer's items inherit the hints of the items it was fed
    # (the timeslots' window scope), which must not apply to this table
    hints = dlt.mark.make_hints(write_disposition=_scd2_by_key(endpoint), merge_key=merge_key)

    def registrations(timeslots_page: Any) -> Iterator[Any]:
        for timeslot_id in record_ids(_as_table(timeslots_page)):
            params = {"instructor_led_training_timeslot_id": timeslot_id}
            with unless_vanished(f"timeslot {timeslot_id}"):
                for page in client.pages(endpoint.route, params, key):
                    # the route may omit the timeslot id on its rows: stamp it
                    rows = [
                        {**row, "instructor_led_training_timeslot_id": timeslot_id} for row in page
                    ]
                    yield dlt.mark.with_hints(_rows_to_item(rows, endpoint), hints)

    return dlt.transformer(
        _isolated(endpoint.name, registrations, endpoint, "instructor_led_training_timeslots"),
        data_from=timeslots,
        name=endpoint.name,
        write_disposition=_scd2_by_key(endpoint),
        merge_key=merge_key,
    )


def _scd2_by_key(endpoint: TableSpec) -> Any:
    """scd2 that retires rows only within the merge keys of this load (no scope)."""
    return endpoint.write_disposition()


def _as_table(item: Any) -> pa.Table:
    """The Arrow table inside an item that may carry dlt hints."""
    return item if isinstance(item, pa.Table) else getattr(item, "data", item)


# ---- per-record details: competency awards, skill leaderboards ------------------------------


def details_resource(client: SkyPrepClient, spec: TableSpec, parent: DltResource) -> DltResource:
    """One single-record call per parent record (`spec.id_param`), its rows the entries of
    the array at `spec.unpack` (`details.activity_awards`: who achieved a competency, when;
    `details.leaderboard`: a skill's leaders, ranked in the API's order when the schema has
    a `rank`)."""
    path = (spec.unpack or "").split(".")
    id_param = spec.id_param or "id"
    ranked = "rank" in spec.schema.fields

    def rows_of(parent_page: pa.Table) -> Iterator[Any]:
        rows: list[dict[str, Any]] = []
        for record_id in record_ids(parent_page):
            answer: Any = _details_of(client, spec.route, id_param, record_id)
            if answer is None:
                continue
            for step in path[:-1]:
                answer = answer.get(step) or {}
            entries = [e for e in answer.get(path[-1]) or [] if isinstance(e, dict)]
            for rank, entry in enumerate(entries, start=1):
                if entry.get("user_id") is not None:
                    row = {**entry, id_param: record_id}
                    if ranked:
                        row["rank"] = rank
                    rows.append(row)
        if rows:
            yield _rows_to_item(rows, spec)

    return dlt.transformer(
        _isolated(spec.name, rows_of, spec, spec.parent),
        data_from=parent,
        name=spec.name,
        write_disposition=_scd2(spec),
    )


def _details_of(
    client: SkyPrepClient, route: str, id_param: str, record_id: int
) -> dict[str, Any] | None:
    """One record's details; None when it vanished since its list was read (404)."""
    with unless_vanished(f"{id_param} {record_id}"):
        return _object(
            client.call_record(route, {id_param: record_id}), route, f"{id_param} {record_id}"
        )
    return None


# ---- the account: program and platform counts ------------------------------------------------


def program_resource(client: SkyPrepClient, endpoint: TableSpec) -> DltResource:
    """The account itself (`get_program`): one row, versioned when its settings change."""

    def read_program() -> Iterator[Any]:
        program = _object(client.call_record(endpoint.route), endpoint.route, "the account")
        yield _rows_to_item([program], endpoint)

    return dlt.resource(
        _isolated(endpoint.name, read_program, endpoint),
        name=endpoint.name,
        write_disposition=_scd2(endpoint),
        columns=json_hints(endpoint),
    )


def platform_counts_resource(client: SkyPrepClient, endpoint: TableSpec) -> DltResource:
    """One row per run: `get_data` for each data type, stamped with the run's time (UTC), so
    the table is a history of the account's size. Appended, never rewritten."""

    def read_counts() -> Iterator[Any]:
        row: dict[str, Any] = {"measured_at": datetime.now(timezone.utc).isoformat()}
        for data_type in PLATFORM_COUNT_TYPES:
            answer = _object(
                client.call_record(endpoint.route, {"data_type": data_type}),
                endpoint.route,
                data_type,
            )
            row[data_type] = answer.get("data")  # a numeric string: the normaliser types it
        # the package's id on the row: a rerun after a kill mid-load can undo a half-done
        # append (skyprep_source.resume) instead of appending the row twice
        row["_dlt_load_id"] = dlt.current.load_package_state()["load_id"]
        yield _rows_to_item([row], endpoint)

    return dlt.resource(
        _isolated(endpoint.name, read_counts, endpoint),
        name=endpoint.name,
        write_disposition=endpoint.write_disposition(),
    )


# ---- opt-in: one call per user or per record -------------------------------------------------


def per_user_resource(client: SkyPrepClient, spec: TableSpec, users: DltResource) -> DltResource:
    """One call per user (`spec.route` with `user_id`), opt-in: its rows unpacked from the
    answer by `PER_USER_ROWS[spec.name]` (default: the answer object is the user's row). A
    table the same calls also write (`written_by`) is held with it, by `user_id`."""
    unpack = PER_USER_ROWS.get(spec.name)
    also_writes = [other for other in TABLES.values() if other.written_by == spec.name]

    def rows_of(users_page: pa.Table) -> Iterator[Any]:
        tables: dict[str, list[dict[str, Any]]] = {spec.name: []}
        tables.update((other.name, []) for other in also_writes)
        for user_id in record_ids(users_page):
            if spec.answers == "list":
                tables[spec.name] += _per_user_list(client, spec, user_id)
                continue
            answer = _per_user(client, spec.route, user_id)
            if answer is None:
                continue
            produced = (
                unpack(answer, user_id) if unpack else {spec.name: [{**answer, "user_id": user_id}]}
            )
            for table, rows in produced.items():
                tables[table] += rows
        for table, rows in tables.items():
            if not rows:
                continue
            item = _rows_to_item(rows, TABLES[table])
            yield item if table == spec.name else dlt.mark.with_table_name(item, table)

    return dlt.transformer(
        # a resource that writes other tables too is held by the key they all have
        _isolated(
            spec.name, rows_of, spec, "users", hold_keys=("user_id",) if also_writes else None
        ),
        data_from=users,
        name=spec.name,
        write_disposition=_scd2(spec),
    )


Rows = dict[str, list[dict[str, Any]]]


def _skill_balances_rows(answer: dict[str, Any], user_id: int) -> Rows:
    """`user_skill_balances` and `user_competencies_achieved` from one answer."""
    rows: list[dict[str, Any]] = []
    achieved: list[dict[str, Any]] = []
    for balance in answer.get("skill_balances") or []:
        if isinstance(balance, dict) and balance.get("skill_id") is not None:
            rows.append({**balance, "user_id": user_id})
    # the reference spells it `competencies_achived`; accept the fixed spelling too
    competencies = answer.get("competencies_achived", answer.get("competencies_achieved"))
    for competency in competencies or []:
        if isinstance(competency, dict) and competency.get("competency_id") is not None:
            achieved.append({**competency, "user_id": user_id})
        elif isinstance(competency, (int, str)):
            achieved.append({"competency_id": competency, "user_id": user_id})
    return {"user_skill_balances": rows, "user_competencies_achieved": achieved}


# how each per-user table's rows come out of one user's answer (table -> rows)
PER_USER_ROWS: dict[str, Callable[[dict[str, Any], int], Rows]] = {
    "user_skill_balances": _skill_balances_rows,
}


def _per_user_list(client: SkyPrepClient, spec: TableSpec, user_id: int) -> list[dict[str, Any]]:
    """One user's list (every page): each record a row stamped with `user_id`, its `id` as
    `spec.id_as`; none when the user vanished since `users` listed them."""
    rows: list[dict[str, Any]] = []
    with unless_vanished(f"user {user_id} ({spec.route})"):
        for page in client.pages(spec.route, {"user_id": user_id}, key_of("id")):
            for record in page:
                row = {**record, "user_id": user_id}
                if spec.id_as:
                    row[spec.id_as] = row.pop("id", None)
                rows.append(row)
    return rows


def _per_user(client: SkyPrepClient, route: str, user_id: int) -> dict[str, Any] | None:
    """One user's answer; None when the user vanished since `users` listed them."""
    with unless_vanished(f"user {user_id} ({route})"):
        return _object(client.call_record(route, {"user_id": user_id}), route, f"user {user_id}")
    return None


def course_item_progresses_resource(
    client: SkyPrepClient, course_ids: Sequence[int]
) -> DltResource:
    """Item-level progress of every enrolled user in the listed courses: the course's items
    (`get_course`), its enrollments (`get_course_progresses`), then one
    `get_course_item_progress` per (enrollment, item). scd2 scoped to the listed courses."""
    endpoint = TABLES["course_item_progresses"]
    progresses_key = key_of("id")
    wanted = sorted({int(c) for c in course_ids})

    def read_items() -> Iterator[Any]:
        for course_id in wanted:
            course = _object(
                client.call_record("get_course", {"course_id": course_id}), "get_course", "a course"
            )
            item_ids = [i for i in _id_list(course.get("course_items")) if i is not None]
            if not item_ids:
                continue
            for page in client.pages(
                "get_course_progresses", {"course_id": course_id}, progresses_key
            ):
                rows = []
                for progress in page:
                    user_id = progress.get("user_id")
                    for item_id in item_ids:
                        answer = client.call(
                            endpoint.route,
                            {"course_id": course_id, "user_id": user_id, "course_item_id": item_id},
                        )
                        fields = answer if isinstance(answer, dict) else {"message": answer}
                        rows.append(
                            {
                                **fields,
                                "course_id": course_id,
                                "user_id": user_id,
                                "course_item_id": item_id,
                                "course_progress_id": progress.get("id"),
                            }
                        )
                if rows:
                    yield _rows_to_item(rows, endpoint)

    scope = ids_in("course_id", wanted)
    return dlt.resource(
        _isolated(endpoint.name, read_items, endpoint),
        name=endpoint.name,
        write_disposition=_scd2(endpoint, scope),
        columns=json_hints(endpoint),
    )


def manager_permissions_resource(
    client: SkyPrepClient, pairs: Sequence[tuple[int, int]]
) -> DltResource:
    """A manager's permissions in a group, for each configured (user_id, user_group_id) pair:
    one call each. A pair whose user is not (or no longer) a manager of the group has no row."""
    endpoint = TABLES["manager_permissions"]

    def read_permissions() -> Iterator[Any]:
        rows = []
        for user_id, group_id in pairs:
            answer = None
            with unless_vanished(None):  # 404: not a manager of that group (or either is gone)
                answer = client.call_record(
                    endpoint.route, {"user_id": user_id, "user_group_id": group_id}
                )
            if answer is None:
                continue
            permissions = _object(answer, endpoint.route, f"user {user_id} in group {group_id}")
            rows.append({**permissions, "user_id": user_id, "user_group_id": group_id})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.resource(
        _isolated(endpoint.name, read_permissions, endpoint),
        name=endpoint.name,
        write_disposition=_scd2(endpoint),
        columns=json_hints(endpoint),
    )


__all__ = [
    "PER_USER_RESOURCES",
    "ReadApiOptions",
    "read_api_options",
    "timeslot_window",
    "use_run",
]
