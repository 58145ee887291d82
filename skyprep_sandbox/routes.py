"""Every route of the reference: what it answers, given the world and the request's params.

Each handler is named after its route and answers the reference's sample shape for it.
A handler returns an `Answer` (a finished body) or a `ListAnswer` (a bare JSON array as
pre-serialised items, which the server pages). Handlers never see the transport: auth,
rate limits, faults and paging live in server.py. Params arrive as strings (form, query
or JSON body alike).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from skyprep_sandbox.errors import RecordNotFound
from skyprep_sandbox.formats import DAY, date_en, parse_any
from skyprep_sandbox.records import PROGRESS_STATUSES
from skyprep_sandbox.reports import ASYNC_REPORT_TYPES, saved_report_csv

if TYPE_CHECKING:
    from skyprep_sandbox.world import World

SUCCESS = b'{"message":"success"}'


@dataclass
class Answer:
    """A complete response body."""

    body: bytes
    content_type: str = "application/json; charset=utf-8"
    status: int = 200


@dataclass
class ListAnswer:
    """A bare JSON array, one pre-serialised item per element; the server pages it."""

    items: list[bytes]


class RouteError(Exception):
    """A request the API refuses: answered as `{"error": message}` with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class RouteContext:
    """What handlers need from the server: its switches and its own address."""

    account_wide_progresses: bool = True
    root_url: str = "http://127.0.0.1"
    async_report_mode: str = "complete"  # "complete" | "never" | "fail"
    async_report_pending_polls: int = 1


Handler = Callable[["World", dict[str, str], RouteContext], "Answer | ListAnswer"]
ROUTES: dict[str, Handler] = {}
#: Routes that change the world (the source must never call them).
MUTATING: set[str] = set()


def route(name: str, *, mutating: bool = False) -> Callable[[Handler], Handler]:
    """Register a handler under its route name."""

    def register(handler: Handler) -> Handler:
        ROUTES[name] = handler
        if mutating:
            MUTATING.add(name)
        return handler

    return register


# Routes that list a whole table of the world, with no parameters of their own.
WHOLE_TABLE_ROUTES: dict[str, str] = {
    "get_users": "users",
    "get_courses": "courses",
    "get_skills": "skills",
    "get_competencies": "competencies",
    "get_user_groups": "user_groups",
    "get_learning_paths": "learning_paths",
    "get_instructor_led_trainings": "ilts",
    "get_materials": "materials",
    "get_user_roles": "user_roles",
    "get_datasets": "datasets",
}


def _whole_table(table: str) -> Handler:
    def handler(world: World, params: dict[str, str], ctx: RouteContext) -> ListAnswer:
        return ListAnswer(getattr(world, table).serialized())

    return handler


for _route_name, _table in WHOLE_TABLE_ROUTES.items():
    route(_route_name)(_whole_table(_table))


def json_answer(value: Any) -> Answer:
    """A JSON answer of any value."""
    return Answer(orjson.dumps(value))


def required(params: dict[str, str], name: str) -> str:
    """A parameter that must be present (400 otherwise)."""
    value = params.get(name, "").strip()
    if not value:
        raise RouteError(400, f"{name} is required")
    return value


def int_param(params: dict[str, str], name: str) -> int | None:
    """An optional integer parameter (400 when not an integer)."""
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise RouteError(400, f"{name} must be an integer") from None


def id_list(value: str | None) -> list[int]:
    """`"84,96, 101"` or `"[84, 96]"` as ints."""
    if not value:
        return []
    return [int(part) for part in value.strip("[] ").replace(" ", "").split(",") if part]


def comma_set(value: str | None) -> set[str] | None:
    """`"passed, failed"` as a lower-case set; None when absent."""
    if not value or not value.strip():
        return None
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def user_from(world: World, params: dict[str, str]) -> int:
    """The user a call names by `user_id`, `user_email` or `email`."""
    return world.user_id_for(
        params.get("user_id") or None, params.get("user_email") or params.get("email")
    )


def splice(record: bytes, name: str, value: bytes) -> bytes:
    """Add a field to a serialised JSON object without decoding it."""
    return record[:-1] + b',"' + name.encode() + b'":' + value + b"}"


# --------------------------------------------------------------------- reads: lists
def list_route_items(
    world: World, route_name: str, params: dict[str, str], ctx: RouteContext | None = None
) -> list[bytes]:
    """The items a list route answers (all of them: paging is the server's job)."""
    answer = ROUTES[route_name](world, params, ctx or RouteContext())
    if not isinstance(answer, ListAnswer):
        raise ValueError(f"{route_name} is not a list route")
    return answer.items


