"""Night 366: the default job after a year of nightly loads (issue #10, "night after night").

The history marts (`fct_user_compliance_at_load`, `bridge_user_group_members_at_load`,
`agg_compliance_trend`) keep a row per learner (member, group) per load and are appended to,
never pruned; `fct_user_compliance_monthly` is rebuilt from them every night. A year of real
nights takes a year, so this gives one job a year of history and runs the next night:

1. a sandbox at `--scale` (the large world by default); two working directories, `control`
   and `year`, each runs night 1 of the default job (`skyprep run --requests-per-minute
   off`, every default resource and the models), exactly as `make bench`'s nightly phase;
2. in `year`'s DuckDB file the night's loads are copied back `--days - 1` days, one a day
   (`_dlt_loads` and the three history marts, each copy with its own load id and as-of time
   moved back): the marts then hold what a year of nights would have appended;
3. `advance(days=1)`, and night 2 runs in both directories: its wall time, peak RSS and
   models time, `year`'s against `control`'s in the same run.

    .venv/bin/python bench/history_year.py                  # large world, 365 days, minutes
    .venv/bin/python bench/history_year.py --scale demo --days 30   # smoke test, seconds

What it does not model: the raw scd2 tables keep two nights of versions, not a year's (a year
of changes adds versions to `course_progresses`, read by the status-history mart).
Writes `bench/history_year.json` (or `--out`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from run import git_commit, log, machine, run_job_night, total_calls  # noqa: E402
from sandbox_process import SandboxProcess  # noqa: E402

RAW = "skyprep_data"
ANALYTICS = "skyprep_analytics"
HISTORY_MARTS = (
    "fct_user_compliance_at_load",
    "bridge_user_group_members_at_load",
    "agg_compliance_trend",
)
DEFAULT_OUT = BENCH_DIR / "history_year.json"


def backfill(database: Path, days: int) -> dict[str, int]:
    """Copy the file's loads back `days - 1` days, a day apart, in `_dlt_loads` and the
    history marts; returns each mart's rows afterwards."""
    with duckdb.connect(str(database)) as db:
        db.execute(
            "create temp table copies as "
            "select l.load_id as real_id, r.k, "
            "cast(cast(l.load_id as decimal(24, 7)) - r.k * 86400 as varchar) as copy_id "
            f"from {RAW}._dlt_loads as l, range(1, {days}) as r(k) where l.status = 0"
        )
        db.execute(
            f"insert into {RAW}._dlt_loads "
            "select c.copy_id, l.schema_name, l.status, l.inserted_at - to_days(cast(c.k as "
            "integer)), l.schema_version_hash "
            f"from {RAW}._dlt_loads as l join copies as c on l.load_id = c.real_id"
        )
        rows: dict[str, int] = {}
        for mart in HISTORY_MARTS:
            columns = [
                name
                for (name,) in db.execute(
                    "select column_name from information_schema.columns where table_schema = ? "
                    "and table_name = ? order by ordinal_position",
                    [ANALYTICS, mart],
                ).fetchall()
            ]
            moved = {
                "load_id": "c.copy_id",
                "as_of_at": "m.as_of_at - to_days(cast(c.k as integer))",
            }
            select = ", ".join(moved.get(name, f"m.{name}") for name in columns)
            db.execute(
                f"insert into {ANALYTICS}.{mart} select {select} "
                f"from {ANALYTICS}.{mart} as m join copies as c on m.load_id = c.real_id"
            )
            (rows[mart],) = db.execute(f"select count(*) from {ANALYTICS}.{mart}").fetchone()  # type: ignore[misc]
        db.execute("checkpoint")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=365, help="loads the year holds")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="skyprep-year-") as scratch:
        root = args.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        runs = {"control": root / "control", "year": root / "year"}
        nights: dict[str, list[dict[str, Any]]] = {name: [] for name in runs}
        rows: dict[str, int] = {}
        with SandboxProcess(args.scale, args.seed, log_path=root / "sandbox.log") as sandbox:
            for night in (1, 2):
                if night == 2:
                    sandbox.advance(days=1)
                for name, workdir in runs.items():
                    sandbox.reset_stats()
                    log(f"history_year: {name} night {night}")
                    measured = run_job_night(sandbox, workdir, night)
                    measured["calls"] = total_calls(sandbox.stats())
                    measured["file_mb"] = round((workdir / "skyprep.duckdb").stat().st_size / 2**20)
                    nights[name].append(measured)
                    log(
                        f"history_year: {name} night {night} exit {measured['exit_code']} in "
                        f"{measured['seconds']} s, peak RSS {measured['peak_rss_mb']} MB"
                    )
                    if night == 1 and name == "year":
                        started = time.perf_counter()
                        rows = backfill(workdir / "skyprep.duckdb", args.days)
                        log(
                            f"history_year: {args.days} days of loads in "
                            f"{time.perf_counter() - started:.0f} s: {rows}"
                        )
    control, year = nights["control"][1], nights["year"][1]
    models = "models"
    results = {
        "scale": args.scale,
        "seed": args.seed,
        "days": args.days,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine(),
        "history_rows": rows,
        "nights": nights,
        "night2_year_vs_control": {
            "peak_rss": round(year["peak_rss_mb"] / control["peak_rss_mb"], 3),
            "seconds": round(year["seconds"] / control["seconds"], 3),
            "models_seconds": round(
                year["seconds_by_step"].get(models, 0.0)
                / max(control["seconds_by_step"].get(models, 0.0), 0.1),
                3,
            ),
        },
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(
        f"{'night 2':10s} {'exit':>4s} {'wall s':>7s} {'models s':>8s} {'peak MB':>8s} {'file MB':>8s}"
    )
    for name in runs:
        n = nights[name][1]
        print(
            f"{name:10s} {n['exit_code']:>4d} {n['seconds']:>7.1f} "
            f"{n['seconds_by_step'].get(models, 0.0):>8.1f} {n['peak_rss_mb']:>8.0f} "
            f"{n['file_mb']:>8,d}"
        )
    print(f"year / control: {results['night2_year_vs_control']}; rows held: {rows}")
    return 0 if all(n["exit_code"] == 0 for runs_ in nights.values() for n in runs_) else 1


if __name__ == "__main__":
    sys.exit(main())
