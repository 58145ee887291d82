"""The generated world: deterministic, shaped like the reference, and alive over time."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from skyprep_sandbox import Scale, World
from skyprep_sandbox.formats import parse_any

TS_EN = re.compile(r"^[A-Z][a-z]+ \d{1,2} \d{4} \d{2}:\d{2}:\d{2}$")
TS_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z$")
#: The reference's get_course_progresses sample, key for key.
PROGRESS_SAMPLE_KEYS = {
    "id", "status", "days_until_deadline", "created_at", "updated_at", "skip_prerequisites",
    "course_id", "course_name", "user_id", "user_email", "commencement_date", "completion_date",
    "last_course_item_id", "percent_viewed", "expiration_date", "expired", "access_date",
    "deadline_date", "override_dates", "real_end_date", "real_start_date",
    "certificate_view_link", "computed_deadline_date", "formatted_commencement_date",
    "formatted_completion_date", "formatted_expiration_date", "formatted_access_date",
    "formatted_deadline_date", "formatted_real_end_date", "formatted_real_start_date",
    "formatted_computed_deadline_date",
}  # fmt: skip


def test_same_seed_and_scale_give_the_same_world() -> None:
    assert (
        World.generate(seed=7, scale="tiny").fingerprint()
        == World.generate(seed=7, scale="tiny").fingerprint()
    )


def test_another_seed_gives_another_world() -> None:
    assert (
        World.generate(seed=7, scale="tiny").fingerprint()
        != World.generate(seed=8, scale="tiny").fingerprint()
    )


def test_world_starts_at_the_fixed_clock(tiny_world: World) -> None:
    assert tiny_world.now == datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_a_world_started_later_dates_its_records_relative_to_its_start() -> None:
    start = datetime(2031, 3, 9, tzinfo=timezone.utc)
    shifted = World.generate(seed=7, scale="tiny", start=start)
    default = World.generate(seed=7, scale="tiny")
    assert shifted.now == start
    assert World.generate(seed=7, scale="tiny", start=start).records("get_users") == (
        shifted.records("get_users")
    )
    shift = start - default.now
    for moved, original in zip(
        shifted.records("get_course_progresses"),
        default.records("get_course_progresses"),
        strict=True,
    ):
        moved_by = parse_any(moved["created_at"]) - parse_any(original["created_at"])
        assert moved_by == shift.total_seconds()


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        World.generate(seed=7, scale="tiny", start=datetime(2031, 3, 9))


def test_tiny_scale_has_about_thirty_users_and_five_courses(tiny_world: World) -> None:
    assert len(tiny_world.records("get_users")) == 30
    assert len(tiny_world.records("get_courses")) == 5
    assert len(tiny_world.records("get_course_progresses")) > 30


def test_users_have_roles_custom_attributes_and_reference_dates(tiny_world: World) -> None:
    users = tiny_world.records("get_users")
    assert {u["role"] for u in users} >= {"learner"}
    assert {"ca_0", "ca_1", "ca_2", "ca_3", "ca_4"} <= set(users[0])
    assert all(TS_EN.match(u["created_at"]) for u in users)
    assert all(TS_ISO.match(u["updated_at"]) for u in users)
    assert any(isinstance(u["id"], str) and u["id"].isdigit() for u in users)
    assert any(isinstance(u["id"], int) for u in users)


def test_courses_have_items_and_tags(tiny_world: World) -> None:
    courses = tiny_world.records("get_courses")
    assert all({"id", "name", "active", "tags", "course_items"} <= set(c) for c in courses)
    assert all(isinstance(c["course_items"], list) and c["course_items"] for c in courses)


@pytest.fixture(scope="module")
def demo_world() -> World:
    """One demo world for the read-only checks of this module."""
    return World.generate(seed=7, scale="demo")


def test_demo_world_has_inactive_courses_string_flags_and_every_status(demo_world: World) -> None:
    world = demo_world
    courses = world.records("get_courses")
    assert {str(c["active"]).lower() for c in courses} == {"true", "false"}
    assert any(isinstance(c["active"], str) for c in courses)
    statuses = Counter(p["status"] for p in world.records("get_course_progresses"))
    assert set(statuses) == {"passed", "failed", "in-progress", "not-started", "not-applicable"}
    assert 1_000 <= len(world.users) <= 5_000


def test_progresses_have_the_reference_fields_and_overdue_and_expired_cases(
    demo_world: World,
) -> None:
    world = demo_world
    progresses = world.records("get_course_progresses")
    assert set(progresses[0]) == PROGRESS_SAMPLE_KEYS
    now = world.now_ts
    overdue = [
        p for p in progresses
        if p["status"] != "passed" and p["deadline_date"] and parse_any(p["deadline_date"]) < now
    ]  # fmt: skip
    assert overdue and all(p["days_until_deadline"] < 0 for p in overdue)
    assert any(p["expired"] for p in progresses)
    assert all(p["percent_viewed"] == 100 for p in progresses if p["status"] == "passed")
    passed = [p for p in progresses if p["status"] == "passed"]
    assert all(p["completion_date"] and p["formatted_completion_date"] for p in passed)


def test_payments_are_newest_first_with_string_amounts(tiny_world: World) -> None:
    payments = tiny_world.records("get_payments")
    created = [parse_any(p["created_at"]) for p in payments]
    assert created == sorted(created, reverse=True)
    assert all(isinstance(p["amount"], str) and float(p["amount"]) > 0 for p in payments)
    assert {p["payment_type"] for p in payments} <= {"paypal", "stripe"}


def test_competencies_nest_skills_with_points(tiny_world: World) -> None:
    competencies = tiny_world.records("get_competencies")
    assert competencies and all(c["skills"] for c in competencies)
    assert all("points" in s and "competency_count" in s for c in competencies for s in c["skills"])


def test_advance_moves_the_clock_by_whole_days(tiny_world: World) -> None:
    start = tiny_world.now
    tiny_world.advance(days=3)
    assert tiny_world.now == start + timedelta(days=3)


def test_advance_changes_records_and_stamps_updated_at_inside_the_window(tiny_world: World) -> None:
    before = {p["id"]: p for p in tiny_world.records("get_course_progresses")}
    users_before = {str(u["id"]) for u in tiny_world.records("get_users")}
    start = tiny_world.now_ts
    tiny_world.advance(days=7)
    after = {p["id"]: p for p in tiny_world.records("get_course_progresses")}
    changed = [p for pid, p in after.items() if pid in before and p != before[pid]]
    assert changed, "a week passes without any learner progressing"
    assert all(start < parse_any(p["updated_at"]) <= tiny_world.now_ts for p in changed)
    assert set(after) - set(before), "nobody enrolled in a week"
    assert {str(u["id"]) for u in tiny_world.records("get_users")} - users_before, "nobody hired"
    assert any(before[pid]["status"] != p["status"] for pid, p in after.items() if pid in before)


def test_advance_is_deterministic() -> None:
    one, two = World.generate(seed=3, scale="tiny"), World.generate(seed=3, scale="tiny")
    one.advance(days=5)
    two.advance(days=2)
    two.advance(days=3)
    assert one.fingerprint() == two.fingerprint()


def test_advance_regenerates_the_daily_saved_report(tiny_world: World) -> None:
    before = {
        r["id"]: r["updated_at_int"] for r in tiny_world.records("get_saved_advanced_reports")
    }
    tiny_world.advance(days=1)
    after = {r["id"]: r["updated_at_int"] for r in tiny_world.records("get_saved_advanced_reports")}
    assert any(after[rid] > before[rid] for rid in before)


def test_advance_settles_pending_payments_and_adds_new_ones(tiny_world: World) -> None:
    before = {p["id"]: p["status"] for p in tiny_world.records("get_payments")}
    tiny_world.advance(days=10)
    after = {p["id"]: p["status"] for p in tiny_world.records("get_payments")}
    assert set(after) - set(before)
    window = tiny_world.records("get_payments", created_after_days_ago=10)
    assert {p["id"] for p in window} >= set(after) - set(before)


def test_passed_certificates_expire_when_their_date_comes() -> None:
    world = World.from_records(
        now=datetime(2026, 1, 1, tzinfo=timezone.utc),
        users=[{"id": 1, "email": "a@example.com"}],
        courses=[{"id": 10, "name": "Fire Warden", "days_until_expiration": 365}],
        course_progresses=[
            {"id": 100, "user_id": 1, "course_id": 10, "status": "passed",
             "completion_date": "2025-01-01T12:00:00.000Z", "expiration_date": "2026-01-01T12:00:00.000Z"}
        ],
    )  # fmt: skip
    assert world.records("get_course_progresses")[0]["expired"] is False
    world.advance(days=1)
    progress = next(p for p in world.records("get_course_progresses") if p["id"] == 100)
    assert progress["expired"] is True
    assert parse_any(progress["updated_at"]) > parse_any("2026-01-01T00:00:00Z")


def test_from_records_fills_defaults_and_keeps_extra_fields() -> None:
    world = World.from_records(
        now="2026-03-01T00:00:00Z",
        users=[{"id": 1, "email": "ann@example.com", "ca_0": "Sales", "favourite": "tea"}],
        courses=[{"id": 10, "name": "Safety"}],
        course_progresses=[{"user_id": 1, "course_id": 10, "status": "failed"}],
        user_groups=[{"id": 5, "name": "Sales", "user_ids": [1], "course_ids": [10]}],
        payments=[{"id": 9, "amount": "10.00", "user_id": 1}],
    )
    (user,) = world.records("get_users")
    assert user["email"] == user["username"] == "ann@example.com"
    assert user["ca_0"] == "Sales" and user["favourite"] == "tea"
    assert TS_EN.match(user["created_at"])
    (progress,) = world.records("get_course_progresses")
    assert progress["course_name"] == "Safety" and progress["user_email"] == "ann@example.com"
    assert set(progress) == PROGRESS_SAMPLE_KEYS
    (group,) = world.records("get_user_groups")
    assert group["user_count"] == 1 and group["course_ids"] == [10]
    (payment,) = world.records("get_payments")
    assert payment["payer_email"] == "ann@example.com" and payment["amount"] == "10.00"


def test_unknown_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        World.generate(seed=1, scale="huge")


def test_a_month_of_life_in_a_mid_size_world_runs_and_keeps_indexes_consistent() -> None:
    scale = Scale(
        name="mid", users=400, courses=12, enrollments_per_user=4, user_groups=8, payments=200,
        skills=5, competencies=3, learning_paths=2, instructor_led_trainings=2, materials=5,
        report_rows=100,
    )  # fmt: skip
    world = World.generate(seed=5, scale=scale)
    world.advance(days=30)
    progresses = world.records("get_course_progresses")
    user_ids = {int(u["id"]) for u in world.records("get_users")}
    assert {p["user_id"] for p in progresses} <= user_ids
    assert len(progresses) == sum(len(ids) for ids in world.progresses_by_course.values())
    assert all(world.progresses.meta[p["id"]][2] == p["status"] for p in progresses)
    pairs = Counter((p["user_id"], p["course_id"]) for p in progresses)
    assert max(pairs.values()) == 1


def test_advance_changes_group_membership_and_user_statuses() -> None:
    world = World.generate(seed=7, scale="demo")
    members = {gid: set(m) for gid, m in world.group_members.items()}
    statuses = {uid: meta[0] for uid, meta in world.users.meta.items()}
    world.advance(days=5)
    assert any(set(world.group_members[gid]) != m for gid, m in members.items())
    assert any(
        world.users.meta[uid][0] != status for uid, status in statuses.items() if uid in world.users
    )


def test_payments_change_status_only_within_seven_days_of_being_made() -> None:
    world = World.generate(seed=7, scale="demo")
    before = {p["id"]: p["status"] for p in world.records("get_payments")}
    world.advance(days=12)
    changed = [
        p
        for p in world.records("get_payments")
        if p["id"] in before and p["status"] != before[p["id"]]
    ]
    settled_later = [
        p
        for p in world.records("get_payments")
        if p["id"] not in before and p["status"] != "pending"
    ]
    assert changed and settled_later
    for payment in changed + settled_later:
        age = parse_any(payment["updated_at"]) - parse_any(payment["created_at"])  # type: ignore[operator]
        assert age <= 7 * 86_400, payment
