"""What Home lists for today, from a small hand-made database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from crm import attention, clock, db
from crm.models import (
    Campaign,
    CampaignStep,
    Candidate,
    ContentItem,
    ContentItemPool,
    Enrollment,
    OutboxMessage,
    Pool,
    User,
)

NOW = dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.UTC)  # a Thursday


def test_today_view(engine: Engine) -> None:
    with db.write_session(engine) as session:
        ana = Candidate(
            first_name="Ana",
            last_name="Lima",
            email="ana@example.com",
            follow_up_on=dt.date(2026, 11, 25),
            follow_up_note="Ask about Q1",
        )
        later = Candidate(first_name="Bo", last_name="Berg", follow_up_on=dt.date(2026, 12, 25))
        warm = Pool(name="Warm", kind="static")
        quiet = Pool(name="Quiet", kind="static")
        never = Pool(name="Never touched", kind="static")
        session.add_all([ana, later, warm, quiet, never])
        session.flush()
        campaign = Campaign(name="Hello", audience_pool_id=warm.id, status="active")
        session.add(campaign)
        session.flush()
        step1 = CampaignStep(campaign_id=campaign.id, position=1, subject="Hi", body_markdown="x")
        step2 = CampaignStep(
            campaign_id=campaign.id, position=2, subject="Again", body_markdown="y", delay_days=4
        )
        session.add_all([step1, step2])
        session.flush()
        enrollment = Enrollment(campaign_id=campaign.id, candidate_id=ana.id)
        session.add(enrollment)
        session.flush()
        session.add_all(
            [
                OutboxMessage(
                    unique_key="1",
                    campaign_id=campaign.id,
                    step_id=step1.id,
                    enrollment_id=enrollment.id,
                    candidate_id=ana.id,
                    status="sent",
                    sent_at=NOW - dt.timedelta(days=3),
                    due_at=NOW - dt.timedelta(days=3),
                ),
                OutboxMessage(
                    unique_key="2",
                    campaign_id=campaign.id,
                    step_id=step2.id,
                    enrollment_id=enrollment.id,
                    candidate_id=ana.id,
                    status="queued",
                    due_at=NOW + dt.timedelta(hours=5),
                ),
            ]
        )
        item_this_week = ContentItem(
            title="Blog: on-call",
            channel="blog",
            status="scheduled",
            scheduled_at=dt.datetime(2026, 11, 29, 10, tzinfo=dt.UTC),
        )
        item_next_week = ContentItem(
            title="Later",
            channel="x",
            status="idea",
            scheduled_at=dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC),
        )
        old_post = ContentItem(
            title="Old",
            channel="linkedin_post",
            status="published",
            scheduled_at=NOW - dt.timedelta(days=45),
            published_at=NOW - dt.timedelta(days=45),
        )
        session.add_all([item_this_week, item_next_week, old_post])
        session.flush()
        session.add_all(
            [
                ContentItemPool(content_item_id=item_this_week.id, pool_id=warm.id),
                ContentItemPool(content_item_id=old_post.id, pool_id=quiet.id),
            ]
        )

    view = attention.today_view(engine, now=NOW)
    assert view.week_start == dt.date(2026, 11, 23)
    assert [item.title for item in view.calendar_this_week] == ["Blog: on-call"]
    assert view.calendar_this_week[0].pools == ("Warm",)
    assert [(s.campaign, s.step, s.messages) for s in view.steps_due] == [("Hello", 2, 1)]
    assert {p.name: p.last_touch for p in view.quiet_pools} == {
        "Never touched": None,
        "Quiet": NOW - dt.timedelta(days=45),
    }
    assert [(f["first_name"], f["follow_up_note"]) for f in view.follow_ups] == [
        ("Ana", "Ask about Q1")
    ]
    assert view.goals_needing_care == []


def test_home_warns_when_a_pool_would_hear_from_us_too_often(
    engine: Engine, users: dict[str, User]
) -> None:
    from crm import calendar, pools

    now = clock.now()
    pool_id = pools.save_pool(engine, actor=users["admin"], name="Busy", kind="static")
    calendar.set_pool_cadence(
        engine, actor=users["admin"], pool_id=pool_id, frequency_cap_per_week=1, silence_days=30
    )
    monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time(9), dt.UTC)
    for day in (7, 8):  # next week, twice
        calendar.save_item(
            engine,
            actor=users["admin"],
            draft=calendar.ItemDraft(
                title=f"Post {day}", channel="linkedin_post",
                starts_at=monday + dt.timedelta(days=day), pool_ids=[pool_id],
            ),
        )  # fmt: skip
    view = attention.today_view(engine, now=now)
    assert [(w.pool, w.kind) for w in view.too_often] == [("Busy", "too_often")]
