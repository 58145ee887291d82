"""The `_row_hash` row version: same content -> same hash, anywhere; any change -> another."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from skyprep_source.row_hash import add_row_hash, row_hashes
from skyprep_source.schemas import MONEY_TYPE, TIMESTAMP_TYPE

ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "email": "ada@example.com",
        "status": "passed",
        "score": 0.5,
        "paid": Decimal("49.99"),
        "active": True,
        "created_at": datetime(2024, 3, 4, 15, 7, tzinfo=timezone.utc),
        "note": None,
    },
    {
        "id": 2,
        "email": "grace.hopper@example.com",
        "status": "in-progress",
        "score": None,
        "paid": Decimal("0.00"),
        "active": False,
        "created_at": None,
        "note": "a longer note, with ünïcödé and more than eight bytes",
    },
    {
        "id": 3,
        "email": "",
        "status": "failed",
        "score": 1.0,
        "paid": None,
        "active": None,
        "created_at": datetime(2013, 6, 23, 12, tzinfo=timezone.utc),
        "note": "",
    },
]
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("email", pa.string()),
        ("status", pa.string()),
        ("score", pa.float64()),
        ("paid", MONEY_TYPE),
        ("active", pa.bool_()),
        ("created_at", TIMESTAMP_TYPE),
        ("note", pa.string()),
    ]
)
# computed once and pinned: a change here versions every row of every user's tables once
PINNED = [-6445516804020970060, 7111081398647952620, 3240151166127894614]


def table(rows: list[dict[str, Any]] = ROWS, schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def hashes(t: pa.Table) -> list[int]:
    return row_hashes(t).to_pylist()


def test_same_content_gives_the_same_hash_in_another_process() -> None:
    code = (
        "import sys; sys.path.insert(0, 'tests'); from test_row_hash import hashes, table; "
        "print(hashes(table()))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(hashes(table()))
    assert hashes(table()) == PINNED


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 4),
        ("email", "ada@example.org"),
        ("email", "ada@example.co"),  # shorter by a byte
        ("email", "ada@example.comm"),
        ("email", None),
        ("status", "passed "),
        ("score", 0.25),
        ("score", None),
        ("paid", Decimal("49.98")),
        ("active", False),
        ("active", None),
        ("created_at", datetime(2024, 3, 4, 15, 7, 1, tzinfo=timezone.utc)),
        ("note", ""),
        ("note", "x"),
    ],
)
def test_any_field_change_gives_another_hash(field: str, value: Any) -> None:
    changed = [{**ROWS[0], field: value}, *ROWS[1:]]
    before, after = hashes(table()), hashes(table(changed))
    assert after[0] != before[0]
    assert after[1:] == before[1:]


def test_values_swapped_between_text_fields_give_another_hash() -> None:
    swapped = [{**ROWS[1], "email": ROWS[1]["note"], "note": ROWS[1]["email"]}]
    assert hashes(table(swapped)) != hashes(table([ROWS[1]]))


def test_column_order_does_not_matter() -> None:
    reordered = pa.schema(list(reversed(list(SCHEMA))))
    assert hashes(table(schema=reordered)) == hashes(table())


def test_a_new_column_of_nulls_leaves_every_hash_unchanged() -> None:
    widened = table().append_column("new_field", pa.nulls(len(ROWS), pa.string()))
    assert hashes(widened) == hashes(table())


def test_a_row_hashes_alike_in_any_page_and_slice() -> None:
    many = table(ROWS * 700)
    whole = hashes(many)
    assert hashes(many.slice(701, 5)) == whole[701:706]
    assert hashes(pa.concat_tables([many.slice(0, 3), many.slice(3, 4)])) == whole[:7]


def test_add_row_hash_appends_a_non_null_bigint() -> None:
    stamped = add_row_hash(table(), "_row_hash")
    assert stamped.schema.field("_row_hash") == pa.field("_row_hash", pa.int64(), nullable=False)
    assert stamped.column("_row_hash").to_pylist() == hashes(table())
    assert add_row_hash(table([]), "_row_hash").num_rows == 0


def test_importing_the_source_does_not_import_pandas() -> None:
    code = "import sys, skyprep_source; print('pandas' in sys.modules)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "False"
