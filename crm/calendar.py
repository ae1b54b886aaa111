"""The content calendar: what each pool hears, on which channel, and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, select

from crm.db import read_session
from crm.models import ContentItem, ContentItemPool, Pool

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


@dataclass(frozen=True)
class CalendarEntry:
    id: int
    title: str
    channel: str
    status: str
    theme: str | None
    scheduled_at: dt.datetime
    pools: tuple[str, ...]


def items_between(engine: Engine, *, start: dt.datetime, end: dt.datetime) -> list[CalendarEntry]:
    """Items scheduled in [start, end), earliest first, with their audience pools."""
    with read_session(engine) as session:
        items = list(
            session.scalars(
                select(ContentItem)
                .where(ContentItem.scheduled_at >= start, ContentItem.scheduled_at < end)
                .order_by(ContentItem.scheduled_at, ContentItem.id)
            )
        )
        pools: dict[int, list[str]] = {}
        if items:
            for item_id, name in session.execute(
                select(ContentItemPool.content_item_id, Pool.name)
                .join(Pool, Pool.id == ContentItemPool.pool_id)
                .where(ContentItemPool.content_item_id.in_([item.id for item in items]))
                .order_by(Pool.name)
            ):
                pools.setdefault(item_id, []).append(name)
    return [
        CalendarEntry(
            id=item.id,
            title=item.title,
            channel=item.channel,
            status=item.status,
            theme=item.theme,
            scheduled_at=item.scheduled_at,
            pools=tuple(pools.get(item.id, ())),
        )
        for item in items
    ]
