"""The catalogue: one declaration per table, and everything else derives from it.

A `TableSpec` says what a table is: its route, schema and key, how it is kept (its `kind`),
the table whose records it fans out over (`parent`), the `skyprep()` argument that creates it
(`enabled_by`), how its rows are unpacked from the answer, and how its cost is priced. From
`TABLES`, and only from it:

- `source.skyprep` builds the resources (one builder per kind, `resource_builders.py`);
- `plan.plan_run` prices a run (by kind and parent);
- `READ_ROUTES`, the client's read-only allow-list, is derived (plus `EXTRA_READ_ROUTES`);
- the route tables of docs/routes.md are generated (`routes_doc.py`; a test fails when the
  committed doc is stale).

A new per-user route is one entry here and its schema in `schemas.py`. Imports nothing but
the schemas (no dlt, no HTTP, no pyarrow at import time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from skyprep_source import schemas
from skyprep_source.schemas import EntitySchema

ROW_HASH = "_row_hash"
# the scd2 scope of a complete snapshot: it may retire any current row absent from it
WHOLE_TABLE = "1 = 1"

# How a table is kept (and so which builder makes its resource and how a run prices it):
# - snapshot:   the route lists every record; each run is a complete snapshot, loaded as scd2
#               (unchanged rows untouched, changed rows versioned, absent rows retired);
# - window:     the route lists a recent window only (payments, timeslots); absent rows outside
#               it are not retired;
# - fan_out:    one call per record of `parent` (members per group, awards per competency);
# - per_user:   one call per user, opt-in (`enabled_by="per_user_resources"`);
# - derived:    rows unpacked from another table's records or answers: no call of its own;
# - one_record: the route answers one object, loaded as a one-row scd2 snapshot (program);
# - history:    one row per run, appended (platform_counts);
# - download:   one file per record of `parent`, each its own table, replaced (saved reports);
# - report:     async reports rendered on request, each its own table, replaced.
Kind = Literal[
    "snapshot",
    "window",
    "fan_out",
    "per_user",
    "derived",
    "one_record",
    "history",
    "download",
    "report",
]

# kinds whose route is a list paged through once per run
LIST_KINDS: frozenset[str] = frozenset({"snapshot", "window"})
# a table without a typed schema of its own (one table per file: saved and async reports)
NO_SCHEMA = EntitySchema("", {})


@dataclass(frozen=True)
class TableSpec:
    """How one table is read from the API, written to the destination and priced.

    Attributes beyond the obvious:
        parent: the table whose records this one fans out over or is unpacked from (dlt
            extracts the parent too; the plan prices it when it is not selected).
        parent_when: settings under which the parent feeds it (default: always).
        enabled_by: the `skyprep()` argument that creates it; None: always created. For
            `per_user_resources` the table's name must be listed in it.
        enabled_by_default: its `enabled_by` argument is on unless turned off (the table
            is a default resource, not an opt-in one).
        id_param: the route's parameter naming the parent's record (`user_id`, ...).
        unpack: where the rows are in each answer (documentation, and the unpacker's name).
        answers: what one call answers: an `object`, or a `list` (paged; each record a row).
        id_as: the column a listed record's `id` is loaded as (a list of courses per user:
            `course_id`), so the key says what it is.
        written_by: the resource that writes this table when it has none of its own.
        per: the noun of one call (`1 get_skill per skill`).
        counted_by: the `get_data` data type that answers its row count (plan).
        probed: read whole at plan time to count it (a short list that sets a fan-out).
        calls: calls per run of a table with a fixed count (one_record, history).
        builder: the builder of a table whose resource is a special case (`source.BUILDERS`;
            default: the builder of its kind).
        cost_model: a special pricing of the plan (`_Planner.cost_<name>`), for the tables
            whose calls depend on settings more than on a parent's rows.
        confirm: (single-record route, its id parameter): how a record missing from the
            snapshot is confirmed gone before it is retired.
        kept, calls_doc, route_doc: docs/routes.md's cells, when the derived text is not enough.
    """

    name: str
    route: str
    schema: EntitySchema
    kind: Kind = "snapshot"
    primary_key: tuple[str, ...] = ("id",)
    params: Mapping[str, Any] = field(default_factory=dict)
    parent: str | None = None
    parent_when: Mapping[str, Any] = field(default_factory=dict)
    enabled_by: str | None = None
    enabled_by_default: bool = False
    id_param: str | None = None
    unpack: str | None = None
    answers: Literal["object", "list"] = "object"
    id_as: str | None = None
    written_by: str | None = None
    per: str | None = None
    counted_by: str | None = None
    probed: bool = False
    calls: int = 1
    cost_model: str | None = None
    confirm: tuple[str, str] | None = None
    builder: str | None = None
    kept: str = ""
    calls_doc: str | None = None
    route_doc: str | None = None

    @property
    def resource(self) -> str:
        """The dlt resource that writes this table (its own name unless `written_by`)."""
        return self.written_by or self.name

    @property
    def opt_in(self) -> bool:
        """Created only when its argument asks for it (it costs a call per user or record)."""
        return self.enabled_by is not None and not self.enabled_by_default

    @property
    def json_columns(self) -> list[str]:
        """The schema's columns that hold JSON (hinted to dlt as `json`)."""
        return [name for name, kind in self.schema.fields.items() if kind == "json"]

    def write_disposition(self, destination_scope: str | None = None) -> Any:
        """dlt's write disposition for this table."""
        if self.kind in ("download", "report"):
            return {"disposition": "replace"}
        if self.kind == "history":
            return {"disposition": "append"}
        disposition: dict[str, Any] = {
            "disposition": "merge",
            "strategy": "scd2",
            # a content hash as the row version: an unchanged record keeps its one version
            "row_version_column_name": ROW_HASH,
        }
        if destination_scope:
            disposition["destination_scope"] = destination_scope
        return disposition


