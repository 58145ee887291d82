"""Async reports: ask SkyPrep to render a report, poll until it is ready, load its CSV.

`generate_async_report` answers a `status_url`; polling it answers `pending`, then `complete`
with the report's download `url` (or `failed`). Each finished report becomes one table,
`report__<type>[__<param>_<value>]`, typed like the saved reports (`reports.csv_to_table`)
and replaced on every run (the report is rendered fresh each time).

Where credentials go (DESIGN rule 2): the status URL is an *address of a route*, not a place to
send the key. Its route name and query are replayed against the configured `base_url` with the
key in the POST body, as every other call; the status URL's own host is never contacted with
credentials (the vendor's sample answers `api.skyprepapp.com` even to `api.skyprep.io`). The
download `url` is signed and needs no key: it is fetched with a plain GET carrying no
credentials at all, unless it is itself a route under `base_url`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import dlt
import requests
from dlt.extract.resource import DltResource

from skyprep_source.client import RETRYABLE_STATUS, SkyPrepClient
from skyprep_source.errors import SkyPrepAPIError, SkyPrepRequestFailed
from skyprep_source.pii import apply_pii
from skyprep_source.reports import csv_to_table

logger = logging.getLogger("skyprep_source")

STATUS_ROUTE = "get_async_report"
MAX_POLL_INTERVAL_S = 30.0
_DONE = frozenset({"complete", "completed", "done", "finished", "ready", "success"})
_FAILED = frozenset({"failed", "error", "errored", "cancelled", "canceled"})
_URL_FIELDS = ("url", "download_url", "csv_url", "file_url", "report_url")


class SkyPrepAsyncReportFailed(SkyPrepAPIError):
    """SkyPrep said an async report failed, or it did not finish in time."""


@dataclass(frozen=True)
class AsyncReportRequest:
    """One report to render: its type and its parameters (e.g. `course_id`)."""

    report_type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def table_name(self) -> str:
        """`report__<type>[__<param>_<value>...]`, e.g. `report__single_course__course_id_5`.

        The parameter's name leads its value: dlt prefixes a name segment that starts with a
        digit (`__5` would become `___5`), and the name says what the number is."""
        parts = [self.report_type, *(f"{k}_{self.params[k]}" for k in sorted(self.params))]
        return "report__" + "__".join(_snake(part) for part in parts)


def parse_async_reports(reports: Sequence[Any]) -> list[AsyncReportRequest]:
    """The `async_reports` source argument -> requests. Each entry is a report type, a
    (type, params) pair, or a mapping with `report_type` and its params (TOML-friendly)."""
    parsed: list[AsyncReportRequest] = []
    for entry in reports:
        if isinstance(entry, str):
            request = AsyncReportRequest(entry)
        elif isinstance(entry, Mapping):
            params = dict(entry)
            report_type = params.pop("report_type", None)
            if not report_type:
                raise ValueError(f"async_reports: {entry!r} has no report_type")
            request = AsyncReportRequest(str(report_type), params)
        elif isinstance(entry, Sequence) and len(entry) == 2 and isinstance(entry[1], Mapping):
            request = AsyncReportRequest(str(entry[0]), dict(entry[1]))
        else:
            raise ValueError(
                "async_reports: each entry is a report type, (type, params) or "
                f"{{'report_type': ..., **params}}, got {entry!r}"
            )
        if not request.report_type.strip():
            raise ValueError("async_reports: an empty report type")
        parsed.append(request)
    names = [r.table_name for r in parsed]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"async_reports: listed twice: {', '.join(doubled)}")
    return parsed


def status_route(status_url: str, base_url: str) -> tuple[str, dict[str, str]]:
    """The route and query parameters a `status_url` names, to be called under `base_url`.

    Only the path's last segment and the query are used; the URL's host is never contacted
    with credentials. A query that tries to carry credentials is refused."""
    parts = urlsplit(status_url)
    route = parts.path.rstrip("/").rsplit("/", 1)[-1]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not route:
        raise SkyPrepAPIError(f"SkyPrep answered a status_url without a route: {status_url!r}")
    if {"api_key", "acct_key"} & set(query):
        raise SkyPrepAPIError("SkyPrep answered a status_url carrying credentials; refused")
    base_host = urlsplit(base_url).netloc.lower()
    if parts.netloc and parts.netloc.lower() != base_host:
        logger.info(
            "SkyPrep status_url names host %s; polling %s at the configured base_url host %s",
            parts.netloc,
            route,
            base_host,
        )
    return route, query


def async_reports_resource(
    client: SkyPrepClient,
    reports: Sequence[Any],
    timeout_s: float = 900.0,
    poll_s: float = 2.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> DltResource:
    """One `report__...` table per listed report, replaced each run.

    Every report is requested first (SkyPrep renders them side by side), then each is polled
    with a doubling wait (from `poll_s`, at most 30 s) until it is done. A report that fails, or
    is not done within `timeout_s` of its request, fails the run: nothing of it is loaded."""
    requests_ = parse_async_reports(reports)
    if timeout_s <= 0 or poll_s <= 0:
        raise ValueError("async_report_timeout_s and async_report_poll_s must be positive")

    def read_reports() -> Iterator[Any]:
        started: list[tuple[AsyncReportRequest, str, float]] = []
        for request in requests_:
            answer = client.call(
                "generate_async_report",
                {**request.params, "report_type": request.report_type, "format": "csv"},
            )
            status_url = answer.get("status_url") if isinstance(answer, dict) else None
            if not status_url:
                raise SkyPrepAsyncReportFailed(
                    f"SkyPrep generate_async_report for {request.report_type} answered no "
                    "status_url; check the report type and its parameters"
                )
            started.append((request, str(status_url), time.monotonic()))
        for request, status_url, requested_at in started:
            csv_text = _wait_and_download(
                client, request, status_url, requested_at + timeout_s, poll_s, sleep
            )
            table = apply_pii(csv_to_table(csv_text), report=True)
            if table.num_columns == 0:
                logger.warning("SkyPrep async report %s was empty", request.table_name)
                continue
            hints = dlt.mark.make_hints(table_name=request.table_name, write_disposition="replace")
            yield dlt.mark.with_hints(table, hints, create_table_variant=True)

    return dlt.resource(read_reports, name="async_reports", write_disposition="replace")


def _wait_and_download(
    client: SkyPrepClient,
    request: AsyncReportRequest,
    status_url: str,
    deadline: float,
    poll_s: float,
    sleep: Callable[[float], None],
) -> str:
    """Poll the report's status until done; return its CSV text."""
    route, query = status_route(status_url, client.base_url)
    wait = poll_s
    while True:
        status = client.call(route, query)
        if not isinstance(status, dict):
            raise SkyPrepAsyncReportFailed(
                f"SkyPrep {route} answered a {type(status).__name__} for async report "
                f"{request.table_name} where a status object was expected"
            )
        state = str(status.get("status", "")).strip().lower()
        if state in _FAILED:
            reason = status.get("error") or status.get("message") or "no reason given"
            raise SkyPrepAsyncReportFailed(
                f"SkyPrep async report {request.table_name} failed: {reason}; nothing of it was "
                "loaded (check the report type and its parameters)"
            )
        if state in _DONE:
            return _download(client, request, status)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SkyPrepAsyncReportFailed(
                f"SkyPrep async report {request.table_name} was still {state or 'pending'} "
                "when its time limit ran out; nothing from this run was loaded (raise "
                "async_report_timeout_s under [sources.skyprep], or re-run later)"
            )
        sleep(min(wait, remaining))
        wait = min(wait * 2, MAX_POLL_INTERVAL_S)


