"""Saved advanced reports: the CSV SkyPrep renders -> one typed Arrow table.

SkyPrep's CSVs carry quirks (API-NOTES): a UTF-8 BOM, `\\r\\n`, quoted fields with newlines
and `""`, HTML-escaped text, `Month D, YYYY at h:mm AM` dates, capitalised statuses, `'-` for
empty cells, and repeated user+course rows for repeat attempts. Each is undone here, column
by column, so the table reads like the API's own data.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from skyprep_source.normalize import EMPTY_TEXTS, parse_timestamps

# report cells print statuses capitalised; the tables use the API's lowercase vocabulary
STATUS_VOCABULARY = frozenset(
    {"passed", "failed", "in-progress", "not-started", "not-applicable", "not-enrolled"}
)
_REPORT_DATE = r"^[A-Z][a-z]+ \d{1,2}, \d{4}( at \d{1,2}:\d{2} ?[AP]M)?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"
_INTEGER = r"^-?(0|[1-9]\d{0,17})$"  # no leading zeros: "0042" is a code, not a number
_PERCENT = r"^-?\d+(\.\d+)?%$"
# candidate columns naming the user and the course of a row, best first
_USER_COLUMNS = ("User ID", "Email", "User Email", "Username", "User")
_COURSE_COLUMNS = ("Course ID", "Course", "Course Name")


# `saved_report_type` of a report whose result SkyPrep stores: its CSV changes only when the
# report is regenerated, and regenerating it moves `updated_at`
STORED_REPORT_TYPE = "saved_report_with_data"


def is_stored_report(report: Mapping[str, Any]) -> bool:
    """Whether SkyPrep keeps the report's result (`saved_report_with_data`). Any other report
    (`saved_report`, rendered when downloaded, or a type the list does not give) is live: its
    rows change with the account while its `updated_at` does not."""
    return report.get("saved_report_type") == STORED_REPORT_TYPE


def stored_report_version(report: Mapping[str, Any]) -> str:
    """What identifies a stored report's result: its `updated_at` and, when listed, the digest
    of its parameters (an edited definition). Empty when the list gives no `updated_at`."""
    updated_at = report.get("updated_at")
    if updated_at is None:
        return ""
    version = updated_at.isoformat() if hasattr(updated_at, "isoformat") else str(updated_at)
    digest = report.get("report_params_digest")
    return f"{version} {digest}" if digest else version


def content_digest(csv_text: str | bytes) -> str:
    """A downloaded report's content digest (SHA-256 of its CSV)."""
    data = csv_text.encode("utf-8") if isinstance(csv_text, str) else csv_text
    return hashlib.sha256(data).hexdigest()


def report_table_name(name: str) -> str:
    """`saved_report__<name in snake_case>` for a report's name."""
    snake = re.sub(r"[^0-9a-zA-Z]+", "_", html.unescape(name)).strip("_").lower()
    return f"saved_report__{snake or 'unnamed'}"


def csv_to_table(text: str | bytes) -> pa.Table:
    """Parse a saved report's CSV into a typed Arrow table (every quirk undone)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return pa.table({})
    header = _unique([html.unescape(h).strip() for h in next(csv.reader(io.StringIO(text)))])
    data = text.encode("utf-8")
    raw = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(column_names=header, skip_rows=1),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        # everything as text first: '-, "0042" and "60%" must not be guessed by the reader
        convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, pa.string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    columns = [type_report_column(raw.column(name).combine_chunks()) for name in header]
    table = pa.Table.from_arrays(columns, names=header)
    return _keep_last_per_user_and_course(table)


def type_report_column(column: pa.Array) -> pa.Array:
    """One CSV column of text -> its type: ids/counts, percentages, dates, statuses or text."""
    stripped = pc.utf8_trim_whitespace(column)
    empty = pc.is_in(stripped, value_set=pa.array(EMPTY_TEXTS, pa.string()))
    values = pc.if_else(empty, pa.scalar(None, pa.string()), stripped)
    present = values.drop_null()
    if len(present) == 0:
        return values
    if pc.any(pc.match_substring(present, "&")).as_py():
        values = pa.array(
            [None if v is None else html.unescape(v) for v in values.to_pylist()], pa.string()
        )
        present = values.drop_null()
    if pc.all(pc.match_substring_regex(present, _INTEGER)).as_py():
        return pc.cast(values, pa.int64())
    if pc.all(pc.match_substring_regex(present, _PERCENT)).as_py():
        return pc.cast(pc.utf8_rtrim(values, characters="%"), pa.float64())
    if (
        pc.all(pc.match_substring_regex(present, _REPORT_DATE)).as_py()
        or pc.all(pc.match_substring_regex(present, _ISO_DATE)).as_py()
    ):
        return parse_timestamps(values)
    lowered = pc.utf8_lower(values)
    if pc.all(pc.is_in(lowered.drop_null(), value_set=pa.array(sorted(STATUS_VOCABULARY)))).as_py():
        return lowered
    return values


def _keep_last_per_user_and_course(table: pa.Table) -> pa.Table:
    """A repeat attempt prints one user+course twice: keep the last row, in file order."""
    user = next((c for c in _USER_COLUMNS if c in table.column_names), None)
    course = next((c for c in _COURSE_COLUMNS if c in table.column_names), None)
    if user is None or course is None or table.num_rows == 0:
        return table
    indexed = table.select([user, course]).append_column(
        "__row", pa.array(range(table.num_rows), pa.int64())
    )
    last = indexed.group_by([user, course], use_threads=False).aggregate([("__row", "max")])
    keep = pc.sort_indices(last.column("__row_max"))
    return table.take(pc.take(last.column("__row_max"), keep))


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (two courses can share a name in a matrix report)."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        name = name or "column"
        count = seen.get(name.lower(), 0)
        seen[name.lower()] = count + 1
        unique.append(name if count == 0 else f"{name} {count + 1}")
    return unique
