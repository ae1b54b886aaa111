"""Candidate entry, edits with optimistic locking, the timeline, reminders, bulk actions."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from crm import candidates, clock, db, importer, touchpoints
from crm.errors import NotFound, PermissionDenied, ValidationError
from crm.identity import address_hash
from crm.importer import ImportOptions
from crm.models import Activity, Candidate, Pool, PoolMember, Suppression, User

T = TypeVar("T")

ANA = {
    "first_name": "Ana",
    "last_name": "Lima",
    "email": "Ana.Lima@Example.com",
    "title": "Backend engineer",
    "skills": "Python, AWS",
}


def count(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Candidate))


def while_another_transaction_adds(
    engine: Engine, person: dict[str, Any], write: Callable[[], T]
) -> T:
    """What `write` gives (returns or raises) when it runs while another transaction has
    added `person` and not committed yet; that transaction commits once `write` waits for it.

    On PostgreSQL `write` cannot see the uncommitted row, so its checks miss the person and
    its insert waits on the unique key; the commit comes only once the server shows that
    wait. On SQLite `write` waits for the write lock before it reads anything.
    """
    with (
        ThreadPoolExecutor(1) as pool,  # last to close: the rollback below frees `write`
        engine.connect() as connection,
        Session(bind=connection) as session,
    ):
        session.add(Candidate(**person))
        session.flush()
        postgres = engine.dialect.name == "postgresql"
        holder = session.scalar(text("SELECT pg_backend_pid()")) if postgres else None
        racing = pool.submit(write)
        if holder is not None:
            _wait_until_blocked_by(engine, holder, racing)
        session.commit()
        return racing.result(timeout=60)


def _wait_until_blocked_by(engine: Engine, holder: int, racing: Future[Any]) -> None:
    deadline = time.monotonic() + 30
    with engine.connect() as watcher:
        while not racing.done():
            waiting = watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": holder},
            )
            watcher.rollback()  # pg_stat_activity is read once per transaction
            if waiting:
                return
            assert time.monotonic() < deadline, "the racing write never waited for the other"
            time.sleep(0.01)


def test_create_normalizes_and_logs(users: dict[str, User], engine: Engine) -> None:
    ana = candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    assert ana.email_normalized == "ana.lima@example.com"
    assert sorted(ana.skills) == ["aws", "python"]
    assert ana.owner_id == users["recruiter"].id
    assert ana.consent_status == "legitimate_interest"
    entries = candidates.timeline(engine, ana.id)
    assert [e.kind for e in entries] == ["created"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"first_name": "", "last_name": "", "email": "x@y.io"}, "A name is required."),
        ({"first_name": "Bo"}, "An email address or a LinkedIn profile URL is required."),
        ({"first_name": "Bo", "email": "not-an-email"}, "is not a valid email address"),
        (
            {"first_name": "Bo", "linkedin_url": "https://evil.example/in/bo"},
            "LinkedIn profile URL",
        ),
        (
            {"first_name": "Bo", "linkedin_url": "https://[linkedin.com/in/bo"},
            "LinkedIn profile URL",
        ),
        ({"first_name": "Bo\nBo", "email": "b@y.io"}, "contains a line break"),
        ({"first_name": "Bo", "email": "b@y.io", "title": "x" * 161}, "longer than 160"),
    ],
)
def test_entry_is_validated(
    users: dict[str, User], engine: Engine, fields: dict, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        candidates.create_candidate(engine, actor=users["recruiter"], fields=fields)
    assert count(engine) == 0


def test_no_second_record_for_the_same_person(users: dict[str, User], engine: Engine) -> None:
    first = candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={**ANA, "linkedin_url": "https://www.linkedin.com/in/ana-lima/"},
    )
    with pytest.raises(candidates.DuplicateCandidate, match="same email") as caught:
        candidates.create_candidate(
            engine,
            actor=users["admin"],
            fields={"first_name": "A", "email": " ANA.LIMA@example.COM"},
        )
    assert caught.value.existing_id == first.id
    with pytest.raises(candidates.DuplicateCandidate, match="same LinkedIn profile"):
        candidates.create_candidate(
            engine,
            actor=users["admin"],
            fields={"first_name": "A", "linkedin_url": "http://uk.linkedin.com/in/Ana-Lima?trk=1"},
        )
    assert count(engine) == 1


def test_adding_a_person_an_import_adds_meanwhile_says_they_are_already_there(
    users: dict[str, User], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The import commits Ana between the form's duplicate check and its insert: the unique
    key refuses the second record, and the form says what its check would have said."""
    importer.run_import(
        engine,
        b"Name,Email\r\nAna Lima,ana.lima@example.com\r\n",
        ImportOptions(),
        actor=users["admin"],
        filename="people.csv",
    )
    with db.read_session(engine) as session:
        imported = session.scalar(select(Candidate.id))
        activities = session.scalar(select(func.count()).select_from(Activity))
    check, looked = candidates._existing_identity, []

    def checked_before_the_import_committed(session: Session, values: dict, **kw: Any) -> Any:
        looked.append(values["email_normalized"])
        return None if len(looked) == 1 else check(session, values, **kw)

    monkeypatch.setattr(candidates, "_existing_identity", checked_before_the_import_committed)
    with pytest.raises(
        candidates.DuplicateCandidate,
        match=r"^Ana Lima is already in the database with the same email\.$",
    ) as caught:
        candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    assert caught.value.existing_id == imported
    assert looked == ["ana.lima@example.com"] * 2  # the check, then the look after the refusal
    assert count(engine) == 1
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == activities


