"""Saved advanced report CSVs -> typed tables, every quirk of SkyPrep's exports undone."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa

from skyprep_source.reports import csv_to_table, report_table_name

QUIRKY_CSV = (
    "\ufeffUser ID,First Name,Email,Department,Course ID,Course,Status,Percent Viewed,Completed At\r\n"
    '1,"Ann ""Annie""",ann@x.com,R&amp;D,10,"Safety\r\nPart 1",Failed,60%,\'-\r\n'
    '2,Bob &#39;B&#39;,bob@x.com,0042,10,Intro,In-progress,0%,"March 4, 2024 at 3:07 PM"\r\n'
    '1,"Ann ""Annie""",ann@x.com,R&amp;D,10,"Safety\r\nPart 1",Passed,100%,"March 5, 2024 at 12:00 AM"\r\n'
).encode()


def test_bom_quotes_newlines_and_html_entities_are_undone() -> None:
    table = csv_to_table(QUIRKY_CSV)
    assert table.column_names[0] == "User ID"  # no BOM in the first name
    by_user = {row["User ID"]: row for row in table.to_pylist()}
    assert by_user[1]["First Name"] == 'Ann "Annie"'
    assert by_user[1]["Department"] == "R&D"
    assert by_user[1]["Course"] == "Safety\r\nPart 1"
    assert by_user[2]["First Name"] == "Bob 'B'"


def test_repeated_user_and_course_keeps_the_last_row() -> None:
    table = csv_to_table(QUIRKY_CSV)
    assert table.num_rows == 2
    ann = next(row for row in table.to_pylist() if row["User ID"] == 1)
    assert ann["Status"] == "passed"
    assert ann["Percent Viewed"] == 100.0


def test_columns_are_typed_and_statuses_lowercase() -> None:
    table = csv_to_table(QUIRKY_CSV)
    types = {f.name: f.type for f in table.schema}
    assert types["User ID"] == pa.int64()
    assert types["Department"] == pa.string()  # "0042" is a code, not a number
    assert types["Percent Viewed"] == pa.float64()
    assert types["Completed At"] == pa.timestamp("us", tz="UTC")
    assert sorted(table.column("Status").to_pylist()) == ["in-progress", "passed"]
    completed = {r["User ID"]: r["Completed At"] for r in table.to_pylist()}
    assert completed[2] == datetime(2024, 3, 4, 15, 7, tzinfo=timezone.utc)


def test_dash_apostrophe_is_an_empty_cell() -> None:
    table = csv_to_table(b'Email,Deadline\r\na@x.com,\'-\r\nb@x.com,"July 31, 2015"\r\n')
    assert table.column("Deadline").to_pylist() == [
        None,
        datetime(2015, 7, 31, tzinfo=timezone.utc),
    ]


def test_matrix_status_columns_are_lowercased() -> None:
    csv = "User ID,Fire Safety,First Aid\r\n7,Passed,Not-enrolled\r\n8,Not-started,Failed\r\n"
    table = csv_to_table(csv)
    assert table.column("Fire Safety").to_pylist() == ["passed", "not-started"]
    assert table.column("First Aid").to_pylist() == ["not-enrolled", "failed"]


def test_duplicate_column_names_are_made_unique() -> None:
    table = csv_to_table("User ID,Intro,Intro\r\n1,Passed,Failed\r\n")
    assert table.column_names == ["User ID", "Intro", "Intro 2"]


def test_empty_report_is_an_empty_table() -> None:
    assert csv_to_table(b"\xef\xbb\xbf").num_columns == 0


def test_report_table_names_are_snake_case() -> None:
    assert report_table_name("All Course Progresses Report") == (
        "saved_report__all_course_progresses_report"
    )
    assert report_table_name("Q&amp;A: Sales (EMEA)") == "saved_report__q_a_sales_emea"
