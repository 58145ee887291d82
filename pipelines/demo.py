"""`make demo`: the whole product in well under a minute, without a SkyPrep account.

1. starts the sandbox (a local SkyPrep emulator, rate limit off) in this process;
2. loads it into ./skyprep.duckdb (fresh: the old file and pipeline state are dropped);
3. lets a day pass in the sandbox and loads again, then shows what changed per table
   (new, updated and deleted rows, read from the scd2 validity columns);
4. ends with a completion summary and the compliance trend of its loads, read from the marts
   in `skyprep_analytics`, and writes the HTML compliance report (./skyprep_report.html)
   after each load. The models map the sandbox's department (ca_0) and location (ca_1) to
   org dimensions unless [models] org_dimensions is configured.

    python pipelines/demo.py                 # demo scale (a few thousand rows)
    python pipelines/demo.py --scale tiny    # or SKYPREP_DEMO_SCALE=tiny: seconds
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import dlt
import duckdb
import orjson

from skyprep_sandbox import Sandbox, World
from skyprep_source import DATASET_NAME, DUCKDB_FILE, PIPELINE_NAME, REPORT_FILE, changes
from skyprep_source.changes import ChangeReader, TableChanges, load_boundary
from skyprep_source.job import (
    ANALYTICS_DATASET_NAME,
    RunOptions,
    RunSummary,
    describe_failure,
    run_load,
)

SCALE_ENV = "SKYPREP_DEMO_SCALE"
# the sandbox's users carry their department in ca_0 and their location in ca_1; mapping them
# gives the marts (agg_org_compliance) and the report compliance by department and location.
# A real account maps its own attributes in the [models] section (docs/models.md).
DEMO_ORG_DIMENSIONS = {"department": "ca_0", "location": "ca_1"}
ORG_DIMENSIONS_ENV = "MODELS__ORG_DIMENSIONS"


def write_dispositions(db: duckdb.DuckDBPyConnection, dataset: str) -> dict[str, str]:
    """Each table's write disposition as the source declared it: from the newest schema dlt
    stored with the data (`_dlt_version`), so report tables named at run time are covered."""
    stored = db.execute(
        f'select schema from "{dataset}"._dlt_version order by inserted_at desc limit 1'
    ).fetchone()
    tables = orjson.loads(stored[0]).get("tables", {}) if stored else {}
    return {name: str(table.get("write_disposition", "append")) for name, table in tables.items()}


def table_changes(
    db: duckdb.DuckDBPyConnection,
    dataset: str,
    table: str,
    boundary: datetime,
    rows_loaded: int | None,
    disposition: str | None = None,
) -> TableChanges:
    """New, updated, retired and unchanged entities of `table` at the load `boundary`: the
    job's own change report (skyprep_source.changes), read from the demo's DuckDB file."""
    columns = [row[0] for row in db.execute(f'DESCRIBE "{dataset}"."{table}"').fetchall()]
    reader = ChangeReader.for_duckdb(db, dataset)
    return changes.table_changes(reader, table, columns, boundary, rows_loaded, disposition)


def data_tables(db: duckdb.DuckDBPyConnection, dataset: str) -> list[str]:
    """The dataset's data tables (dlt's bookkeeping tables left out)."""
    rows = db.execute(
        "select table_name from information_schema.tables where table_schema = ? "
        "and table_name not like '\\_dlt%' escape '\\' order by table_name",
        [dataset],
    ).fetchall()
    return [name for (name,) in rows]


def print_load(title: str, summary: RunSummary, calls: int, *, per_table: bool = True) -> None:
    """A load's headline and (optionally) its rows per table."""
    print(f"\n== {title} ==")
    print(
        f"read {summary.total_rows} rows into {len(summary.rows)} tables in "
        f"{summary.seconds:.1f}s with {calls} API calls"
    )
    width = max((len(name) for name in summary.rows), default=5)
    for name, rows in sorted(summary.rows.items()) if per_table else ():
        print(f"  {name:<{width}}  {rows:>8}")


def print_changes(table_changes: Sequence[TableChanges]) -> None:
    """The change report of the second load (the job prints the same after every run)."""
    print("\n".join(changes.changes_lines(table_changes)))


def print_completion_summary(db: duckdb.DuckDBPyConnection, analytics: str) -> bool:
    """Top courses by completion rate and learners by compliance status, from the marts.
    Returns False (and prints why) when the marts are not there."""
    try:
        courses = db.execute(
            f"""select course_name, enrolled, passed, completion_rate
                from "{analytics}".agg_course_completion
                where enrolled > 0
                order by completion_rate desc, enrolled desc, course_name
                limit 5"""
        ).fetchall()
        compliance = db.execute(
            f"""select compliance_status, count(*) as learners
                from "{analytics}".agg_user_compliance
                group by compliance_status order by learners desc, compliance_status"""
        ).fetchall()
    except duckdb.Error as missing:
        print(f"\n(no completion summary: the marts are not built: {missing})")
        return False
    print(f"\n== Completion summary ({analytics}) ==")
    print("top courses by completion rate:")
    width = max((len(str(name)) for name, *_ in courses), default=6)
    for name, enrolled, passed, rate in courses:
        print(f"  {name!s:<{width}}  {passed:>5}/{enrolled:<5} passed  {float(rate or 0):6.1%}")
    print("learners by compliance status:")
    for status, learners in compliance:
        print(f"  {status:<14}  {learners:>6}")
    return True


