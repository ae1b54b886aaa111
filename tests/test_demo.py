"""The demo data loader: counts, determinism, metrics that make sense, and wipe."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import Engine, func, select

from crm import (
    attention,
    campaign_figures,
    db,
    demo,
    engagement,
    enrollments,
    goals,
    identity,
    metrics,
    outbox_view,
    pools,
)
from crm.content_calendar.occurrences import items_between
from crm.db import read_session
from crm.errors import CrmError
from crm.models import (
    Application,
    Base,
    Candidate,
    ContentItem,
    Enrollment,
    Event,
    Job,
    OutboxMessage,
    Suppression,
    User,
)
from tests.conftest import fresh_database_url, signs_in

TODAY = dt.date(2026, 3, 18)  # a Wednesday
SIZE = 300
GUIDE_GOALS = {
    "Reduce time-to-hire by 15% for key tech roles in six months",
    "Boost the offer acceptance rate by 10%",
    "Source 25% of new hires from our talent pools by year end",
}


@pytest.fixture(scope="module")
def fresh_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Engine]]:
    """Make migrated, empty databases (as conftest does), all removed after the module."""
    with ExitStack() as stack:

        def make() -> Engine:
            url = stack.enter_context(fresh_database_url(tmp_path_factory.mktemp("demo")))
            engine = db.create_engine_for(url)
            stack.callback(engine.dispose)
            db.upgrade(engine)
            return engine

        yield make


@pytest.fixture(scope="module")
def loaded(
    fresh_engine: Callable[[], Engine],
) -> tuple[Engine, demo.DemoSummary, list[tuple[str, float]]]:
    engine = fresh_engine()
    calls: list[tuple[str, float]] = []
    summary = demo.load_demo(
        engine,
        candidates=SIZE,
        seed=7,
        today=TODAY,
        progress=lambda label, fraction: calls.append((label, fraction)),
    )
    return engine, summary, calls


@pytest.fixture
def engine(loaded: tuple[Engine, demo.DemoSummary, list[tuple[str, float]]]) -> Engine:
    return loaded[0]


def candidate_fingerprint(engine: Engine) -> list[tuple[str, str, list[str]]]:
    """Every candidate's email, title and skills, in a stable order."""
    with read_session(engine) as session:
        rows = session.execute(select(Candidate.email, Candidate.title, Candidate.skills)).all()
    return sorted((email or "", title or "", sorted(skills)) for email, title, skills in rows)


def test_loader_creates_the_expected_data(loaded) -> None:
    engine, summary, calls = loaded
    assert summary.candidates == SIZE
    assert summary.users_created == ["admin", "recruiter", "manager", "jordan", "li"]
    assert (summary.pools, summary.campaigns, summary.goals) == (6, 3, 3)
    assert 40 <= summary.jobs <= 70
    assert summary.applications > summary.jobs * 8 * 0.8
    assert summary.messages > 0 and summary.events > 0
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == SIZE
        roles = Counter(session.scalars(select(User.role)))
    assert roles == {"admin": 1, "recruiter": 3, "manager": 1}
    for username, password in demo.DEMO_USERS.values():
        assert signs_in(engine, username, password)

    summaries = pools.list_pools(engine)
    assert len(summaries) == 6
    for pool in summaries:
        assert pool.problem is None, pool
        assert pool.size and pool.size > 0, pool

    statuses = {c.name: c.status for c in campaign_figures.list_campaigns(engine)}
    assert statuses == {
        "Backend engineers, spring": "completed",
        "Data talent newsletter": "active",
        "Sales leaders re-engagement": "active",
    }
    assert {goal.title for goal in goals.list_goals(engine)} == GUIDE_GOALS

    monday = dt.datetime.combine(TODAY - dt.timedelta(days=TODAY.weekday()), dt.time(), dt.UTC)
    this_week = items_between(engine, start=monday, end=monday + dt.timedelta(days=7))
    assert len(this_week) >= 3
    assert all(item.pools for item in this_week)
    with read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ContentItem)) == (
            summary.content_items
        )

    fractions = [fraction for _, fraction in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(label == "Creating candidates" for label, _ in calls)


def test_same_seed_and_day_give_the_same_candidates(
    engine: Engine, fresh_engine: Callable[[], Engine]
) -> None:
    other = fresh_engine()
    demo.load_demo(other, candidates=SIZE, seed=7, today=TODAY)
    assert candidate_fingerprint(other) == candidate_fingerprint(engine)
    with read_session(other) as session:
        jobs = session.execute(select(Job.title, Job.opened_at).order_by(Job.id)).all()
    with read_session(engine) as session:
        assert session.execute(select(Job.title, Job.opened_at).order_by(Job.id)).all() == jobs


def test_metrics_over_the_last_twelve_months_are_plausible(engine: Engine) -> None:
    report = metrics.compute(engine, start=TODAY - dt.timedelta(days=364), end=TODAY)
    assert report.hires > 0
    assert report.offer_acceptance_rate is not None
    assert 0.6 <= report.offer_acceptance_rate <= 0.95
    assert report.hires_from_talent_pools_share is not None
    assert 0.1 <= report.hires_from_talent_pools_share <= 0.6
    assert report.cost_per_hire is not None
    assert 1_000 < report.cost_per_hire < 15_000
    assert report.time_to_hire_days is not None and report.time_to_fill_days is not None


def test_goals_have_data(engine: Engine) -> None:
    progress = goals.all_progress(engine, today=TODAY)
    assert len(progress) == 3
    assert all(item.status in goals.STATUSES for item in progress)
    assert [item.status for item in progress].count("no_data") == 0


def test_pipeline_is_consistent(engine: Engine) -> None:
    order = ("sourced_at", "applied_at", "screen_at", "interview_at", "offer_at", "hired_at")
    now = dt.datetime.combine(TODAY, dt.time(), dt.UTC)
    with read_session(engine) as session:
        applications = list(session.scalars(select(Application)))
        filled = set(session.scalars(select(Job.id).where(Job.status == "filled")))
    hires = Counter(a.job_id for a in applications if a.stage == "hired")
    assert set(hires) == filled and set(hires.values()) == {1}
    for application in applications:
        stamps = [getattr(application, name) for name in order]
        present = [stamp for stamp in stamps if stamp is not None]
        assert present == sorted(present)
        assert all(stamp < now for stamp in present)
        if application.offer_accepted is not None:
            assert application.offer_decided_at is not None
            assert application.offer_decided_at >= application.offer_at
        if application.source in {"talent_pool", "campaign"}:
            assert application.pool_id is not None
        if application.source == "campaign":
            assert application.campaign_id is not None


def test_home_has_something_to_show(engine: Engine) -> None:
    end_of_today = dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(), dt.UTC)
    assert outbox_view.steps_due(engine, until=end_of_today)
    now = dt.datetime.combine(TODAY, dt.time(12), dt.UTC)
    quiet_pools, pool_count = attention.pools_gone_quiet(engine, now=now)
    assert pool_count == 6
    quiet = {pool.name for pool in quiet_pools}
    assert "Senior backend engineers" in quiet
    assert "Gone quiet: data people" not in quiet
    with read_session(engine) as session:
        queued = session.scalars(
            select(OutboxMessage.due_at).where(OutboxMessage.status == "queued")
        ).all()
    assert queued and min(queued) >= now.replace(hour=0)


