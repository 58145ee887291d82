"""`skyprep`: the console script of the scheduled load.

    skyprep check                      validate config, call test_connection (read-only)
    skyprep run [--destination ...]    load the account, build the models, write the report,
                                       print a summary
    skyprep models [--destination ...] rebuild the SQL models from what is loaded
    skyprep report [--output PATH]     write the HTML report of what earlier runs loaded

Output contract: the summary (or `OK: ...`) goes to stdout, progress to stderr, and a failure
is ONE line on stderr (`skyprep: error: <reason naming the fix>`) with a non-zero exit code
from `ExitCode` (docs/job.md). `--verbose` adds the traceback. The api_key is never printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from skyprep_source import ANALYTICS_DATASET_NAME, DATASET_NAME, PIPELINE_NAME, REPORT_FILE
from skyprep_source.exit_codes import ExitCode

COMMANDS = ("run", "check", "models", "report")


def requests_per_minute(value: str) -> int | None:
    """`--requests-per-minute`: a positive integer, or `off` for no client-side budget (the
    same values as the `requests_per_minute` setting)."""
    from skyprep_source.settings import InvalidSetting, parse_requests_per_minute

    try:
        return parse_requests_per_minute(value)
    except InvalidSetting:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'off', got {value!r}"
        ) from None


def version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("skyprep-source")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def resource_list(value: str) -> list[str]:
    """`--resources users,courses`: a comma list of resource names."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma list of resource names")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The `skyprep` command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--base-url", help="SkyPrep admin API base URL (default: sources.skyprep.base_url)"
    )
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log more, and show tracebacks on failure"
    )

    parser = argparse.ArgumentParser(
        prog="skyprep",
        description="Load a SkyPrep account with dlt. Config: .dlt/config.toml, "
        ".dlt/secrets.toml or SOURCES__SKYPREP__* environment variables.",
        epilog="Exit codes: "
        + ", ".join(f"{code.value} {code.name.lower()}" for code in ExitCode)
        + " (see docs/job.md).",
    )
    parser.add_argument("--version", action="version", version=f"skyprep {version()}")
    commands = parser.add_subparsers(
        dest="command", metavar="{run,check,models,report}", required=True
    )

    commands.add_parser(
        "check",
        parents=[common],
        help="validate the configuration and call test_connection (read-only)",
        description="Validate the configuration and call test_connection (read-only).",
    )

    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--destination",
        default="duckdb",
        help="any dlt destination name (default duckdb: ./<pipeline-name>.duckdb); "
        "credentials come from dlt config/env, e.g. DESTINATION__POSTGRES__CREDENTIALS",
    )
    where.add_argument(
        "--dataset", default=DATASET_NAME, help=f"raw dataset (default {DATASET_NAME})"
    )
    where.add_argument(
        "--analytics-dataset",
        default=ANALYTICS_DATASET_NAME,
        help=f"dataset of the models (default {ANALYTICS_DATASET_NAME})",
    )
    where.add_argument(
        "--pipeline-name",
        default=PIPELINE_NAME,
        help=f"dlt pipeline name (default {PIPELINE_NAME})",
    )
    where.add_argument(
        "--pipelines-dir",
        metavar="DIR",
        help="where the pipeline's local state lives (default: dlt's, under $DLT_DATA_DIR "
        "or ~/.dlt/pipelines)",
    )
    where.add_argument("-q", "--quiet", action="store_true", help="nothing on stderr but errors")

    run = commands.add_parser(
        "run",
        parents=[common, where],
        help="load the account into the destination and build the models",
        description="Load the account into the destination and build the models.",
    )
    run.add_argument(
        "--resources",
        type=resource_list,
        help="comma list of resources to load (default all), e.g. users,courses",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="drop the loaded tables and the incremental state first, then load everything",
    )
    run.add_argument("--no-models", action="store_true", help="do not build the SQL models")
    run.add_argument(
        "--requests-per-minute",
        type=requests_per_minute,
        default=argparse.SUPPRESS,
        metavar="N|off",
        help="client-side rate budget (default sources.skyprep.requests_per_minute, 100)",
    )
    run.add_argument(
        "--plan",
        action="store_true",
        help="print the call plan (API calls per resource, time at the rate budget) and stop",
    )
    run.add_argument(
        "--max-calls",
        type=int,
        metavar="N",
        help="fail before the first data call when the plan needs more than N API calls",
    )
    run.add_argument(
        "--report-output",
        default=REPORT_FILE,
        metavar="PATH",
        help=f"where the HTML report goes after the models (default {REPORT_FILE})",
    )
    run.add_argument("--no-report", action="store_true", help="do not write the HTML report")

    models = commands.add_parser(
        "models",
        parents=[common, where],
        help="rebuild the SQL models from the loaded data (no SkyPrep calls)",
        description="Rebuild the SQL models from the data already loaded, without reading "
        "SkyPrep (e.g. after a run that exited 7).",
    )
    models.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild the history marts from every load, not only the loads they lack",
    )

    report = commands.add_parser(
        "report",
        parents=[common, where],
        help="write the HTML compliance report of what earlier runs loaded",
        description="Write the self-contained HTML compliance report from the marts of the "
        "destination (nothing is loaded; see docs/job.md).",
    )
    report.add_argument(
        "--output",
        default=REPORT_FILE,
        metavar="PATH",
        help=f"the HTML file to write (default {REPORT_FILE})",
    )
    return parser


