"""The dbt package in dbt/: generated from sql/ and docs/models.md, and equal to the runner.

The first tests need no dbt: the committed package is what the generator writes now, and the
generator refuses what would let the YAML and the docs drift apart. The others run the real
`dbt` (dbt-duckdb, dbt-postgres; `make test` installs them in .venv-dbt) on a copy of dbt/ whose
integration project only lists the package in packages.yml, over raw data on DuckDB and on a
PostgreSQL server, and compare every mart row for row, and column for column with its type,
with what `build_models` built from the same raw tables. No column is left out of the
comparison: the as-of columns agree because both read the same `_dlt_loads`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dlt
import pytest
import yaml
from test_models_compliance import DEPARTMENT
from test_models_compliance import RAW_TABLES as COMPLIANCE_TABLES
from test_models_marts import (
    RAW_TABLES,
    make_pipeline,
    normalised,
    postgres_dsn,
    query,
    write_raw_world,
)

from skyprep_sandbox import Sandbox, World
from skyprep_source import build_models, skyprep
from skyprep_source.dbt_package import Checkout, DbtPackageError, generate, stale_files
from skyprep_source.models import ModelsBuild, ModelSettings

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = Checkout(ROOT)


def test_committed_package_is_what_the_generator_writes_from_sql_and_docs() -> None:
    stale = stale_files(CHECKOUT)
    assert stale == [], f"dbt/ is stale: run `python -m skyprep_source.dbt_package` ({stale})"


def copy_checkout(tmp_path: Path) -> Checkout:
    """The generator's inputs and the committed package, in a scratch checkout to edit."""
    for part in ("sql", "docs", "dbt"):
        shutil.copytree(ROOT / part, tmp_path / part, symlinks=True)
    (tmp_path / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "test_models_marts.py", tmp_path / "tests")
    return Checkout(tmp_path)


def test_a_changed_model_makes_the_package_stale(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path)
    model = checkout.sql / "marts" / "dim_courses.sql"
    model.write_text(model.read_text().replace("    is_active,\n", ""), encoding="utf-8")
    assert stale_files(checkout) == [
        "models/marts/_skyprep__marts.yml",
        "models/marts/dim_courses.sql",
    ]


def test_a_column_the_docs_do_not_describe_stops_the_generator(tmp_path: Path) -> None:
    checkout = copy_checkout(tmp_path)
    model = checkout.sql / "marts" / "dim_courses.sql"
    model.write_text(
        model.read_text().replace("    is_active,\n", "    is_active,\n    1 as lucky_number,\n"),
        encoding="utf-8",
    )
    with pytest.raises(DbtPackageError, match=r"dim_courses\.lucky_number"):
        generate(checkout)


def test_yaml_descriptions_are_the_docs_words() -> None:
    marts = yaml.safe_load((ROOT / "dbt/models/marts/_skyprep__marts.yml").read_text())
    by_name = {model["name"]: model for model in marts["models"]}
    docs = (ROOT / "docs/models.md").read_text()
    # a mart's own words on a column win over the glossary
    columns = {c["name"]: c for c in by_name["fct_course_progress"]["columns"]}
    assert columns["days_overdue"]["description"] == "whole days past the deadline, when overdue"
    assert "| `user_id` | " + columns["user_id"]["description"] + " |" in docs
    # every grain key is tested; statuses have their accepted values
    assert {"not_null", "unique"} <= {
        t for t in columns["course_progress_id"]["data_tests"] if isinstance(t, str)
    }
    accepted = columns["status"]["data_tests"][0]["accepted_values"]["arguments"]["values"]
    assert set(accepted) == {"passed", "failed", "in-progress", "not-started", "not-applicable"}


# --- dbt over real engines ------------------------------------------------------------------