def test_adding_a_person_another_transaction_is_adding_says_they_are_already_there(
    users: dict[str, User], engine: Engine
) -> None:
    """No check sees a person another transaction has not committed yet (PostgreSQL): the
    form's insert waits on the unique key and is refused when they commit. (On SQLite the
    form waits for the write lock, then its check finds them.)"""
    ana = {
        "first_name": "Ana",
        "last_name": "Lima",
        "email": "ana.lima@example.com",
        "email_normalized": "ana.lima@example.com",
    }
    with pytest.raises(
        candidates.DuplicateCandidate,
        match=r"^Ana Lima is already in the database with the same email\.$",
    ):
        while_another_transaction_adds(
            engine,
            ana,
            lambda: candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA),
        )
    assert count(engine) == 1
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_a_suppressed_address_is_entered_as_do_not_contact(
    users: dict[str, User], engine: Engine
) -> None:
    with db.write_session(engine) as session:
        session.add(
            Suppression(address_hash=address_hash("ana.lima@example.com"), reason="unsubscribe")
        )
    ana = candidates.create_candidate(
        engine, actor=users["recruiter"], fields={**ANA, "consent_status": "consented"}
    )
    assert ana.consent_status == "do_not_contact"


def test_edit_conflict_is_refused_with_who_and_when(users: dict[str, User], engine: Engine) -> None:
    ana = candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    version = ana.version
    candidates.update_candidate(
        engine,
        actor=users["admin"],
        candidate_id=ana.id,
        expected_version=version,
        fields={"title": "Staff engineer"},
    )
    with pytest.raises(candidates.EditConflict, match="changed by Ada Admin at"):
        candidates.update_candidate(
            engine,
            actor=users["recruiter"],
            candidate_id=ana.id,
            expected_version=version,  # the stale copy
            fields={"company": "Acme"},
        )
    fresh = candidates.get_candidate(engine, ana.id)
    assert fresh.title == "Staff engineer" and fresh.company is None
    assert fresh.version == version + 1


def test_edit_logs_what_changed_and_checks_identity(users: dict[str, User], engine: Engine) -> None:
    ana = candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    bo = candidates.create_candidate(
        engine, actor=users["recruiter"], fields={"first_name": "Bo", "email": "bo@example.com"}
    )
    updated = candidates.update_candidate(
        engine,
        actor=users["recruiter"],
        candidate_id=ana.id,
        expected_version=ana.version,
        fields={"company": "Acme", "skills": "python; go", "remote": "yes"},
    )
    assert updated.company == "Acme" and updated.remote is True
    assert sorted(updated.skills) == ["go", "python"]
    edit = candidates.timeline(engine, ana.id)[0]
    assert edit.kind == "edit" and "company" in edit.summary and "skills" in edit.summary
    with pytest.raises(candidates.DuplicateCandidate):
        candidates.update_candidate(
            engine,
            actor=users["recruiter"],
            candidate_id=bo.id,
            expected_version=bo.version,
            fields={"email": "ana.lima@example.com"},
        )
    with pytest.raises(ValidationError, match="cannot be edited"):
        candidates.update_candidate(
            engine,
            actor=users["recruiter"],
            candidate_id=bo.id,
            expected_version=bo.version,
            fields={"version": 99},
        )


def test_touchpoints_move_last_contacted_forward_only(
    users: dict[str, User], engine: Engine
) -> None:
    ana = candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    now = clock.now()
    touchpoints.log_touchpoint(
        engine,
        actor=users["recruiter"],
        candidate_id=ana.id,
        channel="call",
        occurred_at=now - dt.timedelta(days=1),
        note="Talked about Q1",
    )
    touchpoints.log_touchpoint(
        engine,
        actor=users["admin"],
        candidate_id=ana.id,
        channel="linkedin_message",
        occurred_at=now - dt.timedelta(days=10),
        note="Old message logged late",
    )
    touchpoints.log_touchpoint(
        engine,
        actor=users["admin"],
        candidate_id=ana.id,
        channel="note",
        occurred_at=now,
        note="Prefers mornings",
    )
    fresh = candidates.get_candidate(engine, ana.id)
    assert fresh.last_contact_channel == "call"
    assert fresh.last_contacted_by_id == users["recruiter"].id
    assert abs(fresh.last_contacted_at - (now - dt.timedelta(days=1))) < dt.timedelta(seconds=1)
    assert fresh.version == ana.version  # a touch is not an edit
    with pytest.raises(ValidationError, match="future"):
        touchpoints.log_touchpoint(
            engine,
            actor=users["admin"],
            candidate_id=ana.id,
            channel="call",
            occurred_at=now + dt.timedelta(days=2),
            note="",
        )
    touches = [e.summary for e in candidates.timeline(engine, ana.id) if e.kind != "created"]
    assert touches == ["Prefers mornings", "Talked about Q1", "Old message logged late"]


