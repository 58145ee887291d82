"""The sandbox over real HTTP: routes and shapes, auth, paging, filters, determinism."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from skyprep_sandbox import Sandbox, World
from skyprep_sandbox.formats import parse_any

Api = Callable[..., requests.Response]


def first_id(world: World, route: str) -> int:
    return int(world.records(route)[0]["id"])


def read_calls(world: World) -> dict[str, dict[str, Any]]:
    """Every read route of the reference with parameters that exist in this world."""
    user = world.records("get_users")[0]
    group_id = first_id(world, "get_user_groups")
    timeslot_id = first_id(world, "get_instructor_led_training_timeslots")
    return {
        "test_connection": {},
        "get_users": {},
        "get_user": {"user_id": user["id"]},
        "get_user_courses": {"user_email": user["email"]},
        "get_power_users": {},
        "get_user_roles": {},
        "get_datasets": {},
        "get_courses": {},
        "get_course": {"course_id": first_id(world, "get_courses")},
        "get_user_course_status": {
            "user_id": user["id"],
            "course_id": first_id(world, "get_courses"),
        },
        "get_user_groups": {},
        "get_user_group": {"user_group_id": group_id},
        "get_user_group_enrollments_for_user": {"user_id": user["id"]},
        "get_learning_paths": {},
        "get_learning_path": {"learning_path_id": first_id(world, "get_learning_paths")},
        "get_instructor_led_trainings": {},
        "get_instructor_led_training": {
            "instructor_led_training_id": first_id(world, "get_instructor_led_trainings")
        },
        "get_instructor_led_training_timeslots": {},
        "get_instructor_led_training_timeslot": {
            "instructor_led_training_timeslot_id": timeslot_id
        },
        "get_instructor_led_training_timeslot_registrations": {
            "instructor_led_training_timeslot_id": timeslot_id
        },
        "get_course_progresses": {"course_id": first_id(world, "get_courses")},
        "get_course_progress": {"course_progress_id": first_id(world, "get_course_progresses")},
        "get_course_item_progress": {
            "user_id": user["id"],
            "course_id": first_id(world, "get_courses"),
        },
        "get_saved_advanced_reports": {},
        "get_user_gamification_balance": {"email": user["email"]},
        "get_skills": {},
        "get_skill": {"skill_id": first_id(world, "get_skills")},
        "get_user_skill_balances_and_competencies": {"email": user["email"]},
        "get_competencies": {},
        "get_competency": {"competency_id": first_id(world, "get_competencies")},
        "get_program": {},
        "get_data": {"data_type": "learner_count"},
        "get_materials": {},
        "get_payments": {},
    }


def test_every_read_route_answers_json(sandbox: Sandbox, api: Api) -> None:
    for route, params in read_calls(sandbox.world).items():
        response = api(route, **params)
        assert response.status_code == 200, (route, response.text[:200])
        assert response.headers["Content-Type"].startswith("application/json"), route
        response.json()


def test_list_routes_answer_bare_arrays(sandbox: Sandbox, api: Api) -> None:
    for route in (
        "get_users",
        "get_courses",
        "get_materials",
        "get_learning_paths",
        "get_datasets",
    ):
        body = api(route).json()
        assert isinstance(body, list) and body and isinstance(body[0], dict), route


def test_shapes_follow_the_reference_samples(sandbox: Sandbox, api: Api) -> None:
    assert api("test_connection").json() == {"message": "success"}
    data = api("get_data", data_type="course_count").json()
    assert data == {"data": str(len(sandbox.world.courses))}
    group_id = first_id(sandbox.world, "get_user_groups")
    group = api("get_user_group", user_group_id=group_id).json()
    assert group["name"] and isinstance(group["users"], list)
    assert len(group["users"]) == group["user_count"]
    skill = api("get_skill", skill_id=first_id(sandbox.world, "get_skills")).json()
    assert {"course_count", "leaderboard", "users_acquired_count"} <= set(skill["details"])
    competency = api(
        "get_competency", competency_id=first_id(sandbox.world, "get_competencies")
    ).json()
    assert {"award_count", "skill_count", "activity_awards"} <= set(competency["details"])
    power_users = api("get_power_users").json()
    assert power_users and all(
        u["role"] == "power_user" and "permissions" in u for u in power_users
    )
    balances = api(
        "get_user_skill_balances_and_competencies", user_id=sandbox.world.users.ids()[0]
    ).json()
    assert {"user_email", "user_id", "skill_balances", "competencies_achived"} <= set(balances)
    program = api("get_program").json()
    assert program["acct_key"] and program["name"]
    user = api("get_users").json()[0]
    assert {"id", "first_name", "last_name", "username", "card_no", "created_at"} <= set(user)
    payment = api("get_payments").json()[0]
    assert {
        "id", "model_type", "status", "transaction_number", "amount", "first_name", "last_name",
        "payer_email", "latest_ipn_data", "payment_type",
    } <= set(payment)  # fmt: skip
    assert set(api("get_user_roles").json()[0]) == {"id", "name"}
    assert set(api("get_datasets").json()[0]) == {"id", "name"}
    slot = api("get_instructor_led_training_timeslots").json()[0]
    assert {"description", "location", "instructor"} <= set(slot)


def test_get_method_with_query_parameters_works_too(sandbox: Sandbox) -> None:
    response = requests.get(
        f"{sandbox.base_url}/get_courses",
        params={"per_page": 2},
        headers={"X-SkyPrep-API-Key": sandbox.api_key, "X-SkyPrep-Acct-Key": sandbox.acct_key},
        timeout=10,
    )
    assert response.status_code == 200 and len(response.json()) == 2


def test_json_body_is_accepted(sandbox: Sandbox) -> None:
    body = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key, "per_page": 3}
    response = requests.post(f"{sandbox.base_url}/get_users", json=body, timeout=10)
    assert len(response.json()) == 3


# ----------------------------------------------------------------------------- auth
@pytest.mark.parametrize("where", ["body", "header", "query"])
def test_credentials_are_accepted_in_body_header_or_query(sandbox: Sandbox, where: str) -> None:
    creds = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key}
    url = f"{sandbox.base_url}/get_skills"
    if where == "body":
        response = requests.post(url, data=creds, timeout=10)
    elif where == "header":
        headers = {"X-SkyPrep-API-Key": sandbox.api_key, "X-SkyPrep-Acct-Key": sandbox.acct_key}
        response = requests.post(url, headers=headers, timeout=10)
    else:
        response = requests.get(url, params=creds, timeout=10)
    assert response.status_code == 200 and isinstance(response.json(), list)
    assert sandbox.request_log[-1]["key_source"] == where


@pytest.mark.parametrize(
    "creds",
    [
        {"api_key": "wrong", "acct_key": "sandbox.skyprepapp.com"},
        {"api_key": "sandbox-api-key", "acct_key": "other.skyprepapp.com"},
        {"acct_key": "sandbox.skyprepapp.com"},
    ],
)
def test_wrong_key_or_account_answers_the_html_sign_in_page_with_200(
    sandbox: Sandbox, creds: dict[str, str]
) -> None:
    response = requests.post(f"{sandbox.base_url}/get_users", data=creds, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text and "Sign In" in response.text
    assert sandbox.stats()["auth_failures"] == 1


def test_request_log_never_holds_the_secrets(sandbox: Sandbox, api: Api) -> None:
    api("get_users", per_page=5)
    requests.get(
        f"{sandbox.base_url}/get_users",
        params={"api_key": sandbox.api_key, "acct_key": sandbox.acct_key},
        timeout=10,
    )
    log = sandbox.request_log
    assert [entry["params"] for entry in log] == [{"per_page": "5"}, {}]
    assert sandbox.api_key not in repr(log) and sandbox.acct_key not in repr(log)


# ----------------------------------------------------------------------------- paging
def fetch_all_pages(api: Api, route: str, per_page: int, **params: Any) -> tuple[list[Any], int]:
    rows: list[Any] = []
    page = 1
    while True:
        batch = api(route, page=page, per_page=per_page, **params).json()
        rows.extend(batch)
        if len(batch) < per_page:
            return rows, page
        page += 1


def test_pages_concatenate_to_the_full_list(sandbox: Sandbox, api: Api) -> None:
    everything = sandbox.world.records("get_course_progresses")
    rows, pages = fetch_all_pages(api, "get_course_progresses", per_page=10)
    assert rows == everything
    assert pages == len(everything) // 10 + 1


def test_without_per_page_the_whole_list_comes_on_page_one(sandbox: Sandbox, api: Api) -> None:
    everything = sandbox.world.records("get_users")
    assert api("get_users").json() == everything
    assert api("get_users", page=2).json() == []


def test_a_page_past_the_end_is_empty(sandbox: Sandbox, api: Api) -> None:
    assert api("get_users", page=99, per_page=10).json() == []


def test_per_page_above_the_maximum_is_capped(sandbox_factory: Callable[..., Sandbox]) -> None:
    sb = sandbox_factory(max_per_page=7)
    creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}
    body = requests.post(
        f"{sb.base_url}/get_users", data={**creds, "per_page": 1000}, timeout=10
    ).json()
    assert len(body) == 7


def test_default_per_page_applies_when_none_is_given(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(default_per_page=4)
    creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}
    assert len(requests.post(f"{sb.base_url}/get_users", data=creds, timeout=10).json()) == 4


def test_ignored_paging_answers_the_full_list_on_every_page(sandbox: Sandbox, api: Api) -> None:
    sandbox.set_paging("ignore")
    everything = sandbox.world.records("get_users")
    assert api("get_users", page=1, per_page=5).json() == everything
    assert api("get_users", page=2, per_page=5).json() == everything


def test_bad_paging_parameters_are_a_json_error(sandbox: Sandbox, api: Api) -> None:
    response = api("get_users", page=0, per_page=5)
    assert response.status_code == 400 and "error" in response.json()


# ----------------------------------------------------------------------------- filters
def test_course_progresses_filter_by_course_status_and_user_status(
    sandbox: Sandbox, api: Api
) -> None:
    world = sandbox.world
    course_id = first_id(world, "get_courses")
    by_course = api("get_course_progresses", course_id=course_id).json()
    assert by_course and {p["course_id"] for p in by_course} == {course_id}
    done = api("get_course_progresses", status="passed,failed").json()
    assert done and {p["status"] for p in done} <= {"passed", "failed"}
    assert len(done) == sum(
        p["status"] in ("passed", "failed") for p in world.records("get_course_progresses")
    )
    inactive_users = {uid for uid, meta in world.users.meta.items() if meta[0] != "active"}
    active_only = api("get_course_progresses", user_status="active").json()
    assert active_only and not {p["user_id"] for p in active_only} & inactive_users


def test_account_wide_progresses_can_be_switched_off(sandbox: Sandbox, api: Api) -> None:
    sandbox.configure(account_wide_progresses=False)
    response = api("get_course_progresses")
    assert response.status_code == 400 and response.json() == {"error": "course_id is required"}
    assert api("get_course_progresses", course_id=first_id(sandbox.world, "get_courses")).ok


def test_payments_filter_by_status_type_and_days_ago(sandbox: Sandbox, api: Api) -> None:
    world = sandbox.world
    everything = world.records("get_payments")
    complete = api("get_payments", status="complete").json()
    assert complete and all(p["status"] == "complete" for p in complete)
    paypal = api("get_payments", payment_type="paypal").json()
    assert paypal and all(p["payment_type"] == "paypal" for p in paypal)
    recent = api("get_payments", created_after_days_ago=30).json()
    cutoff = world.now_ts - 30 * 86_400
    assert recent == [p for p in everything if parse_any(p["created_at"]) >= cutoff]
    assert 0 < len(recent) < len(everything)


def test_timeslots_filter_by_start_and_end_date(sandbox: Sandbox, api: Api) -> None:
    everything = api("get_instructor_led_training_timeslots").json()
    window = api(
        "get_instructor_led_training_timeslots", start_date="2026-11-01", end_date="2027-03-01"
    ).json()
    lo, hi = parse_any("2026-11-01"), parse_any("2027-03-02")
    assert window == [t for t in everything if lo <= parse_any(t["start_date"]) < hi]  # type: ignore[operator]


def test_saved_reports_filter_by_date(sandbox: Sandbox, api: Api) -> None:
    assert len(api("get_saved_advanced_reports", start_date="2026-10-01").json()) == 3
    assert api("get_saved_advanced_reports", end_date="2020-01-01").json() == []


# ----------------------------------------------------------------------------- determinism
def test_same_seed_serves_the_same_bytes(sandbox_factory: Callable[..., Sandbox]) -> None:
    bodies = []
    for _ in range(2):
        sb = sandbox_factory(World.generate(seed=11, scale="tiny"))
        creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}
        bodies.append(
            [
                requests.post(f"{sb.base_url}/{route}", data=creds, timeout=10).content
                for route in ("get_users", "get_course_progresses", "get_payments")
            ]
        )
    assert bodies[0] == bodies[1]


def test_a_stopped_sandbox_answers_nothing_even_on_a_kept_alive_connection(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory()
    session = requests.Session()
    creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}
    assert session.post(f"{sb.base_url}/get_skills", data=creds, timeout=10).ok
    sb.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(f"{sb.base_url}/get_skills", data=creds, timeout=10)


def test_filtered_listings_follow_changes_to_the_world(sandbox: Sandbox, api: Api) -> None:
    passed = api("get_course_progresses", status="passed").json()
    api("update_course_progress", course_progress_id=passed[0]["id"], set_status="failed")
    again = api("get_course_progresses", status="passed").json()
    assert [p["id"] for p in again] == [p["id"] for p in passed[1:]]
