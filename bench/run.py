"""`make bench`: the source against a naive dlt pipeline and the cost of moving the bytes.

    python bench/run.py            # the large world (~1,000,000 course progresses), minutes
    python bench/run.py --quick    # the demo world, seconds: a smoke test of the harness

Everything reported is measured in this run; ratios compare contenders of this run only.
Writes `bench/results.json` (or `--out`) and prints a table. A full run with the default
`--out` also rewrites the figures block of `docs/benchmark.md`.

Phases:
1. A sandbox process with the world at `--scale`, rate limit off, paging honoured.
2. Three contenders, each a fresh process and a fresh DuckDB file: `floor` (raw bytes to
   DuckDB's read_json), `source` (this project's source, defaults, rate budget off), and
   `naive_dlt` (dlt's REST tutorial, on a subset at large scale, compared in rows/s).
   Wall time, rows, rows/s, peak RSS (the larger of psutil polling of the process tree and
   the kernel's own high-water mark reported by the child).
3. API economy: calls of the source's full sync against the minimum for the world's counts;
   a second sync with no change (calls, rows carrying the new load id, report downloads);
   a rate-limited sync on a smaller world (100 calls per 6 s, the source's budget 1000/min).
4. Nightly: the real job, `skyprep run --requests-per-minute off` with every default
   resource and the models, on a fresh sandbox at `--scale`, three nights with
   `advance(days=1)` between them: per night its exit code, wall time, API calls (and the
   plan's estimate), peak RSS and the time split extract / normalize / load / models; the
   floor contender runs on the same world first, so memory is stated as a ratio to it.

    python bench/run.py --only nightly   # phase 4 alone: updates `nightly` in results.json
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

from sandbox_process import ACCT_KEY, API_KEY, SandboxProcess  # noqa: E402

TABLES = ("users", "courses", "course_progresses")
DEFAULT_OUT = BENCH_DIR / "results.json"
DOCS_PAGE = REPO_DIR / "docs" / "benchmark.md"
# pages whose figures block a full run rewrites (README's Performance section shows them too)
FIGURE_PAGES = (DOCS_PAGE, REPO_DIR / "README.md")
DOCS_BEGIN = "<!-- bench:figures:begin -->"
DOCS_END = "<!-- bench:figures:end -->"

#: The rate-limited phase: the sandbox allows 100 calls per 6 s (SkyPrep's 100/min, time
#: scaled ten times) and the source's budget matches it.
RATE_LIMIT_CALLS = 100
RATE_WINDOW_S = 6.0
RATE_BUDGET_PER_MINUTE = 1000
SECONDS_PER_CALL = RATE_WINDOW_S / RATE_LIMIT_CALLS

#: The nightly phase: this many runs of the job, a day passing in the world between them.
NIGHTS = 3
#: Nightly targets, as ratios: peak RSS may not grow by more than this from night to night,
#: and stays within this multiple of the floor contender's peak on the same world.
NIGHTLY_RSS_GROWTH = 1.10
NIGHTLY_RSS_TO_FLOOR = 3.0
#: The three-table sync's peak RSS against the floor's (the same calls into DuckDB).
SOURCE_RSS_TO_FLOOR = 2.5
#: The plan of the first night against the calls it made.
PLAN_ERROR = 0.10

#: Report downloads are calls to this route; a no-change sync must make none.
REPORT_DOWNLOAD_ROUTE = "get_saved_advanced_report"

PROFILES: dict[str, dict[str, Any]] = {
    # naive_limit: the naive contender stops after the course reaching this many progress
    # rows (0 = all); its rows/s is compared, not its seconds.
    # rate_page_size: small pages make the rate-limited sync long enough (~1 min at demo
    # scale) for the limit to bind over many windows.
    "full": {"scale": "large", "rate_scale": "demo", "naive_limit": 100_000, "rate_page_size": 25},
    "quick": {"scale": "demo", "rate_scale": "tiny", "naive_limit": 0, "rate_page_size": 5},
}


# --- measuring one contender ------------------------------------------------------------


def tree_rss_bytes(process: psutil.Process) -> int:
    """RSS of a process and all its descendants (dlt may start worker processes)."""
    total = 0
    try:
        total += process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
    except psutil.NoSuchProcess:
        pass
    return total


def run_contender(
    name: str,
    sandbox: SandboxProcess,
    workdir: Path,
    *,
    extra: list[str] | None = None,
    label: str | None = None,
    poll_s: float = 0.05,
) -> dict[str, Any]:
    """Run `bench/contenders.py <name>` as a fresh process; time it and watch its memory."""
    label = label or name
    workdir.mkdir(parents=True, exist_ok=True)
    result_path = workdir / f"{label}.result.json"
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable,
        str(BENCH_DIR / "contenders.py"),
        name,
        "--base-url",
        sandbox.base_url,
        "--api-key",
        API_KEY,
        "--acct-key",
        ACCT_KEY,
        "--workdir",
        str(workdir),
        "--result",
        str(result_path),
        *(extra or []),
    ]
    log_path = workdir / f"{label}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR)
        watched = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss_bytes(watched))
            time.sleep(poll_s)
    process_seconds = time.perf_counter() - started
    if child.returncode != 0:
        tail = log_path.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"contender {label} failed ({child.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_path.read_text())
    rows = sum(int(result["rows"].get(table, 0)) for table in TABLES)
    # rounded once, so rows_per_s and the ratios follow from the figures reported
    seconds = round(float(result["seconds"]), 3)
    result.update(
        rows_by_table=result.pop("rows"),
        rows=rows,
        seconds=round(seconds, 3),
        process_seconds=round(process_seconds, 3),
        rows_per_s=round(rows / seconds, 1) if seconds > 0 else 0.0,
        peak_rss_mb=round(max(peak / 2**20, float(result.pop("peak_rss_mb_self"))), 1),
        peak_rss_mb_polled=round(peak / 2**20, 1),
    )
    return result


# --- the world and the minimum number of calls ------------------------------------------


def calls_minimum(world: dict[str, Any], page_size: int) -> int:
    """Per list floor(n/P)+1 calls (the last page is short, possibly empty); progresses per course."""
    lists = world["users"] // page_size + 1 + world["courses"] // page_size + 1
    progresses = sum(n // page_size + 1 for n in world["progresses_per_course"].values())
    return int(lists + progresses)


def source_defaults() -> dict[str, Any]:
    """The source's own default arguments (page size, concurrency), read from its signature."""
    try:
        from skyprep_source import skyprep
    except ImportError:
        return {}
    defaults: dict[str, Any] = {}
    for name, parameter in inspect.signature(skyprep).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            defaults[name] = parameter.default
    return defaults


