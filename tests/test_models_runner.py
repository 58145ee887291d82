"""The models runner: the rules the model files live by, build order, materialisation,
qualification, portability and packaging.

Built models are checked on the hand-built raw world of `test_models_marts` (DuckDB here;
the PostgreSQL answers are pinned there).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import dlt
import pytest
import sqlglot
from sqlglot import ErrorLevel
from test_models_marts import RAW_TABLES, make_pipeline, query, write_raw_world

from skyprep_source import build_models
from skyprep_source.models import (
    ModelDefinitionError,
    ModelSettings,
    ModelSettingsError,
    build_order,
    for_dialect,
    load_models,
    models_directory,
    qualified_select,
    render_statements,
)
from skyprep_source.models import _table_expression as table_expression

PROJECT_ROOT = Path(__file__).resolve().parent.parent

STAGING = {
    "stg_course_progress_versions": "course_progresses",
    "stg_course_progresses": "course_progresses",
    "stg_courses": "courses",
    "stg_dlt_loads": "_dlt_loads",
    "stg_payments": "payments",
    "stg_user_group_members": "user_group_members",
    "stg_user_groups": "user_groups",
    "stg_users": "users",
    "stg_user_versions": "users",
    "stg_user_group_versions": "user_groups",
    "stg_user_group_member_versions": "user_group_members",
    "stg_learning_paths": "learning_paths",
    "stg_learning_path_courses": "learning_path_courses",
    "stg_learning_path_user_groups": "learning_path_user_groups",
    "stg_learning_path_course_versions": "learning_path_courses",
    "stg_learning_path_user_group_versions": "learning_path_user_groups",
    "stg_instructor_led_trainings": "instructor_led_trainings",
    "stg_instructor_led_training_timeslots": "instructor_led_training_timeslots",
    "stg_instructor_led_training_timeslot_registrations": (
        "instructor_led_training_timeslot_registrations"
    ),
    "stg_skills": "skills",
    "stg_competencies": "competencies",
    "stg_competency_awards": "competency_awards",
    "stg_skill_leaderboards": "skill_leaderboards",
}
MARTS = {
    "dim_users", "dim_courses", "dim_user_groups", "bridge_user_group_members",
    "fct_course_progress", "fct_course_progress_status_history", "fct_payments",
    "agg_course_completion", "agg_user_compliance", "agg_group_compliance",
    "agg_completions_monthly", "agg_certification_expiry", "agg_revenue_monthly",
    "agg_progress_funnel_timing", "agg_org_compliance", "bridge_user_group_members_at_load",
    "fct_user_compliance_at_load", "agg_compliance_trend", "fct_user_compliance_monthly",
    "fct_learning_path_progress", "agg_classroom_sessions", "agg_classroom_attendance",
    "fct_user_competencies", "fct_user_skill_balances", "agg_learner_skills",
}  # fmt: skip
# ephemeral: inlined as CTEs into the marts that read them, never built on their own
INTERMEDIATE = {"int_required_course_rules", "int_compliance_statuses"}


def write_models(root: Path, files: dict[str, str]) -> Path:
    """A models directory with the given `layer/name.sql` files."""
    for relative, sql in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql, encoding="utf-8")
    return root


@pytest.fixture
def duckdb_pipeline(tmp_path: Path):
    pipelines = make_pipeline("duckdb", tmp_path)
    pipeline = next(pipelines)
    yield pipeline
    next(pipelines, None)


def test_every_staging_model_reads_exactly_its_one_raw_table() -> None:
    models = load_models()
    staging = {name: model for name, model in models.items() if model.layer == "staging"}
    assert {name: set(model.raw_refs) for name, model in staging.items()} == {
        name: {raw} for name, raw in STAGING.items()
    }
    assert all(not model.model_refs for model in staging.values())


def test_every_mart_reads_models_only_and_exists_under_its_contract_name() -> None:
    models = load_models()
    marts = {name: model for name, model in models.items() if model.layer == "marts"}
    assert set(marts) == MARTS
    assert all(not model.raw_refs for model in marts.values())
    assert models["agg_group_compliance"].model_refs == {
        "dim_user_groups",
        "bridge_user_group_members",
        "agg_user_compliance",
    }


def test_every_model_file_starts_with_its_grain() -> None:
    for layer in ("staging", "marts"):
        for file in (models_directory() / layer).iterdir():
            first_line = file.read_text(encoding="utf-8").splitlines()[0]
            assert first_line.startswith("-- grain: one row per "), file.name


def test_a_model_without_a_grain_comment_is_refused(tmp_path: Path) -> None:
    root = write_models(tmp_path, {"staging/stg_users.sql": "select * from users"})
    with pytest.raises(ModelDefinitionError, match="grain"):
        load_models(root)


def test_a_mart_reading_a_raw_table_is_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path, {"marts/dim_users.sql": "-- grain: one row per user\nselect * from users"}
    )
    with pytest.raises(ModelDefinitionError, match="marts read staging or other marts only"):
        load_models(root)


def test_a_staging_model_reading_another_model_is_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path,
        {
            "staging/stg_users.sql": "-- grain: one row per user\nselect * from users",
            "staging/stg_admins.sql": "-- grain: one row per admin\nselect * from stg_users",
        },
    )
    with pytest.raises(ModelDefinitionError, match="staging reads raw tables only"):
        load_models(root)


def test_a_qualified_table_name_is_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path,
        {"staging/stg_users.sql": "-- grain: one row per user\nselect * from skyprep_data.users"},
    )
    with pytest.raises(ModelDefinitionError, match="unqualified"):
        load_models(root)


def test_an_incremental_line_must_name_a_model_the_mart_reads_and_its_key(tmp_path: Path) -> None:
    loads = "-- grain: one row per load\nselect load_id from _dlt_loads"
    for line in ("-- incremental: stg_loads", "-- incremental: stg_users.load_id"):
        root = write_models(
            tmp_path / line.split()[-1],
            {
                "staging/stg_loads.sql": loads,
                "marts/fct_loads.sql": f"-- grain: one row per load\n{line}\nselect * from stg_loads",
            },
        )
        with pytest.raises(ModelDefinitionError, match="an incremental mart has one line"):
            load_models(root)


def test_an_incremental_mart_without_its_key_column_fails_instead_of_appending_nothing(
    tmp_path: Path, duckdb_pipeline: dlt.Pipeline
) -> None:
    """The new-rows filter reads the mart's own key column, qualified: a mart that lacks it
    stops the build (an unqualified name would bind to the source's row: nothing new, ever)."""
    write_raw_world(duckdb_pipeline)
    root = write_models(
        tmp_path / "models",
        {
            "staging/stg_loads.sql": "-- grain: one row per load\n"
            "select load_id, inserted_at from _dlt_loads",
            "marts/fct_load_times.sql": "-- grain: one row per load\n"
            "-- incremental: stg_loads.load_id\nselect inserted_at from stg_loads",
        },
    )
    first = build_models(duckdb_pipeline, models_dir=root)
    assert first.appended == [] and first.rows["fct_load_times"] > 0
    with pytest.raises(Exception, match="load_id"):
        build_models(duckdb_pipeline, models_dir=root)


def test_an_incremental_mart_reads_other_history_marts_for_the_loads_it_evaluates_only() -> None:
    """Appending a night must not join a year of another history mart's rows: each read of a
    history mart inside an incremental mart is restricted by the key (`key IN (SELECT ...)`).
    agg_compliance_trend joined fct_user_compliance_at_load and bridge_user_group_members_at_load
    in full: 10 s and 5.8 GB per night after a year of 100,000 learners (bench/history_year.py);
    restricted, 0.06 s. fct_user_compliance_at_load reads the memberships bridge the same way."""
    models = load_models()
    history = {name: model for name, model in models.items() if model.incremental}
    reads = []
    for name, model in history.items():
        assert model.incremental is not None
        _, key = model.incremental
        for table in model.parse().find_all(sqlglot.exp.Table):
            if table.name not in history or table.name == name:
                continue
            select = table.find_ancestor(sqlglot.exp.Select)
            where = select.args.get("where") if select is not None else None
            restricted = where is not None and any(
                condition.this.name == key and condition.args.get("query") is not None
                for condition in where.find_all(sqlglot.exp.In)
            )
            assert restricted, f"{name} reads {table.name} for every load it holds"
            reads.append((name, table.name))
    assert sorted(reads) == [
        ("agg_compliance_trend", "bridge_user_group_members_at_load"),
        ("agg_compliance_trend", "fct_user_compliance_at_load"),
        ("fct_user_compliance_at_load", "bridge_user_group_members_at_load"),
    ]


def test_build_order_follows_references_not_names(tmp_path: Path) -> None:
    root = write_models(
        tmp_path,
        {
            "staging/stg_users.sql": "-- grain: one row per user\nselect * from users",
            # alphabetically agg < dim < fct; by reference dim -> fct -> agg
            "marts/agg_top.sql": "-- grain: one row\nselect count(*) as n from fct_middle",
            "marts/fct_middle.sql": "-- grain: one row per user\nselect * from dim_base",
            "marts/dim_base.sql": (
                "-- grain: one row per user\nwith u as (select * from stg_users) select * from u"
            ),
        },
    )
    assert build_order(load_models(root)) == ["stg_users", "dim_base", "fct_middle", "agg_top"]


def test_models_reading_each_other_in_a_cycle_are_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path,
        {
            "marts/dim_a.sql": "-- grain: a\nselect * from dim_b",
            "marts/dim_b.sql": "-- grain: b\nselect * from dim_a",
        },
    )
    with pytest.raises(ModelDefinitionError, match="cycle"):
        build_order(load_models(root))


