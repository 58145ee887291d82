"""The HTTP client against a tiny scripted HTTP server (real sockets, real requests).

Each test gives the server a script ("a 503, then a page") and pins one behaviour.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from skyprep_source.client import (
    PagingKnowledge,
    RateBudget,
    RetryPolicy,
    SkyPrepClient,
    ensure_read_route,
    parse_retry_after,
)
from skyprep_source.errors import (
    SkyPrepAPIError,
    SkyPrepCredentialsError,
    SkyPrepError,
    SkyPrepNotFound,
    SkyPrepRequestFailed,
    SkyPrepRouteRefused,
)

API_KEY = "test-secret-key-4f9a"
ACCT_KEY = "acme.skyprepapp.com"


# ---- a scripted server -------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer: status, body, headers; `drop` closes the socket unanswered,
    `delay_s` answers late, `truncate_to` sends fewer bytes than Content-Length promises."""

    status: int = 200
    body: bytes = b"[]"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    drop: bool = False
    delay_s: float = 0.0
    truncate_to: int | None = None


def json_reply(value: Any, status: int = 200, **headers: str) -> Reply:
    return Reply(
        status, json.dumps(value).encode(), {"Content-Type": "application/json", **headers}
    )


def html_reply(status: int = 200) -> Reply:
    page = b"<!DOCTYPE html><html><body>Sign in to SkyPrep</body></html>"
    return Reply(status, page, {"Content-Type": "text/html; charset=utf-8"})


@dataclass
class Seen:
    path: str
    query: str
    form: dict[str, str]
    headers: dict[str, str]