def total_calls(stats: dict[str, Any]) -> int:
    return int(sum(stats.get("calls", {}).values()))


# --- the run ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import dlt
    import duckdb

    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "dlt": dlt.__version__,
        "duckdb": duckdb.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=False
        ).stdout.strip()

    # dirty: tracked files differ from the commit (other people's untracked work is not ours)
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run every phase and return the results document."""
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    defaults = source_defaults()
    page_size = int(args.page_size or defaults.get("page_size") or 1000)
    # the floor moves the bytes with as many calls in flight as the source uses
    concurrency = int(defaults.get("concurrency") or 1)
    paging = ["--page-size", str(page_size)]
    source_paging = ["--source-page-size", str(args.page_size)] if args.page_size else []
    started = time.perf_counter()

    results: dict[str, Any] = {
        "mode": "quick" if args.quick else "full",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "machine": machine(),
        "scale": args.scale,
        "seed": args.seed,
        "page_size": page_size,
        "source_defaults": {k: v for k, v in defaults.items() if _is_plain(v)},
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
    }

    # --- phase 1+2: the three contenders on the main world, rate limit off ---------------
    log(f"sandbox: scale={args.scale} seed={args.seed}, rate limit off, paging honoured")
    with SandboxProcess(args.scale, args.seed, log_path=workdir / "sandbox-main.log") as sb:
        results["sandbox_startup_seconds"] = round(sb.startup_seconds, 2)
        served = sb.world()["counts"]

        log("floor: the same calls, raw bytes -> DuckDB read_json")
        sb.reset_stats()
        floor = run_contender(
            "floor", sb, workdir / "floor", extra=[*paging, "--concurrency", str(concurrency)]
        )
        floor["calls"] = total_calls(sb.stats())
        world = floor.pop("world")

        log("source: full sync (defaults, rate budget off)")
        sb.reset_stats()
        source = run_contender(
            "source", sb, workdir / "source", extra=source_paging, label="source-full"
        )
        full_stats = sb.stats()
        source["calls"] = total_calls(full_stats)

        log("source: second sync, nothing changed")
        sb.reset_stats()
        noop = run_contender(
            "source", sb, workdir / "source", extra=source_paging, label="source-noop"
        )
        noop_stats = sb.stats()

        log(f"naive dlt: progress rows limit {args.naive_limit or 'none'}")
        sb.reset_stats()
        naive = run_contender(
            "naive_dlt",
            sb,
            workdir / "naive_dlt",
            extra=[*paging, "--progress-limit", str(args.naive_limit)],
        )
        naive["calls"] = total_calls(sb.stats())

    # --- phase 3: every default resource (reports too), then the rate-limited sync -------
    log(f"sandbox: scale={args.rate_scale} for the all-resources no-change sync and the rate limit")
    with SandboxProcess(args.rate_scale, args.seed, log_path=workdir / "sandbox-small.log") as sb:
        everything = ["--resources"]  # an empty selection: every default resource
        log("source: every default resource, full sync then a second sync with no change")
        sb.reset_stats()
        all_full = run_contender(
            "source", sb, workdir / "source-all", extra=everything, label="source-all-full"
        )
        all_full_stats = sb.stats()
        sb.reset_stats()
        all_noop = run_contender(
            "source", sb, workdir / "source-all", extra=everything, label="source-all-noop"
        )
        all_noop_stats = sb.stats()
        live_reports = _live_reports(sb)

        log(
            f"source: rate-limited sync, {RATE_LIMIT_CALLS} calls per {RATE_WINDOW_S:g} s, "
            f"budget {RATE_BUDGET_PER_MINUTE}/min, page size {args.rate_page_size}"
        )
        sb.config(rate_limit=RATE_LIMIT_CALLS, rate_window_s=RATE_WINDOW_S)
        sb.reset_stats()  # also empties the limiter's windows
        limited = run_contender(
            "source",
            sb,
            workdir / "source-rate",
            extra=[
                "--requests-per-minute",
                str(RATE_BUDGET_PER_MINUTE),
                "--source-page-size",
                str(args.rate_page_size),
            ],
            label="source-rate-limited",
        )
        rate_stats = sb.stats()

    minimum = calls_minimum(world, page_size)
    rate_calls = total_calls(rate_stats)
    results.update(
        world={
            "users": world["users"],
            "courses": world["courses"],
            "course_progresses": sum(world["progresses_per_course"].values()),
            "served_counts": served,
        },
        source=_contender_summary(source),
        naive_dlt=_contender_summary(naive),
        floor=_contender_summary(floor),
        speedup_vs_naive=_ratio(source["rows_per_s"], naive["rows_per_s"]),
        ratio_to_floor=_ratio(source["seconds"], floor["seconds"]),
        same_rows_as_floor=source["rows_by_table"] == floor["rows_by_table"],
        calls_full_sync=source["calls"],
        calls_minimum=minimum,
        calls_full_sync_by_route=full_stats.get("calls", {}),
        incremental_noop={
            "scale": args.scale,
            "resources": list(TABLES),
            "calls": total_calls(noop_stats),
            # with `verify_paging` (off by default since confirm-before-retire) the source
            # re-reads page 1 of every multi-page list: the calls above the full sync
            "calls_verify_paging": total_calls(noop_stats) - source["calls"],
            "rows_rewritten": _written(noop),
            "rows_rewritten_by_table": noop["rows_in_this_load"],
            "report_downloads": _report_downloads(noop_stats),
            "seconds": noop["seconds"],
            "calls_by_route": noop_stats.get("calls", {}),
            # the main world's sync reads no reports: this run covers every default resource
            "all_resources": {
                "scale": args.rate_scale,
                "full_sync_calls": total_calls(all_full_stats),
                "full_sync_report_downloads": _report_downloads(all_full_stats),
                "full_sync_rows_written": _written(all_full),
                "calls": total_calls(all_noop_stats),
                # append-only history tables (platform_counts: one row per run by design)
                # are not rewrites: they are counted apart
                "rows_rewritten": _written(all_noop, exclude=all_noop["append_only_tables"]),
                "rows_rewritten_by_table": all_noop["rows_in_this_load"],
                "append_only_tables": all_noop["append_only_tables"],
                "rows_appended_to_history": _written(all_noop, only=all_noop["append_only_tables"]),
                "report_downloads": _report_downloads(all_noop_stats),
                # live saved reports are rendered at download time: downloaded every run
                "live_reports": live_reports,
                "seconds": all_noop["seconds"],
            },
        },
        rate_limited={
            "scale": args.rate_scale,
            "resources": list(TABLES),
            "page_size": args.rate_page_size,
            "limit": f"{RATE_LIMIT_CALLS} calls per {RATE_WINDOW_S:g} s",
            "requests_per_minute": RATE_BUDGET_PER_MINUTE,
            "calls": rate_calls,
            "throttled_calls": int(rate_stats.get("throttled", 0)),
            "seconds": limited["seconds"],
            "floor_seconds": round(rate_calls * SECONDS_PER_CALL, 3),
            "ratio_to_floor": _ratio(limited["seconds"], rate_calls * SECONDS_PER_CALL),
            "rows": limited["rows"],
        },
        total_seconds=round(time.perf_counter() - started, 1),
    )
    # --- phase 4: the nightly job -------------------------------------------------------
    results["nightly"] = nightly(args, workdir, page_size, concurrency)
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    # the machine is shared: the load around the run says how quiet it was
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["source"]["rows_written"] = _written(source)
    results["targets"] = targets(results)
    return results


def job_command() -> list[str]:
    """The installed `skyprep` console script beside this interpreter, else the module."""
    script = Path(sys.executable).parent / "skyprep"
    return [str(script)] if script.exists() else [sys.executable, "-m", "skyprep_source.cli"]


def run_job_night(sandbox: SandboxProcess, workdir: Path, night: int) -> dict[str, Any]:
    """One `skyprep run` (defaults, rate budget off) in `workdir`, as a scheduler runs it:
    account in the environment, its own state directory; its memory polled with psutil."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SOURCES__", "DESTINATION__", "RUNTIME__", "LOAD__", "DLT_"))
    }
    env.update(
        SOURCES__SKYPREP__BASE_URL=sandbox.base_url,
        SOURCES__SKYPREP__API_KEY=API_KEY,
        SOURCES__SKYPREP__ACCT_KEY=ACCT_KEY,
        DLT_DATA_DIR=str(workdir / "dlt"),
    )
    workdir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = workdir / f"night{night}.out", workdir / f"night{night}.err"
    started = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        child = subprocess.Popen(
            [*job_command(), "run", "--requests-per-minute", "off"],
            stdout=out,
            stderr=err,
            cwd=workdir,
            env=env,
        )
        watched = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss_bytes(watched))
            time.sleep(0.05)
    seconds = time.perf_counter() - started
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    return {
        "night": night,
        "exit_code": child.returncode,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "planned_calls": _planned_calls(stderr),
        "seconds_by_step": _step_seconds(stdout),
        "last_stderr_line": (stderr.strip().splitlines() or [""])[-1][:400],
    }


