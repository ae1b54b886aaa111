"""What a calendar item must hold: a draft as people type it, checked into stored values.

A draft comes from the item form, a row of the table editor or a spreadsheet row. Checking
it gives the values a ContentItem stores (title tidied, times in UTC, link completed to
https://, recurrence in its stored form) or one sentence, a FieldError naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.content_calendar.recurrence import check_recurrence
from crm.content_calendar.values import FieldError, aware, blank, text, whole_number
from crm.models import CHANNELS, CONTENT_STATUSES, CONTENT_THEMES, ContentItem, Pool, User

MAX_TITLE = 200
MAX_LINK = 500
MAX_BODY = 50_000
# The ContentItem columns a draft holds under the same name.
ITEM_COLUMNS = ("title", "channel", "ends_at", "body", "link", "owner_id", "status", "theme")


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

    @classmethod
    def of_item(cls, item: ContentItem, pool_ids: list[int]) -> ItemDraft:
        """A stored item (with its pools) as a draft to change and save back."""
        return cls(
            **{name: getattr(item, name) for name in ITEM_COLUMNS},
            starts_at=item.scheduled_at,
            pool_ids=pool_ids,
            recurrence=dict(item.recurrence) if item.recurrence else None,
        )


@dataclass
class CleanDraft:
    values: dict[str, Any]  # ContentItem column -> value
    pool_ids: list[int]


def _check_link(link: Any) -> str | None:
    link_text = text(link)
    if link_text is None:
        return None
    if re.match(r"^(?:www\.|[a-z0-9-]+(?:\.[a-z0-9-]+)+(?:/|$))", link_text, re.IGNORECASE):
        link_text = "https://" + link_text
    if not re.match(r"^https?://[^\s/]+", link_text, re.IGNORECASE) or any(
        c.isspace() for c in link_text
    ):
        raise FieldError("link", "The link must be a web address starting with https://.")
    if len(link_text) > MAX_LINK:
        raise FieldError("link", f"The link is longer than {MAX_LINK} characters.")
    return link_text


def clean_draft(draft: ItemDraft, session: Session | None = None) -> CleanDraft:
    """The draft's stored values, or one sentence (a FieldError) about the first problem;
    with a session, its owner and pools are checked to exist."""
    title = text(draft.title)
    if title is None:
        raise FieldError("title", "Give the item a title.")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise FieldError("title", f"The title is longer than {MAX_TITLE} characters.")
    if blank(draft.starts_at):
        raise FieldError("starts_at", "Give the item a date.")
    starts_at = aware(draft.starts_at, "date", "starts_at")
    if blank(draft.channel):
        raise FieldError("channel", "Choose a channel for the item.")
    if draft.channel not in CHANNELS:
        raise FieldError("channel", f"{draft.channel!r} is not a channel of the calendar.")
    ends_at = None
    if not blank(draft.ends_at):
        ends_at = aware(draft.ends_at, "end", "ends_at")
        if ends_at <= starts_at:
            raise FieldError("ends_at", "The end must be after the start.")
    status = draft.status or "idea"
    if status not in CONTENT_STATUSES:
        raise FieldError("status", f"{status!r} is not a status of the calendar.")
    theme = text(draft.theme)
    if theme is not None and theme not in CONTENT_THEMES:
        raise FieldError("theme", f"{theme!r} is not a content theme.")
    body = draft.body if not blank(draft.body) else None
    if body is not None and len(body) > MAX_BODY:
        raise FieldError("body", f"The notes are longer than {MAX_BODY:,} characters.")
    link = _check_link(draft.link)
    recurrence = check_recurrence(draft.recurrence, starts_at)
    owner_id = None if blank(draft.owner_id) else whole_number(draft.owner_id)
    if not blank(draft.owner_id) and owner_id is None:
        raise FieldError("owner_id", "The owner is not a user of this app.")
    pool_ids = sorted({int(pool_id) for pool_id in draft.pool_ids or []})
    if session is not None:
        if owner_id is not None and session.get(User, owner_id) is None:
            raise FieldError("owner_id", "The owner is not a user of this app.")
        if pool_ids:
            found = set(session.scalars(select(Pool.id).where(Pool.id.in_(pool_ids))))
            if len(found) != len(pool_ids):
                raise FieldError("pool_ids", "One of the audience pools no longer exists.")
    return CleanDraft(
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
