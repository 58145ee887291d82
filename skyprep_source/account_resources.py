"""The rest of the read API: learning paths, classroom training, competencies held, the account.

The plain list routes (learning paths, instructor-led trainings, materials, power users, user
roles, datasets) are snapshot entries of the catalogue and need nothing here. This module wires
the ones that are not a plain list:

- rows unpacked from a parent's records (`learning_path_courses`, `learning_path_user_groups`);
- a server-side date window (`instructor_led_training_timeslots`, with a lookback);
- one call per parent record (timeslot registrations, competency awards, skill leaderboards);
- one object (`program`) and a history row per run (`platform_counts`);
- the opt-in resources that cost one call per user or per record (off unless asked for).

Every resource reuses the source's client, normaliser and scd2 conventions (`source.py`).
See docs/routes.md for which route feeds which table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.extract.resource import DltResource
from sqlglot import exp

from skyprep_source.client import SkyPrepClient, key_of
from skyprep_source.endpoints import ENDPOINTS, Endpoint
from skyprep_source.errors import SkyPrepAPIError
from skyprep_source.retirement import RetirementPolicy, RunReport, guarded_fan_out, isolated
from skyprep_source.schemas import PLATFORM_COUNT_TYPES

logger = logging.getLogger("skyprep_source")

# the opt-in resources that fan out over every user (one call per user each)
PER_USER_RESOURCES: tuple[str, ...] = ("user_gamification_balances", "user_skill_balances")
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


def read_api_resources(
    client: SkyPrepClient,
    snapshots: Mapping[str, DltResource],
    options: ReadApiOptions,
    report: RunReport | None = None,
    policy: RetirementPolicy | None = None,
) -> list[DltResource]:
    """The resources of this module, fed by the source's snapshot resources where they fan out.

    Opt-in resources are created only when asked for: absent, they cannot be selected by
    mistake and cost nothing. Each is isolated (retirement.isolated): one that fails after
    its retries is skipped, its table retiring nothing, unless `policy.all_or_nothing`.
    """
    _isolation.update(report=report or RunReport(), policy=policy or RetirementPolicy())
    timeslots = timeslots_resource(client, options)
    resources = [
        *learning_path_bridge_resources(snapshots["learning_paths"]),
        timeslots,
        timeslot_registrations_resource(client, timeslots),
        competency_awards_resource(client, snapshots["competencies"]),
        skill_leaderboards_resource(client, snapshots["skills"]),
        program_resource(client),
        platform_counts_resource(client),
    ]
    if "user_gamification_balances" in options.per_user_resources:
        resources.append(user_gamification_balances_resource(client, snapshots["users"]))
    if "user_skill_balances" in options.per_user_resources:
        resources.append(user_skill_balances_resource(client, snapshots["users"]))
    if options.course_item_progress_course_ids:
        resources.append(
            course_item_progresses_resource(client, options.course_item_progress_course_ids)
        )
    if options.manager_permission_pairs:
        resources.append(manager_permissions_resource(client, options.manager_permission_pairs))
    return resources


# ---- shared pieces (the source's own conventions) -----------------------------------------

# the run's report and policy, set by read_api_resources (resources are built right after)
_isolation: dict[str, Any] = {}
# parents whose last item tells their transformers the snapshot is complete (source.py)
_SNAPSHOT_PARENTS = ("learning_paths", "competencies", "skills", "users")


def _isolated(
    name: str,
    read: Any,
    endpoint: Endpoint | None,
    parent: str | None = None,
    hold_keys: tuple[str, ...] | None = None,
) -> Any:
    """`read` skipped for the run when it fails (retirement.isolated), its table held; a
    transformer over a snapshot (`parent`) also under the mass-retirement guard."""
    report = _isolation.get("report") or RunReport()
    policy = _isolation.get("policy") or RetirementPolicy()
    empty = (lambda: _rows_to_item([], endpoint)) if endpoint is not None else None
    # the guard holds by the primary key: not for a resource held by other keys
    guarded = parent in _SNAPSHOT_PARENTS and not hold_keys
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


def _core() -> Any:
    # imported late: source.py imports this module inside skyprep()
    from skyprep_source import source

    return source


def _scd2(endpoint: Endpoint, scope: str | None = None) -> Any:
    return endpoint.write_disposition(scope or _core().WHOLE_TABLE)


def _json_hints(endpoint: Endpoint) -> list[dict[str, Any]]:
    return [
        {"name": name, "data_type": "json"}
        for name, kind in endpoint.schema.fields.items()
        if kind == "json"
    ]


def _rows_to_item(rows: Sequence[dict[str, Any]], endpoint: Endpoint) -> Any:
    return _core().page_to_table(rows, endpoint)


def _ids(table: pa.Table, column: str = "id") -> list[int]:
    return [i for i in table.column(column).to_pylist() if i is not None]


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


def learning_path_bridge_resources(learning_paths: DltResource) -> list[DltResource]:
    """`learning_path_courses` and `learning_path_user_groups`, unpacked from the arrays
    (`course_ids`, `user_group_ids`) of the learning paths list: no call of their own."""
    return [
        _bridge_resource(learning_paths, "learning_path_courses", "course_ids", "course_id"),
        _bridge_resource(
            learning_paths, "learning_path_user_groups", "user_group_ids", "user_group_id"
        ),
    ]


def _bridge_resource(
    learning_paths: DltResource, resource_name: str, array: str, column: str
) -> DltResource:
    endpoint = ENDPOINTS[resource_name]

    def unpack(paths_page: pa.Table) -> Iterator[Any]:
        if array not in paths_page.column_names:
            return
        rows: list[dict[str, Any]] = []
        ids = paths_page.column("id").to_pylist()
        arrays = paths_page.column(array).to_pylist()
        for path_id, text in zip(ids, arrays, strict=True):
            for value in dict.fromkeys(str(v) for v in _id_list(_load_json(text))):
                rows.append({"learning_path_id": path_id, column: value})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.transformer(
        _isolated(resource_name, unpack, endpoint, "learning_paths"),
        data_from=learning_paths,
        name=resource_name,
        write_disposition=_scd2(endpoint),
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
    dialect = dialect or _destination_dialect()

    def midnight_utc(day: date) -> exp.Expr:
        moment = datetime.combine(day, datetime.min.time(), timezone.utc)
        text = exp.Literal.string(moment.isoformat(sep=" "))
        return exp.cast(text, exp.DataType.build("timestamptz"))

    column_sql = exp.column(column)
    condition = exp.and_(
        exp.GTE(this=column_sql, expression=midnight_utc(first_day)),
        exp.LT(this=column_sql.copy(), expression=midnight_utc(end_day)),
    )
    return condition.sql(dialect=dialect)


def _destination_dialect() -> str:
    """The sqlglot dialect of the running pipeline's destination (DuckDB when there is none:
    an extract without a destination)."""
    try:
        destination = dlt.current.pipeline().destination
        dialect = destination.capabilities().sqlglot_dialect if destination else None
    except Exception:  # no active pipeline, or a destination without capabilities
        dialect = None
    return str(dialect or "duckdb")


def timeslots_resource(client: SkyPrepClient, options: ReadApiOptions) -> DltResource:
    """Timeslots in the `start_date`/`end_date` window since the last run (minus the lookback).

    scd2 scoped to the window: a timeslot inside the window that the API no longer lists is
    retired; timeslots outside it (older sessions) keep their last version."""
    endpoint = ENDPOINTS["instructor_led_training_timeslots"]
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
        _isolated(endpoint.resource, read_timeslots, endpoint),
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
        columns=_json_hints(endpoint),
    )


def timeslot_registrations_resource(client: SkyPrepClient, timeslots: DltResource) -> DltResource:
    """Registrations (attendance status) of each timeslot this run read: one list per timeslot.

    scd2 with `instructor_led_training_timeslot_id` as merge key: the registrations of a
    re-read timeslot are compared in full (a cancelled registration is retired), those of
    timeslots outside the window stay as they are."""
    endpoint = ENDPOINTS["instructor_led_training_timeslot_registrations"]
    key = key_of(*endpoint.primary_key)
    merge_key = "instructor_led_training_timeslot_id"
    # stated on every item: a transformer's items inherit the hints of the items it was fed
    # (the timeslots' window scope), which must not apply to this table
    hints = dlt.mark.make_hints(write_disposition=_scd2_by_key(endpoint), merge_key=merge_key)

    def registrations(timeslots_page: Any) -> Iterator[Any]:
        for timeslot_id in _ids(_as_table(timeslots_page)):
            params = {"instructor_led_training_timeslot_id": timeslot_id}
            try:
                for page in client.pages(endpoint.route, params, key):
                    # the route may omit the timeslot id on its rows: stamp it
                    rows = [
                        {**row, "instructor_led_training_timeslot_id": timeslot_id} for row in page
                    ]
                    yield dlt.mark.with_hints(_rows_to_item(rows, endpoint), hints)
            except SkyPrepAPIError as error:
                if error.status != 404:
                    raise
                logger.warning("SkyPrep timeslot %s vanished while it was read", timeslot_id)

    return dlt.transformer(
        _isolated(endpoint.resource, registrations, endpoint, "instructor_led_training_timeslots"),
        data_from=timeslots,
        name=endpoint.resource,
        write_disposition=_scd2_by_key(endpoint),
        merge_key=merge_key,
    )


def _scd2_by_key(endpoint: Endpoint) -> Any:
    """scd2 that retires rows only within the merge keys of this load (no scope)."""
    return endpoint.write_disposition()


def _as_table(item: Any) -> pa.Table:
    """The Arrow table inside an item that may carry dlt hints."""
    return item if isinstance(item, pa.Table) else getattr(item, "data", item)


# ---- per-record details: competency awards, skill leaderboards ------------------------------


def competency_awards_resource(client: SkyPrepClient, competencies: DltResource) -> DltResource:
    """Who achieved which competency, when: `details.activity_awards` of `get_competency`,
    one call per competency."""
    endpoint = ENDPOINTS["competency_awards"]

    def awards(competencies_page: pa.Table) -> Iterator[Any]:
        rows: list[dict[str, Any]] = []
        for competency_id in _ids(competencies_page):
            answer = _details_of(client, endpoint.route, "competency_id", competency_id)
            if answer is None:
                continue
            details = answer.get("details") or {}
            for award in details.get("activity_awards") or []:
                if isinstance(award, dict) and award.get("user_id") is not None:
                    rows.append({**award, "competency_id": competency_id})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.transformer(
        _isolated(endpoint.resource, awards, endpoint, "competencies"),
        data_from=competencies,
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
    )


def skill_leaderboards_resource(client: SkyPrepClient, skills: DltResource) -> DltResource:
    """The leaders of each skill (`details.leaderboard` of `get_skill`, one call per skill),
    ranked in the API's order."""
    endpoint = ENDPOINTS["skill_leaderboards"]

    def leaderboards(skills_page: pa.Table) -> Iterator[Any]:
        rows: list[dict[str, Any]] = []
        for skill_id in _ids(skills_page):
            answer = _details_of(client, endpoint.route, "skill_id", skill_id)
            if answer is None:
                continue
            details = answer.get("details") or {}
            leaders = [e for e in details.get("leaderboard") or [] if isinstance(e, dict)]
            for rank, entry in enumerate(leaders, start=1):
                if entry.get("user_id") is not None:
                    rows.append({**entry, "skill_id": skill_id, "rank": rank})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.transformer(
        _isolated(endpoint.resource, leaderboards, endpoint, "skills"),
        data_from=skills,
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
    )


