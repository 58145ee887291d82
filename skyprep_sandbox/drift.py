"""Page drift: records inserted or deleted ahead of a client between two page calls.

Inserted records go to the *front* of the listing (so every later page shifts and a
naive pager sees duplicates); deleted records are taken from the front (already served,
so a naive pager misses the records that slide back into earlier pages).
"""

from __future__ import annotations

from typing import Any

import orjson

from skyprep_sandbox.records import payment_record


def _move_to_front(table: Any, ids: list[int]) -> None:
    """Reorder a table so `ids` are served first."""
    front = {i: table.rows[i] for i in ids if i in table.rows}
    rest = {i: raw for i, raw in table.rows.items() if i not in front}
    table.rows = {**front, **rest}
    table._ordered = None


def drift_insert(world: Any, route: str, params: dict[str, str], records: int) -> None:
    """Insert `records` new records at the front of `route`'s listing."""
    created: list[int] = []
    if route == "get_users":
        for _ in range(records):
            uid = world.next_id("user")
            world.add_user(
                email=f"drift.{uid}@example.com",
                first_name="Drift",
                last_name=str(uid),
                user_id=uid,
            )
            created.append(uid)
        _move_to_front(world.users, created)
    elif route == "get_courses":
        for _ in range(records):
            created.append(world.add_course(name="Drift course")["id"])
        _move_to_front(world.courses, created)
    elif route == "get_course_progresses":
        course_ids = [int(params["course_id"])] if params.get("course_id") else world.courses.ids()
        for _ in range(records):
            uid = world.next_id("user")
            world.add_user(
                email=f"drift.{uid}@example.com",
                first_name="Drift",
                last_name=str(uid),
                user_id=uid,
            )
            for cid in course_ids[:1]:
                pid = world.enroll(uid, cid)["id"]
                created.append(pid)
                index = world.progresses_by_course[cid]
                world.progresses_by_course[cid] = {
                    pid: None,
                    **{k: None for k in index if k != pid},
                }
        _move_to_front(world.progresses, created)
    elif route == "get_payments":
        items = []
        for _ in range(records):
            pid = world.next_id("payment")
            items.append(
                payment_record(
                    pid,
                    status="complete",
                    amount="49.99",
                    first_name="Drift",
                    last_name="Payer",
                    payer_email="drift.payer@example.com",
                    payment_type="stripe",
                    created_at=world.now_ts,
                )
            )
        world.add_payments(items)
    elif route == "get_user_groups":
        for _ in range(records):
            created.append(world.add_user_group(name="Drift group")["id"])
        _move_to_front(world.user_groups, created)
    world.changed()


def drift_delete(world: Any, route: str, params: dict[str, str], records: int, ctx: Any) -> None:
    """Delete the first `records` records of `route`'s listing (as filtered by `params`)."""
    from skyprep_sandbox.routes import ROUTES, ListAnswer

    handler = ROUTES.get(route)
    if handler is None:
        return
    answer = handler(world, dict(params), ctx)
    if not isinstance(answer, ListAnswer):
        return
    ids = [int(orjson.loads(raw)["id"]) for raw in answer.items[:records]]
    for record_id in ids:
        if route == "get_users" and record_id in world.users:
            world.destroy_user(record_id)
        elif route == "get_courses" and record_id in world.courses:
            world.destroy_course(record_id)
        elif route == "get_course_progresses" and record_id in world.progresses:
            world.destroy_progress(record_id)
        elif route == "get_payments":
            world.payments.delete(record_id)
        elif route == "get_user_groups" and record_id in world.user_groups:
            world.destroy_user_group(record_id)
    world.changed()
