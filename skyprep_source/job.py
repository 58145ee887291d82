"""The scheduled load: read the account, load it, build the models, say what happened.

`skyprep run` and `pipelines/skyprep_pipeline.py` are thin shells around `run_load`;
`skyprep check` around `check_connection`. Every failure a user can meet becomes a
`JobFailure`: an exit code (`ExitCode`) and one line that names the fix and never the key.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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
from dlt.common.exceptions import MissingDependencyException
from dlt.common.runtime.collector_base import Collector
from dlt.destinations.exceptions import DatabaseException
from dlt.pipeline.exceptions import PipelineStepFailed

from skyprep_source import DATASET_NAME, PIPELINE_NAME, REPORT_FILE
from skyprep_source.errors import (
    SkyPrepAPIError,
    SkyPrepCredentialsError,
    SkyPrepError,
    SkyPrepRequestFailed,
)
from skyprep_source.exit_codes import ExitCode
from skyprep_source.models import DEFAULT_ANALYTICS_DATASET as ANALYTICS_DATASET_NAME
from skyprep_source.run_lock import PipelineLocked, run_lock
from skyprep_source.settings import InvalidSetting, check_settings

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
    course_progress_counts: Mapping[Any, int] | None = None  # rows per course, for the plan
    # write the HTML report here after the models (skyprep_source.report); None: no report
    report_path: str | None = None


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
    location: str | None = None  # the DuckDB file (absolute) or the destination's location
    pipelines_dir: str | None = None  # where the pipeline's local state lives
    changes: list[Any] | None = None  # skyprep_source.changes.TableChanges per table
    changes_note: str | None = None  # why the change table is missing
    seconds_by_step: dict[str, float] = field(default_factory=dict)
    report: Any = None  # skyprep_source.report.ReportResult when the report was written
    report_note: str | None = None

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def lines(self) -> list[str]:
        """The human summary printed at the end of a run (or the plan of a dry run)."""
        if self.plan_only:
            return str(self.plan).splitlines()
        from skyprep_source.changes import changes_lines

        calls = f", {self.calls} API calls" if self.calls is not None else ""
        out = [
            f"read {self.total_rows} rows into {len(self.rows)} tables of "
            f"{self.destination}:{self.dataset_name} in {self.seconds:.1f}s{calls}"
        ]
        if self.location:
            out.append(f"  data:  {self.location}")
        if self.pipelines_dir:
            out.append(f"  state: {os.path.join(self.pipelines_dir, self.pipeline_name)}")
        if self.seconds_by_step:
            out.append(
                "  time:  "
                + ", ".join(f"{step} {sec:.1f}s" for step, sec in self.seconds_by_step.items())
            )
        if self.changes is not None:
            out.append("changes in this load:")
            out += changes_lines(self.changes)
        else:
            width = max((len(name) for name in self.rows), default=0)
            out += [f"  {name:<{width}}  {count:>10}" for name, count in sorted(self.rows.items())]
            if self.changes_note:
                out.append(f"  (no change table: {self.changes_note})")
        out += models_lines(self.models, self.models_note)
        if self.report is not None:
            out.append(f"report: {self.report}")
        elif self.report_note:
            out.append(f"report: {self.report_note}")
        out += [f"attention: {line}" for line in self.notices]
        return out


def models_lines(models: Any, note: str | None = None) -> list[str]:
    """The models' line of a summary, and each skipped model with its reason."""
    if models is None:
        return [f"models: {note}"] if note else []
    skipped = f", {len(models.skipped)} skipped" if models.skipped else ""
    out = [
        f"models: {len(models.built)} built in {models.dataset_name}{skipped}"
        f" (as of {models.as_of})"
    ]
    if models.appended:
        out.append(f"  new loads appended to {', '.join(models.appended)}")
    out += [f"  skipped {name}: {reason}" for name, reason in sorted(models.skipped.items())]
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
        config = resolve_configuration(
            ref.SPEC(),
            sections=("sources", ref.section, ref.name),
            explicit_value=dict(source_options),
        )
    except ConfigFieldMissingException as missing:
        raise config_missing_failure(missing) from missing
    try:
        config.requests_per_minute = check_settings(
            config.api_key, config.acct_key, config.base_url, config.requests_per_minute
        )
    except InvalidSetting as invalid:
        raise JobFailure(ExitCode.CONFIG, str(invalid)) from invalid
    return config


