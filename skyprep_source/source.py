"""The `skyprep` dlt source: the table of contents of what a run reads.

Every resource pages through one shared `SkyPrepClient`, turns each page into a typed Arrow
table (`normalize`), stamps it with a content hash (`_row_hash`) and hands it to dlt, which
keeps the history with `scd2`: a re-run without upstream changes rewrites nothing, a changed
record gets a new version, a record missing from a *complete* snapshot is retired. Any failed
call raises, so a run that could not read everything loads nothing (and retires nothing).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Literal, TypeVar

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from skyprep_source.arrow_pages import ArrowPages
from skyprep_source.client import (
    DEFAULT_BASE_URL,
    RateBudget,
    RetryPolicy,
    SkyPrepClient,
    key_of,
)
from skyprep_source.endpoints import ENDPOINTS, ROW_HASH, SNAPSHOT_RESOURCES, Endpoint
from skyprep_source.errors import SkyPrepAPIError, SkyPrepNotFound
from skyprep_source.normalize import json_columns, records_to_table, start_run_warnings
from skyprep_source.pii import PiiPolicy, apply_pii, set_policy
from skyprep_source.reports import (
    content_digest,
    csv_to_table,
    is_stored_report,
    report_table_name,
    stored_report_version,
)
from skyprep_source.retirement import (
    HeldRetirement,
    RetirementPolicy,
    RunReport,
    SeenKeys,
    find_candidates,
    guard_and_confirm,
    hold_retirement,
    isolated,
)
from skyprep_source.row_hash import add_row_hash
from skyprep_source.settings import check_settings

DAY_SECONDS = 86_400
# pages are joined up to this many rows before they become one Arrow table: dlt's and the
# row hash's cost per item is paid per ~5,000 rows, memory stays a few pages
BATCH_ROWS = 5_000
# courses whose progresses are read at once (one parsed while the next is fetched; the calls
# in flight stay the client's `concurrency`)
READ_AHEAD_COURSES = 2
# scd2 may retire any current row that is absent from a complete snapshot
WHOLE_TABLE = "1 = 1"

T = TypeVar("T")


class _JsonHintNotice(logging.Filter):
    """Drops dlt's per-page warning that our `json` column hints override Arrow's `text`.

    JSON travels in Arrow as text (dlt has no Arrow JSON type); the hint is the intent, so
    the warning would only repeat for every page of every run.
    """

    prefixes = tuple(
        f"In resource: {name}, when merging arrow schema with dlt schema"
        for name in (*ENDPOINTS, "saved_reports")
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


logging.getLogger("dlt").addFilter(_JsonHintNotice())
logger = logging.getLogger("skyprep_source")


@dlt.source(name="skyprep", max_table_nesting=0)
def skyprep(
    api_key: str = dlt.secrets.value,
    acct_key: str = dlt.config.value,
    base_url: str = DEFAULT_BASE_URL,
    requests_per_minute: str | int | None = 100,
    concurrency: int = 1,
    page_size: int = 1000,
    course_progress_mode: Literal["per_course", "account_wide"] = "per_course",
    course_ids: Sequence[int] | None = None,
    payments_lookback_days: int = 7,
    payments_full_read_days: int | None = 7,
    saved_reports: bool = True,
    request_timeout: float = 60.0,
    max_attempts: int = 6,
    backoff_base_s: float = 1.0,
    backoff_max_s: float = 60.0,
    rate_window_s: float = 60.0,
    verify_paging: bool = False,
    retire_max_share: float = 0.10,
    retire_floor: int = 50,
    max_confirm_calls: int = 500,
    all_or_nothing: bool = False,
    timeslots_lookback_days: int = 30,
    timeslots_horizon_days: int = 730,
    per_user_resources: Sequence[str] | None = None,
    course_item_progress_course_ids: Sequence[int] | None = None,
    manager_permission_pairs: Sequence[Sequence[int]] | None = None,
    async_reports: Sequence[Any] | None = None,
    async_report_timeout_s: float = 900.0,
    async_report_poll_s: float = 2.0,
    pii: str = "keep",
    pii_salt: TSecretStrValue | None = None,
    run_deadline_s: float | None = None,
) -> list[DltResource]:
    """Read a SkyPrep account (read-only) as typed tables.

    Args:
        api_key: the account's API key (secret: `sources.skyprep.api_key`).
        acct_key: the platform domain, e.g. `acme.skyprepapp.com`.
        base_url: the admin API's base URL.
        requests_per_minute: the rate budget shared by every resource; `off` (or None) turns
            it off. (Typed `str | int` so that dlt passes `off` from TOML or the environment
            through; `settings.parse_requests_per_minute` refuses anything else.)
        concurrency: calls in flight at once (the vendor asks for 1).
        page_size: rows asked per page (`per_page`); the client adapts to a server cap.
        course_progress_mode: `per_course` (one list per course, as the reference shows) or
            `account_wide` (one list without `course_id`).
        course_ids: read progresses of these courses only; other courses' rows stay as they
            are (never retired by this run).
        payments_lookback_days: days re-read before the last payment seen, so recent status
            changes (a pending payment settling, a quick refund) are caught.
        payments_full_read_days: every this many days, payments are read in full instead of
            in the window, so a status change on an older payment (a late refund) is caught
            too; None: the window only (such changes are then never seen).
        saved_reports: download each saved advanced report's CSV when it changed.
        request_timeout: seconds per HTTP call.
        max_attempts: attempts per call before the run fails.
        backoff_base_s: first retry delay (doubling up to `backoff_max_s`) when the server
            gives no Retry-After.
        backoff_max_s: the longest retry delay.
        rate_window_s: the window of the rate budget (60 s: "per minute").
        verify_paging: look at page 1 again after a list that took several pages, and
            re-read it if it moved. Off by default: confirm-before-retire already keeps a
            record that slid past the pager (docs/source.md §3).
        retire_max_share: a snapshot missing more than this share of a table's current rows
            (and more than `retire_floor` rows) retires none of them this run; the job exits
            with RETIREMENT_HELD (9). Raise it for a run that really deletes that much.
        retire_floor: missing rows always allowed to be confirmed and retired.
        max_confirm_calls: a table with more missing rows than this retires none of them
            (each missing row costs one call to its single-record route).
        all_or_nothing: fail the run when any resource fails (default: a failing resource
            outside users, courses and course_progresses is skipped; exit PARTIAL, 8).
        timeslots_lookback_days: days of instructor-led timeslots re-read before the last
            run's date (attendance is marked after the session).
        timeslots_horizon_days: how far ahead scheduled timeslots are read.
        per_user_resources: opt-in, one call per user each: `user_gamification_balances`,
            `user_skill_balances` (with `user_competencies_achieved`).
        course_item_progress_course_ids: opt-in `course_item_progresses` for these courses
            (one call per enrolled user and course item).
        manager_permission_pairs: opt-in `manager_permissions` for these
            (user_id, user_group_id) pairs (one call each).
        async_reports: report types to render with `generate_async_report`, each a name or
            (name, params), e.g. `["all_users", ("single_course", {"course_id": 5})]`; each
            loads as `report__<type>[__<param>_<value>]` (docs/routes.md).
        async_report_timeout_s: how long one async report may take before the run fails.
        async_report_poll_s: the first wait between status polls (doubling, at most 30 s).
        pii: personal data (e-mails, usernames, names, phones, addresses, card numbers, payer
            names and e-mails, the same columns of report CSVs): `keep`, `hash` (keyed
            HMAC-SHA256 with `pii_salt`, stable across runs) or `drop`; applied before dlt.
        pii_salt: the secret key of `hash` (`sources.skyprep.pii_salt` in .dlt/secrets.toml).
        run_deadline_s: fail the run (loading nothing) once it has spent this many seconds
            calling SkyPrep, counted from its first call; None: no bound.
    """
    rate_limit = check_settings(api_key, acct_key, base_url, requests_per_minute)
    report = RunReport.start()
    start_run_warnings()  # one warning per untyped column and run
    set_policy(PiiPolicy(pii, pii_salt))
    policy = RetirementPolicy(retire_max_share, retire_floor, max_confirm_calls, all_or_nothing)
    client = SkyPrepClient(
        api_key,
        acct_key,
        base_url,
        # shared with the job's call plan (and any other client of this account in-process)
        rate_budget=RateBudget.for_account(base_url, acct_key, rate_limit, rate_window_s),
        retry=RetryPolicy(max_attempts, backoff_base_s, backoff_max_s),
        request_timeout=request_timeout,
        page_size=page_size,
        concurrency=concurrency,
        verify_paged_lists=verify_paging,
        run_deadline_s=run_deadline_s,
    )
    snapshots = {
        name: snapshot_resource(client, ENDPOINTS[name], report, policy)
        for name in SNAPSHOT_RESOURCES
    }
    resources = [
        *snapshots.values(),
        course_progresses_resource(
            client,
            snapshots["courses"],
            course_progress_mode,
            course_ids,
            concurrency,
            report,
            policy,
        ),
        user_group_members_resource(client, snapshots["user_groups"], report, policy),
        payments_resource(client, payments_lookback_days, payments_full_read_days, report, policy),
    ]
    if saved_reports:
        resources.append(
            saved_report_downloads_resource(
                client, snapshots["saved_advanced_reports"], report, policy
            )
        )
    # the rest of the read API (account_resources.py, async_reports.py; docs/routes.md)
    from skyprep_source.account_resources import read_api_options, read_api_resources

    options = read_api_options(
        timeslots_lookback_days,
        timeslots_horizon_days,
        per_user_resources,
        course_item_progress_course_ids,
        manager_permission_pairs,
    )
    resources += read_api_resources(client, snapshots, options, report, policy)
    if async_reports:
        from skyprep_source.async_reports import async_reports_resource

        resources.append(
            async_reports_resource(
                client, async_reports, async_report_timeout_s, async_report_poll_s
            )
        )
    return resources


# ---- pages -> Arrow ----------------------------------------------------------------------


def page_table(records: Sequence[dict[str, Any]], endpoint: Endpoint) -> pa.Table:
    """One page of records -> its typed Arrow table, with the `_row_hash` row version."""
    # declared non-null (add_row_hash does), or dlt warns that the arrow and scd2 hints differ
    return add_row_hash(
        apply_pii(rows_with_keys(records_to_table(records, endpoint.schema), endpoint)), ROW_HASH
    )


def rows_with_keys(table: pa.Table, endpoint: Endpoint) -> pa.Table:
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
        report.bad_keys(endpoint.resource, table.num_rows - valid)
    logger.warning(
        "SkyPrep %s: %d row(s) without a valid %s were not loaded",
        endpoint.resource,
        table.num_rows - valid,
        "/".join(keys),
    )
    return table.filter(mask)


def as_item(table: pa.Table, endpoint: Endpoint) -> Any:
    """The item dlt receives: the table, hinted when extra fields hold JSON objects/arrays."""
    extra_json = [name for name in json_columns(table) if name not in endpoint.schema.fields]
    if extra_json:
        hints = dlt.mark.make_hints(columns=[{"name": n, "data_type": "json"} for n in extra_json])
        return dlt.mark.with_hints(table, hints)
    return table


def page_to_table(records: Sequence[dict[str, Any]], endpoint: Endpoint) -> Any:
    """One page of records -> the item dlt receives (typed Arrow table with `_row_hash`)."""
    return as_item(page_table(records, endpoint), endpoint)


def hashed_batches(pages: Iterable[pa.Table], endpoint: Endpoint) -> Iterator[pa.Table]:
    """Page tables joined into batches of about `BATCH_ROWS` rows, each with its `_row_hash`;
    at least one table (an empty snapshot is one empty typed table, so dlt still merges it and
    retires the records that are gone). Runs on the prefetch thread."""
    empty = True
    for table in batched_tables(pages):
        empty = False
        yield add_row_hash(apply_pii(rows_with_keys(table, endpoint)), ROW_HASH)
    if empty:
        yield page_table([], endpoint)


def snapshot_items(
    pages: Iterable[pa.Table], endpoint: Endpoint, seen: SeenKeys | None = None
) -> Iterator[Any]:
    """The items dlt receives for one complete snapshot read as page tables: the pages are
    joined and hashed on a background thread while dlt writes the previous batch. `seen`
    collects their keys (for confirm-before-retire)."""
    for table in prefetched(hashed_batches(pages, endpoint)):
        if seen is not None:
            seen.add(table)
        yield as_item(table, endpoint)


def end_of_snapshot(
    client: SkyPrepClient,
    endpoint: Endpoint,
    seen: SeenKeys,
    report: RunReport,
    policy: RetirementPolicy,
    loaded_before: bool,
    scope_sql: str | None = None,
) -> Any:
    """The last item of a complete snapshot: the records missing from it that their own route
    says still exist (an empty table when none), after the mass-retirement guard. Always
    yielded: fan-out transformers learn from it that their parent is complete."""
    fresh: list[dict[str, Any]] = []
    if loaded_before:  # a first run (or a full refresh) has nothing to retire
        fresh = guard_and_confirm(client, endpoint, seen, policy, report, scope_sql)
    table = page_table(fresh, endpoint)
    seen.add(table)
    return as_item(table, endpoint)


def empty_item(endpoint: Endpoint) -> Callable[[], Any]:
    """A factory of the empty typed table of `endpoint`."""
    return lambda: page_to_table([], endpoint)


def _json_hints(endpoint: Endpoint) -> list[dict[str, Any]]:
    return [
        {"name": name, "data_type": "json"}
        for name, kind in endpoint.schema.fields.items()
        if kind == "json"
    ]


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


def _ids(table: pa.Table, column: str = "id") -> list[int]:
    return [i for i in table.column(column).to_pylist() if i is not None]


# ---- resources -----------------------------------------------------------------------------


def snapshot_resource(
    client: SkyPrepClient, endpoint: Endpoint, report: RunReport, policy: RetirementPolicy
) -> DltResource:
    """A resource reading a whole list route each run (scd2 over a complete snapshot; a
    record missing from it is confirmed gone before it is retired)."""

    tables = ArrowPages(endpoint.schema)

    def read_snapshot() -> Iterator[Any]:
        key = key_of(*endpoint.primary_key)
        verify = snapshot_loaded_before()
        seen = SeenKeys(endpoint.primary_key)
        pages = client.pages(
            endpoint.route, endpoint.params, key, verify_stable=verify, page_format=tables
        )
        for item in snapshot_items(pages, endpoint, seen):
            report.count_item(endpoint.resource)
            yield item
        last = end_of_snapshot(client, endpoint, seen, report, policy, verify)
        report.count_item(endpoint.resource)
        report.finished.add(endpoint.resource)
        yield last

    return dlt.resource(
        isolated(
            endpoint.resource,
            read_snapshot,
            report,
            policy,
            endpoint=endpoint,
            empty_item=empty_item(endpoint),
        ),
        name=endpoint.resource,
        write_disposition=endpoint.write_disposition(WHOLE_TABLE),
        columns=_json_hints(endpoint),
    )


def course_progresses_resource(
    client: SkyPrepClient,
    courses: DltResource,
    mode: Literal["per_course", "account_wide"],
    course_ids: Sequence[int] | None,
    concurrency: int,
    report: RunReport | None = None,
    policy: RetirementPolicy | None = None,
) -> DltResource:
    """Course progresses: per course (fed by `courses`), account-wide, or for `course_ids`.

    Every scd2 version is one observed state of a progress: its status history. A progress
    missing from the snapshot is confirmed gone (`get_course_progress`) before it is retired.
    """
    endpoint = ENDPOINTS["course_progresses"]
    key = key_of(*endpoint.primary_key)
    tables = ArrowPages(endpoint.schema)
    report = report or RunReport()
    policy = policy or RetirementPolicy()

    def read_course(course_id: int, verify: bool) -> Iterator[pa.Table]:
        try:
            params = {"course_id": course_id}
            yield from client.pages(
                endpoint.route, params, key, verify_stable=verify, page_format=tables
            )
        except SkyPrepAPIError as error:
            if error.status != 404:
                raise
            # destroyed since `courses` listed it: its progresses are missing from the
            # snapshot, and each is confirmed gone (or the table held) before it is retired
            logger.warning("SkyPrep course %s vanished while its progresses were read", course_id)

    # decided once per run (the transformer runs per courses item)
    run: dict[str, Any] = {}

    def read_courses(ids: Iterable[int]) -> Iterator[Any]:
        if not run:  # here, not in workers: threads have no resource state
            run.update(verify=snapshot_loaded_before(), seen=SeenKeys(endpoint.primary_key))
            run["processed"] = 0
        verify = run["verify"]
        courses = (partial(read_course, course_id, verify) for course_id in ids)
        pages = read_ahead(courses, workers=max(READ_AHEAD_COURSES, concurrency))
        yield from snapshot_items(pages, endpoint, run["seen"])

    def finish(scope_sql: str | None = None) -> Iterator[Any]:
        yield end_of_snapshot(
            client, endpoint, run["seen"], report, policy, run["verify"], scope_sql
        )
        run.clear()  # a later extract of the same source starts afresh

    hints: Any = {"name": endpoint.resource, "columns": _json_hints(endpoint)}
    if course_ids is not None:
        wanted = sorted({int(c) for c in course_ids})
        # only these courses' rows may be retired: the other courses were not read
        scope = f"course_id IN ({', '.join(map(str, wanted))})" if wanted else "1 = 0"

        def read_listed() -> Iterator[Any]:
            yield from read_courses(wanted)
            yield from finish(scope)

        return dlt.resource(
            read_listed,
            write_disposition=endpoint.write_disposition(scope),
            **hints,
        )
    disposition = endpoint.write_disposition(WHOLE_TABLE)
    if mode == "account_wide":

        def read_account() -> Iterator[Any]:
            run["verify"] = verify = snapshot_loaded_before()
            run["seen"] = SeenKeys(endpoint.primary_key)
            pages = client.pages(
                endpoint.route, endpoint.params, key, verify_stable=verify, page_format=tables
            )
            yield from snapshot_items(pages, endpoint, run["seen"])
            yield from finish()

        return dlt.resource(read_account, write_disposition=disposition, **hints)
    if mode != "per_course":
        raise ValueError(f"course_progress_mode must be per_course or account_wide, not {mode!r}")

    def per_course(courses_page: pa.Table) -> Iterator[Any]:
        yield from read_courses(_ids(courses_page))
        run["processed"] += 1
        if report.parent_complete("courses", run["processed"]):  # every course was read
            yield from finish()

    return dlt.transformer(per_course, data_from=courses, write_disposition=disposition, **hints)


def user_group_members_resource(
    client: SkyPrepClient,
    user_groups: DltResource,
    report: RunReport | None = None,
    policy: RetirementPolicy | None = None,
) -> DltResource:
    """(user_group_id, user_id) pairs, from `get_user_group` for each group. A pair missing
    from the snapshot is confirmed by reading its group again before it is retired."""
    endpoint = ENDPOINTS["user_group_members"]
    report = report or RunReport()
    policy = policy or RetirementPolicy()
    run: dict[str, Any] = {}

    def member_rows(group_id: Any, group: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for user in group.get("users") or []:
            user_id = user.get("id") if isinstance(user, dict) else user
            if user_id is not None and str(user_id) not in seen:
                seen.add(str(user_id))
                rows.append({"user_group_id": group_id, "user_id": user_id})
        return rows

    def members(groups_page: pa.Table) -> Iterator[Any]:
        if not run:
            run.update(verify=snapshot_loaded_before(), seen=SeenKeys(endpoint.primary_key))
            run["processed"] = 0
        rows: list[dict[str, Any]] = []
        for group_id in _ids(groups_page):
            group = client.call_record(endpoint.route, {"user_group_id": group_id})
            rows += member_rows(group_id, group)
        table = page_table(rows, endpoint)  # even empty: members that left are retired
        run["seen"].add(table)
        yield as_item(table, endpoint)
        run["processed"] += 1
        if report.parent_complete("user_groups", run["processed"]):
            yield confirm_members()
            run.clear()

    def confirm_members() -> Any:
        """Missing pairs: their group read once more; a pair retires when the group is gone
        (not found) or no longer lists the user."""
        rows: list[dict[str, Any]] = []
        if run["verify"]:
            found = find_candidates(endpoint.resource, run["seen"], policy.max_confirm_calls + 1)
            groups = sorted({pair[0] for pair in found.keys})
            too_many = found.missing > policy.max_confirm_calls
            if not too_many and found.missing > policy.floor:
                too_many = found.missing > policy.max_share * found.current
            if too_many:
                hold_retirement(endpoint)
                report.hold(
                    HeldRetirement(
                        endpoint.resource,
                        found.missing,
                        found.current,
                        f"more than retire_max_share={policy.max_share:g} and "
                        f"retire_floor={policy.floor}, or max_confirm_calls="
                        f"{policy.max_confirm_calls}",
                    )
                )
            else:
                missing = {(str(g), str(u)) for g, u in found.keys}
                for group_id in groups:
                    try:
                        group = client.call_record(endpoint.route, {"user_group_id": group_id})
                    except SkyPrepNotFound:
                        continue
                    rows += [
                        row
                        for row in member_rows(group_id, group)
                        if (str(row["user_group_id"]), str(row["user_id"])) in missing
                    ]
        return page_to_table(rows, endpoint)

    return dlt.transformer(
        isolated(
            endpoint.resource,
            members,
            report,
            policy,
            endpoint=endpoint,
            parent="user_groups",
            empty_item=empty_item(endpoint),
        ),
        data_from=user_groups,
        name=endpoint.resource,
        write_disposition=endpoint.write_disposition(WHOLE_TABLE),
    )


def payments_window_days(
    last_created_at: str | None,
    lookback_days: int,
    now: datetime | None = None,
    *,
    last_full_read_at: str | None = None,
    full_read_days: int | None = None,
) -> int | None:
    """`created_after_days_ago` for this run: days since the newest payment already loaded,
    plus the lookback; None (everything) on the first run, and when the last full read is
    `full_read_days` old (or was never made): a status change on a payment older than the
    window, such as a late refund, is seen then."""
    if not last_created_at:
        return None
    now = now or datetime.now(timezone.utc)
    if full_read_days is not None and (
        not last_full_read_at
        or now - datetime.fromisoformat(last_full_read_at) >= timedelta(days=full_read_days)
    ):
        return None
    newest = datetime.fromisoformat(last_created_at)
    now = max(now, newest)
    return math.ceil((now - newest).total_seconds() / DAY_SECONDS) + max(lookback_days, 0)


def payments_resource(
    client: SkyPrepClient,
    lookback_days: int,
    full_read_days: int | None,
    report: RunReport | None = None,
    policy: RetirementPolicy | None = None,
) -> DltResource:
    """Payments in a server-side window since the last run (plus a lookback), and all of them
    every `full_read_days`; scd2 that never retires a payment merely outside the window
    (merge_key `id`: only re-read ids version)."""
    endpoint = ENDPOINTS["payments"]
    key = key_of(*endpoint.primary_key)
    tables = ArrowPages(endpoint.schema)

    def read_payments() -> Iterator[Any]:
        state = dlt.current.resource_state()
        last_created_at: str | None = state.get("last_created_at")
        params = dict(endpoint.params)
        started = datetime.now(timezone.utc)
        days = payments_window_days(
            last_created_at,
            lookback_days,
            started,
            last_full_read_at=state.get("last_full_read_at"),
            full_read_days=full_read_days,
        )
        if days is not None:
            params["created_after_days_ago"] = days
        newest = datetime.fromisoformat(last_created_at) if last_created_at else None
        pages = client.pages(endpoint.route, params, key, page_format=tables)
        batches = batched_tables(pages)
        hashed = (add_row_hash(apply_pii(rows_with_keys(b, endpoint)), ROW_HASH) for b in batches)
        for table in prefetched(hashed):
            page_newest = pc.max(table.column("created_at")).as_py()
            if page_newest is not None and (newest is None or page_newest > newest):
                newest = page_newest
            yield as_item(table, endpoint)
        if newest is not None:
            state["last_created_at"] = newest.isoformat()
        if days is None:  # saved with the load: a run that fails reads in full again
            state["last_full_read_at"] = started.isoformat()

    return dlt.resource(
        isolated(
            endpoint.resource, read_payments, report or RunReport(), policy or RetirementPolicy()
        ),
        name=endpoint.resource,
        write_disposition=endpoint.write_disposition(),
        merge_key="id",
        columns=_json_hints(endpoint),
    )


def saved_report_downloads_resource(
    client: SkyPrepClient,
    saved_advanced_reports: DltResource,
    report: RunReport | None = None,
    policy: RetirementPolicy | None = None,
) -> DltResource:
    """One `saved_report__<name>` table per saved report (resource state, committed with the
    load, remembers what each table holds):

    - a stored report (`saved_report_with_data`) is downloaded when its `updated_at` or its
      `report_params_digest` changed since the last download;
    - a live report (`saved_report`, rendered at download time, or no type given) is
      downloaded on every run, and its table replaced when the CSV's content digest changed.
    """

    def downloads(reports_page: pa.Table) -> Iterator[Any]:
        resource_state = dlt.current.resource_state()
        stored: dict[str, str] = resource_state.setdefault("updated_at", {})
        live: dict[str, str] = resource_state.setdefault("content_digest", {})
        names_taken: set[str] = set()
        for report in reports_page.to_pylist():
            report_id = report["id"]
            table_name = report_table_name(report["name"] or str(report_id))
            if table_name in names_taken:  # two reports with one name: keep both
                table_name = f"{table_name}_{report_id}"
            names_taken.add(table_name)
            version = stored_report_version(report) if is_stored_report(report) else ""
            if version and stored.get(str(report_id)) == version:
                continue
            csv_text = client.call_text(
                "get_saved_advanced_report",
                {"saved_advanced_report_id": report_id, "format": "csv"},
            )
            if not version:
                digest = content_digest(csv_text)
                if live.get(str(report_id)) == digest:
                    continue  # the same rows as the table holds: nothing to rewrite
                live[str(report_id)] = digest
            hints = dlt.mark.make_hints(table_name=table_name, write_disposition="replace")
            table = apply_pii(csv_to_table(csv_text), report=True)
            yield dlt.mark.with_hints(table, hints, create_table_variant=True)
            if version:
                stored[str(report_id)] = version

    return dlt.transformer(
        isolated(
            "saved_reports",
            downloads,
            report or RunReport(),
            policy or RetirementPolicy(),
            parent="saved_advanced_reports",
        ),
        data_from=saved_advanced_reports,
        name="saved_reports",
        # each item replaces its own table; a resource-level "replace" would also make dlt
        # reset this resource's state (the downloaded versions) on every run
        write_disposition="append",
    )


# ---- batching and fan-out ------------------------------------------------------------------


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


_DONE = object()


def _put(ready: queue.Queue[Any], item: Any, stop: threading.Event) -> bool:
    """Put `item` into `ready`, unless the consumer goes away first (then False)."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _produce(items: Iterable[Any], ready: queue.Queue[Any], stop: threading.Event) -> None:
    """Put `items` into `ready`, then `_DONE` (or the error that ended them); give up as soon
    as `stop` is set (the consumer went away)."""
    try:
        for item in items:
            if not _put(ready, item, stop):
                return
        outcome: Any = _DONE
    except BaseException as error:  # handed to the consumer, raised there
        outcome = error
    _put(ready, outcome, stop)


