"""Reading what people type into the calendar's forms, tables and spreadsheets.

Blank cells (None, "", NaN, pandas' NaT/NA), whole numbers however they arrive, moments
with or without a timezone, and timezone names. A problem is one sentence, raised as a
FieldError that names the field it is about (import and table rows report it there).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm.errors import ValidationError

DEFAULT_TIMEZONE = "UTC"
DEFAULT_TIME = dt.time(9, 0)  # a date typed without a time


class FieldError(ValidationError):
    """A ValidationError that knows which field it is about (for import and table rows)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


def zone(name: Any) -> ZoneInfo:
    """The timezone a name such as Europe/London stands for."""
    if not isinstance(name, str) or not name.strip():
        raise FieldError("recurrence", "The timezone must be a name such as Europe/London.")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError("recurrence", f"{name!r} is not a timezone this app knows.") from None


def blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return type(value).__name__ in {"NaTType", "NAType"}


def text(value: Any) -> str | None:
    """The value as stripped text without NUL characters; None when blank."""
    if blank(value):
        return None
    return str(value).replace("\x00", "").strip() or None


def whole_number(value: Any) -> int | None:
    """The value as an int when it is a whole number (1, 1.0, " 1 "), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def aware(value: Any, what: str, field_name: str, tz: dt.tzinfo = dt.UTC) -> dt.datetime:
    """The value as a UTC moment; a date alone is at DEFAULT_TIME, a naive time is in tz."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(
                field_name, f"The {what} must be a date and time such as 2027-01-05 09:00."
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, DEFAULT_TIME)
    if not isinstance(value, dt.datetime):
        raise FieldError(field_name, f"The {what} must be a date and time.")
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(dt.UTC)


def parse_moment(text_value: str) -> dt.datetime:
    """A stored ISO moment; one without an offset is UTC."""
    moment = dt.datetime.fromisoformat(text_value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
