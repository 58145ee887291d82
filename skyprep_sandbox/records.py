"""Builders for each entity's record exactly as the API serves it (docs/internals.md §1).

Every builder takes plain Python values (instants as epoch seconds) and returns the wire
dict; the generator, `World.from_records` and the mutating routes all build through
here, so a record has one shape whatever made it.
"""

from __future__ import annotations

from typing import Any

from skyprep_sandbox.formats import DAY, formatted_short, ts_en, ts_iso

ACCOUNT_DOMAIN = "sandbox.skyprepapp.com"
PROGRESS_STATUSES = ("passed", "failed", "in-progress", "not-started", "not-applicable")
USER_STATUSES = ("active", "inactive", "disabled")
PAYMENT_STATUSES = ("complete", "pending", "refunded", "failed")
PAYMENT_TYPES = ("paypal", "stripe")
CUSTOM_ATTRIBUTES = 5


def user_id_on_wire(user_id: int) -> int | str:
    """Some accounts answer ids as numeric strings: every 17th user does here."""
    return str(user_id) if user_id % 17 == 0 else user_id


def user_record(
    user_id: int,
    *,
    first_name: str,
    last_name: str,
    email: str,
    created_at: int,
    updated_at: int | None = None,
    role: str = "learner",
    status: str = "active",
    card_no: str | None = None,
    title: str | None = None,
    cell: str | None = None,
    work_phone: str | None = None,
    address: str | None = None,
    last_login_at: int | None = None,
    access_start_date: int | None = None,
    access_end_date: int | None = None,
    custom: tuple[str | None, ...] | list[str | None] = (),
) -> dict[str, Any]:
    """A `get_users` record; `custom` fills ca_0… (missing ones are null)."""
    record: dict[str, Any] = {
        "id": user_id_on_wire(user_id),
        "first_name": first_name,
        "last_name": last_name,
        "username": email,
        "email": email,
        "card_no": card_no,
        "role": role,
        "status": status,
        "title": title,
        "cell": cell,
        "work_phone": work_phone,
        "address": address,
        "created_at": ts_en(created_at),
        "updated_at": ts_iso(updated_at if updated_at is not None else created_at),
        "last_login_at": ts_iso(last_login_at),
        "access_start_date": ts_iso(access_start_date),
        "access_end_date": ts_iso(access_end_date),
    }
    for i in range(CUSTOM_ATTRIBUTES):
        record[f"ca_{i}"] = custom[i] if i < len(custom) else None
    return record


