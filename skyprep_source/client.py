"""One HTTP client for the SkyPrep admin API: auth, rate budget, retries, error mapping and
the read-only guard; paging is the pager's (`pager.py`), which this client hands its calls.
Every resource of a run shares one client (and so one rate budget).

Why not dlt's retrying `requests` session: the rate budget must be paid before *every*
attempt (a retry is a call the server counts), and two failure modes only show after the body
is read — a truncated JSON body (retryable) and the vendor's HTML login page (a credentials
error, never retried). A small loop of our own keeps those three rules in one readable place.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, Generic

import orjson
import requests
import urllib3

from skyprep_source.catalogue import READ_ROUTES as CATALOGUE_READ_ROUTES
from skyprep_source.errors import (
    CREDENTIALS_HINT,
    SkyPrepAPIError,
    SkyPrepCredentialsError,
    SkyPrepNotFound,
    SkyPrepRequestFailed,
    SkyPrepRouteRefused,
    SkyPrepRunDeadline,
    SkyPrepTransportError,
)
from skyprep_source.pager import (
    JSON_ROWS,
    P,
    PageFormat,
    Pager,
    PagingKnowledge,
    RowKey,
    key_of,
)

logger = logging.getLogger("skyprep_source")

DEFAULT_BASE_URL = "https://api.skyprep.io/admin/api"

# Routes that only read (derived from the catalogue). Anything else is refused before a byte
# leaves the machine.
READ_ROUTES = CATALOGUE_READ_ROUTES
# Named "get_" but with side effects: they mint login keys, auto-create users, mint OTP keys.
SIDE_EFFECT_ROUTES: frozenset[str] = frozenset({"get_login_key", "get_course_otp"})

# an error object's message that says the record does not exist (the only answer, besides
# HTTP 404, that counts as "gone"; API-NOTES: the vendor's not-found answer is undocumented)
NOT_FOUND_MESSAGE = re.compile(
    r"\b(not found|not exist|does not exist|doesn't exist|no such|could not find|couldn't find)\b",
    re.IGNORECASE,
)
# what a call's answer must be: a JSON array (list routes), an object that is not an error
# (single-record routes), or anything (test_connection, get_course_item_progress)
Expect = str
EXPECT_ANY, EXPECT_LIST, EXPECT_RECORD = "any", "list", "record"

RETRYABLE_STATUS: frozenset[int] = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 522, 524})
_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # refused, reset, dropped (RemoteDisconnected), DNS
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # body cut short against Content-Length
    requests.exceptions.ContentDecodingError,
    # the body is read from urllib3 directly: its errors (IncompleteRead, ReadTimeoutError,
    # ProtocolError) arrive unwrapped
    urllib3.exceptions.HTTPError,
    ConnectionError,  # a socket reset while the body is read
    TimeoutError,
    SkyPrepTransportError,
)


def ensure_read_route(route: str) -> None:
    """Raise `SkyPrepRouteRefused` unless `route` is on the read-only allow-list."""
    if route in SIDE_EFFECT_ROUTES:
        raise SkyPrepRouteRefused(
            f"SkyPrep route {route!r} has side effects (it creates login or enrollment keys) "
            "and is never called by this read-only source"
        )
    if route not in READ_ROUTES:
        raise SkyPrepRouteRefused(
            f"SkyPrep route {route!r} is not on the read-only allow-list; this source never "
            "calls routes that could change the account"
        )


# spacing margin of the rate budget: a server clock that sees our calls a little bunched
RATE_MARGIN = 1.03


class RateBudget:
    """Calls spaced evenly: one every `window_s / requests_per_minute` seconds (+3%).

    Even spacing, not a burst then a wait: a server that counts per sliding window, per fixed
    minute or with a small token bucket never sees more than `requests_per_minute` calls in
    any `window_s`. The 3% margin (1.8 s a minute) covers the jitter between our clock and the
    server's.
    Shared by every resource (and thread) of a run; `pause()` holds everybody back for the
    server's `Retry-After`. `requests_per_minute=None` keeps only the pause.
    """

    def __init__(
        self,
        requests_per_minute: int | None,
        window_s: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_minute is not None and requests_per_minute < 1:
            raise ValueError("requests_per_minute must be a positive integer or None")
        self.requests_per_minute = requests_per_minute
        self.window_s = window_s
        self.interval_s = (
            0.0 if requests_per_minute is None else window_s * RATE_MARGIN / requests_per_minute
        )
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = float("-inf")
        self._paused_until = float("-inf")

    # one budget per (account, budget settings) in this process: see `for_account`
    _accounts: ClassVar[dict[tuple[str, str, int | None, float], RateBudget]] = {}
    _accounts_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def for_account(
        cls,
        base_url: str,
        acct_key: str,
        requests_per_minute: int | None,
        window_s: float = 60.0,
    ) -> RateBudget:
        """The budget every client of this account shares within the process.

        The job's call plan and the run it precedes (and two sources of one account) pay into
        one budget, so together they stay inside the account's limit; a fresh budget each
        would let the run start at full speed right after the plan's calls.
        """
        key = (
            base_url.rstrip("/"),
            str(acct_key).strip().lower(),
            requests_per_minute,
            float(window_s),
        )
        with cls._accounts_lock:
            budget = cls._accounts.get(key)
            if budget is None:
                budget = cls._accounts[key] = cls(requests_per_minute, window_s)
            return budget

    def acquire(self) -> float:
        """Block until this caller's slot; return the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next_slot, self._paused_until)
            self._next_slot = slot + self.interval_s
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller back for `seconds` (the server asked us to slow down)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts with exponential backoff; a server's `Retry-After` wins when given."""

    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after_s)
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        # a little jitter so concurrent workers do not retry in lockstep
        return float(backoff * (1.0 + 0.1 * random.random()))


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date; None when absent/odd."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class _RetryableResponse(Exception):
    """An answer worth retrying (throttled, 5xx); carries the server's Retry-After."""

    def __init__(self, description: str, retry_after: float | None, throttled: bool) -> None:
        super().__init__(description)
        self.retry_after = retry_after
        self.throttled = throttled