class ScriptedServer:
    """Answers scripted replies in order per route; then `fallback(route, form)`."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[Seen] = []
        self.fallback: Callable[[str, dict[str, str]], Reply] = lambda route, form: json_reply([])
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                path, _, query = self.path.partition("?")
                server.requests.append(Seen(path, query, form, dict(self.headers)))
                route = path.rsplit("/", 1)[-1]
                queue = server.scripts.get(route)
                reply = queue.pop(0) if queue else server.fallback(route, form)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                body = reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to]
                self.wfile.write(body)
                if reply.truncate_to is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/admin/api"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def script(self, route: str, *replies: Reply) -> None:
        self.scripts.setdefault(route, []).extend(replies)

    def calls(self, route: str) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("/" + route)]

    def serve_list(
        self, route: str, rows: list[dict[str, Any]], paging: str = "honour", cap: int = 10_000
    ) -> None:
        """Serve `rows` for `route`: honouring page/per_page (up to `cap` rows a page), or
        ignoring paging (the whole list every time)."""
        previous = self.fallback

        def answer(called: str, form: dict[str, str]) -> Reply:
            if called != route:
                return previous(called, form)
            if paging == "ignore":
                return json_reply(rows)
            size = min(int(form.get("per_page", 100)), cap)
            page = int(form.get("page", 1))
            return json_reply(rows[(page - 1) * size : page * size])

        self.fallback = answer

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    yield srv
    srv.close()


def make_client(server: ScriptedServer, **options: Any) -> SkyPrepClient:
    options.setdefault(
        "retry", RetryPolicy(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.02)
    )
    options.setdefault("request_timeout", 2.0)
    return SkyPrepClient(API_KEY, ACCT_KEY, server.base_url, **options)


def rows(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"row {i}"} for i in range(start, start + n)]


def read_all(
    client: SkyPrepClient, route: str = "get_users", verify_stable: bool = False
) -> list[dict[str, Any]]:
    return [row for page in client.pages(route, verify_stable=verify_stable) for row in page]


# ---- credentials and the read-only guard ---------------------------------------------------


def test_credentials_travel_in_the_post_body_never_the_url(server: ScriptedServer) -> None:
    server.script("get_users", json_reply([]))
    make_client(server).call("get_users", {"page": 1})
    (seen,) = server.requests
    assert seen.form["api_key"] == API_KEY
    assert seen.form["acct_key"] == ACCT_KEY
    assert API_KEY not in seen.path + seen.query
    assert seen.form["page"] == "1"


@pytest.mark.parametrize(
    "route",
    ["get_login_key", "get_course_otp", "create_user", "destroy_user", "update_course_progress"],
)
def test_side_effect_and_mutating_routes_are_refused_without_a_call(
    server: ScriptedServer, route: str
) -> None:
    with pytest.raises(SkyPrepRouteRefused, match=route):
        make_client(server).call(route, {"user_email": "a@b.c"})
    assert server.requests == []


def test_every_read_route_of_the_catalogue_is_allowed() -> None:
    for route in ("get_users", "get_courses", "get_course_progresses", "get_payments"):
        ensure_read_route(route)


# ---- error mapping -------------------------------------------------------------------------


def test_html_page_is_a_credentials_error_naming_the_settings(server: ScriptedServer) -> None:
    server.script("get_users", html_reply(200))
    with pytest.raises(SkyPrepCredentialsError) as raised:
        make_client(server).call("get_users")
    message = str(raised.value)
    assert "sources.skyprep.api_key" in message and "acct_key" in message
    assert API_KEY not in message
    assert len(server.requests) == 1  # a credentials problem is not retried


def test_401_is_a_credentials_error(server: ScriptedServer) -> None:
    server.script("get_users", json_reply({"error": "unauthorized"}, status=401))
    with pytest.raises(SkyPrepCredentialsError):
        make_client(server).call("get_users")


def test_client_error_is_not_retried_and_never_echoes_the_key(server: ScriptedServer) -> None:
    server.script("get_users", json_reply({"error": f"bad request with key {API_KEY}"}, 400))
    with pytest.raises(SkyPrepAPIError) as raised:
        make_client(server).call("get_users")
    assert API_KEY not in str(raised.value)
    assert "***" in str(raised.value)
    assert len(server.requests) == 1


def test_error_object_where_a_list_is_expected_fails_after_its_retries(
    server: ScriptedServer,
) -> None:
    server.fallback = lambda route, form: json_reply({"error": "Invalid acct_key"})
    with pytest.raises(SkyPrepRequestFailed, match="Invalid acct_key"):
        make_client(server).call_list("get_users")
    assert len(server.calls("get_users")) == 3


@pytest.mark.parametrize("answer", [{}, {"error": "temporarily unavailable"}])
def test_an_empty_or_error_object_at_200_is_retried_never_an_empty_list(
    server: ScriptedServer, answer: dict[str, Any]
) -> None:
    server.script("get_users", json_reply(answer))
    server.serve_list("get_users", rows(3))
    assert make_client(server).call_list("get_users") == rows(3)
    assert len(server.calls("get_users")) == 2


def test_an_empty_object_in_place_of_a_list_fails_the_call(server: ScriptedServer) -> None:
    server.fallback = lambda route, form: json_reply({})
    with pytest.raises(SkyPrepRequestFailed, match="empty object"):
        list(make_client(server).pages("get_users"))


@pytest.mark.parametrize(
    "reply",
    [
        Reply(404, b'{"error": "user not found"}'),
        json_reply({"error": "User not found"}),
        json_reply({"errors": ["Record does not exist"]}),
    ],
)
def test_a_clear_not_found_raises_not_found(server: ScriptedServer, reply: Reply) -> None:
    server.script("get_user", reply)
    with pytest.raises(SkyPrepNotFound):
        make_client(server).call_record("get_user", {"user_id": 5})
    assert len(server.calls("get_user")) == 1


@pytest.mark.parametrize("answer", [{}, {"error": "temporarily unavailable"}])
def test_a_record_route_answering_an_empty_or_error_object_fails_after_retries(
    server: ScriptedServer, answer: dict[str, Any]
) -> None:
    server.fallback = lambda route, form: json_reply(answer)
    with pytest.raises(SkyPrepRequestFailed):
        make_client(server).call_record("get_user", {"user_id": 5})


def test_a_record_route_answering_a_list_is_an_api_error(server: ScriptedServer) -> None:
    server.script("get_competency", json_reply([{"id": 1}]))
    with pytest.raises(SkyPrepAPIError, match="a list where a JSON object"):
        make_client(server).call_record("get_competency", {"competency_id": 1})
    assert not isinstance(SkyPrepAPIError("x"), SkyPrepNotFound)


def test_a_csv_download_answering_json_is_an_error_not_a_file(server: ScriptedServer) -> None:
    server.script("get_saved_advanced_report", json_reply([{"id": 1}]))
    with pytest.raises(SkyPrepAPIError, match="a CSV file"):
        make_client(server).call_text("get_saved_advanced_report", {"format": "csv"})


# ---- retries -------------------------------------------------------------------------------


def test_503_then_a_page_returns_the_page(server: ScriptedServer) -> None:
    server.script("get_users", Reply(503, b"busy"), json_reply(rows(2)))
    client = make_client(server)
    assert client.call("get_users") == rows(2)
    assert client.retries == 1


def test_truncated_json_body_is_retried(server: ScriptedServer) -> None:
    body = json.dumps(rows(50)).encode()
    server.script(
        "get_users",
        Reply(200, body, truncate_to=len(body) // 2),  # Content-Length promises more
        Reply(200, body[: len(body) // 2], {"Content-Type": "application/json"}),  # cut JSON
        json_reply(rows(50)),
    )
    client = make_client(server, retry=RetryPolicy(4, 0.01, 0.02))
    assert client.call("get_users") == rows(50)
    assert client.retries == 2


def test_dropped_connection_is_retried(server: ScriptedServer) -> None:
    server.script("get_users", Reply(drop=True), json_reply(rows(1)))
    assert make_client(server).call("get_users") == rows(1)


def test_timeout_is_retried(server: ScriptedServer) -> None:
    server.script("get_users", Reply(delay_s=1.0, body=b"[]"), json_reply(rows(1)))
    client = make_client(server, request_timeout=0.2)
    assert client.call("get_users") == rows(1)


def test_attempts_run_out_with_an_error_naming_the_route(server: ScriptedServer) -> None:
    server.script("get_courses", *[Reply(502, b"bad gateway")] * 3)
    with pytest.raises(SkyPrepRequestFailed, match="get_courses failed 3 times") as raised:
        make_client(server).call("get_courses")
    assert "HTTP 502" in str(raised.value)
    assert API_KEY not in str(raised.value)
    assert len(server.requests) == 3


class FakeClock:
    """A clock whose sleep advances time: rate-budget logic without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_429_with_retry_after_holds_back_the_shared_budget(server: ScriptedServer) -> None:
    server.script("get_users", json_reply({"error": "slow down"}, 429, **{"Retry-After": "7"}))
    server.script("get_users", json_reply(rows(1)))
    clock = FakeClock()
    client = make_client(server, rate_budget=RateBudget(None, clock=clock, sleep=clock.sleep))
    assert client.call("get_users") == rows(1)
    assert clock.sleeps == [7.0]  # the server's Retry-After, paid through the budget


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


