"""The sandbox answers the core read routes over real HTTP."""

from __future__ import annotations

import requests

from skyprep_sandbox import Sandbox

CORE_LIST_ROUTES = (
    "get_users",
    "get_courses",
    "get_course_progresses",
    "get_payments",
    "get_skills",
    "get_competencies",
    "get_user_groups",
    "get_saved_advanced_reports",
)


def test_core_list_routes_answer_bare_json_arrays_matching_the_world(sandbox: Sandbox) -> None:
    auth = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key}
    for route in CORE_LIST_ROUTES:
        response = requests.post(f"{sandbox.base_url}/{route}", data=auth, timeout=10)
        assert response.status_code == 200, route
        body = response.json()
        assert isinstance(body, list) and body, route
        assert body == sandbox.world.records(route), route
