"""`skyprep-sandbox`: serve a generated world until interrupted."""

from __future__ import annotations

import argparse
import sys
import time

from skyprep_sandbox.scale import SCALES
from skyprep_sandbox.server import Sandbox
from skyprep_sandbox.world import World


def build_parser() -> argparse.ArgumentParser:
    """The command's options (every Sandbox switch has one)."""
    parser = argparse.ArgumentParser(
        prog="skyprep-sandbox", description="Serve a local emulator of the SkyPrep admin API."
    )
    parser.add_argument("--scale", default="demo", choices=sorted(SCALES))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--days", type=int, default=0, help="advance the world this many days first"
    )
    parser.add_argument("--rate-limit", type=int, default=None, help="calls per window per client")
    parser.add_argument("--rate-window-s", type=float, default=60.0)
    parser.add_argument("--paging", default="honour", choices=("honour", "ignore"))
    parser.add_argument("--max-per-page", type=int, default=1000)
    parser.add_argument("--default-per-page", type=int, default=None)
    parser.add_argument(
        "--no-account-wide-progresses",
        action="store_true",
        help="get_course_progresses without course_id answers an error",
    )
    parser.add_argument("--api-key", default="sandbox-api-key")
    parser.add_argument("--acct-key", default="sandbox.skyprepapp.com")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Build the world, print where it is served, serve until Ctrl-C."""
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    world = World.generate(seed=args.seed, scale=args.scale)
    if args.days:
        world.advance(days=args.days)
    built_s = time.perf_counter() - started
    sandbox = Sandbox(
        world,
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_window_s=args.rate_window_s,
        paging=args.paging,
        max_per_page=args.max_per_page,
        default_per_page=args.default_per_page,
        account_wide_progresses=not args.no_account_wide_progresses,
        api_key=args.api_key,
        acct_key=args.acct_key,
    )
    sandbox.start()
    print(
        f"skyprep-sandbox: scale={args.scale} seed={args.seed} built in {built_s:.1f}s "
        f"({len(world.users)} users, {len(world.courses)} courses, "
        f"{len(world.progresses)} course progresses), now={world.now.isoformat()}\n"
        f"  base_url  {sandbox.base_url}\n"
        f"  api_key   {sandbox.api_key}\n"
        f"  acct_key  {sandbox.acct_key}\n"
        f"  control   {sandbox.root_url}/_sandbox/stats | advance?days=1 | config | reset_stats",
        flush=True,
    )
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