def test_opens_and_clicks_are_what_tracking_would_record(engine: Engine) -> None:
    """Every demo open and click says what the real classifier makes of its stored agent
    and its time after delivery: no split tracking could not make."""
    with read_session(engine) as session:
        rows = session.execute(
            select(
                Event.kind,
                Event.user_agent,
                Event.occurred_at,
                OutboxMessage.sent_at,
                Event.is_machine,
                Event.seen_via,
            )
            .join(OutboxMessage, OutboxMessage.id == Event.outbox_message_id)
            .where(Event.kind.in_(("open", "click")))
        ).all()
    seen: Counter[tuple[str, str]] = Counter()
    for kind, agent, occurred_at, sent_at, machine, seen_via in rows:
        expected = engagement.classify_hit(
            user_agent=agent,
            seconds_after_delivery=(occurred_at - sent_at).total_seconds(),
            is_click=kind == "click",
        )
        assert (machine, seen_via) == expected, (kind, agent, occurred_at, sent_at)
        seen[kind, seen_via] += 1
    # The demo shows every way an open is seen, and people's clicks.
    assert {via for kind, via in seen if kind == "open"} == set(engagement.SEEN_VIA)
    assert seen["click", "person"] > 0


def test_sequences_end_as_the_product_ends_them(engine: Engine) -> None:
    """Stopped sequences keep nothing queued, finished ones sent everything, and whoever
    unsubscribed or bounced is on the suppression list: states the services reach."""
    with read_session(engine) as session:
        messages = session.execute(
            select(Enrollment.status, Enrollment.stopped_reason, OutboxMessage.status).join(
                OutboxMessage, OutboxMessage.enrollment_id == Enrollment.id
            )
        ).all()
        stopped_people = session.scalars(
            select(Candidate.email_normalized)
            .join(Enrollment, Enrollment.candidate_id == Candidate.id)
            .where(
                Enrollment.stopped_reason.in_((enrollments.UNSUBSCRIBED, enrollments.HARD_BOUNCE))
            )
        ).all()
        suppressed = set(session.scalars(select(Suppression.address_hash)))
    reasons = {reason for status, reason, _ in messages if status == "stopped"}
    stops = {enrollments.UNSUBSCRIBED, enrollments.HARD_BOUNCE, enrollments.REPLIED}
    assert enrollments.REPLIED in reasons and reasons <= stops
    for status, _, message_status in messages:
        if status == "stopped":
            assert message_status not in enrollments.STOPPABLE_STATES
        if status == "completed":
            assert message_status == "sent"
    assert stopped_people
    assert {identity.address_hash(email) for email in stopped_people} <= suppressed


def test_refuses_a_database_with_data(engine: Engine) -> None:
    assert demo.has_data(engine)
    with pytest.raises(CrmError, match="already has data"):
        demo.load_demo(engine, candidates=10, today=TODAY)


def test_wipe_keeps_the_team_and_its_history(fresh_engine: Callable[[], Engine]) -> None:
    engine = fresh_engine()
    demo.load_demo(engine, candidates=40, seed=3, today=TODAY)
    demo.wipe(engine)
    assert not demo.has_data(engine)
    with read_session(engine) as session:
        for table in Base.metadata.sorted_tables:
            count = session.scalar(select(func.count()).select_from(table))
            if table.name == "users":
                assert count == 5
            elif table.name == "audit_log":
                assert count >= 5  # the users' creation stays on record
            elif table.name == "settings":
                assert count == 1  # the team's money (crm.money) the demo set stays
            else:
                assert count == 0, table.name
    again = demo.load_demo(engine, candidates=40, seed=3, today=TODAY)
    assert again.users_created == []
    assert again.candidates == 40
