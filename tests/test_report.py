"""The HTML compliance report, opened in a real headless Chromium.

Worlds are loaded by the real source from the sandbox over HTTP, the models built on DuckDB
or PostgreSQL, the report written by `build_report` (or by `skyprep run`), then the file is
opened in Chromium over the DevTools protocol (tests/chromium.py): no console error, no
request but the file itself, a drawn SVG in every chart, and headline figures equal to what
the marts say. Only the browser tests skip, and only where no Chromium can be found.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dlt
import pytest
from chromium import Chromium, Page, find_chromium
from test_job import clean_environment, sandbox_environment, skyprep
from test_models_marts import analytics_dataset, make_pipeline

from skyprep_sandbox import Sandbox, World
from skyprep_source import build_models
from skyprep_source import skyprep as skyprep_source
from skyprep_source.job import RunOptions, RunSummary, run_load, write_report_for
from skyprep_source.models import ModelsBuild, ModelSettings
from skyprep_source.report import build_report
from skyprep_source.report.svg import bar_rows, escape, series_of

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '<img src=x onerror="alert(2)">'
EVERY_CHART = ("courses", "groups", "overdue-groups", "overdue-days", "expiry", "monthly", "trend", "revenue")  # fmt: skip


def api_time(days: float) -> str:
    return (NOW + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def handmade(second_load: bool) -> World:
    """Four learners, two courses and two groups whose names are markup. Between the loads
    progress 103 is passed and progress 105 is assigned:
    load 1: 4 learners, 4 assignments, 2 passed (50%), compliant 1 and 4 (50%);
    load 2: 4 learners, 5 assignments, 3 passed (60%), compliant 3 and 4 (50%).
    Progress 102 is overdue and 101 expires within 30 days. No payments. No group assigns a
    course, so every enrolment is required training."""
    progresses: list[dict[str, Any]] = [
        {"id": 101, "user_id": 1, "course_id": 10, "status": "passed",
         "created_at": api_time(-40), "commencement_date": api_time(-39),
         "completion_date": api_time(-30), "expiration_date": api_time(15)},
        {"id": 102, "user_id": 2, "course_id": 10, "status": "not-started",
         "created_at": api_time(-40), "deadline_date": api_time(-5)},
        {"id": 103, "user_id": 3, "course_id": 20, "status": "passed" if second_load else "in-progress",
         "created_at": api_time(-20), "commencement_date": api_time(-19),
         **({"completion_date": api_time(-0.5)} if second_load else {})},
        {"id": 104, "user_id": 4, "course_id": 20, "status": "passed",
         "created_at": api_time(-20), "commencement_date": api_time(-20),
         "completion_date": api_time(-10)},
    ]  # fmt: skip
    if second_load:
        progresses.append(
            {"id": 105, "user_id": 1, "course_id": 20, "status": "not-started",
             "created_at": api_time(-0.5)}
        )  # fmt: skip
    return World.from_records(
        NOW,
        # ca_0 is the department: Sales (learners 1, 2) and Ops (3, 4)
        users=[
            {"id": i, "first_name": f"Learner{i}", "ca_0": "Sales" if i <= 2 else "Ops"}
            for i in range(1, 5)
        ],
        courses=[{"id": 10, "name": SCRIPT_NAME}, {"id": 20, "name": "Privacy & <b>Safety</b>"}],
        course_progresses=progresses,
        user_groups=[
            {"id": 1, "name": IMG_NAME, "user_ids": [1, 2]},
            {"id": 2, "name": "Ops", "user_ids": [3, 4]},
        ],
    )


def load(pipeline: dlt.Pipeline, account: World) -> None:
    with Sandbox(account, rate_limit=None) as sb:
        pipeline.run(
            skyprep_source(
                api_key=sb.api_key,
                acct_key=sb.acct_key,
                base_url=sb.base_url,
                requests_per_minute=None,
                saved_reports=False,
            )
        )


def figures(html: str) -> dict[str, tuple[str, str]]:
    """The headline figures of a report file: key -> (value, previous) as written."""
    found = re.findall(r'data-figure="([^"]+)" data-value="([^"]*)" data-previous="([^"]*)"', html)
    return {key: (value, previous) for key, value, previous in found}


def number(text: str) -> float | None:
    return float(text) if text else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """A headless Chromium for the module. Without one: skip locally, fail in CI (.ci/run
    installs Debian's chromium, so a missing browser there is a broken CI)."""
    if find_chromium() is None:
        reason = "no Chromium found: install Debian's chromium package, or set $CHROMIUM"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with Chromium.start() as chromium:
        yield chromium


def open_report(browser: Chromium, path: Path) -> Page:
    page = browser.open(path.resolve().as_uri())
    # every check below reads a page that loaded cleanly and offline
    assert page.console_errors == []
    assert page.requests == [page.url]
    return page


def drawn_charts(page: Page) -> dict[str, int]:
    """Per section key, the marks (rect, circle, polyline) of its chart with a visible size."""
    result = page.evaluate(
        """Object.fromEntries(Array.from(document.querySelectorAll("[data-chart]")).map(box => [
             box.dataset.chart,
             Array.from(box.querySelectorAll("svg rect, svg circle, svg polyline"))
               .filter(mark => { const r = mark.getBoundingClientRect();
                                 return r.width > 0 && r.height > 0; }).length]))"""
    )
    return dict(result)


def section_notes(page: Page) -> dict[str, str]:
    return dict(
        page.evaluate(
            """Object.fromEntries(Array.from(document.querySelectorAll("section .note"))
                 .map(note => [note.closest("section").dataset.section, note.textContent]))"""
        )
    )


# ---- a generated account, loaded twice by `run_load` --------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny generated world loaded twice (a day passes between), the report written by
    the job after the second load. Returns (report, database)."""
    tmp = tmp_path_factory.mktemp("report_generated")
    today = dt.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with Sandbox(World.generate(seed=7, scale="tiny", start=today), rate_limit=None) as sb:
        options = RunOptions(
            destination=dlt.destinations.duckdb(str(tmp / "skyprep.duckdb")),
            pipelines_dir=str(tmp / "pipelines"),
            source_options={
                "api_key": sb.api_key,
                "acct_key": sb.acct_key,
                "base_url": sb.base_url,
                "requests_per_minute": None,
            },
            report_path=str(tmp / "report.html"),
        )
        run_load(options)
        sb.advance(days=1)
        summary = run_load(options)
    assert summary.report is not None and summary.report.errors == {}
    assert f"report: {summary.report}" in summary.lines()
    return Path(summary.report.path), tmp / "skyprep.duckdb"


def test_report_of_a_generated_account_is_small_and_self_contained(generated) -> None:
    report, _ = generated
    html = report.read_text(encoding="utf-8")
    assert report.stat().st_size < 300_000
    # nothing that could fetch: no external script, stylesheet, image or font
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "default-src 'none'" in html


def test_every_chart_is_drawn_offline_without_console_errors(generated, browser) -> None:
    report, _ = generated
    page = open_report(browser, report)
    charts = drawn_charts(page)
    assert set(EVERY_CHART) <= set(charts)
    assert {key: n for key, n in charts.items() if n == 0} == {}
    # the one section without a chart says why: this world's models map no custom attribute
    # to an org dimension, so agg_org_compliance has no rows
    notes = section_notes(page)
    assert list(notes) == ["org"]
    assert "no custom attribute is mapped to an org dimension" in notes["org"]


def test_headline_figures_in_the_page_equal_the_marts(generated, browser) -> None:
    report, database = generated
    page = open_report(browser, report)
    shown = page.evaluate(
        """Object.fromEntries(Array.from(document.querySelectorAll("[data-figure]"))
             .map(f => [f.dataset.figure, Number(f.dataset.value)]))"""
    )
    import duckdb

    with duckdb.connect(str(database), read_only=True) as db:
        (learners, compliant) = db.execute(
            "select count(*), count(*) filter (where compliance_status = 'compliant') "
            "from skyprep_analytics.agg_user_compliance"
        ).fetchone() or (0, 0)
        # the headline counts required training only (the generated world's groups assign
        # courses, so some enrolments are optional)
        (assignments, passed, overdue, optional) = db.execute(
            "select count(*) filter (where is_required), "
            "count(*) filter (where is_required and status = 'passed'), "
            "count(*) filter (where is_required and is_overdue), "
            "count(*) filter (where not is_required) "
            "from skyprep_analytics.fct_course_progress where status <> 'not-applicable'"
        ).fetchone() or (0, 0, 0, 0)
        (expiring,) = db.execute(
            "select count(*) from skyprep_analytics.agg_certification_expiry "
            "where expiry_window = 'within_30d'"
        ).fetchone() or (0,)
    assert learners > 0 and assignments > 0 and optional > 0
    assert shown == pytest.approx(
        {
            "learners": learners,
            "assignments": assignments,
            "completion_rate": passed / assignments,
            "share_compliant": compliant / learners,
            "overdue": overdue,
            "expiring": expiring,
        }
    )
    # and the visible text says the same
    visible = page.evaluate(
        """document.querySelector('[data-figure="learners"] .value').textContent"""
    )
    assert visible == f"{learners:,}"


def test_the_group_filter_leaves_only_the_chosen_group(generated, browser) -> None:
    report, _ = generated
    page = open_report(browser, report)
    groups = page.evaluate(
        "Array.from(document.querySelectorAll('#group-filter option')).map(o => o.value)"
    )
    chosen = groups[1]  # groups[0] is "all groups"

    def visible_groups() -> list[str]:
        return list(
            page.evaluate(
                """Array.from(document.querySelectorAll("[data-group]"))
                     .filter(row => row.getClientRects().length > 0)
                     .map(row => row.dataset.group)"""
            )
        )

    before = visible_groups()
    assert len(set(before)) == len(groups) - 1
    page.evaluate(
        f"""(() => {{ const s = document.getElementById("group-filter"); s.value = {chosen!r};
                      s.dispatchEvent(new Event("change")); }})()"""
    )
    after = visible_groups()
    assert after and set(after) == {chosen}
    assert page.console_errors == []


# ---- a hand-made account: markup in names, known changes between two loads -------------


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def handmade_reports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, dlt.Pipeline]]:
    """The hand-made account's report after its first load and after its second."""
    tmp = tmp_path_factory.mktemp(f"report_{request.param}")
    pipelines = make_pipeline(request.param, tmp)
    pipeline = next(pipelines)
    reports = []
    for second_load in (False, True):
        load(pipeline, handmade(second_load))
        build_models(pipeline, analytics_dataset(pipeline))
        result = build_report(
            pipeline, tmp / f"load{int(second_load) + 1}.html",
            analytics_dataset=analytics_dataset(pipeline), account="acme <test>",
        )  # fmt: skip
        assert result.errors == {}
        reports.append(result.path)
    yield reports[0], reports[1], pipeline
    next(pipelines, None)


def test_headline_figures_and_their_change_since_the_previous_load(handmade_reports) -> None:
    first, second, _ = handmade_reports
    after_one = figures(first.read_text(encoding="utf-8"))
    after_two = figures(second.read_text(encoding="utf-8"))
    assert {k: (number(v), number(p)) for k, (v, p) in after_one.items()} == {
        "learners": (4, None),
        "assignments": (4, None),
        "completion_rate": (0.5, None),
        "share_compliant": (0.5, None),
        "overdue": (1, None),
        "expiring": (1, None),
    }
    assert {k: (number(v), number(p)) for k, (v, p) in after_two.items()} == {
        "learners": (4, 4),
        "assignments": (5, 4),
        "completion_rate": (0.6, 0.5),
        "share_compliant": (0.5, 0.5),
        # overdue needs the deadlines as they were: fct_user_compliance_at_load keeps them
        "overdue": (1, 1),
        "expiring": (1, None),
    }
    html = second.read_text(encoding="utf-8")
    assert "+1 since the previous load" in html  # assignments
    assert "+10.0 pts since the previous load" in html  # completion rate
    assert "one load so far: no change to show yet" in first.read_text(encoding="utf-8")


def test_the_marts_are_read_the_same_on_every_destination(handmade_reports) -> None:
    """Both destinations' reports (same world, same loads) give the same sections and notes."""
    _, second, _ = handmade_reports
    html = second.read_text(encoding="utf-8")
    charts = re.findall(r'data-chart="([^"]+)"', html)
    assert charts == ["courses", "groups", "overdue-groups", "overdue-days", "expiry", "monthly", "trend"]  # fmt: skip
    assert "payments were not loaded" in html  # no payments in this account: no revenue mart


def test_names_from_the_account_show_as_text_never_as_markup(handmade_reports, browser) -> None:
    _, second, _ = handmade_reports
    page = open_report(browser, second)
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0
    text = page.evaluate("document.body.innerText")
    assert SCRIPT_NAME in text and IMG_NAME in text and "Privacy & <b>Safety</b>" in text
    assert "acme <test>" in page.evaluate("document.getElementById('as-of').textContent")
    option = page.evaluate("document.querySelector('#group-filter option[value=\"1\"]').text")
    assert option == IMG_NAME


def test_a_single_load_says_the_trend_starts_with_the_next_load(handmade_reports, browser) -> None:
    first, _, _ = handmade_reports
    page = open_report(browser, first)
    notes = section_notes(page)
    assert "One load so far" in notes["trend"]
    assert "trend" not in drawn_charts(page)
    assert {k: n for k, n in drawn_charts(page).items() if n == 0} == {}


# ---- accounts with nothing to show --------------------------------------------------------


def test_an_empty_account_gives_a_page_that_says_so(tmp_path: Path, browser) -> None:
    pipelines = make_pipeline("duckdb", tmp_path)
    pipeline = next(pipelines)
    load(pipeline, World.from_records(NOW))
    build = build_models(pipeline, analytics_dataset(pipeline))
    assert build.skipped  # no rows: most raw tables never created, their marts skipped
    result = build_report(pipeline, tmp_path / "empty.html")
    assert result.errors == {} and result.charts == []
    page = open_report(browser, result.path)
    notes = section_notes(page)
    assert set(notes) >= {"courses", "groups", "expiry", "monthly", "trend", "revenue"}
    assert all(note.startswith(("Not available", "No ", "One load")) for note in notes.values())
    values = page.evaluate(
        "Array.from(document.querySelectorAll('[data-figure] .value')).map(v => v.textContent)"
    )
    assert len(values) == 6


def test_a_report_before_any_model_was_built_says_so(tmp_path: Path) -> None:
    pipelines = make_pipeline("duckdb", tmp_path)
    pipeline = next(pipelines)
    load(pipeline, handmade(second_load=False))
    result = build_report(pipeline, tmp_path / "r.html")  # models never built
    html = result.path.read_text(encoding="utf-8")
    assert result.errors == {} and result.charts == []
    assert "no successful load yet" in html
    assert "the mart agg_course_completion was not built" in html


# ---- the command line ---------------------------------------------------------------------


def test_run_writes_the_report_and_report_rewrites_it(tmp_path: Path, sandbox: Sandbox) -> None:
    env = sandbox_environment(tmp_path, sandbox)
    ran = skyprep("run", "--quiet", "--requests-per-minute", "off", cwd=tmp_path, env=env)
    assert ran.returncode == 0, ran.stderr
    report = tmp_path / "skyprep_report.html"
    assert f"report: {report.name} (" in ran.stdout
    assert sandbox.acct_key in report.read_text(encoding="utf-8")
    report.unlink()

    again = skyprep("report", "--output", "out/r.html", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "out" / "r.html").exists()
    assert again.stdout.startswith("report: out/r.html (")


def test_run_with_no_report_writes_none(tmp_path: Path, sandbox: Sandbox) -> None:
    ran = skyprep(
        "run",
        "--quiet",
        "--no-report",
        "--requests-per-minute",
        "off",
        cwd=tmp_path,
        env=sandbox_environment(tmp_path, sandbox),
    )
    assert ran.returncode == 0, ran.stderr
    assert not (tmp_path / "skyprep_report.html").exists()
    assert "report:" not in ran.stdout


def test_report_without_a_database_names_the_fix(tmp_path: Path) -> None:
    result: subprocess.CompletedProcess[str] = skyprep(
        "report", cwd=tmp_path, env=clean_environment(tmp_path)
    )
    assert result.returncode == 3
    assert "run `skyprep run` first" in result.stderr
    assert not (tmp_path / "skyprep.duckdb").exists()


# ---- the charts themselves ----------------------------------------------------------------


def test_bar_labels_and_tooltips_are_escaped() -> None:
    html = bar_rows([(SCRIPT_NAME, [3.0, 1.0], "75%")], series_of(["compliant", "overdue"]))
    assert SCRIPT_NAME not in html
    assert escape(SCRIPT_NAME) in html
    assert html.count("<title>") == 2


def test_the_browser_checks_can_fail(tmp_path: Path, browser) -> None:
    """The harness sees what the report tests assert away: a console error, a thrown
    exception and a request to another host."""
    page_file = tmp_path / "bad.html"
    page_file.write_text(
        '<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/pixel.png">'
        "<script>console.error('boom'); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    page = browser.open(page_file.as_uri())
    assert "http://127.0.0.1:9/pixel.png" in page.requests
    assert any("boom" in error for error in page.console_errors)
    assert any("undefinedFunction" in error for error in page.console_errors)


def test_a_report_that_cannot_be_written_is_said_in_the_summary(
    handmade_reports, tmp_path: Path
) -> None:
    """The data and models are in place by then: the run says so and does not fail."""
    _, _, pipeline = handmade_reports
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    options = RunOptions(
        analytics_dataset_name=analytics_dataset(pipeline),
        source_options={"api_key": "k" * 16, "acct_key": "acme", "base_url": "http://127.0.0.1:9"},
        report_path=str(blocker / "report.html"),
    )
    summary = RunSummary(
        pipeline.pipeline_name, "duckdb", "raw", {}, 0.0, [], models=ModelsBuild("a", "duckdb")
    )
    report, note = write_report_for(pipeline, options, summary)
    assert report is None
    assert note is not None and note.startswith("not written: ")
    assert note.endswith("run `skyprep report` to retry")
    summary.report_note = note
    assert f"report: {note}" in summary.lines()


# ---- the compliance marts: trend, expired learners, org dimensions ----------------------


@pytest.mark.parametrize("destination", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])  # fmt: skip
def test_the_trend_and_org_marts_are_drawn_when_an_attribute_is_mapped(
    destination: str, tmp_path: Path, browser
) -> None:
    """The hand-made account loaded twice, its models built with department = ca_0: the
    org section draws agg_org_compliance, the trend draws agg_compliance_trend's account rows,
    and the group chart stacks all five statuses."""
    pipelines = make_pipeline(destination, tmp_path)
    pipeline = next(pipelines)
    analytics = analytics_dataset(pipeline)
    department = ModelSettings(org_dimensions={"department": "ca_0"})
    for second_load in (False, True):
        load(pipeline, handmade(second_load))
        build_models(pipeline, analytics, settings=department)
    result = build_report(pipeline, tmp_path / "r.html", analytics_dataset=analytics)
    assert result.errors == {} and result.notes == {"revenue": result.notes["revenue"]}
    assert {"org", "trend", "groups"} <= set(result.charts)
    html = result.path.read_text(encoding="utf-8")
    # Sales: learner 1 in progress (course 20 assigned at load 2), learner 2 overdue;
    # Ops: learners 3 and 4 passed everything
    assert "Least compliant: department Sales (0.0% of 2)." in html
    assert "department: Ops" in html
    # compliant at load 1: learners 1 and 4; at load 2: learners 3 and 4
    assert "Learners compliant: 50.0% at the first load shown, 50.0% at the last." in html
    page = open_report(browser, result.path)
    legend = page.evaluate(
        "Array.from(document.querySelectorAll('#groups .legend li')).map(li => li.textContent)"
    )
    assert legend == ["compliant", "in progress", "overdue", "expired", "not compliant"]
    assert {k: n for k, n in drawn_charts(page).items() if n == 0} == {}
    org_rows = page.evaluate(
        """Array.from(document.querySelectorAll("#org table tbody tr"))
             .map(tr => Array.from(tr.cells).map(td => td.textContent))"""
    )
    assert org_rows == [
        ["department", "Sales", "2", "0", "1", "1", "0", "0", "0.0%"],
        ["department", "Ops", "2", "2", "0", "0", "0", "0", "100.0%"],
    ]
    next(pipelines, None)


def test_a_mart_without_a_column_the_report_reads_says_which(tmp_path: Path) -> None:
    pipelines = make_pipeline("duckdb", tmp_path)
    pipeline = next(pipelines)
    load(pipeline, handmade(second_load=False))
    analytics = analytics_dataset(pipeline)
    build_models(pipeline, analytics)
    with pipeline.sql_client() as client:
        client.execute_sql(f"alter table {analytics}.agg_course_completion drop column pass_rate")
    result = build_report(pipeline, tmp_path / "r.html", analytics_dataset=analytics)
    assert result.errors == {}
    assert "courses" not in result.charts
    assert "has no column pass_rate" in result.notes["courses"]
    assert "rebuild the models" in result.notes["courses"]
    next(pipelines, None)


def test_chart_gridlines_fall_on_whole_numbers() -> None:
    """The y axis is cut in quarters: its top is a round number whose quarters are whole."""
    from skyprep_source.report.svg import _nice

    for largest in (0, 1, 3, 5, 9, 38, 150, 151, 2883, 10_001, 1_234_567):
        top = _nice(largest)
        assert top >= largest and top % 4 == 0
    assert [_nice(v) for v in (3, 38, 150, 2883)] == [4, 40, 200, 3000]
