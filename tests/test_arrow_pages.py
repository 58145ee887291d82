"""The Arrow fast path reads a page's bytes into exactly the table the dict path builds.

`ArrowPages.decode` is an optimisation, never a second definition of the data: for every page
it takes, the table must equal `records_to_table(orjson.loads(body))` (values, types, column
order, field metadata), and every page it cannot type that way must be left to the dict path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pytest
import requests

from skyprep_sandbox import Sandbox
from skyprep_source import arrow_pages
from skyprep_source.arrow_pages import MAX_MISSES, ArrowPages
from skyprep_source.catalogue import LIST_KINDS, TABLES
from skyprep_source.client import SkyPrepClient
from skyprep_source.normalize import records_to_table
from skyprep_source.pager import JSON_ROWS, key_of
from skyprep_source.schemas import COURSE_PROGRESSES, COURSES, PAYMENTS, USERS, EntitySchema


@pytest.fixture(autouse=True)
def fresh_misses() -> Iterator[None]:
    """Each test starts with no entity given up (the count is per process)."""
    saved = dict(arrow_pages._MISSES)
    arrow_pages._MISSES.clear()
    yield
    arrow_pages._MISSES.clear()
    arrow_pages._MISSES.update(saved)


def dict_path(body: bytes, schema: EntitySchema) -> pa.Table:
    return records_to_table(orjson.loads(body), schema)


def assert_same_table(fast: pa.Table, expected: pa.Table) -> None:
    assert fast.schema.equals(expected.schema, check_metadata=True), (
        f"{fast.schema}\n!=\n{expected.schema}"
    )
    assert fast.equals(expected), "values differ"


def post_raw(sandbox: Sandbox, route: str, **params: Any) -> bytes:
    form = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key, **params}
    response = requests.post(f"{sandbox.base_url}/{route}", data=form, timeout=30)
    response.raise_for_status()
    return response.content


def test_every_sandbox_list_page_reads_the_same_through_both_paths(sandbox: Sandbox) -> None:
    taken = []
    course_id = orjson.loads(post_raw(sandbox, "get_courses"))[0]["id"]
    for endpoint in TABLES.values():
        if endpoint.kind not in LIST_KINDS and endpoint.name != "course_progresses":
            continue
        params = dict(endpoint.params)
        if endpoint.name == "course_progresses":
            params["course_id"] = course_id
        body = post_raw(sandbox, endpoint.route, per_page=1000, **params)
        expected = dict_path(body, endpoint.schema)
        fast = ArrowPages(endpoint.schema).decode(body)
        if fast is not None:
            taken.append(endpoint.name)
            assert_same_table(fast, expected)
    # the largest list must take the fast path, or it buys nothing; users do not here: the
    # sandbox sends some of their ids as text ("8877"), which only the dict path types
    assert {"course_progresses", "payments"} <= set(taken)
    assert "users" not in taken
    assert "courses" not in taken  # JSON-text fields (tags, course_items) keep the dict path


PROGRESS = {
    "id": 21869195,
    "status": "in-progress",
    "days_until_deadline": -712,
    "created_at": "2024-10-20T10:33:19.000Z",
    "updated_at": "2024-11-09T06:36:56.000-05:00",
    "skip_prerequisites": False,
    "course_id": 50600,
    "course_name": 'Workplace "Safety" \u00e9\U0001f600',
    "user_id": 590116,
    "percent_viewed": 21,
    "completion_date": None,
    "deadline_date": "",
    "formatted_commencement_date": "09-Nov 2024",
}


def page(*records: dict[str, Any]) -> bytes:
    return orjson.dumps(list(records))


# pages the fast path types itself: the same table as the dict path
FAST_PAGES = {
    "plain": page(PROGRESS, {**PROGRESS, "id": 2, "percent_viewed": 33.5}),
    "empty": b"[]",
    "whitespace around": b" \r\n\t" + page(PROGRESS) + b"\n",
    "escaped unicode": b'[{"id": 1, "course_name": "caf\\u00e9 \\ud83d\\ude00 \\"q\\""}]',
    "english and naive dates": page(
        {"id": 1, "created_at": "June 23 2013 12:00:00", "updated_at": "2021-02-03T04:05:06"},
        {"id": 2, "created_at": "March 4, 2024 at 3:07 PM", "updated_at": "2021-02-03"},
    ),
    "missing fields": page({"id": 1}, {"id": 2, "status": "passed"}),
    "extra scalar fields": page(
        {
            **PROGRESS,
            "new_count": 1,
            "new_ratio": 1,
            "new_flag": True,
            "new_text": "a",
            "gone": None,
        },
        {**PROGRESS, "id": 2, "new_count": 2, "new_ratio": 2.5, "new_text": "0042", "gone": None},
    ),
    "negative and big ids": page({"id": -1}, {"id": 9007199254740993}),
}

# pages the fast path must leave to the dict path (it could not give the same table)
DICT_PAGES = {
    "id as text": page({**PROGRESS, "id": "8877"}),
    "flag as text": page({**PROGRESS, "expired": "true"}),
    "count as float": page({**PROGRESS, "days_until_deadline": 3.0}),
    "text as number": page({**PROGRESS, "status": 3}),
    "extra object": page({**PROGRESS, "meta": {"a": 1}}, {**PROGRESS, "id": 2, "meta": {"b": 2}}),
    "extra list": page({**PROGRESS, "tags": [1, 2]}),
    "extra date-like text": page({**PROGRESS, "new_day": "2024-10-20"}),
    "extra mixed types": page({**PROGRESS, "odd": 1}, {**PROGRESS, "id": 2, "odd": "x"}),
    "duplicate field": b'[{"id": 1, "id": 2}]',
    "null record": b'[{"id": 1}, null]',
    "object answer": b'{"error": "nope"}',
    "truncated": page(PROGRESS, PROGRESS)[:-40],
    "byte order mark": b"\xef\xbb\xbf" + page(PROGRESS),  # orjson refuses it: so must we
}


@pytest.mark.parametrize("name", sorted(FAST_PAGES))
def test_fast_path_gives_the_dict_paths_table(name: str) -> None:
    body = FAST_PAGES[name]
    fast = ArrowPages(COURSE_PROGRESSES).decode(body)
    assert fast is not None, f"{name}: the fast path should have read this page"
    assert_same_table(fast, dict_path(body, COURSE_PROGRESSES))


@pytest.mark.parametrize("name", sorted(DICT_PAGES))
def test_pages_it_cannot_type_exactly_go_to_the_dict_path(name: str) -> None:
    assert ArrowPages(COURSE_PROGRESSES).decode(DICT_PAGES[name]) is None


def test_entities_with_json_text_fields_keep_the_dict_path() -> None:
    body = page({"id": 1, "name": "A", "tags": ["x"], "course_items": [{"id": 2}]})
    pages = ArrowPages(COURSES)
    assert not pages.active
    assert pages.decode(body) is None
    assert_same_table(pages.from_rows(orjson.loads(body)), dict_path(body, COURSES))


def test_money_as_text_or_number() -> None:
    fast_body = page({"id": 1, "amount": "19.99"}, {"id": 2, "amount": ""})
    fast = ArrowPages(PAYMENTS).decode(fast_body)
    assert fast is not None
    assert_same_table(fast, dict_path(fast_body, PAYMENTS))
    assert ArrowPages(PAYMENTS).decode(page({"id": 1, "amount": 19.99})) is None


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (page({"id": 5}, {"id": 6}), ("id",)),
        (page({"id": 5, "user_id": 1}, {"id": 5, "user_id": 2}), ("id", "user_id")),
    ],
)
def test_row_keys_equal_the_dict_paths(body: bytes, fields: tuple[str, ...]) -> None:
    key = key_of(*fields)
    fast = ArrowPages(COURSE_PROGRESSES).decode(body)
    assert fast is not None
    assert ArrowPages(COURSE_PROGRESSES).keys(fast, key) == JSON_ROWS.keys(orjson.loads(body), key)


def test_rows_without_an_id_are_keyed_by_content_never_collapsed() -> None:
    body = page({"id": 5}, {"status": "no id"}, {"status": "no id either"}, {"status": "no id"})
    fast = ArrowPages(COURSE_PROGRESSES).decode(body)
    assert fast is not None
    keys = ArrowPages(COURSE_PROGRESSES).keys(fast, key_of("id"))
    assert keys[0] == "5"
    assert len(set(keys[:3])) == 3
    assert keys[1] == keys[3]  # the same content twice: the same record


def test_an_entity_that_keeps_missing_the_fast_path_gives_it_up() -> None:
    pages = ArrowPages(USERS)
    odd = page({"id": "1", "email": "a@example.com"})
    for _ in range(MAX_MISSES):
        assert pages.active
        assert pages.decode(odd) is None
        pages.from_rows(orjson.loads(odd))  # the client's dict path: a miss
    assert not pages.active
    assert pages.decode(page({"id": 1})) is None  # no more attempts in this process
    assert ArrowPages(COURSE_PROGRESSES).active  # other entities keep it


def test_client_pages_are_typed_tables_each_record_once_under_drift(sandbox: Sandbox) -> None:
    """Through real HTTP, with rows sliding between pages: table pages, no row twice."""
    route = "get_course_progresses"
    before = {int(r["id"]) for r in sandbox.world.records(route)}
    sandbox.inject_fault("page_drift_insert", route=route, count=1, records=3)
    with SkyPrepClient(sandbox.api_key, sandbox.acct_key, sandbox.base_url, page_size=7) as client:
        tables = list(client.pages(route, page_format=ArrowPages(COURSE_PROGRESSES)))
    assert sandbox.stats()["faults"] == 1
    assert len(tables) > 3 and all(isinstance(table, pa.Table) for table in tables)
    fields = list(COURSE_PROGRESSES.fields)
    assert all(table.schema.names[: len(fields)] == fields for table in tables)
    ids = [i for table in tables for i in table.column("id").to_pylist()]
    assert len(ids) == len(set(ids))  # the rows that slid onto the next page: dropped
    assert before <= set(ids)
    assert not arrow_pages._MISSES  # every page took the fast path
