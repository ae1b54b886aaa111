"""The content calendar: what each pool hears, on which channel, and when.

An item is one row of ContentItem with its audience pools (ContentItemPool). A recurring
item is a series: ContentItem.recurrence says how it repeats and recurrence_exceptions
which occurrences are skipped or moved. Occurrences are never stored; a view expands only
the series that can reach its window, and reads single items with a date range in SQL.

Recurrence is expanded in the local time of the series' timezone (the `timezone` key,
"UTC" by default): a weekly post at 09:00 Europe/London stays at 09:00 local across the
clock changes, so its UTC time moves by an hour. An occurrence is named by its key: the
local date of its slot in the series (ISO), which stays its name when it is moved.

Every series has an end (`until` or `count`) and at most MAX_OCCURRENCES occurrences within
MAX_YEARS years, and a moved occurrence stays within MAX_MOVE of its slot, so every
occurrence of a series lies in [scheduled_at - MAX_MOVE, scheduled_at + MAX_YEARS + MAX_MOVE]
and a window query can find the series that matter with the scheduled_at index.
"""

from __future__ import annotations

import calendar as _calendar
import csv
import datetime as dt
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from crm import audit, clock, csvfile
from crm.db import read_session, write_session
from crm.errors import InputUnusable, NotFound, ValidationError
from crm.exporter import escape_cell
from crm.mapping import header_key
from crm.models import (
    CHANNELS,
    CONTENT_STATUSES,
    CONTENT_THEMES,
    Activity,
    Campaign,
    Candidate,
    ContentItem,
    ContentItemPool,
    ImportBatch,
    OutboxMessage,
    Pool,
    User,
)
from crm.permissions import require_writer
from crm.pools import membership_condition

CHANNEL_LABELS = {
    "email_newsletter": "Email newsletter",
    "linkedin_post": "LinkedIn post",
    "linkedin_message": "LinkedIn message",
    "x": "X",
    "instagram": "Instagram",
    "sms": "SMS",
    "blog": "Blog",
    "event": "Event",
}
THEME_LABELS = {
    "company_news": "Company news",
    "industry_insight": "Industry insight",
    "career_advice": "Career advice",
    "employee_story": "Employee story",
    "job_alert": "Job alert",
}
STATUS_LABELS = {
    "idea": "Idea",
    "draft": "Draft",
    "scheduled": "Scheduled",
    "published": "Published",
}
# Streamlit badge colours; seven colours for eight channels, so the two LinkedIn ones share.
CHANNEL_COLOURS = {
    "email_newsletter": "orange",
    "linkedin_post": "blue",
    "linkedin_message": "blue",
    "x": "gray",
    "instagram": "violet",
    "sms": "green",
    "blog": "primary",
    "event": "red",
}
FREQUENCIES = ("weekly", "monthly")
DEFAULT_TIMEZONE = "UTC"
MAX_OCCURRENCES = 520
MAX_YEARS = 5
MAX_MOVE = dt.timedelta(days=366)
DEFAULT_SILENCE_DAYS = 30
MAX_SILENCE_DAYS = 365
MAX_CAP_PER_WEEK = 50
DEFAULT_TIME = dt.time(9, 0)  # an imported row with a date and no time
ICS_DEFAULT_DURATION = dt.timedelta(minutes=30)  # an item without an end, in a calendar app
ICS_DOMAIN = "content-calendar.candidate-crm"
MAX_TITLE = 200
MAX_LINK = 500
MAX_BODY = 50_000
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
# Channels where a published item reached each person directly: a touch moves their
# "last contacted". Posts, blogs and the like only add a timeline entry.
DIRECT_CHANNELS = {
    "email_newsletter": "email",
    "linkedin_message": "linkedin_message",
    "sms": "sms",
}
_ICS_STATUS = {
    "idea": "TENTATIVE",
    "draft": "TENTATIVE",
    "scheduled": "CONFIRMED",
    "published": "CONFIRMED",
}
_SPAN_BEFORE = dt.timedelta(days=366 * MAX_YEARS + 2) + MAX_MOVE  # series start to last occurrence


# --- the data the pages get -------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEntry:
    """One occurrence in the short form Home lists (kept for crm.attention)."""

    id: int
    title: str
    channel: str
    status: str
    theme: str | None
    scheduled_at: dt.datetime
    pools: tuple[str, ...]


@dataclass
class ItemDraft:
    title: str
    channel: str
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None = None
    pool_ids: list[int] = field(default_factory=list)
    body: str | None = None
    link: str | None = None
    owner_id: int | None = None
    status: str = "idea"
    theme: str | None = None
    # {"freq": "weekly"|"monthly", "interval": N, "until": "YYYY-MM-DD"|None,
    #  "count": N|None, "timezone": "Europe/London"}
    recurrence: dict[str, Any] | None = None


@dataclass(frozen=True)
class ItemDetail:
    id: int
    title: str
    channel: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    pool_ids: tuple[int, ...]
    pools: tuple[str, ...]
    body: str | None
    link: str | None
    owner_id: int | None
    owner: str | None
    status: str
    theme: str | None
    recurrence: dict[str, Any] | None
    exceptions: tuple[dict[str, Any], ...]
    campaign_id: int | None
    published_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    def to_draft(self) -> ItemDraft:
        """The item as a draft to edit and save back."""
        return ItemDraft(
            title=self.title,
            channel=self.channel,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            pool_ids=list(self.pool_ids),
            body=self.body,
            link=self.link,
            owner_id=self.owner_id,
            status=self.status,
            theme=self.theme,
            recurrence=dict(self.recurrence) if self.recurrence else None,
        )


@dataclass(frozen=True)
class Occurrence:
    item_id: int
    key: str  # the ISO date of the original slot; names an occurrence of a series
    title: str
    channel: str
    status: str
    theme: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    pools: tuple[str, ...]
    pool_ids: tuple[int, ...]
    recurring: bool
    moved: bool
    campaign_id: int | None
    link: str | None
    owner: str | None
    body: str | None
    owner_id: int | None = None


@dataclass(frozen=True)
class CadenceWarning:
    pool_id: int
    pool: str
    kind: str  # "too_often" | "silence"
    message: str
    week_start: dt.date | None


@dataclass
class CalendarImportResult:
    read: int
    created: int
    skipped: int  # rows identical to an item already on the calendar
    errors: list[tuple[int, str, str]]  # (row, column, problem)
    batch_id: int | None = None

    def error_report_csv(self) -> str:
        """The refused rows as CSV (row, column, problem); empty when none was refused."""
        if not self.errors:
            return ""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row", "column", "problem"])
        for line, column, problem in self.errors:
            writer.writerow([line, escape_cell(column), escape_cell(problem)])
        return out.getvalue()