def _download(client: SkyPrepClient, request: AsyncReportRequest, status: dict[str, Any]) -> str:
    """The finished report's CSV: inline, or from its url (see the module docstring)."""
    for inline in ("csv", "data"):
        if isinstance(status.get(inline), str) and status[inline].strip():
            return str(status[inline])
    url = next((str(status[f]) for f in _URL_FIELDS if status.get(f)), None)
    if url is None:
        raise SkyPrepAsyncReportFailed(
            f"SkyPrep async report {request.table_name} is done but names no download url"
        )
    report_format = str(status.get("format") or "").lower()
    if report_format == "xlsx" or urlsplit(url).path.lower().endswith(".xlsx"):
        raise SkyPrepAsyncReportFailed(
            f"SkyPrep async report {request.table_name} came as XLSX although CSV was asked "
            "for; this source loads CSV reports only"
        )
    base = urlsplit(client.base_url)
    target = urlsplit(url)
    if target.netloc.lower() == base.netloc.lower() and target.path.startswith(base.path + "/"):
        # a route of the API itself: called like any route (key in the body, rate budget paid)
        route, query = status_route(url, client.base_url)
        return client.call_text(route, query)
    return fetch_signed_url(client, url)


def fetch_signed_url(client: SkyPrepClient, url: str) -> str:
    """GET a signed download url with no credentials, retrying like the client does.

    Not `client.call_text`: the client attaches the key to every call, and this url may be on
    another host (object storage). Calls to the API's own host pay the shared rate budget."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise SkyPrepAPIError(f"SkyPrep answered a download url that is not http(s): {url!r}")
    same_host = urlsplit(url).netloc.lower() == urlsplit(client.base_url).netloc.lower()
    policy = client.retry
    problem = "no attempt made"
    for attempt in range(1, policy.max_attempts + 1):
        if same_host:
            client.rate_budget.acquire()
        try:
            response = requests.get(url, timeout=client.request_timeout)
            if response.status_code not in RETRYABLE_STATUS:
                if response.status_code >= 400:
                    raise SkyPrepAPIError(
                        f"SkyPrep report download answered HTTP {response.status_code}",
                        status=response.status_code,
                    )
                return response.content.decode("utf-8", errors="replace")
            problem = f"HTTP {response.status_code}"
        except (requests.ConnectionError, requests.Timeout) as error:
            problem = type(error).__name__
        if attempt < policy.max_attempts:
            time.sleep(policy.delay(attempt, None))
    raise SkyPrepRequestFailed(
        f"SkyPrep report download failed {policy.max_attempts} times in a row, last with "
        f"{problem}; nothing from this run was loaded, re-run later"
    )


def _snake(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower() or "unnamed"
