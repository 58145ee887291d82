"""The fixed, typed schema of every entity the source loads (docs/internals.md §1 and §3).

A schema maps the API's field names to a *kind*; `normalize` turns each kind into one Arrow
type. Fields the API sends beyond these are kept too (typed from their JSON values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

Kind = Literal["id", "int", "float", "decimal", "bool", "timestamp", "text", "json"]

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")
MONEY_TYPE = pa.decimal128(18, 2)

ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    "int": pa.int64(),
    "float": pa.float64(),
    "decimal": MONEY_TYPE,
    "bool": pa.bool_(),
    "timestamp": TIMESTAMP_TYPE,
    "text": pa.string(),
    "json": pa.string(),  # serialised JSON text, hinted to dlt as data_type "json"
}

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
        metadata = JSON_FIELD_METADATA if kind == "json" else None
        return pa.field(name, ARROW_TYPES[kind], nullable=True, metadata=metadata)


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
    )
}
