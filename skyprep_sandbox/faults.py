"""Switchable, deterministic faults: what a flaky SkyPrep (or the network) does to a client.

A fault is armed with `Sandbox.inject_fault(kind, route=None, count=1, skip=0, ...)` and
fires on the next `count` matching API calls (after letting `skip` of them through).
Page-drift faults fire only on calls for page 2 or later, so they strike between the
pages of one listing. Every kind is described in docs/sandbox.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = (
    "http_500",
    "http_502",
    "http_503",
    "http_504",
    "rate_limit_429",
    "slow",
    "drop_connection",
    "truncated_body",
    "html_error",
    "page_drift_insert",
    "page_drift_delete",
    "empty_list",
    "empty_object",
    "error_object",
    "json_answer",
    "cut_list",
    "bad_value",
)
DRIFT_KINDS = ("page_drift_insert", "page_drift_delete")


@dataclass
class Fault:
    """One armed fault. `options`: delay_s (slow), retry_after (429/503; None omits the
    header), status (html_error; default 200), records (page drift; default 3), message
    (error_object), body (json_answer: any JSON value), rows (cut_list; default 1), field,
    value and rows (bad_value: `field` set to `value` in the first `rows` records, default 1)."""

    kind: str
    route: str | None = None
    count: int = 1
    skip: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    @property
    def remaining(self) -> int:
        return self.count - self.fired


class FaultPlan:
    """The armed faults, consulted once per API call (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, fault: Fault) -> Fault:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {fault.kind!r}: use one of {', '.join(FAULT_KINDS)}"
            )
        if fault.count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return [f for f in self._faults if f.remaining > 0]

    def take(self, route: str, page: int) -> Fault | None:
        """The fault this call suffers, if any (consumes it)."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining <= 0 or (fault.route is not None and fault.route != route):
                    continue
                if fault.kind in DRIFT_KINDS and page < 2:
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.fired += 1
                return fault
            return None
