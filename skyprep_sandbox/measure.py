"""Measure the sandbox: build time and memory of a world, and how fast one client can read
all its course progresses. `python -m skyprep_sandbox.measure --scale large`"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import urllib.parse
import urllib.request

import orjson

from skyprep_sandbox.server import Sandbox
from skyprep_sandbox.world import World


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fetch_all(sandbox: Sandbox, route: str, per_page: int, parse: bool) -> tuple[int, int, int]:
    """Page through a route from one client; returns (records, pages, bytes)."""
    opener = urllib.request.build_opener()
    records = pages = size = 0
    while True:
        pages += 1
        body = urllib.parse.urlencode(
            {
                "api_key": sandbox.api_key,
                "acct_key": sandbox.acct_key,
                "page": pages,
                "per_page": per_page,
            }
        ).encode()
        with opener.open(f"{sandbox.base_url}/{route}", data=body, timeout=60) as response:
            raw = response.read()
        size += len(raw)
        count = len(orjson.loads(raw)) if parse else raw.count(b',"days_until_deadline":')
        records += count
        if count < per_page:
            return records, pages, size


def main(argv: list[str] | None = None) -> int:
    """Print the figures for one scale."""
    parser = argparse.ArgumentParser(prog="python -m skyprep_sandbox.measure")
    parser.add_argument("--scale", default="large")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-page", type=int, default=1000)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    world = World.generate(seed=args.seed, scale=args.scale)
    built = time.perf_counter() - started
    print(
        f"build {args.scale}: {built:.1f} s, {len(world.users):,} users, "
        f"{len(world.courses):,} courses, {len(world.progresses):,} course progresses; "
        f"peak RSS {peak_rss_mb():,.0f} MB",
        flush=True,
    )
    started = time.perf_counter()
    world.advance(days=1)
    print(f"advance(days=1): {time.perf_counter() - started:.1f} s", flush=True)
    with Sandbox(world, max_per_page=args.per_page) as sandbox:
        for parse in (False, True):
            started = time.perf_counter()
            records, pages, size = fetch_all(sandbox, "get_course_progresses", args.per_page, parse)
            took = time.perf_counter() - started
            print(
                f"fetch all course progresses, per_page={args.per_page}, "
                f"{'parsing each page' if parse else 'raw bytes'}: {records:,} records, "
                f"{pages:,} pages, {size / 1e6:,.0f} MB in {took:.1f} s "
                f"({records / took:,.0f} records/s, {size / 1e6 / took:,.0f} MB/s)",
                flush=True,
            )
    print(f"peak RSS {peak_rss_mb():,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
