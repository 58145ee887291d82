"""The sandbox's HTTP face: SkyPrep's transport behaviour around the routes.

`Sandbox` serves a `World` on loopback with a stdlib `ThreadingHTTPServer` (HTTP/1.1,
keep-alive). Per call, in order: rate limit (per client address, sliding window) ->
armed fault -> credentials (a wrong key answers the HTML sign-in page with 200) ->
route -> paging. Pages are joined from pre-serialised records, so serving is a slice
and a `b",".join`. Control routes under `/_sandbox/` let another process drive it.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from skyprep_sandbox.drift import drift_delete, drift_insert
from skyprep_sandbox.faults import Fault, FaultPlan
from skyprep_sandbox.mutations import register_mutating_routes
from skyprep_sandbox.routes import (
    MUTATING,
    ROUTES,
    Answer,
    ListAnswer,
    RouteContext,
    RouteError,
    async_report_download,
)
from skyprep_sandbox.world import RecordNotFound, World

# the read routes register where they are defined (routes.py); the mutating ones here, once
register_mutating_routes()
API_PREFIX = "/admin/api/"
CONTROL_PREFIX = "/_sandbox/"
SECRET_PARAMS = ("api_key", "acct_key")
PAGING_MODES = ("honour", "ignore")
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

SIGN_IN_PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign In | SkyPrep</title></head>
<body class="login">
<div class="container"><h1>Sign in to your training portal</h1>
<form action="/account/login" method="post">
<input type="email" name="email" placeholder="Email"><input type="password" name="password">
<button type="submit">Sign In</button></form>
<a href="/account/forgot_password">Forgot your password?</a></div>
</body>
</html>
"""
ERROR_PAGE = b"""<!DOCTYPE html>
<html><head><title>We're sorry, but something went wrong (500)</title></head>
<body><div class="dialog"><h1>We're sorry, but something went wrong.</h1>
<p>If you are the application owner check the logs for more information.</p></div></body>
</html>
"""


@dataclass
class Reply:
    """What the transport does for one request."""

    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "send"  # "send" | "drop" | "truncate"
    delay_s: float = 0.0