def _planned_calls(stderr: str) -> int | None:
    for line in stderr.splitlines():
        if "call plan: about " in line:
            return int(line.split("call plan: about ", 1)[1].split(" ", 1)[0].replace(",", ""))
    return None


def _step_seconds(stdout: str) -> dict[str, float]:
    """`  time:  extract 31.2s, normalize 0.4s, load 12.0s, models 9.1s` -> seconds by step."""
    for line in stdout.splitlines():
        if line.strip().startswith("time:"):
            steps = line.split("time:", 1)[1].split(",")
            return {
                step.split()[0]: float(step.split()[1].rstrip("s"))
                for step in steps
                if step.split()
            }
    return {}


def nightly(args: argparse.Namespace, workdir: Path, page_size: int, concurrency: int) -> dict:
    """Phase 4: the default job for `--nights` nights (NIGHTS) on a fresh world, and the floor
    beside it."""
    log(f"nightly: sandbox scale={args.scale} seed={args.seed}, {args.nights} nights")
    nights: list[dict[str, Any]] = []
    with SandboxProcess(args.scale, args.seed, log_path=workdir / "sandbox-nightly.log") as sb:
        log("nightly: floor (the three tables' bytes -> DuckDB read_json) on the same world")
        floor = run_contender(
            "floor",
            sb,
            workdir / "nightly-floor",
            extra=["--page-size", str(page_size), "--concurrency", str(concurrency)],
        )
        for night in range(1, args.nights + 1):
            if night > 1:
                sb.advance(days=1)
            sb.reset_stats()
            log(f"nightly: night {night}, skyprep run (every default resource, the models)")
            measured = run_job_night(sb, workdir / "nightly", night)
            measured["calls"] = total_calls(sb.stats())
            log(
                f"nightly: night {night} exit {measured['exit_code']} in "
                f"{measured['seconds']} s, {measured['calls']} calls, peak RSS "
                f"{measured['peak_rss_mb']} MB"
            )
            nights.append(measured)
    floor_rss = float(floor["peak_rss_mb"])
    first = nights[0]
    planned = first.get("planned_calls")
    return {
        "scale": args.scale,
        "seed": args.seed,
        "command": "skyprep run --requests-per-minute off",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git": git_commit(),
        "floor": _contender_summary(floor),
        "nights": nights,
        "peak_rss_ratio_to_floor": [_ratio(n["peak_rss_mb"], floor_rss) for n in nights],
        "peak_rss_growth": [
            _ratio(later["peak_rss_mb"], earlier["peak_rss_mb"])
            for earlier, later in itertools.pairwise(nights)
        ],
        "first_night_plan_error": _ratio(planned - first["calls"], first["calls"])
        if planned is not None
        else None,
    }


