"""The world: one SkyPrep account's data, its clock, and every change that can happen to it.

State lives in `Table`s of pre-serialised records (see table.py) plus a few indexes
(progresses by course and by user, group members, e-mails). Every change goes through a
method here, bumps `version` (the server's page caches key on it) and stamps
`updated_at` with the world clock, whether it comes from `advance`, an HTTP mutation or
`from_records`.
"""

from __future__ import annotations

import functools
import hashlib
import random
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import orjson

from skyprep_sandbox.errors import RecordNotFound
from skyprep_sandbox.formats import DAY, from_epoch, parse_any, to_epoch, ts_iso
from skyprep_sandbox.records import (
    course_record,
    days_until,
    progress_record,
    set_progress_date,
    user_group_record,
    user_record,
)
from skyprep_sandbox.scale import Scale, resolve_scale
from skyprep_sandbox.table import Table

#: Every generated world starts here, so everything is reproducible.
DEFAULT_START = datetime(2026, 11, 1, tzinfo=timezone.utc)

#: First id of each kind: realistic magnitudes, and distinct so ids are never confused.
FIRST_IDS = {
    "user": 590_100,
    "course": 50_600,
    "progress": 21_869_000,
    "payment": 1_200,
    "user_group": 1_800,
    "skill": 1_100,
    "competency": 30,
    "learning_path": 33_160,
    "ilt": 540,
    "timeslot": 5_550,
    "registration": 66_000,
    "material": 9_000,
    "user_role": 780,
    "dataset": 7_480,
    "saved_report": 14_166,
    "async_report": 1_234,
    "gamification": 5_678,
}


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Run a World method under the world's lock: a test may change the world while the
    server's threads read it."""

    @functools.wraps(method)
    def wrapper(self: World, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class World:
    """A SkyPrep account in memory. Build one with `World.generate` or `World.from_records`."""

    def __init__(self, now: datetime = DEFAULT_START, seed: int = 0) -> None:
        self.seed = seed
        self.scale: Scale | None = None
        self.now_ts = to_epoch(now)
        self.lock = threading.RLock()
        self.version = 0
        self.days_advanced = 0
        #: Whether `advance` makes random things happen (learners, hires, payments…), or
        #: only what time alone does (certificates expire, reports re-generate).
        self.random_life = True
        self._next = dict(FIRST_IDS)

        self.users = Table()  # meta: (status, email, role)
        self.user_by_email: dict[str, int] = {}
        self.courses = Table()  # meta: (name, active, days_until_expiration, item_ids)
        self.progresses = Table()  # meta: (course_id, user_id, status)
        self.progresses_by_course: dict[int, dict[int, None]] = {}
        self.progresses_by_user: dict[int, dict[int, None]] = {}
        self.payments = Table()  # newest first; meta: (status, payment_type, created_at)
        self.skills = Table()
        self.competencies = Table()
        self.competency_awards: dict[int, list[tuple[int, int]]] = {}
        self.user_groups = Table()
        self.group_members: dict[int, dict[int, None]] = {}
        self.learning_paths = Table()
        self.ilts = Table()
        self.timeslots = Table()  # meta: (ilt_id, start epoch)
        self.registrations = Table()  # meta: timeslot_id
        self.materials = Table()
        self.user_roles = Table()
        self.datasets = Table()
        self.power_users: dict[int, dict[str, Any]] = {}  # user id -> permissions
        self.manager_permissions: dict[tuple[int, int], dict[str, str]] = {}  # (group, user)
        self.saved_reports = Table()  # meta: report kind
        self.saved_report_csv: dict[int, bytes] = {}
        self.gamification_balances: dict[int, int] = {}
        self.skill_balances: dict[int, dict[int, int]] = {}
        self.program: dict[str, Any] = {
            "acct_key": "sandbox.skyprepapp.com",
            "name": "SkyPrep Sandbox Training Program",
        }
        self.login_keys: list[dict[str, Any]] = []
        self.course_otps: dict[int, list[str]] = {}
        self.async_reports: dict[int, dict[str, Any]] = {}

    # ----------------------------------------------------------------- building
    @classmethod
    def generate(
        cls, seed: int = 7, scale: str | Scale = "tiny", start: datetime = DEFAULT_START
    ) -> World:
        """A deterministic world: the same (seed, scale, start) always gives the same bytes.

        `start` is the world's clock when it is made; every generated date is relative to it.
        The demo starts the world today, so marts computed at the real load time (the as-of
        time) see deadlines and expirations as the world's learners do.
        """
        from skyprep_sandbox.generator import populate

        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        world = cls(start, seed=seed)
        world.scale = resolve_scale(scale)
        populate(world, world.scale)
        return world

    @classmethod
    def from_records(
        cls,
        now: datetime | str = DEFAULT_START,
        *,
        users: Iterable[dict[str, Any]] = (),
        courses: Iterable[dict[str, Any]] = (),
        course_progresses: Iterable[dict[str, Any]] = (),
        user_groups: Iterable[dict[str, Any]] = (),
        payments: Iterable[dict[str, Any]] = (),
        skills: Iterable[dict[str, Any]] = (),
        seed: int = 0,
        random_life: bool = False,
    ) -> World:
        """A small hand-made world for expected-output tests (see docs/sandbox.md).

        Give only the fields a test cares about; the rest get defaults. Dates may be
        datetimes or any API date string. `course_progresses` name `user_id` and
        `course_id`; `user_groups` may list `user_ids` (members) and `course_ids`.
        """
        from skyprep_sandbox.handmade import build_from_records

        start = datetime.fromisoformat(now.replace("Z", "+00:00")) if isinstance(now, str) else now
        world = cls(start, seed=seed)
        world.random_life = random_life
        build_from_records(
            world,
            users=list(users),
            courses=list(courses),
            course_progresses=list(course_progresses),
            user_groups=list(user_groups),
            payments=list(payments),
            skills=list(skills),
        )
        return world

    # ----------------------------------------------------------------- reading
    @property
    def now(self) -> datetime:
        """The world clock (aware, UTC)."""
        return from_epoch(self.now_ts)

    def records(self, route: str, **params: Any) -> list[dict[str, Any]]:
        """All records a list route answers (as dicts, exactly as served), with its filters."""
        # imported here: the routes are built over the world (they never import it back)
        from skyprep_sandbox.routes import list_route_items

        with self.lock:
            items = list_route_items(self, route, {k: str(v) for k, v in params.items()})
        return [orjson.loads(raw) for raw in items]

    def next_id(self, kind: str) -> int:
        """Allocate the next id of a kind."""
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def changed(self) -> None:
        """Note a change (invalidates the server's page caches)."""
        self.version += 1

    def user_id_for(self, user_id: Any = None, email: Any = None) -> int:
        """Resolve a user by id or e-mail (as routes accept either)."""
        if user_id not in (None, ""):
            uid = int(str(user_id).strip())
            if uid in self.users:
                return uid
        elif email not in (None, ""):
            uid_by_mail = self.user_by_email.get(str(email).strip().lower())
            if uid_by_mail is not None:
                return uid_by_mail
        raise RecordNotFound("user not found")

    def course_id_for(self, course_id: Any) -> int:
        """Resolve a course id."""
        try:
            cid = int(str(course_id).strip())
        except (TypeError, ValueError):
            raise RecordNotFound("course not found") from None
        if cid not in self.courses:
            raise RecordNotFound("course not found")
        return cid

    def progress_for(self, user_id: int, course_id: int) -> int | None:
        """The progress id of a user in a course, if enrolled."""
        for pid in self.progresses_by_course.get(course_id, {}):
            if self.progresses.meta[pid][1] == user_id:
                return pid
        return None

    # ----------------------------------------------------------------- users
    @_locked
    def add_user(
        self,
        *,
        email: str,
        first_name: str = "",
        last_name: str = "",
        created_at: int | None = None,
        user_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a user (fields as in `records.user_record`)."""
        email = email.strip()
        if email.lower() in self.user_by_email:
            raise ValueError(f"a user with email {email} already exists")
        uid = user_id if user_id is not None else self.next_id("user")
        self._next["user"] = max(self._next["user"], uid + 1)
        t = created_at if created_at is not None else self.now_ts
        if fields.get("updated_at") is None:
            fields["updated_at"] = t
        record = user_record(
            uid, first_name=first_name, last_name=last_name, email=email, created_at=t, **fields
        )
        self._put_user(uid, record)
        self.changed()
        return record

    def _put_user(self, uid: int, record: dict[str, Any]) -> None:
        self.users.put(uid, record, (record["status"], record["email"].lower(), record["role"]))
        self.user_by_email[record["email"].lower()] = uid

    @_locked
    def update_user(self, uid: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Change a user's fields (strings as the API accepts them); stamps updated_at."""
        record = self.users.get(uid)
        if record is None:
            raise RecordNotFound("user not found")
        old_email = record["email"].lower()
        for name, value in fields.items():
            if name in ("access_start_date", "access_end_date", "last_login_at"):
                record[name] = ts_iso(parse_any(value))
            elif name == "email":
                record["email"] = record["username"] = value
            elif (
                name in record and name not in ("id", "created_at", "updated_at", "username")
            ) or (name.startswith("ca_") and name[3:].isdigit()):
                record[name] = value
        record["updated_at"] = ts_iso(self.now_ts)
        del self.user_by_email[old_email]
        self._put_user(uid, record)
        if record["email"].lower() != old_email:
            for pid in self.progresses_by_user.get(uid, {}):
                self._update_progress(pid, lambda r: r.__setitem__("user_email", record["email"]))
        self.changed()
        return record

    @_locked
    def destroy_user(self, uid: int) -> None:
        """Delete a user with their enrollments, memberships and power-user permissions."""
        meta = self.users.meta.get(uid)
        if meta is None:
            raise RecordNotFound("user not found")
        for pid in list(self.progresses_by_user.get(uid, {})):
            self.destroy_progress(pid)
        for gid, members in self.group_members.items():
            if uid in members:
                self.remove_group_member(gid, uid)
        self.power_users.pop(uid, None)
        self.users.delete(uid)
        self.user_by_email.pop(meta[1], None)
        self.progresses_by_user.pop(uid, None)
        self.changed()

    # ----------------------------------------------------------------- courses
    @_locked
    def add_course(
        self,
        *,
        name: str,
        created_at: int | None = None,
        course_id: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create a course (fields as in `records.course_record`)."""
        cid = course_id if course_id is not None else self.next_id("course")
        self._next["course"] = max(self._next["course"], cid + 1)
        t = created_at if created_at is not None else self.now_ts
        record = course_record(cid, name=name, created_at=t, **fields)
        self._put_course(cid, record)
        self.progresses_by_course.setdefault(cid, {})
        self.changed()
        return record

    def _put_course(self, cid: int, record: dict[str, Any]) -> None:
        active = record["active"] in (True, "true")
        items = tuple(item["id"] for item in record["course_items"])
        self.courses.put(
            cid, record, (record["name"], active, record["days_until_expiration"], items)
        )

    @_locked
    def update_course(self, cid: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Change a course's name/description/active/…; renames reach its progresses."""
        record = self.courses.get(cid)
        if record is None:
            raise RecordNotFound("course not found")
        for name, value in fields.items():
            if name == "active":
                active = str(value).lower() in ("true", "1", "yes")
                record["active"] = ("true" if active else "false") if cid % 11 == 0 else active
            elif name == "days_until_expiration":
                record[name] = int(value) if value not in (None, "") else None
            elif name in record and name not in ("id", "created_at", "updated_at"):
                record[name] = value
        record["updated_at"] = ts_iso(self.now_ts)
        renamed = "name" in fields
        self._put_course(cid, record)
        if renamed:
            for pid in self.progresses_by_course.get(cid, {}):
                self._update_progress(pid, lambda r: r.__setitem__("course_name", record["name"]))
        self.changed()
        return record

    @_locked
    def destroy_course(self, cid: int) -> None:
        """Delete a course with its progresses; groups and learning paths forget it."""
        if cid not in self.courses:
            raise RecordNotFound("course not found")
        for pid in list(self.progresses_by_course.get(cid, {})):
            self.destroy_progress(pid)
        self.progresses_by_course.pop(cid, None)
        for gid in self.user_groups.ids():
            group = self.user_groups.get(gid)
            if group is not None and cid in group["course_ids"]:
                self.remove_group_course(gid, cid)
        self.courses.delete(cid)
        self.changed()

    # ----------------------------------------------------------------- progresses
    @_locked
    def enroll(
        self, uid: int, cid: int, *, created_at: int | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Enroll a user in a course (a new `not-started` progress unless given); idempotent."""
        existing = self.progress_for(uid, cid)
        if existing is not None:
            return self.progresses.get(existing) or {}
        user = self.users.meta.get(uid)
        course = self.courses.meta.get(cid)
        if user is None:
            raise RecordNotFound("user not found")
        if course is None:
            raise RecordNotFound("course not found")
        pid = fields.pop("progress_id", None) or self.next_id("progress")
        self._next["progress"] = max(self._next["progress"], pid + 1)
        t = created_at if created_at is not None else self.now_ts
        fields.setdefault("status", "not-started")
        user_email = self.users.get(uid)["email"]  # type: ignore[index]
        record = progress_record(
            pid,
            course_id=cid,
            course_name=course[0],
            user_id=uid,
            user_email=user_email,
            created_at=t,
            now=self.now_ts,
            **fields,
        )
        self._put_progress(pid, record)
        self.changed()
        return record

    @staticmethod
    def _progress_meta(record: dict[str, Any]) -> tuple[int, int, str, int | None]:
        """(course_id, user_id, status, expires_at): expires_at is set only while a
        certificate is still to expire, so the daily expiry sweep never decodes JSON."""
        expires_at = None
        if record["expiration_date"] is not None and not record["expired"]:
            expires_at = parse_any(record["expiration_date"])
        return (record["course_id"], record["user_id"], record["status"], expires_at)

    def _put_progress(self, pid: int, record: dict[str, Any], meta: Any = None) -> None:
        cid, uid = record["course_id"], record["user_id"]
        self.progresses.put(pid, record, meta or self._progress_meta(record))
        self.progresses_by_course.setdefault(cid, {})[pid] = None
        self.progresses_by_user.setdefault(uid, {})[pid] = None

    def _update_progress(self, pid: int, change: Any) -> dict[str, Any]:
        record = self.progresses.update(pid, change)
        self.progresses.meta[pid] = self._progress_meta(record)
        return record

    @_locked
    def set_progress_status(self, pid: int, status: str, at: int | None = None) -> dict[str, Any]:
        """Move a progress to a status with the dates a real account would record."""
        if pid not in self.progresses:
            raise RecordNotFound("course progress not found")
        t = at if at is not None else self.now_ts
        course = self.courses.meta.get(self.progresses.meta[pid][0])
        expiry_days = course[2] if course else None

        def change(r: dict[str, Any]) -> None:
            r["status"] = status
            if status != "not-started" and r["commencement_date"] is None:
                set_progress_date(r, "commencement_date", t)
                set_progress_date(r, "real_start_date", t)
            if status in ("passed", "failed"):
                set_progress_date(r, "completion_date", t)
                set_progress_date(r, "real_end_date", t)
                r["percent_viewed"] = 100 if status == "passed" else max(r["percent_viewed"], 60)
            if status == "passed":
                r["certificate_view_link"] = (
                    f"https://sandbox.skyprepapp.com/certificates/show?course_progress_id={pid}&f=pdf"
                )
                if expiry_days:
                    set_progress_date(r, "expiration_date", t + expiry_days * DAY)
                    r["expired"] = False
            else:
                r["certificate_view_link"] = None
            if status in ("not-started", "in-progress"):
                set_progress_date(r, "completion_date", None)
                set_progress_date(r, "real_end_date", None)
            if status == "not-started":
                r["percent_viewed"] = 0
            self._refresh_progress_clock(r, t)

        record = self._update_progress(pid, change)
        self.changed()
        return record

    def _refresh_progress_clock(self, r: dict[str, Any], t: int) -> None:
        """Recompute the now-relative fields of a progress being written at time t."""
        deadline = parse_any(r["deadline_date"])
        r["days_until_deadline"] = days_until(deadline, t)
        expiration = parse_any(r["expiration_date"])
        r["expired"] = expiration is not None and expiration <= t
        r["updated_at"] = ts_iso(t)

    @_locked
    def touch_progress(self, pid: int, change: Any, at: int | None = None) -> dict[str, Any]:
        """Apply `change(record)` to a progress and stamp it as written at `at`."""
        t = at if at is not None else self.now_ts

        def wrapped(r: dict[str, Any]) -> None:
            change(r)
            self._refresh_progress_clock(r, t)

        record = self._update_progress(pid, wrapped)
        self.changed()
        return record

    @_locked
    def destroy_progress(self, pid: int) -> None:
        """Delete one progress."""
        meta = self.progresses.meta.get(pid)
        if meta is None:
            raise RecordNotFound("course progress not found")
        cid, uid = meta[0], meta[1]
        self.progresses.delete(pid)
        self.progresses_by_course.get(cid, {}).pop(pid, None)
        self.progresses_by_user.get(uid, {}).pop(pid, None)
        self.changed()

    # ----------------------------------------------------------------- groups
    @_locked
    def add_user_group(
        self,
        *,
        name: str,
        course_ids: Iterable[int] = (),
        user_ids: Iterable[int] = (),
        description: str = "",
        created_at: int | None = None,
        group_id: int | None = None,
        enroll_members: bool = True,
    ) -> dict[str, Any]:
        """Create a group; members are enrolled in its courses (as SkyPrep does)."""
        gid = group_id if group_id is not None else self.next_id("user_group")
        self._next["user_group"] = max(self._next["user_group"], gid + 1)
        t = created_at if created_at is not None else self.now_ts
        courses = [c for c in dict.fromkeys(course_ids) if c in self.courses]
        members = [u for u in dict.fromkeys(user_ids) if u in self.users]
        record = user_group_record(
            gid,
            name=name,
            description=description,
            created_at=t,
            user_count=len(members),
            course_ids=courses,
        )
        self.user_groups.put(gid, record)
        self.group_members[gid] = dict.fromkeys(members)
        if enroll_members:
            for uid in members:
                for cid in courses:
                    self.enroll(uid, cid, created_at=t)
        self.changed()
        return record

    def _touch_group(self, gid: int, change: Any) -> dict[str, Any]:
        if gid not in self.user_groups:
            raise RecordNotFound("user group not found")

        def wrapped(r: dict[str, Any]) -> None:
            change(r)
            r["user_count"] = len(self.group_members.get(gid, {}))
            r["updated_at"] = ts_iso(self.now_ts)

        record = self.user_groups.update(gid, wrapped)
        self.changed()
        return record

    @_locked
    def update_user_group(self, gid: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Rename or re-describe a group."""

        def change(r: dict[str, Any]) -> None:
            for name in ("name", "description"):
                if name in fields:
                    r[name] = fields[name]

        return self._touch_group(gid, change)

    @_locked
    def destroy_user_group(self, gid: int) -> None:
        """Delete a group (members keep their enrollments, as in SkyPrep)."""
        if not self.user_groups.delete(gid):
            raise RecordNotFound("user group not found")
        self.group_members.pop(gid, None)
        self.changed()

    @_locked
    def add_group_member(self, gid: int, uid: int) -> None:
        """Add a user to a group and enroll them in its courses."""
        if gid not in self.user_groups:
            raise RecordNotFound("user group not found")
        if uid not in self.users:
            raise RecordNotFound("user not found")
        self.group_members.setdefault(gid, {})[uid] = None
        record = self._touch_group(gid, lambda r: None)
        for cid in record["course_ids"]:
            self.enroll(uid, cid)

    @_locked
    def remove_group_member(self, gid: int, uid: int) -> None:
        """Remove a user from a group (their progresses stay)."""
        self.group_members.get(gid, {}).pop(uid, None)
        self._touch_group(gid, lambda r: None)

    @_locked
    def add_group_course(self, gid: int, cid: int) -> None:
        """Give a group a course: its members are enrolled."""
        self.course_id_for(cid)

        def change(r: dict[str, Any]) -> None:
            if cid not in r["course_ids"]:
                r["course_ids"].append(cid)

        self._touch_group(gid, change)
        for uid in self.group_members.get(gid, {}):
            self.enroll(uid, cid)

    @_locked
    def remove_group_course(self, gid: int, cid: int) -> None:
        """Take a course from a group."""

        def change(r: dict[str, Any]) -> None:
            if cid in r["course_ids"]:
                r["course_ids"].remove(cid)

        self._touch_group(gid, change)

    # ----------------------------------------------------------------- payments
    @_locked
    def add_payment(self, record: dict[str, Any]) -> None:
        """Add a payment at the head of the newest-first list."""
        created = parse_any(record["created_at"]) or self.now_ts
        meta = (record["status"], record["payment_type"], created)
        self.payments.put_front([(record["id"], record, meta)])
        self.changed()

    @_locked
    def add_payments(self, records: list[dict[str, Any]]) -> None:
        """Add several payments (any order): the list stays newest first."""
        items = []
        for record in records:
            created = parse_any(record["created_at"]) or self.now_ts
            items.append(
                (record["id"], record, (record["status"], record["payment_type"], created))
            )
        items.sort(key=lambda item: (-item[2][2], -item[0]))
        self.payments.put_front(items)
        self.changed()

    @_locked
    def set_payment_status(self, payment_id: int, status: str, at: int | None = None) -> None:
        """Move a payment to another status (pending -> complete, complete -> refunded…)."""
        t = at if at is not None else self.now_ts

        def change(r: dict[str, Any]) -> None:
            r["status"] = status
            r["updated_at"] = ts_iso(t)
            r["latest_ipn_data"] = (
                f"payment_status={status}&txn_id={r['transaction_number']}&mc_gross={r['amount']}"
            )

        self.payments.update(payment_id, change)
        _old, ptype, created = self.payments.meta[payment_id]
        self.payments.meta[payment_id] = (status, ptype, created)
        self.changed()

    # ----------------------------------------------------------------- time
    def advance(self, days: int = 1) -> None:
        """Let `days` whole days pass: learners progress, users and enrollments come and go,
        payments arrive and settle, reports re-generate. Deterministic per (seed, history)."""
        from skyprep_sandbox.timeline import live_one_day

        if days < 0:
            raise ValueError("time only moves forward")
        with self.lock:
            for _ in range(int(days)):
                rng = random.Random(f"{self.seed}/day/{self.days_advanced}")
                day_start = self.now_ts
                live_one_day(self, rng, day_start)
                self.now_ts = day_start + DAY
                self.days_advanced += 1
                self.changed()

    def fingerprint(self) -> str:
        """A digest of everything the API serves (determinism checks)."""
        digest = hashlib.sha256()
        digest.update(str(self.now_ts).encode())
        for table in (
            self.users,
            self.courses,
            self.progresses,
            self.payments,
            self.skills,
            self.competencies,
            self.user_groups,
            self.learning_paths,
            self.ilts,
            self.timeslots,
            self.registrations,
            self.materials,
            self.saved_reports,
        ):
            for raw in table.serialized():
                digest.update(raw)
        for rid in sorted(self.saved_report_csv):
            digest.update(self.saved_report_csv[rid])
        for gid in sorted(self.group_members):
            digest.update(orjson.dumps(list(self.group_members[gid])))
        return digest.hexdigest()
