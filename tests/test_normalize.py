"""JSON records -> typed Arrow tables: every wire quirk of API-NOTES lands typed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from skyprep_source.normalize import json_columns, parse_timestamps, records_to_table
from skyprep_source.schemas import (
    COMPETENCIES,
    COURSE_PROGRESSES,
    COURSES,
    ENTITY_SCHEMAS,
    PAYMENTS,
    TIMESTAMP_TYPE,
    USERS,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


def test_every_date_format_of_the_api_becomes_utc() -> None:
    parsed = parse_timestamps(
        [
            "2020-11-06T00:40:18.000Z",
            "2020-01-01T07:03:59.000-05:00",
            "June 23 2013 12:00:00",
            "July 31, 2015",
            "November 6, 2020 at 12:40 AM",
            "March 4, 2024 at 3:07 PM",
            "2021-02-03",
            "2021-02-03T04:05:06",
        ]
    )
    assert parsed.type == TIMESTAMP_TYPE
    assert parsed.to_pylist() == [
        utc(2020, 11, 6, 0, 40, 18),
        utc(2020, 1, 1, 12, 3, 59),
        utc(2013, 6, 23, 12, 0, 0),
        utc(2015, 7, 31),
        utc(2020, 11, 6, 0, 40),
        utc(2024, 3, 4, 15, 7),
        utc(2021, 2, 3),
        utc(2021, 2, 3, 4, 5, 6),
    ]


def test_empty_dates_are_null() -> None:
    assert parse_timestamps([None, "", "'-", "  "]).to_pylist() == [None] * 4


def test_unreadable_date_is_null_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert parse_timestamps(["someday", "2020-01-01T00:00:00Z"], "deadline").to_pylist() == [
        None,
        utc(2020, 1, 1),
    ]
    assert "deadline" in caplog.text and "someday" in caplog.text


def test_ids_from_strings_and_numbers_are_bigint() -> None:
    table = records_to_table([{"id": "8877"}, {"id": 12}, {"id": None}, {"id": ""}], USERS)
    assert table.schema.field("id").type == pa.int64()
    assert table.column("id").to_pylist() == [8877, 12, None, None]


def test_amounts_are_decimal_and_counts_bigint() -> None:
    table = records_to_table(
        [{"id": 1, "amount": "49.99"}, {"id": 2, "amount": 5}, {"id": 3, "amount": None}],
        PAYMENTS,
    )
    assert table.schema.field("amount").type == pa.decimal128(18, 2)
    assert table.column("amount").to_pylist() == [Decimal("49.99"), Decimal("5.00"), None]


def test_booleans_from_strings_and_bools() -> None:
    table = records_to_table(
        [{"id": 1, "active": "true"}, {"id": 2, "active": False}, {"id": 3, "active": "0"}],
        COURSES,
    )
    assert table.column("active").to_pylist() == [True, False, False]


def test_missing_known_fields_are_typed_nulls() -> None:
    table = records_to_table([{"id": 5}], COURSE_PROGRESSES)
    assert table.column_names == list(COURSE_PROGRESSES.fields)
    assert table.schema.field("completion_date").type == TIMESTAMP_TYPE
    assert table.schema.field("expired").type == pa.bool_()
    assert table.column("completion_date").to_pylist() == [None]


def test_nested_known_fields_are_json_text() -> None:
    skills = [{"id": 1101, "name": "excel", "points": 500}]
    table = records_to_table([{"id": 32, "skills": skills}], COMPETENCIES)
    assert json.loads(table.column("skills")[0].as_py()) == skills
    assert json_columns(table) == ["skills"]


def test_unknown_fields_are_kept_and_typed_from_json() -> None:
    records: list[dict[str, Any]] = [
        {"id": 1, "ca_9": "0042", "score": 3, "ratio": 0.5, "vip": True, "prefs": {"a": 1}},
        {"id": 2, "ca_9": None, "score": 4, "ratio": 1, "vip": False, "prefs": [1, 2]},
    ]
    table = records_to_table(records, USERS)
    types = {f.name: f.type for f in table.schema}
    assert types["ca_9"] == pa.string()
    assert types["score"] == pa.int64()
    assert types["ratio"] == pa.float64()
    assert types["vip"] == pa.bool_()
    assert table.column("ca_9").to_pylist() == ["0042", None]  # numeric-looking text stays text
    assert json_columns(table) == ["prefs"]
    assert table.column("prefs").to_pylist() == ['{"a":1}', "[1,2]"]


def test_unknown_field_with_mixed_types_is_text() -> None:
    table = records_to_table([{"id": 1, "odd": 3}, {"id": 2, "odd": "three"}], USERS)
    assert table.column("odd").to_pylist() == ["3", "three"]


def test_text_field_holding_numbers_or_objects_stays_text() -> None:
    table = records_to_table([{"id": 1, "card_no": 3211221}, {"id": 2, "title": {"x": 1}}], USERS)
    assert table.column("card_no").to_pylist() == ["3211221", None]
    assert table.column("title").to_pylist() == [None, '{"x":1}']


def test_every_entity_schema_builds_an_empty_page() -> None:
    for schema in ENTITY_SCHEMAS.values():
        table = records_to_table([], schema)
        assert table.num_rows == 0
        assert table.column_names == list(schema.fields)


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("49.99", "49.99"),
        ("12,50", "12.50"),
        ("12,5", "12.50"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1.234.567", "1234567.00"),
        ("1,234,567", "1234567.00"),
        ("$ 49.99", "49.99"),
        ("EUR 5,00", "5.00"),
        ("-3,20", "-3.20"),
        ("1,234", None),  # a thousand, or one and a bit: ambiguous
        ("1.234", None),
        ("abc", None),
    ],
)
def test_amounts_in_either_locale_never_move_the_decimal_point(
    text: str, amount: str | None
) -> None:
    from skyprep_source.normalize import parse_amount

    parsed = parse_amount(text)
    assert (None if parsed is None else str(parsed)) == amount


def test_a_column_of_untyped_values_warns_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    from skyprep_source.normalize import convert_column, start_run_warnings

    start_run_warnings()
    convert_column(["x1", "x2", "x3"], "id", "course_id")
    convert_column(["y1"], "id", "course_id")
    convert_column(["z1"], "timestamp", "created_at")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "SkyPrep field course_id",
        "SkyPrep field created_at",
    ]
    start_run_warnings()
    convert_column(["x1"], "id", "course_id")
    assert len(caplog.records) == 3  # a new run warns afresh
