"""API calls of a no-change night, with and without the `verify_paging` re-check of page 1.

Loads the demo world (seed 7) into a fresh DuckDB file, then loads again with no upstream
change and counts the sandbox's calls of that second run, for each `verify_paging` setting.
Confirm-before-retire costs nothing on such a night (no key is missing from any snapshot).

    .venv/bin/python bench/no_change_calls.py [--scale demo] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import dlt

from skyprep_sandbox import Sandbox, World
from skyprep_source import skyprep


def no_change_calls(
    scale: str, verify_paging: bool, root: Path, page_size: int
) -> tuple[int, dict[str, int]]:
    with Sandbox(World.generate(seed=7, scale=scale)) as sb:
        pipeline = dlt.pipeline(
            pipeline_name=f"no_change_{verify_paging}",
            pipelines_dir=str(root / "pipelines"),
            destination=dlt.destinations.duckdb(str(root / f"v{verify_paging}.duckdb")),
            dataset_name="skyprep_data",
        )
        settings = {
            "api_key": sb.api_key,
            "acct_key": sb.acct_key,
            "base_url": sb.base_url,
            "requests_per_minute": None,
            "verify_paging": verify_paging,
            "page_size": page_size,
        }
        pipeline.run(skyprep(**settings))
        sb.reset_stats()
        pipeline.run(skyprep(**settings))
        stats = sb.stats()
        return int(stats["calls_total"]), dict(stats["calls"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", default="demo")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for verify in (True, False):
            total, per_route = no_change_calls(args.scale, verify, Path(tmp), args.page_size)
            confirms = sum(n for route, n in per_route.items() if route in CONFIRM)
            print(
                f"scale={args.scale} page_size={args.page_size} verify_paging={verify}: {total} calls on a no-change "
                f"night (confirming calls: {confirms}; get_course_progresses: "
                f"{per_route.get('get_course_progresses', 0)}, get_users: "
                f"{per_route.get('get_users', 0)})"
            )


CONFIRM = ("get_user", "get_course", "get_course_progress", "get_learning_path")

if __name__ == "__main__":
    main()
