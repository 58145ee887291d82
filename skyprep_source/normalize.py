"""JSON records -> Arrow tables with an entity's fixed, typed schema.

Column-wise: each field is pulled out of the page once and converted by one Arrow call; the
wire's odd shapes (ids as strings, amounts as strings, booleans as "true", dates in English)
drop to a slower path only for the column that has them, and to per-value Python only for the
values Arrow cannot parse.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from skyprep_source.schemas import (
    ARROW_TYPES,
    JSON_FIELD_METADATA,
    MONEY_TYPE,
    TIMESTAMP_TYPE,
    EntitySchema,
    Kind,
)

logger = logging.getLogger("skyprep_source")

# values that mean "no value" in the API and its CSV exports
EMPTY_TEXTS = ("", "'-", "-")

_ISO_WITH_ZONE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"
_ISO_NAIVE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?$"
# English formats seen in the API (users' created_at, inputs) and in report CSVs
ENGLISH_DATE_FORMATS = (
    "%B %d %Y %H:%M:%S",  # June 23 2013 12:00:00
    "%B %d, %Y",  # July 31, 2015
    "%B %d, %Y at %I:%M %p",  # March 4, 2024 at 3:07 PM
    "%B %d, %Y %I:%M %p",
    "%B %d, %Y %H:%M:%S",
    "%b %d %Y %H:%M:%S",
    "%b %d, %Y",
    "%d-%b %Y",  # 06-Nov 2020
    "%m/%d/%Y",
    "%Y/%m/%d",
)
_TRUE = frozenset({"true", "t", "1", "yes", "y"})
_FALSE = frozenset({"false", "f", "0", "no", "n"})


# How each kind usually arrives on the wire: Arrow reads a whole page of these in one C++ pass.
WIRE_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "decimal": pa.string(),
    "timestamp": pa.string(),
    "text": pa.string(),
}
# (entity, field)s seen off their wire type in this process (ids as "8877", flags as "true"):
# they take the per-value path from then on, so one odd column does not slow the whole page
_ODD_FIELDS: set[tuple[str, str]] = set()


def records_to_table(records: Sequence[dict[str, Any]], schema: EntitySchema) -> pa.Table:
    """Build the Arrow table of one page: every known field typed (missing ones as nulls), then
    every extra field the API sent, typed from its JSON values."""
    wire = _read_wire_columns(records, schema)
    known: dict[str, pa.Array] = {}
    for name, kind in schema.fields.items():
        if name in wire:
            known[name] = finish_wire_column(wire[name], kind, name)
        else:
            values = [record.get(name) for record in records]
            known[name] = convert_column(values, kind, name)
    extra_names = set().union(*records) - schema.fields.keys() if records else set()
    extra = {
        name: infer_column([record.get(name) for record in records], name) for name in extra_names
    }
    return table_of(known, schema, extra)


def table_of(
    known: dict[str, pa.Array],
    schema: EntitySchema,
    extra: dict[str, tuple[pa.Array, Kind]] | None = None,
) -> pa.Table:
    """The page's table from its typed columns: the schema's fields in order, then the extra
    fields the API sent, by name (`infer_column`'s arrays and kinds)."""
    columns = [known[name] for name in schema.fields]
    fields = [schema.arrow_field(name) for name in schema.fields]
    for name in sorted(extra or ()):
        array, kind = (extra or {})[name]
        columns.append(array)
        metadata = JSON_FIELD_METADATA if kind == "json" else None
        fields.append(pa.field(name, array.type, metadata=metadata))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _read_wire_columns(
    records: Sequence[dict[str, Any]], schema: EntitySchema
) -> dict[str, pa.Array]:
    """The fields that arrive as their usual wire type, read in one Arrow pass (a struct)."""
    names = [
        name
        for name, kind in schema.fields.items()
        if kind in WIRE_TYPES and (schema.name, name) not in _ODD_FIELDS
    ]
    if not records or not names:
        return {}
    struct_type = pa.struct([pa.field(n, WIRE_TYPES[schema.fields[n]]) for n in names])
    try:
        struct = pa.array(records, type=struct_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        # find the odd fields once; later pages skip straight to the per-value path for them
        for name in names:
            try:
                pa.array([r.get(name) for r in records], WIRE_TYPES[schema.fields[name]])
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                _ODD_FIELDS.add((schema.name, name))
        return _read_wire_columns(records, schema)
    return {name: struct.field(i) for i, name in enumerate(names)}


def finish_wire_column(array: pa.Array, kind: Kind, name: str) -> pa.Array:
    if kind == "timestamp":
        return parse_timestamps(array, name)
    if kind == "decimal":
        try:
            return pc.cast(_blank_to_null(array), MONEY_TYPE)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _decimals(array.to_pylist(), name)
    return array


def json_columns(table: pa.Table) -> list[str]:
    """Names of the columns that hold serialised JSON (for dlt's `json` data type)."""
    return [f.name for f in table.schema if f.metadata and f.metadata == JSON_FIELD_METADATA]


def convert_column(values: list[Any], kind: Kind, name: str = "") -> pa.Array:
    """One column of wire values -> an Arrow array of the kind's type."""
    if kind in ("id", "int"):
        return _integers(values, name)
    if kind == "timestamp":
        return parse_timestamps(values, name)
    if kind == "text":
        return _texts(values)
    if kind == "json":
        return pa.array([None if v is None else _dumps(v) for v in values], pa.string())
    if kind == "bool":
        return _booleans(values, name)
    if kind == "decimal":
        return _decimals(values, name)
    if kind == "float":
        return _floats(values, name)
    raise ValueError(f"unknown column kind {kind!r}")


def infer_column(values: list[Any], name: str = "") -> tuple[pa.Array, Kind]:
    """Type a field the schema does not know, from the JSON types of its values.

    Unambiguous JSON types are kept (integers, floats, booleans, text); objects and arrays
    become JSON text; a mix becomes text. Numeric-looking *strings* stay text on purpose: a
    custom attribute "0042" must not lose its zeros.
    """
    types = {type(v) for v in values if v is not None}
    kind: Kind
    if not types or types == {str}:
        kind = "text"
    elif types == {bool}:
        kind = "bool"
    elif types == {int}:
        kind = "int"
    elif types <= {int, float}:
        kind = "float"
    elif types <= {dict, list}:
        kind = "json"
    else:
        return pa.array([_as_text(v) for v in values], pa.string()), "text"
    return convert_column(values, kind, name), kind


# ---- kinds -----------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return _dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _texts(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_as_text(v) for v in values], pa.string())


def _blank_to_null(array: pa.Array) -> pa.Array:
    """Strip whitespace; "" and the exports' "'-" become null."""
    stripped = pc.utf8_trim_whitespace(array)
    empty = pc.is_in(stripped, value_set=pa.array(EMPTY_TEXTS, pa.string()))
    return pc.if_else(empty, pa.scalar(None, pa.string()), stripped)


# (column, what it is not) already warned about in this run: one line per column and run, not
# per value (a column that turns to text would otherwise log once per row)
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def untyped_value(name: str, text: str, what: str) -> None:
    """Log that a value of column `name` could not be typed (it loads as NULL): the first time
    per column and run only."""
    with _warned_lock:
        if (name, what) in _warned:
            return
        _warned.add((name, what))
    logger.warning(
        "SkyPrep field %s: %r is not %s; loaded as null (further such values of this column "
        "are not listed this run)",
        name,
        text[:40],
        what,
    )


def start_run_warnings() -> None:
    """Forget which columns were warned about (a new run warns afresh)."""
    with _warned_lock:
        _warned.clear()


def _integers(values: list[Any], name: str) -> pa.Array:
    try:
        return pa.array(values, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    # ids as numeric strings ("8877"): Arrow parses them in one cast
    texts = _blank_to_null(
        pa.array([v if v is None or v.__class__ is str else str(v) for v in values], pa.string())
    )
    try:
        return pc.cast(texts, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_int_or_none(v, name) for v in texts.to_pylist()], pa.int64())


def _int_or_none(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
        if number.is_integer():
            return int(number)
    except ValueError:
        pass
    untyped_value(name, text, "an integer")
    return None


def _floats(values: list[Any], name: str) -> pa.Array:
    try:
        return pa.array(values, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    texts = _blank_to_null(pa.array([_as_text(v) for v in values], pa.string()))
    try:
        return pc.cast(texts, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_float_or_none(v, name) for v in texts.to_pylist()], pa.float64())


def _float_or_none(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    try:
        return float(text.rstrip("%"))
    except ValueError:
        untyped_value(name, text, "a number")
        return None


def _decimals(values: list[Any], name: str) -> pa.Array:
    # amounts arrive as strings ("49.99"); floats are printed shortest-exact by repr
    texts = _blank_to_null(pa.array([_as_text(v) for v in values], pa.string()))
    try:
        return pc.cast(texts, MONEY_TYPE)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_decimal_or_none(v, name) for v in texts.to_pylist()], MONEY_TYPE)


# a single separator followed by exactly three digits after a 1-3 digit group: "1,234" or
# "1.234" is a thousand in one locale and one-point-something in another
_AMBIGUOUS_AMOUNT = re.compile(r"^-?[1-9]\d{0,2}[.,]\d{3}$")
_CURRENCY = re.compile(r"[\s\u00a0'$€£¥]|[A-Z]{3}")


def parse_amount(text: str) -> Decimal | None:
    """An amount in either locale, the decimal point never moved: `12,50` -> 12.50,
    `1.234,56` -> 1234.56, `1,234.56` -> 1234.56, `$ 49.99` -> 49.99; None when it is not an
    amount or is ambiguous (`1,234`, `1.234`: a thousand, or one and a bit?)."""
    cleaned = _CURRENCY.sub("", text.strip())
    if _AMBIGUOUS_AMOUNT.match(cleaned):
        return None
    dot, comma = cleaned.rfind("."), cleaned.rfind(",")
    if dot >= 0 and comma >= 0:  # the last separator is the decimal one
        thousands, decimal = (",", ".") if dot > comma else (".", ",")
        cleaned = cleaned.replace(thousands, "").replace(decimal, ".")
    elif comma >= 0:  # "12,50" (decimal comma) or "1,234,567" (thousands)
        groups = cleaned.split(",")
        if len(groups) == 2 and len(groups[1]) != 3:
            cleaned = cleaned.replace(",", ".")
        elif all(len(g) == 3 for g in groups[1:]):
            cleaned = cleaned.replace(",", "")
        else:
            return None
    elif cleaned.count(".") > 1:  # "1.234.567": dots as thousands
        groups = cleaned.split(".")
        if not all(len(g) == 3 for g in groups[1:]):
            return None
        cleaned = cleaned.replace(".", "")
    try:
        return Decimal(cleaned).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _decimal_or_none(text: str | None, name: str) -> Decimal | None:
    if text is None:
        return None
    amount = parse_amount(text)
    if amount is None:
        untyped_value(name, text, "an unambiguous amount")
    return amount


def _booleans(values: list[Any], name: str) -> pa.Array:
    try:
        return pa.array(values, pa.bool_())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_bool_or_none(v, name) for v in values], pa.bool_())


