"""The mutating routes of the reference, so tests can change the world over HTTP.

Each handler is named after its route (the reference's parameters, the reference's answer).
Importing this module registers nothing: the server calls `register_mutating_routes()`, which
adds every handler here to the route table with `mutating=True` (the request log then shows
when a client called one; the source must never).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from skyprep_sandbox.formats import parse_any, ts_iso
from skyprep_sandbox.records import PROGRESS_STATUSES
from skyprep_sandbox.routes import (
    SUCCESS,
    Answer,
    Handler,
    RouteContext,
    RouteError,
    id_list,
    int_param,
    json_answer,
    manager_answer,
    required,
    route,
    user_from,
)
from skyprep_sandbox.world import World

# route -> handler, collected by `mutation` (registered by `register_mutating_routes`)
MUTATIONS: dict[str, Handler] = {}


def mutation(name: str) -> Any:
    """Collect a mutating route's handler (nothing is registered yet)."""

    def collect(handler: Handler) -> Handler:
        MUTATIONS[name] = handler
        return handler

    return collect


def register_mutating_routes() -> None:
    """Add every handler of this module to the sandbox's route table, marked mutating."""
    for name, handler in MUTATIONS.items():
        route(name, mutating=True)(handler)


USER_FIELDS = (
    "first_name",
    "last_name",
    "role",
    "title",
    "cell",
    "work_phone",
    "address",
    "card_no",
    "status",
)
USER_DATES = ("access_start_date", "access_end_date")


