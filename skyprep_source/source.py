"""The `skyprep` dlt source: the table of contents of what a run reads.

The resources are the catalogue's (`catalogue.TABLES`): each table with a resource of its own
whose argument enables it is built by the builder its kind (or its `builder`) names in
`BUILDERS`. Every resource pages through one shared `SkyPrepClient`, turns each page into a
typed Arrow table (`arrow_items`), stamps it with a content hash (`_row_hash`) and hands it to
dlt, which keeps the history with `scd2`: a re-run without upstream changes rewrites nothing, a
changed record gets a new version, a record missing from a *complete* snapshot is retired. Any
failed call raises, so a run that could not read everything loads nothing (and retires nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.extract.resource import DltResource

from skyprep_source import account_resources as account
from skyprep_source import core_resources as core
from skyprep_source.account_resources import ReadApiOptions, read_api_options
from skyprep_source.async_reports import async_reports_resource
from skyprep_source.catalogue import TABLES, TableSpec, is_enabled, resource_specs
from skyprep_source.client import DEFAULT_BASE_URL, RateBudget, RetryPolicy, SkyPrepClient
from skyprep_source.normalize import start_run_warnings
from skyprep_source.pii import PiiPolicy, set_policy
from skyprep_source.retirement import RetirementPolicy, RunReport
from skyprep_source.settings import check_settings


class _JsonHintNotice(logging.Filter):
    """Drops dlt's per-page warning that our `json` column hints override Arrow's `text`.

    JSON travels in Arrow as text (dlt has no Arrow JSON type); the hint is the intent, so
    the warning would only repeat for every page of every run.
    """

    prefixes = tuple(
        f"In resource: {name}, when merging arrow schema with dlt schema" for name in TABLES
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


logging.getLogger("dlt").addFilter(_JsonHintNotice())
logger = logging.getLogger("skyprep_source")


@dlt.source(name="skyprep", max_table_nesting=0)
def skyprep(
    api_key: str = dlt.secrets.value,
    acct_key: str = dlt.config.value,
    base_url: str = DEFAULT_BASE_URL,
    requests_per_minute: str | int | None = 100,
    concurrency: int = 1,
    page_size: int = 1000,
    course_progress_mode: Literal["per_course", "account_wide"] = "per_course",
    course_ids: Sequence[int] | None = None,
    payments_lookback_days: int = 7,
    payments_full_read_days: int | None = 7,
    saved_reports: bool = True,
    request_timeout: float = 60.0,
    max_attempts: int = 6,
    backoff_base_s: float = 1.0,
    backoff_max_s: float = 60.0,
    rate_window_s: float = 60.0,
    verify_paging: bool = False,
    retire_max_share: float = 0.10,
    retire_floor: int = 50,
    max_confirm_calls: int = 500,
    all_or_nothing: bool = False,
    timeslots_lookback_days: int = 30,
    timeslots_horizon_days: int = 730,
    per_user_resources: Sequence[str] | None = None,
    course_item_progress_course_ids: Sequence[int] | None = None,
    manager_permission_pairs: Sequence[Sequence[int]] | None = None,
    async_reports: Sequence[Any] | None = None,
    async_report_timeout_s: float = 900.0,
    async_report_poll_s: float = 2.0,
    pii: str = "keep",
    pii_salt: TSecretStrValue | None = None,
    run_deadline_s: float | None = None,
) -> list[DltResource]:
    """Read a SkyPrep account (read-only) as typed tables.

    Args:
        api_key: the account's API key (secret: `sources.skyprep.api_key`).
        acct_key: the platform domain, e.g. `acme.skyprepapp.com`.
        base_url: the admin API's base URL.
        requests_per_minute: the rate budget shared by every resource; `off` (or None) turns
            it off. (Typed `str | int` so that dlt passes `off` from TOML or the environment
            through; `settings.parse_requests_per_minute` refuses anything else.)
        concurrency: calls in flight at once (the vendor asks for 1).
        page_size: rows asked per page (`per_page`); the client adapts to a server cap.
        course_progress_mode: `per_course` (one list per course, as the reference shows) or
            `account_wide` (one list without `course_id`).
        course_ids: read progresses of these courses only; other courses' rows stay as they
            are (never retired by this run).
        payments_lookback_days: days re-read before the last payment seen, so recent status
            changes (a pending payment settling, a quick refund) are caught.
        payments_full_read_days: every this many days, payments are read in full instead of
            in the window, so a status change on an older payment (a late refund) is caught
            too; None: the window only (such changes are then never seen).
        saved_reports: download each saved advanced report's CSV when it changed.
        request_timeout: seconds per HTTP call.
        max_attempts: attempts per call before the run fails.
        backoff_base_s: first retry delay (doubling up to `backoff_max_s`) when the server
            gives no Retry-After.
        backoff_max_s: the longest retry delay.
        rate_window_s: the window of the rate budget (60 s: "per minute").
        verify_paging: look at page 1 again after a list that took several pages, and
            re-read it if it moved. Off by default: confirm-before-retire already keeps a
            record that slid past the pager (docs/source.md §3).
        retire_max_share: a snapshot missing more than this share of a table's current rows
            (and more than `retire_floor` rows) retires none of them this run; the job exits
            with RETIREMENT_HELD (9). Raise it for a run that really deletes that much.
        retire_floor: missing rows always allowed to be confirmed and retired.
        max_confirm_calls: a table with more missing rows than this retires none of them
            (each missing row costs one call to its single-record route).
        all_or_nothing: fail the run when any resource fails (default: a failing resource
            outside users, courses and course_progresses is skipped; exit PARTIAL, 8).
        timeslots_lookback_days: days of instructor-led timeslots re-read before the last
            run's date (attendance is marked after the session).
        timeslots_horizon_days: how far ahead scheduled timeslots are read.
        per_user_resources: opt-in tables that cost one call per user each: the catalogue's
            tables with `enabled_by="per_user_resources"` (docs/routes.md lists them).
        course_item_progress_course_ids: opt-in `course_item_progresses` for these courses
            (one call per enrolled user and course item).
        manager_permission_pairs: opt-in `manager_permissions` for these
            (user_id, user_group_id) pairs (one call each).
        async_reports: report types to render with `generate_async_report`, each a name or
            (name, params), e.g. `["all_users", ("single_course", {"course_id": 5})]`; each
            loads as `report__<type>[__<param>_<value>]` (docs/routes.md).
        async_report_timeout_s: how long one async report may take before the run fails.
        async_report_poll_s: the first wait between status polls (doubling, at most 30 s).
        pii: personal data (e-mails, usernames, names, phones, addresses, card numbers, payer
            names and e-mails, the same columns of report CSVs): `keep`, `hash` (keyed
            HMAC-SHA256 with `pii_salt`, stable across runs) or `drop`; applied before dlt.
        pii_salt: the secret key of `hash` (`sources.skyprep.pii_salt` in .dlt/secrets.toml).
        run_deadline_s: fail the run (loading nothing) once it has spent this many seconds
            calling SkyPrep, counted from its first call; None: no bound.
    """
    rate_limit = check_settings(api_key, acct_key, base_url, requests_per_minute)
    report = RunReport.start()
    start_run_warnings()  # one warning per untyped column and run
    set_policy(PiiPolicy(pii, pii_salt))
    policy = RetirementPolicy(retire_max_share, retire_floor, max_confirm_calls, all_or_nothing)
    client = SkyPrepClient(
        api_key,
        acct_key,
        base_url,
        # shared with the job's call plan (and any other client of this account in-process)
        rate_budget=RateBudget.for_account(base_url, acct_key, rate_limit, rate_window_s),
        retry=RetryPolicy(max_attempts, backoff_base_s, backoff_max_s),
        request_timeout=request_timeout,
        page_size=page_size,
        concurrency=concurrency,
        verify_paged_lists=verify_paging,
        run_deadline_s=run_deadline_s,
    )
    options = read_api_options(
        timeslots_lookback_days,
        timeslots_horizon_days,
        per_user_resources,
        course_item_progress_course_ids,
        manager_permission_pairs,
    )
    run = Build(
        client,
        report,
        policy,
        options,
        settings={
            "course_progress_mode": course_progress_mode,
            "course_ids": course_ids,
            "concurrency": concurrency,
            "payments_lookback_days": payments_lookback_days,
            "payments_full_read_days": payments_full_read_days,
            "saved_reports": saved_reports,
            "async_reports": async_reports,
            "async_report_timeout_s": async_report_timeout_s,
            "async_report_poll_s": async_report_poll_s,
        },
    )
    account.use_run(report, policy)
    return [run.build(spec) for spec in resource_specs() if is_enabled(spec, run.setting(spec))]


# ---- the builders: one per kind, and the special cases by name -----------------------------


@dataclass
class Build:
    """What every builder gets: the run's client, report, retirement policy and settings,
    and the resources built so far (a fan-out finds its parent there)."""

    client: SkyPrepClient
    report: RunReport
    policy: RetirementPolicy
    options: ReadApiOptions
    settings: Mapping[str, Any]
    built: dict[str, DltResource] = field(default_factory=dict)

    def setting(self, spec: TableSpec) -> Any:
        """The value of the argument that enables `spec` (None: always created)."""
        name = spec.enabled_by
        if name is None:
            return None
        if hasattr(self.options, name):
            return getattr(self.options, name)
        return self.settings[name]

    def parent(self, spec: TableSpec) -> DltResource:
        assert spec.parent is not None, spec.name
        return self.built[spec.parent]

    def build(self, spec: TableSpec) -> DltResource:
        resource = BUILDERS[spec.builder or spec.kind](spec, self)
        self.built[spec.name] = resource
        return resource


Builder = Callable[[TableSpec, Build], DltResource]

BUILDERS: dict[str, Builder] = {
    # generic, by kind
    "snapshot": lambda spec, b: core.snapshot_resource(b.client, spec, b.report, b.policy),
    "derived": lambda spec, b: account.bridge_resource(b.parent(spec), spec),
    "per_user": lambda spec, b: account.per_user_resource(b.client, spec, b.parent(spec)),
    "one_record": lambda spec, b: account.program_resource(b.client, spec),
    "history": lambda spec, b: account.platform_counts_resource(b.client, spec),
    "report": lambda spec, b: async_reports_resource(
        b.client,
        b.settings["async_reports"],
        b.settings["async_report_timeout_s"],
        b.settings["async_report_poll_s"],
    ),
    # special cases, named by their spec's `builder`
    "course_progresses": lambda spec, b: core.course_progresses_resource(
        b.client,
        b.built["courses"],
        b.settings["course_progress_mode"],
        b.settings["course_ids"],
        b.settings["concurrency"],
        b.report,
        b.policy,
    ),
    "user_group_members": lambda spec, b: core.user_group_members_resource(
        b.client, b.parent(spec), b.report, b.policy
    ),
    "payments": lambda spec, b: core.payments_resource(
        b.client,
        b.settings["payments_lookback_days"],
        b.settings["payments_full_read_days"],
        b.report,
        b.policy,
    ),
    "saved_reports": lambda spec, b: core.saved_report_downloads_resource(
        b.client, b.parent(spec), b.report, b.policy
    ),
    "timeslots": lambda spec, b: account.timeslots_resource(b.client, b.options),
    "timeslot_registrations": lambda spec, b: account.timeslot_registrations_resource(
        b.client, b.parent(spec)
    ),
    "details": lambda spec, b: account.details_resource(b.client, spec, b.parent(spec)),
    "course_item_progresses": lambda spec, b: account.course_item_progresses_resource(
        b.client, b.options.course_item_progress_course_ids
    ),
    "manager_permissions": lambda spec, b: account.manager_permissions_resource(
        b.client, b.options.manager_permission_pairs
    ),
}