def test_the_real_build_order_puts_every_model_after_what_it_reads() -> None:
    models = load_models()
    order = build_order(models)
    assert sorted(order) == sorted(models)
    position = {name: index for index, name in enumerate(order)}
    for name, model in models.items():
        assert all(position[ref] < position[name] for ref in model.model_refs), name


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery"])
def test_every_model_transpiles_without_error(dialect: str) -> None:
    models = load_models()
    for name in build_order(models):
        select = qualified_select(
            models[name], lambda t: table_expression(["acct", "ds", t]), ephemeral=models
        )
        # RAISE: a construct sqlglot cannot translate for the dialect fails the test
        sql = for_dialect(select, dialect).sql(dialect=dialect, unsupported_level=ErrorLevel.RAISE)
        reparsed = sqlglot.parse_one(sql, read=dialect)
        assert reparsed.find(sqlglot.exp.Select) is not None, name
        if dialect == "bigquery":
            # sqlglot passes median() through as MEDIAN(), a function BigQuery does not have
            assert "MEDIAN(" not in sql.upper(), name


def test_bigquery_medians_become_grouped_approx_quantiles() -> None:
    models = load_models()
    _, create = render_statements(
        models["agg_course_completion"], "bigquery", lambda t: table_expression(["ds", t])
    )
    assert "APPROX_QUANTILES(days_to_complete, 100)[SAFE_OFFSET(50)]" in create
    assert "MEDIAN(" not in create.upper()
    # an aggregate still: the per-course GROUP BY stays, no window function appears
    reparsed = sqlglot.parse_one(create, read="bigquery")
    assert reparsed.find(sqlglot.exp.Group) is not None
    assert reparsed.find(sqlglot.exp.Window) is None
    # other destinations keep their own median
    _, duckdb_create = render_statements(
        models["agg_course_completion"], "duckdb", lambda t: table_expression(["ds", t])
    )
    assert "MEDIAN(days_to_complete)" in duckdb_create


