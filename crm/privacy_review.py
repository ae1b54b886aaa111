"""The periodic privacy reviews: people whose consent is due for renewal (and putting
them on a renewal pool), and people quiet for the retention period (and keeping them
with a reason).

"Keep with a reason" is remembered as a timeline entry (kind "retention_keep"), which
takes the person off the retention list until the period has passed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, exists, func, or_, select

from crm import activities, audit, clock, pools, touches
from crm.candidates import selected_ids
from crm.db import write_session
from crm.errors import ValidationError
from crm.identity import clean_text
from crm.models import Activity, Application, Candidate, Event, Pool, User
from crm.paging import check_page, moment_or_now, page_of
from crm.permissions import require_writer

KEEP_KIND = "retention_keep"
HUMAN_EVENT_KINDS = ("reply", "click", "interested")
MAX_KEEP_REASON = 300
# Who each person on a review list is.
_PERSON = (Candidate.id, Candidate.first_name, Candidate.last_name, Candidate.email)


def _cutoff(
    period: str, days: int, now: dt.datetime | None, limit: int, offset: int
) -> dt.datetime:
    """The start of a review's period, `days` before now; one sentence if the period is
    shorter than a day or the page is out of bounds."""
    if days < 1:
        raise ValidationError(f"The {period} period must be at least one day.")
    check_page(limit, offset)
    return moment_or_now(now) - dt.timedelta(days=days)


def _people_page(
    engine: Engine,
    columns: Sequence[ColumnElement[Any]],
    conditions: Sequence[ColumnElement[bool]],
    order_by: Sequence[ColumnElement[Any]],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a review list: who each person is and the columns given, and how many
    people are on the list in all."""
    return page_of(
        engine,
        select(*_PERSON, *columns),
        table=Candidate,
        conditions=conditions,
        order_by=order_by,
        limit=limit,
        offset=offset,
    )


# --- consent renewal --------------------------------------------------------------------


def _consent_since() -> ColumnElement[dt.datetime]:
    return func.coalesce(Candidate.consent_at, Candidate.created_at)


def consent_due(
    engine: Engine,
    *,
    older_than_days: int = 365,
    limit: int = 100,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """People we may contact whose consent (or, without a date, their record) is older than
    the period, oldest first: (one page, how many in all)."""
    cutoff = _cutoff("consent", older_than_days, now, limit, offset)
    since = _consent_since()
    conditions = (
        Candidate.consent_status.in_(("consented", "legitimate_interest")),
        Candidate.unsubscribed_at.is_(None),
        since < cutoff,
    )
    columns = (
        Candidate.consent_status,
        Candidate.consent_at,
        Candidate.consent_source,
        Candidate.created_at,
    )
    rows, total = _people_page(engine, columns, conditions, (since, Candidate.id), limit, offset)
    for row in rows:
        row["since"] = row["consent_at"] or row["created_at"]
    return rows, total


@dataclass(frozen=True)
class Renewal:
    """The pool a consent renewal started: its id, its name and how many people are on it."""

    pool_id: int
    name: str
    people: int


def start_consent_renewal(engine: Engine, *, actor: User, candidate_ids: Sequence[int]) -> Renewal:
    """Put the people selected (those we may still contact) on a new static pool named
    "Consent renewal YYYY-MM-DD", for a campaign asking them to renew."""
    require_writer(engine, actor)
    ids = selected_ids(candidate_ids)
    now = clock.now()
    with write_session(engine, actor=actor) as session:
        reachable = list(
            session.scalars(
                select(Candidate.id).where(
                    Candidate.id.in_(ids),
                    Candidate.consent_status != "do_not_contact",
                    Candidate.unsubscribed_at.is_(None),
                )
            )
        )
        if not reachable:
            raise ValidationError(
                "None of the people selected can be asked to renew consent "
                "(they are gone, unsubscribed or do not contact)."
            )
        base = f"Consent renewal {now:%Y-%m-%d}"
        taken = set(session.scalars(select(Pool.name).where(Pool.name.like(f"{base}%"))))
        name = base
        number = 2
        while name in taken:
            name = f"{base} ({number})"
            number += 1
        pool = Pool(
            name=name,
            kind="static",
            owner_id=actor.id,
            stages=[],
            description=f"People asked to renew their consent, started by {actor.display_name}.",
        )
        session.add(pool)
        session.flush()
        added = pools.add_members(session, pool, reachable, actor)
        pools.record_change(
            session,
            actor=actor,
            action="consent.renewal",
            pool_id=pool.id,
            name=name,
            count=added,
            skipped=len(ids) - added,
        )
        return Renewal(pool.id, name, added)


# --- retention --------------------------------------------------------------------------


def _retention_conditions(cutoff: dt.datetime) -> list[ColumnElement[bool]]:
    human = exists().where(
        Event.candidate_id == Candidate.id,
        Event.kind.in_(HUMAN_EVENT_KINDS),
        Event.is_machine.is_(False),
        Event.occurred_at >= cutoff,
    )
    kept = exists().where(
        Activity.candidate_id == Candidate.id,
        Activity.kind == KEEP_KIND,
        Activity.occurred_at >= cutoff,
    )
    in_pipeline = exists().where(
        Application.candidate_id == Candidate.id,
        or_(Application.created_at >= cutoff, Application.updated_at >= cutoff),
    )
    return [
        Candidate.created_at < cutoff,
        or_(Candidate.last_contacted_at.is_(None), Candidate.last_contacted_at < cutoff),
        or_(Candidate.last_engaged_at.is_(None), Candidate.last_engaged_at < cutoff),
        ~human,
        ~kept,
        ~in_pipeline,
    ]


def retention_due(
    engine: Engine,
    *,
    after_days: int = 730,
    limit: int = 100,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """People with no reply, click, touch or application for after_days (and on file that
    long), not kept with a reason within the period; longest quiet first: (page, total)."""
    cutoff = _cutoff("retention", after_days, now, limit, offset)
    conditions = _retention_conditions(cutoff)
    # Longest quiet first by the person's last touch (crm.touches), never touched by age.
    last_touch = touches.person_last_touch_sql()
    quiet_since = func.coalesce(last_touch, Candidate.created_at)
    columns = (
        Candidate.consent_status,
        Candidate.created_at,
        Candidate.last_contacted_at,
        Candidate.last_engaged_at,
        last_touch.label("last_touch"),
    )
    return _people_page(engine, columns, conditions, (quiet_since, Candidate.id), limit, offset)


def keep(engine: Engine, *, actor: User, candidate_ids: Sequence[int], reason: str) -> int:
    """Keep people on review with a reason: they leave the retention list until the period
    passes again. Returns how many were kept."""
    require_writer(engine, actor)
    ids = selected_ids(candidate_ids)
    reason = " ".join(clean_text(reason).split())
    if not reason:
        raise ValidationError("Give a reason for keeping them.")
    if len(reason) > MAX_KEEP_REASON:
        raise ValidationError(f"The reason is longer than {MAX_KEEP_REASON} characters.")
    with write_session(engine, actor=actor) as session:
        present = list(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))
        activities.record(
            session,
            actor=actor,
            candidate_ids=present,
            kind=KEEP_KIND,
            summary=f"Kept after retention review: {reason}",
            details={"reason": reason},
        )
        audit.record_many(session, actor, "retention.keep", len(present), reason=reason)
        return len(present)