def _details_of(
    client: SkyPrepClient, route: str, id_param: str, record_id: int
) -> dict[str, Any] | None:
    """One record's details; None when it vanished since its list was read (404)."""
    try:
        return _object(
            client.call_record(route, {id_param: record_id}), route, f"{id_param} {record_id}"
        )
    except SkyPrepAPIError as error:
        if error.status != 404:
            raise
        logger.warning("SkyPrep %s %s vanished while it was read", id_param, record_id)
        return None


# ---- the account: program and platform counts ------------------------------------------------


def program_resource(client: SkyPrepClient) -> DltResource:
    """The account itself (`get_program`): one row, versioned when its settings change."""
    endpoint = ENDPOINTS["program"]

    def read_program() -> Iterator[Any]:
        program = _object(client.call_record(endpoint.route), endpoint.route, "the account")
        yield _rows_to_item([program], endpoint)

    return dlt.resource(
        _isolated(endpoint.resource, read_program, endpoint),
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
        columns=_json_hints(endpoint),
    )


def platform_counts_resource(client: SkyPrepClient) -> DltResource:
    """One row per run: `get_data` for each data type, stamped with the run's time (UTC), so
    the table is a history of the account's size. Appended, never rewritten."""
    endpoint = ENDPOINTS["platform_counts"]

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
        _isolated(endpoint.resource, read_counts, endpoint),
        name=endpoint.resource,
        write_disposition=endpoint.write_disposition(),
    )


