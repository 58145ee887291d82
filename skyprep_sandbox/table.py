"""A table of records kept as pre-serialised JSON, in the order the API serves them.

Keeping each record as its orjson bytes makes a page a `b",".join(slice)` (no
per-request serialisation) and keeps a million records at about one byte per byte on
the wire. A record is decoded only when something changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson


def encode(record: Any) -> bytes:
    """A record's JSON bytes, copied to an exact-size object.

    orjson returns bytes shrunk in place from a larger work buffer; kept by the million,
    those leave the heap fragmented at ~8 KB per record (10 GB for the large world).
    A copy is exact-size and lets the work buffer be reused.
    """
    return bytes(memoryview(orjson.dumps(record)))


class Table:
    """Records by integer id, in serve order, each stored as orjson bytes plus a small `meta`
    tuple of the fields the server filters on (so filtering never decodes JSON)."""

    __slots__ = ("_ordered", "meta", "rows")

    def __init__(self) -> None:
        self.rows: dict[int, bytes] = {}
        self.meta: dict[int, Any] = {}
        self._ordered: list[bytes] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self.rows

    def ids(self) -> list[int]:
        """Ids in serve order."""
        return list(self.rows)

    def get(self, record_id: int) -> dict[str, Any] | None:
        """The record as a dict (a fresh copy), or None."""
        raw = self.rows.get(record_id)
        return None if raw is None else orjson.loads(raw)

    def put(self, record_id: int, record: dict[str, Any], meta: Any = None) -> None:
        """Insert at the end of the serve order, or replace in place."""
        self.rows[record_id] = encode(record)
        self.meta[record_id] = meta
        self._ordered = None

    def put_front(self, items: Iterable[tuple[int, dict[str, Any], Any]]) -> None:
        """Insert records before all others (newest-first lists, page drift)."""
        new_rows: dict[int, bytes] = {}
        for record_id, record, meta in items:
            new_rows[record_id] = encode(record)
            self.meta[record_id] = meta
        for record_id, raw in self.rows.items():
            if record_id not in new_rows:
                new_rows[record_id] = raw
        self.rows = new_rows
        self._ordered = None

    def update(self, record_id: int, change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
        """Decode, let `change` edit the dict in place, re-encode; returns the new record."""
        record = orjson.loads(self.rows[record_id])
        change(record)
        self.rows[record_id] = encode(record)
        self._ordered = None
        return record

    def delete(self, record_id: int) -> bool:
        """Remove a record; False when it was not there."""
        if self.rows.pop(record_id, None) is None:
            return False
        self.meta.pop(record_id, None)
        self._ordered = None
        return True

    def serialized(self) -> list[bytes]:
        """Every record's bytes in serve order (cached until the next change; never mutated)."""
        if self._ordered is None:
            self._ordered = list(self.rows.values())
        return self._ordered

    def dicts(self) -> list[dict[str, Any]]:
        """Every record decoded, in serve order."""
        return [orjson.loads(raw) for raw in self.serialized()]
