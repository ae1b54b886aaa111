"""What people do with our messages: opens, clicks, unsubscribes, replies and bounces.

Every event lands in `events` (the timeline and the reports read it from there), moves
the person's engagement date, and stops what should stop: an unsubscribe or a hard bounce
suppresses the address and cancels every queued message to it at once; a reply ends the
sequences whose next step says so (a step that stops on a click checks when it is due).

Machine activity is recorded but flagged (`is_machine`), so reports can show it apart:
opens within seconds of delivery, known image proxies and scanners, and a message whose
every link was clicked within a few seconds.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from crm import audit
from crm.auth import require_writer
from crm.db import read_session, write_session
from crm.errors import ValidationError
from crm.identity import address_hash, normalize_email
from crm.models import (
    CampaignStep,
    Candidate,
    Enrollment,
    Event,
    Link,
    OutboxMessage,
    Suppression,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

MACHINE_OPEN_SECONDS = 10  # an open this soon after delivery is a scanner or a proxy
MACHINE_CLICK_SECONDS = 10
ALL_LINKS_SECONDS = 5  # every link of a message clicked within this: a link scanner
LINK_POSITION_LIMIT = 1000  # click tokens name outbox_id * 1000 + position
MACHINE_AGENTS = (
    "googleimageproxy",
    "ggpht.com",
    "yahoomailproxy",
    "yahoo! slurp",
    "outlook-link-preview",
    "ms-office",
    "microsoft office",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "trendmicro",
    "sophos",
    "bot",
    "spider",
    "crawler",
    "preview",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget",
    "go-http-client",
    "headlesschrome",
)
ANSWERS = ("interested", "not_now")


def _email_key(address: str | None) -> str | None:
    """The dedupe key of an address, or None when it is blank or not an address."""
    try:
        normalized = normalize_email(address)
    except ValidationError:
        return None
    return normalized[1] if normalized else None


def looks_automatic(user_agent: str | None) -> bool:
    agent = (user_agent or "").lower()
    return not agent or any(marker in agent for marker in MACHINE_AGENTS)


@dataclass(frozen=True)
class _Message:
    id: int
    campaign_id: int
    step_id: int
    enrollment_id: int
    candidate_id: int | None
    sent_at: dt.datetime | None


def _message(session: Session, outbox_id: int) -> _Message | None:
    row = session.execute(
        select(
            OutboxMessage.id,
            OutboxMessage.campaign_id,
            OutboxMessage.step_id,
            OutboxMessage.enrollment_id,
            OutboxMessage.candidate_id,
            OutboxMessage.sent_at,
        ).where(
            OutboxMessage.id == outbox_id,
            OutboxMessage.status.in_(("sent", "needs_review")),
        )
    ).first()
    return _Message(*row) if row else None


def _event(
    session: Session,
    kind: str,
    message: _Message | None,
    *,
    now: dt.datetime,
    candidate_id: int | None = None,
    machine: bool = False,
    user_agent: str | None = None,
    link_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        Event(
            kind=kind,
            occurred_at=now,
            candidate_id=message.candidate_id if message else candidate_id,
            campaign_id=message.campaign_id if message else None,
            step_id=message.step_id if message else None,
            outbox_message_id=message.id if message else None,
            link_id=link_id,
            is_machine=machine,
            user_agent=(user_agent or None) and user_agent[:400],
            detail=detail,
        )
    )


def _engaged(session: Session, candidate_id: int | None, now: dt.datetime) -> None:
    if candidate_id is None:
        return
    session.execute(
        update(Candidate)
        .where(
            Candidate.id == candidate_id,
            (Candidate.last_engaged_at.is_(None)) | (Candidate.last_engaged_at < now),
        )
        .values(last_engaged_at=now)
        .execution_options(synchronize_session=False)
    )


def _stop_where_next_step_says(
    session: Session, candidate_id: int, flag: str, reason: str, campaign_id: int | None = None
) -> int:
    """End the person's sequences whose next unsent step stops on this (a reply)."""
    from crm.outbox import stop_enrollment

    stopped = 0
    query = select(Enrollment.id).where(
        Enrollment.candidate_id == candidate_id, Enrollment.status == "active"
    )
    if campaign_id is not None:
        query = query.where(Enrollment.campaign_id == campaign_id)
    for enrollment_id in session.scalars(query).all():
        next_step = session.execute(
            select(CampaignStep)
            .join(OutboxMessage, OutboxMessage.step_id == CampaignStep.id)
            .where(
                OutboxMessage.enrollment_id == enrollment_id,
                OutboxMessage.status.in_(("queued", "waiting")),
            )
            .order_by(CampaignStep.position)
            .limit(1)
        ).scalar()
        if next_step is not None and getattr(next_step, flag):
            stopped += stop_enrollment(session, enrollment_id, reason)
    return stopped


