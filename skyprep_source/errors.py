"""Errors a user of the SkyPrep source can meet; each message names the fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("skyprep_source")

CREDENTIALS_HINT = (
    "check api_key and acct_key (sources.skyprep.api_key / sources.skyprep.acct_key, or "
    "SOURCES__SKYPREP__API_KEY / SOURCES__SKYPREP__ACCT_KEY) and base_url "
    "(sources.skyprep.base_url)"
)


class SkyPrepError(Exception):
    """Base class of every error the SkyPrep source raises on purpose."""


class SkyPrepCredentialsError(SkyPrepError):
    """SkyPrep refused the credentials or answered with its HTML web page instead of JSON."""


class SkyPrepRouteRefused(SkyPrepError):
    """The client was asked to call a route that is not on the read-only allow-list."""


class SkyPrepAPIError(SkyPrepError):
    """SkyPrep answered a call with an error that retrying cannot fix (a 4xx, an error JSON)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SkyPrepNotFound(SkyPrepAPIError):
    """SkyPrep said clearly that a record does not exist (HTTP 404, or an error object at 200
    whose message says "not found"): the only answer that lets a record be retired."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=404)


class SkyPrepRequestFailed(SkyPrepError):
    """A call kept failing with retryable errors until the attempts ran out."""


class SkyPrepTransportError(SkyPrepError):
    """A retryable transport problem the HTTP library does not see, e.g. a truncated body."""


class SkyPrepRunDeadline(SkyPrepError):
    """The run went past its `run_deadline_s`: it fails as a whole (never skips a resource)."""


@contextmanager
def unless_vanished(what: str | None) -> Iterator[None]:
    """Run the block; a 404 (the record was deleted since its parent's list named it) ends
    it quietly but for one warning, `SkyPrep <what> vanished while it was read` (none when
    `what` is None: a 404 that is an expected answer). Any other error goes on."""
    try:
        yield
    except SkyPrepAPIError as error:
        if error.status != 404:
            raise
        if what is not None:
            logger.warning("SkyPrep %s vanished while it was read", what)
