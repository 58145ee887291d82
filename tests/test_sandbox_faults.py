"""Like the real service when things go wrong: rate limits and switchable faults; and the
counters, request log and control routes that let tests and the benchmark watch it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import requests

from skyprep_sandbox import Sandbox

Api = Callable[..., requests.Response]


# ----------------------------------------------------------------------------- rate limit
def test_calls_past_the_rate_limit_get_429_with_retry_after(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(rate_limit=5, rate_window_s=30)
    creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}
    statuses = [
        requests.post(f"{sb.base_url}/get_skills", data=creds, timeout=10) for _ in range(7)
    ]
    assert [r.status_code for r in statuses] == [200] * 5 + [429] * 2
    assert 1 <= int(statuses[-1].headers["Retry-After"]) <= 30
    assert sb.stats()["throttled"] == 2


def test_rate_limit_window_passes_and_calls_are_served_again(
    sandbox_factory: Callable[..., Sandbox],
) -> None:
    sb = sandbox_factory(rate_limit=2, rate_window_s=2.0)
    creds = {"api_key": sb.api_key, "acct_key": sb.acct_key}

    def call() -> requests.Response:
        return requests.post(f"{sb.base_url}/get_skills", data=creds, timeout=10)

    answers = [call() for _ in range(3)]
    throttled = answers[-1]
    assert throttled.status_code == 429
    time.sleep(float(throttled.headers["Retry-After"]))
    assert call().status_code == 200


def test_rate_limit_is_off_by_default(sandbox: Sandbox, api: Api) -> None:
    assert all(api("get_skills").status_code == 200 for _ in range(120))


# ----------------------------------------------------------------------------- faults
def test_http_503_burst_then_recovery(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("http_503", count=2, retry_after=3)
    first, second, third = api("get_users"), api("get_users"), api("get_users")
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["Retry-After"] == "3"
    assert sandbox.stats()["faults"] == 2 and sandbox.stats()["faults_by_kind"] == {"http_503": 2}


def test_http_500_hits_only_its_route(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("http_500", route="get_courses", count=1)
    assert api("get_users").status_code == 200
    assert api("get_courses").status_code == 500
    assert api("get_courses").status_code == 200


def test_fault_can_skip_calls_before_striking(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("http_502", route="get_users", skip=2)
    assert [api("get_users").status_code for _ in range(4)] == [200, 200, 502, 200]


def test_rate_limit_429_burst_with_and_without_retry_after(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("rate_limit_429", count=1, retry_after=2)
    with_header = api("get_users")
    sandbox.inject_fault("rate_limit_429", count=1, retry_after=None)
    without_header = api("get_users")
    assert with_header.status_code == without_header.status_code == 429
    assert with_header.headers["Retry-After"] == "2"
    assert "Retry-After" not in without_header.headers


def test_slow_answer_runs_past_the_client_timeout(sandbox: Sandbox) -> None:
    sandbox.inject_fault("slow", count=1, delay_s=1.0)
    creds = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key}
    with pytest.raises(requests.Timeout):
        requests.post(f"{sandbox.base_url}/get_users", data=creds, timeout=0.2)
    assert requests.post(f"{sandbox.base_url}/get_users", data=creds, timeout=10).ok


def test_dropped_connection(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("drop_connection", count=1)
    with pytest.raises(requests.ConnectionError):
        api("get_users")
    assert api("get_users").ok


def test_truncated_body(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("truncated_body", count=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        api("get_users")
    assert api("get_users").ok


def test_html_error_page(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("html_error", count=1)
    response = api("get_users")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    assert "something went wrong" in response.text


def test_page_drift_insert_shifts_later_pages(sandbox: Sandbox, api: Api) -> None:
    sandbox.inject_fault("page_drift_insert", route="get_users", records=3)
    page1 = [str(u["id"]) for u in api("get_users", page=1, per_page=10).json()]
    page2 = [str(u["id"]) for u in api("get_users", page=2, per_page=10).json()]
    assert page1[-3:] == page2[:3]  # a naive pager reads these three twice
    assert len(sandbox.world.users) == 33


def test_page_drift_delete_hides_records_from_a_naive_pager(sandbox: Sandbox, api: Api) -> None:
    before = [p["id"] for p in sandbox.world.records("get_course_progresses")]
    sandbox.inject_fault("page_drift_delete", route="get_course_progresses", records=2)
    page1 = [p["id"] for p in api("get_course_progresses", page=1, per_page=10).json()]
    page2 = [p["id"] for p in api("get_course_progresses", page=2, per_page=10).json()]
    assert page1 == before[:10]
    assert page2 == before[12:22]  # records 10 and 11 slid into page 1: never seen
    assert set(before[:2]).isdisjoint(
        p["id"] for p in sandbox.world.records("get_course_progresses")
    )


def test_unknown_fault_kind_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sandbox.inject_fault("meteor_strike")


# ----------------------------------------------------------------------------- observation
def test_stats_count_calls_per_route_and_reset(sandbox: Sandbox, api: Api) -> None:
    api("get_users")
    api("get_users", per_page=5)
    api("get_courses")
    stats = sandbox.stats()
    assert stats["calls"] == {"get_users": 2, "get_courses": 1} and stats["calls_total"] == 3
    assert stats["records_served"] == 30 + 5 + 5
    log = sandbox.request_log
    assert [(e["route"], e["method"], e["status"]) for e in log] == [
        ("get_users", "POST", 200),
        ("get_users", "POST", 200),
        ("get_courses", "POST", 200),
    ]
    sandbox.reset_stats()
    assert sandbox.stats()["calls_total"] == 0 and sandbox.request_log == []


def test_control_routes_drive_an_out_of_process_sandbox(sandbox: Sandbox, api: Api) -> None:
    control = f"{sandbox.root_url}/_sandbox"
    api("get_users")
    assert requests.get(f"{control}/stats", timeout=10).json()["calls"] == {"get_users": 1}
    assert requests.get(f"{control}/request_log", timeout=10).json()[0]["route"] == "get_users"
    requests.post(f"{control}/reset_stats", timeout=10)
    assert requests.get(f"{control}/stats", timeout=10).json()["calls_total"] == 0

    now = requests.post(f"{control}/advance", data={"days": "2"}, timeout=10).json()["now"]
    assert now.startswith("2026-11-03T00:00:00")

    config = requests.post(
        f"{control}/config", data={"paging": "ignore", "rate_limit": "50"}, timeout=10
    ).json()
    assert config["paging"] == "ignore" and config["rate_limit"] == 50
    assert requests.get(f"{control}/config", timeout=10).json() == config

    requests.post(f"{control}/fault", data={"kind": "http_503", "count": "1"}, timeout=10)
    assert api("get_users").status_code == 503
    summary = requests.get(f"{control}/world", timeout=10).json()
    assert summary["scale"] == "tiny" and summary["counts"]["users"] == len(sandbox.world.users)


def test_control_routes_refuse_bad_switches(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.root_url}/_sandbox/config", data={"paging": "sometimes"}, timeout=10
    )
    assert response.status_code == 400


def test_control_routes_take_json_bodies_too(sandbox: Sandbox, api: Api) -> None:
    control = f"{sandbox.root_url}/_sandbox"
    config = requests.post(
        f"{control}/config", json={"rate_limit": None, "max_per_page": 5}, timeout=10
    ).json()
    assert config["rate_limit"] is None and config["max_per_page"] == 5
    assert (
        requests.post(f"{control}/advance", json={"days": 1}, timeout=10)
        .json()["now"]
        .startswith("2026-11-02")
    )
    requests.post(
        f"{control}/fault",
        json={"kind": "rate_limit_429", "count": 1, "retry_after": None},
        timeout=10,
    )
    throttled = api("get_users")
    assert throttled.status_code == 429 and "Retry-After" not in throttled.headers
    assert len(api("get_users", per_page=50).json()) == 5