def dbt_executable() -> str:
    """The `dbt` to run: $SKYPREP_DBT, else .venv-dbt's, else one on PATH."""
    explicit = os.environ.get("SKYPREP_DBT")
    if explicit:
        if not Path(explicit).is_file():
            pytest.fail(f"SKYPREP_DBT={explicit} is not a file: make .venv-dbt/.installed")
        return explicit
    for candidate in (ROOT / ".venv-dbt" / "bin" / "dbt", shutil.which("dbt")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    reason = (
        "dbt is not installed: `make test` installs it in .venv-dbt "
        "(pip install -e '.[dbt]'), or set SKYPREP_DBT to a dbt executable"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class DbtProject:
    """A copy of dbt/ whose integration project builds the package into `schema`."""

    directory: Path
    target: str
    schema: str
    raw_schema: str
    env: dict[str, str]

    def run(self, *args: str, vars: dict[str, Any] | None = None) -> str:
        all_vars = {"skyprep_schema": self.raw_schema, **(vars or {})}
        command = [dbt_executable(), *args, "--target", self.target]
        if args[0] != "deps":
            command += ["--vars", yaml.safe_dump(all_vars)]
        done = subprocess.run(
            command,
            cwd=self.directory / "integration_tests",
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"dbt {' '.join(args)} failed:\n{done.stdout[-6000:]}"
        return done.stdout


def dbt_project(pipeline: dlt.Pipeline, tmp_path: Path) -> DbtProject:
    """The integration project over the pipeline's raw dataset, on the pipeline's engine."""
    directory = tmp_path / "dbt"
    shutil.copytree(ROOT / "dbt", directory, symlinks=True)
    schema = dbt_schema_of(pipeline)
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(directory / "integration_tests"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        "SKYPREP_DBT_SCHEMA": schema,
    }
    destination = pipeline.destination.destination_name
    if destination == "duckdb":
        env["SKYPREP_DBT_DUCKDB_PATH"] = str(tmp_path / "models.duckdb")  # make_pipeline's
    else:
        dsn = urlsplit(postgres_dsn() or "")
        env.update(
            SKYPREP_DBT_PG_HOST=dsn.hostname or "127.0.0.1",
            SKYPREP_DBT_PG_PORT=str(dsn.port or 5432),
            SKYPREP_DBT_PG_USER=dsn.username or "postgres",
            SKYPREP_DBT_PG_PASSWORD=dsn.password or "",
            SKYPREP_DBT_PG_DBNAME=dsn.path.lstrip("/") or "postgres",
        )
    project = DbtProject(directory, destination, schema, pipeline.dataset_name, env)
    project.run("deps")
    return project


def drop_schema(pipeline: dlt.Pipeline, schema: str) -> None:
    with pipeline.sql_client() as client, client.with_alternative_dataset_name(schema):
        if client.has_dataset():
            client.drop_dataset()


def analytics_of(pipeline: dlt.Pipeline) -> str:
    """Where the runner builds (make_pipeline drops it on PostgreSQL)."""
    return pipeline.dataset_name.replace("skyprep_data", "skyprep_analytics")


def dbt_schema_of(pipeline: dlt.Pipeline) -> str:
    """Where dbt builds (the `pipeline` fixture drops it on PostgreSQL)."""
    return pipeline.dataset_name.replace("skyprep_data", "skyprep_dbt")


def tables_in(pipeline: dlt.Pipeline, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Every base table of `schema`: its columns in order, with their types."""
    rows = query(
        pipeline,
        "select c.table_name, c.column_name, c.data_type from information_schema.columns c"
        " join information_schema.tables t on t.table_schema = c.table_schema"
        " and t.table_name = c.table_name"
        f" where c.table_schema = '{schema}' and t.table_type = 'BASE TABLE'"
        " order by c.table_name, c.ordinal_position",
    )
    tables: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row["table_name"].startswith("_"):  # the runner's bookkeeping (_skyprep_models)
            continue
        tables.setdefault(row["table_name"], []).append((row["column_name"], row["data_type"]))
    return tables


def mart_rows(pipeline: dlt.Pipeline, schema: str, name: str) -> list[tuple[Any, ...]]:
    rows = query(pipeline, f'select * from "{schema}"."{name}"')
    return sorted((tuple(normalised(v) for v in row.values()) for row in rows), key=repr)


def assert_marts_equal(pipeline: dlt.Pipeline, result: ModelsBuild, dbt_schema: str) -> int:
    """dbt built the runner's tables (every mart, and the settings relation where the runner
    writes one) with the same columns, types and rows; the number of rows compared."""
    runner = tables_in(pipeline, result.dataset_name)
    dbt = tables_in(pipeline, dbt_schema)
    assert sorted(dbt) == sorted(runner)
    assert set(result.rows) <= set(runner)
    compared = 0
    for name in sorted(runner):
        assert dbt[name] == runner[name], f"{name}: columns differ"
        expected = mart_rows(pipeline, result.dataset_name, name)
        assert mart_rows(pipeline, dbt_schema, name) == expected, f"{name}: rows differ"
        compared += len(expected)
    return compared


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def pipeline(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dlt.Pipeline]:
    """An empty pipeline on DuckDB or PostgreSQL; its dbt schema is dropped after the test."""
    dbt_executable()
    pipelines = make_pipeline(request.param, tmp_path)
    created = next(pipelines)
    yield created
    if request.param == "postgres":
        drop_schema(created, dbt_schema_of(created))
    next(pipelines, None)


def test_dbt_builds_the_hand_made_world_into_the_runners_marts(
    pipeline: dlt.Pipeline, tmp_path: Path
) -> None:
    """The world whose every mart value tests/test_models_marts.py pins: equal marts mean
    dbt's marts meet those expectations too, on each engine."""
    write_raw_world(pipeline)
    result = build_models(pipeline, analytics_of(pipeline))
    project = dbt_project(pipeline, tmp_path)
    output = project.run("build")
    assert "ERROR=0" in output and "WARN=0" in output
    assert assert_marts_equal(pipeline, result, project.schema) >= sum(result.rows.values())
    # the comparison sees one value off by one
    with pipeline.sql_client() as client:
        client.execute_sql(
            f'update "{project.schema}".fct_course_progress set days_overdue = days_overdue + 1'
            " where course_progress_id = 103"
        )
    with pytest.raises(AssertionError, match="fct_course_progress: rows differ"):
        assert_marts_equal(pipeline, result, project.schema)


def settings_vars(settings: ModelSettings) -> dict[str, Any]:
    """The package's vars for the runner's settings."""
    return {
        "skyprep_required_course_ids": list(settings.required_course_ids),
        "skyprep_required_course_tags": list(settings.required_course_tags),
        "skyprep_org_dimensions": dict(settings.org_dimensions),
    }


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(DEPARTMENT, id="group-assignments"),
        pytest.param(
            ModelSettings(
                required_course_ids=(30,),
                required_course_tags=("Annual",),
                org_dimensions={"department": "ca_0"},
            ),
            id="configured-courses",
        ),
    ],
)
def test_dbt_builds_the_compliance_world_into_the_runners_marts(
    pipeline: dlt.Pipeline, tmp_path: Path, settings: ModelSettings
) -> None:
    """The world whose compliance values tests/test_models_compliance.py pins (group and
    learning-path assignments, configured courses, four loads of history, classroom, skills,
    an org dimension): dbt's marts equal the runner's built with the same settings."""
    write_raw_world(pipeline, COMPLIANCE_TABLES)
    result = build_models(pipeline, analytics_of(pipeline), settings=settings)
    assert "stg_payments" in result.skipped  # the world has no payments: the var turns them off
    project = dbt_project(pipeline, tmp_path)
    vars = {**settings_vars(settings), "skyprep_using_payments": False}
    output = project.run("build", vars=vars)
    assert "ERROR=0" in output and "WARN=0" in output
    assert assert_marts_equal(pipeline, result, project.schema) > 100
    assert mart_rows(pipeline, project.schema, "agg_org_compliance")


def run_source(pipeline: dlt.Pipeline, sb: Sandbox) -> None:
    """One run of the real source against the sandbox (rate budget off, no saved reports)."""
    pipeline.run(
        skyprep(
            api_key=sb.api_key,
            acct_key=sb.acct_key,
            base_url=sb.base_url,
            requests_per_minute=None,
            saved_reports=False,
        )
    )


def load_twice(pipeline: dlt.Pipeline) -> None:
    """The tiny generated world through the real source, then again after 30 days passed."""
    with Sandbox(World.generate(seed=7, scale="tiny"), rate_limit=None) as sb:
        for days in (0, 30):
            sb.advance(days=days) if days else None
            run_source(pipeline, sb)


def test_dbt_builds_the_sandbox_loaded_by_the_source_into_the_runners_marts(
    pipeline: dlt.Pipeline, tmp_path: Path
) -> None:
    """Two nights of the real source, each followed by the runner and by dbt: equal marts both
    times. The second night both append the new load to the history marts (a row of the first
    load, edited alike in both, stays edited in both: neither evaluated that load again)."""
    history = ["bridge_user_group_members_at_load", "fct_user_compliance_at_load"]
    project: DbtProject | None = None
    with Sandbox(World.generate(seed=7, scale="tiny"), rate_limit=None) as sb:
        for night in (1, 2):
            if night == 2:
                sb.advance(days=30)
                for schema in (analytics_of(pipeline), dbt_schema_of(pipeline)):
                    with pipeline.sql_client() as client:
                        client.execute_sql(
                            f'update "{schema}".fct_user_compliance_at_load'
                            " set assigned = assigned + 1000"
                        )
            run_source(pipeline, sb)
            result = build_models(pipeline, analytics_of(pipeline))
            assert result.skipped == {}
            project = project or dbt_project(pipeline, tmp_path)
            output = project.run("build")
            assert "ERROR=0" in output and "WARN=0" in output
            assert assert_marts_equal(pipeline, result, project.schema) > 100
    assert result.appended == [*history, "agg_compliance_trend"]
    assert project is not None
    edited = query(
        pipeline,
        f'select count(distinct load_id) as loads from "{project.schema}"'
        ".fct_user_compliance_at_load where assigned >= 1000",
    )
    assert edited == [{"loads": 1}]
    freshness = project.run("source", "freshness")
    assert "PASS freshness of skyprep._dlt_loads" in freshness


@pytest.mark.parametrize("pipeline", ["duckdb"], indirect=True)
def test_an_account_without_payments_builds_with_the_optional_parts_off(
    pipeline: dlt.Pipeline, tmp_path: Path
) -> None:
    write_raw_world(pipeline, {k: v for k, v in RAW_TABLES.items() if k != "payments"})
    result = build_models(pipeline, analytics_of(pipeline))
    assert set(result.skipped) == {"stg_payments", "fct_payments", "agg_revenue_monthly"}
    project = dbt_project(pipeline, tmp_path)
    off = {"skyprep_using_payments": False, "skyprep_using_history": False}
    output = project.run("build", vars=off)
    assert "ERROR=0" in output
    built = set(tables_in(pipeline, project.schema))
    # what reads stg_course_progress_versions, the part skyprep_using_history turns off
    history = {
        "fct_course_progress_status_history",
        "agg_progress_funnel_timing",
        "fct_user_compliance_at_load",
        "fct_user_compliance_monthly",
        "agg_compliance_trend",
    }
    assert history & set(result.rows) == history  # the runner built them: the data is there
    assert not built & (history | set(result.skipped))
    assert set(result.rows) - history <= built


@pytest.mark.parametrize("by", ["course_ids", "course_tags"])
def test_dbt_vars_carry_the_model_settings_like_the_runner(
    pipeline: dlt.Pipeline, tmp_path: Path, by: str
) -> None:
    """The settings as vars give dbt the runner's marts built with the same settings: required
    courses by id or by tag (Compliance, any case), and two org dimensions."""
    load_twice(pipeline)
    with pipeline.sql_client() as client:
        course_ids = [row[0] for row in client.execute_sql(
            f"select distinct id from {client.make_qualified_table_name('courses')} order by id"
        )]  # fmt: skip
    dimensions = {"department": "ca_0", "location": "ca_2"}
    if by == "course_ids":
        required: dict[str, Any] = {"required_course_ids": (course_ids[0], course_ids[-1])}
    else:
        required = {"required_course_tags": ("Compliance",)}
    settings = ModelSettings(**required, org_dimensions=dimensions)
    result = build_models(pipeline, analytics_of(pipeline), settings=settings)
    (rule,) = query(
        pipeline, f"select distinct required_rule from {result.dataset_name}.agg_user_compliance"
    )
    assert rule["required_rule"] == "configured_courses"
    project = dbt_project(pipeline, tmp_path)
    project.run(
        "build",
        vars={
            **{f"skyprep_{name}": list(values) for name, values in required.items()},
            "skyprep_org_dimensions": dimensions,
        },
    )
    assert assert_marts_equal(pipeline, result, project.schema) > 100
    columns = [name for name, _ in tables_in(pipeline, project.schema)["dim_users"]]
    assert columns[-2:] == ["department", "location"]
    settings_rows = mart_rows(pipeline, project.schema, "model_settings")
    assert len(settings_rows) == len(settings.rows()) and settings_rows


def test_an_org_dimension_named_like_a_dim_users_column_stops_dbt_with_the_fix(
    tmp_path: Path,
) -> None:
    directory = copy_checkout(tmp_path).package / "integration_tests"
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(directory),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SKYPREP_DBT_DUCKDB_PATH": str(tmp_path / "empty.duckdb"),
    }
    compile_dim_users = ["compile", "--select", "dim_users", "--vars"]
    outputs = []
    for args in (["deps"], [*compile_dim_users, "{skyprep_org_dimensions: {email: ca_0}}"]):
        done = subprocess.run(
            [dbt_executable(), *args],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        outputs.append((done.returncode, done.stdout))
    assert outputs[0][0] == 0, outputs[0][1]
    assert outputs[1][0] != 0
    assert "email is already a column of dim_users; choose another name" in outputs[1][1]


def test_dbt_demo_after_the_demo_builds_the_package_equal_to_the_runner(tmp_path: Path) -> None:
    """`make demo` then `make dbt-demo`, as the README says: the demo maps two org dimensions
    (not in the config), and dbt-demo passes the settings the runner built with, so every
    table matches the runner's, dim_users' org columns included."""
    import sys

    from test_demo import run_demo

    demo = run_demo(tmp_path)
    assert demo.returncode == 0, demo.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELS__")}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipelines" / "dbt_demo.py"),
            "--dbt",
            dbt_executable(),
            "--database",
            str(tmp_path / "skyprep.duckdb"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "DIFFERS" not in done.stdout
    assert re.search(r"^\s+dim_users\s+[\d,]+ rows equal$", done.stdout, re.MULTILINE)
    assert re.search(r"^\s+agg_org_compliance\s+[1-9][\d,]* rows equal$", done.stdout, re.M)