# ---- opt-in: one call per user or per record -------------------------------------------------


def user_gamification_balances_resource(client: SkyPrepClient, users: DltResource) -> DltResource:
    """Each user's gamification points: one `get_user_gamification_balance` per user."""
    endpoint = ENDPOINTS["user_gamification_balances"]

    def balances(users_page: pa.Table) -> Iterator[Any]:
        rows = []
        for user_id in _ids(users_page):
            answer = _per_user(client, endpoint.route, user_id)
            if answer is not None:
                rows.append({**answer, "user_id": user_id})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.transformer(
        _isolated(endpoint.resource, balances, endpoint, "users"),
        data_from=users,
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
    )


def user_skill_balances_resource(client: SkyPrepClient, users: DltResource) -> DltResource:
    """Each user's skill balances (`user_skill_balances`) and the competencies they achieved
    (`user_competencies_achieved`), from one `get_user_skill_balances_and_competencies` call
    per user."""
    endpoint = ENDPOINTS["user_skill_balances"]
    achieved_endpoint = ENDPOINTS["user_competencies_achieved"]

    def balances(users_page: pa.Table) -> Iterator[Any]:
        rows: list[dict[str, Any]] = []
        achieved: list[dict[str, Any]] = []
        for user_id in _ids(users_page):
            answer = _per_user(client, endpoint.route, user_id)
            if answer is None:
                continue
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
        if rows:
            yield _rows_to_item(rows, endpoint)
        if achieved:
            yield dlt.mark.with_table_name(
                _rows_to_item(achieved, achieved_endpoint), achieved_endpoint.resource
            )

    return dlt.transformer(
        # it writes user_competencies_achieved too: held by the key both tables have
        _isolated(endpoint.resource, balances, endpoint, "users", hold_keys=("user_id",)),
        data_from=users,
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
    )


