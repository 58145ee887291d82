"""The core resources: complete snapshots of the list routes, course progresses, group
members, payments in a window, and saved report downloads.

A snapshot is read in full each run and kept as scd2 (`WHOLE_TABLE` scope): a record missing
from it is confirmed gone by its own route before it is retired (`retirement.py`). Any failed
call raises, so a run that could not read everything loads nothing (and retires nothing).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any, Literal

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.extract.resource import DltResource

from skyprep_source.arrow_items import (
    as_item,
    batched_tables,
    empty_item,
    hashed_batches,
    json_hints,
    page_table,
    page_to_table,
    record_ids,
    rows_with_keys,
)
from skyprep_source.arrow_pages import ArrowPages
from skyprep_source.catalogue import ROW_HASH, TABLES, WHOLE_TABLE, TableSpec
from skyprep_source.client import SkyPrepClient, key_of
from skyprep_source.errors import SkyPrepNotFound, unless_vanished
from skyprep_source.pii import apply_pii
from skyprep_source.read_ahead import prefetched, read_ahead
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
    remember_confirm_calls,
    snapshot_loaded_before,
)
from skyprep_source.row_hash import add_row_hash
from skyprep_source.scopes import ids_in

logger = logging.getLogger("skyprep_source")

DAY_SECONDS = 86_400
# courses whose progresses are read at once (one parsed while the next is fetched; the calls
# in flight stay the client's `concurrency`)
READ_AHEAD_COURSES = 2


def snapshot_items(
    pages: Iterable[pa.Table], endpoint: TableSpec, seen: SeenKeys | None = None
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
    endpoint: TableSpec,
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


# ---- resources -----------------------------------------------------------------------------


def snapshot_resource(
    client: SkyPrepClient, endpoint: TableSpec, report: RunReport, policy: RetirementPolicy
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
            report.count_item(endpoint.name)
            yield item
        last = end_of_snapshot(client, endpoint, seen, report, policy, verify)
        report.count_item(endpoint.name)
        report.finished.add(endpoint.name)
        yield last

    return dlt.resource(
        isolated(
            endpoint.name,
            read_snapshot,
            report,
            policy,
            endpoint=endpoint,
            empty_item=empty_item(endpoint),
        ),
        name=endpoint.name,
        write_disposition=endpoint.write_disposition(WHOLE_TABLE),
        columns=json_hints(endpoint),
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
    endpoint = TABLES["course_progresses"]
    key = key_of(*endpoint.primary_key)
    tables = ArrowPages(endpoint.schema)
    report = report or RunReport()
    policy = policy or RetirementPolicy()

    def read_course(course_id: int, verify: bool) -> Iterator[pa.Table]:
        # destroyed since `courses` listed it: its progresses are missing from the snapshot,
        # and each is confirmed gone (or the table held) before it is retired
        with unless_vanished(f"course {course_id} (its progresses)"):
            params = {"course_id": course_id}
            yield from client.pages(
                endpoint.route, params, key, verify_stable=verify, page_format=tables
            )

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

    hints: Any = {"name": endpoint.name, "columns": json_hints(endpoint)}
    if course_ids is not None:
        wanted = sorted({int(c) for c in course_ids})
        # only these courses' rows may be retired: the other courses were not read
        scope = ids_in("course_id", wanted)

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
        yield from read_courses(record_ids(courses_page))
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
    endpoint = TABLES["user_group_members"]
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
        for group_id in record_ids(groups_page):
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
            found = find_candidates(endpoint.name, run["seen"], policy.max_confirm_calls + 1)
            groups = sorted({pair[0] for pair in found.keys})
            too_many = found.missing > policy.max_confirm_calls
            if not too_many and found.missing > policy.floor:
                too_many = found.missing > policy.max_share * found.current
            if too_many:
                hold_retirement(endpoint)
                report.hold(
                    HeldRetirement(
                        endpoint.name,
                        found.missing,
                        found.current,
                        f"more than retire_max_share={policy.max_share:g} and "
                        f"retire_floor={policy.floor}, or max_confirm_calls="
                        f"{policy.max_confirm_calls}",
                    )
                )
                groups = []  # held: no group is read again, nothing retires
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
            remember_confirm_calls(report, endpoint.name, len(groups))
        return page_to_table(rows, endpoint)

    return dlt.transformer(
        isolated(
            endpoint.name,
            members,
            report,
            policy,
            endpoint=endpoint,
            parent="user_groups",
            empty_item=empty_item(endpoint),
        ),
        data_from=user_groups,
        name=endpoint.name,
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
    endpoint = TABLES["payments"]
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
        isolated(endpoint.name, read_payments, report or RunReport(), policy or RetirementPolicy()),
        name=endpoint.name,
        write_disposition=endpoint.write_disposition(),
        merge_key="id",
        columns=json_hints(endpoint),
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
