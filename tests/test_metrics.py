"""Metrics against hand-computed fixtures, including periods with no data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy import select as sa_select

from benchmarks.goals_page import metric_timings
from crm import clock, db, jobs, metrics, pool_yield
from crm.models import (
    Application,
    Campaign,
    CampaignStep,
    Candidate,
    Cost,
    Enrollment,
    Event,
    Job,
    OutboxMessage,
    Pool,
    PoolMember,
    User,
)


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.fixture
def pipeline(engine: Engine) -> Engine:
    """Two filled jobs (one key engineering role), one open; three offers, two accepted."""
    with db.write_session(engine) as session:
        people = [Candidate(first_name=f"P{i}", last_name="X") for i in range(5)]
        session.add_all(people)
        backend = Job(
            title="Backend",
            role_family="Software Engineering",
            key_role=True,
            opened_at=dt.date(2026, 1, 1),
            filled_at=dt.date(2026, 1, 31),
            status="filled",
        )
        sales = Job(
            title="Sales",
            role_family="Sales",
            opened_at=dt.date(2026, 1, 10),
            filled_at=dt.date(2026, 2, 19),
            status="filled",
        )
        open_job = Job(title="Designer", role_family="Design", opened_at=dt.date(2026, 2, 1))
        session.add_all([backend, sales, open_job])
        session.flush()
        session.add_all(
            [
                # backend hire from the talent pool: applied Jan 5, accepted Jan 25 (20 days)
                Application(
                    candidate_id=people[0].id,
                    job_id=backend.id,
                    source="talent_pool",
                    stage="hired",
                    applied_at=at("2026-01-05"),
                    offer_at=at("2026-01-22"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-01-25"),
                    hired_at=at("2026-01-31"),
                ),
                # sales hire from an agency: applied Jan 12, accepted Feb 11 (30 days)
                Application(
                    candidate_id=people[1].id,
                    job_id=sales.id,
                    source="agency",
                    stage="hired",
                    applied_at=at("2026-01-12"),
                    offer_at=at("2026-02-08"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-02-11"),
                    hired_at=at("2026-02-19"),
                ),
                # a declined offer on the sales job
                Application(
                    candidate_id=people[2].id,
                    job_id=sales.id,
                    source="job_board",
                    stage="offer",
                    applied_at=at("2026-01-15"),
                    offer_at=at("2026-02-01"),
                    offer_accepted=False,
                    offer_decided_at=at("2026-02-03"),
                ),
                # still interviewing: no offer, counts nowhere
                Application(
                    candidate_id=people[3].id,
                    job_id=open_job.id,
                    source="referral",
                    stage="interview",
                    applied_at=at("2026-02-05"),
                ),
            ]
        )
        session.add_all(
            [
                Cost(
                    incurred_on=dt.date(2026, 1, 15), category="job_ads", amount=Decimal("1000.00")
                ),
                Cost(
                    job_id=sales.id,
                    incurred_on=dt.date(2026, 2, 19),
                    category="agency_fees",
                    amount=Decimal("9000.00"),
                ),
                Cost(incurred_on=dt.date(2026, 3, 1), category="tools", amount=Decimal("500.00")),
            ]
        )
    return engine


def test_whole_quarter(pipeline: Engine) -> None:
    report = metrics.compute(pipeline, start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31))
    assert report.hires == 2
    assert report.time_to_fill_days == pytest.approx((30 + 40) / 2)
    assert report.time_to_hire_days == pytest.approx((20 + 30) / 2)
    assert report.cost_per_hire == pytest.approx(10_500 / 2)
    assert report.offer_acceptance_rate == pytest.approx(2 / 3)
    assert report.source_of_hire == {"agency": 0.5, "talent_pool": 0.5}
    assert report.hires_from_talent_pools_share == pytest.approx(0.5)


def test_scope_key_roles_only(pipeline: Engine) -> None:
    report = metrics.compute(
        pipeline,
        start=dt.date(2026, 1, 1),
        end=dt.date(2026, 3, 31),
        scope=metrics.Scope(key_roles=True),
    )
    assert report.hires == 1
    assert report.time_to_hire_days == pytest.approx(20)
    assert report.time_to_fill_days == pytest.approx(30)
    assert report.offer_acceptance_rate == 1.0
    assert report.cost_per_hire == 0.0  # no cost is tied to the backend job


def test_period_boundaries_are_inclusive_days(pipeline: Engine) -> None:
    january = metrics.compute(pipeline, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    assert january.hires == 1  # hired on Jan 31 counts in January
    assert january.time_to_fill_days == pytest.approx(30)


def test_period_with_no_data_says_no_data(pipeline: Engine) -> None:
    report = metrics.compute(pipeline, start=dt.date(2025, 1, 1), end=dt.date(2025, 12, 31))
    assert report.hires == 0
    for name in (
        "time_to_fill_days",
        "time_to_hire_days",
        "cost_per_hire",
        "offer_acceptance_rate",
        "hires_from_talent_pools_share",
    ):
        assert report.value(name) is None, name
    assert report.as_json()["cost_per_hire"] is None


def test_costs_without_hires_give_no_cost_per_hire(pipeline: Engine) -> None:
    report = metrics.compute(pipeline, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    assert report.total_cost == 500 and report.hires == 0 and report.cost_per_hire is None


def test_period_must_not_end_before_it_starts(pipeline: Engine) -> None:
    with pytest.raises(ValueError):
        metrics.compute(pipeline, start=dt.date(2026, 2, 1), end=dt.date(2026, 1, 1))


def test_hires_by_pool_counts_hires_in_the_period_per_pool(engine) -> None:
    import datetime as dt

    from crm import db, pools
    from crm.models import Application, Candidate, Job, Pool

    now = clock.now() - dt.timedelta(days=30)
    with db.write_session(engine) as session:
        pool = Pool(name="Backend", kind="static", stages=[])
        job = Job(title="Engineer", opened_at=now - dt.timedelta(days=90))
        people = [Candidate(first_name=f"P{i}", email=f"p{i}@x.io") for i in range(3)]
        session.add_all([pool, job, *people])
        session.flush()
        for person, hired in zip(people, (now, now - dt.timedelta(days=400), None), strict=True):
            session.add(
                Application(
                    candidate_id=person.id,
                    job_id=job.id,
                    source="talent_pool",
                    pool_id=pool.id,
                    stage="hired" if hired else "interview",
                    hired_at=hired,
                )
            )
        pool_id = pool.id
    today = clock.now().date()
    found = pool_yield.hires_by_pool(engine, start=today - dt.timedelta(days=60), end=today)
    assert found == {pool_id: 1}
    assert pool_yield.hires_by_pool(engine, start=today - dt.timedelta(days=10), end=today) == {}
    # The pools list counts the last 12 months: the hire 430 days ago is out.
    assert pools.list_pools(engine)[0].hires == 1


# --- a richer fixture: outreach, pools and awkward data --------------------------------
#
# Q1 2026. Pools: P (c0..c3), Q (c4). Campaign K aims at P and sends to c0 (Jan 10),
# c1 (Jan 12 and Feb 2), c2 (Feb 5) and c5 (Mar 3, in no pool). c0 replies, c1 clicks,
# c2's click is a machine's (its human open counts as engagement, not as a click).
# Jobs:
#   J1 Backend (SE, key)  opened Jan 1, c0 via campaign K: applied Jan 15, accepted Feb 4,
#                         hired Feb 10 -> time to hire 20, time to fill 40
#   J2 Sales              opened Jan 5, c6 via agency: applied Jan 10, accepted Feb 25,
#                         hired Mar 1 -> time to hire 46, time to fill 55
#   J3 Designer (open)    c1 from pool P interviewing; c4 declined an offer on Mar 7
#   J4 Data               out of order: c7 applied Mar 20 but accepted Mar 10, hired Mar 12;
#                         filled Mar 12 though opened Mar 15 -> in hires and acceptance,
#                         out of both times
#   J5 Backend 2 (SE)     opened Feb 1, c3 from pool P hired Mar 15 with no offer on
#                         record -> an accepted offer on Mar 15, time to hire 28, fill 42
# Costs: Jan 15 job ads 1000, Feb 19 agency fee 9000 (J2), Mar 1 tools 500, Mar 2
# recruiter time 1500, Apr 2 job ads 300 (a month with costs and no hires).

Q1 = (dt.date(2026, 1, 1), dt.date(2026, 3, 31))


@dataclass
class World:
    engine: Engine
    pool_p: int
    pool_q: int
    campaign: int
    jobs: dict[str, int]


@pytest.fixture
def world(engine: Engine) -> World:
    with db.write_session(engine) as session:
        people = [Candidate(first_name=f"C{i}", last_name="Y") for i in range(8)]
        people[0].role_family = "Software Engineering"
        session.add_all(people)
        pool_p = Pool(name="P", kind="static", stages=[])
        pool_q = Pool(name="Q", kind="static", stages=[])
        session.add_all([pool_p, pool_q])
        session.flush()
        c = [person.id for person in people]
        session.add_all([PoolMember(pool_id=pool_p.id, candidate_id=cid) for cid in c[:4]])
        session.add(PoolMember(pool_id=pool_q.id, candidate_id=c[4]))
        campaign = Campaign(name="K", audience_pool_id=pool_p.id, status="active")
        session.add(campaign)
        session.flush()
        step = CampaignStep(campaign_id=campaign.id, position=1, subject="Hi", body_markdown="x")
        session.add(step)
        session.flush()
        enrollments = {}
        for index in (0, 1, 2, 5):
            enrollments[index] = Enrollment(campaign_id=campaign.id, candidate_id=c[index])
        session.add_all(enrollments.values())
        session.flush()
        for number, (index, day) in enumerate(
            [
                (0, "2026-01-10"),
                (1, "2026-01-12"),
                (1, "2026-02-02"),
                (2, "2026-02-05"),
                (5, "2026-03-03"),
            ]
        ):
            session.add(
                OutboxMessage(
                    unique_key=f"m{number}",
                    campaign_id=campaign.id,
                    step_id=step.id,
                    enrollment_id=enrollments[index].id,
                    candidate_id=c[index],
                    status="sent",
                    sent_at=at(day),
                )
            )
        for kind, index, day, machine in [
            ("reply", 0, "2026-01-11", False),
            ("click", 1, "2026-01-13", False),
            ("click", 2, "2026-02-06", True),
            ("open", 2, "2026-02-06", False),
        ]:
            session.add(
                Event(
                    kind=kind,
                    occurred_at=at(day),
                    candidate_id=c[index],
                    campaign_id=campaign.id,
                    is_machine=machine,
                )
            )
        job = {
            "J1": Job(
                title="Backend",
                role_family="Software Engineering",
                key_role=True,
                opened_at=dt.date(2026, 1, 1),
                filled_at=dt.date(2026, 2, 10),
                status="filled",
            ),
            "J2": Job(
                title="Sales",
                role_family="Sales",
                opened_at=dt.date(2026, 1, 5),
                filled_at=dt.date(2026, 3, 1),
                status="filled",
            ),
            "J3": Job(title="Designer", role_family="Design", opened_at=dt.date(2026, 1, 20)),
            "J4": Job(
                title="Data",
                role_family="Data & Analytics",
                opened_at=dt.date(2026, 3, 15),
                filled_at=dt.date(2026, 3, 12),
                status="filled",
            ),
            "J5": Job(
                title="Backend 2",
                role_family="Software Engineering",
                opened_at=dt.date(2026, 2, 1),
                filled_at=dt.date(2026, 3, 15),
                status="filled",
            ),
        }
        session.add_all(job.values())
        session.flush()
        session.add_all(
            [
                Application(
                    candidate_id=c[0],
                    job_id=job["J1"].id,
                    source="campaign",
                    campaign_id=campaign.id,
                    pool_id=pool_p.id,
                    stage="hired",
                    applied_at=at("2026-01-15"),
                    offer_at=at("2026-02-01"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-02-04"),
                    hired_at=at("2026-02-10"),
                ),
                Application(
                    candidate_id=c[6],
                    job_id=job["J2"].id,
                    source="agency",
                    stage="hired",
                    applied_at=at("2026-01-10"),
                    offer_at=at("2026-02-20"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-02-25"),
                    hired_at=at("2026-03-01"),
                ),
                Application(
                    candidate_id=c[1],
                    job_id=job["J3"].id,
                    source="talent_pool",
                    pool_id=pool_p.id,
                    stage="interview",
                    applied_at=at("2026-02-01"),
                    interview_at=at("2026-02-09"),
                ),
                Application(
                    candidate_id=c[4],
                    job_id=job["J3"].id,
                    source="job_board",
                    stage="withdrew",
                    applied_at=at("2026-02-10"),
                    offer_at=at("2026-03-05"),
                    offer_accepted=False,
                    offer_decided_at=at("2026-03-07"),
                    withdrew_at=at("2026-03-07"),
                ),
                Application(
                    candidate_id=c[7],
                    job_id=job["J4"].id,
                    source="referral",
                    stage="hired",
                    applied_at=at("2026-03-20"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-03-10"),
                    hired_at=at("2026-03-12"),
                ),
                Application(
                    candidate_id=c[3],
                    job_id=job["J5"].id,
                    source="talent_pool",
                    pool_id=pool_p.id,
                    stage="hired",
                    applied_at=at("2026-02-15"),
                    hired_at=at("2026-03-15"),
                ),
            ]
        )
        session.add_all(
            [
                Cost(incurred_on=dt.date(2026, 1, 15), category="job_ads", amount=Decimal("1000")),
                Cost(
                    job_id=job["J2"].id,
                    incurred_on=dt.date(2026, 2, 19),
                    category="agency_fees",
                    amount=Decimal("9000"),
                ),
                Cost(incurred_on=dt.date(2026, 3, 1), category="tools", amount=Decimal("500")),
                Cost(
                    incurred_on=dt.date(2026, 3, 2),
                    category="recruiter_time",
                    amount=Decimal("1500"),
                ),
                Cost(incurred_on=dt.date(2026, 4, 2), category="job_ads", amount=Decimal("300")),
            ]
        )
        ids = {name: j.id for name, j in job.items()}
        return World(engine, pool_p.id, pool_q.id, campaign.id, ids)


def test_world_quarter_by_hand(world: World) -> None:
    report = metrics.compute(world.engine, start=Q1[0], end=Q1[1])
    assert report.hires == 4
    assert report.source_of_hire == {
        "agency": 0.25,
        "campaign": 0.25,
        "referral": 0.25,
        "talent_pool": 0.25,
    }
    assert report.hires_from_talent_pools_share == pytest.approx(0.5)
    # accepted: c0, c6, c7 and c3 (a hire with no offer on record); declined: c4
    assert report.offer_acceptance_rate == pytest.approx(4 / 5)
    # c7's acceptance comes before the application: out of order, left out
    assert report.time_to_hire_days == pytest.approx((20 + 46 + 28) / 3)
    # J4 was filled before it opened: left out; J3 is open: no time to fill
    assert report.time_to_fill_days == pytest.approx((40 + 55 + 42) / 3)
    assert report.total_cost == 12_000 and report.cost_per_hire == pytest.approx(3_000)
    # four campaign recipients: c0 replied and applied, c1 clicked, c2's click was a machine
    assert report.reply_rate == pytest.approx(0.25)
    assert report.click_rate == pytest.approx(0.25)
    assert report.campaign_application_rate == pytest.approx(0.25)
    # five people in pools; c0, c1, c2 engaged; c0 and c3 hired
    assert report.pool_engagement_rate == pytest.approx(3 / 5)
    assert report.pool_to_hire_rate == pytest.approx(2 / 5)
    as_json = report.as_json()
    assert as_json["offer_acceptance_rate"] == 0.8 and as_json["reply_rate"] == 0.25


def test_month_without_hires_and_costs_without_hires(world: World) -> None:
    january = metrics.compute(world.engine, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31))
    assert january.hires == 0 and january.total_cost == 1_000
    for name in (
        "cost_per_hire",
        "time_to_hire_days",
        "time_to_fill_days",
        "offer_acceptance_rate",
        "hires_from_talent_pools_share",
    ):
        assert january.value(name) is None, name
    april = metrics.compute(world.engine, start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30))
    assert april.total_cost == 300 and april.cost_per_hire is None
    assert april.reply_rate is None  # nobody was sent anything
    assert april.pool_engagement_rate == 0.0  # five members, none engaged: a real 0


def test_an_open_job_has_no_time_to_fill(world: World) -> None:
    design = metrics.Scope(role_families=("Design",))
    report = metrics.compute(world.engine, start=Q1[0], end=Q1[1], scope=design)
    assert report.time_to_fill_days is None
    assert report.hires == 0 and report.offer_acceptance_rate == 0.0  # c4 declined


def test_scope_key_roles_and_role_family(world: World) -> None:
    key = metrics.compute(world.engine, start=Q1[0], end=Q1[1], scope=metrics.Scope(key_roles=True))
    assert (key.hires, key.time_to_fill_days, key.time_to_hire_days) == (1, 40, 20)
    assert key.offer_acceptance_rate == 1.0 and key.cost_per_hire == 0.0
    sales = metrics.compute(
        world.engine, start=Q1[0], end=Q1[1], scope=metrics.Scope(role_families=("Sales",))
    )
    assert sales.hires == 1 and sales.cost_per_hire == pytest.approx(9_000)
    assert sales.source_of_hire == {"agency": 1.0}


def test_scope_pool_and_campaign(world: World) -> None:
    pool = metrics.Scope(pool_id=world.pool_p)
    report = metrics.compute(world.engine, start=Q1[0], end=Q1[1], scope=pool)
    assert report.hires == 2  # c0 (campaign aimed at P) and c3
    assert report.hires_from_talent_pools_share == 1.0
    assert report.offer_acceptance_rate == 1.0
    assert report.time_to_hire_days == pytest.approx((20 + 28) / 2)
    assert report.time_to_fill_days == pytest.approx((40 + 42) / 2)  # jobs P filled
    assert report.cost_per_hire == 0.0  # no cost is tied to J1 or J5
    assert report.pool_engagement_rate == pytest.approx(3 / 4)
    assert report.pool_to_hire_rate == pytest.approx(2 / 4)
    assert report.reply_rate == pytest.approx(0.25)  # K aims at P
    other = metrics.compute(
        world.engine, start=Q1[0], end=Q1[1], scope=metrics.Scope(pool_id=world.pool_q)
    )
    assert other.hires == 0 and other.pool_engagement_rate == 0.0 and other.reply_rate is None
    campaign = metrics.compute(
        world.engine, start=Q1[0], end=Q1[1], scope=metrics.Scope(campaign_id=world.campaign)
    )
    assert campaign.hires == 1 and campaign.time_to_hire_days == pytest.approx(20)
    assert campaign.campaign_application_rate == pytest.approx(0.25)


def test_scope_from_goal_json_accepts_both_spellings() -> None:
    scope = metrics.Scope.from_json(
        {"role_family": "Sales", "key_roles_only": True, "pool_id": "3", "campaign_id": 4}
    )
    assert scope == metrics.Scope(("Sales",), True, 3, 4)
    assert metrics.Scope.from_json(scope.as_json()) == scope
    assert scope.describe({"pool": "Backend"}) == "key roles · Sales · pool Backend · campaign #4"


def test_monthly_by_hand(world: World) -> None:
    def series(metric: str) -> list[float | None]:
        found = metrics.monthly(world.engine, metric=metric, start=Q1[0], end=Q1[1])
        assert [month for month, _ in found] == [
            dt.date(2026, 1, 1),
            dt.date(2026, 2, 1),
            dt.date(2026, 3, 1),
        ]
        return [value for _, value in found]

    assert series("hires") == [0, 1, 3]
    assert series("cost_per_hire") == [None, pytest.approx(9_000), pytest.approx(2_000 / 3)]
    assert series("offer_acceptance_rate") == [None, 1.0, pytest.approx(2 / 3)]
    assert series("time_to_hire_days") == [None, pytest.approx(33), pytest.approx(28)]
    assert series("time_to_fill_days") == [None, pytest.approx(40), pytest.approx(48.5)]
    assert series("reply_rate") == [0.5, 0.0, 0.0]
    assert series("click_rate") == [0.5, 0.5, 0.0]


def test_outreach_counts_people_delivered_not_bounced(world: World) -> None:
    """The outreach rates divide by people delivered a message: sent, no bounce back."""
    from sqlalchemy import select

    with db.write_session(world.engine) as session:
        # c1's February message (m2) and c5's only one (m4, March) bounce.
        for message in session.scalars(
            select(OutboxMessage).where(OutboxMessage.unique_key.in_(("m2", "m4")))
        ):
            session.add(
                Event(
                    kind="bounce",
                    occurred_at=message.sent_at + dt.timedelta(minutes=5),
                    candidate_id=message.candidate_id,
                    campaign_id=message.campaign_id,
                    step_id=message.step_id,
                    outbox_message_id=message.id,
                )
            )
    report = metrics.compute(world.engine, start=Q1[0], end=Q1[1])
    # c0, c1 (January's arrived) and c2 delivered; c0 replied and applied, c1 clicked.
    assert report.reply_rate == pytest.approx(1 / 3)
    assert report.click_rate == pytest.approx(1 / 3)
    assert report.campaign_application_rate == pytest.approx(1 / 3)
    found = metrics.monthly(world.engine, metric="click_rate", start=Q1[0], end=Q1[1])
    # January: c0 and c1, c1 clicked; February: only c2 (a machine's click); March: nobody.
    assert [value for _, value in found] == [0.5, 0.0, None]


@pytest.mark.parametrize(
    "scope",
    [
        metrics.Scope(),
        metrics.Scope(key_roles=True),
        "pool",
        metrics.Scope(role_families=("Sales",)),
    ],
)
def test_monthly_equals_compute_month_by_month(world: World, scope: object) -> None:
    if scope == "pool":
        scope = metrics.Scope(pool_id=world.pool_p)
    assert isinstance(scope, metrics.Scope)
    start, end = dt.date(2025, 12, 15), dt.date(2026, 4, 10)  # partial months at both ends
    for metric in metrics.METRICS:
        series = metrics.monthly(world.engine, metric=metric, start=start, end=end, scope=scope)
        assert len(series) == 5
        for (first, got), (month, low, high) in zip(
            series, metrics.months(start, end), strict=True
        ):
            assert first == month
            expected = metrics.compute(world.engine, start=low, end=high, scope=scope).value(metric)
            alone = metrics.value(world.engine, metric=metric, start=low, end=high, scope=scope)
            assert got == pytest.approx(expected) and alone == pytest.approx(expected), (
                metric,
                month,
            )


def test_unknown_metric_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.monthly(world.engine, metric="happiness", start=Q1[0], end=Q1[1])


def test_funnel_counts_each_step_within_the_one_before(world: World) -> None:
    steps = ("members", "contacted", "engaged", "applied", "hired_from_talent_pools")
    in_p = pool_yield.funnel(world.engine, start=Q1[0], end=Q1[1], pool_id=world.pool_p)
    # P's members c0..c3; c0, c1, c2 were sent K in Q1 and engaged; c0 and c1 applied.
    # Hired from P in Q1: c0 (Feb 10) and c3 (Mar 15). c3 was never contacted in Q1 but
    # was hired from the pool, so counts in every step (the old funnel lost them).
    assert in_p == dict(zip(steps, (4, 4, 4, 3, 2), strict=True))
    # All pools: c4 (Q) joins the members only; the pool hires are c0 (campaign) and c3.
    everyone = pool_yield.funnel(world.engine, start=Q1[0], end=Q1[1])
    assert everyone == dict(zip(steps, (5, 4, 4, 3, 2), strict=True))
    report = metrics.compute(world.engine, start=Q1[0], end=Q1[1])
    numerator = report.hires_from_talent_pools_share * report.hires  # 2 of 4 hires
    assert everyone["hired_from_talent_pools"] == round(numerator) == 2
    # March: K's only message went to c5 (in no pool); c3's hire on Mar 15 still counts
    # all the way down. c0's February hire is out of the period.
    later = pool_yield.funnel(world.engine, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    assert later == dict(zip(steps, (5, 1, 1, 1, 1), strict=True))


def test_savings_computed_given_and_without_data(world: World) -> None:
    found = pool_yield.savings(world.engine, start=Q1[0], end=Q1[1])
    # 2 hired from pools (c0, c3) x (1000 ads + 9000 agency) / 1 agency-or-job-board hire
    assert found["hired_from_talent_pools"] == 2 and found["external_hires"] == 1
    assert found["external_cost_per_hire"] == pytest.approx(10_000)
    assert found["gross_savings"] == pytest.approx(20_000)
    assert found["crm_costs"] == pytest.approx(2_000)  # tools + recruiter time
    assert found["net_savings"] == pytest.approx(18_000)
    given = pool_yield.savings(
        world.engine, start=Q1[0], end=Q1[1], agency_cost_per_hire=Decimal("5000")
    )
    assert given["external_cost_basis"] == "given" and given["net_savings"] == 8_000
    february = pool_yield.savings(world.engine, start=dt.date(2026, 2, 1), end=dt.date(2026, 2, 28))
    assert february["hired_from_talent_pools"] == 1 and february["external_hires"] == 0
    assert february["external_cost_per_hire"] is None and february["net_savings"] is None


def test_timed_times_every_metric(world: World) -> None:
    found = metric_timings(world.engine, start=Q1[0], end=Q1[1])
    assert set(found) == set(metrics.METRICS) and all(s >= 0 for s in found.values())


def test_withdrawn_and_remade_offers(engine: Engine, users: dict[str, User]) -> None:
    """One application holds one offer: a re-made offer replaces the earlier decision;
    withdrawing with an offer out is a decline; a rejection with an offer out (the
    company withdrew it) is no decision."""
    actor = users["recruiter"]
    with db.write_session(engine) as session:
        people = [Candidate(first_name=f"O{i}") for i in range(3)]
        session.add_all(people)
        session.flush()
        ids = [p.id for p in people]
    job = jobs.create_job(engine, actor=actor, title="Ops", opened_at=dt.date(2026, 1, 1))
    remade, walked, rescinded = (
        jobs.add_application(
            engine, actor=actor, job_id=job, candidate_id=cid, source="direct", at=at("2026-01-05")
        )
        for cid in ids
    )
    jobs.record_offer(
        engine, actor=actor, application_id=remade, accepted=None, at=at("2026-02-01")
    )
    jobs.record_offer(
        engine, actor=actor, application_id=remade, accepted=False, at=at("2026-02-03")
    )
    february = dt.date(2026, 2, 1), dt.date(2026, 2, 28)
    assert (
        metrics.value(engine, metric="offer_acceptance_rate", start=february[0], end=february[1])
        == 0.0
    )
    jobs.record_offer(
        engine, actor=actor, application_id=remade, accepted=None, at=at("2026-02-10")
    )
    jobs.record_offer(
        engine, actor=actor, application_id=remade, accepted=True, at=at("2026-02-12")
    )
    jobs.record_offer(
        engine, actor=actor, application_id=walked, accepted=None, at=at("2026-02-14")
    )
    jobs.move_stage(
        engine, actor=actor, application_id=walked, stage="withdrew", at=at("2026-02-16")
    )
    jobs.record_offer(
        engine, actor=actor, application_id=rescinded, accepted=None, at=at("2026-02-14")
    )
    jobs.move_stage(
        engine, actor=actor, application_id=rescinded, stage="rejected", at=at("2026-02-17")
    )
    report = metrics.compute(engine, start=february[0], end=february[1])
    assert report.offer_acceptance_rate == pytest.approx(1 / 2)  # re-made accepted, walked
    assert report.time_to_hire_days == pytest.approx(38)  # Jan 5 -> Feb 12
    assert report.hires == 0  # accepted, not yet started


# --- one number for hires, wherever shown ------------------------------------------------
#
# The last 90 days (the Goals page's default period), from today at 12:00 UTC back.
# Dynamic pool Backend (skill "go"), static pool Frontend (empty).
#   A1 member, contacted 20 days ago, applied 30, hired 10 from Backend (talent pool)
#   A2 member, contacted only 100 days ago (before the period), applied 50, hired 15
#      through a CRM campaign
#   A3 left Backend (no longer has "go"), hired 20 days ago from it (talent pool)
#   A4 left Backend, hired 5 days ago from it (talent pool)
#   A5 hired 25 days ago through an agency (in no pool)
#   A6 hired 200 days ago from Backend: before the period
#   M1 member, contacted 3 days ago, opened 2 days ago; M2 member, never contacted
# Hires in the period: A1..A5 = 5; from talent pools: A1..A4 = 4 (share 4/5).
# Funnel: members now A1 A2 M1 M2 + leavers A3 A4 = 6; contacted A1 M1 + hired = 5;
# engaged A1 (applied) M1 (open) + hired = 5; applied A1 + hired = 4; hired 4.
# With Backend chosen, A2 (campaign, no pool on record) is no hire from it: 6, 4, 4, 3, 3.


def noon_days_ago(days: int) -> dt.datetime:
    return dt.datetime.combine(clock.today() - dt.timedelta(days=days), dt.time(12), dt.UTC)


@dataclass
class PoolHires:
    engine: Engine
    backend: int
    frontend: int
    start: dt.date
    end: dt.date


def pool_hires_world(engine: Engine) -> PoolHires:
    """The hand-computed fixture above, in a fresh database."""
    with db.write_session(engine) as session:
        backend = Pool(
            name="Backend",
            kind="dynamic",
            filter={"field": "skills", "op": "has_any", "value": ["go"]},
            stages=[],
        )
        frontend = Pool(name="Frontend", kind="static", stages=[])
        job = Job(title="Engineer", opened_at=clock.today() - dt.timedelta(days=300))
        session.add_all([backend, frontend, job])
        people = {}
        for name, skills, contacted in [
            ("A1", ["go"], 20),
            ("A2", ["go"], 100),
            ("A3", [], 40),
            ("A4", [], 60),
            ("A5", [], None),
            ("A6", [], None),
            ("M1", ["go"], 3),
            ("M2", ["go"], None),
        ]:
            person = Candidate(
                first_name=name,
                last_name="Z",
                last_contacted_at=None if contacted is None else noon_days_ago(contacted),
            )
            person.skills = skills
            people[name] = person
        session.add_all(people.values())
        session.flush()
        for name, source, pool, applied, hired in [
            ("A1", "talent_pool", backend, 30, 10),
            ("A2", "campaign", None, 50, 15),
            ("A3", "talent_pool", backend, 45, 20),
            ("A4", "talent_pool", backend, 40, 5),
            ("A5", "agency", None, 60, 25),
            ("A6", "talent_pool", backend, 260, 200),
        ]:
            session.add(
                Application(
                    candidate_id=people[name].id,
                    job_id=job.id,
                    source=source,
                    pool_id=pool.id if pool else None,
                    stage="hired",
                    applied_at=noon_days_ago(applied),
                    hired_at=noon_days_ago(hired),
                )
            )
        session.add(Event(kind="open", occurred_at=noon_days_ago(2), candidate_id=people["M1"].id))
        ids = backend.id, frontend.id
    today = clock.today()
    return PoolHires(engine, *ids, today - dt.timedelta(days=89), today)


def test_hires_and_hired_from_talent_pools_are_one_number_everywhere(
    engine: Engine,
) -> None:
    import json

    from typer.testing import CliRunner

    from crm import goals
    from crm.cli import app
    from crm.models import Goal

    world = pool_hires_world(engine)
    span = {"start": world.start, "end": world.end}
    steps = ("members", "contacted", "engaged", "applied", "hired_from_talent_pools")
    everyone = pool_yield.funnel(engine, **span)
    assert everyone == dict(zip(steps, (6, 5, 5, 4, 4), strict=True))
    # With the pool chosen, its last step is the hires whose application came from it:
    # A1, A3, A4 (A2 came through a campaign with no pool on record). A2, contacted only
    # before the period, then drops out of contacted, engaged and applied.
    in_backend = pool_yield.funnel(engine, **span, pool_id=world.backend)
    assert in_backend == dict(zip(steps, (6, 4, 4, 3, 3), strict=True))
    assert pool_yield.funnel(engine, **span, pool_id=world.frontend) == dict.fromkeys(steps, 0)
    assert pool_yield.savings(engine, **span)["hired_from_talent_pools"] == 4
    assert pool_yield.hired_from_talent_pools(engine, **span) == 4
    report = metrics.compute(engine, **span)
    assert report.hires == 5  # A1..A5, the agency hire included
    assert report.hires_from_talent_pools_share == pytest.approx(4 / 5)
    # The goal cards measure the same metrics over the same days.
    for metric, expected in (("hires", 5), ("hires_from_talent_pools_share", 0.8)):
        goal = Goal(
            title=metric,
            metric=metric,
            scope={},
            target_kind="absolute",
            target_value=1.0,
            start_date=world.start,
            deadline=world.end + dt.timedelta(days=30),
            baseline_value=0.0,
        )
        actual = goals.progress(engine, goal, today=world.end).actual
        assert actual == pytest.approx(expected)
    result = CliRunner().invoke(
        app, ["metrics", "--from", str(world.start), "--to", str(world.end), "--json"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert (printed["hires"], printed["hired_from_talent_pools"]) == (5, 4)
    assert printed["hires_from_talent_pools_share"] == 0.8


def test_funnel_and_savings_count_a_person_hired_twice_once(engine: Engine) -> None:
    """People, not hires: A1 hired again (a second job) from Backend in the period is still
    one person in the funnel and in Savings, while `hires` counts both hires."""
    world = pool_hires_world(engine)
    with db.write_session(engine) as session:
        second = Job(title="Second", opened_at=clock.today() - dt.timedelta(days=60))
        session.add(second)
        session.flush()
        first = session.scalar(sa_select(Candidate.id).where(Candidate.first_name == "A1"))
        session.add(
            Application(
                candidate_id=first,
                job_id=second.id,
                source="talent_pool",
                pool_id=world.backend,
                stage="hired",
                applied_at=noon_days_ago(8),
                hired_at=noon_days_ago(4),
            )
        )
    span = {"start": world.start, "end": world.end}
    assert pool_yield.funnel(engine, **span)["hired_from_talent_pools"] == 4
    assert pool_yield.savings(engine, **span)["hired_from_talent_pools"] == 4
    assert metrics.compute(engine, **span).hires == 6
