"""A campaign's life after writing: the launch check, launch, pause, resume, cancel, review.

Launch enrolls the audience as it is at that moment and queues every message in one
transaction (a conditional UPDATE makes a double launch impossible). Pause and cancel
take effect from the next message; resume re-spaces what fell due meanwhile. A message
whose delivery is unknown waits for a person to say whether it arrived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, bindparam, insert, select, update
from sqlalchemy.orm import Session

from crm import audit, clock, merge_tags, pool_filter, send_window
from crm.composer import allowed_tags, sender_of
from crm.config import load_settings
from crm.db import get_existing, read_session, write_session
from crm.enrollments import (
    STOPPABLE_STATES,
    cancelled,
    schedule_next,
    sequence_rows,
    stopped,
)
from crm.errors import ValidationError
from crm.identity import address_hash
from crm.models import (
    Campaign,
    CampaignRecipient,
    Candidate,
    Enrollment,
    OutboxMessage,
    Pool,
    Suppression,
    User,
)
from crm.permissions import require_writer


def _audience_condition(session: Session, campaign: Campaign) -> ColumnElement[bool]:
    if campaign.audience_pool_id is not None:
        pool = session.get(Pool, campaign.audience_pool_id)
        if pool is None:
            raise ValidationError("The audience pool no longer exists; pick another.")
        return pool_filter.membership_condition(session, pool)
    picked = select(CampaignRecipient.candidate_id).where(
        CampaignRecipient.campaign_id == campaign.id
    )
    return Candidate.id.in_(picked)


def audience_sample(engine: Engine, campaign_id: int, *, limit: int = 200) -> list[tuple[int, str]]:
    """(id, "Name <email>") of people in the audience, for the preview picker."""
    with read_session(engine) as session:
        campaign = _campaign(session, campaign_id)
        rows = session.execute(
            select(Candidate.id, Candidate.first_name, Candidate.last_name, Candidate.email)
            .where(_audience_condition(session, campaign))
            .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
            .limit(limit)
        ).all()
    return [
        (cid, f"{first} {last}".strip() + (f" <{email}>" if email else " (no email)"))
        for cid, first, last, email in rows
    ]


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = get_existing(session, Campaign, campaign_id, "campaign")
    return campaign


SKIP_REASONS = {
    "no_email": "no email address",
    "unsubscribed": "unsubscribed",
    "suppressed": "on the suppression list",
    "do_not_contact": "do not contact (no consent)",
    "in_other_sequence": "already in another active sequence",
}


@dataclass(frozen=True)
class MissingTag:
    candidate_id: int
    name: str
    fields: list[str]


@dataclass(frozen=True)
class LaunchCheck:
    audience: int
    eligible: int
    skipped: dict[str, int]
    missing: list[MissingTag]
    missing_total: int

    @property
    def blocked(self) -> str | None:
        if self.missing_total:
            return (
                f"{self.missing_total} people would get an empty merge tag with no fallback; "
                "add a fallback ({{field|text}}) or fill in their records."
            )
        if not self.eligible:
            return "Nobody in the audience can be emailed right now."
        return None


@dataclass
class _Person:
    id: int
    email_normalized: str | None
    reason: str | None


def _classify(session: Session, campaign: Campaign) -> tuple[list[_Person], dict[str, int]]:
    """Everyone in the audience now, each eligible (reason None) or skipped with a reason."""
    condition = _audience_condition(session, campaign)
    other_active = (
        select(Enrollment.candidate_id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            Enrollment.status == "active",
            Campaign.status.in_(("active", "paused")),
            Campaign.id != campaign.id,
        )
    )
    rows = session.execute(
        select(
            Candidate.id,
            Candidate.email_normalized,
            Candidate.unsubscribed_at.is_not(None),
            Candidate.consent_status,
            Candidate.id.in_(other_active),
        )
        .where(condition)
        .order_by(Candidate.id)
    ).all()
    suppressed = _suppressed_hashes(session, [row[1] for row in rows if row[1]])
    people: list[_Person] = []
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for cid, email_key, unsubscribed, consent, busy in rows:
        if not email_key:
            reason = "no_email"
        elif unsubscribed:
            reason = "unsubscribed"
        elif address_hash(email_key) in suppressed:
            reason = "suppressed"
        elif consent == "do_not_contact":
            reason = "do_not_contact"
        elif busy:
            reason = "in_other_sequence"
        else:
            reason = None
        if reason:
            skipped[reason] += 1
        people.append(_Person(cid, email_key, reason))
    return people, skipped


def _suppressed_hashes(session: Session, email_keys: list[str]) -> set[str]:
    hashes = [address_hash(key) for key in email_keys]
    found: set[str] = set()
    for start in range(0, len(hashes), 5000):
        found.update(
            session.scalars(
                select(Suppression.address_hash).where(
                    Suppression.address_hash.in_(hashes[start : start + 5000])
                )
            )
        )
    return found


def _missing_tags(
    session: Session, campaign: Campaign, eligible: list[int], *, limit: int = 50
) -> tuple[list[MissingTag], int]:
    """Eligible people for whom some tag has no value and no fallback (launch blocks)."""
    allowed = allowed_tags(session)
    needed: set[str] = set()
    for step in campaign.steps:
        for text in (step.subject, step.body_markdown):
            template = merge_tags.parse(text, allowed=allowed)
            needed.update(template.missing({}))
    needed -= set(merge_tags.SENDER_FIELDS)
    if not needed or not eligible:
        return [], 0
    templates = [
        merge_tags.parse(text, allowed=allowed)
        for step in campaign.steps
        for text in (step.subject, step.body_markdown)
    ]
    found: list[MissingTag] = []
    total = 0
    for start in range(0, len(eligible), 2000):
        chunk = eligible[start : start + 2000]
        for candidate in session.scalars(select(Candidate).where(Candidate.id.in_(chunk))):
            values = merge_tags.values_for(candidate, custom_fields=candidate.custom_fields)
            fields: list[str] = []
            for template in templates:
                for name in template.missing(values):
                    if name in needed and name not in fields:
                        fields.append(name)
            if fields:
                total += 1
                if len(found) < limit:
                    found.append(MissingTag(candidate.id, candidate.full_name, fields))
        session.expunge_all()
    return found, total


def launch_check(engine: Engine, campaign_id: int) -> LaunchCheck:
    with read_session(engine) as session:
        campaign = _campaign(session, campaign_id)
        people, skipped = _classify(session, campaign)
        eligible = [p.id for p in people if p.reason is None]
        missing, missing_total = _missing_tags(session, campaign, eligible)
        return LaunchCheck(len(people), len(eligible), skipped, missing, missing_total)


# --- launch, pause, resume, cancel --------------------------------------------------------


@dataclass(frozen=True)
class LaunchResult:
    enrolled: int
    skipped: dict[str, int]
    messages: int


def launch(
    engine: Engine, *, actor: User, campaign_id: int, now: dt.datetime | None = None
) -> LaunchResult:
    """Enroll the audience as it is now and queue every message, all in one transaction.

    The draft -> active switch is a conditional UPDATE in the same transaction, so a
    double-click (or two recruiters at once) launches exactly once.
    """
    require_writer(engine, actor)
    settings = load_settings()
    if not settings.smtp_configured:
        raise ValidationError(
            "Sending is not set up (CRM_SMTP_HOST is empty), so a campaign cannot be launched."
        )
    now = now or clock.now()
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        if not sender_of(campaign, settings)[1]:
            raise ValidationError("Give the campaign a sender address (or set CRM_FROM).")
        switched = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "draft")
            .values(status="active", launched_at=now, consecutive_failures=0, pause_reason=None)
        ).rowcount
        if switched != 1:
            raise ValidationError("This campaign has already been launched.")
        steps = list(campaign.steps)
        if not steps:
            raise ValidationError("A campaign needs at least one step.")
        people, skipped = _classify(session, campaign)
        eligible = [p.id for p in people if p.reason is None]
        if not eligible:
            raise ValidationError("Nobody in the audience can be emailed right now.")
        _, missing_total = _missing_tags(session, campaign, eligible, limit=0)
        if missing_total:
            raise ValidationError(
                f"{missing_total} people would get an empty merge tag with no fallback; "
                "see the launch check."
            )
        addresses = dict(
            session.execute(
                select(Candidate.id, Candidate.email).where(Candidate.id.in_(eligible))
            ).all()
            if len(eligible) <= 30_000
            else _chunked_addresses(session, eligible)
        )
        for start in range(0, len(eligible), 5000):
            session.execute(
                insert(Enrollment),
                [
                    {"campaign_id": campaign_id, "candidate_id": cid, "enrolled_at": now}
                    for cid in eligible[start : start + 5000]
                ],
            )
        enrollments = session.execute(
            select(Enrollment.id, Enrollment.candidate_id).where(
                Enrollment.campaign_id == campaign_id
            )
        ).all()
        first = steps[0]
        first_due = send_window.next_send_time(
            send_window.parse_window(first.send_window), now + dt.timedelta(days=first.delay_days)
        )
        rows: list[dict[str, Any]] = []
        for enrollment_id, cid in enrollments:
            rows += sequence_rows(
                campaign_id=campaign_id,
                enrollment_id=enrollment_id,
                candidate_id=cid,
                to_address=addresses.get(cid),
                steps=steps,
                now=now,
                first_due=first_due,
            )
            if len(rows) >= 10_000:
                session.execute(insert(OutboxMessage), rows)
                rows = []
        if rows:
            session.execute(insert(OutboxMessage), rows)
        summary = {
            "audience": len(people),
            "enrolled": len(eligible),
            "skipped": {k: v for k, v in skipped.items() if v},
        }
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(launch_summary=summary)
        )
        audit.record_about(session, actor, "campaign.launch", campaign_id, summary)
        return LaunchResult(len(eligible), summary["skipped"], len(eligible) * len(steps))


def _chunked_addresses(session: Session, ids: list[int]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for start in range(0, len(ids), 10_000):
        found.extend(
            session.execute(
                select(Candidate.id, Candidate.email).where(
                    Candidate.id.in_(ids[start : start + 10_000])
                )
            ).all()
        )
    return found


def _set_status(
    engine: Engine, *, actor: User, campaign_id: int, allowed_from: tuple[str, ...], to: str
) -> Campaign:
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        changed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status.in_(allowed_from))
            .values(
                status=to,
                pause_reason=None if to != "paused" else "Paused by " + actor.display_name,
            )
        ).rowcount
        if changed != 1:
            raise ValidationError(f"A {campaign.status} campaign cannot be {_PAST[to]}.")
        audit.record_about(session, actor, f"campaign.{to}", campaign_id)
        return campaign


_PAST = {"paused": "paused", "active": "resumed", "cancelled": "cancelled"}


def pause(engine: Engine, *, actor: User, campaign_id: int) -> None:
    _set_status(engine, actor=actor, campaign_id=campaign_id, allowed_from=("active",), to="paused")


def resume(engine: Engine, *, actor: User, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Resume a paused campaign; overdue messages are re-spaced from now, not fired at once.

    Returns how many overdue messages were re-spaced (at the send rate, inside each step's
    send window).
    """
    require_writer(engine, actor)
    now = now or clock.now()
    rate = load_settings().send_rate
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        changed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "paused")
            .values(status="active", pause_reason=None, consecutive_failures=0)
        ).rowcount
        if changed != 1:
            raise ValidationError(f"A {campaign.status} campaign cannot be resumed.")
        windows = {step.id: send_window.parse_window(step.send_window) for step in campaign.steps}
        overdue = session.execute(
            select(OutboxMessage.id, OutboxMessage.step_id)
            .where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status == "queued",
                OutboxMessage.due_at < now,
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
        ).all()
        spacing = 1.0 / rate
        updates = [
            {
                "row_id": row_id,
                "due": send_window.next_send_time(
                    windows.get(step_id), now + dt.timedelta(seconds=index * spacing)
                ),
            }
            for index, (row_id, step_id) in enumerate(overdue)
        ]
        if updates:
            session.execute(
                update(OutboxMessage.__table__)
                .where(OutboxMessage.__table__.c.id == bindparam("row_id"))
                .values(due_at=bindparam("due"), lease_until=None, leased_by=None),
                updates,
            )
        audit.record_about(
            session, actor, "campaign.resume", campaign_id, {"respaced": len(updates)}
        )
        return len(updates)


