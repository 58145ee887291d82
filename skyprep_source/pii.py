"""Personal data under control: the `pii` setting, applied to every table before dlt sees it.

- `keep` (default): values as the API gives them.
- `hash`: each value replaced by its keyed HMAC-SHA256 (hex), keyed with the secret
  `pii_salt` (`sources.skyprep.pii_salt` in .dlt/secrets.toml): the same value gives the same
  hash in every run and table, so joins on e-mail still hold, and nobody without the salt can
  test a guessed e-mail against it.
- `drop`: the columns are left out.

The columns are named in `PII_COLUMNS` (e-mails, usernames, person names, phones, addresses,
card numbers, payer names and e-mails), matched on the name dlt gives the column (`First Name`
in a report CSV is `first_name`), in API tables and report CSVs alike. Nothing in a load
package, trace or table holds the clear value: the rows are changed here, before dlt.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

PiiMode = Literal["keep", "hash", "drop"]
PII_MODES: tuple[str, ...] = ("keep", "hash", "drop")

PII_COLUMNS: frozenset[str] = frozenset(
    {
        "email",
        "user_email",
        "payer_email",
        "username",
        "user_name",
        "first_name",
        "last_name",
        "full_name",
        "payer_name",
        "payer_first_name",
        "payer_last_name",
        "cell",
        "phone",
        "work_phone",
        "mobile",
        "address",
        "card_no",
        "card_number",
    }
)
# report CSV columns that hold a person: "User" in the Overdue Learners report is a name
REPORT_PII_COLUMNS: frozenset[str] = PII_COLUMNS | {"user", "learner", "name"}


def column_key(name: str) -> str:
    """A column's name as dlt's snake_case naming makes it (`First Name` -> `first_name`)."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True)
class PiiPolicy:
    """What to do with personal data (see the module docstring)."""

    mode: str = "keep"
    salt: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in PII_MODES:
            raise ValueError(f"pii must be one of {', '.join(PII_MODES)}, not {self.mode!r}")
        if self.mode == "hash" and not self.salt:
            raise ValueError(
                "pii = 'hash' needs a secret salt: set pii_salt under [sources.skyprep] in "
                ".dlt/secrets.toml (or SOURCES__SKYPREP__PII_SALT)"
            )

    def __repr__(self) -> str:  # never show the salt
        return f"PiiPolicy(mode={self.mode!r})"

    def apply(self, table: pa.Table, *, report: bool = False) -> pa.Table:
        """`table` with its personal columns hashed or dropped (as is with `keep`)."""
        if self.mode == "keep" or table.num_columns == 0:
            return table
        names = REPORT_PII_COLUMNS if report else PII_COLUMNS
        personal = [
            i
            for i, field in enumerate(table.schema)
            if column_key(field.name) in names
            and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
        ]
        if not personal:
            return table
        if self.mode == "drop":
            return table.drop_columns([table.schema.field(i).name for i in personal])
        for i in personal:
            field = table.schema.field(i)
            table = table.set_column(i, field, self._hashed(table.column(i)))
        return table

    def _hashed(self, column: pa.ChunkedArray) -> pa.Array:
        key = (self.salt or "").encode()
        seen: dict[str, str] = {}  # an e-mail repeats on every progress of its user
        out: list[str | None] = []
        for value in column.to_pylist():
            if value is None or value == "":
                out.append(value)
                continue
            digest = seen.get(value)
            if digest is None:
                digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
                seen[value] = digest
            out.append(digest)
        return pa.array(out, column.type)


_current = PiiPolicy()


def set_policy(policy: PiiPolicy) -> None:
    """The policy of the source being built (one source per run)."""
    global _current
    _current = policy


def apply_pii(table: pa.Table, *, report: bool = False) -> pa.Table:
    """`table` under the current run's `pii` setting."""
    return _current.apply(table, report=report)
