"""What Home lists for today, from a small hand-made database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from crm import attention, clock, db, touches
from crm.models import (
    Campaign,
    CampaignStep,
    Candidate,
    ContentItem,
    ContentItemPool,
    Enrollment,
    OutboxMessage,
    Pool,
    PoolMember,
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
    from crm import pools
    from crm.content_calendar import cadence, drafts, items

    now = clock.now()
    pool_id = pools.save_pool(engine, actor=users["admin"], name="Busy", kind="static")
    cadence.set_pool_cadence(
        engine, actor=users["admin"], pool_id=pool_id, frequency_cap_per_week=1, silence_days=30
    )
    monday = dt.datetime.combine(now.date() - dt.timedelta(days=now.weekday()), dt.time(9), dt.UTC)
    for day in (7, 8):  # next week, twice
        items.save_item(
            engine,
            actor=users["admin"],
            draft=drafts.ItemDraft(
                title=f"Post {day}", channel="linkedin_post",
                starts_at=monday + dt.timedelta(days=day), pool_ids=[pool_id],
            ),
        )  # fmt: skip
    view = attention.today_view(engine, now=now)
    assert [(w.pool, w.kind) for w in view.too_often] == [("Busy", "too_often")]


# --- one last touch per pool ------------------------------------------------------------


def touched_pools(engine: Engine) -> dict[str, int]:
    """Pool A "AWS experts": its campaign sent 40 days ago, a message of it still queued,
    and its member Ana contacted yesterday by a campaign aimed at no pool (her touch, not
    the pool's). Pool B "Senior backend engineers": content published to it 3 days ago,
    its member Bo never contacted, and a post for it still scheduled. So A's last touch
    is now - 40 days and B's now - 3 days (the old Talent pools column, the latest
    contact with a member, said "yesterday" and "never"). "now" is in whole seconds."""
    now = clock.now().replace(microsecond=0)
    with db.write_session(engine) as session:
        ana = Candidate(first_name="Ana", last_name="A", last_contacted_at=now - dt.timedelta(1))
        bo = Candidate(first_name="Bo", last_name="B")
        pool_a = Pool(name="AWS experts", kind="static", stages=[])
        pool_b = Pool(name="Senior backend engineers", kind="static", stages=[])
        session.add_all([ana, bo, pool_a, pool_b])
        session.flush()
        session.add_all(
            [
                PoolMember(pool_id=pool_a.id, candidate_id=ana.id),
                PoolMember(pool_id=pool_b.id, candidate_id=bo.id),
            ]
        )
        aimed = Campaign(name="AWS news", audience_pool_id=pool_a.id, status="active")
        other = Campaign(name="Hand-picked", audience_pool_id=None, status="active")
        session.add_all([aimed, other])
        session.flush()
        enrollments: dict[int, Enrollment] = {}
        for number, (campaign, status, sent) in enumerate(
            [
                (aimed, "sent", now - dt.timedelta(days=40)),
                (aimed, "queued", None),
                (other, "sent", now - dt.timedelta(days=1)),
            ]
        ):
            step = CampaignStep(
                campaign_id=campaign.id, position=number + 1, subject="Hi", body_markdown="x"
            )
            enrollment = enrollments.get(campaign.id) or Enrollment(
                campaign_id=campaign.id, candidate_id=ana.id
            )
            enrollments[campaign.id] = enrollment
            session.add_all([step, enrollment])
            session.flush()
            session.add(
                OutboxMessage(
                    unique_key=f"touch-{number}",
                    campaign_id=campaign.id,
                    step_id=step.id,
                    enrollment_id=enrollment.id,
                    candidate_id=ana.id,
                    status=status,
                    sent_at=sent,
                    due_at=sent or now + dt.timedelta(hours=1),
                )
            )
        published = ContentItem(
            title="Backend digest",
            channel="linkedin_post",
            status="published",
            scheduled_at=now - dt.timedelta(days=3),
            published_at=now - dt.timedelta(days=3),
        )
        scheduled = ContentItem(
            title="Next digest",
            channel="linkedin_post",
            status="scheduled",
            scheduled_at=now + dt.timedelta(days=2),
        )
        session.add_all([published, scheduled])
        session.flush()
        session.add_all(
            [
                ContentItemPool(content_item_id=published.id, pool_id=pool_b.id),
                ContentItemPool(content_item_id=scheduled.id, pool_id=pool_a.id),
            ]
        )
        return {"A": pool_a.id, "B": pool_b.id, "now": int(now.timestamp())}


def test_a_pools_last_touch_is_its_campaigns_and_content_not_a_members_contact(
    engine: Engine,
) -> None:
    made = touched_pools(engine)
    now = dt.datetime.fromtimestamp(made["now"], dt.UTC)
    with db.read_session(engine) as session:
        found = touches.pool_last_touches(session)
    assert found == {
        made["A"]: now - dt.timedelta(days=40),
        made["B"]: now - dt.timedelta(days=3),
    }
    quiet, count = attention.pools_gone_quiet(engine, now=clock.now())
    assert count == 2
    assert [(p.name, p.last_touch) for p in quiet] == [("AWS experts", now - dt.timedelta(days=40))]


def test_a_persons_last_touch_is_the_later_of_contacted_and_engaged(engine: Engine) -> None:
    from sqlalchemy import select

    early, late = clock.now() - dt.timedelta(days=9), clock.now() - dt.timedelta(days=2)
    cases = {"contacted": (late, early), "engaged": (early, late), "one": (None, early)}
    with db.write_session(engine) as session:
        for name, (contacted, engaged) in {**cases, "none": (None, None)}.items():
            session.add(
                Candidate(first_name=name, last_contacted_at=contacted, last_engaged_at=engaged)
            )
    with db.read_session(engine) as session:
        in_sql = dict(
            session.execute(select(Candidate.first_name, touches.person_last_touch_sql())).all()
        )
    assert in_sql == {"contacted": late, "engaged": late, "one": early, "none": None}
    for name, moments in cases.items():
        assert touches.person_last_touch(*moments) == in_sql[name]
    assert touches.person_last_touch(None, None) is None