@dataclass(frozen=True)
class _Decoded(Generic[P]):
    """A body a page format's fast path read (see `PageFormat.decode`)."""

    page: P


class SkyPrepClient:
    """The SkyPrep admin API, read-only, with the account's rate budget and bounded retries.

    Credentials travel in the POST form body only (never in a URL); they are redacted from
    every message this client produces.
    """

    # HTTP attempts of every client in this process: the scheduled job's summary reports them
    calls_in_process: ClassVar[int] = 0

    def __init__(
        self,
        api_key: str,
        acct_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        rate_budget: RateBudget | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 60.0,
        page_size: int = 1000,
        concurrency: int = 1,
        session: requests.Session | None = None,
        verify_paged_lists: bool = True,
        run_deadline_s: float | None = None,
    ) -> None:
        if not api_key or not str(api_key).strip():
            raise SkyPrepCredentialsError(f"SkyPrep api_key is empty: {CREDENTIALS_HINT}")
        if not acct_key or not str(acct_key).strip():
            raise SkyPrepCredentialsError(f"SkyPrep acct_key is empty: {CREDENTIALS_HINT}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if page_size < 1 or concurrency < 1:
            raise ValueError("page_size and concurrency must be positive")
        self._api_key = str(api_key).strip()
        self._acct_key = str(acct_key).strip()
        self.base_url = base_url.rstrip("/")
        self.rate_budget = rate_budget or RateBudget(None)
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self.page_size = page_size
        self.paging = PagingKnowledge()
        self.pager = Pager(self.paging)  # paging apart from transport and retries
        # False: `pages(verify_stable=True)` skips its look back at page 1 (saves a call per
        # multi-page list, at the risk the docstring of `pages` describes)
        self.verify_paged_lists = verify_paged_lists
        self._session = session or requests.Session()
        # proxies and CA bundle from the environment, looked up once for our one host instead
        # of on every call (requests scans os.environ per request otherwise)
        environment = self._session.merge_environment_settings(self.base_url, {}, None, None, None)
        self._proxies = environment.get("proxies") or {}
        self._verify = environment.get("verify", True)
        self._session.trust_env = False
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self.calls = 0  # HTTP attempts sent, retries included
        self.retries = 0
        # the whole run's bound in seconds, counted from the first call (None: unbounded)
        self.run_deadline_s = run_deadline_s
        self._run_deadline: float | None = None

    def __repr__(self) -> str:  # never show the key
        return f"SkyPrepClient(base_url={self.base_url!r}, acct_key={self._acct_key!r})"

    def __enter__(self) -> SkyPrepClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    # ---- single calls ----------------------------------------------------------------

    def call(self, route: str, params: Mapping[str, Any] | None = None) -> Any:
        """POST `route` with `params`; return the parsed JSON answer (retried as needed)."""
        return self._request(route, params, expect_json=True)

    def call_record(self, route: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call a single-record route; the answer must be a JSON object that is not an error.

        `{}` or an error object at HTTP 200 is retried like a 5xx and then fails the call
        (`SkyPrepRequestFailed`); a clear "not found" (HTTP 404, or an error object saying so)
        raises `SkyPrepNotFound`; any other shape (a list, a number) raises `SkyPrepAPIError`.
        """
        answer = self._request(route, params, expect_json=True, expect=EXPECT_RECORD)
        return dict(answer)

    def call_text(self, route: str, params: Mapping[str, Any] | None = None) -> str:
        """POST `route`; return the body as text (CSV downloads). HTML still means credentials."""
        return str(self._request(route, params, expect_json=False))

    def call_list(self, route: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Call a list route; the answer must be a JSON array."""
        return self.call_page(route, params, JSON_ROWS)

    def call_page(
        self, route: str, params: Mapping[str, Any] | None, page_format: PageFormat[P]
    ) -> P:
        """Call a list route; its answer (a JSON array) as a page of `page_format`."""
        answer = self._request(
            route, params, expect_json=True, decode=page_format.decode, expect=EXPECT_LIST
        )
        if isinstance(answer, _Decoded):
            return answer.page
        return page_format.from_rows(answer)

    # ---- paging ----------------------------------------------------------------------

    def pages(
        self,
        route: str,
        params: Mapping[str, Any] | None = None,
        key: RowKey | None = None,
        *,
        verify_stable: bool = False,
        page_format: PageFormat[Any] = JSON_ROWS,
    ) -> Iterator[Any]:
        """Yield the rows of a list route page by page, each row once.

        Works whether the server honours `page`/`per_page`, caps the page size, or ignores
        paging and answers the whole list every time: it stops (never loops), and rows seen on
        an earlier page (page drift, repeated lists) are dropped by `key`. The calls are the
        minimum, floor(n / per_page) + 1 per list, unless `verify_stable`: then a list that
        spanned several pages is checked once more at its first page, and if that moved while
        we paged (records deleted ahead of us make later rows slide past us) the list is read
        again, yielding only rows not yet seen. That covers every deletion in a two-page list
        and in page 1 of a longer one; a deletion from page 2 or later of a longer list, made
        after we read that page, still slides one row past us unseen (docs/source.md §3).

        Pages are lists of JSON records, or what `page_format` makes of each answer (typed
        Arrow tables: `arrow_pages.ArrowPages`).
        """
        per_page = self.page_size

        def fetch(page: int) -> Any:
            page_params = {**(params or {}), "page": page, "per_page": per_page}
            return self.call_page(route, page_params, page_format)

        return self.pager.pages(
            route,
            fetch,
            key or key_of("id"),
            page_format,
            per_page,
            verify_stable=verify_stable and self.verify_paged_lists,
        )

    # ---- the request loop ------------------------------------------------------------

    def _request(
        self,
        route: str,
        params: Mapping[str, Any] | None,
        *,
        expect_json: bool,
        decode: Callable[[bytes], Any] | None = None,
        expect: Expect = EXPECT_ANY,
    ) -> Any:
        ensure_read_route(route)
        url = f"{self.base_url}/{route}"
        form = {k: _form_value(v) for k, v in (params or {}).items() if v is not None}
        form["api_key"] = self._api_key
        form["acct_key"] = self._acct_key
        attempts = self.retry.max_attempts
        last_problem = "no attempt made"
        for attempt in range(1, attempts + 1):
            self.rate_budget.acquire()
            # the whole call (connect, headers, body) within request_timeout of wall clock,
            # and within the run's deadline
            deadline = min(time.monotonic() + self.request_timeout, self._run_time_left(route))
            retry_after: float | None = None
            try:
                with self._in_flight:
                    with self._lock:
                        self.calls += 1
                        SkyPrepClient.calls_in_process += 1
                    response = self._session.post(
                        url,
                        data=form,
                        timeout=max(0.001, min(self.request_timeout, deadline - time.monotonic())),
                        proxies=self._proxies,
                        verify=self._verify,
                        stream=True,
                    )
                    # a body cut short of its Content-Length raises here, inside the try; one
                    # that trickles in past the call's deadline raises TimeoutError
                    body = read_body(response, deadline)
                    response.raw.release_conn()
                return self._interpret(
                    route, response, body, expect_json=expect_json, decode=decode, expect=expect
                )
            except _RetryableResponse as problem:
                last_problem = str(problem)
                retry_after = problem.retry_after
                throttled = problem.throttled
            except _RETRYABLE_EXCEPTIONS as problem:
                last_problem = f"{type(problem).__name__}: {self._redact(str(problem))}"
                throttled = False
            if attempt == attempts:
                break
            delay = self.retry.delay(attempt, retry_after)
            with self._lock:
                self.retries += 1
            logger.warning(
                "SkyPrep %s: %s (attempt %d/%d); retrying in %.1fs",
                route,
                last_problem,
                attempt,
                attempts,
                delay,
            )
            if throttled:
                # the account's budget is spent: hold back every worker, not just this one
                self.rate_budget.pause(delay)
            else:
                time.sleep(delay)
        raise SkyPrepRequestFailed(
            f"SkyPrep {route} failed {attempts} times in a row, last with {last_problem}; "
            "re-run later (or raise max_attempts)"
        )

    def _run_time_left(self, route: str) -> float:
        """The monotonic time the run must end by (inf without `run_deadline_s`); raises
        `SkyPrepRunDeadline` once it has passed."""
        if self.run_deadline_s is None:
            return float("inf")
        now = time.monotonic()
        with self._lock:
            if self._run_deadline is None:
                self._run_deadline = now + self.run_deadline_s
        if now >= self._run_deadline:
            raise SkyPrepRunDeadline(
                f"the run went past its run_deadline_s={self.run_deadline_s:g} before SkyPrep "
                f"{route}; nothing from this run was loaded: raise run_deadline_s "
                "(SOURCES__SKYPREP__RUN_DEADLINE_S) or leave it unset"
            )
        return self._run_deadline

    def _interpret(
        self,
        route: str,
        response: requests.Response,
        body: bytes,
        *,
        expect_json: bool,
        decode: Callable[[bytes], Any] | None = None,
        expect: Expect = EXPECT_ANY,
    ) -> Any:
        status = response.status_code
        if status in RETRYABLE_STATUS:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise _RetryableResponse(
                f"HTTP {status}", retry_after, throttled=status == 429 or retry_after is not None
            )
        content_type = response.headers.get("Content-Type", "").lower()
        head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
        looks_html = "html" in content_type or head[:1] == b"<"
        if status in (401, 403) or looks_html:
            raise SkyPrepCredentialsError(
                f"SkyPrep {route} answered with "
                f"{'an HTML page' if looks_html else f'HTTP {status}'} instead of JSON: "
                f"{CREDENTIALS_HINT}"
            )
        if status == 404:
            raise SkyPrepNotFound(
                f"SkyPrep {route} answered HTTP 404: {self._redact(_short_text(body))}"
            )
        if status >= 400:
            raise SkyPrepAPIError(
                f"SkyPrep {route} answered HTTP {status}: {self._redact(_short_text(body))}",
                status=status,
            )
        if not expect_json:
            if not body:
                raise SkyPrepTransportError("empty body")
            if head[:1] in (b"{", b"["):
                # a file was asked for (CSV): JSON here is an error answer, never the file
                return self._shape_error(route, _loads_or_none(body), "a CSV file")
            return body.decode("utf-8", errors="replace")
        if decode is not None:
            page = decode(body)
            if page is not None:
                return _Decoded(page)
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            # JSON that starts but does not finish was cut in transit: worth another try
            if not head or head[:1] in b'[{"' or head[:1].isdigit():
                raise SkyPrepTransportError(f"truncated JSON body ({len(body)} bytes)") from None
            raise SkyPrepCredentialsError(
                f"SkyPrep {route} answered with a non-JSON body: {CREDENTIALS_HINT}"
            ) from None
        if expect == EXPECT_LIST and not isinstance(answer, list):
            return self._shape_error(route, answer, "a JSON array")
        if expect == EXPECT_RECORD and (
            not isinstance(answer, dict) or not answer or _error_message(answer) is not None
        ):
            return self._shape_error(route, answer, "a JSON object (one record)")
        return answer

    def _shape_error(self, route: str, answer: Any, expected: str) -> Any:
        """Raise for an answer of the wrong shape (never returns).

        Never read as an empty snapshot or a deleted record: a clear "not found" raises
        `SkyPrepNotFound`; `{}` and an error object (a glitch the server may get over) are
        retried like a 5xx; any other shape (a list where one record was expected) raises
        `SkyPrepAPIError`."""
        message = _error_message(answer) if isinstance(answer, dict) else None
        if message is not None and NOT_FOUND_MESSAGE.search(message):
            raise SkyPrepNotFound(
                f"SkyPrep {route} answered not found: {self._redact(message)[:200]!r}"
            )
        if isinstance(answer, dict) and (message is not None or not answer):
            raise _RetryableResponse(
                f"{self._describe_json(answer)} at HTTP 200 where {expected} was expected",
                None,
                throttled=False,
            )
        raise SkyPrepAPIError(
            f"SkyPrep {route} answered {self._describe_json(answer)} where {expected} was "
            f"expected; if this is an authentication message, {CREDENTIALS_HINT}"
        )

    def _describe_json(self, answer: Any) -> str:
        if isinstance(answer, dict):
            message = _error_message(answer) or answer.get("message")
            if message:
                return f"an object with the message {self._redact(str(message))[:200]!r}"
            return "an object" if answer else "an empty object {}"
        if answer is None:
            return "a body that is not JSON"
        return f"a {type(answer).__name__}"

    def _redact(self, text: str) -> str:
        return redact_secret(text, self._api_key)


# bytes asked per read of a body: large bodies in few reads, a trickle noticed per read
BODY_READ_BYTES = 1 << 20


def read_body(response: requests.Response, deadline: float) -> bytes:
    """The whole body of a streamed response, or TimeoutError once `deadline` (monotonic) has
    passed: the socket's timeout bounds each read, a server that sends one byte every few
    seconds would otherwise hold a call for ever."""
    chunks: list[bytes] = []
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError("the answer did not finish within request_timeout")
        chunk = response.raw.read1(BODY_READ_BYTES, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def secret_encodings(secret: str) -> list[str]:
    """`secret` as it can travel: raw, form-urlencoded (`+` or `%20` for a space),
    JSON-escaped, and Python-escaped (a dict echoed into a message); longest first, so no
    encoding is left half redacted."""
    forms = {
        secret,
        urllib.parse.quote_plus(secret),
        urllib.parse.quote(secret, safe=""),
        orjson.dumps(secret).decode()[1:-1],
        repr(secret)[1:-1],
    }
    return sorted((f for f in forms if f), key=len, reverse=True)


def redact_secret(text: str, secret: str | None) -> str:
    """`text` with `secret`, in each of its encodings, replaced by ***."""
    if not secret:
        return text
    for form in secret_encodings(secret):
        text = text.replace(form, "***")
    return text


def _form_value(value: Any) -> Any:
    """Form encoding: lists as the API's comma lists, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return ",".join(str(v) for v in value)
    return value


def _error_message(answer: Mapping[str, Any]) -> str | None:
    """The message of an error object (`{"error": ...}`, `{"errors": [...]}`), else None."""
    for name in ("error", "errors"):
        value = answer.get(name)
        if value not in (None, "", [], {}, False):
            return str(value)
    return None


def _loads_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _short_text(body: bytes) -> str:
    text = body[:300].decode("utf-8", errors="replace").strip()
    return text or "(empty body)"