class _FieldError(ValidationError):
    """A ValidationError that knows which field it is about (for import and table rows)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


# --- recurrence -------------------------------------------------------------------------


def _zone(name: Any) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise _FieldError("recurrence", "The timezone must be a name such as Europe/London.")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise _FieldError("recurrence", f"{name!r} is not a timezone this app knows.") from None


def _add_months(day: dt.date, months: int, wanted_day: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _calendar.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(wanted_day, last))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Series:
    """The slots of a recurring item: slot n is on date(n) at the first one's wall-clock time."""

    def __init__(self, starts_at: dt.datetime, recurrence: dict[str, Any]) -> None:
        self.freq = recurrence["freq"]
        self.interval = int(recurrence.get("interval") or 1)
        self.tz = _zone(recurrence.get("timezone") or DEFAULT_TIMEZONE)
        until = recurrence.get("until")
        self.until = dt.date.fromisoformat(until) if until else None
        self.count = recurrence.get("count")
        local = starts_at.astimezone(self.tz)
        self.first = local.date()
        self.wall = local.time().replace(tzinfo=None)
        self.horizon = _add_years(self.first, MAX_YEARS)

    def date(self, n: int) -> dt.date:
        if self.freq == "weekly":
            return self.first + dt.timedelta(weeks=self.interval * n)
        return _add_months(self.first, self.interval * n, self.first.day)

    def valid(self, n: int, day: dt.date) -> bool:
        return (
            0 <= n < MAX_OCCURRENCES
            and (self.count is None or n < self.count)
            and (self.until is None or day <= self.until)
            and day <= self.horizon
        )

    def at(self, day: dt.date) -> dt.datetime:
        """The slot's moment in UTC (a wall time skipped by DST reads with the old offset)."""
        return dt.datetime.combine(day, self.wall, self.tz).astimezone(dt.UTC)

    def index_of(self, day: dt.date) -> int | None:
        """n when day is a slot of the series, else None."""
        if self.freq == "weekly":
            gap = (day - self.first).days
            step = 7 * self.interval
            if gap % step:
                return None
            n = gap // step
        else:
            months = (day.year - self.first.year) * 12 + day.month - self.first.month
            if months % self.interval:
                return None
            n = months // self.interval
        if n < 0 or self.date(n) != day or not self.valid(n, day):
            return None
        return n

    def _first_index_near(self, day: dt.date) -> int:
        if self.freq == "weekly":
            return max(0, (day - self.first).days // (7 * self.interval) - 1)
        months = (day.year - self.first.year) * 12 + day.month - self.first.month
        return max(0, months // self.interval - 1)

    def slots(
        self, lo: dt.datetime | None = None, hi: dt.datetime | None = None
    ) -> Iterator[tuple[int, dt.date, dt.datetime]]:
        """(n, date, UTC start) of the slots starting in [lo, hi), in order."""
        n = (
            self._first_index_near((lo - dt.timedelta(days=2)).astimezone(self.tz).date())
            if lo
            else 0
        )
        while True:
            day = self.date(n)
            if not self.valid(n, day):
                return
            moment = self.at(day)
            if hi is not None and moment >= hi:
                return
            if lo is None or moment >= lo:
                yield n, day, moment
            n += 1


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _check_recurrence(recurrence: Any, starts_at: dt.datetime) -> dict[str, Any] | None:
    """The recurrence in its stored form, or one sentence about what is wrong with it."""
    if not recurrence:
        return None
    if not isinstance(recurrence, dict):
        raise _FieldError("recurrence", "The repeat rule is not understood.")
    freq = recurrence.get("freq")
    if freq not in FREQUENCIES:
        raise _FieldError("recurrence", "A repeating item repeats weekly or monthly.")
    interval_value = recurrence.get("interval")
    interval = 1 if interval_value in (None, "") else _whole_number(interval_value)
    if interval is None or not 1 <= interval <= 52:
        raise _FieldError("recurrence", "The repeat interval must be a whole number from 1 to 52.")
    until_value = recurrence.get("until")
    until: dt.date | None = None
    if isinstance(until_value, dt.datetime):
        until = until_value.date()
    elif isinstance(until_value, dt.date):
        until = until_value
    elif until_value:
        try:
            until = dt.date.fromisoformat(str(until_value).strip())
        except ValueError:
            raise _FieldError(
                "recurrence", "The repeat end date must be a date such as 2027-06-30."
            ) from None
    count_value = recurrence.get("count")
    count = None
    if count_value not in (None, ""):
        count = _whole_number(count_value)
        if count is None or count < 1:
            raise _FieldError(
                "recurrence", "The number of occurrences must be a whole number of 1 or more."
            )
    if until is None and count is None:
        raise _FieldError(
            "recurrence",
            "A repeating item needs an end: give an end date or a number of occurrences.",
        )
    if count is not None and count > MAX_OCCURRENCES:
        raise _FieldError(
            "recurrence", f"A repeating item can have at most {MAX_OCCURRENCES} occurrences."
        )
    timezone = recurrence.get("timezone") or DEFAULT_TIMEZONE
    _zone(timezone)
    stored = {
        "freq": freq,
        "interval": interval,
        "until": until.isoformat() if until else None,
        "count": count,
        "timezone": timezone.strip(),
    }
    series = _Series(starts_at, stored)
    if until is not None and until < series.first:
        raise _FieldError("recurrence", "The repeat end date is before the first occurrence.")
    if until is not None and until > series.horizon:
        raise _FieldError(
            "recurrence",
            f"A repeating item can repeat for at most {MAX_YEARS} years; "
            "choose an earlier end date.",
        )
    if count is not None and until is None and series.date(count - 1) > series.horizon:
        raise _FieldError(
            "recurrence",
            f"A repeating item can repeat for at most {MAX_YEARS} years; choose fewer occurrences.",
        )
    return stored


def _parse_moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _remap_exceptions(
    old_start: dt.datetime,
    old_recurrence: dict[str, Any] | None,
    new_start: dt.datetime,
    new_recurrence: dict[str, Any] | None,
    exceptions: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Exceptions carried over to a changed series: each follows its occurrence's number,
    a moved one keeps its distance from its slot; those past the new end are dropped."""
    if not old_recurrence or not new_recurrence:
        return []
    old, new = _Series(old_start, old_recurrence), _Series(new_start, new_recurrence)
    carried = []
    for exception in exceptions:
        try:
            old_day = dt.date.fromisoformat(exception["key"])
        except (KeyError, TypeError, ValueError):
            continue
        n = old.index_of(old_day)
        if n is None:
            continue
        new_day = new.date(n)
        if not new.valid(n, new_day):
            continue
        moved = dict(exception, key=new_day.isoformat())
        if exception.get("starts_at"):
            shifted = _parse_moment(exception["starts_at"]) + (new.at(new_day) - old.at(old_day))
            moved["starts_at"] = shifted.astimezone(dt.UTC).isoformat()
        carried.append(moved)
    return carried


# --- checking what people type -----------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return type(value).__name__ in {"NaTType", "NAType"}


def _text(value: Any) -> str | None:
    if _blank(value):
        return None
    return str(value).replace("\x00", "").strip() or None


def _aware(value: Any, what: str, field_name: str, zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _FieldError(
                field_name, f"The {what} must be a date and time such as 2027-01-05 09:00."
            ) from None
    elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, DEFAULT_TIME)
    if not isinstance(value, dt.datetime):
        raise _FieldError(field_name, f"The {what} must be a date and time.")
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(dt.UTC)


def _check_link(link: Any) -> str | None:
    text = _text(link)
    if text is None:
        return None
    if re.match(r"^(?:www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/|$))", text, re.IGNORECASE):
        text = "https://" + text
    if not re.match(r"^https?://[^\s/]+", text, re.IGNORECASE) or any(c.isspace() for c in text):
        raise _FieldError("link", "The link must be a web address starting with https://.")
    if len(text) > MAX_LINK:
        raise _FieldError("link", f"The link is longer than {MAX_LINK} characters.")
    return text


@dataclass
class _Clean:
    values: dict[str, Any]
    pool_ids: list[int]


def _clean_draft(draft: ItemDraft, session: Session | None = None) -> _Clean:
    """The draft's stored values, or one sentence (a _FieldError) about the first problem;
    with a session, its owner and pools are checked to exist."""
    title = _text(draft.title)
    if title is None:
        raise _FieldError("title", "Give the item a title.")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise _FieldError("title", f"The title is longer than {MAX_TITLE} characters.")
    if _blank(draft.starts_at):
        raise _FieldError("starts_at", "Give the item a date.")
    starts_at = _aware(draft.starts_at, "date", "starts_at")
    if _blank(draft.channel):
        raise _FieldError("channel", "Choose a channel for the item.")
    if draft.channel not in CHANNELS:
        raise _FieldError("channel", f"{draft.channel!r} is not a channel of the calendar.")
    ends_at = None
    if not _blank(draft.ends_at):
        ends_at = _aware(draft.ends_at, "end", "ends_at")
        if ends_at <= starts_at:
            raise _FieldError("ends_at", "The end must be after the start.")
    status = draft.status or "idea"
    if status not in CONTENT_STATUSES:
        raise _FieldError("status", f"{status!r} is not a status of the calendar.")
    theme = _text(draft.theme)
    if theme is not None and theme not in CONTENT_THEMES:
        raise _FieldError("theme", f"{theme!r} is not a content theme.")
    body = draft.body if not _blank(draft.body) else None
    if body is not None and len(body) > MAX_BODY:
        raise _FieldError("body", f"The notes are longer than {MAX_BODY:,} characters.")
    link = _check_link(draft.link)
    recurrence = _check_recurrence(draft.recurrence, starts_at)
    owner_id = None if _blank(draft.owner_id) else _whole_number(draft.owner_id)
    if not _blank(draft.owner_id) and owner_id is None:
        raise _FieldError("owner_id", "The owner is not a user of this app.")
    pool_ids = sorted({int(pool_id) for pool_id in draft.pool_ids or []})
    if session is not None:
        if owner_id is not None and session.get(User, owner_id) is None:
            raise _FieldError("owner_id", "The owner is not a user of this app.")
        if pool_ids:
            found = set(session.scalars(select(Pool.id).where(Pool.id.in_(pool_ids))))
            if len(found) != len(pool_ids):
                raise _FieldError("pool_ids", "One of the audience pools no longer exists.")
    return _Clean(
        values={
            "title": title,
            "channel": draft.channel,
            "scheduled_at": starts_at,
            "ends_at": ends_at,
            "status": status,
            "theme": theme,
            "body": body,
            "link": link,
            "owner_id": owner_id,
            "recurrence": recurrence,
        },
        pool_ids=pool_ids,
    )


def _published_at(status: str, current: dt.datetime | None, starts_at: dt.datetime) -> Any:
    if status != "published":
        return None
    return current or min(starts_at, clock.now())


def _set_pools(session: Session, item_id: int, pool_ids: Sequence[int]) -> None:
    session.execute(delete(ContentItemPool).where(ContentItemPool.content_item_id == item_id))
    if pool_ids:
        session.execute(
            insert(ContentItemPool),
            [{"content_item_id": item_id, "pool_id": pool_id} for pool_id in pool_ids],
        )


def _load(session: Session, item_id: int) -> ContentItem:
    item = session.get(ContentItem, item_id, with_for_update=True)
    if item is None:
        raise NotFound("That calendar item no longer exists.")
    return item


def _apply(session: Session, item: ContentItem | None, clean: _Clean) -> ContentItem:
    values = clean.values
    if item is None:
        item = ContentItem(recurrence_exceptions=[], **values)
        item.published_at = _published_at(values["status"], None, values["scheduled_at"])
        session.add(item)
        session.flush()
    else:
        item.recurrence_exceptions = _remap_exceptions(
            item.scheduled_at,
            item.recurrence,
            values["scheduled_at"],
            values["recurrence"],
            item.recurrence_exceptions or [],
        )
        for name, value in values.items():
            setattr(item, name, value)
        item.published_at = _published_at(
            values["status"], item.published_at, values["scheduled_at"]
        )
    _set_pools(session, item.id, clean.pool_ids)
    return item


# --- reading ----------------------------------------------------------------------------

_COLUMNS = (
    ContentItem.id,
    ContentItem.title,
    ContentItem.channel,
    ContentItem.status,
    ContentItem.theme,
    ContentItem.scheduled_at,
    ContentItem.ends_at,
    ContentItem.recurrence,
    ContentItem.recurrence_exceptions,
    ContentItem.campaign_id,
    ContentItem.link,
    ContentItem.owner_id,
    ContentItem.body,
)


def _chunks(values: Sequence[int], size: int = 1000) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _occurrences(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    pool_id: int | None = None,
    channel: str | None = None,
    pool_ids: Sequence[int] | None = None,
) -> list[Occurrence]:
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    filters = []
    if pool_id is not None:
        pool_ids = [pool_id]
    if pool_ids is not None:
        filters.append(
            ContentItem.id.in_(
                select(ContentItemPool.content_item_id).where(ContentItemPool.pool_id.in_(pool_ids))
            )
        )
    if channel is not None:
        filters.append(ContentItem.channel == channel)
    singles = session.execute(
        select(*_COLUMNS).where(
            ContentItem.recurrence.is_(None),
            ContentItem.scheduled_at >= start,
            ContentItem.scheduled_at < end,
            *filters,
        )
    ).all()
    series = session.execute(
        select(*_COLUMNS).where(
            ContentItem.recurrence.is_not(None),
            ContentItem.scheduled_at < end + MAX_MOVE,
            ContentItem.scheduled_at >= start - _SPAN_BEFORE,
            *filters,
        )
    ).all()
    rows = [*singles, *series]
    ids = [row.id for row in rows]
    pools: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for chunk in _chunks(ids):
        for item_id, pid, name in session.execute(
            select(ContentItemPool.content_item_id, Pool.id, Pool.name)
            .join(Pool, Pool.id == ContentItemPool.pool_id)
            .where(ContentItemPool.content_item_id.in_(chunk))
        ):
            pools[item_id].append((name, pid))
    owner_ids = sorted({row.owner_id for row in rows if row.owner_id is not None})
    owners = (
        dict(
            session.execute(select(User.id, User.display_name).where(User.id.in_(owner_ids))).all()
        )
        if owner_ids
        else {}
    )
    found: list[Occurrence] = []
    for row in rows:
        named = sorted(pools.get(row.id, ()))
        base = {
            "item_id": row.id,
            "title": row.title,
            "channel": row.channel,
            "status": row.status,
            "theme": row.theme,
            "pools": tuple(name for name, _ in named),
            "pool_ids": tuple(pid for _, pid in named),
            "campaign_id": row.campaign_id,
            "link": row.link,
            "owner": owners.get(row.owner_id),
            "owner_id": row.owner_id,
            "body": row.body,
        }
        duration = row.ends_at - row.scheduled_at if row.ends_at else None
        if not row.recurrence:
            found.append(
                Occurrence(
                    key=row.scheduled_at.date().isoformat(),
                    starts_at=row.scheduled_at,
                    ends_at=row.ends_at,
                    recurring=False,
                    moved=False,
                    **base,
                )
            )
            continue
        found.extend(
            _expand(
                row.scheduled_at,
                row.recurrence,
                row.recurrence_exceptions,
                duration,
                base,
                start,
                end,
            )
        )
    found.sort(key=lambda o: (o.starts_at, o.item_id, o.key))
    return found


def _exceptions_by_key(exceptions: Any) -> dict[str, dict[str, Any]]:
    return {
        entry["key"]: entry
        for entry in exceptions or []
        if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    }


def _expand(
    scheduled_at: dt.datetime,
    recurrence: dict[str, Any],
    exceptions: Any,
    duration: dt.timedelta | None,
    base: dict[str, Any],
    start: dt.datetime,
    end: dt.datetime,
) -> Iterator[Occurrence]:
    series = _Series(scheduled_at, recurrence)
    changed = _exceptions_by_key(exceptions)

    def occurrence(key: str, moment: dt.datetime, moved: bool) -> Occurrence:
        return Occurrence(
            key=key,
            starts_at=moment,
            ends_at=moment + duration if duration is not None else None,
            recurring=True,
            moved=moved,
            **base,
        )

    for _n, day, moment in series.slots(start, end):
        key = day.isoformat()
        entry = changed.get(key)
        if entry is None:
            yield occurrence(key, moment, False)
        elif not entry.get("skip") and entry.get("starts_at"):
            moved_to = _parse_moment(entry["starts_at"])
            if start <= moved_to < end:
                yield occurrence(key, moved_to, True)
    # Occurrences moved into the window from a slot outside it.
    for key, entry in changed.items():
        if entry.get("skip") or not entry.get("starts_at"):
            continue
        moved_to = _parse_moment(entry["starts_at"])
        if not start <= moved_to < end:
            continue
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            continue
        if series.index_of(day) is None:
            continue
        slot = series.at(day)
        if not start <= slot < end:
            yield occurrence(key, moved_to, True)


def occurrences_between(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    pool_id: int | None = None,
    channel: str | None = None,
) -> list[Occurrence]:
    """Every occurrence starting in [start, end), earliest first; recurring items expanded."""
    with read_session(engine) as session:
        return _occurrences(session, start=start, end=end, pool_id=pool_id, channel=channel)


def items_between(engine: Engine, *, start: dt.datetime, end: dt.datetime) -> list[CalendarEntry]:
    """Occurrences in [start, end), earliest first, in the short form Home lists."""
    return [
        CalendarEntry(
            id=o.item_id,
            title=o.title,
            channel=o.channel,
            status=o.status,
            theme=o.theme,
            scheduled_at=o.starts_at,
            pools=o.pools,
        )
        for o in occurrences_between(engine, start=start, end=end)
    ]


def get_item(engine: Engine, item_id: int) -> ItemDetail:
    with read_session(engine) as session:
        item = session.get(ContentItem, item_id)
        if item is None:
            raise NotFound("That calendar item no longer exists.")
        pools = session.execute(
            select(Pool.id, Pool.name)
            .join(ContentItemPool, ContentItemPool.pool_id == Pool.id)
            .where(ContentItemPool.content_item_id == item_id)
            .order_by(Pool.name)
        ).all()
        owner = session.get(User, item.owner_id) if item.owner_id else None
        return ItemDetail(
            id=item.id,
            title=item.title,
            channel=item.channel,
            starts_at=item.scheduled_at,
            ends_at=item.ends_at,
            pool_ids=tuple(pid for pid, _ in pools),
            pools=tuple(name for _, name in pools),
            body=item.body,
            link=item.link,
            owner_id=item.owner_id,
            owner=owner.display_name if owner else None,
            status=item.status,
            theme=item.theme,
            recurrence=dict(item.recurrence) if item.recurrence else None,
            exceptions=tuple(dict(e) for e in item.recurrence_exceptions or []),
            campaign_id=item.campaign_id,
            published_at=item.published_at,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


# --- writing ----------------------------------------------------------------------------


def save_item(engine: Engine, *, actor: User, draft: ItemDraft, item_id: int | None = None) -> int:
    """Create the item (item_id None) or save changes to it; returns its id.

    Changing a series' start or repeat rule carries its skipped and moved occurrences over
    by their number in the series (those past the new end are dropped).
    """
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        clean = _clean_draft(draft, session)
        item = _load(session, item_id) if item_id is not None else None
        item = _apply(session, item, clean)
        audit.record(
            session,
            actor=actor,
            action="content.create" if item_id is None else "content.update",
            entity="content_item",
            entity_id=item.id,
            detail={"title": item.title},
        )
        return item.id


def duplicate_item(engine: Engine, *, actor: User, item_id: int) -> int:
    """A copy of the item (its pools, repeat rule and exceptions), not linked to a campaign;
    a published item's copy is a draft."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        title = item.title if len(item.title) > MAX_TITLE - 7 else f"{item.title} (copy)"
        copy = ContentItem(
            title=title,
            channel=item.channel,
            scheduled_at=item.scheduled_at,
            ends_at=item.ends_at,
            status="draft" if item.status == "published" else item.status,
            theme=item.theme,
            body=item.body,
            link=item.link,
            owner_id=item.owner_id,
            recurrence=dict(item.recurrence) if item.recurrence else None,
            recurrence_exceptions=[dict(e) for e in item.recurrence_exceptions or []],
        )
        session.add(copy)
        session.flush()
        pool_ids = session.scalars(
            select(ContentItemPool.pool_id).where(ContentItemPool.content_item_id == item_id)
        ).all()
        _set_pools(session, copy.id, pool_ids)
        audit.record(
            session,
            actor=actor,
            action="content.duplicate",
            entity="content_item",
            entity_id=copy.id,
            detail={"from": item_id},
        )
        return copy.id


def _move(item: ContentItem, starts_at: dt.datetime) -> None:
    if item.recurrence:
        item.recurrence_exceptions = _remap_exceptions(
            item.scheduled_at,
            item.recurrence,
            starts_at,
            item.recurrence,
            item.recurrence_exceptions or [],
        )
    if item.ends_at is not None:
        item.ends_at = starts_at + (item.ends_at - item.scheduled_at)
    item.scheduled_at = starts_at


def move_item(engine: Engine, *, actor: User, item_id: int, starts_at: dt.datetime) -> None:
    """Move the item, or a whole series with its exceptions, keeping its duration."""
    require_writer(engine, actor)
    if _blank(starts_at):
        raise ValidationError("Give the item a date.")
    starts_at = _aware(starts_at, "date", "starts_at")
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        if item.recurrence:
            _check_recurrence(item.recurrence, starts_at)
        _move(item, starts_at)
        audit.record(
            session,
            actor=actor,
            action="content.move",
            entity="content_item",
            entity_id=item_id,
            detail={"starts_at": starts_at.isoformat()},
        )


def _series_slot(item: ContentItem, key: str) -> tuple[_Series, dt.date]:
    if not item.recurrence:
        raise ValidationError("This item does not repeat; move or delete the item itself instead.")
    series = _Series(item.scheduled_at, item.recurrence)
    try:
        day = dt.date.fromisoformat(str(key))
    except ValueError:
        raise ValidationError(f"{key!r} is not a date such as 2027-01-07.") from None
    if series.index_of(day) is None:
        raise ValidationError(f"The series has no occurrence on {day.isoformat()}.")
    return series, day


def _set_exception(item: ContentItem, key: str, entry: dict[str, Any] | None) -> None:
    kept = [e for e in item.recurrence_exceptions or [] if e.get("key") != key]
    if entry is not None:
        kept.append(entry)
    kept.sort(key=lambda e: e.get("key", ""))
    item.recurrence_exceptions = kept  # a new list, so the JSON column is written


def skip_occurrence(engine: Engine, *, actor: User, item_id: int, key: str) -> None:
    """Leave one occurrence of a series out."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        _series, day = _series_slot(item, key)
        _set_exception(item, day.isoformat(), {"key": day.isoformat(), "skip": True})
        audit.record(
            session,
            actor=actor,
            action="content.skip_occurrence",
            entity="content_item",
            entity_id=item_id,
            detail={"key": day.isoformat()},
        )


def move_occurrence(
    engine: Engine, *, actor: User, item_id: int, key: str, starts_at: dt.datetime
) -> None:
    """Move one occurrence of a series (at most MAX_MOVE away from its slot)."""
    require_writer(engine, actor)
    if _blank(starts_at):
        raise ValidationError("Give the occurrence a date.")
    starts_at = _aware(starts_at, "date", "starts_at")
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        series, day = _series_slot(item, key)
        slot = series.at(day)
        if abs(starts_at - slot) > MAX_MOVE:
            raise ValidationError(
                "An occurrence can move at most a year from its planned date; "
                "move the whole series instead."
            )
        entry = (
            None
            if starts_at == slot
            else {"key": day.isoformat(), "starts_at": starts_at.isoformat()}
        )
        _set_exception(item, day.isoformat(), entry)
        audit.record(
            session,
            actor=actor,
            action="content.move_occurrence",
            entity="content_item",
            entity_id=item_id,
            detail={"key": day.isoformat(), "starts_at": starts_at.isoformat()},
        )


def restore_occurrence(engine: Engine, *, actor: User, item_id: int, key: str) -> None:
    """Undo a skip or a move: the occurrence is back in its slot."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        _series, day = _series_slot(item, key)
        _set_exception(item, day.isoformat(), None)
        audit.record(
            session,
            actor=actor,
            action="content.restore_occurrence",
            entity="content_item",
            entity_id=item_id,
            detail={"key": day.isoformat()},
        )


def delete_item(engine: Engine, *, actor: User, item_id: int) -> None:
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        title = item.title
        session.execute(delete(ContentItemPool).where(ContentItemPool.content_item_id == item_id))
        session.delete(item)
        audit.record(
            session,
            actor=actor,
            action="content.delete",
            entity="content_item",
            entity_id=item_id,
            detail={"title": title},
        )


_TABLE_FIELDS = ("title", "channel", "starts_at", "status", "theme", "owner_id", "link")


def save_table(
    engine: Engine, *, actor: User, rows: list[dict[str, Any]], timezone: str = DEFAULT_TIMEZONE
) -> int:
    """Save edits made in a table: all rows or none; a problem names its row (1-based).

    A row with an id changes that item (its other fields stay; a new start moves the item
    or series, keeping its duration); a row without one creates an item. A date without a
    timezone is read in `timezone`. Returns how many rows were saved.
    """
    require_writer(engine, actor)
    zone = _zone(timezone)
    saved = 0
    with write_session(engine, actor=actor) as session:
        for number, row in enumerate(rows, start=1):
            try:
                item_id = None if _blank(row.get("id")) else _whole_number(row.get("id"))
                if not _blank(row.get("id")) and item_id is None:
                    raise ValidationError("The id is not a number.")
                item = _load(session, item_id) if item_id is not None else None
                if item is None:
                    draft = ItemDraft(title="", channel="", starts_at=None)
                else:
                    pool_ids = session.scalars(
                        select(ContentItemPool.pool_id).where(
                            ContentItemPool.content_item_id == item.id
                        )
                    ).all()
                    draft = ItemDraft(
                        title=item.title,
                        channel=item.channel,
                        starts_at=item.scheduled_at,
                        ends_at=item.ends_at,
                        pool_ids=list(pool_ids),
                        body=item.body,
                        link=item.link,
                        owner_id=item.owner_id,
                        status=item.status,
                        theme=item.theme,
                        recurrence=item.recurrence,
                    )
                changes = {name: row[name] for name in _TABLE_FIELDS if name in row}
                for name in ("theme", "owner_id", "link"):
                    if name in changes and _blank(changes[name]):
                        changes[name] = None
                if "status" in changes and _blank(changes["status"]):
                    changes["status"] = "idea"
                if not _blank(changes.get("starts_at")):
                    changes["starts_at"] = _aware(changes["starts_at"], "date", "starts_at", zone)
                    if item is not None and item.ends_at is not None:
                        changes["ends_at"] = changes["starts_at"] + (
                            item.ends_at - item.scheduled_at
                        )
                draft = replace(draft, **changes)
                clean = _clean_draft(draft, session)
                _apply(session, item, clean)
            except (ValidationError, NotFound) as error:
                raise ValidationError(f"Row {number}: {error}") from None
            saved += 1
        audit.record(
            session,
            actor=actor,
            action="content.table_edit",
            entity="content_item",
            detail={"rows": saved},
        )
    return saved


def _touch_channel(channel: str) -> str:
    return DIRECT_CHANNELS.get(channel, channel)


def mark_published(engine: Engine, *, actor: User, item_id: int, log_touchpoint: bool) -> int:
    """Mark the item published now; with log_touchpoint, put one touchpoint on the timeline
    of everyone in its pools (a direct channel also moves their "last contacted").
    Returns how many people got a timeline entry."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        if item.campaign_id is not None:
            raise ValidationError(
                "This item goes out as a campaign, which marks it sent; it cannot be "
                "marked published by hand."
            )
        if item.status == "published" and log_touchpoint:
            raise ValidationError("This item is already published.")
        now = clock.now()
        item.status = "published"
        item.published_at = item.published_at or now
        people: list[int] = []
        if log_touchpoint:
            pools = session.scalars(
                select(Pool)
                .join(ContentItemPool, ContentItemPool.pool_id == Pool.id)
                .where(ContentItemPool.content_item_id == item_id)
            ).all()
            members: set[int] = set()
            for pool in pools:
                members.update(
                    session.scalars(select(Candidate.id).where(membership_condition(session, pool)))
                )
            people = sorted(members)
            channel = _touch_channel(item.channel)
            summary = f"{CHANNEL_LABELS[item.channel]}: {item.title}"
            for chunk in _chunks(people, 5000):
                session.execute(
                    insert(Activity),
                    [
                        {
                            "candidate_id": cid,
                            "kind": "touchpoint",
                            "channel": channel,
                            "occurred_at": now,
                            "actor_id": actor.id,
                            "summary": summary,
                            "details": {"content_item_id": item_id},
                        }
                        for cid in chunk
                    ],
                )
                if item.channel in DIRECT_CHANNELS:
                    session.execute(
                        update(Candidate)
                        .where(
                            Candidate.id.in_(chunk),
                            or_(
                                Candidate.last_contacted_at.is_(None),
                                Candidate.last_contacted_at < now,
                            ),
                        )
                        .values(
                            last_contacted_at=now,
                            last_contacted_by_id=actor.id,
                            last_contact_channel=channel,
                        )
                        .execution_options(synchronize_session=False)
                    )
        audit.record(
            session,
            actor=actor,
            action="content.publish",
            entity="content_item",
            entity_id=item_id,
            detail={"touchpoints": len(people)},
        )
        return len(people)


def link_campaign(engine: Engine, *, actor: User, item_id: int, campaign_id: int | None) -> None:
    """Tie an email newsletter item to the campaign that sends it (None unlinks)."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        if campaign_id is not None:
            if item.channel != "email_newsletter":
                raise ValidationError("Only an email newsletter item can become a campaign.")
            if session.get(Campaign, campaign_id) is None:
                raise NotFound("That campaign no longer exists.")
        item.campaign_id = campaign_id
        audit.record(
            session,
            actor=actor,
            action="content.link_campaign",
            entity="content_item",
            entity_id=item_id,
            detail={"campaign_id": campaign_id},
        )


def campaign_prefill(engine: Engine, item_id: int) -> dict[str, Any]:
    """What the campaign composer starts from for an email item."""
    item = get_item(engine, item_id)
    return {
        "name": item.title,
        "pool_id": item.pool_ids[0] if item.pool_ids else None,
        "starts_at": item.starts_at,
        "subject": item.title,
        "body": item.body or "",
    }


# --- cadence ----------------------------------------------------------------------------


def set_pool_cadence(
    engine: Engine,
    *,
    actor: User,
    pool_id: int,
    frequency_cap_per_week: int | None,
    silence_days: int | None,
) -> None:
    """A pool's cadence guard: at most so many touches a week (None: no cap), and a warning
    after so many days without any (None: DEFAULT_SILENCE_DAYS)."""
    require_writer(engine, actor)
    cap = None if _blank(frequency_cap_per_week) else _whole_number(frequency_cap_per_week)
    if not _blank(frequency_cap_per_week) and (cap is None or not 1 <= cap <= MAX_CAP_PER_WEEK):
        raise ValidationError(
            f"The weekly cap must be a whole number from 1 to {MAX_CAP_PER_WEEK}, "
            "or empty for no cap."
        )
    silence = None if _blank(silence_days) else _whole_number(silence_days)
    if not _blank(silence_days) and (silence is None or not 1 <= silence <= MAX_SILENCE_DAYS):
        raise ValidationError(
            f"The radio-silence days must be a whole number from 1 to {MAX_SILENCE_DAYS}, "
            f"or empty for the default of {DEFAULT_SILENCE_DAYS}."
        )
    with write_session(engine, actor=actor) as session:
        pool = session.get(Pool, pool_id, with_for_update=True)
        if pool is None:
            raise NotFound("That pool no longer exists.")
        pool.frequency_cap_per_week = cap
        pool.silence_days = silence
        audit.record(
            session,
            actor=actor,
            action="pool.cadence",
            entity="pool",
            entity_id=pool_id,
            detail={"frequency_cap_per_week": cap, "silence_days": silence},
        )


def _week_start(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    day = moment.astimezone(zone).date()
    return day - dt.timedelta(days=day.weekday())


def _local_midnight(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def cadence_warnings(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[CadenceWarning]:
    """Pools that would hear from us too often, and pools gone quiet.

    too_often: each ISO week (Monday to Sunday in `timezone`) touching [start, end) in which
    the occurrences aimed at a pool outnumber its weekly cap. silence: a pool that nobody
    reached for more than its silence days up to now (a published item aimed at it, or a
    campaign email to it, counts; a pool never reached counts from its creation) and with
    nothing planned in as many days from now.
    """
    zone = _zone(timezone)
    now = now or clock.now()
    warnings: list[CadenceWarning] = []
    with read_session(engine) as session:
        pools = session.execute(
            select(
                Pool.id, Pool.name, Pool.frequency_cap_per_week, Pool.silence_days, Pool.created_at
            ).order_by(Pool.name)
        ).all()
        capped = {row.id: row for row in pools if row.frequency_cap_per_week}
        if capped:
            first_week = _week_start(start, zone)
            last_week = _week_start(end - dt.timedelta(microseconds=1), zone)
            occurrences = _occurrences(
                session,
                start=_local_midnight(first_week, zone),
                end=_local_midnight(last_week + dt.timedelta(days=7), zone),
                pool_ids=list(capped),
            )
            counts: Counter[tuple[int, dt.date]] = Counter()
            for occurrence in occurrences:
                week = _week_start(occurrence.starts_at, zone)
                for pid in occurrence.pool_ids:
                    if pid in capped:
                        counts[pid, week] += 1
            for (pid, week), count in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                cap = capped[pid].frequency_cap_per_week
                if count > cap:
                    warnings.append(
                        CadenceWarning(
                            pool_id=pid,
                            pool=capped[pid].name,
                            kind="too_often",
                            message=(
                                f"{capped[pid].name} would hear from us {count} times in the week "
                                f"of {week:%d %b %Y}, more than its cap of {cap} a week."
                            ),
                            week_start=week,
                        )
                    )
        last_content = dict(
            session.execute(
                select(ContentItemPool.pool_id, func.max(ContentItem.published_at))
                .join(ContentItem, ContentItem.id == ContentItemPool.content_item_id)
                .where(ContentItem.published_at.is_not(None), ContentItem.published_at <= now)
                .group_by(ContentItemPool.pool_id)
            ).all()
        )
        last_email = dict(
            session.execute(
                select(Campaign.audience_pool_id, func.max(OutboxMessage.sent_at))
                .join(OutboxMessage, OutboxMessage.campaign_id == Campaign.id)
                .where(
                    OutboxMessage.status == "sent",
                    OutboxMessage.sent_at <= now,
                    Campaign.audience_pool_id.is_not(None),
                )
                .group_by(Campaign.audience_pool_id)
            ).all()
        )
        longest = max((row.silence_days or DEFAULT_SILENCE_DAYS for row in pools), default=0)
        upcoming: dict[int, dt.datetime] = {}
        if pools:
            for occurrence in _occurrences(
                session, start=now, end=now + dt.timedelta(days=longest)
            ):
                for pid in occurrence.pool_ids:
                    upcoming.setdefault(pid, occurrence.starts_at)
    for row in pools:
        days = row.silence_days or DEFAULT_SILENCE_DAYS
        touches = [t for t in (last_content.get(row.id), last_email.get(row.id)) if t]
        last = max(touches) if touches else None
        since = last or row.created_at
        if now - since <= dt.timedelta(days=days):
            continue
        next_planned = upcoming.get(row.id)
        if next_planned is not None and next_planned < now + dt.timedelta(days=days):
            continue
        quiet_for = (now - since).days
        heard = (
            f"has heard nothing from us for {quiet_for} days"
            if last
            else f"has never heard from us in the {quiet_for} days since it was made"
        )
        warnings.append(
            CadenceWarning(
                pool_id=row.id,
                pool=row.name,
                kind="silence",
                message=f"{row.name} {heard} and nothing is planned in the next {days} days.",
                week_start=None,
            )
        )
    return warnings


# --- balance ----------------------------------------------------------------------------


def theme_balance(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    pool_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[str, dict[str, int]]:
    """ "YYYY-MM" -> theme -> occurrences, for every month touching [start, end); every theme
    is listed (0 when absent), and "none" counts occurrences without a theme when any."""
    zone = _zone(timezone)
    balance: dict[str, dict[str, int]] = {}
    month = start.astimezone(zone).date().replace(day=1)
    last = (end - dt.timedelta(microseconds=1)).astimezone(zone).date()
    while month <= last:
        balance[f"{month:%Y-%m}"] = dict.fromkeys(CONTENT_THEMES, 0)
        month = _add_months(month, 1, 1)
    for occurrence in occurrences_between(engine, start=start, end=end, pool_id=pool_id):
        label = f"{occurrence.starts_at.astimezone(zone):%Y-%m}"
        themes = balance.setdefault(label, dict.fromkeys(CONTENT_THEMES, 0))
        theme = occurrence.theme or "none"
        themes[theme] = themes.get(theme, 0) + 1
    return balance


# --- export -----------------------------------------------------------------------------


_ICS_DOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")
_BEGIN_EVENT, _END_EVENT = b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n"


def _ics_moment(moment: dt.datetime) -> bytes:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ").encode("ascii")


def _ics_shared(o: Occurrence) -> bytes:
    """The properties every occurrence of an item shares, serialized by icalendar (escaping,
    folding) once per item, without the BEGIN and END lines."""
    from icalendar import Event

    event = Event()
    event.add("summary", f"{CHANNEL_LABELS[o.channel]}: {o.title}")
    lines = [f"Channel: {CHANNEL_LABELS[o.channel]}"]
    lines.append(f"Pools: {', '.join(o.pools) if o.pools else 'none'}")
    if o.theme:
        lines.append(f"Theme: {THEME_LABELS[o.theme]}")
    lines.append(f"Status: {STATUS_LABELS[o.status]}")
    if o.owner:
        lines.append(f"Owner: {o.owner}")
    if o.body:
        lines.extend(("", o.body))
    event.add("description", "\n".join(lines))
    if o.link:
        event.add("url", o.link)
    categories = [CHANNEL_LABELS[o.channel]]
    if o.theme:
        categories.append(THEME_LABELS[o.theme])
    event.add("categories", categories)
    event.add("status", _ICS_STATUS[o.status])
    return event.to_ical()[len(_BEGIN_EVENT) : -len(_END_EVENT)]


def export_ics(
    engine: Engine, *, start: dt.datetime, end: dt.datetime, domain: str = ICS_DOMAIN
) -> bytes:
    """An iCalendar file with one VEVENT per occurrence in [start, end), times in UTC.

    UID is content-<item id>-<occurrence key>@<domain>, stable across exports, so a
    calendar app that subscribes or re-imports updates events instead of doubling them.
    An item without an end lasts ICS_DEFAULT_DURATION in the file. The calendar and each
    item's text properties are built with icalendar; the per-occurrence lines (UID and
    UTC times, plain ASCII) are written directly, which keeps a year of weekly series fast.
    """
    from icalendar import Calendar

    if not _ICS_DOMAIN_PATTERN.match(domain):
        raise ValidationError("The calendar domain may hold only letters, digits, dots and dashes.")
    occurrences = occurrences_between(engine, start=start, end=end)
    stamp = b"DTSTAMP:" + _ics_moment(clock.now()) + b"\r\n"
    calendar = Calendar()
    calendar.add("prodid", "-//Candidate CRM//Content calendar//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", "Content calendar")
    wrapper = calendar.to_ical()
    closing = b"END:VCALENDAR\r\n"
    shared: dict[int, bytes] = {}
    parts = [wrapper[: wrapper.rindex(closing)]]
    for o in occurrences:
        body = shared.get(o.item_id)
        if body is None:
            body = shared[o.item_id] = _ics_shared(o)
        ends = o.ends_at or o.starts_at + ICS_DEFAULT_DURATION
        parts.append(
            b"".join(
                (
                    _BEGIN_EVENT,
                    f"UID:content-{o.item_id}-{o.key}@{domain}\r\n".encode("ascii"),
                    stamp,
                    b"DTSTART:" + _ics_moment(o.starts_at) + b"\r\n",
                    b"DTEND:" + _ics_moment(ends) + b"\r\n",
                    body,
                    _END_EVENT,
                )
            )
        )
    parts.append(closing)
    return b"".join(parts)


CSV_COLUMNS = (
    "Date",
    "Time",
    "End",
    "Channel",
    "Title",
    "Pools",
    "Theme",
    "Status",
    "Owner",
    "Link",
    "Notes",
)


def export_csv(
    engine: Engine, *, start: dt.datetime, end: dt.datetime, timezone: str = DEFAULT_TIMEZONE
) -> bytes:
    """One row per occurrence in [start, end), dates and times in `timezone`, UTF-8, every
    cell safe from spreadsheet formulas; import_csv reads it back."""
    zone = _zone(timezone)
    occurrences = occurrences_between(engine, start=start, end=end)
    with read_session(engine) as session:
        usernames = dict(session.execute(select(User.id, User.username)).all())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in occurrences:
        local = o.starts_at.astimezone(zone)
        end_cell = ""
        if o.ends_at is not None:
            local_end = o.ends_at.astimezone(zone)
            end_cell = (
                f"{local_end:%H:%M}"
                if local_end.date() == local.date()
                else f"{local_end:%Y-%m-%d %H:%M}"
            )
        owner = usernames.get(o.owner_id, "") if o.owner_id is not None else ""
        cells = [
            f"{local:%Y-%m-%d}",
            f"{local:%H:%M}",
            end_cell,
            CHANNEL_LABELS[o.channel],
            o.title,
            ", ".join(o.pools),
            THEME_LABELS.get(o.theme or "", ""),
            STATUS_LABELS[o.status],
            owner,
            o.link or "",
            o.body or "",
        ]
        writer.writerow([escape_cell(cell) for cell in cells])
    return out.getvalue().encode("utf-8")


# --- import -----------------------------------------------------------------------------

# field -> the header names it goes by in the spreadsheets people keep ("|" between).
_HEADER_ALIASES = {
    "date": "date|day|publish date|publication date|post date|go live|go-live date|"
    "scheduled date|scheduled for|scheduled|when|date and time|datetime|start|start date|"
    "starts at|publish on|launch date",
    "time": "time|publish time|post time|start time|hour|time of day",
    "end": "end|ends|ends at|end time|end date|finish|finishes",
    "channel": "channel|platform|network|social network|medium|media|outlet|type|content type",
    "title": "title|topic|subject|headline|name|post title|idea|item",
    "pools": "pool|pools|audience|audiences|target audience|talent pool|talent pools|segment|"
    "segments|target",
    "theme": "theme|content theme|pillar|content pillar|category|topic area",
    "status": "status|state|stage|progress",
    "owner": "owner|author|assignee|assigned to|responsible|who|writer",
    "link": "link|url|links|web address|post link",
    "notes": "notes|note|content|body|copy|description|text|caption|details|comments|post copy",
}
_FIELD_NAMES = {name: name.capitalize() for name in _HEADER_ALIASES}


def _words(labels: dict[str, str], aliases: dict[str, str]) -> dict[str, str]:
    """Cell text (reduced like a header) -> choice: its key, its label and its aliases."""
    table = {header_key(label): key for key, label in labels.items()}
    table.update({header_key(key): key for key in labels})
    for key, names in aliases.items():
        table.update({header_key(name): key for name in names.split("|")})
    return table


_HEADER_FIELDS = _words({}, _HEADER_ALIASES)
_CHANNEL_WORDS = _words(
    CHANNEL_LABELS,
    {
        "email_newsletter": "email|newsletter|mail|email campaign|e-mail",
        "linkedin_post": "linkedin|li|li post|linkedin update",
        "linkedin_message": "inmail|linkedin inmail|linkedin dm",
        "x": "twitter|x/twitter|twitter/x|tweet",
        "instagram": "insta|ig",
        "sms": "text|text message",
        "blog": "blog post|article|careers blog",
        "event": "webinar|meetup|career fair",
    },
)
_THEME_WORDS = _words(
    THEME_LABELS,
    {
        "company_news": "news|company update",
        "industry_insight": "insight|industry|industry news|thought leadership",
        "career_advice": "advice|career tips|tips",
        "employee_story": "employee stories|people story|team story|meet the team",
        "job_alert": "job|jobs|job alerts|vacancy|vacancies|hiring",
    },
)
_STATUS_WORDS = _words(
    STATUS_LABELS,
    {
        "idea": "todo|to do|backlog|new",
        "draft": "in progress|wip|writing|drafting|in review",
        "scheduled": "planned|ready|approved",
        "published": "done|posted|live|sent",
    },
)
_MONTHS = {
    name.lower(): number
    for number in range(1, 13)
    for name in (_calendar.month_name[number], _calendar.month_abbr[number])
}
_MONTHS["sept"] = 9
_SLASH_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})[/.\-](\d{1,2})[/.\-](\d{1,2})$")
_WORD_DATE = re.compile(
    r"^(?:[a-z]+,?\s+)?(?:(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})"
    r"|([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))$"
)
_TIME = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?(?::(\d{2}))?\s*([ap])?\.?m?\.?$")


def _parse_time(text: str) -> dt.time | None:
    text = text.strip().lower()
    if text in {"noon", "midday"}:
        return dt.time(12, 0)
    if re.fullmatch(r"\d{4}", text):  # 0930
        text = f"{text[:2]}:{text[2:]}"
    match = _TIME.match(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(4):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(4) == "p" else 0)
    elif match.group(2) is None:
        return None  # a bare number is not a time
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _parse_date(text: str, day_first: bool) -> dt.date | None:
    text = " ".join(text.strip().lower().split())
    try:
        if match := _ISO_DATE.match(text):
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if match := _SLASH_DATE.match(text):
            first, second = int(match[1]), int(match[2])
            day, month = (first, second) if day_first else (second, first)
            return dt.date(_year(match[3]), month, day)
        if match := _WORD_DATE.match(text):
            if match[1]:
                day, month_name, year = int(match[1]), match[2], int(match[3])
            else:
                month_name, day, year = match[4], int(match[5]), int(match[6])
            month = _MONTHS.get(month_name)
            return dt.date(year, month, day) if month else None
    except ValueError:
        return None
    return None


def _parse_when(
    date_text: str, time_text: str, zone: dt.tzinfo, day_first: bool
) -> tuple[dt.datetime | None, str | None]:
    """(UTC moment, None) or (None, the problem) for a date cell and a time cell."""
    date_text, time_text = date_text.strip(), time_text.strip()
    try:
        moment = dt.datetime.fromisoformat(date_text.replace("Z", "+00:00"))
        if "T" in date_text or " " in date_text or ":" in date_text:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
            return moment.astimezone(dt.UTC), None
    except ValueError:
        pass
    parts = date_text.rsplit(" ", 2)
    day = _parse_date(date_text, day_first)
    inline_time = None
    if day is None:
        # "05/01/2027 9:00", "5 Jan 2027 9am", "5 Jan 2027 9:30 pm"
        for cut in (1, 2):
            if len(parts) > cut:
                head, tail = " ".join(parts[:-cut]), " ".join(parts[-cut:])
                day = _parse_date(head, day_first)
                inline_time = _parse_time(tail) if day else None
                if day and inline_time:
                    break
                day = None
    if day is None:
        return None, f"{date_text!r} is not a date this import can read (use e.g. 2027-01-05)."
    when = inline_time
    if time_text:
        when = _parse_time(time_text)
        if when is None:
            return None, f"{time_text!r} is not a time this import can read (use e.g. 09:30)."
    moment = dt.datetime.combine(day, when or DEFAULT_TIME, zone)
    return moment.astimezone(dt.UTC), None


def _day_first(dates: Iterable[str], default: bool) -> bool:
    """Whether slash dates in this file are day/month: decided by a date that can only be
    read one way (13/01 or 01/13), else the default."""
    day_first = month_first = False
    for text in dates:
        match = _SLASH_DATE.match(text.strip().split(" ")[0]) if text.strip() else None
        if match:
            first, second = int(match[1]), int(match[2])
            day_first |= first > 12
            month_first |= second > 12
    if day_first and month_first:
        return default
    if day_first or month_first:
        return day_first
    return default


def _unescape(value: str) -> str:
    """A cell our export protected from spreadsheets ('=..., '-5 tips) comes back as typed."""
    if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@", "\t", "\r"):
        return value[1:]
    return value


def _word(value: str, words: dict[str, str]) -> str | None:
    return words.get(header_key(value))


class _Lookups:
    """Pools by name and users by username or display name, read once per import."""

    def __init__(self, session: Session) -> None:
        self.pools = {
            name.strip().lower(): pid for pid, name in session.execute(select(Pool.id, Pool.name))
        }
        self.usernames: dict[str, int] = {}
        self.display_names: dict[str, list[int]] = defaultdict(list)
        for uid, username, display in session.execute(
            select(User.id, User.username, User.display_name)
        ):
            self.usernames[username.lower()] = uid
            self.display_names[" ".join(display.lower().split())].append(uid)

    def pool_ids(self, text: str) -> tuple[list[int], str | None]:
        whole = text.strip().lower()
        if whole in self.pools:  # a pool whose name holds a comma
            return [self.pools[whole]], None
        found = []
        for part in re.split(r"[,;|]", text):
            name = part.strip().lower()
            if name and name not in self.pools:
                return [], f"There is no pool called {part.strip()!r}."
            if name:
                found.append(self.pools[name])
        return found, None

    def owner_id(self, text: str) -> tuple[int | None, str | None]:
        wanted = " ".join(text.lower().split())
        if wanted in self.usernames:
            return self.usernames[wanted], None
        matches = self.display_names.get(wanted, [])
        if len(matches) == 1:
            return matches[0], None
        if matches:
            return None, f"{text!r} names {len(matches)} users; use the username."
        return None, f"{text!r} is not a user of this app."


def _choice(
    text: str, words: dict[str, str], labels: dict[str, str], what: str
) -> tuple[str | None, str | None]:
    found = _word(text, words)
    if found is None:
        return None, f"{text!r} is not {what} ({', '.join(labels.values())})."
    return found, None


# The import column a problem found by _clean_draft is about.
_DRAFT_COLUMNS = {
    "title": "title",
    "starts_at": "date",
    "channel": "channel",
    "ends_at": "end",
    "status": "status",
    "theme": "theme",
    "body": "notes",
    "link": "link",
    "owner_id": "owner",
    "pool_ids": "pools",
}


def _row_draft(
    value: dict[str, str], zone: dt.tzinfo, day_first: bool, lookups: _Lookups
) -> tuple[ItemDraft | None, list[tuple[str, str]]]:
    """The draft a spreadsheet row describes, or the (column, problem) pairs it has."""
    problems: list[tuple[str, str]] = []

    def check(column: str, result: tuple[Any, str | None]) -> Any:
        if result[1]:
            problems.append((column, result[1]))
        return result[0]

    starts_at = None
    if not value["date"]:
        problems.append(("date", "Give the item a date."))
    else:
        when = _parse_when(value["date"], value.get("time", ""), zone, day_first)
        starts_at = check("time" if when[1] and "not a time" in when[1] else "date", when)
    channel = None
    if not value["channel"]:
        problems.append(("channel", "Choose a channel for the item."))
    else:
        channel = check(
            "channel",
            _choice(value["channel"], _CHANNEL_WORDS, CHANNEL_LABELS, "a channel of the calendar"),
        )
    ends_at = None
    if value.get("end") and starts_at is not None:
        end_time = _parse_time(value["end"])
        if end_time is not None:  # a time alone: on the day it starts
            ends_at = dt.datetime.combine(starts_at.astimezone(zone).date(), end_time, zone)
        else:
            ends_at = check("end", _parse_when(value["end"], "", zone, day_first))
    theme = None
    if value.get("theme"):
        theme = check(
            "theme", _choice(value["theme"], _THEME_WORDS, THEME_LABELS, "a content theme")
        )
    status = "idea"
    if value.get("status"):
        status = check("status", _choice(value["status"], _STATUS_WORDS, STATUS_LABELS, "a status"))
    owner_id = check("owner", lookups.owner_id(value["owner"])) if value.get("owner") else None
    pool_ids = check("pools", lookups.pool_ids(value["pools"])) if value.get("pools") else []
    if problems:
        return None, problems
    draft = ItemDraft(
        title=value["title"],
        channel=channel or "",
        starts_at=starts_at,
        ends_at=ends_at,
        pool_ids=pool_ids,
        body=value.get("notes") or None,
        link=value.get("link") or None,
        owner_id=owner_id,
        status=status,
        theme=theme,
    )
    try:
        _clean_draft(draft)
    except _FieldError as error:
        return None, [(_DRAFT_COLUMNS.get(error.field, ""), str(error))]
    return draft, []


def _calendar_columns(shape: csvfile.FileShape) -> dict[str, int]:
    """Field -> column index (the first column with a known header wins), or InputUnusable
    when the date, channel or title column is missing."""
    columns: dict[str, int] = {}
    for index, header in enumerate(shape.headers):
        name = _HEADER_FIELDS.get(header_key(header))
        if name and name not in columns:
            columns[name] = index
    found = ", ".join(shape.headers)
    for required, example in (
        ("date", "Date"),
        ("channel", "Channel or Platform"),
        ("title", "Title or Topic"),
    ):
        if required not in columns:
            raise InputUnusable(
                f"The file has no {required} column (a header such as {example}); found: {found}."
            )
    return columns


def import_csv(
    engine: Engine,
    *,
    actor: User,
    data: bytes,
    filename: str,
    timezone: str = DEFAULT_TIMEZONE,
    day_first: bool = True,
) -> CalendarImportResult:
    """Add the rows of the team's content spreadsheet to the calendar.

    The file is read like a candidate import (encoding, delimiter, notes above the header;
    a file that cannot be read raises InputUnusable with one sentence). Headers are matched
    by name, whatever their case (Date, Time, Channel or Platform, Title or Topic, Pool or
    Audience, Theme, Status, Owner, Link or URL, Notes or Content). Dates and times without
    a timezone are in `timezone`; 03/04/2027 is read day first unless the file shows
    otherwise (a date such as 04/13/2027) or day_first is False. A row with a problem is
    refused and reported as (row, column, problem); a row identical to an item already on
    the calendar is skipped; the other rows are saved together in one transaction.
    """
    require_writer(engine, actor)
    zone = _zone(timezone)
    if len(data) > MAX_IMPORT_BYTES:
        raise InputUnusable(
            f"The file is {len(data) / 1_048_576:,.1f} MB; a calendar import takes at most "
            f"{MAX_IMPORT_BYTES // 1_048_576} MB."
        )
    shape = csvfile.inspect(data, known_headers=set(_HEADER_FIELDS), count_rows=True)
    if shape.data_rows and shape.data_rows > MAX_IMPORT_ROWS:
        raise InputUnusable(
            f"The file has {shape.data_rows:,} rows; a calendar import takes at most "
            f"{MAX_IMPORT_ROWS:,}, so split it."
        )
    columns = _calendar_columns(shape)
    with csvfile.CsvRows(data, shape) as reader:
        reader.read_header()
        rows = list(reader)
    date_at = columns["date"]
    day_first = _day_first(
        (cells[date_at] for _line, cells, _p in rows if cells and len(cells) > date_at), day_first
    )

    def header(name: str) -> str:
        return shape.headers[columns[name]] if name in columns else _FIELD_NAMES.get(name, name)

    errors: list[tuple[int, str, str]] = []
    good: list[ItemDraft] = []
    with read_session(engine) as session:
        lookups = _Lookups(session)
    for line, cells, problem in rows:
        if cells is None:
            errors.append((line, "", problem or "The row is not valid CSV."))
            continue
        value = {
            name: _unescape(cells[index]).strip() if index < len(cells) else ""
            for name, index in columns.items()
        }
        draft, problems = _row_draft(value, zone, day_first, lookups)
        errors.extend((line, header(name) if name else "", text) for name, text in problems)
        if draft is not None:
            good.append(draft)

    created = skipped = 0
    with write_session(engine, actor=actor) as session:
        existing: set[tuple[str, str, dt.datetime]] = set()
        if good:
            moments = [draft.starts_at for draft in good if draft.starts_at]
            existing = {
                tuple(row)
                for row in session.execute(
                    select(ContentItem.title, ContentItem.channel, ContentItem.scheduled_at).where(
                        ContentItem.recurrence.is_(None),
                        ContentItem.scheduled_at >= min(moments),
                        ContentItem.scheduled_at <= max(moments),
                    )
                )
            }
        for draft in good:
            clean = _clean_draft(draft)
            values = clean.values
            signature = (values["title"], values["channel"], values["scheduled_at"])
            if signature in existing:
                skipped += 1
                continue
            existing.add(signature)
            _apply(session, None, clean)
            created += 1
        result = CalendarImportResult(
            read=len(rows), created=created, skipped=skipped, errors=errors
        )
        batch = ImportBatch(
            kind="content",
            filename=filename[:255] or "calendar.csv",
            created_by_id=actor.id,
            rows_read=len(rows),
            created_count=created,
            duplicate_count=skipped,
            error_count=len({line for line, _column, _problem in errors}),
            error_report=result.error_report_csv() or None,
            options={"timezone": timezone, "day_first": day_first},
        )
        session.add(batch)
        session.flush()
        result.batch_id = batch.id
        audit.record(
            session,
            actor=actor,
            action="content.import",
            entity="import_batch",
            entity_id=batch.id,
            detail={"created": created, "skipped": skipped, "errors": len(errors)},
        )
    return result


__all__ = [
    "CHANNEL_COLOURS",
    "CHANNEL_LABELS",
    "STATUS_LABELS",
    "THEME_LABELS",
    "CadenceWarning",
    "CalendarEntry",
    "CalendarImportResult",
    "ItemDetail",
    "ItemDraft",
    "Occurrence",
    "cadence_warnings",
    "campaign_prefill",
    "delete_item",
    "duplicate_item",
    "export_csv",
    "export_ics",
    "get_item",
    "import_csv",
    "items_between",
    "link_campaign",
    "mark_published",
    "move_item",
    "move_occurrence",
    "occurrences_between",
    "restore_occurrence",
    "save_item",
    "save_table",
    "set_pool_cadence",
    "skip_occurrence",
    "theme_balance",
]
