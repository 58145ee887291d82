"""The scheduled load: read the account, load it, build the models, say what happened.

`skyprep run` and `pipelines/skyprep_pipeline.py` are thin shells around `run_load`;
`skyprep check` around `check_connection`. Every failure a user can meet becomes a
`JobFailure`: an exit code (`ExitCode`) and one line that names the fix and never the key.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, TextIO

import dlt
import requests
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.exceptions import (
    ConfigFieldMissingException,
    ConfigurationException,
    LookupTraces,
)
from dlt.common.destination.exceptions import (
    DestinationException,
    InvalidDestinationReference,
    UnknownDestinationModule,
)
from dlt.common.runtime.collector_base import Collector
from dlt.destinations.exceptions import DatabaseException
from dlt.pipeline.exceptions import PipelineStepFailed

from skyprep_source import DATASET_NAME, PIPELINE_NAME
from skyprep_source.errors import (
    SkyPrepAPIError,
    SkyPrepCredentialsError,
    SkyPrepError,
    SkyPrepRequestFailed,
)
from skyprep_source.models import DEFAULT_ANALYTICS_DATASET as ANALYTICS_DATASET_NAME
from skyprep_source.run_lock import PipelineLocked, run_lock

# The defaults are DESIGN.md's: pipeline `skyprep`, dataset `skyprep_data`, models in
# `skyprep_analytics`; with destination "duckdb" dlt names the file after the pipeline
# (./skyprep.duckdb), so one pipeline name per account keeps accounts apart.
# dlt's setting that deletes a load package's data files once loaded (see keep_no_loaded_files)
DELETE_LOADED_FILES = "load.delete_completed_jobs"

# Where each required setting of the source is set, for messages that name the fix.
SETTING_LOCATIONS: Mapping[str, str] = {
    "api_key": "SOURCES__SKYPREP__API_KEY (or api_key under [sources.skyprep] in .dlt/secrets.toml)",
    "acct_key": "SOURCES__SKYPREP__ACCT_KEY (or acct_key under [sources.skyprep] in .dlt/config.toml)",
    "base_url": "SOURCES__SKYPREP__BASE_URL (or base_url under [sources.skyprep] in .dlt/config.toml)",
}


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


class JobFailure(Exception):
    """A failure with its exit code and a one-line reason that names the fix."""

    def __init__(self, exit_code: ExitCode, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


@dataclass
class RunOptions:
    """What `skyprep run` was asked to do. `source_options` are explicit `skyprep()`
    arguments (base_url, requests_per_minute, ...); everything else comes from dlt config."""

    destination: Any = "duckdb"  # a dlt destination name or factory
    dataset_name: str = DATASET_NAME
    analytics_dataset_name: str = ANALYTICS_DATASET_NAME
    pipeline_name: str = PIPELINE_NAME
    resources: Sequence[str] | None = None
    full_refresh: bool = False
    build_models: bool = True
    pipelines_dir: str | None = None
    source_options: dict[str, Any] = field(default_factory=dict)
    progress: TextIO | None = None
    progress_period_s: float = 10.0
    max_calls: int | None = None  # fail before the first data call when the plan costs more
    plan_only: bool = False  # print the call plan and stop (`skyprep run --plan`)


@dataclass
class RunSummary:
    """What one run loaded: rows per table, API calls, time, and the models it built."""

    pipeline_name: str
    destination: str
    dataset_name: str
    rows: dict[str, int]
    seconds: float
    load_ids: list[str]
    calls: int | None = None
    models: Any = None  # skyprep_source.models.ModelsBuild when models were built
    models_note: str | None = None
    plan: Any = None  # skyprep_source.plan.CallPlan, made before the first data call
    plan_only: bool = False
    # what the source held back or skipped (retirement.RunReport), and the exit code it means
    notices: list[str] = field(default_factory=list)
    exit_code: int = 0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def lines(self) -> list[str]:
        """The human summary printed at the end of a run (or the plan of a dry run)."""
        if self.plan_only:
            return str(self.plan).splitlines()
        calls = f", {self.calls} API calls" if self.calls is not None else ""
        out = [
            f"read {self.total_rows} rows into {len(self.rows)} tables of "
            f"{self.destination}:{self.dataset_name} in {self.seconds:.1f}s{calls}"
        ]
        width = max((len(name) for name in self.rows), default=0)
        out += [f"  {name:<{width}}  {count:>10}" for name, count in sorted(self.rows.items())]
        if self.models is not None:
            skipped = f", {len(self.models.skipped)} skipped" if self.models.skipped else ""
            out.append(
                f"models: {len(self.models.built)} built in {self.models.dataset_name}{skipped}"
                f" (as of {self.models.as_of})"
            )
        elif self.models_note:
            out.append(f"models: {self.models_note}")
        out += [f"attention: {line}" for line in self.notices]
        return out


# ---- configuration -----------------------------------------------------------------------


def source_factory() -> Any:
    """The `skyprep` source factory (imported late: the CLI's --help stays fast)."""
    from skyprep_source.source import skyprep

    return skyprep


def resolve_source_config(source_options: Mapping[str, Any]) -> Any:
    """The source's configuration resolved exactly as `skyprep()` resolves it (same spec,
    same sections), with `source_options` as explicit values. Raises JobFailure(CONFIG)."""
    ref = source_factory().ref
    try:
        return resolve_configuration(
            ref.SPEC(),
            sections=("sources", ref.section, ref.name),
            explicit_value=dict(source_options),
        )
    except ConfigFieldMissingException as missing:
        raise config_missing_failure(missing) from missing


def config_missing_failure(missing: ConfigFieldMissingException) -> JobFailure:
    """`ConfigFieldMissingException` -> one line naming the env var / toml key to set."""
    if missing.spec_name == source_factory().ref.SPEC.__name__:
        fixes = [f"{name}: set {SETTING_LOCATIONS.get(name, name)}" for name in missing.fields]
        return JobFailure(ExitCode.CONFIG, "missing SkyPrep configuration; " + "; ".join(fixes))
    fixes = [
        f"{name}: set {env_key_of(missing.traces.get(name, [])) or name} "
        "(environment variable, or the same key in .dlt/secrets.toml)"
        for name in missing.fields
    ]
    return JobFailure(
        ExitCode.CONFIG, f"missing configuration of {missing.spec_name}; " + "; ".join(fixes)
    )


def env_key_of(traces: Sequence[Any]) -> str | None:
    """The environment variable dlt looked up for a missing field, without the pipeline-name
    prefix (`DESTINATION__POSTGRES__CREDENTIALS`, not `SKYPREP__DESTINATION__...`). For a
    missing nested configuration (credentials), the key of the configuration itself."""
    keys: list[str] = []
    for trace in traces:
        if isinstance(trace, LookupTraces):
            nested = next(iter(trace.traces.values()), [])
            key = env_key_of(nested)
            if key and "__" in key:
                keys.append(key.rsplit("__", 1)[0])
        elif "Environment" in str(trace.provider) and trace.key:
            keys.append(str(trace.key))
    sectioned = [key for key in keys if key.startswith(("DESTINATION__", "SOURCES__"))]
    return next(iter(sectioned + keys), None)


def configured_secrets(source_options: Mapping[str, Any]) -> list[str]:
    """Values that must never be printed: the api_key, whether explicit or from config."""
    secrets = [str(source_options["api_key"])] if source_options.get("api_key") else []
    try:
        api_key = resolve_source_config(source_options).api_key
    except Exception:  # nothing resolvable: nothing to hide beyond the explicit value
        return secrets
    if api_key:
        secrets.append(str(api_key))
    return secrets


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret replaced by ***."""
    from skyprep_source.client import redact_secret

    for secret in secrets:
        if secret and len(secret) >= 4:  # a 1-3 char "secret" would shred the message
            text = redact_secret(text, secret)  # raw, form-urlencoded and JSON-escaped
    return text


# ---- check ------------------------------------------------------------------------------


def check_connection(source_options: Mapping[str, Any] | None = None) -> str:
    """Validate the configuration and call `test_connection` through the source's client
    (read-only, one call, no retries beyond two attempts). Returns the OK line."""
    from skyprep_source.client import RateBudget, RetryPolicy, SkyPrepClient

    config = resolve_source_config(source_options or {})
    client = SkyPrepClient(
        config.api_key,
        config.acct_key,
        config.base_url,
        rate_budget=RateBudget(None),  # a single call cannot overrun the budget
        # a check should answer within seconds: one retry, short waits
        retry=RetryPolicy(max_attempts=2, backoff_max_s=5.0, max_retry_after_s=10.0),
        request_timeout=float(getattr(config, "request_timeout", 30.0) or 30.0),
    )
    try:
        with client:
            answer = client.call("test_connection")
    except SkyPrepRequestFailed as failed:
        raise JobFailure(
            ExitCode.API,
            f"SkyPrep at {client.base_url} did not answer test_connection (retryable errors "
            f"until the attempts ran out); check base_url ({SETTING_LOCATIONS['base_url']}) "
            "and the network",
        ) from failed
    if not (isinstance(answer, dict) and str(answer.get("message", "")).lower() == "success"):
        raise SkyPrepAPIError(
            "SkyPrep test_connection did not answer success; check base_url "
            f"({SETTING_LOCATIONS['base_url']})"
        )
    return f"OK: connected to {client.base_url} as {config.acct_key}"


# ---- run --------------------------------------------------------------------------------


def run_load(options: RunOptions) -> RunSummary:
    """Extract the account, load it into the destination, build the models: one run at a
    time per pipeline (a dry run, `plan_only`, takes no lock).

    Raises whatever failed; `describe_failure` turns it into a `JobFailure`.
    """
    if options.plan_only:
        return _run_load(options)
    with run_lock(_pipelines_dir(options), options.pipeline_name):
        return _run_load(options)


def _run_load(options: RunOptions) -> RunSummary:
    from skyprep_source.client import SkyPrepClient
    from skyprep_source.duckdb_destination import duckdb_destination

    started = time.monotonic()
    calls_before = SkyPrepClient.calls_in_process
    source = source_factory()(**options.source_options)
    if options.resources:
        unknown = sorted(set(options.resources) - set(source.resources.keys()))
        if unknown:
            raise JobFailure(
                ExitCode.USAGE,
                f"unknown resource(s) {', '.join(unknown)}; choose from "
                f"{', '.join(source.resources.keys())}",
            )
        source = source.with_resources(*options.resources)
    pipeline_args: dict[str, Any] = {
        "pipeline_name": options.pipeline_name,
        # the default, "duckdb", is DuckDB with its memory bounded (duckdb_destination)
        "destination": duckdb_destination()
        if options.destination == "duckdb"
        else options.destination,
        "dataset_name": options.dataset_name,
    }
    if options.pipelines_dir:
        pipeline_args["pipelines_dir"] = options.pipelines_dir
    if options.progress is not None:
        pipeline_args["progress"] = ProgressLines(options.progress, options.progress_period_s)
    # a dry run (--plan) creates nothing: it reads an existing pipeline only
    pipeline = (
        dlt.pipeline(**pipeline_args)
        if not options.plan_only or _pipeline_exists(options)
        else None
    )
    plan = plan_load(options, pipeline, source.name)
    if options.plan_only:
        return RunSummary(
            pipeline_name=options.pipeline_name,
            destination=str(options.destination),
            dataset_name=options.dataset_name,
            rows={},
            seconds=time.monotonic() - started,
            load_ids=[],
            plan=plan,
            plan_only=True,
        )
    assert pipeline is not None
    keep_no_loaded_files()
    finish_interrupted_run(pipeline, options.progress)
    # a subset must not drop the tables of resources it does not reload
    refresh = None
    if options.full_refresh:
        refresh = "drop_resources" if options.resources else "drop_sources"
    info = pipeline.run(source, refresh=refresh)
    info.raise_on_failed_jobs()
    summary = RunSummary(
        pipeline_name=pipeline.pipeline_name,
        destination=pipeline.destination.destination_name,
        dataset_name=pipeline.dataset_name,
        rows=loaded_rows(pipeline),
        seconds=0.0,
        load_ids=list(info.loads_ids),
        calls=SkyPrepClient.calls_in_process - calls_before,
        plan=plan,
    )
    if options.build_models:
        summary.models, summary.models_note = build_models_for(
            pipeline, options.analytics_dataset_name
        )
    else:
        summary.models_note = "skipped (--no-models)"
    summary.notices, summary.exit_code = source_outcome()
    summary.seconds = time.monotonic() - started
    return summary


def source_outcome() -> tuple[list[str], int]:
    """What the source held back (mass-retirement guard: RETIREMENT_HELD) or skipped
    (failing optional resources: PARTIAL) in this run, as lines and an exit code."""
    from skyprep_source.retirement import RunReport

    report = RunReport.latest()
    if report is None:
        return [], int(ExitCode.OK)
    code = ExitCode.OK
    if report.skipped:
        code = ExitCode.PARTIAL
    if report.held:
        code = ExitCode.RETIREMENT_HELD
    return report.lines(), int(code)


def plan_load(options: RunOptions, pipeline: Any = None, source_name: str = "skyprep") -> Any:
    """The run's call plan (skyprep_source.plan), printed to the progress stream; a plan
    above `options.max_calls` fails here, before the first data call.

    When `pipeline` has loaded before, the plan is priced from what its destination and
    state already know (rows per list, progresses per course, which lists re-check page 1);
    if they cannot be read, from the counts it asks for (the first run's estimate)."""
    from skyprep_source.plan import CallPlanExceeded, KnownFacts, known_facts, plan_run

    config = resolve_source_config(options.source_options)
    facts = KnownFacts()
    if pipeline is not None:
        # a full refresh drops the resources' state: the run pays as a first run does
        facts = known_facts(pipeline, source_name, config, with_states=not options.full_refresh)
    plan = plan_run(config, options.resources, **facts.as_kwargs())
    if options.progress is not None:
        for line in str(plan).splitlines():
            print(f"[skyprep] {line}", file=options.progress, flush=True)
    if not options.plan_only:
        try:
            plan.check(options.max_calls)
        except CallPlanExceeded as exceeded:
            raise JobFailure(ExitCode.CONFIG, str(exceeded)) from exceeded
    return plan


def _pipeline_exists(options: RunOptions) -> bool:
    """Whether the pipeline's working directory exists (it has run here before)."""
    import os

    return os.path.isdir(os.path.join(_pipelines_dir(options), options.pipeline_name))


def _pipelines_dir(options: RunOptions) -> str:
    """The directory holding the pipeline's working directory (dlt's default or the option)."""
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return options.pipelines_dir or get_dlt_pipelines_dir()


def finish_interrupted_run(pipeline: Any, progress: TextIO | None = None) -> None:
    """Finish, exactly once, the load packages a killed run left (skyprep_source.resume),
    so that this run then reads and loads its own night as usual."""
    from skyprep_source.resume import finish_pending_packages

    for recovery in finish_pending_packages(pipeline):
        if progress is not None:
            redone = (
                f"; reloaded {', '.join(recovery.redone_tables)} (half-loaded when it stopped)"
                if recovery.redone_tables
                else ""
            )
            print(
                f"[skyprep] finished load package {recovery.load_id} left by an interrupted "
                f"run{redone}",
                file=progress,
                flush=True,
            )


def keep_no_loaded_files() -> None:
    """Delete each load package's data files once it is loaded, unless the user decided.

    dlt keeps them by default (`load.delete_completed_jobs = false`), so a nightly job would
    add a full snapshot's files to the pipeline directory every night: ~120 MB per run for a
    1,000,000-progress account. The package's state and trace stay; the user's own
    `[load] delete_completed_jobs` (config, secrets or LOAD__DELETE_COMPLETED_JOBS) wins.
    """
    if dlt.config.get(DELETE_LOADED_FILES) is None:
        dlt.config[DELETE_LOADED_FILES] = True


def loaded_rows(pipeline: Any) -> dict[str, int]:
    """Rows this run wrote per data table (dlt's own bookkeeping tables left out)."""
    trace = pipeline.last_trace
    normalize = trace.last_normalize_info if trace else None
    counts = normalize.row_counts if normalize else {}
    return {name: int(n) for name, n in counts.items() if not name.startswith("_dlt")}


def build_models_for(pipeline: Any, dataset_name: str) -> tuple[Any, str | None]:
    """Build the SQL models if the models runner is installed; a failure is a JobFailure."""
    try:
        from skyprep_source.models import build_models
    except ImportError as missing:
        return None, f"not built (models runner unavailable: {missing})"
    try:
        return build_models(pipeline, dataset_name=dataset_name), None
    except Exception as failure:
        raise JobFailure(
            ExitCode.MODELS,
            f"data loaded, but building the models in {dataset_name} failed: "
            f"{_first_line(failure)}; re-run with --verbose, or skip them with --no-models",
        ) from failure


# ---- failures ---------------------------------------------------------------------------


def describe_failure(error: BaseException, secrets: Iterable[str] = ()) -> JobFailure:
    """Any exception of a run or a check -> exit code and one redacted line naming the fix."""
    failure = _classify(error)
    return JobFailure(failure.exit_code, redact(failure.reason, list(secrets)))


def _classify(error: BaseException) -> JobFailure:
    chain = list(_causes(error))
    for candidate in chain:
        if isinstance(candidate, JobFailure):
            return candidate
        if isinstance(candidate, KeyboardInterrupt):
            return JobFailure(ExitCode.INTERRUPTED, "interrupted; re-run to complete the load")
        if isinstance(candidate, ConfigFieldMissingException):
            return config_missing_failure(candidate)
        if isinstance(candidate, PipelineLocked):
            return JobFailure(ExitCode.LOCKED, str(candidate))
    for candidate in chain:
        if isinstance(candidate, SkyPrepCredentialsError):
            return JobFailure(ExitCode.CREDENTIALS, _first_line(candidate))
        if isinstance(candidate, SkyPrepError):
            return JobFailure(ExitCode.API, _first_line(candidate))
        if isinstance(candidate, requests.RequestException):
            return JobFailure(
                ExitCode.API,
                f"could not reach SkyPrep ({type(candidate).__name__}); check base_url "
                f"({SETTING_LOCATIONS['base_url']}) and the network",
            )
    for candidate in chain:
        if isinstance(candidate, (UnknownDestinationModule, InvalidDestinationReference)):
            name = getattr(candidate, "ref", None) or getattr(candidate, "refs", None)
            return JobFailure(
                ExitCode.CONFIG,
                f"unknown destination {name!r}; use a dlt destination name (duckdb, postgres, "
                "bigquery, snowflake, ...) or configure a named destination "
                "(DESTINATION__<NAME>__DESTINATION_TYPE)",
            )
    # a failure while syncing with or loading into the destination (connection refused, bad
    # credentials, a failed job) is the destination's, whatever library raised it
    step = error.step if isinstance(error, PipelineStepFailed) else None
    destination = _destination_name(error)
    env = f"DESTINATION__{destination.upper()}__CREDENTIALS" if destination else None
    for candidate in chain:
        if isinstance(candidate, (DestinationException, DatabaseException)) or step in (
            "sync",
            "load",
        ):
            # the root cause says what went wrong; dlt's wrappers only say where
            return JobFailure(
                ExitCode.LOAD,
                f"the destination {destination or ''} failed: {_first_line(chain[-1])}; check "
                f"that it is reachable and its credentials ({env or 'DESTINATION__<NAME>__CREDENTIALS'})",
            )
        if isinstance(candidate, (ConfigurationException, ValueError)):
            return JobFailure(ExitCode.CONFIG, f"invalid configuration: {_first_line(candidate)}")
    return JobFailure(
        ExitCode.FAILED,
        f"unexpected error {type(chain[-1]).__name__}: {_first_line(chain[-1])}; "
        "re-run with --verbose for the traceback",
    )


def _destination_name(error: BaseException) -> str | None:
    """The destination of the pipeline that failed, when dlt says which."""
    pipeline = getattr(error, "pipeline", None)
    destination = getattr(pipeline, "destination", None)
    name = getattr(destination, "destination_name", None)
    return str(name) if name else None


def _causes(error: BaseException) -> Iterable[BaseException]:
    """The error and what caused it, outermost first (dlt wraps a resource's error twice)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        wrapped = getattr(current, "exception", None)  # PipelineStepFailed keeps it here
        if isinstance(wrapped, BaseException) and id(wrapped) not in seen:
            current = wrapped
        else:
            current = current.__cause__ or current.__context__


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


def format_traceback(error: BaseException, secrets: Iterable[str]) -> str:
    """The full traceback (for --verbose), with secrets redacted."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return redact(text, list(secrets))


# ---- progress ---------------------------------------------------------------------------


class ProgressLines(Collector):
    """dlt progress as a few concise lines: rows per table while extracting (at most one line
    every `period_s` seconds), then one line per finished step."""

    _STEP_COUNTERS = frozenset({"Resources", "Files", "Jobs", "Items"})

    def __init__(self, stream: TextIO = sys.stderr, period_s: float = 10.0) -> None:
        self.stream = stream
        self.period_s = period_s
        self.step = ""
        self.rows: defaultdict[str, int] = defaultdict(int)
        self._started = 0.0
        self._last_line = 0.0

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        if name in self._STEP_COUNTERS or label or name.startswith("_dlt"):
            return
        self.rows[name] += inc
        now = time.monotonic()
        if now - self._last_line >= self.period_s:
            self._last_line = now
            self._write(f"{self._verb()} {now - self._started:.0f}s: {self._counts()}")

    def _start(self, step: str) -> None:
        self.rows = defaultdict(int)
        self._started = self._last_line = time.monotonic()

    def _stop(self) -> None:
        elapsed = time.monotonic() - self._started
        if self._verb() == "extract" and not self.rows:
            return  # dlt's second, state-only extract step: nothing to tell
        # the per-table counts follow in the summary: the done line only totals them
        totals = (
            f": {len(self.rows)} tables, {sum(self.rows.values())} rows"
            if self._verb() == "extract"
            else ""
        )
        self._write(f"{self._verb()} done in {elapsed:.1f}s{totals}")

    def _verb(self) -> str:
        return (self.step or "").split(" ", 1)[0].lower()

    def _counts(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in self.rows.items()) or "no rows yet"

    def _write(self, line: str) -> None:
        print(f"[skyprep] {line}", file=self.stream, flush=True)