def _bool_or_none(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in EMPTY_TEXTS:
        return None
    untyped_value(name, text, "a flag")
    return None


def parse_timestamps(values: Iterable[Any] | pa.Array, name: str = "") -> pa.Array:
    """Wire dates -> TIMESTAMP(us, UTC). ISO 8601 with a zone parses in one cast; naive ISO
    and English formats ("June 23 2013 12:00:00", "July 31, 2015", "March 4, 2024 at 3:07
    PM") are read as UTC; a date alone is midnight UTC."""
    if isinstance(values, pa.Array):
        texts = values.cast(pa.string())
    else:
        values = list(values)
        try:
            texts = pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            texts = pa.array([_as_text(v) for v in values], pa.string())
    try:
        return pc.cast(texts, TIMESTAMP_TYPE)  # the common case: all ISO with a zone
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    texts = _blank_to_null(texts)
    null_text = pa.scalar(None, pa.string())
    result = pa.nulls(len(texts), TIMESTAMP_TYPE)

    def unparsed() -> pa.Array:
        return pc.and_(pc.is_valid(texts), pc.is_null(result))

    def add(candidate: pa.Array) -> None:
        nonlocal result
        result = pc.coalesce(result, candidate)

    for pattern, target in ((_ISO_WITH_ZONE, TIMESTAMP_TYPE), (_ISO_NAIVE, pa.timestamp("us"))):
        matching = pc.match_substring_regex(texts, pattern)
        if pc.any(matching).as_py():
            try:
                parsed = pc.cast(pc.if_else(matching, texts, null_text), target)
                add(parsed.cast(TIMESTAMP_TYPE))  # naive values are UTC
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
    for date_format in ENGLISH_DATE_FORMATS:
        todo = unparsed()
        if not pc.any(todo).as_py():
            break
        parsed = pc.strptime(
            pc.if_else(todo, texts, null_text), format=date_format, unit="us", error_is_null=True
        )
        add(parsed.cast(TIMESTAMP_TYPE))
    todo = unparsed()
    if pc.any(todo).as_py():
        # the few values Arrow could not read: one more try each, in Python
        fixed = [
            _timestamp_or_none(text, name) if missing else None
            for text, missing in zip(texts.to_pylist(), todo.to_pylist(), strict=True)
        ]
        add(pa.array(fixed, TIMESTAMP_TYPE))
    return result


def _timestamp_or_none(text: str, name: str) -> datetime | None:
    cleaned = re.sub(r"\s+", " ", text.strip()).replace(" at ", " ")
    try:
        parsed = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
        for date_format in ENGLISH_DATE_FORMATS:
            try:
                parsed = datetime.strptime(cleaned, date_format.replace(" at ", " "))
                break
            except ValueError:
                continue
    if parsed is None:
        untyped_value(name, text, "a date")
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def arrow_type_of(kind: Kind) -> pa.DataType:
    """The Arrow type a kind becomes."""
    return ARROW_TYPES[kind]
