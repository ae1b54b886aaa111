"""A campaign's outbox as the page shows it: what is due, one page of messages, one message.

Read-only views of crm.outbox's rows, filtered and paged in SQL. A message shows exactly
what its person got: the subject and bodies kept when it went out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, func, or_, select

from crm.db import get_existing, read_session
from crm.models import Campaign, CampaignStep, Candidate, OutboxMessage
from crm.sql import escape_like


@dataclass(frozen=True)
class StepDue:
    campaign: str
    step: int
    subject: str
    messages: int


def steps_due(engine: Engine, *, until: dt.datetime) -> list[StepDue]:
    """Queued messages falling due by `until`, per active campaign and step."""
    with read_session(engine) as session:
        rows = session.execute(
            select(
                Campaign.name,
                CampaignStep.position,
                CampaignStep.subject,
                func.count(OutboxMessage.id),
            )
            .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .where(
                OutboxMessage.status == "queued",
                OutboxMessage.due_at <= until,
                Campaign.status == "active",
            )
            .group_by(Campaign.name, CampaignStep.position, CampaignStep.subject)
            .order_by(Campaign.name, CampaignStep.position)
        ).all()
    return [StepDue(name, position, subject, count) for name, position, subject, count in rows]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    step: int
    candidate_id: int | None
    name: str
    to_address: str | None
    status: str
    due_at: dt.datetime
    sent_at: dt.datetime | None
    attempts: int
    detail: str | None


def outbox(
    engine: Engine,
    campaign_id: int,
    *,
    status: str | None = None,
    step: int | None = None,
    search: str = "",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[OutboxRow], int]:
    """One page of a campaign's messages, filtered in SQL, and how many match."""
    conditions: list[ColumnElement[bool]] = [OutboxMessage.campaign_id == campaign_id]
    if status:
        conditions.append(OutboxMessage.status == status)
    term = search.strip().lower()
    if term:
        pattern = f"%{escape_like(term)}%"
        conditions.append(
            or_(
                func.lower(OutboxMessage.to_address).like(pattern, escape="\\"),
                func.lower(Candidate.first_name + " " + Candidate.last_name).like(
                    pattern, escape="\\"
                ),
            )
        )
    with read_session(engine) as session:
        # Steps are few: resolve positions here instead of joining every row to them.
        positions = dict(
            session.execute(
                select(CampaignStep.id, CampaignStep.position).where(
                    CampaignStep.campaign_id == campaign_id
                )
            ).all()
        )
        if step:
            conditions.append(
                OutboxMessage.step_id.in_(
                    [step_id for step_id, position in positions.items() if position == step]
                )
            )
        counted = select(func.count()).select_from(OutboxMessage).where(*conditions)
        if term:  # only a search needs the people
            counted = counted.outerjoin(Candidate, Candidate.id == OutboxMessage.candidate_id)
        total = session.scalar(counted) or 0
        # Only the columns shown: never the kept bodies of fifty messages.
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.step_id,
                OutboxMessage.candidate_id,
                Candidate.first_name,
                Candidate.last_name,
                OutboxMessage.to_address,
                OutboxMessage.status,
                OutboxMessage.due_at,
                OutboxMessage.sent_at,
                OutboxMessage.attempts,
                func.coalesce(
                    OutboxMessage.skip_reason,
                    OutboxMessage.last_error,
                    OutboxMessage.note,
                    OutboxMessage.smtp_reply,
                ),
            )
            .outerjoin(Candidate, Candidate.id == OutboxMessage.candidate_id)
            .where(*conditions)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .offset(offset)
        ).all()
        return (
            [
                OutboxRow(
                    id=row_id,
                    step=positions.get(step_id, 0),
                    candidate_id=candidate_id,
                    name=f"{first or ''} {last or ''}".strip() or "(erased)",
                    to_address=address,
                    status=status,
                    due_at=due_at,
                    sent_at=sent_at,
                    attempts=attempts,
                    detail=detail,
                )
                for (
                    row_id, step_id, candidate_id, first, last, address, status, due_at,
                    sent_at, attempts, detail,
                ) in rows
            ],
            total,
        )  # fmt: skip


@dataclass(frozen=True)
class SentMessage:
    subject: str | None
    text: str | None
    html: str | None
    to_address: str | None
    sent_at: dt.datetime | None
    status: str
    message_id: str | None


def message(engine: Engine, outbox_id: int) -> SentMessage:
    """Exactly what one person got (kept when it was sent)."""
    with read_session(engine) as session:
        row = get_existing(session, OutboxMessage, outbox_id, "message")
        return SentMessage(
            row.subject, row.body_text, row.body_html, row.to_address, row.sent_at, row.status,
            row.message_id,
        )  # fmt: skip