def _specs(*specs: TableSpec) -> dict[str, TableSpec]:
    return {spec.name: spec for spec in specs}


# In the order the source creates the resources.
TABLES: dict[str, TableSpec] = _specs(
    # ---- complete snapshots of the list routes -----------------------------------------
    TableSpec(
        "users",
        "get_users",
        schemas.USERS,
        counted_by="user_count",
        confirm=("get_user", "user_id"),
    ),
    TableSpec(
        "courses",
        "get_courses",
        schemas.COURSES,
        counted_by="course_count",
        confirm=("get_course", "course_id"),
    ),
    TableSpec(
        "skills", "get_skills", schemas.SKILLS, probed=True, confirm=("get_skill", "skill_id")
    ),
    TableSpec(
        "competencies",
        "get_competencies",
        schemas.COMPETENCIES,
        probed=True,
        confirm=("get_competency", "competency_id"),
    ),
    TableSpec(
        "user_groups",
        "get_user_groups",
        schemas.USER_GROUPS,
        counted_by="user_group_count",
        confirm=("get_user_group", "user_group_id"),
    ),
    TableSpec(
        "saved_advanced_reports",
        "get_saved_advanced_reports",
        schemas.SAVED_ADVANCED_REPORTS,
        probed=True,
    ),
    TableSpec(
        "learning_paths",
        "get_learning_paths",
        schemas.LEARNING_PATHS,
        confirm=("get_learning_path", "learning_path_id"),
        kept="scd2 snapshot; `course_ids`, `user_group_ids` as JSON",
    ),
    TableSpec(
        "instructor_led_trainings",
        "get_instructor_led_trainings",
        schemas.INSTRUCTOR_LED_TRAININGS,
        confirm=("get_instructor_led_training", "instructor_led_training_id"),
    ),
    TableSpec("materials", "get_materials", schemas.MATERIALS),
    TableSpec(
        "power_users",
        "get_power_users",
        schemas.POWER_USERS,
        kept="scd2 snapshot; `permissions` kept as JSON",
    ),
    TableSpec("user_roles", "get_user_roles", schemas.USER_ROLES),
    TableSpec("datasets", "get_datasets", schemas.DATASETS),
    # ---- fan-outs and windows over the lists above -------------------------------------
    TableSpec(
        "course_progresses",
        "get_course_progresses",
        schemas.COURSE_PROGRESSES,
        kind="fan_out",
        parent="courses",
        # account-wide, the progresses are one list: courses do not feed it
        parent_when={"course_progress_mode": "per_course"},
        id_param="course_id",
        per="course",
        cost_model="course_progresses",
        confirm=("get_course_progress", "course_progress_id"),
        kept="scd2 snapshot (docs/source.md)",
        builder="course_progresses",
    ),
    TableSpec(
        "user_group_members",
        "get_user_group",
        schemas.USER_GROUP_MEMBERS,
        kind="fan_out",
        primary_key=("user_group_id", "user_id"),
        parent="user_groups",
        id_param="user_group_id",
        unpack="users",
        per="user group",
        builder="user_group_members",
    ),
    TableSpec(
        "payments",
        "get_payments",
        schemas.PAYMENTS,
        kind="window",
        id_param="created_after_days_ago",
        kept="scd2 over a window",
        builder="payments",
    ),
    TableSpec(
        "saved_reports",
        "get_saved_advanced_report",
        NO_SCHEMA,
        kind="download",
        primary_key=(),
        parent="saved_advanced_reports",
        enabled_by="saved_reports",
        enabled_by_default=True,
        id_param="format=csv",
        per="changed report",
        kept="replaced",
        route_doc="`get_saved_advanced_report` (`format=csv`)",
        builder="saved_reports",
    ),
    TableSpec(
        "learning_path_courses",
        "get_learning_paths",
        schemas.LEARNING_PATH_COURSES,
        kind="derived",
        primary_key=("learning_path_id", "course_id"),
        parent="learning_paths",
        unpack="course_ids",
    ),
    TableSpec(
        "learning_path_user_groups",
        "get_learning_paths",
        schemas.LEARNING_PATH_USER_GROUPS,
        kind="derived",
        primary_key=("learning_path_id", "user_group_id"),
        parent="learning_paths",
        unpack="user_group_ids",
    ),
    TableSpec(
        "instructor_led_training_timeslots",
        "get_instructor_led_training_timeslots",
        schemas.INSTRUCTOR_LED_TRAINING_TIMESLOTS,
        kind="window",
        id_param="start_date`, `end_date",
        probed=True,
        kept="scd2 over a date window (below)",
        builder="timeslots",
    ),
    TableSpec(
        "instructor_led_training_timeslot_registrations",
        "get_instructor_led_training_timeslot_registrations",
        schemas.INSTRUCTOR_LED_TRAINING_TIMESLOT_REGISTRATIONS,
        kind="fan_out",
        parent="instructor_led_training_timeslots",
        id_param="instructor_led_training_timeslot_id",
        per="timeslot in the window",
        kept="scd2 per timeslot re-read; `status` is the attendance",
        builder="timeslot_registrations",
    ),
    TableSpec(
        "competency_awards",
        "get_competency",
        schemas.COMPETENCY_AWARDS,
        kind="fan_out",
        primary_key=("competency_id", "user_id"),
        parent="competencies",
        id_param="competency_id",
        unpack="details.activity_awards",
        per="competency",
        kept="scd2 snapshot; `created_at` = when it was achieved",
        builder="details",
    ),
    TableSpec(
        "skill_leaderboards",
        "get_skill",
        schemas.SKILL_LEADERBOARDS,
        kind="fan_out",
        primary_key=("skill_id", "user_id"),
        parent="skills",
        id_param="skill_id",
        unpack="details.leaderboard",
        per="skill",
        kept="scd2 snapshot; `rank` in the API's order",
        builder="details",
    ),
    TableSpec(
        "program",
        "get_program",
        schemas.PROGRAM,
        kind="one_record",
        primary_key=("acct_key",),
        kept="scd2, one row",
    ),
    TableSpec(
        "platform_counts",
        "get_data",
        schemas.PLATFORM_COUNTS,
        kind="history",
        primary_key=("measured_at",),
        calls=len(schemas.PLATFORM_COUNT_TYPES),
        kept="appended: one row per run, the account's size over time",
        route_doc="`get_data` (`data_type` = "
        + ", ".join(f"`{t}`" for t in schemas.PLATFORM_COUNT_TYPES)
        + ")",
    ),
    # ---- opt-in: one call per user or per record ---------------------------------------
    TableSpec(
        "user_gamification_balances",
        "get_user_gamification_balance",
        schemas.USER_GAMIFICATION_BALANCES,
        kind="per_user",
        primary_key=("user_id",),
        parent="users",
        enabled_by="per_user_resources",
        id_param="user_id",
        unpack="the object",
        per="user",
    ),
    TableSpec(
        "user_skill_balances",
        "get_user_skill_balances_and_competencies",
        schemas.USER_SKILL_BALANCES,
        kind="per_user",
        primary_key=("user_id", "skill_id"),
        parent="users",
        enabled_by="per_user_resources",
        id_param="user_id",
        unpack="skill_balances",
        per="user",
    ),
    TableSpec(
        # the same calls as user_skill_balances: its `competencies_achived` (sic) arrays
        "user_competencies_achieved",
        "get_user_skill_balances_and_competencies",
        schemas.USER_COMPETENCIES_ACHIEVED,
        kind="derived",
        primary_key=("user_id", "competency_id"),
        parent="users",
        enabled_by="per_user_resources",
        id_param="user_id",
        unpack="competencies_achived",
        written_by="user_skill_balances",
        calls_doc="(same calls)",
        kept="loaded with `user_skill_balances`",
    ),
    TableSpec(
        "user_courses",
        "get_user_courses",
        schemas.USER_COURSES,
        kind="per_user",
        primary_key=("user_id", "course_id"),
        parent="users",
        enabled_by="per_user_resources",
        id_param="user_id",
        unpack="each course of the list",
        answers="list",
        id_as="course_id",
        per="user",
    ),
    TableSpec(
        "course_item_progresses",
        "get_course_item_progress",
        schemas.COURSE_ITEM_PROGRESSES,
        kind="fan_out",
        primary_key=("course_id", "user_id", "course_item_id"),
        enabled_by="course_item_progress_course_ids",
        per="enrolled user × course item",
        cost_model="course_item_progresses",
        kept="scd2 scoped to those courses",
        route_doc="`get_course` (items), `get_course_progresses` (enrollments), then "
        "`get_course_item_progress` (`course_id`, `user_id`, `course_item_id`)",
        builder="course_item_progresses",
    ),
    TableSpec(
        "manager_permissions",
        "get_manager_permissions_from_user_group",
        schemas.MANAGER_PERMISSIONS,
        kind="fan_out",
        primary_key=("user_group_id", "user_id"),
        enabled_by="manager_permission_pairs",
        id_param="user_id`, `user_group_id",
        per="pair",
        cost_model="manager_permissions",
        kept="a pair that is not a manager (404) has no row; `can_*` flags are BOOLEAN",
        builder="manager_permissions",
    ),
    TableSpec(
        "async_reports",
        "generate_async_report",
        NO_SCHEMA,
        kind="report",
        primary_key=(),
        enabled_by="async_reports",
        per="report",
        cost_model="async_reports",
        kept="replaced on each run (below)",
        route_doc="`generate_async_report`, `get_async_report`, then the report's CSV",
    ),
)

