"""Where the source's time and memory go: a profile of one full sync against the sandbox.

    python bench/profile_source.py --scale demo          # seconds
    python bench/profile_source.py --scale large         # the benchmark's world, minutes

Two runs of the source contender (defaults, rate budget off, users/courses/progresses),
each a fresh process and DuckDB file:
1. extract, normalize and load one by one: seconds, peak RSS and peak Arrow pool per stage;
2. under py-spy (every thread, native frames off) when py-spy is found (`--py-spy`, PATH),
   else under cProfile (main thread only): time by activity and the top functions.
Writes `<workdir>/profile.json` and prints a summary.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from run import run_contender  # noqa: E402
from sandbox_process import ACCT_KEY, API_KEY, SandboxProcess  # noqa: E402

#: Activities, matched against a stack from the leaf up: the first frame that matches names
#: the activity the sample is charged to.
ACTIVITIES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("json parse (orjson/json)", re.compile(r"orjson|/json/|requests/models\.py.*json")),
    (
        "http (requests/urllib3/socket)",
        re.compile(r"/requests/|/urllib3/|http/client\.py|socket\.py|ssl\.py"),
    ),
    ("row hash (skyprep_source.row_hash)", re.compile(r"skyprep_source/row_hash")),
    (
        "page bytes -> Arrow (skyprep_source.arrow_pages)",
        re.compile(r"skyprep_source/arrow_pages"),
    ),
    ("records -> Arrow (skyprep_source.normalize)", re.compile(r"skyprep_source/normalize")),
    ("skyprep_source (other)", re.compile(r"skyprep_source/")),
    ("duckdb", re.compile(r"duckdb")),
    ("dlt load", re.compile(r"dlt/load/|dlt/destinations/")),
    ("dlt normalize", re.compile(r"dlt/normalize/")),
    ("dlt extract", re.compile(r"dlt/extract/")),
    ("pyarrow", re.compile(r"pyarrow")),
    ("dlt (other)", re.compile(r"/dlt/")),
)


def classify(frames: list[str]) -> str:
    for frame in reversed(frames):  # leaf last in py-spy's raw format
        for name, pattern in ACTIVITIES:
            if pattern.search(frame):
                return name
    return "other (interpreter, imports, stdlib)"


def summarise_pyspy(raw_path: Path, top: int = 25) -> dict[str, Any]:
    """py-spy's collapsed stacks -> share of samples by activity, top leaf functions."""
    by_activity: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        by_activity[classify(frames)] += count
        by_leaf[frames[-1]] += count
    return {
        "samples": total,
        "by_activity": {k: round(100 * v / total, 1) for k, v in by_activity.most_common()},
        "top_leaf_functions": [
            {"function": k, "percent": round(100 * v / total, 1)}
            for k, v in by_leaf.most_common(top)
        ],
    }


def summarise_cprofile(stats_path: Path, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(str(stats_path))
    rows = sorted(stats.stats.items(), key=lambda item: item[1][3], reverse=True)  # type: ignore[attr-defined]
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    return {
        "note": "cProfile: the main thread only (dlt's load runs in worker threads)",
        "top_cumulative": [
            {
                "function": f"{func[2]} ({func[0]}:{func[1]})",
                "cumulative_s": round(ct, 3),
                "self_s": round(tt, 3),
                "percent_cumulative": round(100 * ct / total, 1),
            }
            for func, (_cc, _nc, tt, ct, _callers) in rows[:top]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "_work" / "profile")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"), help="py-spy executable")
    parser.add_argument("--rate", type=int, default=97, help="py-spy samples per second")
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    report: dict[str, Any] = {"scale": args.scale}

    with SandboxProcess(args.scale, args.seed, log_path=args.workdir / "sandbox.log") as sb:
        staged = run_contender("source", sb, args.workdir / "stages", extra=["--stages"])
        report["stages"] = staged["stages"]
        report["staged_run"] = {
            k: staged[k] for k in ("seconds", "rows", "rows_per_s", "peak_rss_mb")
        }

        profiled_dir = args.workdir / "profiled"
        profiled_dir.mkdir()
        common = [
            "source",
            "--base-url",
            sb.base_url,
            "--api-key",
            API_KEY,
            "--acct-key",
            ACCT_KEY,
            "--workdir",
            str(profiled_dir),
            "--result",
            str(profiled_dir / "result.json"),
        ]
        contender = [sys.executable, str(BENCH_DIR / "contenders.py"), *common]
        if args.py_spy:
            raw = args.workdir / "py-spy.txt"
            subprocess.run(
                [
                    args.py_spy,
                    "record",
                    "--format",
                    "raw",
                    "--rate",
                    str(args.rate),
                    "--threads",
                    "--output",
                    str(raw),
                    "--",
                    *contender,
                ],
                check=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            report["py_spy"] = summarise_pyspy(raw)
        else:
            stats_path = args.workdir / "cprofile.pstats"
            subprocess.run([*contender, "--profile", str(stats_path)], check=True)
            report["cprofile"] = summarise_cprofile(stats_path)
        report["profiled_run_seconds"] = json.loads((profiled_dir / "result.json").read_text())[
            "seconds"
        ]

    (args.workdir / "profile.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