def _user_fields(params: dict[str, str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in params.items():
        key = name.strip()  # the reference's sample has "address " with a trailing space
        if key in USER_FIELDS or key in USER_DATES or (key.startswith("ca_") and key[3:].isdigit()):
            fields[key] = value
    return fields


@mutation("create_user")
def create_user(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    email = required(params, "email")
    if email.lower() in world.user_by_email:
        raise RouteError(400, "a user with this email already exists")
    fields = _user_fields(params)
    custom = [fields.pop(f"ca_{i}", None) for i in range(5)]
    dates = {name: parse_any(fields.pop(name)) for name in USER_DATES if name in fields}
    record = world.add_user(
        email=email,
        first_name=fields.pop("first_name", ""),
        last_name=fields.pop("last_name", ""),
        custom=custom,
        **fields,
        **dates,
    )
    return json_answer(record)


@mutation("update_user")
def update_user(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    uid = user_from(world, params)
    fields = _user_fields(params)
    # `email` renames when the user is named otherwise (user_id, or user_email).
    if params.get("email") and (params.get("user_id") or params.get("user_email")):
        fields["email"] = params["email"]
    return json_answer(world.update_user(uid, fields))


@mutation("destroy_user")
def destroy_user(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.destroy_user(user_from(world, params))
    return Answer(SUCCESS)


@mutation("create_course")
def create_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    active = params.get("active", "true").lower() in ("true", "1", "yes")
    record = world.add_course(
        name=required(params, "name"),
        description=params.get("description", ""),
        active=active,
        days_until_expiration=int_param(params, "days_until_expiration"),
    )
    return json_answer({**record, "id": str(record["id"])})  # the reference answers a string id


@mutation("update_course")
def update_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    cid = world.course_id_for(required(params, "course_id"))
    fields = {
        k: v
        for k, v in params.items()
        if k in ("name", "description", "active", "days_until_expiration", "price", "course_code")
    }
    world.update_course(cid, fields)
    return Answer(SUCCESS)


@mutation("destroy_course")
def destroy_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.destroy_course(world.course_id_for(required(params, "course_id")))
    return Answer(SUCCESS)


@mutation("enroll_user_in_course")
def enroll_user_in_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    uid = user_from(world, params)
    world.enroll(uid, world.course_id_for(required(params, "course_id")))
    return Answer(SUCCESS)


@mutation("enroll_user_in_courses")
def enroll_user_in_courses(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    uid = user_from(world, params)
    for cid in id_list(required(params, "course_ids")):
        world.enroll(uid, world.course_id_for(cid))
    return Answer(SUCCESS)


@mutation("remove_user_from_course")
def remove_user_from_course(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    uid = user_from(world, params)
    pid = world.progress_for(uid, world.course_id_for(required(params, "course_id")))
    if pid is None:
        raise RouteError(404, "user is not enrolled in this course")
    world.destroy_progress(pid)
    return Answer(SUCCESS)


@mutation("mass_enroll")
def mass_enroll(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    emails = [e.strip() for e in params.get("user_emails", "").split(",") if e.strip()]
    user_ids = [world.user_id_for(email=e) for e in emails]
    course_ids = [world.course_id_for(c) for c in id_list(params.get("course_ids"))]
    group_ids = id_list(params.get("user_group_ids"))
    for uid in user_ids:
        for cid in course_ids:
            world.enroll(uid, cid)
        for gid in group_ids:
            world.add_group_member(gid, uid)
    return Answer(SUCCESS)


@mutation("update_course_progress")
def update_course_progress(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    pid = int_param(params, "course_progress_id")
    status = required(params, "set_status").lower()
    if status not in PROGRESS_STATUSES:
        raise RouteError(400, f"set_status must be one of {', '.join(PROGRESS_STATUSES)}")
    if pid is None or pid not in world.progresses:
        raise RouteError(404, "course progress not found")
    world.set_progress_status(pid, status)
    return Answer(SUCCESS)


@mutation("destroy_course_progress")
def destroy_course_progress(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    pid = int_param(params, "course_progress_id")
    if pid is None or pid not in world.progresses:
        raise RouteError(404, "course progress not found")
    world.destroy_progress(pid)
    return Answer(SUCCESS)


@mutation("set_course_item_progress")
def set_course_item_progress(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    return Answer(SUCCESS)


@mutation("create_user_group")
def create_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    record = world.add_user_group(
        name=required(params, "name"),
        description=params.get("description", ""),
        course_ids=id_list(params.get("course_ids")),
        user_ids=id_list(params.get("user_ids")),
    )
    return json_answer({**record, "id": str(record["id"])})


def _group_id(world: World, params: dict[str, str]) -> int:
    gid = int_param(params, "user_group_id")
    if gid is None or gid not in world.user_groups:
        raise RouteError(404, "user group not found")
    return gid


@mutation("update_user_group")
def update_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.update_user_group(_group_id(world, params), params)
    return Answer(SUCCESS)


@mutation("destroy_user_group")
def destroy_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.destroy_user_group(_group_id(world, params))
    return Answer(SUCCESS)


@mutation("enroll_user_in_user_group")
def enroll_user_in_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.add_group_member(_group_id(world, params), user_from(world, params))
    return Answer(SUCCESS)


@mutation("remove_user_from_user_group")
def remove_user_from_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.remove_group_member(_group_id(world, params), user_from(world, params))
    return Answer(SUCCESS)


@mutation("add_course_to_user_group")
def add_course_to_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.add_group_course(
        _group_id(world, params), world.course_id_for(required(params, "course_id"))
    )
    return Answer(SUCCESS)


@mutation("remove_course_from_user_group")
def remove_course_from_user_group(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    world.remove_group_course(
        _group_id(world, params), world.course_id_for(required(params, "course_id"))
    )
    return Answer(SUCCESS)


# --------------------------------------------------------------------- learning paths
def _path_id(world: World, params: dict[str, str]) -> int:
    lid = int_param(params, "learning_path_id")
    if lid is None or lid not in world.learning_paths:
        raise RouteError(404, "learning path not found")
    return lid


def _touch_path(world: World, lid: int, change: Any) -> None:
    def wrapped(r: dict[str, Any]) -> None:
        change(r)
        r["updated_at"] = ts_iso(world.now_ts)

    world.learning_paths.update(lid, wrapped)
    world.changed()


@mutation("create_learning_path")
def create_learning_path(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    lid = world.next_id("learning_path")
    record = {
        "id": lid,
        "name": required(params, "name"),
        "description": params.get("description", ""),
        "created_at": ts_iso(world.now_ts),
        "updated_at": ts_iso(world.now_ts),
        "course_ids": id_list(params.get("course_ids")),
        "user_group_ids": id_list(params.get("user_group_ids")),
    }
    world.learning_paths.put(lid, record)
    world.changed()
    return json_answer({**record, "id": str(lid)})


@mutation("update_learning_path")
def update_learning_path(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    lid = _path_id(world, params)
    _touch_path(
        world,
        lid,
        lambda r: r.update({k: params[k] for k in ("name", "description") if k in params}),
    )
    return Answer(SUCCESS)


@mutation("destroy_learning_path")
def destroy_learning_path(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.learning_paths.delete(_path_id(world, params))
    world.changed()
    return Answer(SUCCESS)


def _list_edit(field_name: str, param: str, add: bool) -> Any:
    def handler(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
        lid = _path_id(world, params)
        value = int(required(params, param))

        def change(r: dict[str, Any]) -> None:
            if add and value not in r[field_name]:
                r[field_name].append(value)
            if not add and value in r[field_name]:
                r[field_name].remove(value)

        _touch_path(world, lid, change)
        return Answer(SUCCESS)

    return handler


mutation("add_course_to_learning_path")(_list_edit("course_ids", "course_id", True))
mutation("remove_course_from_learning_path")(_list_edit("course_ids", "course_id", False))
mutation("add_group_to_learning_path")(_list_edit("user_group_ids", "user_group_id", True))
mutation("remove_group_from_learning_path")(_list_edit("user_group_ids", "user_group_id", False))


# --------------------------------------------------------------------- catalog (accepted, no state)
for _name in (
    "add_course_or_learning_path_to_catalog",
    "remove_course_or_learning_path_from_catalog",
    "update_catalog_enrollments",
):
    mutation(_name)(lambda world, params, ctx: Answer(SUCCESS))


# --------------------------------------------------------------------- instructor-led trainings
@mutation("create_instructor_led_training_timeslot")
def create_timeslot(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    iid = int(required(params, "instructor_led_training_id"))
    if iid not in world.ilts:
        raise RouteError(404, "instructor led training not found")
    tid = world.next_id("timeslot")
    begins = parse_any(params.get("start_date")) or world.now_ts
    record = {
        "id": tid,
        "instructor_led_training_id": iid,
        "description": params.get("description", ""),
        "location": params.get("location", ""),
        "instructor": params.get("instructor", ""),
        "start_date": ts_iso(begins),
        "end_date": ts_iso(parse_any(params.get("end_date")) or begins + 3600),
        "display_timezone": params.get("display_timezone", "UTC"),
        "capacity": params.get("capacity", "10"),
        "created_at": ts_iso(world.now_ts),
        "updated_at": ts_iso(world.now_ts),
    }
    world.timeslots.put(tid, record, (iid, begins))
    world.changed()
    return json_answer({**record, "id": str(tid)})


@mutation("update_instructor_led_training_timeslot")
def update_timeslot(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    tid = int(required(params, "instructor_led_training_timeslot_id"))
    if tid not in world.timeslots:
        raise RouteError(404, "instructor led training timeslot not found")

    def change(r: dict[str, Any]) -> None:
        for name in ("description", "location", "instructor", "display_timezone", "capacity"):
            if name in params:
                r[name] = params[name]
        r["updated_at"] = ts_iso(world.now_ts)

    record = world.timeslots.update(tid, change)
    world.changed()
    return json_answer(record)


@mutation("delete_instructor_led_training_timeslot")
def delete_timeslot(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    if not world.timeslots.delete(int(required(params, "instructor_led_training_timeslot_id"))):
        raise RouteError(404, "instructor led training timeslot not found")
    world.changed()
    return Answer(SUCCESS)


@mutation("create_instructor_led_training_timeslot_registrations")
def create_registration(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    tid = int(required(params, "instructor_led_training_timeslot_id"))
    if tid not in world.timeslots:
        raise RouteError(404, "instructor led training timeslot not found")
    rid = world.next_id("registration")
    record = {
        "id": rid,
        "instructor_led_training_timeslot_id": tid,
        "user_id": user_from(world, params),
        "status": params.get("status", "registered"),
        "created_at": ts_iso(world.now_ts),
        "updated_at": ts_iso(world.now_ts),
    }
    world.registrations.put(rid, record, tid)
    world.changed()
    return json_answer({**record, "id": str(rid)})


@mutation("update_instructor_led_training_timeslot_registration")
def update_registration(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    rid = int(required(params, "instructor_led_training_timeslot_registration_id"))
    if rid not in world.registrations:
        raise RouteError(404, "registration not found")

    def change(r: dict[str, Any]) -> None:
        r["status"] = params.get("status", r["status"])
        r["updated_at"] = ts_iso(world.now_ts)

    record = world.registrations.update(rid, change)
    world.changed()
    return json_answer({"instructor_led_training_timeslot_registration_id": str(rid), **record})


@mutation("destroy_instructor_led_training_timeslot_registrations")
def destroy_registrations(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    for rid in id_list(required(params, "instructor_led_training_timeslot_registration_ids")):
        world.registrations.delete(rid)
    world.changed()
    return Answer(SUCCESS)


# --------------------------------------------------------------------- power users, managers
@mutation("create_or_update_power_users")
def create_or_update_power_users(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    role_id = int(required(params, "user_role_id"))
    dataset_ids = id_list(params.get("dataset_ids"))
    answered = []
    for uid in id_list(required(params, "user_ids")):
        if uid not in world.users:
            raise RouteError(404, f"user {uid} not found")
        world.power_users[uid] = {"user_role_id": role_id, "dataset_ids": dataset_ids}
        user = world.users.get(uid) or {}
        user["role"] = "power_user"
        user["permissions"] = {"user_role_id": role_id, "dataset_ids": dataset_ids}
        answered.append(user)
    world.changed()
    return json_answer(answered)


@mutation("destroy_power_user")
def destroy_power_user(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    world.power_users.pop(user_from(world, params), None)
    world.changed()
    return Answer(SUCCESS)


MANAGER_FLAGS = (
    "can_add_users",
    "can_receive_notifications",
    "can_edit_course_progress",
    "can_remove_users",
    "can_add_exisiting_users",  # sic: the reference spells it so
    "can_manage_all_group_users_courses",
    "can_add_courses_to_user_group",
    "can_remove_courses_from_user_group",
    "can_edit_user_password",
)


def _flags(params: dict[str, str], current: dict[str, str] | None) -> dict[str, str]:
    flags = dict(current) if current else dict.fromkeys(MANAGER_FLAGS, "true")
    for name in MANAGER_FLAGS:
        if name in params:
            flags[name] = "true" if params[name].lower() in ("1", "true", "yes") else "false"
    return flags  # booleans as strings, as the reference shows


@mutation("assign_manager_to_user_group")
def assign_manager_to_user_group(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    gid, uid = _group_id(world, params), user_from(world, params)
    world.manager_permissions[(gid, uid)] = _flags(params, None)
    world.changed()
    return json_answer(manager_answer(world, gid, uid, world.manager_permissions[(gid, uid)]))


@mutation("update_manager_permissions_in_user_group")
def update_manager_permissions(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    gid, uid = _group_id(world, params), user_from(world, params)
    current = world.manager_permissions.get((gid, uid))
    if current is None:
        raise RouteError(404, "user is not a manager of this user group")
    world.manager_permissions[(gid, uid)] = _flags(params, current)
    world.changed()
    return json_answer(manager_answer(world, gid, uid, world.manager_permissions[(gid, uid)]))


@mutation("remove_manager_from_user_group")
def remove_manager_from_user_group(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    gid, uid = _group_id(world, params), user_from(world, params)
    world.manager_permissions.pop((gid, uid), None)
    world.changed()
    return Answer(SUCCESS)


# --------------------------------------------------------------------- gamification, skills
@mutation("create_gamification_transaction")
def create_gamification_transaction(
    world: World, params: dict[str, str], ctx: RouteContext
) -> Answer:
    uid = user_from(world, params)
    amount = int(required(params, "amount"))
    balance = world.gamification_balances.get(uid, 0) + amount
    world.gamification_balances[uid] = balance
    tid = world.next_id("gamification")
    world.changed()
    unique = hashlib.sha256(f"{world.seed}:{tid}".encode()).hexdigest()
    return json_answer(
        {
            "id": tid,
            "user_id": uid,
            "amount": abs(amount),
            "description": params.get("description", ""),
            "balance": balance,
            "unique_transaction_id": unique,
        }
    )


@mutation("create_skill_transaction")
def create_skill_transaction(world: World, params: dict[str, str], ctx: RouteContext) -> Answer:
    uid = user_from(world, params)
    sid = int(required(params, "skill_id"))
    if sid not in world.skills:
        raise RouteError(404, "skill not found")
    balances = world.skill_balances.setdefault(uid, {})
    balances[sid] = balances.get(sid, 0) + int(required(params, "amount"))
    world.changed()
    answer = []
    for skill_id, balance in balances.items():
        skill = world.skills.get(skill_id) or {}
        answer.append(
            {"skill_id": skill_id, "skill_name": skill.get("display_name"), "balance": balance}
        )
    return Answer(orjson.dumps(answer))
