"""Suspected duplicates, "not a duplicate" answers, and merging two records into one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine, select

from crm import db, duplicates
from crm.duplicates import SAME_NAME_AND_COMPANY, SAME_PHONE, DuplicatePair
from crm.errors import PermissionDenied, ValidationError
from crm.models import (
    Activity,
    Application,
    AuditLog,
    Campaign,
    CampaignStep,
    Candidate,
    CandidateTag,
    DuplicateDismissal,
    Enrollment,
    Event,
    Job,
    OutboxMessage,
    Pool,
    PoolMember,
    User,
)

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def person(first: str, last: str, **fields: Any) -> Candidate:
    skills = fields.pop("skills", [])
    tags = fields.pop("tags", [])
    if "email" in fields:
        fields.setdefault("email_normalized", fields["email"].lower())
    if "phone" in fields:
        fields.setdefault(
            "phone_normalized", "+" + "".join(c for c in fields["phone"] if c.isdigit())
        )
    candidate = Candidate(first_name=first, last_name=last, **fields)
    candidate.skills = list(skills)
    candidate.tags = [CandidateTag(tag=t) for t in tags]
    return candidate


def add(engine: Engine, *people: Candidate) -> list[int]:
    with db.write_session(engine) as session:
        session.add_all(people)
        session.flush()
        return [p.id for p in people]


def pairs(engine: Engine, **options: Any) -> set[tuple[int, int, str]]:
    return {(p.a_id, p.b_id, p.reason) for p in duplicates.suspected_duplicates(engine, **options)}


@pytest.fixture
def lookalikes(engine: Engine) -> dict[str, int]:
    names = ("ana", "ana_upper", "ana_elsewhere", "ana_no_company", "ana_blank", "ben", "carl")
    names += ("dee", "dee_again", "eve")
    ids = add(
        engine,
        person("Ana", "Lima", email="ana@example.com", company="Acme", title="Engineer"),
        person("ANA", "lima", email="ana.lima@work.example", company="ACME"),
        person("Ana", "Lima", email="ana@other.example", company="Globex"),
        person("Ana", "Lima", email="ana3@example.com"),
        person("Ana", "Lima", email="ana4@example.com", company=""),
        person("Ben", "Okafor", email="ben@example.com", phone="+44 7700 900123"),
        person("Carl", "Berg", email="carl@example.com", phone="+44 (7700) 900-123"),
        person("Dee", "Roe", email="dee@example.com", company="Foo", phone="+1 512 555 0100"),
        person("Dee", "Roe", email="dee2@example.com", company="foo", phone="+1 512 555 0100"),
        person("Eve", "Stone", email="eve@example.com", company="Acme", phone="+1 512 555 0199"),
    )
    return dict(zip(names, ids, strict=True))


# --- finding and dismissing -------------------------------------------------------------


def test_same_name_and_company_or_same_phone_are_suspected(
    engine: Engine, lookalikes: dict[str, int]
) -> None:
    ids = lookalikes
    assert pairs(engine) == {
        (ids["ana"], ids["ana_upper"], SAME_NAME_AND_COMPANY),
        (ids["ben"], ids["carl"], SAME_PHONE),
        # Both signals: listed once.
        (ids["dee"], ids["dee_again"], SAME_NAME_AND_COMPANY),
    }
    found = duplicates.suspected_duplicates(engine)
    assert all(p.a_id < p.b_id for p in found)
    # Newest first: the pair with the latest record leads.
    assert [p.b_id for p in found] == sorted((p.b_id for p in found), reverse=True)
    ana = next(p for p in found if p.a_id == ids["ana"])
    assert ana == DuplicatePair(
        a_id=ids["ana"],
        b_id=ids["ana_upper"],
        reason=SAME_NAME_AND_COMPANY,
        a_name="Ana Lima",
        b_name="ANA lima",
        a_summary="ana@example.com / Acme / Engineer",
        b_summary="ana.lima@work.example / ACME",
    )


def test_limit_and_one_persons_pairs(engine: Engine, lookalikes: dict[str, int]) -> None:
    ids = lookalikes
    assert len(duplicates.suspected_duplicates(engine, limit=2)) == 2
    assert pairs(engine, candidate_id=ids["carl"]) == {(ids["ben"], ids["carl"], SAME_PHONE)}
    assert pairs(engine, candidate_id=ids["ana"]) == {
        (ids["ana"], ids["ana_upper"], SAME_NAME_AND_COMPANY)
    }
    assert pairs(engine, candidate_id=ids["eve"]) == set()
    assert pairs(engine, candidate_id=ids["ana_no_company"]) == set()


def test_a_group_of_three_gives_every_pair(engine: Engine) -> None:
    a, b, c = add(
        engine,
        person("Kim", "Park", email="k1@example.com", company="Initech"),
        person("Kim", "Park", email="k2@example.com", company="Initech"),
        person("kim", "PARK", email="k3@example.com", company="initech"),
    )
    assert pairs(engine) == {(x, y, SAME_NAME_AND_COMPANY) for x, y in ((a, b), (a, c), (b, c))}
    assert len(pairs(engine, candidate_id=b)) == 2


def test_not_a_duplicate_is_remembered(
    engine: Engine, lookalikes: dict[str, int], users: dict[str, User]
) -> None:
    ids = lookalikes
    recruiter = users["recruiter"]
    # Either order; twice is the same as once.
    duplicates.dismiss(engine, actor=recruiter, a_id=ids["carl"], b_id=ids["ben"])
    duplicates.dismiss(engine, actor=recruiter, a_id=ids["ben"], b_id=ids["carl"])
    assert (ids["ben"], ids["carl"], SAME_PHONE) not in pairs(engine)
    assert pairs(engine, candidate_id=ids["carl"]) == set()
    with db.read_session(engine) as session:
        (row,) = session.scalars(select(DuplicateDismissal)).all()
        assert (row.candidate_a_id, row.candidate_b_id) == (ids["ben"], ids["carl"])
        assert row.dismissed_by_id == recruiter.id
        actions = session.scalars(select(AuditLog.action)).all()
    assert actions.count("candidate.not_duplicate") == 2


def test_dismiss_refusals(
    engine: Engine, lookalikes: dict[str, int], users: dict[str, User]
) -> None:
    ids = lookalikes
    with pytest.raises(PermissionDenied):
        duplicates.dismiss(engine, actor=users["manager"], a_id=ids["ben"], b_id=ids["carl"])
    with pytest.raises(ValidationError, match="themself"):
        duplicates.dismiss(engine, actor=users["admin"], a_id=ids["ben"], b_id=ids["ben"])
    with pytest.raises(ValidationError, match="no longer exists"):
        duplicates.dismiss(engine, actor=users["admin"], a_id=ids["ben"], b_id=999_999)
    assert (ids["ben"], ids["carl"], SAME_PHONE) in pairs(engine)


# --- merging ----------------------------------------------------------------------------


def get(engine: Engine, candidate_id: int) -> Candidate | None:
    with db.read_session(engine) as session:
        return session.get(Candidate, candidate_id)


def test_merge_honours_choices_and_swaps_unique_keys(
    engine: Engine, users: dict[str, User]
) -> None:
    keep_id, gone_id = add(
        engine,
        person(
            "Ana",
            "Lima",
            email="ana@example.com",
            linkedin_url="https://www.linkedin.com/in/ana-lima",
            linkedin_normalized="linkedin.com/in/ana-lima",
            title="Engineer",
            company="Acme",
            years_experience=5,
            remote=False,
            skills=["python", "aws"],
            tags=["alumni"],
            owner_id=users["recruiter"].id,
        ),
        person(
            "Ana Maria",
            "Lima",
            email="ana.lima@work.example",
            linkedin_url="https://www.linkedin.com/in/ana-maria-lima",
            linkedin_normalized="linkedin.com/in/ana-maria-lima",
            phone="+44 7700 900123",
            title="Senior Engineer",
            company="ACME",
            location="London",
            years_experience=7,
            remote=True,
            skills=["python", "go"],
            tags=["silver medalist"],
            owner_id=users["admin"].id,
        ),
    )
    before = get(engine, keep_id)
    kept = duplicates.merge(
        engine,
        actor=users["recruiter"],
        keep_id=keep_id,
        remove_id=gone_id,
        choices={
            "first_name": "remove",
            "email": "remove",  # the kept record takes the other one's unique email key
            "linkedin_url": "keep",
            "title": "remove",
            "company": "keep",
            "remote": "remove",
            "years_experience": "keep",
            "owner_id": "remove",
        },
    )
    assert get(engine, gone_id) is None
    stored = get(engine, keep_id)
    for candidate in (kept, stored):
        assert candidate.first_name == "Ana Maria"
        assert (candidate.email, candidate.email_normalized) == (
            "ana.lima@work.example",
            "ana.lima@work.example",
        )
        assert candidate.linkedin_normalized == "linkedin.com/in/ana-lima"
        assert (candidate.title, candidate.company) == ("Senior Engineer", "Acme")
        assert candidate.remote is True and candidate.years_experience == 5
        assert candidate.owner_id == users["admin"].id
        # Not chosen and empty on the kept record: the other record's value fills it.
        assert candidate.location == "London"
        assert (candidate.phone, candidate.phone_normalized) == ("+44 7700 900123", "+447700900123")
        assert sorted(candidate.skills) == ["aws", "go", "python"]
        assert sorted(t.tag for t in candidate.tags) == ["alumni", "silver medalist"]
        assert candidate.version == before.version + 1
        assert candidate.updated_by_id == users["recruiter"].id
    with db.read_session(engine) as session:
        (activity,) = session.scalars(select(Activity).where(Activity.kind == "merge")).all()
        assert activity.candidate_id == keep_id
        assert activity.summary == "Merged with Ana Maria Lima (ana.lima@work.example)"
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "candidate.merge")).one()
        assert audit.entity_id == str(keep_id) and audit.detail["removed_id"] == gone_id
        assert session.get(Candidate, gone_id) is None
    # The old email key is free again: a new person may now use it.
    add(engine, person("Someone", "Else", email="ana@example.com"))


def test_consent_never_loosens_and_dates_keep_the_safe_side(
    engine: Engine, users: dict[str, User]
) -> None:
    early, late = NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=2)
    keep_id, gone_id = add(
        engine,
        person(
            "Ana",
            "Lima",
            email="a@example.com",
            consent_status="consented",
            consent_source="event signup",
            last_contacted_at=early,
            last_contact_channel="email",
            unsubscribed_at=late,
            created_at=late,
        ),
        person(
            "Ana",
            "Lima",
            email="b@example.com",
            consent_status="do_not_contact",
            consent_note="Asked not to be contacted.",
            last_contacted_at=late,
            last_contact_channel="call",
            last_engaged_at=early,
            unsubscribed_at=early,
            created_at=early,
        ),
    )
    kept = duplicates.merge(
        engine,
        actor=users["admin"],
        keep_id=keep_id,
        remove_id=gone_id,
        choices={"consent_status": "keep", "email": "keep"},
    )
    assert kept.consent_status == "do_not_contact"
    assert kept.consent_note == "Asked not to be contacted." and kept.consent_source is None
    assert kept.unsubscribed_at == early
    assert (kept.last_contacted_at, kept.last_contact_channel) == (late, "call")
    assert kept.last_engaged_at == early
    assert kept.created_at == early
    assert kept.email == "a@example.com"

    # The other way round too: choosing the loose side of a strict record changes nothing.
    third = add(engine, person("Ana", "Lima", email="c@example.com", consent_status="consented"))[0]
    kept = duplicates.merge(
        engine,
        actor=users["admin"],
        keep_id=third,
        remove_id=keep_id,
        choices={"consent_status": "keep"},
    )
    assert kept.consent_status == "do_not_contact"
    assert kept.unsubscribed_at == early


def test_merge_moves_everything_to_the_kept_record(engine: Engine, users: dict[str, User]) -> None:
    keep_id, gone_id, other_id, third_id = add(
        engine,
        person("Ana", "Lima", email="a@example.com"),
        person("Ana", "Lima", email="b@example.com"),
        person("Ben", "Other", email="ben@example.com"),
        person("Cy", "Third", email="cy@example.com"),
    )
    early, late = NOW - dt.timedelta(days=40), NOW - dt.timedelta(days=4)
    with db.write_session(engine) as session:
        both_pool = Pool(name="Both", kind="static")
        gone_pool = Pool(name="Only the removed one", kind="static")
        job_both = Job(title="Backend", opened_at=dt.date(2026, 1, 1))
        job_gone = Job(title="Frontend", opened_at=dt.date(2026, 1, 1))
        campaign_both = Campaign(name="Spring")
        campaign_gone = Campaign(name="Autumn")
        session.add_all([both_pool, gone_pool, job_both, job_gone, campaign_both, campaign_gone])
        session.flush()
        step_both = CampaignStep(
            campaign_id=campaign_both.id, position=1, subject="Hi", body_markdown="Hi"
        )
        step_gone = CampaignStep(
            campaign_id=campaign_gone.id, position=1, subject="Hi", body_markdown="Hi"
        )
        session.add_all(
            [
                step_both,
                step_gone,
                Activity(candidate_id=gone_id, kind="note", summary="Met at a meetup"),
                PoolMember(pool_id=both_pool.id, candidate_id=keep_id, added_at=late),
                PoolMember(
                    pool_id=both_pool.id, candidate_id=gone_id, added_at=early, stage="warm"
                ),
                PoolMember(pool_id=gone_pool.id, candidate_id=gone_id, added_at=late),
                Application(
                    candidate_id=keep_id, job_id=job_both.id, source="direct", stage="applied"
                ),
                Application(
                    candidate_id=gone_id,
                    job_id=job_both.id,
                    source="talent_pool",
                    stage="rejected",
                    screen_at=late,
                    interview_at=late,
                    rejected_at=late,
                ),
                Application(
                    candidate_id=gone_id, job_id=job_gone.id, source="referral", stage="screen"
                ),
                DuplicateDismissal(candidate_a_id=gone_id, candidate_b_id=other_id),
                DuplicateDismissal(candidate_a_id=keep_id, candidate_b_id=gone_id),
                DuplicateDismissal(candidate_a_id=third_id, candidate_b_id=gone_id),
                DuplicateDismissal(candidate_a_id=keep_id, candidate_b_id=third_id),
            ]
        )
        session.flush()
        kept_enrollment = Enrollment(campaign_id=campaign_both.id, candidate_id=keep_id)
        stopped_enrollment = Enrollment(
            campaign_id=campaign_both.id, candidate_id=gone_id, status="stopped"
        )
        moved_enrollment = Enrollment(campaign_id=campaign_gone.id, candidate_id=gone_id)
        session.add_all([kept_enrollment, stopped_enrollment, moved_enrollment])
        session.flush()

        def message(enrollment: Enrollment, step: CampaignStep, status: str) -> OutboxMessage:
            return OutboxMessage(
                unique_key=f"{enrollment.id}:{step.id}:{status}",
                campaign_id=enrollment.campaign_id,
                step_id=step.id,
                enrollment_id=enrollment.id,
                candidate_id=enrollment.candidate_id,
                status=status,
            )

        queued = message(kept_enrollment, step_both, "queued")
        sent = message(stopped_enrollment, step_both, "sent")
        other_queued = message(moved_enrollment, step_gone, "queued")
        session.add_all([queued, sent, other_queued])
        session.flush()
        session.add(Event(kind="open", candidate_id=gone_id, outbox_message_id=sent.id))
        ids = {
            "both_pool": both_pool.id,
            "gone_pool": gone_pool.id,
            "job_both": job_both.id,
            "job_gone": job_gone.id,
            "stopped": stopped_enrollment.id,
            "moved": moved_enrollment.id,
            "queued": queued.id,
            "sent": sent.id,
            "other_queued": other_queued.id,
        }

    duplicates.merge(
        engine, actor=users["recruiter"], keep_id=keep_id, remove_id=gone_id, choices={}
    )

    with db.read_session(engine) as session:
        assert session.get(Candidate, gone_id) is None
        notes = session.scalars(select(Activity).where(Activity.candidate_id == keep_id)).all()
        assert {a.kind for a in notes} == {"note", "merge"}
        places = {
            m.pool_id: m
            for m in session.scalars(select(PoolMember).where(PoolMember.candidate_id == keep_id))
        }
        assert set(places) == {ids["both_pool"], ids["gone_pool"]}
        assert places[ids["both_pool"]].added_at == early  # the earlier place stays
        assert places[ids["both_pool"]].stage == "warm"
        assert session.scalar(select(PoolMember).where(PoolMember.candidate_id == gone_id)) is None

        apps = {
            a.job_id: a
            for a in session.scalars(select(Application).where(Application.candidate_id == keep_id))
        }
        assert set(apps) == {ids["job_both"], ids["job_gone"]}
        # The removed record's application got further (to interview), so it stays.
        assert apps[ids["job_both"]].source == "talent_pool"
        assert session.scalars(select(Application)).all().__len__() == 2

        enrollments = {
            e.campaign_id: e
            for e in session.scalars(select(Enrollment).where(Enrollment.candidate_id == keep_id))
        }
        assert {e.id for e in enrollments.values()} == {ids["stopped"], ids["moved"]}
        assert session.scalars(select(Enrollment)).all().__len__() == 2
        messages = {m.id: m for m in session.scalars(select(OutboxMessage))}
        assert {m.candidate_id for m in messages.values()} == {keep_id}
        # The stopped sequence stays stopped: the other one's queued mail is cancelled.
        assert messages[ids["queued"]].enrollment_id == ids["stopped"]
        assert messages[ids["queued"]].status == "cancelled"
        assert messages[ids["sent"]].status == "sent"
        assert messages[ids["other_queued"]].status == "queued"
        assert session.scalar(select(Event.candidate_id)) == keep_id

        dismissed = set(
            session.execute(
                select(DuplicateDismissal.candidate_a_id, DuplicateDismissal.candidate_b_id)
            ).all()
        )
        assert dismissed == {
            (min(keep_id, other_id), max(keep_id, other_id)),
            (min(keep_id, third_id), max(keep_id, third_id)),
        }


def test_merge_refusals(engine: Engine, users: dict[str, User]) -> None:
    keep_id, gone_id = add(
        engine,
        person("Ana", "Lima", email="a@example.com"),
        person("Ana", "Lima", email="b@example.com"),
    )
    with pytest.raises(PermissionDenied):
        duplicates.merge(
            engine, actor=users["manager"], keep_id=keep_id, remove_id=gone_id, choices={}
        )
    with pytest.raises(ValidationError) as raised:
        duplicates.merge(
            engine, actor=users["admin"], keep_id=keep_id, remove_id=keep_id, choices={}
        )
    assert str(raised.value) == "A candidate cannot be merged with themself."
    with pytest.raises(ValidationError, match="no longer exists"):
        duplicates.merge(
            engine, actor=users["admin"], keep_id=keep_id, remove_id=999_999, choices={}
        )
    with pytest.raises(ValidationError, match="'custom_fields' is not a field"):
        duplicates.merge(
            engine,
            actor=users["admin"],
            keep_id=keep_id,
            remove_id=gone_id,
            choices={"custom_fields": "keep"},
        )
    with pytest.raises(ValidationError, match="must be 'keep' or 'remove'"):
        duplicates.merge(
            engine,
            actor=users["admin"],
            keep_id=keep_id,
            remove_id=gone_id,
            choices={"email": "both"},  # type: ignore[dict-item]
        )
    assert get(engine, keep_id) is not None and get(engine, gone_id) is not None
    assert get(engine, keep_id).version == 1


def test_mergeable_fields_are_candidate_columns() -> None:
    columns = set(Candidate.__table__.columns.keys())
    assert set(duplicates.MERGEABLE_FIELDS) <= columns
    assert "id" not in duplicates.MERGEABLE_FIELDS
    assert "version" not in duplicates.MERGEABLE_FIELDS