def course_record(
    course_id: int,
    *,
    name: str,
    created_at: int,
    updated_at: int | None = None,
    description: str = "",
    active: bool = True,
    course_code: str | None = None,
    price: str | None = None,
    days_until_expiration: int | None = None,
    tags: list[str] | None = None,
    course_items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A `get_courses` record; every 11th course answers `active` as a string."""
    active_value: bool | str = active
    if course_id % 11 == 0:
        active_value = "true" if active else "false"
    return {
        "id": course_id,
        "name": name,
        "description": description,
        "active": active_value,
        "created_at": ts_iso(created_at),
        "updated_at": ts_iso(updated_at if updated_at is not None else created_at),
        "course_code": course_code if course_code is not None else f"C-{course_id}",
        "price": price,
        "days_until_expiration": days_until_expiration,
        "tags": tags if tags is not None else [],
        "course_items": course_items if course_items is not None else [],
    }


def days_until(t: int | None, now: int) -> int | None:
    """Whole days from now to t (negative once past), as days_until_deadline counts."""
    if t is None:
        return None
    return (t - now) // DAY


PROGRESS_DATE_FIELDS = (
    "commencement_date",
    "completion_date",
    "expiration_date",
    "access_date",
    "deadline_date",
    "real_end_date",
    "real_start_date",
    "computed_deadline_date",
)


def progress_record(
    progress_id: int,
    *,
    course_id: int,
    course_name: str,
    user_id: int,
    user_email: str,
    status: str,
    created_at: int,
    now: int,
    updated_at: int | None = None,
    commencement_date: int | None = None,
    completion_date: int | None = None,
    deadline_date: int | None = None,
    expiration_date: int | None = None,
    access_date: int | None = None,
    real_start_date: int | None = None,
    real_end_date: int | None = None,
    percent_viewed: int = 0,
    last_course_item_id: int | None = None,
    override_dates: bool = False,
    skip_prerequisites: bool = False,
) -> dict[str, Any]:
    """A `get_course_progresses` record, field for field the reference sample.

    `days_until_deadline` and `expired` are computed against `now`, the world clock when
    the record was last written (the record is not rewritten just because time passed).
    """
    dates = {
        "commencement_date": commencement_date,
        "completion_date": completion_date,
        "expiration_date": expiration_date,
        "access_date": access_date,
        "deadline_date": deadline_date,
        "real_end_date": real_end_date,
        "real_start_date": real_start_date,
        "computed_deadline_date": deadline_date,
    }
    record: dict[str, Any] = {
        "id": progress_id,
        "status": status,
        "days_until_deadline": days_until(deadline_date, now),
        "created_at": ts_iso(created_at),
        "updated_at": ts_iso(updated_at if updated_at is not None else created_at),
        "skip_prerequisites": skip_prerequisites,
        "course_id": course_id,
        "course_name": course_name,
        "user_id": user_id,
        "user_email": user_email,
        "commencement_date": ts_iso(commencement_date),
        "completion_date": ts_iso(completion_date),
        "last_course_item_id": last_course_item_id,
        "percent_viewed": percent_viewed,
        "expiration_date": ts_iso(expiration_date),
        "expired": expiration_date is not None and expiration_date <= now,
        "access_date": ts_iso(access_date),
        "deadline_date": ts_iso(deadline_date),
        "override_dates": override_dates,
        "real_end_date": ts_iso(real_end_date),
        "real_start_date": ts_iso(real_start_date),
        "certificate_view_link": (
            f"https://{ACCOUNT_DOMAIN}/certificates/show?course_progress_id={progress_id}&f=pdf"
            if status == "passed"
            else None
        ),
        "computed_deadline_date": ts_iso(deadline_date),
    }
    for name in PROGRESS_DATE_FIELDS:
        record[f"formatted_{name}"] = formatted_short(dates[name])
    return record


def set_progress_date(record: dict[str, Any], name: str, t: int | None) -> None:
    """Set one of a progress's dates and its formatted_ twin."""
    record[name] = ts_iso(t)
    record[f"formatted_{name}"] = formatted_short(t)
    if name == "deadline_date":
        set_progress_date(record, "computed_deadline_date", t)


def payment_record(
    payment_id: int,
    *,
    status: str,
    amount: str,
    first_name: str,
    last_name: str,
    payer_email: str,
    payment_type: str,
    created_at: int,
    updated_at: int | None = None,
    course_id: int | None = None,
    user_id: int | None = None,
    currency: str = "USD",
) -> dict[str, Any]:
    """A `get_payments` record (amount is a string, as on the wire)."""
    return {
        "id": payment_id,
        "model_type": "payment",
        "status": status,
        "transaction_number": f"TXN{payment_id:08d}",
        "amount": amount,
        "currency": currency,
        "first_name": first_name,
        "last_name": last_name,
        "payer_email": payer_email,
        "latest_ipn_data": f"payment_status={status}&txn_id=TXN{payment_id:08d}&mc_gross={amount}",
        "payment_type": payment_type,
        "course_id": course_id,
        "user_id": user_id,
        "created_at": ts_iso(created_at),
        "updated_at": ts_iso(updated_at if updated_at is not None else created_at),
    }


def skill_record(
    skill_id: int, *, display_name: str, description: str = "", competency_count: int = 0
) -> dict[str, Any]:
    """A `get_skills` record."""
    return {
        "display_name": display_name,
        "name": display_name.lower(),
        "id": skill_id,
        "description": description,
        "competency_count": competency_count,
    }


def user_group_record(
    group_id: int,
    *,
    name: str,
    created_at: int,
    updated_at: int | None = None,
    description: str = "",
    user_count: int = 0,
    course_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A `get_user_groups` record (members are served by `get_user_group`)."""
    return {
        "id": group_id,
        "name": name,
        "description": description,
        "created_at": ts_iso(created_at),
        "updated_at": ts_iso(updated_at if updated_at is not None else created_at),
        "user_count": user_count,
        "course_ids": course_ids if course_ids is not None else [],
    }