def test_references_are_qualified_with_the_raw_or_the_analytics_dataset() -> None:
    models = load_models()

    def name_table(name: str) -> sqlglot.exp.Table:
        dataset = "analytics" if name in models else "raw"
        return table_expression([dataset, name])

    staging = render_statements(models["stg_users"], "duckdb", name_table)
    assert staging[0] == 'DROP VIEW IF EXISTS "analytics"."stg_users"'
    assert 'CREATE VIEW "analytics"."stg_users" AS' in staging[1]
    assert 'FROM "raw"."users"' in staging[1]
    # its own CTE stays an unqualified CTE reference
    assert "FROM source" in staging[1]
    assert '"source"' not in staging[1]
    mart = render_statements(models["dim_users"], "duckdb", name_table)
    assert 'CREATE TABLE "analytics"."dim_users" AS' in mart[1]
    assert 'FROM "analytics"."stg_users"' in mart[1]


def test_intermediate_models_are_inlined_as_ctes_of_the_marts_that_read_them() -> None:
    models = load_models()

    def name_table(name: str) -> sqlglot.exp.Table:
        analytics = name in models or name == "model_settings"
        return table_expression(["analytics" if analytics else "raw", name])

    _, create = render_statements(
        models["fct_user_compliance_at_load"], "postgres", name_table, ephemeral=models
    )
    # both shared rules, ahead of the mart's own CTEs, reading the analytics dataset
    assert create.index("int_required_course_rules AS (") < create.index("loads AS (")
    assert "int_compliance_statuses AS (" in create
    assert '"analytics"."model_settings"' in create
    assert '"analytics"."int_' not in create
    with pytest.raises(ModelDefinitionError, match="ephemeral"):
        render_statements(models["int_compliance_statuses"], "postgres", name_table)


