"""Report CSVs as SkyPrep renders them, with every quirk in API-NOTES.

A UTF-8 BOM, `\\r\\n` line ends, quoted fields with embedded newlines and `""`,
HTML-escaped text (`&amp;`, `&#39;`, `&quot;`), `Month D, YYYY at h:mm AM` dates, capitalised
statuses (`Passed`, `In-progress`, `Not-enrolled`…), `'-` for empty values, custom user
fields as plainly named columns, and a repeated user+course row (a repeat attempt).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from skyprep_sandbox.formats import html_text, parse_any, report_datetime, ts_iso_offset

BOM = "\ufeff"
EMPTY = "'-"
#: Custom user attributes appear in reports under their display names.
CUSTOM_COLUMNS = (("ca_0", "Department"), ("ca_1", "Location"), ("ca_2", "Employee Number"))
MATRIX_COURSES = 8


@dataclass(frozen=True)
class SavedReportDefinition:
    """A report saved in the Advanced Reporting section of the account."""

    name: str
    kind: str  # "progress_rows" | "compliance_matrix" | "overdue"
    saved_report_type: str  # "saved_report_with_data" (stored CSV) | "saved_report" (live)
    regenerate_every_days: int


SAVED_REPORTS = (
    SavedReportDefinition(
        "All Course Progresses Report", "progress_rows", "saved_report_with_data", 1
    ),
    SavedReportDefinition("Compliance Matrix", "compliance_matrix", "saved_report_with_data", 7),
    SavedReportDefinition("Overdue Learners", "overdue", "saved_report", 0),
)


def status_label(status: str) -> str:
    """`in-progress` -> `In-progress`, as report cells print statuses."""
    return status[:1].upper() + status[1:]


def text(value: Any) -> str:
    """A report cell: HTML-escaped text, `'-` when empty."""
    if value is None or value == "":
        return EMPTY
    return html_text(str(value))


def when(value: Any) -> str:
    """A report date cell from an API timestamp string."""
    return report_datetime(parse_any(value))


def to_csv(header: list[str], rows: Iterable[list[str]]) -> bytes:
    """CSV bytes with a BOM and \\r\\n, quoting only where needed (as SkyPrep does)."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _user_cells(user: dict[str, Any] | None) -> list[str]:
    if user is None:
        return [EMPTY] * (3 + len(CUSTOM_COLUMNS))
    cells = [text(user["first_name"]), text(user["last_name"]), text(user["email"])]
    cells += [text(user.get(field)) for field, _label in CUSTOM_COLUMNS]
    return cells


PROGRESS_HEADER = [
    "User ID",
    "First Name",
    "Last Name",
    "Email",
    *(label for _f, label in CUSTOM_COLUMNS),
    "Title",
    "Address",
    "Course ID",
    "Course",
    "Course Description",
    "Status",
    "Percent Viewed",
    "Enrolled At",
    "Started At",
    "Completed At",
    "Deadline",
    "Expires At",
]


def _progress_row(world: Any, progress: dict[str, Any], user: dict[str, Any] | None) -> list[str]:
    course = world.courses.get(progress["course_id"]) or {}
    return [
        str(progress["user_id"]),
        *_user_cells(user),
        text(user.get("title") if user else None),
        text(user.get("address") if user else None),
        str(progress["course_id"]),
        text(progress["course_name"]),
        course.get("description") or EMPTY,  # rich text: exported raw, so quotes double
        status_label(progress["status"]),
        f"{progress['percent_viewed']}%",
        when(progress["created_at"]),
        when(progress["commencement_date"]),
        when(progress["completion_date"]),
        when(progress["deadline_date"]),
        when(progress["expiration_date"]),
    ]


