"""Checks of the source's settings that dlt's type coercion cannot make.

`skyprep()` and the job call `check_settings` before the first call, so a value that would
make a run crawl, fail late or send a placeholder as a credential is refused in one line that
names the setting. The checks never print a secret's value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from dlt.common.configuration.exceptions import ConfigurationException

# the one word that turns the client-side rate budget off (None does too, from Python)
REQUESTS_PER_MINUTE_OFF = "off"
_OFF_WORDS = frozenset({REQUESTS_PER_MINUTE_OFF, "none"})
# the admin API's path, which every base_url ends with
API_PATH = "/admin/api"
# the values of .dlt/secrets.toml.example: copied but not filled in
PLACEHOLDER_API_KEY = "your SkyPrep API key (Customization tab of the platform)"
PLACEHOLDER_ACCT_KEY = "yourcompany.skyprepapp.com"


def where(name: str, file: str = "config.toml") -> str:
    """Where a `[sources.skyprep]` setting is set, for a message that names the fix."""
    return f"SOURCES__SKYPREP__{name.upper()} (or {name} under [sources.skyprep] in .dlt/{file})"


class InvalidSetting(ConfigurationException, ValueError):
    """A setting of the source with a value it cannot run with; the message names it."""

    def __init__(self, name: str, problem: str, file: str = "config.toml") -> None:
        self.setting = name
        super().__init__(f"{name} {problem}; set {where(name, file)}")


def parse_requests_per_minute(value: Any) -> int | None:
    """`requests_per_minute` as the client takes it: a positive integer, or None for no
    budget. Accepts None, `off` (any case; `none` too) and numbers as text, as they come from
    TOML or the environment; refuses 0, negatives and any other word."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidSetting(
            "requests_per_minute", f"must be a positive integer or off, got {value!r}"
        )
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _OFF_WORDS:
            return None
        try:
            value = int(text)
        except ValueError:
            raise InvalidSetting(
                "requests_per_minute", f"must be a positive integer or off, got {text!r}"
            ) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value < 1:
        raise InvalidSetting(
            "requests_per_minute",
            f"must be a positive integer or off (no budget), got {value!r}",
        )
    return value


def check_base_url(base_url: Any) -> None:
    """An http(s) URL of the admin API: it ends with `/admin/api`."""
    text = str(base_url or "").strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidSetting(
            "base_url", f"must be an http:// or https:// URL ending in {API_PATH}, got {text!r}"
        )
    if not parts.path.rstrip("/").endswith(API_PATH):
        raise InvalidSetting(
            "base_url",
            f"must end in {API_PATH} (e.g. https://api.skyprep.io{API_PATH}), got {text!r}",
        )


def check_acct_key(acct_key: Any) -> None:
    """The platform's domain, e.g. `acme.skyprepapp.com`: no scheme, no path."""
    text = str(acct_key or "").strip()
    if "://" in text or "/" in text or " " in text:
        raise InvalidSetting(
            "acct_key",
            f"must be the platform's domain (e.g. acme.skyprepapp.com), not a URL: got {text!r}",
        )
    if text == PLACEHOLDER_ACCT_KEY:
        raise InvalidSetting(
            "acct_key", "is still the example's placeholder; use your platform's domain"
        )


def check_api_key(api_key: Any) -> None:
    """Not the example's placeholder (the value itself is never printed)."""
    if str(api_key or "").strip() == PLACEHOLDER_API_KEY:
        raise InvalidSetting(
            "api_key",
            "is still the example's placeholder; use the key from the Customization tab",
            file="secrets.toml",
        )


def check_settings(
    api_key: Any, acct_key: Any, base_url: Any, requests_per_minute: Any
) -> int | None:
    """Every check above; returns `requests_per_minute` parsed."""
    check_api_key(api_key)
    check_acct_key(acct_key)
    check_base_url(base_url)
    return parse_requests_per_minute(requests_per_minute)