def nightly_targets(nightly_results: dict[str, Any]) -> list[tuple[str, str, Any, bool]]:
    """The nightly scenario's targets (issue #10)."""
    nights = nightly_results["nights"]
    error = nightly_results["first_night_plan_error"]
    return [
        (
            "nightly_exit_codes",
            "all 0",
            [n["exit_code"] for n in nights],
            all(n["exit_code"] == 0 for n in nights),
        ),
        (
            "nightly_peak_rss_growth",
            f"<= {NIGHTLY_RSS_GROWTH} x the night before",
            nightly_results["peak_rss_growth"],
            all(g <= NIGHTLY_RSS_GROWTH for g in nightly_results["peak_rss_growth"]),
        ),
        (
            "nightly_peak_rss_ratio_to_floor",
            f"<= {NIGHTLY_RSS_TO_FLOOR} x floor peak RSS",
            nightly_results["peak_rss_ratio_to_floor"],
            all(r <= NIGHTLY_RSS_TO_FLOOR for r in nightly_results["peak_rss_ratio_to_floor"]),
        ),
        (
            "nightly_first_plan_error",
            f"within {PLAN_ERROR:.0%} of the calls made",
            error,
            error is not None and abs(error) <= PLAN_ERROR,
        ),
    ]


def _written(
    measured: dict[str, Any], *, exclude: Iterable[str] = (), only: Iterable[str] | None = None
) -> int:
    """Rows the run's loads wrote, over every table, or the tables `only`, less `exclude`."""
    written = measured.get("rows_in_this_load", {})
    tables = set(written if only is None else only) - set(exclude)
    return int(sum(count for table, count in written.items() if table in tables))


