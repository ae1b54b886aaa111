"""Jobs, applications through their stages, offers and costs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from crm import db, jobs
from crm.errors import NotFound, PermissionDenied, ValidationError
from crm.models import Activity, Application, AuditLog, Campaign, Candidate, Cost, Job, Pool, User


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.fixture
def people(engine: Engine) -> list[int]:
    with db.write_session(engine) as session:
        found = [Candidate(first_name=name, last_name="Doe") for name in ("Ann", "Ben", "Cy")]
        session.add_all(found)
        session.flush()
        return [person.id for person in found]


@pytest.fixture
def job(engine: Engine, users: dict[str, User]) -> int:
    return jobs.create_job(
        engine,
        actor=users["recruiter"],
        title="  Backend   engineer ",
        role_family="Software Engineering",
        key_role=True,
        hiring_manager="Hana",
        opened_at=dt.date(2026, 1, 1),
    )


def application(engine: Engine, application_id: int) -> Application:
    with db.read_session(engine) as session:
        found = session.get(Application, application_id)
        assert found is not None
        return found


def job_row(engine: Engine, job_id: int) -> Job:
    with db.read_session(engine) as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def test_create_list_and_update_jobs(engine: Engine, users: dict[str, User], job: int) -> None:
    actor = users["recruiter"]
    other = jobs.create_job(engine, actor=actor, title="Sales", opened_at=dt.date(2026, 2, 1))
    summary = jobs.get_job(engine, job)
    assert summary.title == "Backend engineer" and summary.key_role and summary.status == "open"
    assert [j.id for j in jobs.list_jobs(engine)] == [other, job]  # newest first
    jobs.update_job(engine, actor=actor, job_id=job, status="filled", filled_at=dt.date(2026, 3, 1))
    assert [j.id for j in jobs.list_jobs(engine, status="filled")] == [job]
    jobs.update_job(engine, actor=actor, job_id=job, status="open")
    assert job_row(engine, job).filled_at is None  # opening again clears the fill date
    with pytest.raises(ValidationError, match="needs the date"):
        jobs.update_job(engine, actor=actor, job_id=job, status="filled")
    with pytest.raises(ValidationError, match="before it opened"):
        jobs.update_job(engine, actor=actor, job_id=job, filled_at=dt.date(2025, 1, 1))
    with pytest.raises(ValidationError, match="no field 'salary'"):
        jobs.update_job(engine, actor=actor, job_id=job, salary=1)
    with pytest.raises(ValidationError, match="needs a title"):
        jobs.create_job(engine, actor=actor, title="  ", opened_at=dt.date(2026, 1, 1))
    with pytest.raises(NotFound):
        jobs.get_job(engine, 9999)


def test_add_application_dedupes_and_logs(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    with db.write_session(engine) as session:
        pool = Pool(name="Warm", kind="static", stages=[])
        session.add(pool)
        session.flush()
        campaign = Campaign(name="Spring", audience_pool_id=pool.id)
        session.add(campaign)
        session.flush()
        pool_id, campaign_id = pool.id, campaign.id
    first = jobs.add_application(
        engine,
        actor=actor,
        job_id=job,
        candidate_id=people[0],
        source="campaign",
        campaign_id=campaign_id,
        at=at("2026-01-05"),
    )
    row = application(engine, first)
    assert row.pool_id == pool_id  # the campaign's audience pool
    assert row.stage == "applied" and row.applied_at == at("2026-01-05")
    with pytest.raises(ValidationError, match="Ann Doe is already on the pipeline for Backend"):
        jobs.add_application(
            engine, actor=actor, job_id=job, candidate_id=people[0], source="direct"
        )
    with pytest.raises(ValidationError, match="Unknown source 'linkedin'"):
        jobs.add_application(
            engine, actor=actor, job_id=job, candidate_id=people[1], source="linkedin"
        )
    with pytest.raises(NotFound, match="candidate"):
        jobs.add_application(engine, actor=actor, job_id=job, candidate_id=9999, source="direct")
    with db.read_session(engine) as session:
        entries = session.execute(select(Activity.kind, Activity.summary)).all()
        assert entries == [("stage", "Added to Backend engineer at applied")]
        assert session.scalar(select(func.count()).select_from(Application)) == 1
    assert jobs.get_job(engine, job).stage_counts == {"applied": 1}


def test_stages_hire_fills_the_job_and_undoing_reopens_it(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    app_id = jobs.add_application(
        engine,
        actor=actor,
        job_id=job,
        candidate_id=people[0],
        source="referral",
        at=at("2026-01-05"),
    )
    jobs.move_stage(engine, actor=actor, application_id=app_id, stage="screen", at=at("2026-01-08"))
    with pytest.raises(ValidationError, match="interview cannot be dated before the screen"):
        jobs.move_stage(
            engine, actor=actor, application_id=app_id, stage="interview", at=at("2026-01-07")
        )
    jobs.move_stage(
        engine, actor=actor, application_id=app_id, stage="interview", at=at("2026-01-12")
    )
    jobs.move_stage(engine, actor=actor, application_id=app_id, stage="hired", at=at("2026-02-01"))
    row = application(engine, app_id)
    assert row.stage == "hired" and row.hired_at == at("2026-02-01")
    assert row.offer_accepted is True and row.offer_decided_at == at("2026-02-01")
    assert row.offer_at == at("2026-02-01")  # a hire implies the offer
    filled = job_row(engine, job)
    assert (filled.status, filled.filled_at) == ("filled", dt.date(2026, 2, 1))
    # A mistaken hire, undone: back to interview; the job opens again.
    jobs.move_stage(engine, actor=actor, application_id=app_id, stage="interview")
    row = application(engine, app_id)
    assert row.hired_at is None and row.offer_at is None and row.offer_accepted is None
    assert row.screen_at == at("2026-01-08")  # earlier stages keep their stamps
    reopened = job_row(engine, job)
    assert (reopened.status, reopened.filled_at) == ("open", None)
    with db.read_session(engine) as session:
        kinds = session.scalars(select(Activity.kind).where(Activity.candidate_id == people[0]))
        assert list(kinds) == ["stage"] * 5
        assert (
            session.scalar(select(func.count()).where(AuditLog.action == "application.stage")) == 5
        )


def test_second_hire_keeps_the_first_fill_date(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    ids = [
        jobs.add_application(
            engine,
            actor=actor,
            job_id=job,
            candidate_id=cid,
            source="direct",
            at=at("2026-01-05"),
        )
        for cid in people[:2]
    ]
    jobs.move_stage(engine, actor=actor, application_id=ids[0], stage="hired", at=at("2026-02-01"))
    jobs.move_stage(engine, actor=actor, application_id=ids[1], stage="hired", at=at("2026-03-01"))
    assert job_row(engine, job).filled_at == dt.date(2026, 2, 1)
    jobs.move_stage(engine, actor=actor, application_id=ids[0], stage="withdrew")
    assert job_row(engine, job).filled_at == dt.date(2026, 3, 1)  # the remaining hire
    row = application(engine, ids[0])
    assert row.offer_accepted is True  # accepted, then walked away: the acceptance stands
    # re-dating the remaining hire moves the fill date with it
    jobs.move_stage(engine, actor=actor, application_id=ids[1], stage="hired", at=at("2026-03-05"))
    assert job_row(engine, job).filled_at == dt.date(2026, 3, 5)


def test_offers_remade_declined_and_accepted(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    app_id = jobs.add_application(
        engine,
        actor=actor,
        job_id=job,
        candidate_id=people[0],
        source="direct",
        at=at("2026-01-05"),
    )
    jobs.record_offer(
        engine, actor=actor, application_id=app_id, accepted=None, at=at("2026-02-01")
    )
    with pytest.raises(ValidationError, match="decision cannot come before the offer"):
        jobs.record_offer(
            engine, actor=actor, application_id=app_id, accepted=True, at=at("2026-01-20")
        )
    jobs.record_offer(
        engine, actor=actor, application_id=app_id, accepted=False, at=at("2026-02-03")
    )
    row = application(engine, app_id)
    assert (row.stage, row.offer_accepted, row.withdrew_at) == ("withdrew", False, at("2026-02-03"))
    jobs.record_offer(
        engine, actor=actor, application_id=app_id, accepted=None, at=at("2026-02-10")
    )
    row = application(engine, app_id)
    assert (row.stage, row.offer_at, row.offer_accepted, row.offer_decided_at) == (
        "offer",
        at("2026-02-10"),
        None,
        None,
    )
    assert row.withdrew_at is None
    jobs.record_offer(
        engine, actor=actor, application_id=app_id, accepted=True, at=at("2026-02-12")
    )
    row = application(engine, app_id)
    assert (row.stage, row.offer_accepted, row.offer_decided_at) == (
        "offer",
        True,
        at("2026-02-12"),
    )
    jobs.move_stage(engine, actor=actor, application_id=app_id, stage="hired", at=at("2026-03-01"))
    assert application(engine, app_id).offer_decided_at == at("2026-02-12")  # kept


def test_pipeline_and_applications_of(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    for cid, day in zip(people, ("2026-01-07", "2026-01-05", "2026-01-06"), strict=True):
        jobs.add_application(
            engine, actor=actor, job_id=job, candidate_id=cid, source="direct", at=at(day)
        )
    board = jobs.pipeline(engine, job)
    assert list(board) == list(jobs.STAGE_LABELS)
    assert [card.candidate_name for card in board["applied"]] == ["Ben Doe", "Cy Doe", "Ann Doe"]
    mine = jobs.applications_of(engine, people[0])
    assert [(a.job_title, a.stage) for a in mine] == [("Backend engineer", "applied")]
    assert jobs.get_job(engine, job).applications == 3


def test_naive_times_and_unknown_stages_are_refused(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    actor = users["recruiter"]
    app_id = jobs.add_application(
        engine, actor=actor, job_id=job, candidate_id=people[0], source="direct"
    )
    with pytest.raises(ValidationError, match="timezone"):
        jobs.move_stage(
            engine,
            actor=actor,
            application_id=app_id,
            stage="screen",
            at=dt.datetime(2026, 1, 1, 9),
        )
    with pytest.raises(ValidationError, match="Unknown stage 'offered'"):
        jobs.move_stage(engine, actor=actor, application_id=app_id, stage="offered")
    with pytest.raises(NotFound):
        jobs.move_stage(engine, actor=actor, application_id=9999, stage="screen")


def test_costs(engine: Engine, users: dict[str, User], job: int) -> None:
    actor = users["recruiter"]
    ad = jobs.add_cost(
        engine,
        actor=actor,
        amount=Decimal("450.505"),
        category="job_ads",
        incurred_on=dt.date(2026, 1, 3),
        job_id=job,
        note="LinkedIn",
    )
    jobs.add_cost(
        engine,
        actor=actor,
        amount=Decimal("99"),
        category="tools",
        incurred_on=dt.date(2026, 2, 1),
    )
    for amount, message in (
        (Decimal("0"), "more than zero"),
        ("-5", "more than zero"),
        ("abc", "not a number"),
    ):
        with pytest.raises(ValidationError, match=message):
            jobs.add_cost(
                engine,
                actor=actor,
                amount=amount,
                category="tools",  # type: ignore[arg-type]
                incurred_on=dt.date(2026, 1, 1),
            )
    with pytest.raises(NotFound, match="job"):
        jobs.add_cost(
            engine,
            actor=actor,
            amount=Decimal(1),
            category="tools",
            incurred_on=dt.date(2026, 1, 1),
            job_id=9999,
        )
    everything = jobs.list_costs(engine)
    assert [c.category for c in everything] == ["tools", "job_ads"]
    assert everything[1].amount == Decimal("450.51") and everything[1].job_title == (
        "Backend engineer"
    )
    assert [c.id for c in jobs.list_costs(engine, job_id=job)] == [ad]
    assert [c.category for c in jobs.list_costs(engine, start=dt.date(2026, 1, 15))] == ["tools"]
    jobs.delete_cost(engine, actor=actor, cost_id=ad)
    assert [c.category for c in jobs.list_costs(engine)] == ["tools"]


def test_costs_as_they_come(engine: Engine, users: dict[str, User], job: int) -> None:
    """Any category is kept (a synonym filed under ours, the rest as "other" with its own
    label); the currency is the team's unless given, and one without a rate is refused."""
    actor = users["recruiter"]
    for day, category in enumerate(("Headhunter", "  Sign-on  bonus ", "Career fair"), start=1):
        jobs.add_cost(
            engine,
            actor=actor,
            amount=Decimal(100),
            category=category,
            incurred_on=dt.date(2026, 3, day),
            job_id=job,
        )
    found = jobs.list_costs(engine)
    assert [(c.category, c.category_label, c.currency) for c in found] == [
        ("events", None, "USD"),
        ("other", "Sign-on bonus", "USD"),
        ("agency_fees", None, "USD"),
    ]
    assert [c.category_text for c in found] == ["Events", "Other: Sign-on bonus", "Agency fees"]
    with db.read_session(engine) as session:
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "cost.add").order_by(AuditLog.id.desc())
        ).first()
        assert entry is not None and entry.detail == {
            "amount": "100.00",
            "currency": "USD",
            "category": "events",
            "label": None,
        }
    with pytest.raises(ValidationError) as refused:
        jobs.add_cost(
            engine,
            actor=actor,
            amount=Decimal(5),
            category="tools",
            incurred_on=dt.date(2026, 3, 9),
            currency="eur",
        )
    assert str(refused.value) == (
        "This cost is in EUR but the team counts in USD and has no EUR rate; an admin can "
        "enter one in Settings → Money."
    )
    with pytest.raises(ValidationError, match="three-letter code such as USD"):
        jobs.add_cost(
            engine,
            actor=actor,
            amount=Decimal(5),
            category="tools",
            incurred_on=dt.date(2026, 3, 9),
            currency="euro",
        )
    assert len(jobs.list_costs(engine)) == 3


