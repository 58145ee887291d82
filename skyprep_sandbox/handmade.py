"""Hand-made worlds: give the fields a test cares about, get full API records.

Used through `World.from_records` (documented in docs/sandbox.md). Dates may be
datetimes, epoch seconds or any API date string; missing fields get defaults; fields the
builders do not know are kept as given (the API has extra fields too).
"""

from __future__ import annotations

from typing import Any

from skyprep_sandbox.formats import DAY, parse_any
from skyprep_sandbox.records import (
    CUSTOM_ATTRIBUTES,
    payment_record,
    progress_record,
    skill_record,
    user_record,
)

DEFAULT_AGE = 30 * DAY


def _take_date(fields: dict[str, Any], name: str, default: int | None) -> int | None:
    if name not in fields:
        return default
    return parse_any(fields.pop(name))


def _keep_extra(record: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    record.update(extra)
    return record


def build_from_records(
    world: Any,
    *,
    users: list[dict[str, Any]],
    courses: list[dict[str, Any]],
    course_progresses: list[dict[str, Any]],
    user_groups: list[dict[str, Any]],
    payments: list[dict[str, Any]],
    skills: list[dict[str, Any]],
) -> None:
    """Fill an empty world from partial records (see `World.from_records`)."""
    now = world.now_ts
    for given in users:
        fields = dict(given)
        uid = int(fields.pop("id", None) or world.next_id("user"))
        world._next["user"] = max(world._next["user"], uid + 1)
        email = (
            fields.pop("email", None) or fields.pop("username", None) or f"user{uid}@example.com"
        )
        fields.pop("username", None)
        created = _take_date(fields, "created_at", now - DEFAULT_AGE)
        custom = [fields.pop(f"ca_{i}", None) for i in range(CUSTOM_ATTRIBUTES)]
        known: dict[str, Any] = {
            name: fields.pop(name)
            for name in ("first_name", "last_name", "role", "status", "card_no", "title", "cell")
            if name in fields
        }
        for name in ("work_phone", "address"):
            if name in fields:
                known[name] = fields.pop(name)
        dates: dict[str, Any] = {
            name: _take_date(fields, name, None)
            for name in ("updated_at", "last_login_at", "access_start_date", "access_end_date")
        }
        record = user_record(
            uid,
            email=email,
            first_name=known.pop("first_name", f"First{uid}"),
            last_name=known.pop("last_name", f"Last{uid}"),
            created_at=created or now - DEFAULT_AGE,
            custom=custom,
            **known,
            **dates,
        )
        world._put_user(uid, _keep_extra(record, fields))
    for given in courses:
        fields = dict(given)
        cid = int(fields.pop("id", None) or world.next_id("course"))
        created = _take_date(fields, "created_at", now - DEFAULT_AGE) or now - DEFAULT_AGE
        updated = _take_date(fields, "updated_at", None)
        active = fields.pop("active", True)
        known_course: dict[str, Any] = {
            name: fields.pop(name)
            for name in (
                "description",
                "course_code",
                "price",
                "days_until_expiration",
                "tags",
                "course_items",
            )
            if name in fields
        }
        world.add_course(
            name=fields.pop("name", f"Course {cid}"),
            course_id=cid,
            created_at=created,
            updated_at=updated,
            active=active in (True, "true", 1, "1"),
            **known_course,
        )
        if fields:
            world.courses.update(cid, lambda r, extra=fields: r.update(extra))
    for given in course_progresses:
        fields = dict(given)
        uid = int(fields.pop("user_id"))
        cid = int(fields.pop("course_id"))
        pid = int(fields.pop("id", None) or world.next_id("progress"))
        world._next["progress"] = max(world._next["progress"], pid + 1)
        status = fields.pop("status", "not-started")
        created = _take_date(fields, "created_at", now - DEFAULT_AGE) or now - DEFAULT_AGE
        dates = {
            name: _take_date(fields, name, None)
            for name in (
                "updated_at",
                "commencement_date",
                "completion_date",
                "deadline_date",
                "expiration_date",
                "access_date",
                "real_start_date",
                "real_end_date",
            )
        }
        default_percent = {"passed": 100, "failed": 70, "in-progress": 40}.get(status, 0)
        user = world.users.get(uid)
        course = world.courses.meta.get(cid)
        record = progress_record(
            pid,
            course_id=cid,
            course_name=fields.pop("course_name", course[0] if course else f"Course {cid}"),
            user_id=uid,
            user_email=fields.pop(
                "user_email", user["email"] if user else f"user{uid}@example.com"
            ),
            status=status,
            created_at=created,
            now=now,
            percent_viewed=int(fields.pop("percent_viewed", default_percent)),
            last_course_item_id=fields.pop("last_course_item_id", None),
            override_dates=bool(fields.pop("override_dates", False)),
            skip_prerequisites=bool(fields.pop("skip_prerequisites", False)),
            **dates,
        )
        world._put_progress(pid, _keep_extra(record, fields))
    for given in user_groups:
        fields = dict(given)
        gid = int(fields.pop("id", None) or world.next_id("user_group"))
        world.add_user_group(
            name=fields.pop("name", f"Group {gid}"),
            description=fields.pop("description", ""),
            group_id=gid,
            created_at=_take_date(fields, "created_at", now - DEFAULT_AGE),
            user_ids=[int(u) for u in fields.pop("user_ids", [])],
            course_ids=[int(c) for c in fields.pop("course_ids", [])],
            enroll_members=False,
        )
    records = []
    for given in payments:
        fields = dict(given)
        pay_id = int(fields.pop("id", None) or world.next_id("payment"))
        world._next["payment"] = max(world._next["payment"], pay_id + 1)
        uid = fields.pop("user_id", None)
        user = world.users.get(int(uid)) if uid is not None else None
        record = payment_record(
            pay_id,
            status=fields.pop("status", "complete"),
            amount=str(fields.pop("amount", "49.99")),
            first_name=fields.pop("first_name", user["first_name"] if user else "Pat"),
            last_name=fields.pop("last_name", user["last_name"] if user else "Payer"),
            payer_email=fields.pop("payer_email", user["email"] if user else "payer@example.com"),
            payment_type=fields.pop("payment_type", "stripe"),
            created_at=_take_date(fields, "created_at", now - DAY) or now - DAY,
            updated_at=_take_date(fields, "updated_at", None),
            course_id=fields.pop("course_id", None),
            user_id=int(uid) if uid is not None else None,
            currency=fields.pop("currency", "USD"),
        )
        records.append(_keep_extra(record, fields))
    if records:
        world.add_payments(records)
    for given in skills:
        fields = dict(given)
        sid = int(fields.pop("id", None) or world.next_id("skill"))
        record = skill_record(
            sid,
            display_name=fields.pop("display_name", fields.pop("name", f"Skill {sid}")),
            description=fields.pop("description", ""),
            competency_count=int(fields.pop("competency_count", 0)),
        )
        world.skills.put(sid, _keep_extra(record, fields))
    world.changed()