def _live_reports(sandbox: SandboxProcess) -> int:
    """How many of the served saved reports are live (not `saved_report_with_data`)."""
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"api_key": API_KEY, "acct_key": ACCT_KEY}).encode()
    url = f"{sandbox.base_url}/get_saved_advanced_reports"
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as answer:
        reports = json.loads(answer.read())
    return sum(1 for r in reports if r.get("saved_report_type") != "saved_report_with_data")


def _report_downloads(stats: dict[str, Any]) -> int:
    return int(stats.get("calls", {}).get(REPORT_DOWNLOAD_ROUTE, 0))


def _contender_summary(measured: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "seconds",
        "rows",
        "rows_per_s",
        "peak_rss_mb",
        "rows_by_table",
        "calls",
        "process_seconds",
        "peak_rss_mb_polled",
        "rows_written",
    )
    return {key: measured[key] for key in keep if key in measured}


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("inf")


def _is_plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target of issue #5 with its measured value and whether it was met."""
    noop = results["incremental_noop"]
    rate = results["rate_limited"]
    checks: list[tuple[str, str, Any, bool]] = [
        (
            "speedup_vs_naive",
            ">= 20",
            results["speedup_vs_naive"],
            results["speedup_vs_naive"] >= 20,
        ),
        ("ratio_to_floor", "<= 2", results["ratio_to_floor"], results["ratio_to_floor"] <= 2),
        (
            "source_peak_rss_ratio_to_floor",
            f"<= {SOURCE_RSS_TO_FLOOR} x floor peak RSS",
            _ratio(results["source"]["peak_rss_mb"], results["floor"]["peak_rss_mb"]),
            results["source"]["peak_rss_mb"]
            <= SOURCE_RSS_TO_FLOOR * results["floor"]["peak_rss_mb"],
        ),
        (
            "calls_full_sync",
            "= calls_minimum",
            results["calls_full_sync"],
            results["calls_full_sync"] == results["calls_minimum"],
        ),
        (
            "incremental_noop_rows_rewritten",
            "= 0",
            noop["rows_rewritten"],
            noop["rows_rewritten"] == 0,
        ),
        (
            "incremental_noop_all_resources_rows_rewritten",
            "= 0 (append-only history tables apart)",
            noop["all_resources"]["rows_rewritten"],
            noop["all_resources"]["rows_rewritten"] == 0,
        ),
        (
            "incremental_noop_report_downloads",
            "= the live reports (stored ones 0; full sync downloaded > 0)",
            noop["all_resources"]["report_downloads"],
            noop["all_resources"]["report_downloads"] == noop["all_resources"]["live_reports"]
            and noop["all_resources"]["full_sync_report_downloads"] > 0,
        ),
        (
            "rate_limited_throttled_calls",
            "= 0",
            rate["throttled_calls"],
            rate["throttled_calls"] == 0,
        ),
        (
            "rate_limited_seconds",
            "<= 1.1 x floor_seconds",
            rate["ratio_to_floor"],
            rate["seconds"] <= 1.1 * rate["floor_seconds"],
        ),
    ]
    if "nightly" in results:
        checks += nightly_targets(results["nightly"])
    return {name: {"target": goal, "value": value, "met": met} for name, goal, value, met in checks}


