"""The marts over data loaded by the real source from the sandbox, over real HTTP.

A small hand-made world is loaded twice (the second time after some progresses moved on, a
progress and a user were deleted, a payment completed), then the models are built on the
pipeline's destination, DuckDB and PostgreSQL. The as-of time is the real time of the second
load, so dates that matter for overdue and expiry are set relative to the world's clock (the
real "now" when the test starts) with an hour of slack; dates that only place events in
months are fixed in 2024. Every expected value is worked out from the records below.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dlt
import pytest
from test_models_marts import (
    ACCEPTED_VALUES,
    MART_KEYS,
    OTHER_MART_KEYS,
    make_pipeline,
    mart,
    query,
)

from skyprep_sandbox import Sandbox, World
from skyprep_source import ModelSettings, build_models, skyprep
from skyprep_source.models import ModelsBuild

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)


def days_from_now(days: int, slack: dt.timedelta = HOUR) -> str:
    """An API timestamp `days` whole days from the world's clock, plus slack so that the
    whole-day count from the (slightly later) as-of time is exactly `days`."""
    moment = NOW + dt.timedelta(days=days) + (slack if days >= 0 else -slack)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def on(day: str) -> str:
    """A fixed 2024 API timestamp at midnight UTC."""
    return f"{day}T00:00:00.000Z"


def world(second_load: bool) -> World:
    """The account at the first load, or at the second (after the changes)."""
    users: list[dict[str, Any]] = [
        {"id": 1, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
        {"id": 2, "first_name": "Bob", "last_name": "Brown", "email": "bob@example.com"},
        {"id": 3, "first_name": "Cy", "last_name": "Chen", "email": "cy@example.com"},
        {"id": 4, "first_name": "Di", "last_name": "Diaz", "email": "di@example.com",
         "role": "manager"},
        {"id": 5, "first_name": "Ed", "last_name": "Evans", "email": "ed@example.com"},
    ]  # fmt: skip
    if not second_load:
        users.append({"id": 6, "first_name": "Fay", "last_name": "Gone"})
    courses = [
        {"id": 10, "name": "Safety"},
        {"id": 20, "name": "Privacy"},
        {"id": 30, "name": "Ethics"},
    ]
    progresses: list[dict[str, Any]] = [
        {"id": 101, "user_id": 1, "course_id": 10, "status": "passed",
         "created_at": on("2024-01-10"), "commencement_date": on("2024-01-11"),
         "completion_date": on("2024-01-20"), "deadline_date": on("2024-02-01"),
         "expiration_date": days_from_now(15)},
        {"id": 103, "user_id": 2, "course_id": 10, "status": "failed",
         "created_at": on("2024-03-01"), "commencement_date": on("2024-03-02"),
         "completion_date": on("2024-03-15"), "deadline_date": days_from_now(-20)},
        {"id": 104, "user_id": 2, "course_id": 20, "status": "passed",
         "created_at": on("2024-03-01"), "commencement_date": on("2024-03-05"),
         "completion_date": on("2024-03-31"), "expiration_date": days_from_now(-5)},
        # the explicit deadline (in 10 days) wins over the computed one (30 days ago)
        {"id": 106, "user_id": 3, "course_id": 20, "status": "not-started",
         "created_at": on("2024-06-10"), "deadline_date": days_from_now(10),
         "computed_deadline_date": days_from_now(-30)},
        {"id": 107, "user_id": 4, "course_id": 10, "status": "not-started",
         "created_at": on("2024-06-15")},
        {"id": 108, "user_id": 4, "course_id": 20, "status": "not-applicable",
         "created_at": on("2024-06-15"), "deadline_date": days_from_now(-100)},
        {"id": 109, "user_id": 5, "course_id": 10, "status": "passed",
         "created_at": on("2024-04-01"), "commencement_date": on("2024-04-01"),
         "completion_date": on("2024-04-02"), "deadline_date": on("2024-03-01"),
         "expiration_date": days_from_now(77)},
    ]  # fmt: skip
    if second_load:
        progresses += [
            # failed at the first load, passed since (completion and expiry are the new ones)
            {"id": 102, "user_id": 1, "course_id": 20, "status": "passed",
             "created_at": on("2024-02-01"), "commencement_date": on("2024-02-02"),
             "completion_date": on("2024-06-08"), "expiration_date": days_from_now(45)},
            # started since; only the course's computed deadline (10 days ago) applies
            {"id": 105, "user_id": 3, "course_id": 10, "status": "in-progress",
             "created_at": on("2024-05-01"), "commencement_date": on("2024-05-03"),
             "computed_deadline_date": days_from_now(-10)},
            {"id": 111, "user_id": 5, "course_id": 20, "status": "passed",
             "created_at": on("2024-05-25"), "commencement_date": on("2024-06-05"),
             "completion_date": on("2024-06-15"), "expiration_date": days_from_now(200)},
        ]  # fmt: skip
    else:
        progresses += [
            {"id": 102, "user_id": 1, "course_id": 20, "status": "failed",
             "created_at": on("2024-02-01"), "commencement_date": on("2024-02-02"),
             "completion_date": on("2024-02-05")},
            {"id": 105, "user_id": 3, "course_id": 10, "status": "not-started",
             "created_at": on("2024-05-01"), "computed_deadline_date": days_from_now(-10)},
            {"id": 111, "user_id": 5, "course_id": 20, "status": "not-started",
             "created_at": on("2024-05-25")},
            # deleted before the second load
            {"id": 110, "user_id": 1, "course_id": 30, "status": "in-progress",
             "created_at": on("2024-05-01"), "commencement_date": on("2024-05-02")},
        ]  # fmt: skip
    groups = [
        {"id": 1, "name": "Sales", "user_ids": [1, 2, 3]},
        {"id": 2, "name": "Ops", "user_ids": [4, 5] if second_load else [4, 5, 6]},
        {"id": 3, "name": "Empty", "user_ids": []},
    ]
    payments = [
        {"id": 1, "user_id": 1, "course_id": 10, "status": "complete", "payment_type": "stripe",
         "amount": "49.99", "created_at": on("2024-05-03")},
        {"id": 2, "user_id": 2, "course_id": 10, "status": "complete", "payment_type": "stripe",
         "amount": "50.01", "created_at": on("2024-05-20")},
        {"id": 3, "user_id": 3, "course_id": 20, "status": "refunded", "payment_type": "paypal",
         "amount": "20.00", "created_at": on("2024-05-25")},
        {"id": 4, "user_id": 1, "course_id": 20, "payment_type": "paypal", "amount": "30.00",
         "status": "complete" if second_load else "pending", "created_at": on("2024-06-01")},
    ]  # fmt: skip
    return World.from_records(
        NOW,
        users=users,
        courses=courses,
        course_progresses=progresses,
        user_groups=groups,
        payments=payments,
    )


def load(pipeline: dlt.Pipeline, account: World) -> None:
    """One run of the real source against a sandbox serving `account`."""
    with Sandbox(account, rate_limit=None) as sb:
        pipeline.run(
            skyprep(
                api_key=sb.api_key,
                acct_key=sb.acct_key,
                base_url=sb.base_url,
                requests_per_minute=None,
                saved_reports=False,
            )
        )


@pytest.fixture(
    scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dlt.Pipeline, ModelsBuild]]:
    """The world loaded twice through the source, and the models built once after that."""
    pipelines = make_pipeline(request.param, tmp_path_factory.mktemp(f"sandbox_{request.param}"))
    pipeline = next(pipelines)
    load(pipeline, world(second_load=False))
    load(pipeline, world(second_load=True))
    result = build_models(
        pipeline, pipeline.dataset_name.replace("skyprep_data", "skyprep_analytics")
    )
    yield pipeline, result
    next(pipelines, None)


def rows_of(pipeline: dlt.Pipeline, name: str, order_by: str, keys: list[str]) -> list[tuple]:
    return [tuple(row[k] for k in keys) for row in mart(pipeline, name, order_by, ", ".join(keys))]


def test_build_over_the_source_builds_every_model_as_of_the_second_load(loaded) -> None:
    pipeline, result = loaded
    assert result.skipped == {}
    loads = query(pipeline, f"select inserted_at from {pipeline.dataset_name}._dlt_loads")
    assert result.as_of is not None
    assert result.as_of == max(row["inserted_at"] for row in loads)
    assert NOW <= result.as_of < NOW + HOUR


def test_progress_facts_over_the_source(loaded) -> None:
    pipeline, _ = loaded
    keys = ["course_progress_id", "user_id", "course_id", "status", "is_started", "is_overdue",
            "days_overdue", "is_expired", "expires_within_30d", "days_to_complete"]  # fmt: skip
    assert rows_of(pipeline, "fct_course_progress", "course_progress_id", keys) == [
        (101, 1, 10, "passed", True, False, None, False, True, 10),
        (102, 1, 20, "passed", True, False, None, False, False, 128),
        (103, 2, 10, "failed", True, True, 20, False, False, None),
        (104, 2, 20, "passed", True, False, None, True, False, 30),
        (105, 3, 10, "in-progress", True, True, 10, False, False, None),
        (106, 3, 20, "not-started", False, False, None, False, False, None),
        (107, 4, 10, "not-started", False, False, None, False, False, None),
        (108, 4, 20, "not-applicable", False, False, None, False, False, None),
        (109, 5, 10, "passed", True, False, None, False, False, 1),
        (111, 5, 20, "passed", True, False, None, False, False, 21),
    ]


def test_course_completion_over_the_source(loaded) -> None:
    pipeline, _ = loaded
    keys = ["course_id", "course_name", "enrolled", "not_started", "in_progress", "passed",
            "failed", "overdue", "completion_rate", "pass_rate",
            "median_days_to_complete"]  # fmt: skip
    assert rows_of(pipeline, "agg_course_completion", "course_id", keys) == [
        (10, "Safety", 5, 1, 1, 2, 1, 2, 0.4, round(2 / 3, 9), 5.5),
        (20, "Privacy", 4, 1, 0, 3, 0, 0, 0.75, 1.0, 30.0),
        (30, "Ethics", 0, 0, 0, 0, 0, 0, None, None, None),
    ]


def test_user_and_group_compliance_over_the_source(loaded) -> None:
    pipeline, _ = loaded
    user_keys = ["user_id", "assigned", "passed", "failed", "overdue", "compliance_status"]
    assert rows_of(pipeline, "agg_user_compliance", "user_id", user_keys) == [
        (1, 2, 2, 0, 0, "compliant"),
        (2, 2, 1, 1, 1, "not_compliant"),
        (3, 2, 0, 0, 1, "overdue"),
        (4, 1, 0, 0, 0, "in_progress"),
        (5, 2, 2, 0, 0, "compliant"),
    ]
    group_keys = ["user_group_id", "members", "compliant_members", "share_compliant",
                  "training_progress"]  # fmt: skip
    assert rows_of(pipeline, "agg_group_compliance", "user_group_id", group_keys) == [
        (1, 3, 1, round(1 / 3, 9), 0.5),
        (2, 2, 1, 0.5, round(2 / 3, 9)),  # user 6 was deleted with the second load
        (3, 0, 0, None, None),
    ]


def test_monthly_expiry_and_revenue_over_the_source(loaded) -> None:
    pipeline, _ = loaded
    monthly_keys = ["month_start", "enrollments", "starts", "passes", "fails"]
    assert rows_of(pipeline, "agg_completions_monthly", "month_start", monthly_keys) == [
        (dt.date(2024, 1, 1), 1, 1, 1, 0),
        (dt.date(2024, 2, 1), 1, 1, 0, 0),
        (dt.date(2024, 3, 1), 2, 2, 1, 1),
        (dt.date(2024, 4, 1), 1, 1, 1, 0),
        (dt.date(2024, 5, 1), 2, 1, 0, 0),
        (dt.date(2024, 6, 1), 2, 1, 2, 0),
    ]
    expiry_keys = ["course_progress_id", "expiry_window", "days_until_expiry"]
    assert rows_of(pipeline, "agg_certification_expiry", "course_progress_id", expiry_keys) == [
        (101, "within_30d", 15),
        (102, "within_60d", 45),
        (104, "expired", None),
        (109, "within_90d", 77),
        (111, "later", 200),
    ]
    revenue_keys = ["month_start", "status", "payment_type", "payments", "amount"]
    assert rows_of(pipeline, "agg_revenue_monthly", "month_start, status", revenue_keys) == [
        (dt.date(2024, 5, 1), "complete", "stripe", 2, 100.0),
        (dt.date(2024, 5, 1), "refunded", "paypal", 1, 20.0),
        # pending at the first load, complete at the second: counted once, as complete
        (dt.date(2024, 6, 1), "complete", "paypal", 1, 30.0),
    ]


def test_status_history_over_the_source_follows_the_two_loads(loaded) -> None:
    pipeline, _ = loaded
    keys = ["course_progress_id", "status_seq", "status", "valid_from", "valid_to",
            "hours_in_status"]  # fmt: skip
    history = rows_of(
        pipeline, "fct_course_progress_status_history", "course_progress_id, status_seq", keys
    )
    first_seen = min(row[3] for row in history)
    second_seen = max(row[3] for row in history)
    assert first_seen < second_seen
    # time in status is counted in whole seconds (second boundaries crossed), as hours
    whole_seconds = second_seen.replace(microsecond=0) - first_seen.replace(microsecond=0)
    between = round(whole_seconds.total_seconds() / 3600, 9)
    assert [row[:5] for row in history] == [
        (101, 1, "passed", first_seen, None),
        (102, 1, "failed", first_seen, second_seen),
        (102, 2, "passed", second_seen, None),
        (103, 1, "failed", first_seen, None),
        (104, 1, "passed", first_seen, None),
        (105, 1, "not-started", first_seen, second_seen),
        (105, 2, "in-progress", second_seen, None),
        (106, 1, "not-started", first_seen, None),
        (107, 1, "not-started", first_seen, None),
        (108, 1, "not-applicable", first_seen, None),
        (109, 1, "passed", first_seen, None),
        (110, 1, "in-progress", first_seen, second_seen),  # deleted at the second load
        (111, 1, "not-started", first_seen, second_seen),
        (111, 2, "passed", second_seen, None),
    ]
    closed = {row[0]: row[5] for row in history if row[4] is not None}
    assert closed == {102: between, 105: between, 110: between, 111: between}
    funnel_keys = ["course_id", "reached_started", "reached_passed",
                   "timed_enrolled_to_started", "median_hours_enrolled_to_started",
                   "timed_started_to_passed", "timed_enrolled_to_passed",
                   "median_hours_enrolled_to_passed"]  # fmt: skip
    assert rows_of(pipeline, "agg_progress_funnel_timing", "course_id", funnel_keys) == [
        (10, 4, 2, 1, between, 0, 0, None),  # 105 started between the loads
        # 111 went from not-started straight to passed: that timed both enrolled -> started
        # and enrolled -> passed, but not started -> passed (in-progress was never seen)
        (20, 3, 3, 1, between, 0, 1, between),
        (30, 1, 0, 0, None, 0, 0, None),
    ]


def test_a_generated_world_gives_unique_keys_and_known_statuses(tmp_path) -> None:
    """The sandbox's generated tiny world (every status, groups, payments, a day of change)
    through the source: keys stay unique and not null, status columns stay in their sets."""
    pipelines = make_pipeline("duckdb", tmp_path)
    pipeline = next(pipelines)
    account = World.generate(seed=7, scale="tiny")
    load(pipeline, account)
    account.advance(days=3)
    load(pipeline, account)
    result = build_models(pipeline, settings=ModelSettings(org_dimensions={"department": "ca_0"}))
    assert result.skipped == {}
    keys = {**MART_KEYS, **OTHER_MART_KEYS}
    assert all(result.rows[name] > 0 for name in keys), result.rows
    trend = query(pipeline, "select load_id, user_group_id from {a}.agg_compliance_trend")
    assert len({(row["load_id"], row["user_group_id"]) for row in trend}) == len(trend) > 0
    for name, key in keys.items():
        rows = query(pipeline, f"select {', '.join(key)} from {{a}}.{name}")
        values = [tuple(row[column] for column in key) for row in rows]
        assert all(v is not None for value in values for v in value), name
        assert len(set(values)) == len(values), name
    for (name, column), accepted in ACCEPTED_VALUES.items():
        rows = query(pipeline, f"select distinct {column} as value from {{a}}.{name}")
        assert {row["value"] for row in rows} <= accepted, (name, column)
    next(pipelines, None)
