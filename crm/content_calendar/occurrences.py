"""What is on the calendar in a window: every occurrence, with series expanded.

Occurrences are never stored. A view reads single items with a date range in SQL, and only
the series that can reach its window (by the scheduled_at index, see recurrence), which it
expands with their skipped and moved occurrences.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm.content_calendar.recurrence import MAX_MOVE, SERIES_SPAN, expand
from crm.db import read_session
from crm.models import ContentItem, ContentItemPool, Pool, User


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


# What an occurrence takes from its item's row, and a Home entry from its occurrence, as is.
_ROW_FIELDS = ("title", "channel", "status", "theme", "campaign_id", "link", "owner_id", "body")
_ENTRY_FIELDS = ("title", "channel", "status", "theme", "pools")


def chunks(values: Sequence[int], size: int = 1000) -> Iterator[Sequence[int]]:
    """The values in slices of at most `size`, for IN lists the database accepts."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def read_occurrences(
    session: Session,
    *,
    start: dt.datetime,
    end: dt.datetime,
    pool_ids: Sequence[int] | None = None,
    channel: str | None = None,
) -> list[Occurrence]:
    """Every occurrence starting in [start, end), earliest first (pool_ids: aimed at one of
    those pools; channel: on that channel)."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    filters = []
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
            ContentItem.scheduled_at >= start - SERIES_SPAN,
            *filters,
        )
    ).all()
    rows = [*singles, *series]
    pools: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for chunk in chunks([row.id for row in rows]):
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
        duration = row.ends_at - row.scheduled_at if row.ends_at else None
        if row.recurrence:
            moments = expand(
                row.scheduled_at, row.recurrence, row.recurrence_exceptions, start, end
            )
        else:
            moments = iter([(row.scheduled_at.date().isoformat(), row.scheduled_at, False)])
        found.extend(
            Occurrence(
                **{name: getattr(row, name) for name in _ROW_FIELDS},
                item_id=row.id,
                key=key,
                starts_at=moment,
                ends_at=moment + duration if duration is not None else None,
                pools=tuple(name for name, _ in named),
                pool_ids=tuple(pid for _, pid in named),
                recurring=bool(row.recurrence),
                moved=moved,
                owner=owners.get(row.owner_id),
            )
            for key, moment, moved in moments
        )
    found.sort(key=lambda o: (o.starts_at, o.item_id, o.key))
    return found


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
        return read_occurrences(
            session,
            start=start,
            end=end,
            pool_ids=None if pool_id is None else [pool_id],
            channel=channel,
        )


def items_between(engine: Engine, *, start: dt.datetime, end: dt.datetime) -> list[CalendarEntry]:
    """Occurrences in [start, end), earliest first, in the short form Home lists."""
    return [
        CalendarEntry(
            **{name: getattr(o, name) for name in _ENTRY_FIELDS},
            id=o.item_id,
            scheduled_at=o.starts_at,
        )
        for o in occurrences_between(engine, start=start, end=end)
    ]
