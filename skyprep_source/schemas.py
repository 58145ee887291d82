"""The fixed, typed schema of every entity the source loads (docs/internals.md §1 and §3).

A schema maps the API's field names to a *kind*; `normalize` turns each kind into one Arrow
type. Fields the API sends beyond these are kept too (typed from their JSON values).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

Kind = Literal["id", "int", "float", "decimal", "bool", "timestamp", "text", "json"]


@functools.cache
def _arrow_types() -> dict[str, Any]:
    # pyarrow is imported on first use, not with the catalogue (the CLI's --help stays cheap)
    import pyarrow as pa

    timestamp, money = pa.timestamp("us", tz="UTC"), pa.decimal128(18, 2)
    return {
        "TIMESTAMP_TYPE": timestamp,
        "MONEY_TYPE": money,
        "ARROW_TYPES": {
            "id": pa.int64(),
            "int": pa.int64(),
            "float": pa.float64(),
            "decimal": money,
            "bool": pa.bool_(),
            "timestamp": timestamp,
            "text": pa.string(),
            "json": pa.string(),  # serialised JSON text, hinted to dlt as data_type "json"
        },
    }


# TIMESTAMP_TYPE, MONEY_TYPE and ARROW_TYPES (kind -> Arrow type), built on first use
TIMESTAMP_TYPE: pa.DataType
MONEY_TYPE: pa.DataType
ARROW_TYPES: dict[str, pa.DataType]


def __getattr__(name: str) -> Any:
    if name not in ("TIMESTAMP_TYPE", "MONEY_TYPE", "ARROW_TYPES"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _arrow_types()[name]


# Arrow field metadata that marks a string column as JSON for the dlt hints
JSON_FIELD_METADATA = {b"skyprep_kind": b"json"}


@dataclass(frozen=True)
class EntitySchema:
    """The known fields of one entity, in the column order the tables get."""

    name: str
    fields: dict[str, Kind]

    def arrow_field(self, name: str) -> pa.Field:
        """The Arrow field of a known column."""
        kind = self.fields[name]
        import pyarrow as pa

        metadata = JSON_FIELD_METADATA if kind == "json" else None
        return pa.field(name, _arrow_types()["ARROW_TYPES"][kind], nullable=True, metadata=metadata)


def _fields(kind: Kind, *names: str) -> dict[str, Kind]:
    return dict.fromkeys(names, kind)


USERS = EntitySchema(
    "users",
    {
        "id": "id",
        **_fields("text", "first_name", "last_name", "username", "email", "card_no"),
        **_fields("text", "role", "status", "title", "cell", "work_phone", "address"),
        **_fields("timestamp", "created_at", "updated_at", "last_login_at"),
        **_fields("timestamp", "access_start_date", "access_end_date"),
        **_fields("text", "ca_0", "ca_1", "ca_2", "ca_3", "ca_4"),
    },
)

COURSES = EntitySchema(
    "courses",
    {
        "id": "id",
        "name": "text",
        "description": "text",
        "active": "bool",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "course_code": "text",
        "price": "decimal",
        "days_until_expiration": "int",
        "tags": "json",
        "course_items": "json",
    },
)

_PROGRESS_DATES = (
    "commencement_date",
    "completion_date",
    "expiration_date",
    "access_date",
    "deadline_date",
    "real_end_date",
    "real_start_date",
    "computed_deadline_date",
)

COURSE_PROGRESSES = EntitySchema(
    "course_progresses",
    {
        "id": "id",
        "status": "text",
        "days_until_deadline": "int",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "skip_prerequisites": "bool",
        "course_id": "id",
        "course_name": "text",
        "user_id": "id",
        "user_email": "text",
        "commencement_date": "timestamp",
        "completion_date": "timestamp",
        "last_course_item_id": "id",
        "percent_viewed": "float",
        "expiration_date": "timestamp",
        "expired": "bool",
        "access_date": "timestamp",
        "deadline_date": "timestamp",
        "override_dates": "bool",
        "real_end_date": "timestamp",
        "real_start_date": "timestamp",
        "certificate_view_link": "text",
        "computed_deadline_date": "timestamp",
        # the API's display strings ("06-Nov 2020"), kept as text beside the typed dates
        **_fields("text", *(f"formatted_{name}" for name in _PROGRESS_DATES)),
    },
)

PAYMENTS = EntitySchema(
    "payments",
    {
        "id": "id",
        **_fields("text", "model_type", "status", "transaction_number"),
        "amount": "decimal",
        "currency": "text",
        **_fields("text", "first_name", "last_name", "payer_email", "latest_ipn_data"),
        "payment_type": "text",
        "course_id": "id",
        "user_id": "id",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
)

SKILLS = EntitySchema(
    "skills",
    {
        "id": "id",
        **_fields("text", "name", "display_name", "description"),
        "competency_count": "int",
    },
)

COMPETENCIES = EntitySchema(
    "competencies",
    {
        "id": "id",
        **_fields("text", "name", "display_name", "description"),
        "skills": "json",
    },
)

USER_GROUPS = EntitySchema(
    "user_groups",
    {
        "id": "id",
        "name": "text",
        "description": "text",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "user_count": "int",
        "course_ids": "json",
    },
)

USER_GROUP_MEMBERS = EntitySchema("user_group_members", {"user_group_id": "id", "user_id": "id"})

SAVED_ADVANCED_REPORTS = EntitySchema(
    "saved_advanced_reports",
    {
        "id": "id",
        "saved_advanced_report_id": "id",
        "name": "text",
        "saved_report_type": "text",
        "model_type": "text",
        "created_at": "timestamp",
        "created_at_int": "int",
        "updated_at": "timestamp",
        "updated_at_int": "int",
        "report_params_digest": "text",
        "csv_url": "text",
        "xlsx_url": "text",
    },
)

# ---- the rest of the read API (issue #6) -----------------------------------------------------

LEARNING_PATHS = EntitySchema(
    "learning_paths",
    {
        "id": "id",
        "name": "text",
        "description": "text",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "course_ids": "json",
        "user_group_ids": "json",
    },
)

# bridges unpacked from learning_paths' id arrays (no call of their own)
LEARNING_PATH_COURSES = EntitySchema(
    "learning_path_courses", {"learning_path_id": "id", "course_id": "id"}
)
LEARNING_PATH_USER_GROUPS = EntitySchema(
    "learning_path_user_groups", {"learning_path_id": "id", "user_group_id": "id"}
)

INSTRUCTOR_LED_TRAININGS = EntitySchema(
    "instructor_led_trainings",
    {
        "id": "id",
        "name": "text",
        "description": "text",
        "course_id": "id",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
)

INSTRUCTOR_LED_TRAINING_TIMESLOTS = EntitySchema(
    "instructor_led_training_timeslots",
    {
        "id": "id",
        "instructor_led_training_id": "id",
        **_fields("text", "description", "location", "instructor"),
        "start_date": "timestamp",
        "end_date": "timestamp",
        "display_timezone": "text",
        "capacity": "int",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
)

INSTRUCTOR_LED_TRAINING_TIMESLOT_REGISTRATIONS = EntitySchema(
    "instructor_led_training_timeslot_registrations",
    {
        "id": "id",
        "instructor_led_training_timeslot_id": "id",
        "user_id": "id",
        "course_progress_id": "id",
        "course_id": "id",
        "status": "text",  # attendance: registered, attended, ...
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
)

MATERIALS = EntitySchema(
    "materials",
    {
        "id": "id",
        **_fields("text", "name", "material_type"),
        "file_size": "int",
        "url": "text",
        "created_at": "timestamp",
        "updated_at": "timestamp",
    },
)

# a power user is a user record plus its permissions (role, datasets), kept as JSON
POWER_USERS = EntitySchema("power_users", {**USERS.fields, "permissions": "json"})

USER_ROLES = EntitySchema("user_roles", {"id": "id", "name": "text"})

DATASETS = EntitySchema("datasets", {"id": "id", "name": "text"})

COMPETENCY_AWARDS = EntitySchema(
    "competency_awards",
    {
        "competency_id": "id",
        "user_id": "id",
        "user_display_name": "text",
        "created_at": "timestamp",  # when the user achieved the competency
    },
)

SKILL_LEADERBOARDS = EntitySchema(
    "skill_leaderboards",
    {
        "skill_id": "id",
        "user_id": "id",
        "rank": "int",  # 1 = the highest balance, in the API's order
        "user_display_name": "text",
        "balance": "int",
    },
)

PROGRAM = EntitySchema(
    "program",
    {"acct_key": "text", "id": "id", "name": "text", "created_at": "timestamp"},
)

PLATFORM_COUNT_TYPES = (
    "user_count",
    "admin_count",
    "learner_count",
    "course_count",
    "user_group_count",
)

PLATFORM_COUNTS = EntitySchema(
    "platform_counts",
    {"measured_at": "timestamp", **_fields("int", *PLATFORM_COUNT_TYPES)},
)

USER_GAMIFICATION_BALANCES = EntitySchema(
    "user_gamification_balances", {"user_id": "id", "gamification_balance": "int"}
)

USER_SKILL_BALANCES = EntitySchema(
    "user_skill_balances",
    {"user_id": "id", "skill_id": "id", "skill_name": "text", "balance": "int"},
)

USER_COMPETENCIES_ACHIEVED = EntitySchema(
    "user_competencies_achieved",
    {"user_id": "id", "competency_id": "id", "achieved_at": "timestamp"},
)

# get_user_courses: the courses a user is enrolled in (directly, through groups and bundles)
USER_COURSES = EntitySchema(
    "user_courses",
    {"user_id": "id", "course_id": "id", **{k: v for k, v in COURSES.fields.items() if k != "id"}},
)

COURSE_ITEM_PROGRESSES = EntitySchema(
    "course_item_progresses",
    {
        "course_id": "id",
        "user_id": "id",
        "course_item_id": "id",
        "course_progress_id": "id",
        "status": "text",
        "message": "text",
    },
)

MANAGER_PERMISSIONS = EntitySchema(
    "manager_permissions",
    {
        "user_group_id": "id",
        "user_id": "id",
        "id": "id",
        **_fields(
            "bool",
            "can_add_users",
            "can_receive_notifications",
            "can_edit_course_progress",
            "can_remove_users",
            "can_add_exisiting_users",  # sic: the API's spelling
            "can_manage_all_group_users_courses",
            "can_add_courses_to_user_group",
            "can_remove_courses_from_user_group",
            "can_edit_user_password",
        ),
        "user": "json",
        "user_group": "json",
    },
)

ENTITY_SCHEMAS: dict[str, EntitySchema] = {
    schema.name: schema
    for schema in (
        USERS,
        COURSES,
        COURSE_PROGRESSES,
        PAYMENTS,
        SKILLS,
        COMPETENCIES,
        USER_GROUPS,
        USER_GROUP_MEMBERS,
        SAVED_ADVANCED_REPORTS,
        LEARNING_PATHS,
        LEARNING_PATH_COURSES,
        LEARNING_PATH_USER_GROUPS,
        INSTRUCTOR_LED_TRAININGS,
        INSTRUCTOR_LED_TRAINING_TIMESLOTS,
        INSTRUCTOR_LED_TRAINING_TIMESLOT_REGISTRATIONS,
        MATERIALS,
        POWER_USERS,
        USER_ROLES,
        DATASETS,
        COMPETENCY_AWARDS,
        SKILL_LEADERBOARDS,
        PROGRAM,
        PLATFORM_COUNTS,
        USER_GAMIFICATION_BALANCES,
        USER_SKILL_BALANCES,
        USER_COMPETENCIES_ACHIEVED,
        USER_COURSES,
        COURSE_ITEM_PROGRESSES,
        MANAGER_PERMISSIONS,
    )
}