def _per_user(client: SkyPrepClient, route: str, user_id: int) -> dict[str, Any] | None:
    """One user's answer; None when the user vanished since `users` listed them."""
    try:
        return _object(client.call_record(route, {"user_id": user_id}), route, f"user {user_id}")
    except SkyPrepAPIError as error:
        if error.status != 404:
            raise
        logger.warning("SkyPrep user %s vanished while %s was read", user_id, route)
        return None


def course_item_progresses_resource(
    client: SkyPrepClient, course_ids: Sequence[int]
) -> DltResource:
    """Item-level progress of every enrolled user in the listed courses: the course's items
    (`get_course`), its enrollments (`get_course_progresses`), then one
    `get_course_item_progress` per (enrollment, item). scd2 scoped to the listed courses."""
    endpoint = ENDPOINTS["course_item_progresses"]
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

    scope = f"course_id IN ({', '.join(map(str, wanted))})"
    return dlt.resource(
        _isolated(endpoint.resource, read_items, endpoint),
        name=endpoint.resource,
        write_disposition=_scd2(endpoint, scope),
        columns=_json_hints(endpoint),
    )


def manager_permissions_resource(
    client: SkyPrepClient, pairs: Sequence[tuple[int, int]]
) -> DltResource:
    """A manager's permissions in a group, for each configured (user_id, user_group_id) pair:
    one call each. A pair whose user is not (or no longer) a manager of the group has no row."""
    endpoint = ENDPOINTS["manager_permissions"]

    def read_permissions() -> Iterator[Any]:
        rows = []
        for user_id, group_id in pairs:
            try:
                answer = client.call_record(
                    endpoint.route, {"user_id": user_id, "user_group_id": group_id}
                )
            except SkyPrepAPIError as error:
                if error.status != 404:
                    raise
                continue  # not a manager of that group (or either record is gone)
            permissions = _object(answer, endpoint.route, f"user {user_id} in group {group_id}")
            rows.append({**permissions, "user_id": user_id, "user_group_id": group_id})
        if rows:
            yield _rows_to_item(rows, endpoint)

    return dlt.resource(
        _isolated(endpoint.resource, read_permissions, endpoint),
        name=endpoint.resource,
        write_disposition=_scd2(endpoint),
        columns=_json_hints(endpoint),
    )


__all__ = [
    "PER_USER_RESOURCES",
    "ReadApiOptions",
    "read_api_options",
    "read_api_resources",
    "timeslot_window",
]