def config_missing_failure(missing: ConfigFieldMissingException) -> JobFailure:
    """`ConfigFieldMissingException` -> one line naming the env var / toml key to set."""
    if missing.spec_name == source_factory().ref.SPEC.__name__:
        fixes = [f"{name}: set {SETTING_LOCATIONS.get(name, name)}" for name in missing.fields]
        return JobFailure(ExitCode.CONFIG, "missing SkyPrep configuration; " + "; ".join(fixes))
    fixes = []
    for name in missing.fields:
        traces = missing.traces.get(name, [])
        key = env_key_of(traces) or name
        lacking = lacking_parts(traces)
        if lacking:
            # e.g. a connection string without a password: the key IS set, say what it lacks
            fix = (
                f"{key} is set but has no {', '.join(lacking)}: add it, or set "
                f"{key}__{lacking[0].upper()}"
            )
            if "password" in lacking:
                fix += (
                    " (dlt requires a password even where the server trusts the connection; "
                    "any value does there, e.g. postgresql://user:any@host:5432/db)"
                )
            fixes.append(fix)
        else:
            fixes.append(
                f"{name}: set {key} (environment variable, or the same key in .dlt/secrets.toml)"
            )
    return JobFailure(
        ExitCode.CONFIG, f"missing configuration of {missing.spec_name}; " + "; ".join(fixes)
    )


def lacking_parts(traces: Sequence[Any]) -> list[str]:
    """The fields a nested configuration (credentials) still lacks when some of its fields
    were found, i.e. it was given but incomplete; [] when it was not given at all."""
    for trace in traces:
        if isinstance(trace, LookupTraces) and trace.resolved_fields_set:
            return sorted(trace.traces)
    return []


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
    with run_lock(pipelines_dir_of(options), options.pipeline_name):
        return _run_load(options)


def _run_load(options: RunOptions) -> RunSummary:
    from skyprep_source.client import SkyPrepClient

    started = time.monotonic()
    calls_before = SkyPrepClient.calls_in_process
    config = resolve_source_config(options.source_options)
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
    destination = job_destination(options.destination, options.pipeline_name)
    check_destination_driver(destination)
    progress = (
        ProgressLines(options.progress, options.progress_period_s)
        if options.progress is not None
        else None
    )
    pipeline_args: dict[str, Any] = {
        "pipeline_name": options.pipeline_name,
        "destination": destination,
        "dataset_name": options.dataset_name,
    }
    if options.pipelines_dir:
        pipeline_args["pipelines_dir"] = options.pipelines_dir
    if progress is not None:
        pipeline_args["progress"] = progress
    # a dry run (--plan) creates nothing: it reads an existing pipeline only
    pipeline = (
        dlt.pipeline(**pipeline_args)
        if not options.plan_only or _pipeline_exists(options)
        else None
    )
    location = None
    if pipeline is not None:
        location = check_state_location(pipeline, destination, record=not options.plan_only)
    check_reachable(config.base_url)
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
    if progress is not None:
        progress.planned_calls = plan.total_calls
        progress.calls_before = SkyPrepClient.calls_in_process
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
        location=location or destination_location(pipeline),
        pipelines_dir=pipeline.pipelines_dir,
        seconds_by_step=step_seconds(pipeline),
    )
    summary.changes, summary.changes_note = changes_of(pipeline, summary)
    if options.build_models:
        models_started = time.monotonic()
        summary.models, summary.models_note = build_models_for(
            pipeline, options.analytics_dataset_name, options.progress, options.full_refresh
        )
        summary.seconds_by_step["models"] = time.monotonic() - models_started
    else:
        summary.models_note = "skipped (--no-models)"
    if options.report_path:
        report_started = time.monotonic()
        summary.report, summary.report_note = write_report_for(pipeline, options, summary)
        summary.seconds_by_step["report"] = time.monotonic() - report_started
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


