"""List pages read straight from the response bytes into typed Arrow tables, no Python dicts.

The large lists (users, course progresses: a million rows on a big account) spend most of
their extract time turning JSON into Python dicts and the dicts into Arrow. Here Arrow's own
JSON reader parses the page in C++ (outside the GIL, so the prefetch thread's parsing overlaps
the main thread's writing) into the entity's wire types, and `normalize`'s column finishers
(dates, money) type it: the same table `records_to_table` builds from the dicts.

It is a fast path, never a second definition of the data. A page it cannot read exactly as
`records_to_table` would (a field off its wire type, an id as "8877", an extra field holding an
object or a date, a cut body, anything not a JSON array) is handed back to the client, which
parses it with orjson as before: its retries, errors and odd-value handling all still apply.
An entity whose pages keep missing the fast path stops trying it for the rest of the process.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from skyprep_source.normalize import (
    WIRE_TYPES,
    finish_wire_column,
    records_to_table,
    table_of,
)
from skyprep_source.pager import KeyOf, RowKey
from skyprep_source.schemas import EntitySchema, Kind

logger = logging.getLogger("skyprep_source")

#: pages of one entity that may miss the fast path before it is given up for the process
MAX_MISSES = 3
# misses per entity in this process (shared by every client: an API quirk is account-wide)
_MISSES: dict[str, int] = {}
# extra fields whose Arrow-inferred type is the one `infer_column` gives the same values
_PLAIN_EXTRA_TYPES: dict[pa.DataType, Kind] = {
    pa.int64(): "int",
    pa.float64(): "float",
    pa.bool_(): "bool",
    pa.string(): "text",
}
_LEADING = b" \t\r\n"  # JSON's whitespace; orjson refuses a byte order mark, and so do we


class ArrowPages:
    """The page format of one entity's list route: each page a typed Arrow table.

    Plugs into `SkyPrepClient.pages(..., page_format=)`: `decode` is the fast path over the
    raw body (None when it does not apply), `from_rows` the dict path's result.
    """

    def __init__(self, schema: EntitySchema) -> None:
        self.schema = schema
        # an entity with JSON-text fields keeps the dict path: Arrow would read their objects
        # as structs, whose JSON text could not be given back byte for byte
        self._enabled = all(kind in WIRE_TYPES for kind in schema.fields.values())
        wire = pa.struct(
            [pa.field(n, WIRE_TYPES[k]) for n, k in schema.fields.items() if k in WIRE_TYPES]
        )
        self._parse_options = pa_json.ParseOptions(
            explicit_schema=pa.schema([pa.field("rows", pa.list_(wire))]),
            unexpected_field_behavior="infer",
        )

    @property
    def active(self) -> bool:
        """Whether pages of this entity still try the fast path in this process."""
        return self._enabled and _MISSES.get(self.schema.name, 0) < MAX_MISSES

    def decode(self, body: bytes) -> pa.Table | None:
        """The page's typed table, or None: then the client parses the body as JSON."""
        if not self.active:
            return None
        start = len(body) - len(body.lstrip(_LEADING))
        if body[start : start + 1] != b"[":
            return None
        # Arrow reads JSON objects, one per line: the page's array becomes one object's field
        wrapped = b'{"rows":' + body[start:] + b"}"
        try:
            parsed = pa_json.read_json(
                pa.BufferReader(wrapped),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(wrapped) + 1),
                parse_options=self._parse_options,
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        rows = parsed.column("rows")
        if parsed.num_rows != 1 or rows.null_count:
            return None
        records = rows.chunk(0).flatten()
        if records.null_count:  # a null among the records: the dict path says what is wrong
            return None
        return self._typed(records)

    def _typed(self, records: pa.StructArray) -> pa.Table | None:
        known = {
            name: finish_wire_column(records.field(name), kind, name)
            for name, kind in self.schema.fields.items()
        }
        extra: dict[str, tuple[pa.Array, Kind]] = {}
        for index, field in enumerate(records.type):
            if field.name in known:
                continue
            array = records.field(index)
            if array.type == pa.null():
                extra[field.name] = (pa.nulls(len(array), pa.string()), "text")  # as infer_column
            elif array.type in _PLAIN_EXTRA_TYPES:
                # ints and floats mixed come as float64, as infer_column makes them
                extra[field.name] = (array, _PLAIN_EXTRA_TYPES[array.type])
            else:
                return None  # an object, a list or a date-like text: typed on the dict path
        return table_of(known, self.schema, extra)

    def from_rows(self, rows: Sequence[dict[str, Any]]) -> pa.Table:
        """A page the fast path did not take, from its parsed JSON records."""
        if self.active and rows:
            misses = _MISSES[self.schema.name] = _MISSES.get(self.schema.name, 0) + 1
            if misses == MAX_MISSES:
                logger.info(
                    "SkyPrep %s: pages keep arriving in shapes Arrow's JSON reader does not "
                    "type exactly; reading them through Python dicts from now on",
                    self.schema.name,
                )
        return records_to_table(rows, self.schema)

    def keys(self, page: pa.Table, key: RowKey) -> list[Any]:
        """The identity of each row: for id keys, what `key` gives over the JSON record ("8877"
        for 8877 and "8877" alike); always the same for the same row in this format, which is
        all the pager compares (a list's pages, and its page-1 re-check, share one format)."""
        fields = getattr(key, "fields", None)
        if isinstance(key, KeyOf) and fields and all(name in page.column_names for name in fields):
            columns = [page.column(name) for name in fields]
            if not any(column.null_count for column in columns):
                texts = [column.cast(pa.string()).to_pylist() for column in columns]
                if len(texts) == 1:
                    return texts[0]
                return list(zip(*texts, strict=True))
        return [key(row) for row in page.to_pylist()]

    def take(self, page: pa.Table, positions: list[int]) -> pa.Table:
        """The rows at `positions`, in order."""
        return page.take(pa.array(positions, pa.int64()))
