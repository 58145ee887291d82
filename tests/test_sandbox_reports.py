"""Saved advanced reports and async reports, with every CSV quirk in API-NOTES."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable

import requests

from skyprep_sandbox import Sandbox

Api = Callable[..., requests.Response]


def report_id(api: Api, name: str) -> int:
    (report,) = [r for r in api("get_saved_advanced_reports").json() if r["name"] == name]
    return int(report["id"])


def download(api: Api, rid: int) -> requests.Response:
    return api("get_saved_advanced_report", saved_advanced_report_id=rid, format="csv")


def rows_of(raw: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


def test_saved_report_list_has_the_reference_fields(sandbox: Sandbox, api: Api) -> None:
    reports = api("get_saved_advanced_reports").json()
    assert {r["saved_report_type"] for r in reports} == {"saved_report_with_data", "saved_report"}
    for report in reports:
        assert {
            "created_at", "created_at_int", "updated_at", "updated_at_int", "id",
            "saved_advanced_report_id", "model_type", "xlsx_url", "csv_url",
            "report_params_digest", "saved_report_type", "name",
        } <= set(report)  # fmt: skip
        assert report["updated_at"].endswith("-05:00")


def test_saved_report_csv_has_every_quirk(sandbox: Sandbox, api: Api) -> None:
    response = download(api, report_id(api, "All Course Progresses Report"))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in raw
    text = raw.decode("utf-8-sig")
    assert "&amp;" in text and "&#39;" in text and "&quot;" in text
    assert re.search(r"[A-Z][a-z]+ \d{1,2}, \d{4} at \d{1,2}:\d{2} [AP]M", text)
    assert "'-" in text
    rows = rows_of(raw)
    header, body = rows[0], rows[1:]
    assert any("\n" in cell for row in body for cell in row), "no quoted newline"
    assert '""' in text, "no doubled quote inside a quoted field"
    status = header.index("Status")
    assert {row[status] for row in body} <= {
        "Passed",
        "Failed",
        "In-progress",
        "Not-started",
        "Not-applicable",
    }
    assert "Department" in header and "Location" in header
    pairs = Counter((row[header.index("User ID")], row[header.index("Course ID")]) for row in body)
    assert max(pairs.values()) == 2, "no repeated user+course row"


def test_compliance_matrix_has_a_status_column_per_course(sandbox: Sandbox, api: Api) -> None:
    rows = rows_of(download(api, report_id(api, "Compliance Matrix")).content)
    statuses = {cell for row in rows[1:] for cell in row[7:]}
    assert "Not-enrolled" in statuses and "Passed" in statuses
    assert len(rows) - 1 == len(sandbox.world.users)


def test_stored_report_changes_only_when_regenerated(sandbox: Sandbox, api: Api) -> None:
    rid = report_id(api, "All Course Progresses Report")
    before = download(api, rid).content
    pid = sandbox.world.progresses.ids()[0]
    api("update_course_progress", course_progress_id=pid, set_status="failed")
    assert download(api, rid).content == before
    sandbox.world.advance(days=1)
    assert download(api, rid).content != before


def test_unknown_saved_report_is_a_404_json_error(sandbox: Sandbox, api: Api) -> None:
    response = download(api, 1)
    assert response.status_code == 404 and "error" in response.json()


def test_get_report_answers_csv(sandbox: Sandbox, api: Api) -> None:
    response = api("get_report", report_type="all_courses")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert len(rows_of(response.content)) == len(sandbox.world.courses) + 1


def test_async_report_is_pending_then_complete_with_a_download_url(
    sandbox: Sandbox, api: Api
) -> None:
    status_url = api("generate_async_report", report_type="all_users", format="csv").json()[
        "status_url"
    ]
    assert status_url.startswith(sandbox.base_url + "/get_async_report?report_id=")
    creds = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key}
    first = requests.post(status_url, data=creds, timeout=10).json()
    assert first["status"] == "pending"
    done = requests.post(status_url, data=creds, timeout=10).json()
    assert done["status"] == "complete" and done["url"].startswith(sandbox.root_url)
    csv_response = requests.get(done["url"], timeout=10)  # a signed link: no key needed
    assert csv_response.headers["Content-Type"].startswith("text/csv")
    assert len(rows_of(csv_response.content)) == len(sandbox.world.users) + 1
    download = sandbox.request_log[-1]
    assert download["route"] == "download_async_report" and download["key_source"] is None


def test_async_report_download_needs_its_signature(sandbox: Sandbox, api: Api) -> None:
    sandbox.configure(async_report_pending_polls=0)
    status_url = api("generate_async_report", report_type="all_courses").json()["status_url"]
    url = api("get_async_report", report_id=status_url.rsplit("=", 1)[1]).json()["url"]
    assert requests.get(url.split("?")[0], timeout=10).status_code == 404


def test_async_report_that_never_finishes(sandbox: Sandbox, api: Api) -> None:
    sandbox.configure(async_report_mode="never")
    status_url = api("generate_async_report", report_type="all_users").json()["status_url"]
    report = status_url.rsplit("=", 1)[1]
    assert all(
        api("get_async_report", report_id=report).json()["status"] == "pending" for _ in range(5)
    )


def test_async_report_that_fails(sandbox: Sandbox, api: Api) -> None:
    sandbox.configure(async_report_mode="fail")
    report = (
        api("generate_async_report", report_type="all_users").json()["status_url"].rsplit("=", 1)[1]
    )
    answer = api("get_async_report", report_id=report).json()
    assert answer["status"] == "failed" and answer["error"]


def test_async_report_of_an_unknown_type_fails(sandbox: Sandbox, api: Api) -> None:
    sandbox.configure(async_report_pending_polls=0)
    report = (
        api("generate_async_report", report_type="single_exam")
        .json()["status_url"]
        .rsplit("=", 1)[1]
    )
    assert api("get_async_report", report_id=report).json()["status"] == "failed"
