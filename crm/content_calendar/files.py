"""The calendar as files: iCalendar and CSV export, and CSV import with its error report.

Export writes one event or row per occurrence in a window. Import reads the content
spreadsheet a team already keeps (headers matched by name, dates in several forms, pools
and owners by name) and saves its good rows in one transaction; refused rows come back as
(row, column, problem) and as a CSV error report.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from icalendar import Calendar, Event
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import clock, csvfile
from crm.content_calendar.drafts import ItemDraft, clean_draft
from crm.content_calendar.file_words import (
    CHANNEL_WORDS,
    FIELD_NAMES,
    HEADER_RANKS,
    STATUS_WORDS,
    THEME_WORDS,
)
from crm.content_calendar.items import apply_draft
from crm.content_calendar.labels import CHANNEL_LABELS, STATUS_LABELS, THEME_LABELS
from crm.content_calendar.occurrences import Occurrence, occurrences_between
from crm.content_calendar.values import DEFAULT_TIME, DEFAULT_TIMEZONE, FieldError, zone
from crm.db import read_session, write_session
from crm.errors import InputUnusable, ValidationError
from crm.imports import aliases
from crm.imports.cells import escape_cell, unescape_cell
from crm.imports.report import audit_batch, check_size, report_csv
from crm.imports.values import day_first as file_day_first
from crm.imports.values import parse_date, parse_time
from crm.models import ContentItem, ImportBatch, Pool, User
from crm.permissions import require_writer

ICS_DEFAULT_DURATION = dt.timedelta(minutes=30)  # an item without an end, in a calendar app
ICS_DOMAIN = "content-calendar.candidate-crm"
MAX_IMPORT_BYTES = 20 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
_ICS_STATUS = {
    "idea": "TENTATIVE",
    "draft": "TENTATIVE",
    "scheduled": "CONFIRMED",
    "published": "CONFIRMED",
}


@dataclass
class CalendarImportResult:
    read: int
    created: int
    skipped: int  # rows identical to an item already on the calendar
    errors: list[tuple[int, str, str]]  # (row, column, problem)
    batch_id: int | None = None

    def error_report_csv(self) -> str:
        """The refused rows as CSV (row, column, problem); empty when none was refused."""
        return report_csv(self.errors)


# --- export -----------------------------------------------------------------------------


_ICS_DOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")
_BEGIN_EVENT, _END_EVENT = b"BEGIN:VEVENT\r\n", b"END:VEVENT\r\n"


def _ics_moment(moment: dt.datetime) -> bytes:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ").encode("ascii")


def _ics_shared(o: Occurrence) -> bytes:
    """The properties every occurrence of an item shares, serialized by icalendar (escaping,
    folding) once per item, without the BEGIN and END lines."""
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
    tz = zone(timezone)
    occurrences = occurrences_between(engine, start=start, end=end)
    with read_session(engine) as session:
        usernames = dict(session.execute(select(User.id, User.username)).all())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in occurrences:
        local = o.starts_at.astimezone(tz)
        end_cell = ""
        if o.ends_at is not None:
            local_end = o.ends_at.astimezone(tz)
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

T = TypeVar("T")


def _or_none(parse: Callable[[str], T], text: str) -> T | None:
    """What a core parser reads in the cell, or None where it reads nothing."""
    try:
        return parse(text)
    except ValueError:
        return None


def _parse_when(
    date_text: str, time_text: str, tz: dt.tzinfo, day_first: bool
) -> tuple[dt.datetime | None, str | None]:
    """(UTC moment, None) or (None, the problem) for a date cell and a time cell."""
    date_text, time_text = date_text.strip(), time_text.strip()
    try:
        moment = dt.datetime.fromisoformat(date_text.replace("Z", "+00:00"))
        if "T" in date_text or " " in date_text or ":" in date_text:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=tz)
            return moment.astimezone(dt.UTC), None
    except ValueError:
        pass
    parts = date_text.rsplit(" ", 2)
    read_date = partial(parse_date, month_first=not day_first)
    day = _or_none(read_date, date_text)
    inline_time = None
    if day is None:
        # "05/01/2027 9:00", "5 Jan 2027 9am", "5 Jan 2027 9:30 pm"
        for cut in (1, 2):
            if len(parts) > cut:
                head, tail = " ".join(parts[:-cut]), " ".join(parts[-cut:])
                day = _or_none(read_date, head)
                inline_time = _or_none(parse_time, tail) if day else None
                if day and inline_time:
                    break
                day = None
    if day is None:
        return None, f"{date_text!r} is not a date this import can read (use e.g. 2027-01-05)."
    when = inline_time
    if time_text:
        when = _or_none(parse_time, time_text)
        if when is None:
            return None, f"{time_text!r} is not a time this import can read (use e.g. 09:30)."
    moment = dt.datetime.combine(day, when or DEFAULT_TIME, tz)
    return moment.astimezone(dt.UTC), None


def _word(value: str, words: dict[str, str]) -> str | None:
    return words.get(aliases.header_key(value))


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


# The import column a problem found by clean_draft is about.
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
    value: dict[str, str], tz: dt.tzinfo, day_first: bool, lookups: _Lookups
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
        when = _parse_when(value["date"], value.get("time", ""), tz, day_first)
        starts_at = check("time" if when[1] and "not a time" in when[1] else "date", when)
    channel = None
    if not value["channel"]:
        problems.append(("channel", "Choose a channel for the item."))
    else:
        channel = check(
            "channel",
            _choice(value["channel"], CHANNEL_WORDS, CHANNEL_LABELS, "a channel of the calendar"),
        )
    ends_at = None
    if value.get("end") and starts_at is not None:
        end_time = _or_none(parse_time, value["end"])
        if end_time is not None:  # a time alone: on the day it starts
            ends_at = dt.datetime.combine(starts_at.astimezone(tz).date(), end_time, tz)
        else:
            ends_at = check("end", _parse_when(value["end"], "", tz, day_first))
    theme = None
    if value.get("theme"):
        theme = check(
            "theme", _choice(value["theme"], THEME_WORDS, THEME_LABELS, "a content theme")
        )
    status = "idea"
    if value.get("status"):
        status = check("status", _choice(value["status"], STATUS_WORDS, STATUS_LABELS, "a status"))
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
        clean_draft(draft)
    except FieldError as error:
        return None, [(_DRAFT_COLUMNS.get(error.field, ""), str(error))]
    return draft, []


def _calendar_columns(shape: csvfile.FileShape) -> dict[str, int]:
    """Field -> column index (each field's most telling header wins), or InputUnusable
    when the date, channel or title column is missing."""
    mapping = aliases.auto_mapping(shape.headers, HEADER_RANKS)
    columns = {name: shape.headers.index(header) for header, name in mapping.items() if name}
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

    The file is read like a candidate import, on the CSV core (crm.imports: encoding,
    delimiter, notes above the header, the size limit; a file that cannot be read raises
    InputUnusable with one sentence). Headers are matched by name, whatever their case, each
    field from its most telling header (Date, Time, Channel or Platform, Title or Topic, Pool
    or Audience, Theme, Status, Owner, Link or URL, Notes or Content: file_words). Cells our
    export escaped come back as they were (crm.imports.cells). Dates and times without
    a timezone are in `timezone`; 03/04/2027 is read day first unless the file shows
    otherwise (a date such as 04/13/2027) or day_first is False. A row with a problem is
    refused and reported as (row, column, problem); a row identical to an item already on
    the calendar is skipped; the other rows are saved together in one transaction.
    """
    require_writer(engine, actor)
    tz = zone(timezone)
    check_size(data, MAX_IMPORT_BYTES, "a calendar import")
    shape = csvfile.inspect(data, known_headers=set(HEADER_RANKS), count_rows=True)
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
    day_first = file_day_first(
        (cells[date_at] for _line, cells, _p in rows if cells and len(cells) > date_at),
        default=day_first,
    )

    def header(name: str) -> str:
        return shape.headers[columns[name]] if name in columns else FIELD_NAMES.get(name, name)

    errors: list[tuple[int, str, str]] = []
    good: list[ItemDraft] = []
    with read_session(engine) as session:
        lookups = _Lookups(session)
    for line, cells, problem in rows:
        if cells is None:
            errors.append((line, "", problem or "The row is not valid CSV."))
            continue
        value = {
            name: unescape_cell(cells[index]).strip() if index < len(cells) else ""
            for name, index in columns.items()
        }
        draft, problems = _row_draft(value, tz, day_first, lookups)
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
            clean = clean_draft(draft)
            values = clean.values
            signature = (values["title"], values["channel"], values["scheduled_at"])
            if signature in existing:
                skipped += 1
                continue
            existing.add(signature)
            apply_draft(session, None, clean)
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
        audit_batch(
            session,
            actor=actor,
            batch_id=batch.id,
            detail={"created": created, "skipped": skipped, "errors": len(errors)},
            action="content.import",
        )
    return result