class RateLimiter:
    """At most `limit` calls per `window_s` per client address (sliding window)."""

    def __init__(self, limit: int | None, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> float | None:
        """None when the call may proceed (and counts it), else seconds until it may."""
        if self.limit is None:
            return None
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(client, deque())
            while calls and calls[0] <= now - self.window_s:
                calls.popleft()
            if len(calls) >= self.limit:
                return calls[0] + self.window_s - now
            calls.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()


class Sandbox:
    """A running SkyPrep emulator over a World (see docs/sandbox.md for every switch)."""

    def __init__(
        self,
        world: World,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = None,
        rate_window_s: float = 60.0,
        paging: str = "honour",
        max_per_page: int = 1000,
        default_per_page: int | None = None,
        account_wide_progresses: bool = True,
        api_key: str = "sandbox-api-key",
        acct_key: str = "sandbox.skyprepapp.com",
        async_report_mode: str = "complete",
        async_report_pending_polls: int = 1,
        slow_delay_s: float = 2.0,
        log_limit: int = 200_000,
    ) -> None:
        self.world = world
        self.host = host
        self.port = port
        self.api_key = api_key
        self.acct_key = acct_key
        self.max_per_page = max_per_page
        self.default_per_page = default_per_page
        self.account_wide_progresses = account_wide_progresses
        self.async_report_mode = async_report_mode
        self.async_report_pending_polls = async_report_pending_polls
        self.slow_delay_s = slow_delay_s
        self.paging = "honour"
        self.set_paging(paging)
        self.rate_limiter = RateLimiter(rate_limit, rate_window_s)
        self.faults = FaultPlan()
        self._log: deque[dict[str, Any]] = deque(maxlen=log_limit)
        self._counters: Counter[str] = Counter()
        self._calls: Counter[str] = Counter()
        self._faults_by_kind: Counter[str] = Counter()
        self._status_counts: Counter[int] = Counter()
        self._stats_lock = threading.Lock()
        self._seq = 0
        self._page_cache: dict[tuple[Any, ...], tuple[int, list[bytes]]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- lifecycle
    def start(self) -> Sandbox:
        """Bind and serve in a background thread (port 0 picks a free port)."""
        if self._server is not None:
            return self
        server = _Server((self.host, self.port), _Handler)
        server.sandbox = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the console command)."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- addresses
    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL to give a client: `http://127.0.0.1:<port>/admin/api`."""
        return f"{self.root_url}/admin/api"

    # ------------------------------------------------------------- switches
    @property
    def rate_limit(self) -> int | None:
        return self.rate_limiter.limit

    @property
    def rate_window_s(self) -> float:
        return self.rate_limiter.window_s

    def set_paging(self, mode: str) -> None:
        """ "honour" page/per_page, or "ignore" them (every call answers the full list)."""
        if mode not in PAGING_MODES:
            raise ValueError(f"paging must be one of {PAGING_MODES}")
        self.paging = mode

    def configure(self, **switches: Any) -> dict[str, Any]:
        """Change switches while running: paging, max_per_page, default_per_page, rate_limit,
        rate_window_s, account_wide_progresses, async_report_mode,
        async_report_pending_polls, slow_delay_s. Returns the new config."""
        for name, value in switches.items():
            if name == "paging":
                self.set_paging(value)
            elif name == "rate_limit":
                self.rate_limiter.limit = None if value in (None, "", "none") else int(value)
                self.rate_limiter.reset()
            elif name == "rate_window_s":
                self.rate_limiter.window_s = float(value)
                self.rate_limiter.reset()
            elif name in ("max_per_page", "async_report_pending_polls"):
                setattr(self, name, int(value))
            elif name == "default_per_page":
                self.default_per_page = None if value in (None, "", "none") else int(value)
            elif name == "account_wide_progresses":
                self.account_wide_progresses = _truthy(value)
            elif name == "async_report_mode":
                if value not in ("complete", "never", "fail"):
                    raise ValueError("async_report_mode must be complete, never or fail")
                self.async_report_mode = value
            elif name == "slow_delay_s":
                self.slow_delay_s = float(value)
            else:
                raise ValueError(f"unknown switch {name!r}")
        return self.config()

    def config(self) -> dict[str, Any]:
        """The current switches."""
        return {
            "paging": self.paging,
            "max_per_page": self.max_per_page,
            "default_per_page": self.default_per_page,
            "rate_limit": self.rate_limit,
            "rate_window_s": self.rate_window_s,
            "account_wide_progresses": self.account_wide_progresses,
            "async_report_mode": self.async_report_mode,
            "async_report_pending_polls": self.async_report_pending_polls,
            "slow_delay_s": self.slow_delay_s,
        }

    def inject_fault(
        self, kind: str, route: str | None = None, count: int = 1, skip: int = 0, **options: Any
    ) -> Fault:
        """Arm a fault for the next `count` calls (of `route`, or any API route), after
        letting `skip` matching calls through. Kinds and options: docs/sandbox.md."""
        return self.faults.arm(
            Fault(kind=kind, route=route, count=count, skip=skip, options=options)
        )

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self.faults.clear()

    def advance(self, days: int = 1) -> None:
        """Let time pass in the world (see World.advance)."""
        self.world.advance(days=days)

    # ------------------------------------------------------------- observation
    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Every API call so far: seq, time, method, route, status, params (no secrets),
        key_source (body/header/query/None), fault, throttled, records, bytes."""
        with self._stats_lock:
            return list(self._log)

    def stats(self) -> dict[str, Any]:
        """Counters: calls per route, calls_total, throttled, faults (and by kind),
        auth_failures, mutating_calls, statuses, records_served, bytes_sent."""
        with self._stats_lock:
            return {
                "calls": dict(self._calls),
                "calls_total": sum(self._calls.values()),
                "throttled": self._counters["throttled"],
                "faults": sum(self._faults_by_kind.values()),
                "faults_by_kind": dict(self._faults_by_kind),
                "auth_failures": self._counters["auth_failures"],
                "mutating_calls": self._counters["mutating_calls"],
                "statuses": {str(k): v for k, v in self._status_counts.items()},
                "records_served": self._counters["records_served"],
                "bytes_sent": self._counters["bytes_sent"],
            }

    def reset_stats(self) -> None:
        """Zero the counters and empty the request log (also resets rate-limit windows)."""
        with self._stats_lock:
            self._log.clear()
            self._counters.clear()
            self._calls.clear()
            self._faults_by_kind.clear()
            self._status_counts.clear()
        self.rate_limiter.reset()

    def _record(self, entry: dict[str, Any], reply: Reply) -> None:
        with self._stats_lock:
            self._seq += 1
            entry["seq"] = self._seq
            entry["status"] = reply.status
            entry["bytes"] = len(reply.body)
            self._log.append(entry)
            self._calls[entry["route"]] += 1
            self._status_counts[reply.status] += 1
            self._counters["bytes_sent"] += len(reply.body)
            self._counters["records_served"] += entry.get("records") or 0
            if entry.get("throttled"):
                self._counters["throttled"] += 1
            if entry.get("fault"):
                self._faults_by_kind[entry["fault"]] += 1
            if entry.get("auth") == "failed":
                self._counters["auth_failures"] += 1
            if entry["route"] in MUTATING:
                self._counters["mutating_calls"] += 1

    # ------------------------------------------------------------- one API call
    def handle_api(
        self, method: str, route: str, params: dict[str, str], headers: Any, client: str
    ) -> Reply:
        """Answer one API call (everything but the socket)."""
        key_source = _key_source(params, headers)
        api_key = params.pop("api_key", None) or headers.get("X-SkyPrep-API-Key")
        acct_key = params.pop("acct_key", None) or headers.get("X-SkyPrep-Acct-Key")
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "route": route,
            "params": dict(params),
            "key_source": key_source,
            "client": client,
            "fault": None,
            "throttled": False,
        }
        reply = self._answer(route, params, api_key, acct_key, client, entry)
        self._record(entry, reply)
        return reply

    def _answer(
        self,
        route: str,
        params: dict[str, str],
        api_key: str | None,
        acct_key: str | None,
        client: str,
        entry: dict[str, Any],
    ) -> Reply:
        wait = self.rate_limiter.check(client)
        if wait is not None:
            entry["throttled"] = True
            return Reply(
                429,
                b'{"error":"Rate limit exceeded"}',
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        page = _int_or(params.get("page"), 1)
        fault = self.faults.take(route, page)
        delay = 0.0
        if fault is not None:
            entry["fault"] = fault.kind
            early = self._fault_reply(fault, route, params)
            if early is not None:
                return early
            if fault.kind == "slow":
                delay = float(fault.options.get("delay_s", self.slow_delay_s))
        if not self._credentials_ok(api_key, acct_key):
            entry["auth"] = "failed"
            return Reply(200, SIGN_IN_PAGE, HTML, delay_s=delay)
        entry["auth"] = "ok"
        reply = self._route_reply(route, params, entry)
        reply.delay_s = delay
        if fault is not None and fault.kind == "truncated_body":
            reply.action = "truncate"
        if fault is not None and fault.kind == "cut_list" and reply.status == 200:
            answer = orjson.loads(reply.body)
            if isinstance(answer, list):  # a list cut short, at HTTP 200
                reply.body = orjson.dumps(answer[: int(fault.options.get("rows", 1))])
        if fault is not None and fault.kind == "bad_value" and reply.status == 200:
            answer = orjson.loads(reply.body)
            records = answer if isinstance(answer, list) else [answer]
            for record in records[: int(fault.options.get("rows", 1))]:
                if isinstance(record, dict):
                    record[fault.options["field"]] = fault.options.get("value")
            reply.body = orjson.dumps(answer)
        return reply

    def _fault_reply(self, fault: Fault, route: str, params: dict[str, str]) -> Reply | None:
        """The reply a fault replaces the answer with; None when the answer still follows."""
        kind = fault.kind
        if kind.startswith("http_5"):
            status = int(kind[5:])
            headers = {}
            if fault.options.get("retry_after") is not None:
                headers["Retry-After"] = str(fault.options["retry_after"])
            title = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            body = f"<html><body><h1>{status} {title.get(status, 'Gateway Timeout')}</h1></body></html>"
            return Reply(status, body.encode(), HTML, headers=headers)
        if kind == "rate_limit_429":
            retry_after = fault.options.get("retry_after", 1)
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return Reply(429, b'{"error":"Rate limit exceeded"}', headers=headers)
        if kind == "html_error":
            return Reply(int(fault.options.get("status", 200)), ERROR_PAGE, HTML)
        if kind == "drop_connection":
            return Reply(action="drop")
        if kind == "empty_list":
            return Reply(200, b"[]")
        if kind == "empty_object":
            return Reply(200, b"{}")
        if kind == "error_object":
            message = fault.options.get("message", "temporarily unavailable")
            return Reply(int(fault.options.get("status", 200)), orjson.dumps({"error": message}))
        if kind == "json_answer":
            return Reply(200, orjson.dumps(fault.options.get("body", [])))
        if kind in ("page_drift_insert", "page_drift_delete"):
            records = int(fault.options.get("records", 3))
            with self.world.lock:
                if kind == "page_drift_insert":
                    drift_insert(self.world, route, params, records)
                else:
                    drift_delete(self.world, route, params, records, self._context())
        return None

    def _credentials_ok(self, api_key: str | None, acct_key: str | None) -> bool:
        if api_key != self.api_key or not acct_key:
            return False
        domain = acct_key.strip().lower().removeprefix("https://").removeprefix("http://")
        return domain.rstrip("/") == self.acct_key.lower()

    def _context(self) -> RouteContext:
        return RouteContext(
            account_wide_progresses=self.account_wide_progresses,
            root_url=self.root_url,
            async_report_mode=self.async_report_mode,
            async_report_pending_polls=self.async_report_pending_polls,
        )

    def _route_reply(self, route: str, params: dict[str, str], entry: dict[str, Any]) -> Reply:
        handler = ROUTES.get(route)
        if handler is None:
            return Reply(404, orjson.dumps({"error": f"unknown route {route}"}))
        paging_keys = ("page", "per_page", "format")
        cache_key = (
            route,
            tuple(sorted((k, v) for k, v in params.items() if k not in paging_keys)),
        )
        try:
            with self.world.lock:
                cached = self._page_cache.get(cache_key)
                if cached is not None and cached[0] == self.world.version and route not in MUTATING:
                    answer: Answer | ListAnswer = ListAnswer(cached[1])
                else:
                    answer = handler(self.world, params, self._context())
                    if isinstance(answer, ListAnswer) and route not in MUTATING:
                        if len(self._page_cache) > 64:
                            self._page_cache.clear()
                        self._page_cache[cache_key] = (self.world.version, answer.items)
        except RouteError as error:
            return Reply(error.status, orjson.dumps({"error": error.message}))
        except RecordNotFound as error:
            return Reply(404, orjson.dumps({"error": str(error)}))
        except (ValueError, KeyError) as error:
            return Reply(400, orjson.dumps({"error": f"bad request: {error}"}))
        if isinstance(answer, Answer):
            return Reply(answer.status, answer.body, answer.content_type)
        items = self._page(answer.items, params)
        if isinstance(items, Reply):
            return items
        entry["records"] = len(items)
        return Reply(200, b"[" + b",".join(items) + b"]")

    def _page(self, items: list[bytes], params: dict[str, str]) -> list[bytes] | Reply:
        """Apply page/per_page (1-based; per_page capped at max_per_page; no per_page and no
        default means everything on page 1 and nothing after)."""
        if self.paging == "ignore":
            return items
        try:
            page = _int_or(params.get("page"), 1, strict=True)
            per_page = _int_or(params.get("per_page"), self.default_per_page, strict=True)
        except ValueError:
            return Reply(400, b'{"error":"page and per_page must be integers"}')
        if page < 1 or (per_page is not None and per_page < 1):
            return Reply(400, b'{"error":"page and per_page must be positive"}')
        if per_page is None:
            return items if page == 1 else []
        per_page = min(per_page, self.max_per_page)
        return items[(page - 1) * per_page : page * per_page]

    # ------------------------------------------------------------- control routes
    def handle_control(self, action: str, params: dict[str, str]) -> Reply:
        """`/_sandbox/<action>`: stats, reset_stats, request_log, advance, config, fault,
        clear_faults, world."""
        try:
            if action == "stats":
                return Reply(200, orjson.dumps(self.stats()))
            if action == "reset_stats":
                self.reset_stats()
                return Reply(200, b'{"message":"success"}')
            if action == "request_log":
                return Reply(200, orjson.dumps(self.request_log))
            if action == "advance":
                self.advance(int(params.get("days", "1")))
                return Reply(200, orjson.dumps({"now": self.world.now.isoformat()}))
            if action == "config":
                if params:
                    return Reply(200, orjson.dumps(self.configure(**params)))
                return Reply(200, orjson.dumps(self.config()))
            if action == "fault":
                options = {
                    k: _number(v)
                    for k, v in params.items()
                    if k not in ("kind", "route", "count", "skip")
                }
                self.inject_fault(
                    params["kind"],
                    route=params.get("route") or None,
                    count=int(params.get("count", "1")),
                    skip=int(params.get("skip", "0")),
                    **options,
                )
                return Reply(200, b'{"message":"success"}')
            if action == "clear_faults":
                self.clear_faults()
                return Reply(200, b'{"message":"success"}')
            if action == "world":
                return Reply(200, orjson.dumps(self.world_summary()))
        except (ValueError, KeyError) as error:
            return Reply(400, orjson.dumps({"error": str(error)}))
        return Reply(404, b'{"error":"unknown control route"}')

    def world_summary(self) -> dict[str, Any]:
        """Clock, seed, scale and record counts of the served world."""
        world = self.world
        with world.lock:
            return {
                "now": world.now.isoformat(),
                "seed": world.seed,
                "scale": world.scale.name if world.scale else None,
                "days_advanced": world.days_advanced,
                "counts": {
                    "users": len(world.users),
                    "courses": len(world.courses),
                    "course_progresses": len(world.progresses),
                    "payments": len(world.payments),
                    "user_groups": len(world.user_groups),
                    "saved_advanced_reports": len(world.saved_reports),
                },
            }

    def handle_download(
        self, method: str, path: str, params: dict[str, str], headers: Any, client: str
    ) -> Reply:
        """A completed async report's CSV at its (signed, key-less) url. Logged under the
        route `download_async_report`, with `key_source`: a client should send no key here."""
        key_source = _key_source(params, headers)
        params.pop("api_key", None)
        params.pop("acct_key", None)
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "route": "download_async_report",
            "params": {"path": path},
            "key_source": key_source,
            "client": client,
            "fault": None,
            "throttled": False,
        }
        reply = Reply(404, b"<html><body>Not Found</body></html>", HTML)
        name = path.rsplit("/", 1)[-1]
        if name.endswith(".csv") and name[:-4].isdigit():
            with self.world.lock:
                csv = async_report_download(self.world, int(name[:-4]), params.get("signature", ""))
            if csv is not None:
                reply = Reply(200, csv, "text/csv; charset=utf-8")
        self._record(entry, reply)
        return reply


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("true", "1", "yes", "on")