def cancel(engine: Engine, *, actor: User, campaign_id: int) -> int:
    """Cancel a campaign: nothing more is sent; returns how many messages were cancelled."""
    _set_status(
        engine,
        actor=actor,
        campaign_id=campaign_id,
        allowed_from=("active", "paused", "draft"),
        to="cancelled",
    )
    with write_session(engine) as session:
        cancelled_count = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status.in_(STOPPABLE_STATES),
            )
            .values(**cancelled("campaign cancelled"))
        ).rowcount
        session.execute(
            update(Enrollment)
            .where(Enrollment.campaign_id == campaign_id, Enrollment.status == "active")
            .values(**stopped("campaign cancelled"))
        )
        return cancelled_count


def resolve_review(engine: Engine, *, actor: User, outbox_id: int, arrived: bool) -> None:
    """Settle a message whose delivery is unknown: it arrived (sent) or send it again."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.status != "needs_review":
            raise ValidationError("That message is no longer waiting for review.")
        if arrived:
            row.status = "sent"
            row.sent_at = row.sent_at or clock.now()
            row.note = f"Marked as arrived by {actor.display_name}"
            session.flush()
            schedule_next(session, row, sent_at=row.sent_at)
        else:
            row.status = "queued"
            row.due_at = clock.now()
            row.lease_until = None
            row.leased_by = None
            row.note = f"Sent again at the request of {actor.display_name}"
        audit.record(
            session,
            actor=actor,
            action="outbox.review",
            entity="outbox_message",
            entity_id=outbox_id,
            detail={"arrived": arrived},
        )
