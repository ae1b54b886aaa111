"""The words of content spreadsheets, as data: the calendar import's fields with the header
names other tools give them (read by crm.imports.aliases, the most telling first), and
the words people write in their channel, theme and status cells."""

from __future__ import annotations

from crm.content_calendar.labels import CHANNEL_LABELS, STATUS_LABELS, THEME_LABELS
from crm.imports.aliases import alias_ranks, header_key

# Field -> the header names it goes by in the spreadsheets people keep.
HEADER_ALIASES: dict[str, list[str]] = {
    "date": [
        "date",
        "day",
        "publish date",
        "publication date",
        "post date",
        "go live",
        "go-live date",
        "scheduled date",
        "scheduled for",
        "scheduled",
        "when",
        "date and time",
        "datetime",
        "start",
        "start date",
        "starts at",
        "publish on",
        "launch date",
    ],
    "time": ["time", "publish time", "post time", "start time", "hour", "time of day"],
    "end": ["end", "ends", "ends at", "end time", "end date", "finish", "finishes"],
    "channel": [
        "channel",
        "platform",
        "network",
        "social network",
        "medium",
        "media",
        "outlet",
        "type",
        "content type",
    ],
    "title": ["title", "topic", "subject", "headline", "name", "post title", "idea", "item"],
    "pools": [
        "pool",
        "pools",
        "audience",
        "audiences",
        "target audience",
        "talent pool",
        "talent pools",
        "segment",
        "segments",
        "target",
    ],
    "theme": ["theme", "content theme", "pillar", "content pillar", "category", "topic area"],
    "status": ["status", "state", "stage", "progress"],
    "owner": ["owner", "author", "assignee", "assigned to", "responsible", "who", "writer"],
    "link": ["link", "url", "links", "web address", "post link"],
    "notes": [
        "notes",
        "note",
        "content",
        "body",
        "copy",
        "description",
        "text",
        "caption",
        "details",
        "comments",
        "post copy",
    ],
}
HEADER_RANKS = alias_ranks(HEADER_ALIASES, HEADER_ALIASES, own_names_first=True)
FIELD_NAMES = {name: name.capitalize() for name in HEADER_ALIASES}  # a missing column's name

# Choice -> the other words people write for it in a cell (its key and label also count).
CHANNEL_ALIASES = {
    "email_newsletter": ["email", "newsletter", "mail", "email campaign", "e-mail"],
    "linkedin_post": ["linkedin", "li", "li post", "linkedin update"],
    "linkedin_message": ["inmail", "linkedin inmail", "linkedin dm"],
    "x": ["twitter", "x/twitter", "twitter/x", "tweet"],
    "instagram": ["insta", "ig"],
    "sms": ["text", "text message"],
    "blog": ["blog post", "article", "careers blog"],
    "event": ["webinar", "meetup", "career fair"],
}
THEME_ALIASES = {
    "company_news": ["news", "company update"],
    "industry_insight": ["insight", "industry", "industry news", "thought leadership"],
    "career_advice": ["advice", "career tips", "tips"],
    "employee_story": ["employee stories", "people story", "team story", "meet the team"],
    "job_alert": ["job", "jobs", "job alerts", "vacancy", "vacancies", "hiring"],
}
STATUS_ALIASES = {
    "idea": ["todo", "to do", "backlog", "new"],
    "draft": ["in progress", "wip", "writing", "drafting", "in review"],
    "scheduled": ["planned", "ready", "approved"],
    "published": ["done", "posted", "live", "sent"],
}


def _words(labels: dict[str, str], aliases: dict[str, list[str]]) -> dict[str, str]:
    """Cell text (reduced like a header) -> choice: its key, its label and its aliases."""
    table = {header_key(label): key for key, label in labels.items()}
    table.update({header_key(key): key for key in labels})
    for key, names in aliases.items():
        table.update({header_key(name): key for name in names})
    return table


CHANNEL_WORDS = _words(CHANNEL_LABELS, CHANNEL_ALIASES)
THEME_WORDS = _words(THEME_LABELS, THEME_ALIASES)
STATUS_WORDS = _words(STATUS_LABELS, STATUS_ALIASES)