def progress_rows_csv(world: Any, progress_ids: Iterable[int], limit: int) -> bytes:
    """One row per course progress; the first passed one also shows its earlier failed
    attempt, so one user+course appears twice (as repeat attempts do in SkyPrep)."""
    rows: list[list[str]] = []
    users: dict[int, dict[str, Any] | None] = {}
    repeated = False
    for pid in progress_ids:
        if len(rows) >= limit:
            break
        progress = world.progresses.get(pid)
        if progress is None:
            continue
        uid = progress["user_id"]
        if uid not in users:
            users[uid] = world.users.get(uid)
        row = _progress_row(world, progress, users[uid])
        if not repeated and progress["status"] == "passed":
            earlier = list(row)
            earlier[PROGRESS_HEADER.index("Status")] = "Failed"
            earlier[PROGRESS_HEADER.index("Percent Viewed")] = "60%"
            rows.append(earlier)
            repeated = True
        rows.append(row)
    return to_csv(PROGRESS_HEADER, rows)


def compliance_matrix_csv(world: Any, limit: int) -> bytes:
    """One row per user, one status column per course (`Not-enrolled` where none)."""
    course_ids = world.courses.ids()[:MATRIX_COURSES]
    header = [
        "User ID",
        "First Name",
        "Last Name",
        "Email",
        *(label for _f, label in CUSTOM_COLUMNS),
        *(html_text(world.courses.meta[cid][0]) for cid in course_ids),
    ]
    rows = []
    for uid in world.users.ids()[:limit]:
        statuses: dict[int, str] = {}
        for pid in world.progresses_by_user.get(uid, {}):
            cid, _uid, status, _expires = world.progresses.meta[pid]
            statuses[cid] = status
        cells = [str(uid), *_user_cells(world.users.get(uid))]
        cells += [status_label(statuses.get(cid, "not-enrolled")) for cid in course_ids]
        rows.append(cells)
    return to_csv(header, rows)