def test_managers_change_nothing(
    engine: Engine, users: dict[str, User], job: int, people: list[int]
) -> None:
    recruiter, manager = users["recruiter"], users["manager"]
    app_id = jobs.add_application(
        engine, actor=recruiter, job_id=job, candidate_id=people[0], source="direct"
    )
    attempts = [
        lambda: jobs.create_job(engine, actor=manager, title="X", opened_at=dt.date(2026, 1, 1)),
        lambda: jobs.update_job(engine, actor=manager, job_id=job, title="Y"),
        lambda: jobs.add_application(
            engine, actor=manager, job_id=job, candidate_id=people[1], source="direct"
        ),
        lambda: jobs.move_stage(engine, actor=manager, application_id=app_id, stage="hired"),
        lambda: jobs.record_offer(engine, actor=manager, application_id=app_id, accepted=True),
        lambda: jobs.add_cost(
            engine,
            actor=manager,
            amount=Decimal(5),
            category="tools",
            incurred_on=dt.date(2026, 1, 1),
        ),
        lambda: jobs.delete_job(engine, actor=manager, job_id=job),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied, match="read-only"):
            attempt()
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
        assert session.scalar(select(func.count()).select_from(Application)) == 1
        assert session.scalar(select(func.count()).select_from(Cost)) == 0
    assert application(engine, app_id).stage == "applied"
    assert jobs.get_job(engine, job).title == "Backend engineer"


@pytest.mark.parametrize(
    "label, source",
    [
        ("Talent pool", "talent_pool"),
        ("CRM", "talent_pool"),
        ("  Job-Board ", "job_board"),
        ("Indeed", "job_board"),
        ("career_site", "career_site"),
        ("Employee referral", "referral"),
        ("Billboard", None),
        ("", None),
    ],
)
def test_normalize_source(label: str, source: str | None) -> None:
    assert jobs.normalize_source(label) == source
