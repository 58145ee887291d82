"""The date and text formats SkyPrep puts on the wire, as pure functions of epoch seconds.

The world keeps every instant as integer seconds since the epoch (UTC) and renders it
only when a record is written, so the same instant always gives the same bytes.
"""

from __future__ import annotations

import html
import time
from datetime import datetime, timezone

DAY = 86_400
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTHS_SHORT = tuple(m[:3] for m in _MONTHS)


# Generating a million records formats ten million instants: the day part comes from a
# per-day cache and the time of day from a table, instead of gmtime+strftime each time.
_CLOCK = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY)]
_ISO_DAYS: dict[int, str] = {}
_SHORT_DAYS: dict[int, str] = {}


def _iso_day(day: int) -> str:
    text = _ISO_DAYS.get(day)
    if text is None:
        text = _ISO_DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * DAY))
    return text


def ts_iso(t: int | None) -> str | None:
    """`2020-11-06T00:40:18.000Z` (the API's usual timestamp), or None."""
    if t is None:
        return None
    day, second = divmod(t, DAY)
    return f"{_iso_day(day)}T{_CLOCK[second]}.000Z"


def ts_iso_offset(t: int, offset_hours: int = -5) -> str:
    """`2020-01-01T07:03:59.000-05:00`: saved reports carry the account's local offset."""
    local = time.gmtime(t + offset_hours * 3600)
    sign = "-" if offset_hours < 0 else "+"
    return time.strftime("%Y-%m-%dT%H:%M:%S.000", local) + f"{sign}{abs(offset_hours):02d}:00"


def ts_en(t: int) -> str:
    """`June 23 2013 12:00:00`: the users' created_at in the reference."""
    g = time.gmtime(t)
    return f"{_MONTHS[g.tm_mon - 1]} {g.tm_mday} {g.tm_year} {g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}"


def date_en(t: int) -> str:
    """`February 1, 2022`: dates in competency awards and inputs."""
    g = time.gmtime(t)
    return f"{_MONTHS[g.tm_mon - 1]} {g.tm_mday}, {g.tm_year}"


def formatted_short(t: int | None) -> str:
    """`06-Nov 2020`: the course progresses' formatted_* fields ("" when empty)."""
    if t is None:
        return ""
    day = t // DAY
    text = _SHORT_DAYS.get(day)
    if text is None:
        g = time.gmtime(day * DAY)
        text = _SHORT_DAYS[day] = f"{g.tm_mday:02d}-{_MONTHS_SHORT[g.tm_mon - 1]} {g.tm_year}"
    return text


def report_datetime(t: int | None) -> str:
    """`November 6, 2020 at 12:40 AM` as report CSVs print it; `'-` when empty."""
    if t is None:
        return "'-"
    g = time.gmtime(t)
    hour12 = g.tm_hour % 12 or 12
    ampm = "AM" if g.tm_hour < 12 else "PM"
    return f"{_MONTHS[g.tm_mon - 1]} {g.tm_mday}, {g.tm_year} at {hour12}:{g.tm_min:02d} {ampm}"


def html_text(value: str) -> str:
    """Report CSVs escape text as HTML (`&amp;`, `&#39;`, `&quot;`)."""
    return html.escape(value, quote=True).replace("&#x27;", "&#39;")


def to_epoch(value: datetime) -> int:
    """An aware datetime as integer epoch seconds (naive values are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp())


def from_epoch(t: int) -> datetime:
    """Integer epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(t, tz=timezone.utc)


def parse_any(value: object) -> int | None:
    """Epoch seconds from any date format the API or its callers use; None when empty.

    Accepts ISO-8601 (with `Z` or an offset), `YYYY-MM-DD`, `June 23 2013 12:00:00`,
    `July 31, 2015`, epoch numbers and datetimes.
    """
    if value is None or value == "" or value == "'-":
        return None
    if isinstance(value, datetime):
        return to_epoch(value)
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    try:
        return to_epoch(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    for fmt in ("%B %d %Y %H:%M:%S", "%B %d, %Y", "%B %d %Y", "%d-%b %Y"):
        try:
            return to_epoch(datetime.strptime(text, fmt))
        except ValueError:
            continue
    raise ValueError(f"unrecognised date {value!r}")