def overdue_csv(world: Any, limit: int) -> bytes:
    """Learners past a deadline on a course they have not passed."""
    header = ["User", "Email", "Course", "Deadline", "Days Overdue", "Status"]
    rows = []
    now = world.now_ts
    for pid, (_cid, uid, status, _expires) in world.progresses.meta.items():
        if status in ("passed", "not-applicable"):
            continue
        progress = world.progresses.get(pid)
        deadline = parse_any(progress["deadline_date"])
        if deadline is None or deadline >= now:
            continue
        user = world.users.get(uid) or {}
        rows.append(
            [
                text(f"{user.get('first_name', '')} {user.get('last_name', '')}".strip()),
                text(user.get("email")),
                text(progress["course_name"]),
                report_datetime(deadline),
                str((now - deadline) // 86_400),
                status_label(status),
            ]
        )
        if len(rows) >= limit:
            break
    return to_csv(header, rows)


def report_limit(world: Any) -> int:
    """How many rows a report renders in this world."""
    return world.scale.report_rows if world.scale is not None else 100_000


def render_saved_report(world: Any, kind: str) -> bytes:
    """Render a saved report of a kind from the world as it is now."""
    limit = report_limit(world)
    if kind == "progress_rows":
        return progress_rows_csv(world, world.progresses.ids(), limit)
    if kind == "compliance_matrix":
        return compliance_matrix_csv(world, limit)
    if kind == "overdue":
        return overdue_csv(world, limit)
    raise ValueError(f"unknown report kind {kind!r}")


def regenerate_saved_report(
    world: Any,
    rid: int,
    definition: SavedReportDefinition,
    *,
    at: int,
    created_at: int | None = None,
) -> None:
    """(Re)write a saved report's list record, and its CSV when it stores data."""
    existing = world.saved_reports.get(rid)
    created = created_at if created_at is not None else existing["created_at_int"]
    base = "https://sandbox.skyprepapp.com/admin/advanced_reports/download/"
    record = {
        "created_at": ts_iso_offset(created),
        "created_at_int": created,
        "updated_at": ts_iso_offset(at),
        "updated_at_int": at,
        "id": rid,
        "saved_advanced_report_id": rid,
        "model_type": "saved_advanced_report",
        "xlsx_url": f"{base}?file_format=xlsx&saved_advanced_report_id={rid}",
        "csv_url": f"{base}?file_format=csv&saved_advanced_report_id={rid}",
        "report_params_digest": hashlib.sha256(f"{definition.kind}:{rid}".encode()).hexdigest(),
        "saved_report_type": definition.saved_report_type,
        "name": definition.name,
    }
    world.saved_reports.put(rid, record, definition)
    if definition.saved_report_type == "saved_report_with_data":
        world.saved_report_csv[rid] = render_saved_report(world, definition.kind)
    world.changed()


def saved_report_csv(world: Any, rid: int) -> bytes | None:
    """A saved report's CSV: the stored one, or rendered now for live (`saved_report`) ones."""
    definition = world.saved_reports.meta.get(rid)
    if definition is None:
        return None
    stored = world.saved_report_csv.get(rid)
    if stored is not None:
        return stored
    return render_saved_report(world, definition.kind)


ASYNC_REPORT_TYPES = (
    "all_users",
    "all_courses",
    "single_user",
    "single_course",
    "single_user_single_course",
    "single_group_all_users",
    "single_group_all_courses",
)

USER_HEADER = [
    "User ID",
    "First Name",
    "Last Name",
    "Email",
    *(label for _f, label in CUSTOM_COLUMNS),
    "Role",
    "Status",
    "Created At",
    "Last Login",
]
COURSE_HEADER = ["Course ID", "Course", "Active", "Enrolled", "Passed", "Created At"]


def _user_rows(world: Any, user_ids: Iterable[int]) -> list[list[str]]:
    rows = []
    for uid in user_ids:
        user = world.users.get(uid)
        if user is None:
            continue
        rows.append(
            [
                str(uid),
                *_user_cells(user),
                status_label(user["role"]),
                status_label(user["status"]),
                report_datetime(parse_any(user["created_at"])),
                when(user["last_login_at"]),
            ]
        )
    return rows


def _course_rows(world: Any, course_ids: Iterable[int]) -> list[list[str]]:
    rows = []
    for cid in course_ids:
        course = world.courses.get(cid)
        if course is None:
            continue
        progress_ids = world.progresses_by_course.get(cid, {})
        passed = sum(1 for pid in progress_ids if world.progresses.meta[pid][2] == "passed")
        rows.append(
            [
                str(cid),
                text(course["name"]),
                "Yes" if world.courses.meta[cid][1] else "No",
                str(len(progress_ids)),
                str(passed),
                when(course["created_at"]),
            ]
        )
    return rows


def render_async_report(world: Any, report_type: str, params: dict[str, str]) -> bytes:
    """The CSV of a `generate_async_report` request (raises ValueError/LookupError when
    the type or its parameters are wrong: the job then fails)."""
    limit = report_limit(world)
    if report_type == "all_users":
        return to_csv(USER_HEADER, _user_rows(world, world.users.ids()[:limit]))
    if report_type == "all_courses":
        return to_csv(COURSE_HEADER, _course_rows(world, world.courses.ids()))
    if report_type == "single_user":
        uid = world.user_id_for(params.get("user_id"), params.get("user_email"))
        return progress_rows_csv(world, world.progresses_by_user.get(uid, {}), limit)
    if report_type == "single_course":
        cid = world.course_id_for(params.get("course_id"))
        return progress_rows_csv(world, world.progresses_by_course.get(cid, {}), limit)
    if report_type == "single_user_single_course":
        uid = world.user_id_for(params.get("user_id"), params.get("user_email"))
        cid = world.course_id_for(params.get("course_id"))
        pid = world.progress_for(uid, cid)
        return progress_rows_csv(world, [] if pid is None else [pid], limit)
    if report_type in ("single_group_all_users", "single_group_all_courses"):
        gid = int(params.get("user_group_id") or 0)
        group = world.user_groups.get(gid)
        if group is None:
            raise LookupError("user group not found")
        if report_type == "single_group_all_users":
            return to_csv(USER_HEADER, _user_rows(world, world.group_members.get(gid, {})))
        return to_csv(COURSE_HEADER, _course_rows(world, group["course_ids"]))
    raise ValueError(f"unsupported report_type {report_type!r}")