@route("test_connection")
def test_connection(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return Answer(SUCCESS)


@route("get_course_progresses")
def get_course_progresses(world: World, params: dict[str, str], ctx: RouteContext) -> ListAnswer:
    """Progresses of one course, or account-wide (a switch), filtered by `status` and `user_status`."""
    course_id = int_param(params, "course_id")
    statuses = comma_set(params.get("status"))
    user_statuses = comma_set(params.get("user_status"))
    if statuses and not statuses <= set(PROGRESS_STATUSES):
        raise RouteError(400, f"status must be among {', '.join(PROGRESS_STATUSES)}")
    if course_id is None:
        if not ctx.account_wide_progresses:
            raise RouteError(400, "course_id is required")
        if statuses is None and user_statuses is None:
            return ListAnswer(world.progresses.serialized())
        ids: Any = world.progresses.meta.keys()
    else:
        if course_id not in world.courses:
            raise RouteError(404, "course not found")
        ids = world.progresses_by_course.get(course_id, {})
    rows, meta, user_meta = world.progresses.rows, world.progresses.meta, world.users.meta
    if statuses is None and user_statuses is None:
        return ListAnswer([rows[pid] for pid in ids])  # unfiltered: no per-record checks
    items = []
    for pid in ids:
        _cid, uid, status, _expires = meta[pid]
        if statuses is not None and status not in statuses:
            continue
        if user_statuses is not None:
            user = user_meta.get(uid)
            if user is None or user[0] not in user_statuses:
                continue
        items.append(rows[pid])
    return ListAnswer(items)


@route("get_payments")
def get_payments(world: World, params: dict[str, str], ctx: RouteContext) -> ListAnswer:
    """Payments newest first, filtered by `status`, `payment_type`, `created_after_days_ago`."""
    statuses = comma_set(params.get("status"))
    types = comma_set(params.get("payment_type"))
    days = params.get("created_after_days_ago", "").strip()
    since = None
    if days:
        try:
            since = world.now_ts - int(float(days) * DAY)
        except ValueError:
            raise RouteError(400, "created_after_days_ago must be a number") from None
    if statuses is None and types is None and since is None:
        return ListAnswer(world.payments.serialized())
    items = []
    for pid, raw in world.payments.rows.items():
        status, ptype, created = world.payments.meta[pid]
        if since is not None and created < since:
            break  # newest first: everything after is older
        if statuses is not None and status not in statuses:
            continue
        if types is not None and ptype not in types:
            continue
        items.append(raw)
    return ListAnswer(items)


@route("get_instructor_led_training_timeslots")
def get_instructor_led_training_timeslots(
    world: World, params: dict[str, str], ctx: RouteContext
) -> ListAnswer:
    start = _date_param(params, "start_date")
    end = _date_param(params, "end_date")
    ilt_id = int_param(params, "instructor_led_training_id")
    items = []
    for tid, raw in world.timeslots.rows.items():
        owner, begins = world.timeslots.meta[tid]
        if ilt_id is not None and owner != ilt_id:
            continue
        if start is not None and begins < start:
            continue
        if end is not None and begins >= end + DAY:  # end_date is inclusive (a whole day)
            continue
        items.append(raw)
    return ListAnswer(items)


@route("get_instructor_led_training_timeslot_registrations")
def get_timeslot_registrations(
    world: World, params: dict[str, str], ctx: RouteContext
) -> ListAnswer:
    timeslot_id = int_param(params, "instructor_led_training_timeslot_id")
    if timeslot_id is None:
        return ListAnswer(world.registrations.serialized())
    if timeslot_id not in world.timeslots:
        raise RouteError(404, "instructor led training timeslot not found")
    return ListAnswer(
        [
            raw
            for rid, raw in world.registrations.rows.items()
            if world.registrations.meta[rid] == timeslot_id
        ]
    )


@route("get_power_users")
def get_power_users(world: World, params: dict[str, str], ctx: RouteContext) -> ListAnswer:
    """Users with a role and datasets, as `role: power_user` with `permissions`."""
    items = []
    roles = {rid: world.user_roles.get(rid) for rid in world.user_roles.ids()}
    for uid, permissions in world.power_users.items():
        user = world.users.get(uid)
        if user is None:
            continue
        role = roles.get(permissions["user_role_id"]) or {}
        user["role"] = "power_user"
        user["permissions"] = {
            "user_role_id": permissions["user_role_id"],
            "user_role_name": role.get("name"),
            "dataset_ids": permissions["dataset_ids"],
        }
        items.append(orjson.dumps(user))
    return ListAnswer(items)


@route("get_saved_advanced_reports")
def get_saved_advanced_reports(
    world: World, params: dict[str, str], ctx: RouteContext
) -> ListAnswer:
    start = _date_param(params, "start_date")
    end = _date_param(params, "end_date")
    items = []
    for _rid, raw in world.saved_reports.rows.items():
        updated = orjson.loads(raw)["updated_at_int"]
        if start is not None and updated < start:
            continue
        if end is not None and updated >= end + DAY:
            continue
        items.append(raw)
    return ListAnswer(items)


@route("get_user_courses")
def get_user_courses(world: World, params: dict[str, str], ctx: RouteContext) -> ListAnswer:
    """The courses a user is enrolled in."""
    uid = user_from(world, params)
    course_ids = dict.fromkeys(
        world.progresses.meta[pid][0] for pid in world.progresses_by_user.get(uid, {})
    )
    return ListAnswer([world.courses.rows[cid] for cid in course_ids if cid in world.courses])


@route("get_user_group_enrollments_for_user")
def get_user_group_enrollments_for_user(
    world: World, params: dict[str, str], ctx: RouteContext
) -> ListAnswer:
    uid = user_from(world, params)
    return ListAnswer(
        [
            world.user_groups.rows[gid]
            for gid, members in world.group_members.items()
            if uid in members
        ]
    )


def _date_param(params: dict[str, str], name: str) -> int | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    try:
        return parse_any(value)
    except ValueError:
        raise RouteError(400, f"{name} must be a date (YYYY-MM-DD)") from None


# --------------------------------------------------------------------- reads: one record
def _one(table: Any, record_id: int | None, what: str) -> Answer:
    if record_id is None or record_id not in table:
        raise RouteError(404, f"{what} not found")
    return Answer(table.rows[record_id])


@route("get_user")
def get_user(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return Answer(world.users.rows[user_from(world, params)])


@route("get_course")
def get_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return _one(world.courses, int_param(params, "course_id"), "course")


@route("get_course_progress")
def get_course_progress(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return _one(world.progresses, int_param(params, "course_progress_id"), "course progress")


@route("get_user_course_status")
def get_user_course_status(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """`{"status": ...}` of a user in a course (`not-enrolled` without a progress)."""
    uid = user_from(world, params)
    cid = world.course_id_for(required(params, "course_id"))
    pid = world.progress_for(uid, cid)
    status = world.progresses.meta[pid][2] if pid is not None else "not-enrolled"
    return json_answer({"status": status})


@route("get_user_group")
def get_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A group's record with its members' user records under `users`."""
    gid = int_param(params, "user_group_id")
    if gid is None or gid not in world.user_groups:
        raise RouteError(404, "user group not found")
    members = [
        world.users.rows[uid] for uid in world.group_members.get(gid, {}) if uid in world.users
    ]
    return Answer(splice(world.user_groups.rows[gid], "users", b"[" + b",".join(members) + b"]"))


@route("get_learning_path")
def get_learning_path(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return _one(world.learning_paths, int_param(params, "learning_path_id"), "learning path")


@route("get_instructor_led_training")
def get_instructor_led_training(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return _one(
        world.ilts, int_param(params, "instructor_led_training_id"), "instructor led training"
    )


@route("get_instructor_led_training_timeslot")
def get_instructor_led_training_timeslot(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    return _one(
        world.timeslots,
        int_param(params, "instructor_led_training_timeslot_id"),
        "instructor led training timeslot",
    )


@route("get_skill")
def get_skill(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    sid = int_param(params, "skill_id")
    skill = world.skills.get(sid) if sid is not None else None
    if skill is None:
        raise RouteError(404, "skill not found")
    holders = sorted(
        ((uid, balances[sid]) for uid, balances in world.skill_balances.items() if sid in balances),
        key=lambda item: (-item[1], item[0]),
    )
    leaderboard = []
    for uid, balance in holders[:10]:
        user = world.users.get(uid)
        if user is not None:
            name = f"{user['first_name']} {user['last_name']}"
            leaderboard.append({"user_id": uid, "user_display_name": name, "balance": balance})
    skill["details"] = {
        "course_count": 0,
        "assessment_count": 0,
        "checklist_count": 0,
        "users_acquired_count": len(holders),
        "competency_count": skill["competency_count"],
        "leaderboard": leaderboard,
        "learning_path_count": 0,
    }
    return json_answer(skill)


@route("get_competency")
def get_competency(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    cid = int_param(params, "competency_id")
    competency = world.competencies.get(cid) if cid is not None else None
    if competency is None:
        raise RouteError(404, "competency not found")
    awards = []
    for uid, t in world.competency_awards.get(cid, []):  # type: ignore[arg-type]
        user = world.users.get(uid)
        if user is not None:
            name = f"{user['first_name']} {user['last_name']}"
            awards.append({"user_id": uid, "user_display_name": name, "created_at": date_en(t)})
    competency["details"] = {
        "award_count": len(awards),
        "skill_count": len(competency["skills"]),
        "activity_awards": awards,
    }
    return json_answer(competency)


@route("get_user_skill_balances_and_competencies")
def get_user_skill_balances_and_competencies(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    uid = user_from(world, params)
    balances = []
    for sid, balance in world.skill_balances.get(uid, {}).items():
        skill = world.skills.get(sid)
        if skill is not None:
            balances.append(
                {"skill_id": sid, "skill_name": skill["display_name"], "balance": balance}
            )
    achieved = [
        {"competency_id": cid, "achieved_at": date_en(t)}
        for cid, awards in world.competency_awards.items()
        for award_uid, t in awards
        if award_uid == uid
    ]
    user = world.users.get(uid) or {}
    return json_answer(
        {
            "user_email": user.get("email"),
            "user_id": uid,
            "skill_balances": balances,
            "competencies_achived": achieved,  # sic: the reference spells it so
        }
    )


@route("get_user_gamification_balance")
def get_user_gamification_balance(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    uid = user_from(world, params)
    return json_answer({"gamification_balance": world.gamification_balances.get(uid, 0)})


@route("get_program")
def get_program(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return json_answer(world.program)


@route("get_data")
def get_data(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A platform count by `data_type`, as a string."""
    data_type = required(params, "data_type")
    roles = [meta[2] for meta in world.users.meta.values()]
    counts = {
        "user_count": len(roles),
        "admin_count": roles.count("admin"),
        "learner_count": roles.count("learner"),
        "course_count": len(world.courses),
        "user_group_count": len(world.user_groups),
    }
    if data_type not in counts:
        raise RouteError(400, f"data_type must be one of {', '.join(counts)}")
    return json_answer({"data": str(counts[data_type])})  # a string, as the reference shows


@route("get_manager_permissions_from_user_group")
def get_manager_permissions_from_user_group(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    uid = user_from(world, params)
    gid = int_param(params, "user_group_id")
    if gid is None or gid not in world.user_groups:
        raise RouteError(404, "user group not found")
    permissions = world.manager_permissions.get((gid, uid))
    if permissions is None:
        raise RouteError(404, "user is not a manager of this user group")
    return json_answer(manager_answer(world, gid, uid, permissions))


def manager_answer(world: World, gid: int, uid: int, permissions: dict[str, str]) -> dict[str, Any]:
    """A manager's permissions in a group, shaped as the reference (flags as strings)."""
    user = world.users.get(uid) or {}
    group = world.user_groups.get(gid) or {}
    answer: dict[str, Any] = {
        "id": str(gid * 1000 + uid % 1000),
        "user": {
            "id": str(uid),
            "username": user.get("username"),
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
        },
        "user_group": {"id": str(gid), "name": group.get("name")},
    }
    answer.update(permissions)
    return answer


@route("get_course_item_progress")
def get_course_item_progress(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return Answer(SUCCESS)


# --------------------------------------------------------------------- reports
@route("get_saved_advanced_report")
def get_saved_advanced_report(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A saved report's CSV (text/csv)."""
    rid = int_param(params, "saved_advanced_report_id")
    csv = saved_report_csv(world, rid) if rid is not None else None
    if csv is None:
        raise RouteError(404, "saved advanced report not found")
    if params.get("format", "csv").lower() == "xlsx":
        raise RouteError(400, "the sandbox renders csv only")
    return Answer(csv, content_type="text/csv; charset=utf-8")


@route("get_report")
def get_report(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A report rendered on the spot, as CSV."""
    from skyprep_sandbox.reports import render_async_report

    try:
        csv = render_async_report(world, required(params, "report_type"), params)
    except (ValueError, LookupError) as error:
        raise RouteError(400, str(error)) from None
    return Answer(csv, content_type="text/csv; charset=utf-8")


@route("generate_async_report")
def generate_async_report(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """Start a report job; answers the `status_url` to poll."""
    report_type = required(params, "report_type")
    report_id = world.next_id("async_report")
    world.async_reports[report_id] = {
        "report_type": report_type,
        "params": dict(params),
        "polls": 0,
        "csv": None,
        "mode": ctx.async_report_mode,
    }
    return json_answer(
        {"status_url": f"{ctx.root_url}/admin/api/get_async_report?report_id={report_id}"}
    )


@route("get_async_report")
def get_async_report(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A job's status: pending, then complete with a download `url` (or failed), per the switches."""
    from skyprep_sandbox.reports import render_async_report

    report_id = int_param(params, "report_id")
    job = world.async_reports.get(report_id) if report_id is not None else None
    if job is None:
        raise RouteError(404, "report not found")
    job["polls"] += 1
    base = {"report_id": report_id, "report_type": job["report_type"]}
    if job["mode"] == "fail":
        return json_answer(
            {**base, "status": "failed", "error": "The report could not be generated"}
        )
    if job["mode"] == "never" or job["polls"] <= ctx.async_report_pending_polls:
        return json_answer({**base, "status": "pending"})
    if job["csv"] is None:
        if job["report_type"] not in ASYNC_REPORT_TYPES:
            job["mode"] = "fail"
            return json_answer({**base, "status": "failed", "error": "unsupported report_type"})
        try:
            job["csv"] = render_async_report(world, job["report_type"], job["params"])
        except (ValueError, LookupError) as error:
            job["mode"] = "fail"
            return json_answer({**base, "status": "failed", "error": str(error)})
    token = hashlib.sha256(f"{world.seed}:{report_id}".encode()).hexdigest()[:16]
    url = f"{ctx.root_url}/downloads/async_reports/{report_id}.csv?signature={token}"
    return json_answer({**base, "status": "complete", "format": "csv", "url": url})


def async_report_download(world: World, report_id: int, signature: str) -> bytes | None:
    """The CSV behind a completed async report's `url` (None when unknown or unsigned)."""
    job = world.async_reports.get(report_id)
    token = hashlib.sha256(f"{world.seed}:{report_id}".encode()).hexdigest()[:16]
    if job is None or job["csv"] is None or signature != token:
        return None
    return job["csv"]


# --------------------------------------------------------------------- side-effecting reads
@route("get_login_key", mutating=True)
def get_login_key(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """A sign-in key; side effects: may create the user and groups, and is recorded."""
    email = required(params, "user_email")
    autocreate = params.get("autocreate", "").lower() in ("true", "1")
    try:
        uid = world.user_id_for(email=email)
    except RecordNotFound:
        if not autocreate:
            raise
        uid = int(world.add_user(email=email)["id"])
        for name in filter(None, (g.strip() for g in params.get("user_groups", "").split(";"))):
            gid = next(
                (
                    g
                    for g in world.user_groups.ids()
                    if (world.user_groups.get(g) or {})["name"] == name
                ),
                None,
            )
            if gid is None:
                gid = world.add_user_group(name=name)["id"]
            world.add_group_member(gid, uid)
    key = hashlib.sha256(f"{world.seed}:{email}:{len(world.login_keys)}".encode()).hexdigest()[:36]
    world.login_keys.append(
        {"user_id": uid, "email": email, "key_type": params.get("key_type", "daily")}
    )
    world.changed()
    return json_answer(
        {
            "email": email,
            "login_key": key,
            "url": f"https://{world.program['acct_key']}/account/login?email={email}&login_key={key}",
        }
    )


@route("get_course_otp", mutating=True)
def get_course_otp(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    """Mint `count` one-time enrollment keys for a course (recorded in the world)."""
    cid = world.course_id_for(required(params, "course_id"))
    count = int_param(params, "count") or 1
    minted = world.course_otps.setdefault(cid, [])
    keys = []
    for _ in range(count):
        digest = hashlib.sha256(f"{world.seed}:{cid}:{len(minted)}".encode()).hexdigest()
        key = f"{int(digest[:4], 16) % 10000:04d}-{digest[4:8]}-{int(digest[8:11], 16) % 1000:03d}"
        minted.append(key)
        keys.append(key)
    world.changed()
    return json_answer(keys)
