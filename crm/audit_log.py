"""The audit log's read side, for admins: search it by action, user and period, page
through it newest first, and export it as CSV (crm.audit writes it)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any, TypedDict, Unpack

from sqlalchemy import ColumnElement, Engine, or_, select

from crm import audit
from crm.db import read_session, write_session
from crm.errors import ValidationError
from crm.export_values import csv_cell, jsonable
from crm.models import AuditLog, User
from crm.paging import check_page, moment_or_now, page_of
from crm.permissions import require_admin

CSV_BATCH = 1000

CSV_COLUMNS = ("at", "username", "action", "entity", "entity_id", "detail")


class Search(TypedDict, total=False):
    """What an admin looks for: an action (and its sub-actions), a user, a period."""

    action: str | None
    username: str | None
    since: dt.datetime | dt.date | None
    until: dt.datetime | dt.date | None


def _moment(value: dt.datetime | dt.date | None, *, end: bool) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return moment_or_now(value)
    day = value + dt.timedelta(days=1) if end else value
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _cleaned(search: Search) -> tuple[str, str]:
    """The action and the username as the log stores them (trimmed; usernames lower-case)."""
    action = (search.get("action") or "").strip()
    return action, (search.get("username") or "").strip().lower()


def _conditions(search: Search) -> list[ColumnElement[bool]]:
    """action matches itself and its sub-actions ("candidate" finds "candidate.erase");
    a date for until takes in that whole day."""
    found: list[ColumnElement[bool]] = []
    action, username = _cleaned(search)
    since, until = search.get("since"), search.get("until")
    if action:
        found.append(
            or_(
                AuditLog.action == action, AuditLog.action.startswith(action + ".", autoescape=True)
            )
        )
    if username:
        found.append(AuditLog.username == username)
    low = _moment(since, end=False)
    high = _moment(until, end=True)
    if low is not None and high is not None and high < low:
        raise ValidationError("The period ends before it starts.")
    if low is not None:
        found.append(AuditLog.at >= low)
    if high is not None:
        # A moment is the last one included; a date takes in its whole day.
        found.append(AuditLog.at <= high if isinstance(until, dt.datetime) else AuditLog.at < high)
    return found


_ENTRY_COLUMNS = select(
    AuditLog.id,
    AuditLog.at,
    AuditLog.username,
    AuditLog.action,
    AuditLog.entity,
    AuditLog.entity_id,
    AuditLog.detail,
)
_NEWEST_FIRST = (AuditLog.at.desc(), AuditLog.id.desc())


def entries(
    engine: Engine,
    *,
    actor: User,
    limit: int = 100,
    offset: int = 0,
    **search: Unpack[Search],
) -> tuple[list[dict[str, Any]], int]:
    """One page of the audit log, newest first, and how many entries match (admins only)."""
    require_admin(engine, actor)
    limit, offset = check_page(limit, offset)
    conditions = _conditions(search)
    return page_of(
        engine,
        _ENTRY_COLUMNS,
        table=AuditLog,
        conditions=conditions,
        order_by=_NEWEST_FIRST,
        limit=limit,
        offset=offset,
    )


def actions(engine: Engine, *, actor: User) -> list[str]:
    """The actions in the log, for the admin view's filter."""
    require_admin(engine, actor)
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(AuditLog.action).group_by(AuditLog.action).order_by(AuditLog.action)
            )
        )


def export_csv(engine: Engine, *, actor: User, **search: Unpack[Search]) -> bytes:
    """The matching audit entries as CSV (newest first, UTF-8 with a BOM, formula-escaped);
    admins only, and the export is itself audited."""
    require_admin(engine, actor)
    conditions = _conditions(search)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    written = 0
    with read_session(engine) as session:
        result = session.execute(
            _ENTRY_COLUMNS.where(*conditions)
            .order_by(*_NEWEST_FIRST)
            .execution_options(yield_per=CSV_BATCH)
        )
        for row in result:
            writer.writerow(
                [
                    csv_cell(row.at.isoformat(timespec="seconds")),
                    csv_cell(row.username),
                    csv_cell(row.action),
                    csv_cell(row.entity),
                    csv_cell(row.entity_id),
                    csv_cell(jsonable(row.detail)),
                ]
            )
            written += 1
    with write_session(engine, actor=actor, need="admin") as session:
        audit.record(
            session,
            actor=actor,
            action="audit.export",
            detail={
                "rows": written,
                "action": _cleaned(search)[0] or None,
                "username": _cleaned(search)[1] or None,
                "since": jsonable(search.get("since")),
                "until": jsonable(search.get("until")),
            },
        )
    return buffer.getvalue().encode("utf-8")
