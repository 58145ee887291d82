"""The rest of the read API end to end: learning paths, classroom training, permissions,
competencies held, the account, and the opt-in per-user resources, over real HTTP against the
sandbox into DuckDB files under tmp_path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import dlt
import orjson
import pytest
import requests

from skyprep_sandbox import Sandbox, World
from skyprep_source import DATASET_NAME, READ_ROUTES, skyprep
from skyprep_source.account_resources import timeslot_window
from skyprep_source.catalogue import OPT_IN_RESOURCES, TABLES

SECRET = "read-api-secret-key-9Xw2"
NEW_TABLES = (
    "learning_paths",
    "learning_path_courses",
    "learning_path_user_groups",
    "instructor_led_trainings",
    "instructor_led_training_timeslots",
    "instructor_led_training_timeslot_registrations",
    "materials",
    "power_users",
    "user_roles",
    "datasets",
    "competency_awards",
    "skill_leaderboards",
    "program",
)


@pytest.fixture(autouse=True)
def _stamp_load_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")


class Warehouse:
    """A pipeline into a DuckDB file under a tmp dir, loading from one sandbox."""

    def __init__(self, sandbox: Sandbox, root: Path) -> None:
        self.sandbox = sandbox
        self.pipeline = dlt.pipeline(
            pipeline_name="skyprep_read_api",
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.duckdb(str(root / "skyprep.duckdb")),
            dataset_name=DATASET_NAME,
        )

    def load(self, *resources: str, **options: Any) -> Any:
        source = skyprep(
            api_key=self.sandbox.api_key,
            acct_key=self.sandbox.acct_key,
            base_url=self.sandbox.base_url,
            requests_per_minute=None,
            max_attempts=2,
            backoff_base_s=0.01,
            backoff_max_s=0.02,
            request_timeout=5.0,
            **options,
        )
        return self.pipeline.run(source.with_resources(*resources) if resources else source)

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.pipeline.sql_client() as client, client.execute_query(sql, *args) as cursor:
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def current(self, table: str) -> list[dict[str, Any]]:
        return self.rows(f"select * from {DATASET_NAME}.{table} where _dlt_valid_to is null")

    def all_versions(self, table: str) -> list[dict[str, Any]]:
        return self.rows(f"select * from {DATASET_NAME}.{table}")

    def column_types(self, table: str) -> dict[str, str]:
        found = self.rows(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s",
            DATASET_NAME,
            table,
        )
        return {row["column_name"]: row["data_type"] for row in found}

    def tables(self) -> set[str]:
        found = self.rows(
            "select table_name from information_schema.tables where table_schema = %s",
            DATASET_NAME,
        )
        return {row["table_name"] for row in found}


@pytest.fixture
def warehouse_for(tmp_path: Path) -> Callable[[Sandbox], Warehouse]:
    count = 0

    def make(sandbox: Sandbox) -> Warehouse:
        nonlocal count
        count += 1
        return Warehouse(sandbox, tmp_path / f"w{count}")

    return make


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Warehouse, Sandbox]]:
    """One default load of a tiny world, shared by the read-only assertions below."""
    world = World.generate(seed=7, scale="tiny")
    with pytest.MonkeyPatch.context() as patch, Sandbox(world) as sb:
        patch.setenv("NORMALIZE__PARQUET_NORMALIZER__ADD_DLT_LOAD_ID", "true")
        warehouse = Warehouse(sb, tmp_path_factory.mktemp("read_api"))
        warehouse.load()
        yield world, warehouse, sb


def mutate(sandbox: Sandbox, route: str, **params: Any) -> dict[str, Any]:
    """Change the world through the sandbox's own mutating route (as an LMS admin would)."""
    body = {"api_key": sandbox.api_key, "acct_key": sandbox.acct_key, **params}
    response = requests.post(f"{sandbox.base_url}/{route}", data=body, timeout=10)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def ids(rows: list[dict[str, Any]], *key: str) -> set[Any]:
    return {tuple(row[k] for k in key) if len(key) > 1 else row[key[0]] for row in rows}


# ---- the default resources -----------------------------------------------------------------


