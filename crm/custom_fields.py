"""Custom candidate fields an admin defines (text, number, date, choice).

Definitions live in custom_fields; each candidate's values live in its custom_fields
JSON under the field's key. Values are checked against the definition on every save.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, func, select

from crm import audit
from crm.db import get_existing, read_session, write_session
from crm.errors import ValidationError
from crm.identity import clean_text
from crm.models import CUSTOM_FIELD_KINDS, CustomField, User
from crm.permissions import require_admin

KIND_LABELS = {"text": "Text", "number": "Number", "date": "Date", "choice": "Choice"}
MAX_TEXT = 500
_KEY = re.compile(r"[^a-z0-9]+")


def list_fields(engine: Engine) -> list[CustomField]:
    with read_session(engine) as session:
        return list(
            session.scalars(select(CustomField).order_by(CustomField.position, CustomField.id))
        )


def create_field(
    engine: Engine, *, actor: User, label: str, kind: str, choices: list[str] | None = None
) -> CustomField:
    require_admin(engine, actor)
    label = clean_text(label)
    if not label or len(label) > 120:
        raise ValidationError("A custom field needs a label of at most 120 characters.")
    if kind not in CUSTOM_FIELD_KINDS:
        raise ValidationError(f"The kind must be one of {', '.join(CUSTOM_FIELD_KINDS)}.")
    options = [clean_text(choice) for choice in (choices or []) if clean_text(choice)]
    if kind == "choice" and len(options) < 2:
        raise ValidationError("A choice field needs at least two choices.")
    key = _KEY.sub("_", label.lower()).strip("_")[:60] or "field"
    with write_session(engine, actor=actor, need="admin") as session:
        if session.scalar(select(CustomField.id).where(CustomField.key == key)):
            raise ValidationError(f"There is already a custom field called {label!r}.")
        position = (session.scalar(select(func.max(CustomField.position))) or 0) + 1
        field = CustomField(
            key=key,
            label=label,
            kind=kind,
            choices=list(dict.fromkeys(options)) if kind == "choice" else None,
            position=position,
        )
        session.add(field)
        session.flush()
        audit.record_about(session, actor, "custom_field.create", key)
    return field


def delete_field(engine: Engine, *, actor: User, field_id: int) -> None:
    """Remove the definition; values stay in each candidate's JSON but are no longer shown."""
    require_admin(engine, actor)
    with write_session(engine, actor=actor, need="admin") as session:
        field = get_existing(session, CustomField, field_id, "custom field")
        audit.record_about(session, actor, "custom_field.delete", field.key)
        session.delete(field)


def clean_value(field: CustomField, raw: Any) -> Any:
    """The stored form of a value (JSON-friendly), or ValidationError naming the field."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if field.kind == "text":
        text = clean_text(raw)
        if len(text) > MAX_TEXT:
            raise ValidationError(f"{field.label} is longer than {MAX_TEXT} characters.")
        return text
    if field.kind == "number":
        try:
            number = float(str(raw).replace(",", "."))
        except ValueError:
            raise ValidationError(f"{field.label} must be a number, not {raw!r}.") from None
        return int(number) if number.is_integer() else number
    if field.kind == "date":
        if isinstance(raw, dt.date):
            return raw.isoformat()
        try:
            return dt.date.fromisoformat(clean_text(raw)).isoformat()
        except ValueError:
            raise ValidationError(f"{field.label} must be a date like 2026-01-31.") from None
    choice = clean_text(raw)
    if choice not in (field.choices or []):
        raise ValidationError(f"{field.label} must be one of {', '.join(field.choices or [])}.")
    return choice


def clean_values(
    fields: list[CustomField], raw: Mapping[str, Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Values by key for the given raw values, and (key, problem) for the bad ones."""
    by_key = {field.key: field for field in fields}
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in raw.items():
        field = by_key.get(key)
        if field is None:
            problems.append((key, f"There is no custom field {key!r}."))
            continue
        try:
            values[key] = clean_value(field, value)
        except ValidationError as error:
            problems.append((key, str(error)))
    return values, problems