def rebuild_models(options: RunOptions) -> RunSummary:
    """`skyprep models`: build the SQL models from what is loaded, without reading SkyPrep."""
    started = time.monotonic()
    destination = job_destination(options.destination, options.pipeline_name)
    check_destination_driver(destination)
    if not _pipeline_exists(options):
        raise JobFailure(
            ExitCode.CONFIG,
            f"no pipeline {options.pipeline_name!r} in {pipelines_dir_of(options)}: run "
            "`skyprep run` first (or pass the --pipeline-name / --pipelines-dir it used)",
        )
    pipeline_args: dict[str, Any] = {
        "pipeline_name": options.pipeline_name,
        "destination": destination,
        "dataset_name": options.dataset_name,
    }
    if options.pipelines_dir:
        pipeline_args["pipelines_dir"] = options.pipelines_dir
    pipeline = dlt.pipeline(**pipeline_args)
    location = check_state_location(pipeline, destination, record=False)
    models, note = build_models_for(
        pipeline, options.analytics_dataset_name, options.progress, options.full_refresh
    )
    return RunSummary(
        pipeline_name=pipeline.pipeline_name,
        destination=pipeline.destination.destination_name,
        dataset_name=pipeline.dataset_name,
        rows={},
        seconds=time.monotonic() - started,
        load_ids=[],
        models=models,
        models_note=note,
        location=location or destination_location(pipeline),
        pipelines_dir=pipeline.pipelines_dir,
    )


# ---- where the data and the state are ------------------------------------------------------

# the pipeline's local state remembers the DuckDB file it loads (never synced to the data)
DUCKDB_FILE_STATE_KEY = "skyprep_duckdb_file"


def job_destination(destination: Any, pipeline_name: str) -> Any:
    """The destination a run loads: "duckdb" is DuckDB with its memory sized to the machine
    and its file resolved against the current directory (duckdb_destination)."""
    from skyprep_source.duckdb_destination import duckdb_destination

    if destination == "duckdb":
        return duckdb_destination(pipeline_name=pipeline_name)
    return destination


def check_destination_driver(destination: Any) -> None:
    """Fail (exit 3) before reading SkyPrep when the destination's driver is not installed,
    naming the extra to install."""
    from dlt.common.destination import Destination

    try:
        reference = Destination.from_reference(destination)
        if reference is not None:
            reference.client_class  # noqa: B018 (importing the client imports its driver)
    except ImportError as missing:  # dlt's MissingDependencyException is an ImportError too
        raise JobFailure(ExitCode.CONFIG, missing_driver_reason(destination)) from missing
    except (UnknownDestinationModule, InvalidDestinationReference):
        raise
    except Exception:  # anything else shows up, better explained, when the run starts
        return


# destinations with an extra of skyprep-source (the others: dlt's own extra)
DESTINATION_EXTRAS = frozenset({"postgres", "snowflake", "bigquery"})


def missing_driver_reason(destination: Any) -> str:
    name = str(getattr(destination, "destination_type", destination)).rsplit(".", 1)[-1]
    extra = (
        f'pip install "skyprep-source[{name}]"'
        if name in DESTINATION_EXTRAS
        else f'pip install "dlt[{name}]"'
    )
    return f"the {name} destination's driver is not installed: {extra}"


def duckdb_file_of(destination: Any) -> str | None:
    """The DuckDB file a destination factory writes (absolute), None for other destinations."""
    if getattr(destination, "destination_type", None) != "dlt.destinations.duckdb":
        return None
    credentials = getattr(destination, "config_params", {}).get("credentials")
    database = getattr(credentials, "database", credentials)
    if isinstance(database, (str, os.PathLike)) and not os.fspath(database).startswith(":"):
        return os.path.abspath(os.fspath(database))
    return None


def check_state_location(pipeline: Any, destination: Any, *, record: bool = True) -> str | None:
    """The DuckDB file this run writes; a run whose state belongs to another file stops.

    The pipeline's state (incremental cursors, which lists were read in full) is kept per
    pipeline name in the pipelines directory, not beside the data. A run from another
    directory would find the first directory's state and load into its own file as if that
    file had the history, so the file is recorded in the state and compared here."""
    database = duckdb_file_of(destination)
    if database is None:
        return None
    try:
        recorded = pipeline.get_local_state_val(DUCKDB_FILE_STATE_KEY)
    except KeyError:
        recorded = None
    if recorded is None and not pipeline.first_run and pipeline.default_schema_name:
        # a state written before the file was recorded: dlt's default file in the directory
        # where the pipeline was first created
        try:
            initial = pipeline.get_local_state_val("initial_cwd")
        except KeyError:
            initial = None
        legacy = os.path.join(initial, f"{pipeline.pipeline_name}.duckdb") if initial else None
        if legacy and os.path.exists(legacy):
            recorded = os.path.abspath(legacy)
    if (
        recorded
        and os.path.abspath(recorded) != database
        and not _file_holds_state(database, pipeline)
    ):
        state_dir = os.path.join(pipeline.pipelines_dir, pipeline.pipeline_name)
        raise JobFailure(
            ExitCode.CONFIG,
            f"the pipeline state in {state_dir} belongs to {recorded}, not {database}; run "
            "from the directory of that file, give this one its own state (--pipelines-dir "
            "or DLT_DATA_DIR, or another --pipeline-name), or delete that state directory",
        )
    if record and (recorded is None or os.path.abspath(recorded) != database):
        pipeline.set_local_state_val(DUCKDB_FILE_STATE_KEY, database)
    return database