def test_list_resources_hold_every_record_of_the_world(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    for table, route in (
        ("learning_paths", "get_learning_paths"),
        ("instructor_led_trainings", "get_instructor_led_trainings"),
        ("instructor_led_training_timeslots", "get_instructor_led_training_timeslots"),
        ("materials", "get_materials"),
        ("power_users", "get_power_users"),
        ("user_roles", "get_user_roles"),
        ("datasets", "get_datasets"),
    ):
        want = {int(record["id"]) for record in world.records(route)}
        assert want, f"the tiny world has {table}"
        assert ids(warehouse.current(table), "id") == want, table


def test_learning_paths_bridge_their_courses_and_groups(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    paths = world.records("get_learning_paths")
    courses = {(int(p["id"]), int(c)) for p in paths for c in p["course_ids"]}
    groups = {(int(p["id"]), int(g)) for p in paths for g in p["user_group_ids"]}
    assert ids(warehouse.current("learning_path_courses"), "learning_path_id", "course_id") == (
        courses
    )
    assert ids(
        warehouse.current("learning_path_user_groups"), "learning_path_id", "user_group_id"
    ) == (groups)


def test_registrations_carry_each_timeslots_attendance_status(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    want = {
        (int(r["id"]), int(r["instructor_led_training_timeslot_id"]), r["status"])
        for r in world.records("get_instructor_led_training_timeslot_registrations")
    }
    got = {
        (r["id"], r["instructor_led_training_timeslot_id"], r["status"])
        for r in warehouse.current("instructor_led_training_timeslot_registrations")
    }
    assert got == want
    assert {status for _, _, status in got} <= {"attended", "registered"}


def test_competency_awards_say_who_achieved_which_competency_when(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    want = {
        (cid, uid, datetime.fromtimestamp(t, timezone.utc).date())
        for cid, awards in world.competency_awards.items()
        for uid, t in awards
    }
    got = {
        (r["competency_id"], r["user_id"], r["created_at"].astimezone(timezone.utc).date())
        for r in warehouse.current("competency_awards")
    }
    assert want and got == want


def test_skill_leaderboards_rank_the_highest_balances_first(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    rows = warehouse.current("skill_leaderboards")
    assert rows
    for skill_id in {r["skill_id"] for r in rows}:
        board = sorted((r for r in rows if r["skill_id"] == skill_id), key=lambda r: r["rank"])
        assert [r["rank"] for r in board] == list(range(1, len(board) + 1))
        assert [r["balance"] for r in board] == sorted((r["balance"] for r in board), reverse=True)
        assert all(world.skill_balances[r["user_id"]][skill_id] == r["balance"] for r in board), (
            skill_id
        )


def test_program_is_one_row_keyed_by_the_account(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    (program,) = warehouse.current("program")
    assert program["acct_key"] == world.program["acct_key"]
    assert program["name"] == world.program["name"]
    assert program["id"] == world.program["id"]


def test_power_users_keep_their_permissions_as_json(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    world, warehouse, _ = loaded
    assert warehouse.column_types("power_users")["permissions"] == "JSON"
    for row in warehouse.current("power_users"):
        permissions = orjson.loads(row["permissions"])
        assert permissions["user_role_id"] == world.power_users[row["id"]]["user_role_id"]
        assert permissions["dataset_ids"] == world.power_users[row["id"]]["dataset_ids"]


def test_new_tables_type_ids_dates_and_counts(loaded: tuple[World, Warehouse, Sandbox]) -> None:
    _, warehouse, _ = loaded
    expect = {
        "instructor_led_training_timeslots": {
            "id": "BIGINT",
            "instructor_led_training_id": "BIGINT",
            "start_date": "TIMESTAMP WITH TIME ZONE",
            "end_date": "TIMESTAMP WITH TIME ZONE",
            "capacity": "BIGINT",  # a string on the wire
        },
        "instructor_led_training_timeslot_registrations": {
            "instructor_led_training_timeslot_id": "BIGINT",
            "user_id": "BIGINT",
            "updated_at": "TIMESTAMP WITH TIME ZONE",
        },
        "competency_awards": {"created_at": "TIMESTAMP WITH TIME ZONE", "user_id": "BIGINT"},
        "skill_leaderboards": {"balance": "BIGINT", "rank": "BIGINT", "skill_id": "BIGINT"},
        "learning_paths": {"course_ids": "JSON", "created_at": "TIMESTAMP WITH TIME ZONE"},
        "materials": {"file_size": "BIGINT"},
        "platform_counts": {"measured_at": "TIMESTAMP WITH TIME ZONE", "user_count": "BIGINT"},
    }
    for table, columns in expect.items():
        types = warehouse.column_types(table)
        for column, data_type in columns.items():
            assert types[column] == data_type, f"{table}.{column}"


def test_each_new_table_is_unique_on_its_catalogue_key(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    _, warehouse, _ = loaded
    for table in NEW_TABLES:
        key = TABLES[table].primary_key
        rows = warehouse.current(table)
        assert rows, table
        keys = [tuple(row[k] for k in key) for row in rows]
        assert all(None not in k for k in keys), f"{table}: a null in {key}"
        assert len(set(keys)) == len(keys), f"{table}: {key} repeats"


def test_platform_counts_match_get_data(loaded: tuple[World, Warehouse, Sandbox]) -> None:
    world, warehouse, _ = loaded
    (row,) = warehouse.rows(f"select * from {DATASET_NAME}.platform_counts")
    roles = [meta[2] for meta in world.users.meta.values()]
    assert row["user_count"] == len(world.users)
    assert row["admin_count"] == roles.count("admin")
    assert row["learner_count"] == roles.count("learner")
    assert row["course_count"] == len(world.courses)
    assert row["user_group_count"] == len(world.user_groups)


def test_opt_in_resources_are_absent_unless_asked_for(
    loaded: tuple[World, Warehouse, Sandbox],
) -> None:
    _, warehouse, sb = loaded
    source = skyprep(api_key=SECRET, acct_key="a.skyprepapp.com", base_url=sb.base_url)
    assert not set(OPT_IN_RESOURCES) & set(source.resources.keys())
    assert not set(OPT_IN_RESOURCES) & warehouse.tables()
    called = set(sb.stats()["calls"])
    opt_in_routes = {TABLES[name].route for name in OPT_IN_RESOURCES}
    assert not called & opt_in_routes
    assert {"get_login_key", "get_course_otp"}.isdisjoint(called)
    assert sb.stats()["mutating_calls"] == 0


def test_every_catalogue_route_is_on_the_read_allow_list() -> None:
    assert {endpoint.route for endpoint in TABLES.values()} <= READ_ROUTES


# ---- re-runs and windows ---------------------------------------------------------------------


def test_rerun_without_changes_rewrites_nothing_but_appends_one_platform_count(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    warehouse = warehouse_for(sandbox)
    warehouse.load(*NEW_TABLES, "platform_counts")
    before = {table: len(warehouse.all_versions(table)) for table in NEW_TABLES}
    warehouse.load(*NEW_TABLES, "platform_counts")
    after = {table: len(warehouse.all_versions(table)) for table in NEW_TABLES}
    assert after == before
    counts = warehouse.rows(
        f"select measured_at from {DATASET_NAME}.platform_counts order by measured_at"
    )
    assert len(counts) == 2 and counts[0]["measured_at"] < counts[1]["measured_at"]


def test_timeslots_rerun_reads_the_window_since_the_last_run_minus_the_lookback(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    slots = "instructor_led_training_timeslots"
    registrations = "instructor_led_training_timeslot_registrations"
    warehouse.load(slots, registrations)
    first = [e for e in sandbox.request_log if e["route"] == f"get_{slots}"]
    assert first[0]["params"]["start_date"] == "2000-01-01"

    by_start = sorted(world.timeslots.ids(), key=lambda tid: world.timeslots.meta[tid][1])
    oldest, newest = by_start[0], by_start[-1]
    oldest_day = datetime.fromtimestamp(world.timeslots.meta[oldest][1], timezone.utc).date()
    # the next window starts the day after the oldest session: it stays outside
    lookback = (datetime.now(timezone.utc).date() - oldest_day).days - 1
    in_window = by_start[1]
    changed = next(
        rid for rid in world.registrations.ids() if world.registrations.meta[rid] == in_window
    )
    mutate(
        sandbox,
        "delete_instructor_led_training_timeslot",
        instructor_led_training_timeslot_id=oldest,
    )
    mutate(
        sandbox,
        "delete_instructor_led_training_timeslot",
        instructor_led_training_timeslot_id=newest,
    )
    mutate(
        sandbox,
        "update_instructor_led_training_timeslot_registration",
        instructor_led_training_timeslot_registration_id=changed,
        status="no-show",
    )
    sandbox.reset_stats()
    warehouse.load(slots, registrations, timeslots_lookback_days=lookback)

    second = [e for e in sandbox.request_log if e["route"] == f"get_{slots}"]
    starts = {e["params"]["start_date"] for e in second}
    assert starts == {(oldest_day + timedelta(days=1)).isoformat()}
    current = ids(warehouse.current(slots), "id")
    assert oldest in current, "a session outside the window keeps its last version"
    assert newest not in current, "a session deleted inside the window is retired"
    versions = [r for r in warehouse.all_versions(registrations) if r["id"] == changed]
    assert sorted(v["status"] for v in versions) == sorted(["no-show", versions[0]["status"]])
    assert [v["status"] for v in versions if v["_dlt_valid_to"] is None] == ["no-show"]


def test_timeslot_window_starts_at_the_last_run_minus_the_lookback() -> None:
    today = date(2026, 3, 10)
    assert timeslot_window(None, 30, 365, today) == ("2000-01-01", "2027-03-10")
    assert timeslot_window("2026-03-01", 7, 0, today) == ("2026-02-22", "2026-03-10")


# ---- opt-in resources --------------------------------------------------------------------------


def test_per_user_resources_call_once_per_user_and_load_balances_and_competencies(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    warehouse = warehouse_for(sandbox)
    warehouse.load(
        "user_gamification_balances",
        "user_skill_balances",
        per_user_resources=["user_gamification_balances", "user_skill_balances"],
    )
    calls = sandbox.stats()["calls"]
    assert calls["get_user_gamification_balance"] == len(world.users)
    assert calls["get_user_skill_balances_and_competencies"] == len(world.users)
    balances = {
        r["user_id"]: r["gamification_balance"]
        for r in warehouse.current("user_gamification_balances")
    }
    assert balances == {uid: world.gamification_balances.get(uid, 0) for uid in world.users.ids()}
    skills = {
        (r["user_id"], r["skill_id"]): r["balance"]
        for r in warehouse.current("user_skill_balances")
    }
    assert skills == {
        (uid, sid): balance
        for uid, by_skill in world.skill_balances.items()
        for sid, balance in by_skill.items()
    }
    achieved = ids(warehouse.current("user_competencies_achieved"), "user_id", "competency_id")
    assert achieved == {
        (uid, cid) for cid, awards in world.competency_awards.items() for uid, _ in awards
    }
    assert "users" not in warehouse.tables(), "users only fed the fan-out"


def test_user_courses_call_once_per_user_and_load_each_users_courses_once(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    expected = {
        (uid, course["id"])
        for uid in world.users.ids()
        for course in world.records("get_user_courses", user_id=uid)
    }
    assert expected, "the tiny world enrolls someone"
    warehouse = warehouse_for(sandbox)
    warehouse.load("user_courses", per_user_resources=["user_courses"])
    assert sandbox.stats()["calls"]["get_user_courses"] == len(world.users)
    current = warehouse.current("user_courses")
    assert ids(current, "user_id", "course_id") == expected
    assert len(current) == len(expected), "unique on (user_id, course_id)"
    types = warehouse.column_types("user_courses")
    assert types["user_id"] == types["course_id"] == "BIGINT"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["active"] == "BOOLEAN"
    assert "id" not in types, "the course's id is course_id"
    versions = len(warehouse.all_versions("user_courses"))
    warehouse.load("user_courses", per_user_resources=["user_courses"])
    assert len(warehouse.all_versions("user_courses")) == versions, "a rerun rewrites nothing"


def test_manager_permissions_load_for_the_listed_pairs_with_flags_as_booleans(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    group = world.user_groups.ids()[0]
    manager, other = world.users.ids()[:2]
    mutate(
        sandbox,
        "assign_manager_to_user_group",
        user_id=manager,
        user_group_id=group,
        can_add_courses_to_user_group="0",
    )
    warehouse = warehouse_for(sandbox)
    warehouse.load(
        "manager_permissions", manager_permission_pairs=[(manager, group), [other, group]]
    )
    (row,) = warehouse.current("manager_permissions")
    assert (row["user_id"], row["user_group_id"]) == (manager, group)
    assert row["can_add_courses_to_user_group"] is False
    assert warehouse.column_types("manager_permissions")["can_add_users"] == "BOOLEAN"
    assert sandbox.stats()["calls"]["get_manager_permissions_from_user_group"] == 2


def test_course_item_progresses_read_every_item_of_every_enrollment_of_listed_courses(
    sandbox: Sandbox, warehouse_for: Callable[[Sandbox], Warehouse]
) -> None:
    world = sandbox.world
    course_id = world.courses.ids()[0]
    items = [item["id"] for item in world.courses.get(course_id)["course_items"]]  # type: ignore[index]
    enrolled = {world.progresses.meta[pid][1] for pid in world.progresses_by_course[course_id]}
    warehouse = warehouse_for(sandbox)
    warehouse.load("course_item_progresses", course_item_progress_course_ids=[course_id])
    got = ids(warehouse.current("course_item_progresses"), "user_id", "course_item_id")
    assert got == {(uid, item) for uid in enrolled for item in items}
    assert sandbox.stats()["calls"]["get_course_item_progress"] == len(enrolled) * len(items)
