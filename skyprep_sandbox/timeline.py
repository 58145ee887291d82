"""What one day in a SkyPrep account looks like, as deterministic events.

A day's events are drawn from the day's own `random.Random`, given times within the day,
and applied in time order with the world clock set to each event's time, so every record
an event writes carries that time as `updated_at` (always before the day's end, which is
the world clock once `advance` returns). Rates scale with the size of the world.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from skyprep_sandbox.formats import DAY
from skyprep_sandbox.records import payment_record

Event = tuple[int, int, Callable[[], None]]
#: A payment can be refunded only this many days after it was made.
REFUND_WINDOW_DAYS = 7
#: A pending payment settles (complete or failed) within this many days.
SETTLE_WITHIN_DAYS = 5


def live_one_day(world: Any, rng: random.Random, day_start: int) -> None:
    """Apply one day of account life to `world`, starting at `day_start` (epoch seconds)."""
    events: list[Event] = []

    def at(action: Callable[[], None]) -> None:
        events.append((day_start + 1 + rng.randrange(DAY - 3600), len(events), action))

    if world.random_life:
        _learners_progress(world, rng, at)
        _people_come_and_go(world, rng, at)
        _enrollments_come_and_go(world, rng, at)
        _payments_arrive_and_settle(world, rng, at)
        _courses_change(world, rng, at)
    events.sort(key=lambda event: (event[0], event[1]))
    for t, _order, action in events:
        world.now_ts = t
        action()
    # Expiry happens on its own: a certificate lapses when its time comes.
    world.now_ts = day_start + DAY - 1800
    _certificates_expire(world)
    _reports_regenerate(world, day_start + DAY - 1800)


def _sample_ids(rng: random.Random, ids: list[int], k: int) -> list[int]:
    if not ids:
        return []
    return [ids[i] for i in rng.sample(range(len(ids)), min(k, len(ids)))]


def _learners_progress(world: Any, rng: random.Random, at: Callable[..., None]) -> None:
    """About 2% of progresses move a step a day: start, progress, pass, fail, retry."""
    ids = world.progresses.ids()
    for pid in _sample_ids(rng, ids, max(1, len(ids) // 50)):
        status = world.progresses.meta[pid][2]
        roll = rng.random()
        step = rng.randint(5, 40)
        if status == "not-started" and roll < 0.6:
            at(lambda pid=pid: _start(world, pid))
        elif status == "in-progress":
            if roll < 0.3:
                at(lambda pid=pid: _set_status(world, pid, "passed"))
            elif roll < 0.38:
                at(lambda pid=pid: _set_status(world, pid, "failed"))
            else:
                at(lambda pid=pid, step=step: _view_more(world, pid, step))
        elif status == "failed" and roll < 0.4:
            target = "passed" if roll < 0.15 else "in-progress"
            at(lambda pid=pid, target=target: _set_status(world, pid, target))


# Events are drawn first and applied later in time order, so each one checks that its
# record still exists (a learner may have left earlier the same day).
def _set_status(world: Any, pid: int, status: str) -> None:
    if pid in world.progresses:
        world.set_progress_status(pid, status)


def _start(world: Any, pid: int) -> None:
    if pid in world.progresses and world.progresses.meta[pid][2] == "not-started":
        world.set_progress_status(pid, "in-progress")
        _view_more(world, pid, 10)


def _view_more(world: Any, pid: int, step: int) -> None:
    if pid not in world.progresses:
        return
    course = world.courses.meta.get(world.progresses.meta[pid][0])
    items = course[3] if course else ()

    def change(r: dict[str, Any]) -> None:
        r["percent_viewed"] = min(95, r["percent_viewed"] + step)
        if items:
            r["last_course_item_id"] = items[
                min(len(items) - 1, r["percent_viewed"] * len(items) // 100)
            ]

    world.touch_progress(pid, change)


def _people_come_and_go(world: Any, rng: random.Random, at: Callable[..., None]) -> None:
    """New hires (enrolled in a few active courses, half of them into a group), leavers,
    users deactivated or reactivated, people leaving a group, and logins."""
    from skyprep_sandbox.generator import DEPARTMENTS, FIRST_NAMES, LAST_NAMES, LOCATIONS

    n_users = len(world.users)
    active_courses = [cid for cid, meta in world.courses.meta.items() if meta[1]]
    group_ids = world.user_groups.ids()
    for _ in range(max(1, n_users // 1000)):
        first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
        last = LAST_NAMES[rng.randrange(len(LAST_NAMES))]
        courses = _sample_ids(rng, active_courses, rng.randint(1, 3))
        custom = (
            DEPARTMENTS[rng.randrange(len(DEPARTMENTS))],
            LOCATIONS[rng.randrange(len(LOCATIONS))],
        )
        group = (
            group_ids[rng.randrange(len(group_ids))] if group_ids and rng.random() < 0.5 else None
        )
        at(lambda f=first, la=last, c=courses, ca=custom, g=group: _hire(world, f, la, c, ca, g))
    leavers = n_users // 5000 + (1 if rng.random() < 0.2 else 0)
    for uid in _sample_ids(rng, world.users.ids(), leavers):
        at(lambda uid=uid: uid in world.users and world.destroy_user(uid))
    switched = n_users // 2000 + (1 if rng.random() < 0.2 else 0)
    for uid in _sample_ids(rng, world.users.ids(), switched):
        at(lambda uid=uid: _switch_status(world, uid))
    if group_ids and rng.random() < 0.3:
        gid = group_ids[rng.randrange(len(group_ids))]
        members = list(world.group_members.get(gid, {}))
        if members:
            uid = members[rng.randrange(len(members))]
            at(lambda: gid in world.user_groups and world.remove_group_member(gid, uid))
    for uid in _sample_ids(rng, world.users.ids(), max(1, n_users // 200)):
        at(lambda uid=uid: _log_in(world, uid))


def _hire(
    world: Any,
    first: str,
    last: str,
    courses: list[int],
    custom: tuple[str, str],
    group: int | None,
) -> None:
    uid = world.next_id("user")
    local = f"{first}.{last}".lower().replace("'", "")
    world.add_user(
        email=f"{local}.{uid}@example.com",
        first_name=first,
        last_name=last,
        user_id=uid,
        custom=(*custom, f"E{uid}"),
    )
    for cid in courses:
        if cid in world.courses:
            world.enroll(uid, cid)
    if group is not None and group in world.user_groups:
        world.add_group_member(group, uid)


def _switch_status(world: Any, uid: int) -> None:
    """An active user is deactivated; an inactive or disabled one comes back."""
    if uid in world.users:
        status = world.users.meta[uid][0]
        world.update_user(uid, {"status": "inactive" if status == "active" else "active"})


def _log_in(world: Any, uid: int) -> None:
    if uid in world.users:
        world.update_user(uid, {"last_login_at": world.now_ts})


def _enrollments_come_and_go(world: Any, rng: random.Random, at: Callable[..., None]) -> None:
    n = len(world.progresses)
    user_ids = world.users.ids()
    course_ids = [cid for cid, meta in world.courses.meta.items() if meta[1]]
    for _ in range(max(1, n // 2000)):
        if not user_ids or not course_ids:
            break
        uid = user_ids[rng.randrange(len(user_ids))]
        cid = course_ids[rng.randrange(len(course_ids))]
        deadline_days = rng.choice((None, 14, 30))
        at(lambda uid=uid, cid=cid, d=deadline_days: _enroll(world, uid, cid, d))
    removed = n // 10000 + (1 if rng.random() < 0.3 else 0)
    for pid in _sample_ids(rng, world.progresses.ids(), removed):
        at(lambda pid=pid: pid in world.progresses and world.destroy_progress(pid))


def _enroll(world: Any, uid: int, cid: int, deadline_days: int | None) -> None:
    if uid in world.users and cid in world.courses:
        deadline = world.now_ts + deadline_days * DAY if deadline_days else None
        world.enroll(uid, cid, deadline_date=deadline)


def _payments_arrive_and_settle(world: Any, rng: random.Random, at: Callable[..., None]) -> None:
    from skyprep_sandbox.generator import PRICES

    user_ids = world.users.ids()
    course_ids = world.courses.ids()
    for _ in range(max(1, len(world.payments) // 365)):
        if not user_ids or not course_ids:
            break
        uid = user_ids[rng.randrange(len(user_ids))]
        cid = course_ids[rng.randrange(len(course_ids))]
        amount = PRICES[rng.randrange(len(PRICES))]
        status = "pending" if rng.random() < 0.4 else "complete"
        ptype = "stripe" if rng.random() < 0.6 else "paypal"
        at(lambda u=uid, c=cid, a=amount, s=status, p=ptype: _pay(world, u, c, a, s, p))
    settle_by = world.now_ts - SETTLE_WITHIN_DAYS * DAY
    for pid, (status, _ptype, created) in list(world.payments.meta.items()):
        if status == "pending" and (rng.random() < 0.5 or created <= settle_by):
            outcome = "complete" if rng.random() < 0.85 else "failed"
            at(
                lambda pid=pid, o=outcome: (
                    pid in world.payments and world.set_payment_status(pid, o)
                )
            )
    # Refunds come within REFUND_WINDOW_DAYS of the purchase, so a payment's status only
    # changes while it is young (pending ones settle within days too).
    # (the refund lands later this day, up to a day after now: the window is counted from there)
    since = world.now_ts + DAY - REFUND_WINDOW_DAYS * DAY
    complete = [
        pid
        for pid, (status, _ptype, created) in world.payments.meta.items()
        if status == "complete" and created >= since
    ]
    if complete and rng.random() < 0.3:
        pid = complete[rng.randrange(len(complete))]
        at(lambda pid=pid: pid in world.payments and world.set_payment_status(pid, "refunded"))


def _pay(world: Any, uid: int, cid: int, amount: str, status: str, ptype: str) -> None:
    user = world.users.get(uid)
    if user is None:
        return
    pid = world.next_id("payment")
    world.add_payment(
        payment_record(
            pid,
            status=status,
            amount=amount,
            first_name=user["first_name"],
            last_name=user["last_name"],
            payer_email=user["email"],
            payment_type=ptype,
            created_at=world.now_ts,
            course_id=cid,
            user_id=uid,
        )
    )


def _courses_change(world: Any, rng: random.Random, at: Callable[..., None]) -> None:
    if len(world.courses) and rng.random() < 0.2:
        cid = world.courses.ids()[rng.randrange(len(world.courses))]
        at(lambda: cid in world.courses and world.update_course(cid, {}))


def _certificates_expire(world: Any) -> None:
    """Passed progresses whose expiration date has come are marked expired."""
    now = world.now_ts
    due = [
        pid for pid, meta in world.progresses.meta.items() if meta[3] is not None and meta[3] <= now
    ]
    for pid in due:
        world.touch_progress(pid, lambda r: None)


def _reports_regenerate(world: Any, t: int) -> None:
    from skyprep_sandbox.reports import regenerate_saved_report

    day = world.days_advanced + 1
    for rid, definition in list(world.saved_reports.meta.items()):
        every = definition.regenerate_every_days
        if every and day % every == 0:
            regenerate_saved_report(world, rid, definition, at=t)