def _file_holds_state(database: str, pipeline: Any) -> bool:
    """Whether the DuckDB file holds this very state (its last stored version and hash): the
    file and its state were copied or moved together, so the history is the file's own."""
    import duckdb

    if not os.path.exists(database):
        return False
    state = pipeline.state
    try:
        with duckdb.connect(database, read_only=True) as connection:
            row = connection.execute(
                f'select version, version_hash from "{pipeline.dataset_name}"._dlt_pipeline_state'
                " where pipeline_name = ? order by version desc limit 1",
                [pipeline.pipeline_name],
            ).fetchone()
    except duckdb.Error:  # no such dataset or table: not this pipeline's file
        return False
    return row is not None and (row[0], row[1]) == (
        state.get("_state_version"),
        state.get("_version_hash"),
    )


def destination_location(pipeline: Any) -> str | None:
    """Where a non-file destination keeps the data (host/database), without credentials."""
    try:
        config = pipeline.destination_client().config
        credentials = getattr(config, "credentials", None)
        if credentials is not None and hasattr(credentials, "to_url"):
            return str(credentials.to_url().render_as_string(hide_password=True))
        return str(getattr(config, "data_location", lambda: None)() or "") or None
    except Exception:  # the location is information only
        return None


def pipelines_dir_of(options: RunOptions) -> str:
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return options.pipelines_dir or get_dlt_pipelines_dir()


def check_reachable(base_url: str, timeout_s: float = 10.0) -> None:
    """Fail at once (exit 5, naming base_url) when nothing listens at `base_url`'s host and
    port: a refused connection or an unknown host at the first contact is a wrong address,
    not a hiccup worth a minute of retries. Skipped behind a proxy (the proxy connects)."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(str(base_url))
    host = parts.hostname
    if not host or urllib.request.getproxies().get(parts.scheme):
        return
    if urllib.request.proxy_bypass(host) is False and urllib.request.getproxies().get("all"):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except (ConnectionRefusedError, socket.gaierror) as refused:
        why = (
            "connection refused" if isinstance(refused, ConnectionRefusedError) else "unknown host"
        )
        raise JobFailure(
            ExitCode.API,
            f"nothing answers at {base_url} ({why}); check base_url "
            f"({SETTING_LOCATIONS['base_url']}) and the network",
        ) from refused
    except OSError:  # a timeout or a route problem: the client's retries decide
        return


def step_seconds(pipeline: Any) -> dict[str, float]:
    """Seconds of the extract, normalize and load steps of the pipeline's last run."""
    trace = pipeline.last_trace
    out: dict[str, float] = {}
    for step in getattr(trace, "steps", None) or ():
        if step.step in ("extract", "normalize", "load") and step.finished_at:
            seconds = (step.finished_at - step.started_at).total_seconds()
            out[step.step] = out.get(step.step, 0.0) + seconds
    return out


def changes_of(pipeline: Any, summary: RunSummary) -> tuple[list[Any] | None, str | None]:
    """The run's change table (new / updated / retired / unchanged per table)."""
    from skyprep_source.changes import pipeline_changes

    if not summary.load_ids:
        return None, "nothing was loaded"
    try:
        return pipeline_changes(pipeline, summary.load_ids[-1], summary.rows), None
    except Exception as failure:  # the summary must not fail a run that loaded
        return None, f"could not read it ({_first_line(failure)})"


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
    if options.course_progress_counts:
        facts.course_progress_counts = dict(options.course_progress_counts)
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
    return os.path.isdir(os.path.join(pipelines_dir_of(options), options.pipeline_name))


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


