"""Mutating routes change the world over HTTP (so tests can stage upstream changes)."""

from __future__ import annotations

from collections.abc import Callable

import requests

from skyprep_sandbox import Sandbox

Api = Callable[..., requests.Response]


def test_create_update_and_destroy_a_user(sandbox: Sandbox, api: Api) -> None:
    created = api(
        "create_user",
        email="james.doakes@example.com",
        first_name="James",
        last_name="Doakes",
        role="manager",
        ca_0="Alias: Bay Harbour Butcher",
    ).json()
    assert created["username"] == "james.doakes@example.com" and created["role"] == "manager"
    listed = [u for u in api("get_users").json() if u["email"] == "james.doakes@example.com"]
    assert listed and listed[0]["ca_0"] == "Alias: Bay Harbour Butcher"

    sandbox.world.advance(days=1)
    api(
        "update_user",
        user_email="james.doakes@example.com",
        title="Detective",
        access_end_date="July 30, 2027",
    )
    user = api("get_user", user_email="james.doakes@example.com").json()
    assert user["title"] == "Detective" and user["access_end_date"] == "2027-07-30T00:00:00.000Z"
    assert user["updated_at"] > created["updated_at"]

    assert api("destroy_user", user_email="james.doakes@example.com").json() == {
        "message": "success"
    }
    assert "james.doakes@example.com" not in {u["email"] for u in api("get_users").json()}


def test_creating_a_user_twice_is_refused(sandbox: Sandbox, api: Api) -> None:
    email = sandbox.world.records("get_users")[0]["email"]
    response = api("create_user", email=email)
    assert response.status_code == 400 and "error" in response.json()


def test_destroying_a_user_removes_their_progresses(sandbox: Sandbox, api: Api) -> None:
    progress = api("get_course_progresses").json()[0]
    api("destroy_user", user_id=progress["user_id"])
    remaining = api("get_course_progresses").json()
    assert all(p["user_id"] != progress["user_id"] for p in remaining)


def test_create_update_and_destroy_a_course(sandbox: Sandbox, api: Api) -> None:
    created = api("create_course", name="Pratice to Perfect", active="true").json()
    assert isinstance(created["id"], str) and created["id"].isdigit()  # as the reference shows
    api("update_course", course_id=created["id"], name="Practice to Perfect", active="false")
    course = api("get_course", course_id=created["id"]).json()
    assert course["name"] == "Practice to Perfect" and str(course["active"]).lower() == "false"
    api("destroy_course", course_id=created["id"])
    assert api("get_course", course_id=created["id"]).status_code == 404


def test_enroll_update_and_remove_a_course_progress(sandbox: Sandbox, api: Api) -> None:
    email = api("create_user", email="new.hire@example.com").json()["email"]
    course_id = sandbox.world.courses.ids()[0]
    api("enroll_user_in_course", user_email=email, course_id=course_id)
    (progress,) = [
        p
        for p in api("get_course_progresses", course_id=course_id).json()
        if p["user_email"] == email
    ]
    assert progress["status"] == "not-started"
    assert api("get_user_course_status", user_email=email, course_id=course_id).json() == {
        "status": "not-started"
    }

    api("update_course_progress", course_progress_id=progress["id"], set_status="passed")
    passed = api("get_course_progress", course_progress_id=progress["id"]).json()
    assert (
        passed["status"] == "passed"
        and passed["completion_date"]
        and passed["percent_viewed"] == 100
    )

    api("remove_user_from_course", user_email=email, course_id=course_id)
    assert api("get_course_progress", course_progress_id=progress["id"]).status_code == 404


def test_update_course_progress_refuses_an_unknown_status(sandbox: Sandbox, api: Api) -> None:
    pid = sandbox.world.progresses.ids()[0]
    response = api("update_course_progress", course_progress_id=pid, set_status="done")
    assert response.status_code == 400


def test_destroy_course_progress(sandbox: Sandbox, api: Api) -> None:
    pid = sandbox.world.progresses.ids()[0]
    api("destroy_course_progress", course_progress_id=pid)
    assert pid not in {p["id"] for p in api("get_course_progresses").json()}


