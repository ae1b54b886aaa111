"""Metrics against hand-computed fixtures, including periods with no data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine

from crm import db, metrics
from crm.models import Application, Candidate, Cost, Job


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

    from crm import db, metrics, pools
    from crm.models import Application, Candidate, Job, Pool

    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
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
    today = dt.datetime.now(dt.UTC).date()
    found = metrics.hires_by_pool(engine, start=today - dt.timedelta(days=60), end=today)
    assert found == {pool_id: 1}
    assert metrics.hires_by_pool(engine, start=today - dt.timedelta(days=10), end=today) == {}
    # The pools list counts the last 12 months: the hire 430 days ago is out.
    assert pools.list_pools(engine)[0].hires == 1