def _stop_everything(session: Session, candidate_id: int, reason: str) -> int:
    from crm.outbox import stop_enrollment

    return sum(
        stop_enrollment(session, enrollment_id, reason)
        for enrollment_id in session.scalars(
            select(Enrollment.id).where(
                Enrollment.candidate_id == candidate_id, Enrollment.status == "active"
            )
        ).all()
    )


def _suppress(session: Session, email_key: str | None, reason: str, note: str | None) -> None:
    if not email_key:
        return
    digest = address_hash(email_key)
    if session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)) is None:
        session.add(Suppression(address_hash=digest, reason=reason, note=note and note[:300]))


# --- opens and clicks -------------------------------------------------------------------


def record_open(
    engine: Engine, outbox_id: int, *, user_agent: str | None, now: dt.datetime | None = None
) -> bool:
    """Record the open pixel being fetched; False when the message is not one we sent."""
    now = now or utcnow()
    with write_session(engine) as session:
        message = _message(session, outbox_id)
        if message is None:
            return False
        soon = message.sent_at is not None and (now - message.sent_at).total_seconds() < (
            MACHINE_OPEN_SECONDS
        )
        machine = soon or looks_automatic(user_agent)
        _event(session, "open", message, now=now, machine=machine, user_agent=user_agent)
        if not machine:
            _engaged(session, message.candidate_id, now)
        return True


def record_click(
    engine: Engine,
    outbox_id: int,
    position: int,
    *,
    user_agent: str | None,
    now: dt.datetime | None = None,
) -> str | None:
    """Record a click on a stored link and return where it goes (None: no such link)."""
    now = now or utcnow()
    with write_session(engine) as session:
        link = session.execute(
            select(Link.id, Link.url).where(
                Link.outbox_message_id == outbox_id, Link.position == position
            )
        ).first()
        if link is None:
            return None
        message = _message(session, outbox_id)
        if message is None:
            return link.url  # the link is real; the person or message is gone: just go
        soon = message.sent_at is not None and (now - message.sent_at).total_seconds() < (
            MACHINE_CLICK_SECONDS
        )
        machine = soon or looks_automatic(user_agent)
        _event(
            session,
            "click",
            message,
            now=now,
            machine=machine,
            user_agent=user_agent,
            link_id=link.id,
        )
        session.flush()
        if not machine and _every_link_clicked_at_once(session, outbox_id, now):
            machine = True
            session.execute(
                update(Event)
                .where(
                    Event.outbox_message_id == outbox_id,
                    Event.kind == "click",
                    Event.occurred_at >= now - dt.timedelta(seconds=ALL_LINKS_SECONDS),
                )
                .values(is_machine=True)
                .execution_options(synchronize_session=False)
            )
        if not machine and message.candidate_id is not None:
            # A step that stops on a click checks for human clicks when it falls due:
            # by then a link scanner has given itself away by clicking every link.
            _engaged(session, message.candidate_id, now)
        return link.url


def _every_link_clicked_at_once(session: Session, outbox_id: int, now: dt.datetime) -> bool:
    links = session.scalar(
        select(func.count()).select_from(Link).where(Link.outbox_message_id == outbox_id)
    )
    if not links or links < 2:
        return False
    clicked = session.scalar(
        select(func.count(func.distinct(Event.link_id))).where(
            Event.outbox_message_id == outbox_id,
            Event.kind == "click",
            Event.occurred_at >= now - dt.timedelta(seconds=ALL_LINKS_SECONDS),
        )
    )
    return clicked == links


# --- unsubscribes, replies, bounces -----------------------------------------------------


def unsubscribe(
    engine: Engine, outbox_id: int, *, how: str, now: dt.datetime | None = None
) -> bool:
    """Unsubscribe the person a message went to, from everything, at once (idempotent).

    Returns False when the message is not one we sent (nothing changes).
    """
    now = now or utcnow()
    with write_session(engine) as session:
        message = _message(session, outbox_id)
        if message is None:
            return False
        candidate = (
            session.get(Candidate, message.candidate_id, with_for_update=True)
            if message.candidate_id is not None
            else None
        )
        if candidate is None:
            # The person was erased; their address is suppressed already by the erasure.
            return True
        if candidate.unsubscribed_at is None:
            candidate.unsubscribed_at = now
            _event(session, "unsubscribe", message, now=now, detail={"how": how})
        _suppress(session, candidate.email_normalized, "unsubscribe", f"unsubscribed ({how})")
        _stop_everything(session, candidate.id, "unsubscribed")
        return True


