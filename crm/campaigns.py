"""Campaigns: multi-step email sequences aimed at a pool, and how each is doing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, case, func, select

from crm.db import read_session
from crm.models import Campaign, CampaignStep, Event, OutboxMessage, Pool


@dataclass(frozen=True)
class CampaignSummary:
    id: int
    name: str
    status: str
    audience: str | None
    steps: int
    queued: int
    sent: int
    failed: int
    opens: int
    clicks: int
    replies: int
    unsubscribes: int
    launched_at: dt.datetime | None


def list_campaigns(engine: Engine) -> list[CampaignSummary]:
    """Every campaign with its delivery and engagement counts, from SQL aggregates."""
    with read_session(engine) as session:
        steps = dict(
            session.execute(
                select(CampaignStep.campaign_id, func.count()).group_by(CampaignStep.campaign_id)
            ).all()
        )
        outbox = {
            row.campaign_id: row
            for row in session.execute(
                select(
                    OutboxMessage.campaign_id,
                    func.sum(case((OutboxMessage.status == "queued", 1), else_=0)).label("queued"),
                    func.sum(case((OutboxMessage.status == "sent", 1), else_=0)).label("sent"),
                    func.sum(case((OutboxMessage.status == "failed", 1), else_=0)).label("failed"),
                ).group_by(OutboxMessage.campaign_id)
            )
        }
        # Distinct people per event kind, so one person opening twice counts once.
        events: dict[tuple[int, str], int] = {
            (campaign_id, kind): people
            for campaign_id, kind, people in session.execute(
                select(Event.campaign_id, Event.kind, func.count(func.distinct(Event.candidate_id)))
                .where(Event.campaign_id.is_not(None))
                .group_by(Event.campaign_id, Event.kind)
            )
        }
        rows = session.execute(
            select(Campaign, Pool.name)
            .outerjoin(Pool, Pool.id == Campaign.audience_pool_id)
            .order_by(Campaign.created_at.desc(), Campaign.id.desc())
        ).all()
        summaries = []
        for campaign, pool_name in rows:
            counts = outbox.get(campaign.id)
            summaries.append(
                CampaignSummary(
                    id=campaign.id,
                    name=campaign.name,
                    status=campaign.status,
                    audience=pool_name,
                    steps=steps.get(campaign.id, 0),
                    queued=int(counts.queued or 0) if counts else 0,
                    sent=int(counts.sent or 0) if counts else 0,
                    failed=int(counts.failed or 0) if counts else 0,
                    opens=events.get((campaign.id, "open"), 0),
                    clicks=events.get((campaign.id, "click"), 0),
                    replies=events.get((campaign.id, "reply"), 0),
                    unsubscribes=events.get((campaign.id, "unsubscribe"), 0),
                    launched_at=campaign.launched_at,
                )
            )
        return summaries


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