def source_options(args: argparse.Namespace) -> dict[str, Any]:
    """Explicit `skyprep()` arguments from the flags; the rest is resolved from dlt config."""
    options: dict[str, Any] = {}
    if args.base_url:
        options["base_url"] = args.base_url
    if "requests_per_minute" in args:
        options["requests_per_minute"] = args.requests_per_minute
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `skyprep` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    # the job (dlt, pyarrow) loads only now: `skyprep --help` answers without it
    from skyprep_source.job import (
        RunOptions,
        check_connection,
        configured_secrets,
        describe_failure,
        format_traceback,
        rebuild_models,
        report_of_destination,
        run_load,
    )

    quiet = bool(getattr(args, "quiet", False)) and not args.verbose
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO if args.verbose else logging.ERROR if quiet else logging.WARNING,
        format="[skyprep] %(levelname)s %(name)s: %(message)s",
    )
    if quiet:
        # dlt logs its retries (with tracebacks) itself; -q leaves stderr to the error line
        os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    options = source_options(args)
    try:
        if args.command == "check":
            print(check_connection(options), flush=True)
        elif args.command == "models":
            summary = rebuild_models(
                RunOptions(
                    destination=args.destination,
                    dataset_name=args.dataset,
                    analytics_dataset_name=args.analytics_dataset,
                    pipeline_name=args.pipeline_name,
                    pipelines_dir=args.pipelines_dir,
                    progress=None if quiet else sys.stderr,
                    full_refresh=args.full_refresh,
                )
            )
            print("\n".join(summary.lines()), flush=True)
        elif args.command == "report":
            result = report_of_destination(
                args.output,
                destination=args.destination,
                pipeline_name=args.pipeline_name,
                dataset_name=args.dataset,
                analytics_dataset=args.analytics_dataset,
                pipelines_dir=args.pipelines_dir,
            )
            print(f"report: {result}", flush=True)
            for section, note in result.notes.items():
                print(f"  {section}: {note}", flush=True)
        else:
            summary = run_load(
                RunOptions(
                    destination=args.destination,
                    dataset_name=args.dataset,
                    analytics_dataset_name=args.analytics_dataset,
                    pipeline_name=args.pipeline_name,
                    pipelines_dir=args.pipelines_dir,
                    resources=args.resources,
                    full_refresh=args.full_refresh,
                    build_models=not args.no_models,
                    source_options=options,
                    # a dry run prints the plan on stdout, once
                    progress=None if quiet or args.plan else sys.stderr,
                    max_calls=args.max_calls,
                    plan_only=args.plan,
                    report_path=None if args.no_report else args.report_output,
                )
            )
            print("\n".join(summary.lines()), flush=True)
            for line in summary.notices:  # held tables, skipped resources: exit 9 / 8
                print(f"skyprep {args.command}: attention: {line}", file=sys.stderr, flush=True)
            return int(summary.exit_code)
    except (Exception, KeyboardInterrupt) as error:
        secrets = configured_secrets(options)
        failure = describe_failure(error, secrets)
        if args.verbose:
            print(format_traceback(error, secrets), file=sys.stderr, end="")
        print(f"skyprep {args.command}: error: {failure.reason}", file=sys.stderr, flush=True)
        return int(failure.exit_code)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