def record_reply(
    engine: Engine,
    *,
    outbox_id: int | None = None,
    candidate_id: int | None = None,
    answer: str | None = None,
    actor: User | None = None,
    source: str = "mailbox",
    now: dt.datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """A reply to a message (or, marked by hand, from a person); False if nobody matches.

    `answer` is "interested" or "not_now" when a recruiter says so; "interested" is also
    recorded as its own event, which the reports count.
    """
    if answer is not None and answer not in ANSWERS:
        raise ValidationError(f"The answer must be one of {', '.join(ANSWERS)}.")
    if actor is not None:
        require_writer(actor)
    now = now or utcnow()
    with write_session(engine) as session:
        message = _message(session, outbox_id) if outbox_id is not None else None
        if message is None and candidate_id is not None:
            message = _latest_message_to(session, candidate_id)
        person = message.candidate_id if message else candidate_id
        if person is None or session.get(Candidate, person) is None:
            return False
        details = {"source": source, **(detail or {})}
        if answer:
            details["answer"] = answer
        _event(session, "reply", message, now=now, candidate_id=person, detail=details)
        if answer == "interested":
            _event(session, "interested", message, now=now, candidate_id=person, detail=details)
        _engaged(session, person, now)
        session.execute(
            update(Candidate)
            .where(Candidate.id == person)
            .values(last_contacted_at=now, last_contact_channel="email reply")
            .execution_options(synchronize_session=False)
        )
        _stop_where_next_step_says(session, person, "stop_on_reply", "replied")
        if actor is not None:
            audit.record(
                session,
                actor=actor,
                action="candidate.reply_marked",
                entity="candidate",
                entity_id=person,
                detail={"answer": answer},
            )
        return True


def _latest_message_to(session: Session, candidate_id: int) -> _Message | None:
    outbox_id = session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.candidate_id == candidate_id, OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at.desc())
        .limit(1)
    )
    return _message(session, outbox_id) if outbox_id is not None else None


def record_bounce(
    engine: Engine,
    *,
    outbox_id: int | None = None,
    address: str | None = None,
    hard: bool,
    reason: str,
    now: dt.datetime | None = None,
) -> bool:
    """A delivery status notification: hard bounces suppress the address and stop its mail."""
    now = now or utcnow()
    with write_session(engine) as session:
        message = _message(session, outbox_id) if outbox_id is not None else None
        candidate: Candidate | None = None
        if message is not None and message.candidate_id is not None:
            candidate = session.get(Candidate, message.candidate_id)
        elif address:
            key = _email_key(address)
            if key is not None:
                candidate = session.scalar(
                    select(Candidate).where(Candidate.email_normalized == key)
                )
                if candidate is not None:
                    message = _latest_message_to(session, candidate.id)
        if message is None and candidate is None:
            return False
        _event(
            session,
            "bounce",
            message,
            now=now,
            candidate_id=candidate.id if candidate else None,
            detail={"hard": hard, "reason": reason[:300]},
        )
        if hard:
            key = candidate.email_normalized if candidate else None
            if key is None and address:
                key = _email_key(address)
            _suppress(session, key, "hard_bounce", reason)
            if candidate is not None:
                _stop_everything(session, candidate.id, "hard bounce")
        return True


@dataclass(frozen=True)
class MarkedReplies:
    marked: int
    unknown: list[str]


def mark_replies_from_addresses(
    engine: Engine, *, actor: User, addresses: list[str], answer: str | None = None
) -> MarkedReplies:
    """Mark replies by hand for a list of addresses (a CSV column pasted or uploaded)."""
    require_writer(actor)
    marked = 0
    unknown: list[str] = []
    with read_session(engine) as session:
        found: dict[str, int] = {}
        keys = {}
        for address in addresses:
            normalized = _email_key(address)
            if normalized is None:
                if address.strip():
                    unknown.append(address.strip())
                continue
            keys[normalized] = address.strip()
        for start in range(0, len(keys), 5000):
            chunk = list(keys)[start : start + 5000]
            found.update(
                session.execute(
                    select(Candidate.email_normalized, Candidate.id).where(
                        Candidate.email_normalized.in_(chunk)
                    )
                ).all()
            )
    for key, shown in keys.items():
        if key in found:
            record_reply(
                engine, candidate_id=found[key], answer=answer, actor=actor, source="marked by hand"
            )
            marked += 1
        else:
            unknown.append(shown)
    return MarkedReplies(marked, unknown)
