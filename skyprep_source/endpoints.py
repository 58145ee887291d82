"""The catalogue: one declaration per resource — route, parameters, key, schema, strategy.

Adding a list route of the API is one `Endpoint(...)` line in `ENDPOINTS` (plus its schema in
`schemas.py`): `source.py` turns every catalogue entry with `strategy="snapshot"` into a
resource. Resources fed by another resource (progresses per course, members per group,
report downloads) are declared here too and wired in `source.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from skyprep_source import schemas
from skyprep_source.schemas import EntitySchema

ROW_HASH = "_row_hash"

Strategy = Literal[
    "snapshot", "window", "per_parent", "download", "one_record", "derived", "history"
]


@dataclass(frozen=True)
class Endpoint:
    """How one table is read from the API and written to the destination.

    - `snapshot`: the route lists every record; each run is a complete snapshot, loaded as
      scd2 (unchanged rows untouched, changed rows versioned, absent rows retired).
    - `window`: the route lists only a recent window (payments); scd2 that never retires rows
      merely absent from the window.
    - `per_parent`: one call per record of a parent resource (members per group).
    - `download`: one file per record of a parent resource (saved report CSVs), replaced.
    - `one_record`: the route answers one object, loaded as a one-row scd2 snapshot (program).
    - `derived`: rows unpacked from a parent resource's records, no call of its own.
    - `history`: one row per run, appended (platform_counts: the account's size over time).

    `opt_in` endpoints cost one call per user or per record and are read only when asked for.
    """

    resource: str
    route: str
    schema: EntitySchema
    strategy: Strategy = "snapshot"
    primary_key: tuple[str, ...] = ("id",)
    params: Mapping[str, Any] = field(default_factory=dict)
    paged: bool = True
    opt_in: bool = False

    def write_disposition(self, destination_scope: str | None = None) -> Any:
        """dlt's write disposition for this endpoint's table."""
        if self.strategy == "download":
            return {"disposition": "replace"}
        if self.strategy == "history":
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


ENDPOINTS: dict[str, Endpoint] = {
    endpoint.resource: endpoint
    for endpoint in (
        Endpoint("users", "get_users", schemas.USERS),
        Endpoint("courses", "get_courses", schemas.COURSES),
        Endpoint("course_progresses", "get_course_progresses", schemas.COURSE_PROGRESSES),
        Endpoint("payments", "get_payments", schemas.PAYMENTS, strategy="window"),
        Endpoint("skills", "get_skills", schemas.SKILLS),
        Endpoint("competencies", "get_competencies", schemas.COMPETENCIES),
        Endpoint("user_groups", "get_user_groups", schemas.USER_GROUPS),
        Endpoint(
            "user_group_members",
            "get_user_group",
            schemas.USER_GROUP_MEMBERS,
            strategy="per_parent",
            primary_key=("user_group_id", "user_id"),
            paged=False,
        ),
        Endpoint(
            "saved_advanced_reports", "get_saved_advanced_reports", schemas.SAVED_ADVANCED_REPORTS
        ),
        # the rest of the read API (wired in account_resources.py; docs/routes.md)
        Endpoint("learning_paths", "get_learning_paths", schemas.LEARNING_PATHS),
        Endpoint(
            "learning_path_courses",
            "get_learning_paths",
            schemas.LEARNING_PATH_COURSES,
            strategy="derived",
            primary_key=("learning_path_id", "course_id"),
        ),
        Endpoint(
            "learning_path_user_groups",
            "get_learning_paths",
            schemas.LEARNING_PATH_USER_GROUPS,
            strategy="derived",
            primary_key=("learning_path_id", "user_group_id"),
        ),
        Endpoint(
            "instructor_led_trainings",
            "get_instructor_led_trainings",
            schemas.INSTRUCTOR_LED_TRAININGS,
        ),
        Endpoint(
            "instructor_led_training_timeslots",
            "get_instructor_led_training_timeslots",
            schemas.INSTRUCTOR_LED_TRAINING_TIMESLOTS,
            strategy="window",
        ),
        Endpoint(
            "instructor_led_training_timeslot_registrations",
            "get_instructor_led_training_timeslot_registrations",
            schemas.INSTRUCTOR_LED_TRAINING_TIMESLOT_REGISTRATIONS,
            strategy="per_parent",
        ),
        Endpoint("materials", "get_materials", schemas.MATERIALS),
        Endpoint("power_users", "get_power_users", schemas.POWER_USERS),
        Endpoint("user_roles", "get_user_roles", schemas.USER_ROLES),
        Endpoint("datasets", "get_datasets", schemas.DATASETS),
        Endpoint(
            "competency_awards",
            "get_competency",
            schemas.COMPETENCY_AWARDS,
            strategy="per_parent",
            primary_key=("competency_id", "user_id"),
            paged=False,
        ),
        Endpoint(
            "skill_leaderboards",
            "get_skill",
            schemas.SKILL_LEADERBOARDS,
            strategy="per_parent",
            primary_key=("skill_id", "user_id"),
            paged=False,
        ),
        Endpoint(
            "program",
            "get_program",
            schemas.PROGRAM,
            strategy="one_record",
            primary_key=("acct_key",),
            paged=False,
        ),
        Endpoint(
            "platform_counts",
            "get_data",
            schemas.PLATFORM_COUNTS,
            strategy="history",
            primary_key=("measured_at",),
            paged=False,
        ),
        Endpoint(
            "user_gamification_balances",
            "get_user_gamification_balance",
            schemas.USER_GAMIFICATION_BALANCES,
            strategy="per_parent",
            primary_key=("user_id",),
            paged=False,
            opt_in=True,
        ),
        Endpoint(
            "user_skill_balances",
            "get_user_skill_balances_and_competencies",
            schemas.USER_SKILL_BALANCES,
            strategy="per_parent",
            primary_key=("user_id", "skill_id"),
            paged=False,
            opt_in=True,
        ),
        Endpoint(
            # the same calls as user_skill_balances: its `competencies_achived` arrays
            "user_competencies_achieved",
            "get_user_skill_balances_and_competencies",
            schemas.USER_COMPETENCIES_ACHIEVED,
            strategy="derived",
            primary_key=("user_id", "competency_id"),
            paged=False,
            opt_in=True,
        ),
        Endpoint(
            "course_item_progresses",
            "get_course_item_progress",
            schemas.COURSE_ITEM_PROGRESSES,
            strategy="per_parent",
            primary_key=("course_id", "user_id", "course_item_id"),
            paged=False,
            opt_in=True,
        ),
        Endpoint(
            "manager_permissions",
            "get_manager_permissions_from_user_group",
            schemas.MANAGER_PERMISSIONS,
            strategy="per_parent",
            primary_key=("user_group_id", "user_id"),
            paged=False,
            opt_in=True,
        ),
    )
}

OPT_IN_RESOURCES: tuple[str, ...] = tuple(
    name for name, endpoint in ENDPOINTS.items() if endpoint.opt_in
)

# course_progresses is a snapshot too, but read per course (see source.py)
SNAPSHOT_RESOURCES: tuple[str, ...] = tuple(
    name
    for name, endpoint in ENDPOINTS.items()
    if endpoint.strategy == "snapshot" and name != "course_progresses"
)
