"""One person's place in a campaign's sequence: moving it on to the next step, or ending it.

Delivery moves a sequence on after each send; unsubscribes, hard bounces, replies,
erasure and cancelling a campaign end it. All of them change the outbox through these
functions, inside the caller's transaction, so every way a sequence ends looks the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm import send_window
from crm.models import CampaignStep, Enrollment, OutboxMessage

# Messages not finished with yet: a person's sequence is complete when none is left.
OPEN_STATES = ("waiting", "queued", "sending", "needs_review")
# Messages a stop cancels: those not yet handed to a worker.
STOPPABLE_STATES = ("queued", "waiting")
# Why a sequence ended (enrollments.stopped_reason, and the skip_reason of what it cancelled).
UNSUBSCRIBED = "unsubscribed"
HARD_BOUNCE = "hard bounce"
REPLIED = "replied"
# What one outbox message belongs to: itself, its campaign, step, sequence and person.
MESSAGE_KEYS = (
    OutboxMessage.id,
    OutboxMessage.campaign_id,
    OutboxMessage.step_id,
    OutboxMessage.enrollment_id,
    OutboxMessage.candidate_id,
)


def outbox_key(campaign_id: int, position: int, candidate_id: int) -> str:
    """An outbox row's unique key: one message per step per person, never two."""
    return f"{campaign_id}:{position}:{candidate_id}"


def sequence_rows(
    *,
    campaign_id: int,
    enrollment_id: int,
    candidate_id: int,
    to_address: str | None,
    steps: Sequence[CampaignStep],
    now: dt.datetime,
    first_due: dt.datetime,
) -> list[dict[str, Any]]:
    """The outbox rows of a new enrollment: its first step queued, every later one waiting
    (schedule_next queues each when the one before it is sent)."""
    return [
        {
            "unique_key": outbox_key(campaign_id, step.position, candidate_id),
            "campaign_id": campaign_id,
            "step_id": step.id,
            "enrollment_id": enrollment_id,
            "candidate_id": candidate_id,
            "to_address": to_address,
            "status": "queued" if step.position == 1 else "waiting",
            "due_at": first_due if step.position == 1 else now,
            "created_at": now,
        }
        for step in steps
    ]


def stopped(reason: str) -> dict[str, str]:
    """What ending a sequence writes on its enrollment (one still active)."""
    return {"status": "stopped", "stopped_reason": reason}


def cancelled(reason: str) -> dict[str, str]:
    """What ending a sequence writes on each of its messages in STOPPABLE_STATES."""
    return {"status": "cancelled", "skip_reason": reason}


def stops_on(next_step: CampaignStep | None, flag: str) -> bool:
    """Whether something flagged `flag` (stop_on_reply...) ends a sequence whose next unsent
    step is `next_step`: a sequence with nothing left to send has nothing to stop."""
    return next_step is not None and bool(getattr(next_step, flag))


def stop_enrollment(session: Session, enrollment_id: int, reason: str) -> int:
    """Cancel what is left of one person's sequence; returns the messages cancelled."""
    cancelled_count = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.enrollment_id == enrollment_id,
            OutboxMessage.status.in_(STOPPABLE_STATES),
        )
        .values(**cancelled(reason))
    ).rowcount
    session.execute(
        update(Enrollment)
        .where(Enrollment.id == enrollment_id, Enrollment.status == "active")
        .values(**stopped(reason))
    )
    return cancelled_count


def stop_everything(session: Session, candidate_id: int, reason: str) -> int:
    """End every active sequence of one person; returns the messages cancelled."""
    return sum(
        stop_enrollment(session, enrollment_id, reason)
        for enrollment_id in session.scalars(
            select(Enrollment.id).where(
                Enrollment.candidate_id == candidate_id, Enrollment.status == "active"
            )
        ).all()
    )


def stop_where_next_step_says(session: Session, candidate_id: int, flag: str, reason: str) -> int:
    """End the person's sequences whose next unsent step stops on `flag` (stop_on_reply)."""
    stopped = 0
    for enrollment_id in session.scalars(
        select(Enrollment.id).where(
            Enrollment.candidate_id == candidate_id, Enrollment.status == "active"
        )
    ).all():
        next_step = session.execute(
            select(CampaignStep)
            .join(OutboxMessage, OutboxMessage.step_id == CampaignStep.id)
            .where(
                OutboxMessage.enrollment_id == enrollment_id,
                OutboxMessage.status.in_(STOPPABLE_STATES),
            )
            .order_by(CampaignStep.position)
            .limit(1)
        ).scalar()
        if stops_on(next_step, flag):
            stopped += stop_enrollment(session, enrollment_id, reason)
    return stopped


def schedule_next(session: Session, row: OutboxMessage, *, sent_at: dt.datetime) -> None:
    """Queue the person's next step from this step's actual send time, inside its window."""
    current = session.get(CampaignStep, row.step_id)
    following = session.execute(
        select(OutboxMessage, CampaignStep)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .where(
            OutboxMessage.enrollment_id == row.enrollment_id,
            OutboxMessage.status == "waiting",
            CampaignStep.position > (current.position if current else 0),
        )
        .order_by(CampaignStep.position)
        .limit(1)
    ).first()
    if following is None:
        still_open = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.enrollment_id == row.enrollment_id,
                OutboxMessage.status.in_(OPEN_STATES),
            )
        )
        if not still_open:
            session.execute(
                update(Enrollment)
                .where(Enrollment.id == row.enrollment_id, Enrollment.status == "active")
                .values(status="completed")
            )
        return
    next_row, next_step = following
    next_row.status = "queued"
    next_row.due_at = send_window.next_send_time(
        send_window.parse_window(next_step.send_window),
        sent_at + dt.timedelta(days=next_step.delay_days),
    )