def _drain(ready: queue.Queue[Any]) -> Iterator[Any]:
    while True:
        item = ready.get()
        if item is _DONE:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def prefetched(items: Iterable[T], depth: int = 1) -> Generator[T, None, None]:
    """`items`, produced on a background thread up to `depth` items ahead of the consumer.

    The next pages are fetched and parsed while this batch is written by dlt: the wait for
    the server overlaps our own work. Still one call in flight at a time (the client's
    semaphore); the consumer keeps everything that touches dlt state.
    """
    return read_ahead([lambda: items], workers=1, depth=depth)


def read_ahead(
    sources: Iterable[Callable[[], Iterable[T]]], workers: int, depth: int = 2
) -> Generator[T, None, None]:
    """The items of each source, source after source in order, with up to `workers` sources
    produced at once on background threads, each up to `depth` items ahead of the consumer.

    Course progresses are read course after course this way: while one course's pages are
    parsed (Arrow's JSON reader runs outside the GIL), the next course's are being fetched,
    so the wait for the server and the parsing overlap. Calls in flight stay bounded by the
    client (its `concurrency`). Memory: at most `workers * (depth + 1)` items (pages, not
    courses: a course with 100,000 learners streams like any other).
    """
    stop = threading.Event()
    pending = iter(sources)
    active: deque[tuple[queue.Queue[Any], threading.Thread]] = deque()

    def start_next() -> None:
        source = next(pending, None)
        if source is None:
            return
        ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
        worker = threading.Thread(
            target=lambda: _produce(source(), ready, stop), name="skyprep-ahead", daemon=True
        )
        worker.start()
        active.append((ready, worker))

    try:
        for _ in range(workers):
            start_next()
        while active:
            ready, _worker = active[0]
            yield from _drain(ready)
            active.popleft()
            start_next()
    finally:
        stop.set()
        for _ready, worker in active:
            worker.join(timeout=5)
