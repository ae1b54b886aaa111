"""Last touch: one definition for a pool and one for a person, used by every page and command.

Last touch of a pool: the latest moment the pool as a whole was reached, that is
- a message of a campaign aimed at the pool (Campaign.audience_pool_id) was sent
  (OutboxMessage status "sent", at sent_at), or
- a calendar content item linked to the pool (ContentItemPool) was published
  (ContentItem.published_at).
Reaching one member some other way (another campaign, a call logged by hand) is that
person's touch, not the pool's: a pool whose members hear from us only by chance has still
gone quiet. None means never.

Last touch of a person: the latest of Candidate.last_contacted_at (we reached them: a sent
message, a logged call or meeting...) and Candidate.last_engaged_at (they reached us: a
human open, click or reply). None means neither ever happened. "Last contacted" is the
first of the two alone (our side only) and is shown under that name.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Select, case, func, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from crm.models import Campaign, Candidate, ContentItem, ContentItemPool, OutboxMessage

LABEL = "Last touch"


def pool_last_touch_query() -> Select[tuple[int, dt.datetime | None]]:
    """(pool id, last touch) for every pool ever reached: one grouped query over the sent
    campaign messages and the published content, never one per member."""
    sent = (
        select(
            Campaign.audience_pool_id.label("pool_id"),
            func.max(OutboxMessage.sent_at).label("moment"),
        )
        .join(OutboxMessage, OutboxMessage.campaign_id == Campaign.id)
        .where(
            Campaign.audience_pool_id.is_not(None),
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at.is_not(None),
        )
        .group_by(Campaign.audience_pool_id)
    )
    published = (
        select(
            ContentItemPool.pool_id.label("pool_id"),
            func.max(ContentItem.published_at).label("moment"),
        )
        .join(ContentItem, ContentItem.id == ContentItemPool.content_item_id)
        .where(ContentItem.published_at.is_not(None))
        .group_by(ContentItemPool.pool_id)
    )
    reached = union_all(sent, published).subquery("reached")
    return select(reached.c.pool_id, func.max(reached.c.moment).label("last_touch")).group_by(
        reached.c.pool_id
    )


def pool_last_touches(session: Session) -> dict[int, dt.datetime]:
    """{pool id: last touch} for the pools ever reached (a pool not in it: never)."""
    return {
        pool_id: _aware(moment)
        for pool_id, moment in session.execute(pool_last_touch_query())
        if moment is not None
    }


def person_last_touch_sql() -> ColumnElement[dt.datetime | None]:
    """A person's last touch as a column expression (NULL when neither moment is known).

    Written as CASE because SQLite's two-argument max() is NULL when either is, and
    PostgreSQL's GREATEST skips NULLs: the same answer on both.
    """
    contacted, engaged = Candidate.last_contacted_at, Candidate.last_engaged_at
    return case(
        (engaged.is_(None), contacted),
        (contacted.is_(None), engaged),
        (engaged > contacted, engaged),
        else_=contacted,
    )


def person_last_touch(
    last_contacted_at: dt.datetime | None, last_engaged_at: dt.datetime | None
) -> dt.datetime | None:
    """A loaded person's last touch: the same rule as person_last_touch_sql()."""
    moments = [m for m in (last_contacted_at, last_engaged_at) if m is not None]
    return max(moments) if moments else None


def _aware(moment: dt.datetime | str) -> dt.datetime:
    """An aggregate's timestamp as aware UTC (SQLite may hand MAX() over a UNION back as
    text, and naive)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


__all__ = [
    "LABEL",
    "person_last_touch",
    "person_last_touch_sql",
    "pool_last_touch_query",
    "pool_last_touches",
]
