"""The Privacy page under AppTest: access and erasure requests, retention review, consent to
renew, and who may open it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import Engine, select, update
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from app_pages import common
from crm import candidates, clock, db, privacy, touchpoints
from crm.identity import address_hash, normalize_email
from crm.models import Candidate, Pool, PoolMember, Suppression, User
from tests.conftest import PROJECT_ROOT
from tests.test_app import app_as

PAGE = "app_pages/privacy.py"


def spy_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], object]]:
    """The callables behind deferred download buttons, by file name, from now on: calling
    one is what a click on the button does in the browser."""
    captured: dict[str, Callable[[], object]] = {}
    original = MediaFileManager.add_deferred

    def spy(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        captured[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    return captured


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], object]]:
    return spy_downloads(monkeypatch)


def person(
    engine: Engine,
    users: dict[str, User],
    email: str,
    first: str = "Ana",
    *,
    age_days: int = 0,
    consent: str = "legitimate_interest",
) -> int:
    """A candidate added `age_days` ago (with consent recorded then, if any)."""
    cid = candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": first,
            "last_name": "Lima",
            "email": email,
            "consent_status": consent,
        },
    ).id
    if age_days:
        then = clock.now() - dt.timedelta(days=age_days)
        with db.write_session(engine) as session:
            session.execute(
                update(Candidate)
                .where(Candidate.id == cid)
                .values(created_at=then, consent_at=None)
            )
    return cid


def open_page(user: User, tab: str | None = None) -> AppTest:
    at = app_as(user).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    if tab is not None:
        at.session_state["privacy_tab"] = tab
        at.run()
        assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def find(at: AppTest, email: str) -> None:
    next(w for w in at.text_input if w.label == "Email address").input(email)
    at.button(key="FormSubmitter:privacy_find-Find").click().run()
    assert not at.exception, at.exception


def table_key(at: AppTest, prefix: str) -> str:
    """The dataframe's user key (it changes with the period, page and each action)."""
    [frame] = at.dataframe
    key = frame.proto.id.split("-", 2)[2]  # "$$ID-<hash>-<key>"
    assert key.startswith(prefix), key
    return key


def choose(at: AppTest, prefix: str, rows: list[int]) -> None:
    at.session_state[table_key(at, prefix)] = {"selection": {"rows": rows, "columns": []}}
    at.run()
    assert not at.exception, at.exception


def table_emails(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["email"]) if at.dataframe else []


def suppressed(engine: Engine, email: str) -> bool:
    digest = address_hash(normalize_email(email)[1])
    with db.read_session(engine) as session:
        return (
            session.scalar(select(Suppression.id).where(Suppression.address_hash == digest))
            is not None
        )


def exists(engine: Engine, cid: int) -> bool:
    return candidates.get_candidate(engine, cid) is not None


# --- access or erasure request ----------------------------------------------------------


def test_a_recruiter_finds_a_person_and_exports_everything(
    users: dict[str, User], engine: Engine, downloads: dict
) -> None:
    cid = person(engine, users, "ana@example.com")
    at = open_page(users["recruiter"])
    assert at.title[0].value == "Privacy"
    find(at, "nobody@example.com")
    assert "Nobody in the database has that address" in at.info[0].value
    assert not at.get("download_button")
    find(at, "  ANA@Example.com ")
    assert any("Ana Lima" in m.value for m in at.markdown)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download everything (JSON)", "Download everything (CSV)"]
    # Nothing is exported (or audited) until a download is clicked.
    document = json.loads(downloads[f"candidate-{cid}-data.json"]())
    assert document["candidate"]["email"] == "ana@example.com"
    assert document["exported_by"] == "Rita Recruiter"
    table = downloads[f"candidate-{cid}-data.csv"]()
    assert table.startswith("\ufeffsection,item,field,value".encode())


def test_erase_through_the_confirmation_dialog(users: dict[str, User], engine: Engine) -> None:
    cid = person(engine, users, "ana@example.com")
    keep = person(engine, users, "bo@example.com", "Bo")
    at = open_page(users["admin"])
    find(at, "ana@example.com")
    assert not any(b.label == "Erase permanently" for b in at.button)
    button(at, "Erase this person…").click().run()
    assert not at.exception
    assert any("never emailed again" in m.value for m in at.markdown)  # says what it does
    assert exists(engine, cid)  # nothing yet
    button(at, "Erase permanently").click().run()
    assert not at.exception, at.exception
    assert not exists(engine, cid)
    assert exists(engine, keep)
    assert suppressed(engine, "ana@example.com")
    assert not suppressed(engine, "bo@example.com")
    assert "Erased" in at.success[0].value and "suppressed" in at.success[0].value
    assert not any(b.label == "Erase permanently" for b in at.button)  # the dialog closed
    assert not any(b.label == "Erase this person…" for b in at.button)


def test_a_manager_is_refused_even_by_url(users: dict[str, User], engine: Engine) -> None:
    person(engine, users, "ana@example.com")
    at = app_as(users["manager"]).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
    # The page itself refuses, should a manager reach it some other way.
    page = AppTest.from_file(str(PROJECT_ROOT / PAGE), default_timeout=60)
    page.session_state[common.CURRENT_USER_KEY] = users["manager"]
    page.run()
    assert not page.exception, page.exception
    assert page.error[0].value == "Only admins and recruiters can open Privacy."
    assert not page.text_input and not page.button and not page.dataframe
    page.session_state[common.CURRENT_USER_KEY] = users["recruiter"]
    page.run()
    assert not page.error and page.text_input