def build_models_for(
    pipeline: Any, dataset_name: str, progress: TextIO | None = None, full_refresh: bool = False
) -> tuple[Any, str | None]:
    """Build the SQL models if the models runner is installed; a failure is a JobFailure.
    `full_refresh` rebuilds the incremental (history) marts from every load."""
    try:
        from skyprep_source.models import build_models
    except ImportError as missing:
        return None, f"not built (models runner unavailable: {missing})"
    started = time.monotonic()
    if progress is not None:
        print(f"[skyprep] models: building in {dataset_name}", file=progress, flush=True)
    try:
        models = build_models(pipeline, dataset_name=dataset_name, full_refresh=full_refresh)
    except Exception as failure:
        if is_out_of_memory(failure):
            reason = out_of_memory_reason("building the models", failure)
            raise JobFailure(ExitCode.MODELS, reason) from failure
        raise JobFailure(
            ExitCode.MODELS,
            f"data loaded, but building the models in {dataset_name} failed: "
            f"{_first_line(failure)}; re-run with --verbose, or skip them with --no-models "
            "(`skyprep models` builds them alone)",
        ) from failure
    if progress is not None:
        skipped = f", {len(models.skipped)} skipped" if models.skipped else ""
        appended = f" ({len(models.appended)} appended to)" if models.appended else ""
        print(
            f"[skyprep] models done in {time.monotonic() - started:.1f}s: "
            f"{len(models.built)} built{appended}{skipped}",
            file=progress,
            flush=True,
        )
    return models, None


def is_out_of_memory(error: BaseException) -> bool:
    from skyprep_source.duckdb_destination import is_out_of_memory as duckdb_out_of_memory

    return duckdb_out_of_memory(error)


def out_of_memory_reason(doing: str, error: BaseException) -> str:
    """One line for DuckDB running out of memory: what ran out, and the setting to raise."""
    from skyprep_source.duckdb_destination import MEMORY_SETTING

    used = ""
    for candidate in _causes(error):
        text = str(candidate)
        if "Out of Memory Error" in text and "(" in text:
            used = " (" + text.rsplit("(", 1)[-1].split(")", 1)[0] + ")"
            break
    return (
        f"DuckDB ran out of memory while {doing}{used}; raise its memory_limit, e.g. "
        f"{MEMORY_SETTING}, or run on a machine with more memory (`skyprep models` then "
        "rebuilds the models alone)"
    )


def report_of_destination(
    output: str | os.PathLike[str] = REPORT_FILE,
    *,
    destination: Any = "duckdb",
    pipeline_name: str = "skyprep",
    dataset_name: str = "skyprep_data",
    analytics_dataset: str = ANALYTICS_DATASET_NAME,
    pipelines_dir: str | None = None,
) -> Any:
    """`skyprep report`: the report of what earlier runs loaded, without loading anything.

    The pipeline is opened as `skyprep run` opens it (same name, destination, datasets). On
    DuckDB, a database file that is not there is an error naming the fix, not a new empty file.
    """
    from skyprep_source.report import build_report

    destination = job_destination(destination, pipeline_name)
    check_destination_driver(destination)
    pipeline_args: dict[str, Any] = {
        "pipeline_name": pipeline_name,
        "destination": destination,
        "dataset_name": dataset_name,
    }
    if pipelines_dir:
        pipeline_args["pipelines_dir"] = pipelines_dir
    pipeline = dlt.pipeline(**pipeline_args)
    # the DuckDB file `skyprep run` loads from here (a state of another file stops, as there)
    database = check_state_location(pipeline, destination, record=False)
    if database is not None and not os.path.exists(database):
        raise JobFailure(
            ExitCode.CONFIG,
            f"no DuckDB database at {database}: run `skyprep run` first (from the same "
            "directory), or set DESTINATION__DUCKDB__CREDENTIALS to the database's path",
        )
    return build_report(pipeline, output, analytics_dataset=analytics_dataset)


