"""The exit codes of `skyprep` (docs/job.md): a module of their own, so the command line
lists them in `--help` without loading the job (dlt)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of `skyprep`; documented in docs/job.md."""

    OK = 0
    FAILED = 1  # unexpected error: re-run with --verbose for the traceback
    USAGE = 2  # bad command line (argparse uses 2 as well)
    CONFIG = 3  # missing or invalid configuration (keys, base_url, destination name)
    CREDENTIALS = 4  # SkyPrep refused the api_key/acct_key (HTML page, 401/403)
    API = 5  # SkyPrep unreachable, kept throttling/failing, or answered an error
    LOAD = 6  # the destination refused the load (connection, credentials, failed jobs)
    MODELS = 7  # data loaded, but building the SQL models failed
    PARTIAL = 8  # loaded, but optional resources failed and were skipped (tables untouched)
    RETIREMENT_HELD = 9  # loaded, but a table would retire too many rows: it retired none
    LOCKED = 10  # another run of the same pipeline is in progress (skyprep_source.run_lock)
    INTERRUPTED = 130  # Ctrl-C / SIGINT, the shell convention