def test_an_intermediate_model_reading_a_raw_table_is_refused(tmp_path: Path) -> None:
    root = write_models(
        tmp_path, {"intermediate/int_users.sql": "-- grain: one row per user\nselect * from users"}
    )
    with pytest.raises(ModelDefinitionError, match="intermediate reads models only"):
        load_models(root)


def test_staging_models_are_views_and_marts_are_tables(duckdb_pipeline: dlt.Pipeline) -> None:
    write_raw_world(duckdb_pipeline)
    build_models(duckdb_pipeline)
    rows = query(
        duckdb_pipeline,
        "select table_name, table_type from information_schema.tables"
        " where table_schema = 'skyprep_analytics'",
    )
    kinds = {row["table_name"]: row["table_type"] for row in rows}
    assert kinds == {
        **dict.fromkeys(STAGING, "VIEW"),
        **dict.fromkeys(MARTS, "BASE TABLE"),
        "model_settings": "BASE TABLE",  # the settings relation, written before the models
        "_skyprep_models": "BASE TABLE",  # the incremental marts' fingerprints
    }


def test_the_analytics_dataset_is_an_argument(duckdb_pipeline: dlt.Pipeline) -> None:
    write_raw_world(duckdb_pipeline)
    result = build_models(duckdb_pipeline, "acme_analytics")
    assert result.dataset_name == "acme_analytics"
    schemas = query(duckdb_pipeline, "select schema_name from information_schema.schemata")
    names = {row["schema_name"] for row in schemas}
    assert "acme_analytics" in names
    assert "skyprep_analytics" not in names
    assert query(duckdb_pipeline, "select count(*) as n from acme_analytics.dim_users") == [
        {"n": 5}
    ]


def test_rebuilding_on_the_same_data_gives_the_same_answer(duckdb_pipeline: dlt.Pipeline) -> None:
    write_raw_world(duckdb_pipeline)
    first = build_models(duckdb_pipeline)
    snapshot = {
        name: query(duckdb_pipeline, f"select * from {{a}}.{name} order by all") for name in MARTS
    }
    second = build_models(duckdb_pipeline)
    assert second.rows == first.rows
    assert second.as_of == first.as_of
    for name in MARTS:
        assert query(duckdb_pipeline, f"select * from {{a}}.{name} order by all") == snapshot[name]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_pipeline(request: pytest.FixtureRequest, tmp_path: Path):
    pipelines = make_pipeline(request.param, tmp_path)
    yield next(pipelines)
    next(pipelines, None)