def write_report_for(
    pipeline: Any, options: RunOptions, summary: RunSummary
) -> tuple[Any, str | None]:
    """Write the HTML report after the models. The data is loaded and the models are built
    by now: a report that cannot be written is said in the summary, not a failed run."""
    if summary.models is None:
        return None, "not written (the models were not built)"
    from skyprep_source.report import build_report

    try:
        account = resolve_source_config(options.source_options).acct_key
        return build_report(
            pipeline,
            options.report_path or "",
            analytics_dataset=options.analytics_dataset_name,
            account=account,
        ), None
    except Exception as failure:
        return None, f"not written: {_first_line(failure)}; run `skyprep report` to retry"


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
    if is_out_of_memory(error):
        failed_step = (
            str(error.step or "load") if isinstance(error, PipelineStepFailed) else "loading"
        )
        return JobFailure(
            ExitCode.LOAD,
            out_of_memory_reason(
                f"the {failed_step} step" if failed_step != "loading" else failed_step, error
            ),
        )
    for candidate in chain:
        if isinstance(candidate, MissingDependencyException):
            return JobFailure(
                ExitCode.CONFIG, missing_driver_reason(_destination_name(error) or "destination")
            )
        if isinstance(candidate, InvalidSetting):
            return JobFailure(ExitCode.CONFIG, _first_line(candidate))
    for candidate in chain:
        if isinstance(candidate, SkyPrepCredentialsError):
            return JobFailure(ExitCode.CREDENTIALS, _first_line(candidate))
        if isinstance(candidate, SkyPrepRequestFailed) and "base_url" not in str(candidate):
            return JobFailure(
                ExitCode.API,
                f"{_first_line(candidate)}; check base_url ({SETTING_LOCATIONS['base_url']}) "
                "and the network",
            )
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
    """dlt progress as short lines a person can follow.

    While extracting, at most one line every `period_s` seconds: API calls made of those
    planned, rows so far, the resource being read, elapsed time and an ETA from the calls'
    pace; then one line per step (normalize, load) when it starts and when it is done. On a
    terminal the extract line is rewritten in place; otherwise each is a plain line."""

    _STEP_COUNTERS = frozenset({"Resources", "Files", "Jobs", "Items"})

    def __init__(self, stream: TextIO = sys.stderr, period_s: float = 10.0) -> None:
        self.stream = stream
        self.period_s = period_s
        self.step = ""
        self.rows: defaultdict[str, int] = defaultdict(int)
        self.current = ""
        self.planned_calls: int | None = None
        self.calls_before = 0
        self.jobs = 0
        self._started = 0.0
        self._last_line = 0.0
        self._live = False  # a line rewritten in place is on the terminal
        try:
            self.tty = bool(stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def calls(self) -> int:
        from skyprep_source.client import SkyPrepClient

        return SkyPrepClient.calls_in_process - self.calls_before

    def update(
        self,
        name: str,
        inc: int = 1,
        total: int | None = None,
        inc_total: int | None = None,
        message: str | None = None,
        label: str | None = None,
    ) -> None:
        if name == "Jobs" and not label:
            self.jobs += inc
        if name in self._STEP_COUNTERS or label or name.startswith("_dlt"):
            return
        self.rows[name] += inc
        self.current = name
        now = time.monotonic()
        if self._verb() == "extract" and now - self._last_line >= self.period_s:
            self._last_line = now
            self._write(self.extract_line(now - self._started), live=True)

    def extract_line(self, elapsed: float) -> str:
        """`extract 40s: 812/1,984 calls (41%), 826,313 rows, reading course_progresses,
        ETA ~58s`"""
        calls = self.calls()
        planned = self.planned_calls
        if planned:
            share = min(calls / planned, 1.0)
            done = f"{calls:,}/{planned:,} calls ({share:.0%})"
        else:
            done = f"{calls:,} calls"
        line = (
            f"extract {elapsed:.0f}s: {done}, {sum(self.rows.values()):,} rows, "
            f"reading {self.current or '...'}"
        )
        if planned and calls:
            remaining = max(planned - calls, 0) * elapsed / calls
            line += f", ETA ~{_short_duration(remaining)}" if calls < planned else ", ETA soon"
        return line

    def _start(self, step: str) -> None:
        self.rows = defaultdict(int)
        self.jobs = 0
        self.current = ""
        self._started = self._last_line = time.monotonic()
        if self._verb() in ("normalize", "load"):
            self._write(f"{self._verb()}: started")

    def _stop(self) -> None:
        elapsed = time.monotonic() - self._started
        verb = self._verb()
        if verb == "extract" and not self.rows:
            return  # dlt's second, state-only extract step: nothing to tell
        if verb == "extract":
            calls = f", {self.calls():,} calls" if self.calls_before or self.planned_calls else ""
            totals = f": {len(self.rows)} tables, {sum(self.rows.values()):,} rows{calls}"
        elif verb == "load" and self.jobs:
            totals = f": {self.jobs} jobs"
        else:
            totals = ""
        self._write(f"{verb} done in {elapsed:.1f}s{totals}")

    def _verb(self) -> str:
        return (self.step or "").split(" ", 1)[0].lower()

    def _write(self, line: str, live: bool = False) -> None:
        text = f"[skyprep] {line}"
        if self.tty:
            end = "" if live else "\n"
            self.stream.write(f"\r\033[K{text}{end}")
            self.stream.flush()
            self._live = live
        else:
            print(text, file=self.stream, flush=True)


def _short_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