# --- output -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figures_markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown tables shown in docs/benchmark.md and printed."""
    lines = [
        f"Measured {results['date']} at commit `{results['git']['commit'][:10]}`"
        f"{' (uncommitted changes)' if results['git']['dirty'] else ''}, "
        f"`{results['command']}`, {results['machine']['cores']} cores, "
        f"{results['machine']['memory_gb']} GB, {results['machine']['cpu']}, load average "
        f"{results['machine']['load_average_at_start'][0]} at the start and "
        f"{results['machine'].get('load_average_at_end', ['?'])[0]} at the end "
        f"(total {results.get('total_seconds', '?')} s). "
        f"World `{results['scale']}` (seed {results['seed']}): "
        f"{results['world']['users']:,} users, {results['world']['courses']:,} courses, "
        f"{results['world']['course_progresses']:,} course progresses; page size "
        f"{results['page_size']}.",
        "",
        "| contender | rows | seconds | rows/s | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in ("source", "naive_dlt", "floor"):
        c = results[name]
        lines.append(
            f"| {name} | {c['rows']:,} | {c['seconds']:.1f} | {c['rows_per_s']:,.0f} "
            f"| {c['peak_rss_mb']:,.0f} |"
        )
    lines += ["", "| target | goal | measured | met |", "|---|---|---:|:---:|"]
    for name, check in results["targets"].items():
        lines.append(
            f"| {name} | {check['target']} | {check['value']} | {'yes' if check['met'] else 'NO'} |"
        )
    noop = results["incremental_noop"]
    rate = results["rate_limited"]
    lines += [
        "",
        f"API economy: full sync {results['calls_full_sync']:,} calls "
        f"(minimum {results['calls_minimum']:,}); second sync with no change "
        f"{noop['calls']:,} calls ({noop['calls_verify_paging']:,} of them the page-1 re-check "
        f"of multi-page lists, `verify_paging`), {noop['rows_rewritten']:,} rows rewritten, "
        f"{noop['all_resources']['report_downloads']} report downloads (every default resource, "
        f"`{noop['all_resources']['scale']}` world, "
        f"{noop['all_resources']['rows_rewritten']:,} rows rewritten, plus "
        f"{noop['all_resources']['rows_appended_to_history']:,} appended to the history "
        f"table(s) {', '.join(noop['all_resources']['append_only_tables']) or 'none'}); "
        f"rate-limited sync "
        f"(`{rate['scale']}` world, page size {rate['page_size']}, {rate['limit']}): "
        f"{rate['calls']:,} calls, "
        f"{rate['throttled_calls']} throttled, {rate['seconds']:.1f} s against a floor of "
        f"{rate['floor_seconds']:.1f} s.",
    ]
    if "nightly" in results:
        lines += ["", nightly_markdown(results["nightly"])]
    return "\n".join(lines)


def nightly_markdown(nightly_results: dict[str, Any]) -> str:
    """The nightly scenario as a Markdown table."""
    floor = nightly_results["floor"]
    lines = [
        f"Nightly job (`{nightly_results['command']}`, every default resource and the models, "
        f"`{nightly_results['scale']}` world, {len(nightly_results['nights'])} nights with "
        f"`advance(days=1)` between them; floor peak RSS {floor['peak_rss_mb']:,.0f} MB on the "
        "same world):",
        "",
        "| night | exit | seconds | calls (planned) | peak RSS (MB) | x floor | extract | "
        "normalize | load | models |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for night, ratio in zip(
        nightly_results["nights"], nightly_results["peak_rss_ratio_to_floor"], strict=True
    ):
        steps = night["seconds_by_step"]
        lines.append(
            f"| {night['night']} | {night['exit_code']} | {night['seconds']:.1f} "
            f"| {night['calls']:,} ({night['planned_calls'] or '?'}) "
            f"| {night['peak_rss_mb']:,.0f} | {ratio} "
            + " ".join(
                f"| {steps[step]:.1f}" if step in steps else "| -"
                for step in ("extract", "normalize", "load", "models")
            )
            + " |"
        )
    return "\n".join(lines)


def update_docs(results: dict[str, Any], page: Path = DOCS_PAGE) -> None:
    """Replace the figures block of `page`, so its figures are never typed in."""
    if not page.exists():
        return
    text = page.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        return
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    page.write_text(f"{head}{DOCS_BEGIN}\n{figures_markdown(results)}\n{DOCS_END}{tail}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="demo world: a smoke test")
    parser.add_argument("--scale", help="world of the main phases (default: large / demo)")
    parser.add_argument("--rate-scale", help="world of the rate-limited sync")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page-size", type=int, help="default: the source's own default")
    parser.add_argument(
        "--naive-limit", type=int, help="naive dlt: stop after this many progress rows (0: all)"
    )
    parser.add_argument(
        "--rate-page-size", type=int, help="the source's page size when rate-limited"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "_work")
    parser.add_argument(
        "--nights", type=int, default=NIGHTS, help=f"nights of the nightly phase (default {NIGHTS})"
    )
    parser.add_argument(
        "--only",
        choices=["nightly"],
        help="run one phase alone and update its part of --out (the rest is kept)",
    )
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    args.scale = args.scale or profile["scale"]
    args.rate_scale = args.rate_scale or profile["rate_scale"]
    args.rate_page_size = args.rate_page_size or profile["rate_page_size"]
    if args.naive_limit is None:
        args.naive_limit = profile["naive_limit"]
    return args


def only_nightly(args: argparse.Namespace) -> dict[str, Any]:
    """`--only nightly`: phase 4 alone; the other phases' figures in --out stay as they were
    measured (each phase carries its own date and commit)."""
    workdir = Path(args.workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    defaults = source_defaults()
    page_size = int(args.page_size or defaults.get("page_size") or 1000)
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["nightly"] = nightly(args, workdir, page_size, int(defaults.get("concurrency") or 1))
    results["nightly"]["machine"] = machine()
    if "floor" in results:
        results["targets"] = targets(results)
    else:
        results["targets"] = {
            name: {"target": goal, "value": value, "met": met}
            for name, goal, value, met in nightly_targets(results["nightly"])
        }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.only == "nightly":
        results = only_nightly(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(nightly_markdown(results["nightly"]))
        print(f"\nwritten: {args.out}")
        if args.out.resolve() == DEFAULT_OUT.resolve() and "floor" in results:
            for page in FIGURE_PAGES:  # each phase's figures carry their own date and commit
                update_docs(results, page)
        return 0
    results = benchmark(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(figures_markdown(results))
    print(f"\nwritten: {args.out}")
    if not args.quick and args.out.resolve() == DEFAULT_OUT.resolve():
        for page in FIGURE_PAGES:
            update_docs(results, page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
