"""Calendar items: creating, changing, moving and deleting them, one occurrence or all.

Every change is one service call that checks the actor may write, saves in one transaction
and writes its audit entry there. This covers bulk edits from the table editor (all rows
or none), marking an item published (with touchpoints on its audience's timelines), and
the tie between an email newsletter item and the campaign that sends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import Engine, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from crm import audit, clock
from crm.content_calendar.drafts import (
    ITEM_COLUMNS,
    MAX_TITLE,
    CleanDraft,
    ItemDraft,
    clean_draft,
)
from crm.content_calendar.labels import CHANNEL_LABELS
from crm.content_calendar.occurrences import chunks
from crm.content_calendar.recurrence import (
    MAX_MOVE,
    check_recurrence,
    remap_exceptions,
    series_slot,
    with_exception,
)
from crm.content_calendar.values import DEFAULT_TIMEZONE, aware, blank, whole_number, zone
from crm.db import get_existing, read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.models import Activity, Campaign, Candidate, ContentItem, ContentItemPool, Pool, User
from crm.permissions import require_writer
from crm.pool_filter import membership_condition

# Channels where a published item reached each person directly: a touch moves their
# "last contacted". Posts, blogs and the like only add a timeline entry.
DIRECT_CHANNELS = {
    "email_newsletter": "email",
    "linkedin_message": "linkedin_message",
    "sms": "sms",
}
# The ContentItem columns an ItemDetail shows under the same name.
_DETAIL_COLUMNS = (
    *ITEM_COLUMNS,
    "id",
    "campaign_id",
    "published_at",
    "created_at",
    "updated_at",
)
# The fields the table editor shows and may change.
_TABLE_FIELDS = ("title", "channel", "starts_at", "status", "theme", "owner_id", "link")


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
        draft = ItemDraft(**{f.name: getattr(self, f.name) for f in fields(ItemDraft)})
        draft.pool_ids = list(self.pool_ids)
        draft.recurrence = dict(self.recurrence) if self.recurrence else None
        return draft


# --- the pieces every change uses -------------------------------------------------------


def _record(
    session: Session, actor: User, action: str, item_id: int | None, detail: dict[str, Any]
) -> None:
    audit.record(
        session,
        actor=actor,
        action=f"content.{action}",
        entity="content_item",
        entity_id=item_id,
        detail=detail,
    )


def _published_at(status: str, current: dt.datetime | None, starts_at: dt.datetime) -> Any:
    if status != "published":
        return None
    return current or min(starts_at, clock.now())


def _pool_ids(session: Session, item_id: int) -> list[int]:
    return list(
        session.scalars(
            select(ContentItemPool.pool_id).where(ContentItemPool.content_item_id == item_id)
        )
    )


def _set_pools(session: Session, item_id: int, pool_ids: Sequence[int]) -> None:
    session.execute(delete(ContentItemPool).where(ContentItemPool.content_item_id == item_id))
    if pool_ids:
        session.execute(
            insert(ContentItemPool),
            [{"content_item_id": item_id, "pool_id": pool_id} for pool_id in pool_ids],
        )


def _load(session: Session, item_id: int) -> ContentItem:
    item = get_existing(session, ContentItem, item_id, "calendar item", with_for_update=True)
    return item


def apply_draft(session: Session, item: ContentItem | None, clean: CleanDraft) -> ContentItem:
    """Create the item (item None) or change it to the checked draft, in the session.

    A changed series carries its skipped and moved occurrences over by their number.
    """
    values = clean.values
    if item is None:
        item = ContentItem(recurrence_exceptions=[], **values)
        item.published_at = _published_at(values["status"], None, values["scheduled_at"])
        session.add(item)
        session.flush()
    else:
        item.recurrence_exceptions = remap_exceptions(
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


def get_item(engine: Engine, item_id: int) -> ItemDetail:
    with read_session(engine) as session:
        item = get_existing(session, ContentItem, item_id, "calendar item")
        pools = session.execute(
            select(Pool.id, Pool.name)
            .join(ContentItemPool, ContentItemPool.pool_id == Pool.id)
            .where(ContentItemPool.content_item_id == item_id)
            .order_by(Pool.name)
        ).all()
        owner = session.get(User, item.owner_id) if item.owner_id else None
        return ItemDetail(
            **{name: getattr(item, name) for name in _DETAIL_COLUMNS},
            starts_at=item.scheduled_at,
            pool_ids=tuple(pid for pid, _ in pools),
            pools=tuple(name for _, name in pools),
            owner=owner.display_name if owner else None,
            recurrence=dict(item.recurrence) if item.recurrence else None,
            exceptions=tuple(dict(e) for e in item.recurrence_exceptions or []),
        )


# --- writing ----------------------------------------------------------------------------


def save_item(engine: Engine, *, actor: User, draft: ItemDraft, item_id: int | None = None) -> int:
    """Create the item (item_id None) or save changes to it; returns its id.

    Changing a series' start or repeat rule carries its skipped and moved occurrences over
    by their number in the series (those past the new end are dropped).
    """
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        clean = clean_draft(draft, session)
        item = _load(session, item_id) if item_id is not None else None
        item = apply_draft(session, item, clean)
        _record(
            session,
            actor,
            "create" if item_id is None else "update",
            item.id,
            {"title": item.title},
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
        _set_pools(session, copy.id, _pool_ids(session, item_id))
        _record(session, actor, "duplicate", copy.id, {"from": item_id})
        return copy.id


def _move(item: ContentItem, starts_at: dt.datetime) -> None:
    if item.recurrence:
        item.recurrence_exceptions = remap_exceptions(
            item.scheduled_at,
            item.recurrence,
            starts_at,
            item.recurrence,
            item.recurrence_exceptions or [],
        )
    if item.ends_at is not None:
        item.ends_at = starts_at + (item.ends_at - item.scheduled_at)
    item.scheduled_at = starts_at


def _new_start(starts_at: Any, what: str) -> dt.datetime:
    if blank(starts_at):
        raise ValidationError(f"Give the {what} a date.")
    return aware(starts_at, "date", "starts_at")


def move_item(engine: Engine, *, actor: User, item_id: int, starts_at: dt.datetime) -> None:
    """Move the item, or a whole series with its exceptions, keeping its duration."""
    require_writer(engine, actor)
    starts_at = _new_start(starts_at, "item")
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        if item.recurrence:
            check_recurrence(item.recurrence, starts_at)
        _move(item, starts_at)
        _record(session, actor, "move", item_id, {"starts_at": starts_at.isoformat()})


def _set_exception(item: ContentItem, key: str, entry: dict[str, Any] | None) -> None:
    # A new list, so the JSON column is written.
    item.recurrence_exceptions = with_exception(item.recurrence_exceptions or [], key, entry)


def skip_occurrence(engine: Engine, *, actor: User, item_id: int, key: str) -> None:
    """Leave one occurrence of a series out."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        _series, day = series_slot(item.scheduled_at, item.recurrence, key)
        _set_exception(item, day.isoformat(), {"key": day.isoformat(), "skip": True})
        _record(session, actor, "skip_occurrence", item_id, {"key": day.isoformat()})


