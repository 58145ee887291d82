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

Strategy = Literal["snapshot", "window", "per_parent", "download"]


@dataclass(frozen=True)
class Endpoint:
    """How one table is read from the API and written to the destination.

    - `snapshot`: the route lists every record; each run is a complete snapshot, loaded as
      scd2 (unchanged rows untouched, changed rows versioned, absent rows retired).
    - `window`: the route lists only a recent window (payments); scd2 that never retires rows
      merely absent from the window.
    - `per_parent`: one call per record of a parent resource (members per group).
    - `download`: one file per record of a parent resource (saved report CSVs), replaced.
    """

    resource: str
    route: str
    schema: EntitySchema
    strategy: Strategy = "snapshot"
    primary_key: tuple[str, ...] = ("id",)
    params: Mapping[str, Any] = field(default_factory=dict)
    paged: bool = True

    def write_disposition(self, destination_scope: str | None = None) -> Any:
        """dlt's write disposition for this endpoint's table."""
        if self.strategy == "download":
            return {"disposition": "replace"}
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
    )
}

# course_progresses is a snapshot too, but read per course (see source.py)
SNAPSHOT_RESOURCES: tuple[str, ...] = tuple(
    name
    for name, endpoint in ENDPOINTS.items()
    if endpoint.strategy == "snapshot" and name != "course_progresses"
)