# --- retention review -------------------------------------------------------------------


def test_retention_lists_the_quiet_and_keep_needs_a_reason(
    users: dict[str, User], engine: Engine
) -> None:
    person(engine, users, "quiet@example.com", "Quinn", age_days=800)
    touched = person(engine, users, "touched@example.com", "Tess", age_days=800)
    touchpoints.log_touchpoint(
        engine,
        actor=users["recruiter"],
        candidate_id=touched,
        channel="call",
        occurred_at=clock.now() - dt.timedelta(days=10),
        note="Caught up",
    )
    person(engine, users, "new@example.com", "Nia")
    at = open_page(users["recruiter"], "Retention review")
    assert table_emails(at) == ["quiet@example.com"]
    assert any(m.value.startswith("**1 person** quiet for 730") for m in at.markdown)
    keep = at.button(key="FormSubmitter:privacy_keep-Keep")
    assert keep.disabled  # nothing selected yet
    choose(at, "privacy_retention_table", [0])
    assert any(m.value == "**1 selected**" for m in at.markdown)
    at.button(key="FormSubmitter:privacy_keep-Keep").click().run()
    assert at.error[0].value == "Give a reason for keeping them."
    assert table_emails(at) == ["quiet@example.com"]
    next(w for w in at.text_input if w.label == "Reason to keep them").input("Alumni network")
    at.button(key="FormSubmitter:privacy_keep-Keep").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Kept 1 person;")
    assert not at.dataframe
    assert "Nobody is due" in at.info[0].value
    # A shorter period lists the recently touched person again.
    at.number_input(key="privacy_retention_days").set_value(5).run()
    assert table_emails(at) == ["touched@example.com"]


def test_bulk_erase_from_the_retention_review(users: dict[str, User], engine: Engine) -> None:
    ids = [person(engine, users, f"old{n}@example.com", f"Old{n}", age_days=900) for n in range(3)]
    at = open_page(users["admin"], "Retention review")
    assert len(table_emails(at)) == 3
    choose(at, "privacy_retention_table", [0, 2])
    button(at, "Erase the selected…").click().run()
    assert not at.exception, at.exception
    assert any("**2 people**: Old0 Lima, Old2 Lima?" in m.value for m in at.markdown)
    button(at, "Erase 2 people").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Erased 2 people")
    assert [exists(engine, cid) for cid in ids] == [False, True, False]
    assert suppressed(engine, "old0@example.com") and suppressed(engine, "old2@example.com")
    assert table_emails(at) == ["old1@example.com"]
    assert any(m.value == "**Select people to act on them**" for m in at.markdown)  # reset


# --- consent to renew -------------------------------------------------------------------


def test_consent_renewal_creates_a_static_pool(users: dict[str, User], engine: Engine) -> None:
    old = person(engine, users, "old@example.com", "Olga", age_days=400, consent="consented")
    person(engine, users, "fresh@example.com", "Fred", consent="consented")
    person(engine, users, "dnc@example.com", "Dan", age_days=400, consent="do_not_contact")
    at = open_page(users["recruiter"], "Consent to renew")
    assert table_emails(at) == ["old@example.com"]
    renew = button(at, "Start consent renewal")
    assert renew.disabled
    choose(at, "privacy_consent_table", [0])
    button(at, "Start consent renewal").click().run()
    assert not at.exception, at.exception
    name = f"Consent renewal {clock.now():%Y-%m-%d}"
    with db.read_session(engine) as session:
        pool = session.scalars(select(Pool).where(Pool.name == name)).one()
        members = list(
            session.scalars(select(PoolMember.candidate_id).where(PoolMember.pool_id == pool.id))
        )
    assert pool.kind == "static"
    assert members == [old]
    notice = at.success[0].value
    assert name.replace("-", "\\-") in notice and "campaign" in notice
    at.number_input(key="privacy_consent_days").set_value(1000).run()
    assert "Nobody is due" in at.info[0].value


def test_the_retention_list_pages_in_sql(users: dict[str, User], engine: Engine) -> None:
    for n in range(53):
        person(engine, users, f"q{n:02}@example.com", f"Q{n:02}", age_days=1000 - n)
    at = open_page(users["recruiter"], "Retention review")
    assert len(table_emails(at)) == 50
    assert table_emails(at)[0] == "q00@example.com"  # the longest quiet first
    assert any("1–50 of 53 people" in c.value for c in at.caption)
    button(at, "Next").click().run()
    assert table_emails(at) == ["q50@example.com", "q51@example.com", "q52@example.com"]
    choose(at, "privacy_retention_table_730_2", [2])
    button(at, "Erase the selected…").click().run()
    button(at, "Erase 1 person").click().run()
    assert not at.exception, at.exception
    assert table_emails(at) == ["q50@example.com", "q51@example.com"]
    assert privacy.find_by_email(engine, "q52@example.com") is None