def move_occurrence(
    engine: Engine, *, actor: User, item_id: int, key: str, starts_at: dt.datetime
) -> None:
    """Move one occurrence of a series (at most MAX_MOVE away from its slot)."""
    require_writer(engine, actor)
    starts_at = _new_start(starts_at, "occurrence")
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        series, day = series_slot(item.scheduled_at, item.recurrence, key)
        slot = series.at(day)
        if abs(starts_at - slot) > MAX_MOVE:
            raise ValidationError(
                "An occurrence can move at most a year from its planned date; "
                "move the whole series instead."
            )
        moved = {"key": day.isoformat(), "starts_at": starts_at.isoformat()}
        _set_exception(item, day.isoformat(), None if starts_at == slot else moved)
        _record(session, actor, "move_occurrence", item_id, moved)


def restore_occurrence(engine: Engine, *, actor: User, item_id: int, key: str) -> None:
    """Undo a skip or a move: the occurrence is back in its slot."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        _series, day = series_slot(item.scheduled_at, item.recurrence, key)
        _set_exception(item, day.isoformat(), None)
        _record(session, actor, "restore_occurrence", item_id, {"key": day.isoformat()})


def delete_item(engine: Engine, *, actor: User, item_id: int) -> None:
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        item = _load(session, item_id)
        title = item.title
        session.execute(delete(ContentItemPool).where(ContentItemPool.content_item_id == item_id))
        session.delete(item)
        _record(session, actor, "delete", item_id, {"title": title})


def _table_row(
    session: Session, row: dict[str, Any], tz: dt.tzinfo
) -> tuple[ContentItem | None, CleanDraft]:
    """The item a table row changes (None: a new one) and its checked values."""
    item_id = None if blank(row.get("id")) else whole_number(row.get("id"))
    if not blank(row.get("id")) and item_id is None:
        raise ValidationError("The id is not a number.")
    item = _load(session, item_id) if item_id is not None else None
    if item is None:
        draft = ItemDraft(title="", channel="", starts_at=None)
    else:
        draft = ItemDraft.of_item(item, _pool_ids(session, item.id))
    changes = {name: row[name] for name in _TABLE_FIELDS if name in row}
    for name in ("theme", "owner_id", "link"):
        if name in changes and blank(changes[name]):
            changes[name] = None
    if "status" in changes and blank(changes["status"]):
        changes["status"] = "idea"
    if not blank(changes.get("starts_at")):
        changes["starts_at"] = aware(changes["starts_at"], "date", "starts_at", tz)
        if item is not None and item.ends_at is not None:
            changes["ends_at"] = changes["starts_at"] + (item.ends_at - item.scheduled_at)
    return item, clean_draft(replace(draft, **changes), session)


def save_table(
    engine: Engine, *, actor: User, rows: list[dict[str, Any]], timezone: str = DEFAULT_TIMEZONE
) -> int:
    """Save edits made in a table: all rows or none; a problem names its row (1-based).

    A row with an id changes that item (its other fields stay; a new start moves the item
    or series, keeping its duration); a row without one creates an item. A date without a
    timezone is read in `timezone`. Returns how many rows were saved.
    """
    require_writer(engine, actor)
    tz = zone(timezone)
    saved = 0
    with write_session(engine, actor=actor) as session:
        for number, row in enumerate(rows, start=1):
            try:
                apply_draft(session, *_table_row(session, row, tz))
            except (ValidationError, NotFound) as error:
                raise ValidationError(f"Row {number}: {error}") from None
            saved += 1
        _record(session, actor, "table_edit", None, {"rows": saved})
    return saved


# --- publishing and campaigns -----------------------------------------------------------


def _log_touchpoints(
    session: Session, *, actor: User, item: ContentItem, now: dt.datetime
) -> list[int]:
    """One touchpoint on the timeline of everyone in the item's pools (a direct channel also
    moves their "last contacted"); returns who got one."""
    pools = session.scalars(
        select(Pool)
        .join(ContentItemPool, ContentItemPool.pool_id == Pool.id)
        .where(ContentItemPool.content_item_id == item.id)
    ).all()
    members: set[int] = set()
    for pool in pools:
        members.update(
            session.scalars(select(Candidate.id).where(membership_condition(session, pool)))
        )
    people = sorted(members)
    channel = DIRECT_CHANNELS.get(item.channel, item.channel)
    summary = f"{CHANNEL_LABELS[item.channel]}: {item.title}"
    for chunk in chunks(people, 5000):
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
                    "details": {"content_item_id": item.id},
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
    return people


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
        people = (
            _log_touchpoints(session, actor=actor, item=item, now=now) if log_touchpoint else []
        )
        _record(session, actor, "publish", item_id, {"touchpoints": len(people)})
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
        _record(session, actor, "link_campaign", item_id, {"campaign_id": campaign_id})


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
