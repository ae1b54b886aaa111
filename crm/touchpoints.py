"""Contacts by hand and follow-up reminders: a call, LinkedIn message or meeting logged on
the person's timeline (moving "last contacted" forward), and the reminder that shows on
Home from its date."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select, update

from crm import activities, clock
from crm.db import get_existing, read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.identity import clean_text
from crm.models import Candidate, User
from crm.permissions import require_writer

TOUCH_CHANNELS = {
    "call": "Call",
    "linkedin_message": "LinkedIn message",
    "email": "Email (sent by hand)",
    "meeting": "Meeting",
    "event": "Event",
    "sms": "SMS",
    "note": "Note (not a contact)",
}


def log_touchpoint(
    engine: Engine,
    *,
    actor: User,
    candidate_id: int,
    channel: str,
    occurred_at: dt.datetime,
    note: str,
) -> None:
    """Record a call, LinkedIn message, meeting... (or a plain note) on the timeline.

    Anything but a note is a contact: it moves "last contacted" forward (never back).
    """
    require_writer(engine, actor)
    if channel not in TOUCH_CHANNELS:
        raise ValidationError(f"Unknown channel {channel!r}.")
    note = clean_text(note)
    if channel == "note" and not note:
        raise ValidationError("Write the note first.")
    if len(note) > 5000:
        raise ValidationError("The note is longer than 5,000 characters.")
    if occurred_at > clock.now() + dt.timedelta(minutes=5):
        raise ValidationError("A touchpoint cannot be in the future; use a follow-up reminder.")
    with write_session(engine, actor=actor) as session:
        candidate = get_existing(
            session, Candidate, candidate_id, "candidate", with_for_update=True
        )
        kind, medium = ("note", None) if channel == "note" else ("touchpoint", channel)
        summary = note or TOUCH_CHANNELS[channel]
        activities.add_one(
            session, actor, candidate_id, kind, summary, channel=medium, occurred_at=occurred_at
        )
        if channel != "note" and (
            candidate.last_contacted_at is None or occurred_at > candidate.last_contacted_at
        ):
            # Core update: a touch is not an edit of the profile, so the version stays.
            session.execute(
                update(Candidate)
                .where(Candidate.id == candidate_id)
                .values(
                    last_contacted_at=occurred_at,
                    last_contacted_by_id=actor.id,
                    last_contact_channel=channel,
                )
                .execution_options(synchronize_session=False)
            )


def set_follow_up(
    engine: Engine, *, actor: User, candidate_id: int, on: dt.date | None, note: str = ""
) -> None:
    """A reminder that shows on Home from its date; None clears it."""
    require_writer(engine, actor)
    note = clean_text(note)
    if len(note) > 300:
        raise ValidationError("The reminder note is longer than 300 characters.")
    with write_session(engine, actor=actor) as session:
        result = session.execute(
            update(Candidate)
            .where(Candidate.id == candidate_id)
            .values(follow_up_on=on, follow_up_note=(note or None) if on else None)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:
            raise NotFound("That candidate no longer exists.")
        summary = (
            f"Follow-up set for {on:%d %b %Y}" + (f": {note}" if note else "")
            if on
            else "Follow-up cleared"
        )
        activities.add_one(session, actor, candidate_id, "reminder", summary)


def follow_ups_due(engine: Engine, *, today: dt.date, limit: int = 20) -> list[dict[str, Any]]:
    """Reminders whose date has come: who, when, and the note."""
    with read_session(engine) as session:
        query = (
            select(
                Candidate.id,
                Candidate.first_name,
                Candidate.last_name,
                Candidate.follow_up_on,
                Candidate.follow_up_note,
            )
            .where(Candidate.follow_up_on <= today)
            .order_by(Candidate.follow_up_on, Candidate.id)
            .limit(limit)
        )
        return [dict(row._mapping) for row in session.execute(query)]