def test_user_groups_can_be_created_joined_left_and_destroyed(sandbox: Sandbox, api: Api) -> None:
    world = sandbox.world
    user_ids = world.users.ids()[:2]
    course_id = world.courses.ids()[1]
    created = api(
        "create_user_group", name="Sales Team", user_ids=f"{user_ids[0]}", course_ids=f"{course_id}"
    ).json()
    gid = int(created["id"])
    assert api("get_user_group", user_group_id=gid).json()["user_count"] == 1
    api("enroll_user_in_user_group", user_group_id=gid, user_id=user_ids[1])
    group = api("get_user_group", user_group_id=gid).json()
    assert {str(u["id"]) for u in group["users"]} == {str(u) for u in user_ids}
    # Joining a group enrolls the member in its courses.
    assert (
        api("get_user_course_status", user_id=user_ids[1], course_id=course_id).json()["status"]
        != "not-enrolled"
    )
    api("remove_user_from_user_group", user_group_id=gid, user_id=user_ids[0])
    assert api("get_user_group", user_group_id=gid).json()["user_count"] == 1
    api("destroy_user_group", user_group_id=gid)
    assert api("get_user_group", user_group_id=gid).status_code == 404


def test_get_login_key_creates_the_user_and_is_logged_as_mutating(
    sandbox: Sandbox, api: Api
) -> None:
    answer = api(
        "get_login_key",
        user_email="sso.user@example.com",
        autocreate="true",
        user_groups="Forensics Lab",
    ).json()
    assert answer["login_key"] and "login_key=" in answer["url"]
    assert "sso.user@example.com" in {u["email"] for u in api("get_users").json()}
    assert "Forensics Lab" in {g["name"] for g in api("get_user_groups").json()}
    assert sandbox.world.login_keys[-1]["email"] == "sso.user@example.com"
    assert sandbox.stats()["mutating_calls"] == 1


def test_get_course_otp_mints_one_time_keys(sandbox: Sandbox, api: Api) -> None:
    course_id = sandbox.world.courses.ids()[0]
    keys = api("get_course_otp", course_id=course_id, count=2).json()
    again = api("get_course_otp", course_id=course_id, count=1).json()
    assert len(keys) == 2 and len(set(keys + again)) == 3
    assert sandbox.world.course_otps[course_id] == keys + again


def test_learning_path_and_timeslot_mutations(sandbox: Sandbox, api: Api) -> None:
    path = api("create_learning_path", name="Management 101", course_ids="1,2").json()
    api("update_learning_path", learning_path_id=path["id"], name="Management 102")
    assert api("get_learning_path", learning_path_id=path["id"]).json()["name"] == "Management 102"
    api("destroy_learning_path", learning_path_id=path["id"])
    assert api("get_learning_path", learning_path_id=path["id"]).status_code == 404

    ilt_id = sandbox.world.ilts.ids()[0]
    slot = api(
        "create_instructor_led_training_timeslot", instructor_led_training_id=ilt_id, capacity="555"
    ).json()
    user_id = sandbox.world.users.ids()[0]
    registration = api(
        "create_instructor_led_training_timeslot_registrations",
        instructor_led_training_timeslot_id=slot["id"],
        user_id=user_id,
        status="attended",
    ).json()
    listed = api(
        "get_instructor_led_training_timeslot_registrations",
        instructor_led_training_timeslot_id=slot["id"],
    ).json()
    assert [r["id"] for r in listed] == [int(registration["id"])]


def test_gamification_and_skill_transactions_move_balances(sandbox: Sandbox, api: Api) -> None:
    user_id = sandbox.world.users.ids()[3]
    before = api("get_user_gamification_balance", user_id=user_id).json()["gamification_balance"]
    api("create_gamification_transaction", user_id=user_id, amount=-200, description="spent")
    after = api("get_user_gamification_balance", user_id=user_id).json()["gamification_balance"]
    assert after == before - 200
    skill_id = sandbox.world.skills.ids()[0]
    balances = api(
        "create_skill_transaction", user_id=user_id, skill_id=skill_id, amount=200
    ).json()
    assert any(b["skill_id"] == skill_id and b["balance"] >= 200 for b in balances)


def test_manager_permissions_round_trip(sandbox: Sandbox, api: Api) -> None:
    gid = sandbox.world.user_groups.ids()[0]
    uid = sandbox.world.users.ids()[0]
    assigned = api(
        "assign_manager_to_user_group",
        user_id=uid,
        user_group_id=gid,
        can_add_courses_to_user_group="0",
    ).json()
    assert (
        assigned["can_add_courses_to_user_group"] == "false" and assigned["can_add_users"] == "true"
    )
    fetched = api("get_manager_permissions_from_user_group", user_id=uid, user_group_id=gid).json()
    assert fetched == assigned
    api("remove_manager_from_user_group", user_id=uid, user_group_id=gid)
    assert (
        api("get_manager_permissions_from_user_group", user_id=uid, user_group_id=gid).status_code
        == 404
    )