# Reads that feed no table of their own: `skyprep check`, records confirmed before they are
# retired (`confirm`), the items of `course_item_progresses`' courses, async report polls.
# `generate_async_report` / `get_async_report` / `get_report` render reports from existing
# data: they create a report job, never touch users, courses or progress.
EXTRA_READ_ROUTES: frozenset[str] = frozenset(
    {
        "test_connection",
        "get_user",
        "get_course",
        "get_course_progress",
        "get_learning_path",
        "get_instructor_led_training",
        "get_instructor_led_training_timeslot",
        "get_user_course_status",
        "get_user_group_enrollments_for_user",
        "get_report",
        "get_async_report",
    }
)

# The client's read-only allow-list: every route of the catalogue, and the reads above.
READ_ROUTES: frozenset[str] = frozenset(
    {spec.route for spec in TABLES.values()}
    | {spec.confirm[0] for spec in TABLES.values() if spec.confirm}
    | EXTRA_READ_ROUTES
)

# the opt-in per-user tables with a resource of their own (`per_user_resources=[...]`)
PER_USER_RESOURCES: tuple[str, ...] = tuple(
    spec.name
    for spec in TABLES.values()
    if spec.enabled_by == "per_user_resources" and spec.written_by is None
)
OPT_IN_RESOURCES: tuple[str, ...] = tuple(spec.name for spec in TABLES.values() if spec.opt_in)
SNAPSHOT_RESOURCES: tuple[str, ...] = tuple(
    spec.name for spec in TABLES.values() if spec.kind == "snapshot"
)


def resource_specs() -> list[TableSpec]:
    """The specs with a resource of their own, in the order the source creates them."""
    return [spec for spec in TABLES.values() if spec.written_by is None]


def is_enabled(spec: TableSpec, setting: Any) -> bool:
    """Whether `skyprep()` creates `spec`'s resource, given the value of its `enabled_by`
    argument (ignored when the table is always created)."""
    if spec.enabled_by is None:
        return True
    if spec.enabled_by == "per_user_resources":
        return spec.name in (setting or ())
    return bool(setting)
