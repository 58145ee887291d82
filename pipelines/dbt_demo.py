"""`make dbt-demo`, after `make demo`: the dbt package built over the demo's ./skyprep.duckdb.

1. runs `dbt deps` and `dbt build` in dbt/integration_tests (a project that only lists the
   package in packages.yml), into the schema `skyprep_dbt` of the same file, with the model
   settings the runner built with (its `model_settings` table: `make demo` maps two org
   dimensions, your `[models]` config wins there) passed as the package's vars;
2. compares every table of `skyprep_dbt` with the runner's `skyprep_analytics`: the same
   tables, the same columns with the same types, the same rows (as multisets, exact values).

    python pipelines/dbt_demo.py --dbt .venv-dbt/bin/dbt
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb
import yaml

from skyprep_source import DUCKDB_FILE, ModelSettings
from skyprep_source.job import ANALYTICS_DATASET_NAME
from skyprep_source.models import SETTINGS_RELATION

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "dbt" / "integration_tests"
DBT_SCHEMA = "skyprep_dbt"


def settings_vars(settings: ModelSettings) -> dict[str, object]:
    """The package's vars for the runner's model settings (docs/models.md, Settings)."""
    return {
        "skyprep_required_course_ids": list(settings.required_course_ids),
        "skyprep_required_course_tags": list(settings.required_course_tags),
        "skyprep_org_dimensions": dict(settings.org_dimensions),
    }


def runner_settings(database: Path) -> ModelSettings:
    """The settings the runner built the file's models with (its `model_settings` table),
    or dlt's config (`[models]`, MODELS__* variables) when the file has none."""
    with duckdb.connect(str(database), read_only=True) as db:
        try:
            rows = db.execute(
                f"select setting, name, value from {ANALYTICS_DATASET_NAME}.{SETTINGS_RELATION}"
            ).fetchall()
        except duckdb.CatalogException:
            return ModelSettings.from_config()
    return ModelSettings.from_rows(rows)


def base_tables(db: duckdb.DuckDBPyConnection, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Every base table of `schema`: its columns in order, with their types."""
    rows = db.execute(
        "select c.table_name, c.column_name, c.data_type from information_schema.columns c"
        " join information_schema.tables t using (table_schema, table_name)"
        " where c.table_schema = ? and t.table_type = 'BASE TABLE'"
        " order by c.table_name, c.ordinal_position",
        [schema],
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for name, column, kind in rows:
        if not name.startswith("_"):  # the runner's bookkeeping (_skyprep_models)
            tables.setdefault(name, []).append((column, kind))
    return tables


def differences(db: duckdb.DuckDBPyConnection, runner: str, dbt: str) -> list[str]:
    """What differs between the two schemas' tables; prints each equal table's row count."""
    left, right = base_tables(db, runner), base_tables(db, dbt)
    found = [f"{name}: only in {runner}" for name in sorted(left.keys() - right.keys())]
    found += [f"{name}: only in {dbt}" for name in sorted(right.keys() - left.keys())]
    for name in sorted(left.keys() & right.keys()):
        if left[name] != right[name]:
            found.append(f"{name}: columns differ")
            continue
        a, b = f'"{runner}"."{name}"', f'"{dbt}"."{name}"'
        (differing,) = db.execute(
            f"select count(*) from ((select * from {a} except all select * from {b})"
            f" union all (select * from {b} except all select * from {a}))"
        ).fetchone() or (None,)
        (rows,) = db.execute(f"select count(*) from {a}").fetchone() or (0,)
        if differing:
            found.append(f"{name}: {differing} rows differ")
        else:
            print(f"  {name:38s} {rows:>8,} rows equal")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dbt", default="dbt", help="the dbt executable (make: .venv-dbt's)")
    parser.add_argument("--database", type=Path, default=ROOT / DUCKDB_FILE)
    args = parser.parse_args(argv)
    if not args.database.is_file():
        print(f"{args.database} does not exist: run `make demo` first", file=sys.stderr)
        return 2
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(PROJECT),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SKYPREP_DBT_DUCKDB_PATH": str(args.database.resolve()),
        "SKYPREP_DBT_SCHEMA": DBT_SCHEMA,
    }
    dbt_vars = yaml.safe_dump(
        settings_vars(runner_settings(args.database)), default_flow_style=True
    )
    for command in (["deps"], ["build", "--vars", dbt_vars]):
        print(f"== dbt {' '.join(command)}", flush=True)
        done = subprocess.run([args.dbt, *command], cwd=PROJECT, env=env, check=False)
        if done.returncode:
            return done.returncode
    print(f"== {DBT_SCHEMA} against the runner's {ANALYTICS_DATASET_NAME}")
    with duckdb.connect(str(args.database), read_only=True) as db:
        found = differences(db, ANALYTICS_DATASET_NAME, DBT_SCHEMA)
    for difference in found:
        print(f"  DIFFERS {difference}")
    print("every table equal" if not found else f"{len(found)} tables differ")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