def _number(value: str) -> Any:
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return None if value in ("", "none", "null") else value


def _int_or(value: str | None, default: int | None, strict: bool = False) -> Any:
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError:
        if strict:
            raise
        return default


def _key_source(params: dict[str, str], headers: Any) -> str | None:
    """Where the api_key came from (the query string is the leak a test looks for)."""
    source = params.get("__key_source__")
    params.pop("__key_source__", None)
    if source:
        return source
    return "header" if headers.get("X-SkyPrep-API-Key") else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    sandbox: Sandbox

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Open connections, so stop() can end keep-alive ones too: a stopped sandbox must
        # not go on answering a client's pooled connection.
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            open_connections = list(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SkyPrepSandbox/1.0"
    server: _Server
    #: Idle keep-alive connections are closed after this many seconds.
    timeout = 120

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write, but keep Nagle out of small answers anyway.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the sandbox keeps its own request log."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        body_params = self._body_params()
        params = {**query, **body_params}
        if "api_key" in body_params:
            params["__key_source__"] = "body"
        elif "api_key" in query:
            params["__key_source__"] = "query"
        path = url.path
        if path.startswith(CONTROL_PREFIX):
            params.pop("__key_source__", None)
            reply = sandbox.handle_control(path[len(CONTROL_PREFIX) :].strip("/"), params)
        elif path.startswith("/downloads/"):
            reply = sandbox.handle_download(
                method, path, params, self.headers, self.client_address[0]
            )
        elif path.startswith(API_PREFIX):
            route = path[len(API_PREFIX) :].strip("/")
            reply = sandbox.handle_api(method, route, params, self.headers, self.client_address[0])
        else:
            reply = Reply(404, SIGN_IN_PAGE, HTML)
        self._send(reply)

    def _body_params(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0:
            return {}
        raw = self.rfile.read(length)
        content_type = (self.headers.get("Content-Type") or "").lower()
        if "json" in content_type:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return {}
            if not isinstance(data, dict):
                return {}
            return {str(k): _param_text(v) for k, v in data.items()}
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def _send(self, reply: Reply) -> None:
        if reply.delay_s > 0:
            time.sleep(reply.delay_s)
        if reply.action == "drop":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        head.append(f"Server: {self.server_version}")
        head.append(f"Content-Type: {reply.content_type}")
        head.append(f"Content-Length: {len(reply.body)}")
        for name, value in reply.headers.items():
            head.append(f"{name}: {value}")
        body = reply.body
        if reply.action == "truncate":
            head.append("Connection: close")
            body = body[: len(body) // 2]
            self.close_connection = True
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _param_text(value: Any) -> str:
    """JSON body values as the form strings handlers expect (lists become comma lists)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