def test_models_of_a_raw_table_never_loaded_are_skipped_with_their_dependents(
    any_pipeline: dlt.Pipeline,
) -> None:
    # on PostgreSQL the failed probe of the missing table must not poison the build after it
    without_payments = {name: table for name, table in RAW_TABLES.items() if name != "payments"}
    write_raw_world(any_pipeline, without_payments)
    analytics = any_pipeline.dataset_name.replace("skyprep_data", "skyprep_analytics")
    result = build_models(any_pipeline, analytics)
    assert result.skipped == {
        "stg_payments": "raw table payments not loaded",
        "fct_payments": "reads skipped stg_payments",
        "agg_revenue_monthly": "reads skipped fct_payments",
    }
    assert set(result.built) == (set(STAGING) | MARTS) - set(result.skipped)
    assert result.rows["agg_user_compliance"] == 5


def test_the_models_ship_inside_the_wheel(tmp_path: Path) -> None:
    """A non-editable install has the SQL files (skyprep_source/sql is a symlink to ../sql)."""
    # build from a copy: an in-tree build leaves a build/ directory behind in the checkout
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT_ROOT / name, project / name)
    for name in ("skyprep_source", "skyprep_sandbox", "sql"):
        shutil.copytree(
            PROJECT_ROOT / name,
            project / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(project)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("skyprep_source-*.whl")
    shipped = zipfile.Path(wheel) / "skyprep_source" / "sql"
    assert set(load_models(shipped)) == set(STAGING) | INTERMEDIATE | MARTS


def test_settings_reach_the_sql_as_one_relation_and_org_dimensions_as_dim_users_columns(
    duckdb_pipeline: dlt.Pipeline,
) -> None:
    write_raw_world(duckdb_pipeline)
    settings = ModelSettings(
        required_course_ids=(10,),
        required_course_tags=("annual",),
        org_dimensions={"department": "ca_0", "location": "ca_1"},
    )
    build_models(duckdb_pipeline, settings=settings)
    rows = query(duckdb_pipeline, "select * from {a}.model_settings order by all")
    assert [tuple(row.values()) for row in rows] == [
        ("org_dimension", "department", "ca_0"),
        ("org_dimension", "location", "ca_1"),
        ("required_course_id", None, "10"),
        ("required_course_tag", None, "annual"),
    ]
    users = query(duckdb_pipeline, "select user_id, department, location from {a}.dim_users")
    assert {(row["department"], row["location"]) for row in users} == {("dept-a", None)}
    # no settings: an empty relation, and dim_users keeps its own columns only
    build_models(duckdb_pipeline, settings=ModelSettings())
    assert query(duckdb_pipeline, "select * from {a}.model_settings") == []
    assert "department" not in query(duckdb_pipeline, "select * from {a}.dim_users")[0]


def test_settings_come_from_dlt_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELS__REQUIRED_COURSE_IDS", "[12, 15]")
    monkeypatch.setenv("MODELS__ORG_DIMENSIONS", '{"department": "ca_0"}')
    settings = ModelSettings.from_config()
    assert settings.required_course_ids == (12, 15)
    assert settings.required_course_tags == ()
    assert dict(settings.org_dimensions) == {"department": "ca_0"}


@pytest.mark.parametrize(
    ("dimensions", "fix"),
    [
        ({"department": "ca_9"}, "use one of ca_0"),
        ({"Department Name": "ca_0"}, "lower case letters"),
        ({"department": "ca_0", "team": "ca_0"}, "give each custom attribute one name"),
    ],
)
def test_an_unusable_org_dimension_names_the_fix(dimensions: dict[str, str], fix: str) -> None:
    with pytest.raises(ModelSettingsError, match=fix):
        ModelSettings(org_dimensions=dimensions)


def test_an_org_dimension_named_like_a_dim_users_column_names_the_fix(
    duckdb_pipeline: dlt.Pipeline,
) -> None:
    write_raw_world(duckdb_pipeline)
    with pytest.raises(ModelSettingsError, match="already a column of dim_users"):
        build_models(duckdb_pipeline, settings=ModelSettings(org_dimensions={"email": "ca_0"}))