def test_follow_up_reminder_shows_when_due(users: dict[str, User], engine: Engine) -> None:
    ana = candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    today = dt.date(2026, 11, 26)
    touchpoints.set_follow_up(
        engine, actor=users["recruiter"], candidate_id=ana.id, on=today, note="Send the job spec"
    )
    due = touchpoints.follow_ups_due(engine, today=today)
    assert [(r["first_name"], r["follow_up_note"]) for r in due] == [("Ana", "Send the job spec")]
    assert touchpoints.follow_ups_due(engine, today=today - dt.timedelta(days=1)) == []
    touchpoints.set_follow_up(engine, actor=users["recruiter"], candidate_id=ana.id, on=None)
    assert touchpoints.follow_ups_due(engine, today=today) == []


def test_bulk_actions(users: dict[str, User], engine: Engine) -> None:
    people = [
        candidates.create_candidate(
            engine, actor=users["recruiter"], fields={"first_name": f"P{i}", "email": f"p{i}@x.io"}
        )
        for i in range(4)
    ]
    ids = [p.id for p in people]
    with db.write_session(engine) as session:
        static = Pool(name="Shortlist", kind="static", stages=["New", "Contacted"])
        dynamic = Pool(name="Everyone", kind="dynamic", filter={"all": []})
        session.add_all([static, dynamic])
    assert (
        candidates.bulk_tag(
            engine, actor=users["recruiter"], candidate_ids=ids[:2], tags="alumni, Referral"
        )
        == 2
    )
    assert (
        candidates.bulk_tag(engine, actor=users["recruiter"], candidate_ids=ids[:3], tags="alumni")
        == 1
    )
    assert (
        candidates.bulk_add_to_pool(
            engine, actor=users["recruiter"], candidate_ids=ids, pool_id=static.id
        )
        == 4
    )
    assert (
        candidates.bulk_add_to_pool(
            engine, actor=users["recruiter"], candidate_ids=ids, pool_id=static.id
        )
        == 0
    )
    with pytest.raises(ValidationError, match="dynamic pool"):
        candidates.bulk_add_to_pool(
            engine, actor=users["recruiter"], candidate_ids=ids, pool_id=dynamic.id
        )
    assert candidates.pools_of(engine, ids[0]) == [("Shortlist", "New")]
    assert (
        candidates.bulk_assign_owner(
            engine, actor=users["recruiter"], candidate_ids=ids, owner_id=users["admin"].id
        )
        == 4
    )
    assert candidates.get_candidate(engine, ids[0]).owner_id == users["admin"].id
    with pytest.raises(PermissionDenied):
        candidates.delete_candidates(engine, actor=users["manager"], candidate_ids=ids)
    assert (
        candidates.delete_candidates(engine, actor=users["recruiter"], candidate_ids=ids[:2]) == 2
    )
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(PoolMember)) == 2
        assert (
            session.scalar(
                select(func.count()).select_from(Activity).where(Activity.candidate_id.in_(ids[:2]))
            )
            == 0
        )
    with pytest.raises(ValidationError, match="Select at least one"):
        candidates.bulk_tag(engine, actor=users["recruiter"], candidate_ids=[], tags="x")


def test_managers_cannot_write(users: dict[str, User], engine: Engine) -> None:
    with pytest.raises(PermissionDenied, match="read-only"):
        candidates.create_candidate(engine, actor=users["manager"], fields=ANA)
    with pytest.raises(NotFound):
        touchpoints.log_touchpoint(
            engine,
            actor=users["recruiter"],
            candidate_id=999,
            channel="call",
            occurred_at=clock.now(),
            note="",
        )


def test_a_search_over_the_limit_or_with_a_nul_is_refused_in_one_sentence(
    users: dict[str, User], engine: Engine
) -> None:
    """SQLite refuses a LIKE pattern over 50,000 bytes ("LIKE or GLOB pattern too
    complex") and PostgreSQL refuses NUL: the search says so instead, on both."""
    from crm import exporter

    candidates.create_candidate(engine, actor=users["recruiter"], fields=ANA)
    for typed, sentence in (
        ("a" * 50_001, "A search can be at most 200 characters long."),
        ("  " + "a" * 201 + "  ", "A search can be at most 200 characters long."),
        ("ana\x00", "A search cannot contain a NUL character."),
    ):
        found = candidates.search(engine, text=typed)
        assert (found.rows, found.total, found.problem) == ([], 0, sentence)
        with pytest.raises(ValidationError, match=sentence):  # an export of that view
            exporter.export_to_bytes(
                engine, actor=users["recruiter"], scope=exporter.ExportScope(text=typed)
            )
    longest = candidates.search(engine, text=" " + "a" * candidates.MAX_SEARCH + " ")
    assert (longest.total, longest.problem) == (0, None)
    assert candidates.search(engine, text="lima").total == 1