def print_compliance_trend(db: duckdb.DuckDBPyConnection, analytics: str) -> bool:
    """The account's compliance as recorded at each load (agg_compliance_trend), under the
    required-training rule in force. Returns False (and prints why) when the mart is missing."""
    try:
        loads = db.execute(
            f"""select required_rule, learners_with_assignments, compliant, in_progress,
                    overdue, expired, not_compliant, share_compliant
                from "{analytics}".agg_compliance_trend
                where user_group_id is null
                order by as_of_at"""
        ).fetchall()
    except duckdb.Error as missing:
        print(f"\n(no compliance trend: the marts are not built: {missing})")
        return False
    rule = next((row[0] for row in reversed(loads) if row[0]), "none")
    print(f"\n== Compliance trend (required training: {rule}) ==")
    print(
        f"  {'load':<6}  {'learners':>8}  {'compliant':>9}  {'in progress':>11}  "
        f"{'overdue':>7}  {'expired':>7}  {'not compliant':>13}  {'share':>6}"
    )
    for n, (_, learners, compliant, open_, overdue, expired, failed, share) in enumerate(loads):
        print(
            f"  {n + 1:<6}  {learners:>8}  {compliant:>9}  {open_:>11}  {overdue:>7}  "
            f"{expired:>7}  {failed:>13}  {float(share or 0):6.1%}"
        )
    if loads:
        *_, share = loads[-1]
        print(f"compliant share now: {float(share or 0):.1%} of {loads[-1][1]} learners")
    return True


def fresh_database(path: Path) -> None:
    """Drop the previous demo's database (and its WAL) so every demo starts the same."""
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)


def explore_hint() -> str:
    """A command that opens the demo's database with what is surely installed: this Python,
    which has the duckdb package (the `duckdb` CLI may not be there)."""
    python = Path(sys.executable)
    if python.is_relative_to(Path.cwd()):
        python = python.relative_to(Path.cwd())
    query = f"select * from {ANALYTICS_DATASET_NAME}.agg_course_completion"
    return f"{python} -c \"import duckdb; duckdb.connect('{DUCKDB_FILE}').sql('{query}').show()\""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--scale",
        default=os.environ.get(SCALE_ENV, "demo"),
        help=f"sandbox scale: tiny, demo or large (default demo, or ${SCALE_ENV})",
    )
    parser.add_argument("--seed", type=int, default=7, help="sandbox world seed (default 7)")
    args = parser.parse_args(argv)
    # dlt reads its log level when the pipeline starts; the demo's reader wants the story,
    # not dlt's schema chatter (a real job keeps the configured level)
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "ERROR")
    if dlt.config.get("models.org_dimensions") is None:  # the user's own mapping wins
        os.environ[ORG_DIMENSIONS_ENV] = orjson.dumps(DEMO_ORG_DIMENSIONS).decode()

    started = time.monotonic()
    database = Path.cwd() / DUCKDB_FILE
    fresh_database(database)
    # the world starts today (midnight UTC): the marts' as-of time is the real load time, so
    # a world dated in the past would show every deadline since then as overdue
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    world = World.generate(seed=args.seed, scale=args.scale, start=today)
    # the pipeline's local state lives in a throwaway directory: nothing leaks between demos
    with (
        tempfile.TemporaryDirectory(prefix="skyprep-demo-") as state_dir,
        Sandbox(world, rate_limit=None) as sandbox,
    ):
        print(f"SkyPrep sandbox (scale {args.scale}, seed {args.seed}) at {sandbox.base_url}")
        options = RunOptions(
            destination=dlt.destinations.duckdb(str(database)),
            pipeline_name=PIPELINE_NAME,
            dataset_name=DATASET_NAME,
            analytics_dataset_name=ANALYTICS_DATASET_NAME,
            pipelines_dir=state_dir,
            source_options={
                "api_key": sandbox.api_key,
                "acct_key": sandbox.acct_key,
                "base_url": sandbox.base_url,
                "requests_per_minute": None,  # the sandbox has no rate limit to respect
            },
            report_path=str(Path.cwd() / REPORT_FILE),
        )
        try:
            calls_before = sandbox.stats()["calls_total"]
            first = run_load(options)
            print_load("Day 1: first load", first, sandbox.stats()["calls_total"] - calls_before)

            sandbox.advance(days=1)
            print("\n(a day passes in the sandbox: learners progress, users come and go)")
            calls_before = sandbox.stats()["calls_total"]
            second = run_load(options)
            # the rows read again are mostly unchanged: the change report below says what moved
            print_load(
                "Day 2: second load",
                second,
                sandbox.stats()["calls_total"] - calls_before,
                per_table=False,
            )
        except Exception as error:
            secrets = [sandbox.api_key]
            print(f"demo: error: {describe_failure(error, secrets).reason}", file=sys.stderr)
            return int(describe_failure(error, secrets).exit_code)

    with duckdb.connect(str(database), read_only=True) as db:
        print("\n== What changed on day 2 ==")
        boundary = load_boundary(second.load_ids[-1])
        dispositions = write_dispositions(db, DATASET_NAME)
        changes = [
            table_changes(
                db, DATASET_NAME, table, boundary, second.rows.get(table), dispositions.get(table)
            )
            for table in data_tables(db, DATASET_NAME)
        ]
        print_changes(changes)
        if second.models is not None:
            print_completion_summary(db, ANALYTICS_DATASET_NAME)
            print_compliance_trend(db, ANALYTICS_DATASET_NAME)
        elif second.models_note:
            print(f"\n(models {second.models_note})")

    if second.report is not None:
        print(f"\nThe compliance report (open it in a browser): {second.report.path}")
    elif second.report_note:
        print(f"\n(report {second.report_note})")
    print(f"\nDone in {time.monotonic() - started:.1f}s. Explore it:\n  {explore_hint()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