# ---- rate budget ---------------------------------------------------------------------------


def test_rate_budget_spaces_calls_evenly_across_the_window() -> None:
    clock = FakeClock()
    budget = RateBudget(3, window_s=60, clock=clock, sleep=clock.sleep)
    assert budget.acquire() == 0  # the first call goes at once
    assert budget.acquire() == pytest.approx(20.6)  # 60 s / 3 calls, +3% margin
    clock.now += 30  # idle time earns no burst
    assert budget.acquire() == 0
    assert budget.acquire() == pytest.approx(20.6)


def test_rate_budget_never_fits_more_than_the_limit_in_any_window() -> None:
    clock = FakeClock()
    budget = RateBudget(10, window_s=6, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(50):
        budget.acquire()
        sent.append(clock.now)
    most_in_a_window = max(sum(1 for t in sent if start <= t < start + 6) for start in sent)
    assert most_in_a_window <= 10


def test_pause_holds_back_the_next_callers() -> None:
    clock = FakeClock()
    budget = RateBudget(None, clock=clock, sleep=clock.sleep)
    budget.pause(5)
    assert budget.acquire() == pytest.approx(5)
    assert budget.acquire() == 0


def test_rate_budget_none_never_waits() -> None:
    clock = FakeClock()
    budget = RateBudget(None, clock=clock, sleep=clock.sleep)
    for _ in range(1000):
        budget.acquire()
    assert clock.sleeps == []


def test_every_attempt_pays_the_budget(server: ScriptedServer) -> None:
    server.script("get_users", Reply(500, b"oops"), json_reply([]))
    clock = FakeClock()
    budget = RateBudget(1, window_s=60, clock=clock, sleep=clock.sleep)
    make_client(server, rate_budget=budget).call("get_users")
    assert clock.sleeps == [pytest.approx(61.8)]  # the retry waited for its slot (+3%)


# ---- paging --------------------------------------------------------------------------------


def test_paging_honoured_reads_every_row_once_in_minimal_calls(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(25))
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(25)
    assert len(server.calls("get_users")) == 3  # floor(25/10) + 1
    assert client.paging.honours_page_size


def test_verifying_a_paged_list_costs_one_look_at_page_1(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(25))
    assert read_all(make_client(server, page_size=10), verify_stable=True) == rows(25)
    assert len(server.calls("get_users")) == 3 + 1


def test_list_of_exact_multiple_stops_at_the_empty_page(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(20))
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(20)
    assert len(server.calls("get_users")) == 3


def test_paging_ignored_with_a_long_list_takes_one_call(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(25), paging="ignore")
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(25)
    assert len(server.calls("get_users")) == 1
    assert client.paging.ignores_paging


def test_paging_ignored_with_a_short_list_stops_without_duplicates(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(5), paging="ignore")
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(5)
    assert len(server.calls("get_users")) == 2  # page 2 repeated page 1: stop
    server.serve_list("get_courses", rows(4), paging="ignore")
    assert read_all(client, "get_courses") == rows(4)
    assert len(server.calls("get_courses")) == 1  # known for the rest of the run


def test_paging_ignored_with_exactly_a_page_stops(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(10), paging="ignore")
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(10)
    assert len(server.calls("get_users")) == 2


def test_server_page_cap_below_per_page_is_found_and_followed(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(10), cap=4)
    client = make_client(server, page_size=100)
    assert read_all(client) == rows(10)
    assert client.paging.page_caps == {"get_users": 4}
    assert len(server.calls("get_users")) == 3  # 4, (confirm) 4, 2


def test_short_first_page_is_trusted_once_the_page_size_is_known(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(10))
    server.serve_list("get_courses", rows(3))
    client = make_client(server, page_size=10)
    read_all(client)
    assert read_all(client, "get_courses") == rows(3)
    assert len(server.calls("get_courses")) == 1


def test_short_lists_cost_one_confirmation_until_a_longer_one(server: ScriptedServer) -> None:
    server.serve_list("get_users", rows(6))
    server.serve_list("get_courses", rows(3))
    client = make_client(server, page_size=10)
    assert read_all(client) == rows(6)
    assert len(server.calls("get_users")) == 2  # 6 rows could be a cap: confirmed
    assert read_all(client, "get_courses") == rows(3)
    assert len(server.calls("get_courses")) == 1  # shorter than a confirmed whole page


def test_page_drift_insert_duplicates_are_dropped_in_minimal_calls(
    server: ScriptedServer,
) -> None:
    server.script("get_users", json_reply(rows(10)), json_reply(rows(10, start=10)))
    server.script("get_users", json_reply(rows(3, start=20)))
    got = read_all(make_client(server, page_size=10))
    assert [r["id"] for r in got] == list(range(1, 23))
    assert len(server.calls("get_users")) == 3


def test_page_drift_insert_duplicates_are_dropped_and_new_rows_read(
    server: ScriptedServer,
) -> None:
    # a record inserted at the head between calls shifts row 10 onto page 2 again
    server.script("get_users", json_reply(rows(10)), json_reply(rows(10, start=10)))
    server.script("get_users", json_reply(rows(3, start=20)))
    # page 1 has moved by the end: the list is read again and row 0 (the new one) found
    moved = [{"id": 0, "name": "new"}, *rows(22)]
    server.script("get_users", json_reply(moved[:10]))
    server.script("get_users", json_reply(moved[:10]), json_reply(moved[10:20]))
    server.script("get_users", json_reply(moved[20:]), json_reply(moved[:10]))
    got = read_all(make_client(server, page_size=10), verify_stable=True)
    assert sorted(r["id"] for r in got) == list(range(0, 23))


def test_page_drift_delete_rereads_the_rows_that_slid_back(server: ScriptedServer) -> None:
    # rows 1-2 are deleted after page 1 was read: rows 11-12 slide onto page 1, unseen
    after = rows(23)[2:]
    server.script("get_users", json_reply(rows(10)), json_reply(after[10:20]))
    server.script("get_users", json_reply(after[20:]))
    server.script("get_users", json_reply(after[:10]))  # the check: page 1 moved
    server.serve_list("get_users", after)  # the second pass sees a still list
    got = read_all(make_client(server, page_size=10), verify_stable=True)
    assert sorted(r["id"] for r in got) == list(range(1, 24))  # nothing missed, none twice


def test_list_that_never_holds_still_fails_clearly(server: ScriptedServer) -> None:
    counter = iter(range(1_000_000))

    def ever_changing(route: str, form: dict[str, str]) -> Reply:
        start = next(counter) * 100
        size = 10 if form["page"] != "2" else 3
        return json_reply(rows(size, start=start))

    server.fallback = ever_changing
    with pytest.raises(SkyPrepAPIError, match="kept changing"):
        read_all(make_client(server, page_size=10), verify_stable=True)


def test_ids_as_strings_and_numbers_are_one_row(server: ScriptedServer) -> None:
    server.script("get_users", json_reply(rows(10)))
    server.script("get_users", json_reply([{"id": "10", "name": "row 10"}, {"id": "11"}]))
    got = read_all(make_client(server, page_size=10))
    assert len(got) == 11


def test_records_without_an_id_are_told_apart_by_content(server: ScriptedServer) -> None:
    server.script("get_user_roles", json_reply([{"name": "a"}, {"name": "b"}, {"name": "a"}]))
    got = read_all(make_client(server, page_size=10), "get_user_roles")
    assert got == [{"name": "a"}, {"name": "b"}]


def test_paging_knowledge_starts_empty() -> None:
    assert PagingKnowledge() == PagingKnowledge(False, False, 0, {})


# ---- the key in every encoding ----------------------------------------------------------------

ODD_KEY = 'k3y/with +plus&amp="quote"\\slash'


@pytest.mark.parametrize("status", [400, 200])
def test_a_server_echoing_the_form_body_never_shows_the_key_in_any_encoding(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    import logging
    import urllib.parse

    from skyprep_source.client import secret_encodings

    def echo(route: str, form: dict[str, str]) -> Reply:
        raw = urllib.parse.urlencode(form)  # the form body as it arrived, URL-encoded
        as_json = json.dumps({"error": f"bad request {form}", "raw": raw})
        return Reply(status, as_json.encode(), {"Content-Type": "application/json"})

    server.fallback = echo
    client = SkyPrepClient(
        ODD_KEY,
        ACCT_KEY,
        server.base_url,
        retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02),
    )
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SkyPrepError) as raised:
        client.call_list("get_users")
    text = f"{raised.value}\n{caplog.text}"
    assert "***" in text
    encodings = secret_encodings(ODD_KEY)
    assert len(encodings) == 5  # raw, quote_plus, quote, JSON- and Python-escaped all differ
    for form in encodings:
        assert form not in text


# ---- bounded calls --------------------------------------------------------------------------


def test_a_body_that_trickles_past_the_deadline_is_a_timeout_and_retried() -> None:
    """A server sending one byte every 0.3 s: each read is inside the socket timeout, the
    call is not; it is retried, then fails, instead of hanging."""

    class Trickle(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps(rows(50)).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                for byte in body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.3)
            except OSError:
                pass  # the client hung up: that is the point

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = SkyPrepClient(
            API_KEY,
            ACCT_KEY,
            f"http://127.0.0.1:{httpd.server_address[1]}/admin/api",
            retry=RetryPolicy(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02),
            request_timeout=1.0,
        )
        with pytest.raises(SkyPrepRequestFailed, match="TimeoutError"):
            client.call_list("get_users")
        assert client.calls == 2
    finally:
        httpd.shutdown()
        httpd.server_close()
