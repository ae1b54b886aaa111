"""The profile page under AppTest: edits, the edit conflict, touchpoints, read-only managers."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crm import candidates
from crm.models import User
from tests.test_app import app_as
from tests.test_page_privacy import spy_downloads


def open_profile(user: User, candidate_id: int):
    at = app_as(user).run()
    at.query_params["id"] = str(candidate_id)
    at.switch_page("app_pages/profile.py").run()
    assert not at.exception
    return at


def make_ana(engine: Engine, users: dict[str, User]) -> int:
    return candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": "Ana",
            "last_name": "Lima",
            "email": "ana@example.com",
            "title": "<script>alert(1)</script>",
        },
    ).id


def text_input(at, label: str):
    return next(w for w in at.text_input if w.label == label)


def save(at) -> None:
    next(b for b in at.button if b.label == "Save changes").click().run()


def test_profile_shows_fields_as_text_and_saves_an_edit(
    users: dict[str, User], engine: Engine
) -> None:
    cid = make_ana(engine, users)
    at = open_profile(users["recruiter"], cid)
    assert at.title[0].value == "Ana Lima"
    assert text_input(at, "Title").value == "<script>alert(1)</script>"  # kept as text
    text_input(at, "Company").input("Acme")
    save(at)
    assert not at.exception
    assert at.success[0].value == "Saved."
    assert candidates.get_candidate(engine, cid).company == "Acme"


def test_edit_conflict_keeps_the_second_recruiters_input(
    users: dict[str, User], engine: Engine
) -> None:
    cid = make_ana(engine, users)
    at = open_profile(users["recruiter"], cid)
    text_input(at, "Company").input("Beta Ltd")
    # Meanwhile the admin saves the same candidate.
    current = candidates.get_candidate(engine, cid)
    candidates.update_candidate(
        engine,
        actor=users["admin"],
        candidate_id=cid,
        expected_version=current.version,
        fields={"title": "Staff engineer"},
    )
    save(at)
    assert not at.exception
    assert "changed by Ada Admin at" in at.error[0].value
    assert text_input(at, "Company").value == "Beta Ltd"  # the input is still there
    assert candidates.get_candidate(engine, cid).company is None  # nothing written
    next(b for b in at.button if b.label.startswith("Discard my changes")).click().run()
    assert text_input(at, "Title").value == "Staff engineer"  # the latest version
    assert any("Beta Ltd" in m.value for m in at.markdown)  # shown to reapply
    text_input(at, "Company").input("Beta Ltd")
    save(at)
    assert candidates.get_candidate(engine, cid).company == "Beta Ltd"
    assert candidates.get_candidate(engine, cid).title == "Staff engineer"


def test_log_a_touchpoint(users: dict[str, User], engine: Engine) -> None:
    cid = make_ana(engine, users)
    at = open_profile(users["recruiter"], cid)
    at.text_area[0].input("Called about the platform role")
    next(b for b in at.button if b.label == "Log it").click().run()
    assert not at.exception
    fresh = candidates.get_candidate(engine, cid)
    assert fresh.last_contact_channel == "call"
    assert any("Called about the platform role" in m.value for m in at.markdown)


def test_manager_cannot_save(users: dict[str, User], engine: Engine) -> None:
    cid = make_ana(engine, users)
    at = open_profile(users["manager"], cid)
    for label in ("Save changes", "Log it", "Set reminder"):
        assert next(b for b in at.button if b.label == label).disabled, label


def test_missing_candidate(users: dict[str, User], engine: Engine) -> None:
    at = open_profile(users["recruiter"], 12345)
    assert "does not exist" in at.warning[0].value


def test_mark_a_reply_by_hand(users: dict[str, User], engine: Engine) -> None:
    person = make_ana(engine, users)
    at = open_profile(users["recruiter"], person)
    [button] = [b for b in at.button if b.label == "Mark interested"]
    button.click().run()
    assert not at.exception
    assert "Marked as interested." in at.success[0].value
    kinds = [entry.kind for entry in candidates.timeline(engine, person)]
    assert kinds.count("email_reply") == 1 and kinds.count("email_interested") == 1
    manager = open_profile(users["manager"], person)
    assert [b for b in manager.button if b.label == "Mark interested"][0].disabled


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict:
    return spy_downloads(monkeypatch)


def test_privacy_section_records_the_basis_and_erases(
    users: dict[str, User], engine: Engine, downloads: dict
) -> None:
    from sqlalchemy import select

    from crm import db
    from crm.identity import address_hash
    from crm.models import Suppression

    cid = make_ana(engine, users)
    at = open_profile(users["recruiter"], cid)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Download everything we hold (JSON)", "Download everything we hold (CSV)"]
    assert '"ana@example.com"' in downloads[f"candidate-{cid}-data.json"]().decode()
    at.selectbox(key=f"profile_{cid}_basis").select("consented")
    text_input(at, "Where it came from").input("Signed up at the March meetup")
    next(b for b in at.button if b.label == "Record the basis").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Recorded the lawful basis: Consented."
    fresh = candidates.get_candidate(engine, cid)
    assert (fresh.consent_status, fresh.consent_source) == (
        "consented",
        "Signed up at the March meetup",
    )
    text_input(at, "Company").input("Acme")  # the edit form follows the new version
    save(at)
    assert candidates.get_candidate(engine, cid).company == "Acme"

    next(b for b in at.button if b.label == "Erase this person…").click().run()
    assert any("never emailed again" in m.value for m in at.markdown)
    assert candidates.get_candidate(engine, cid) is not None
    next(b for b in at.button if b.label == "Erase permanently").click().run()
    assert not at.exception, at.exception
    assert candidates.get_candidate(engine, cid) is None
    with db.read_session(engine) as session:
        assert session.scalar(
            select(Suppression.id).where(
                Suppression.address_hash == address_hash("ana@example.com")
            )
        )
    assert at.title[0].value == "Candidates"
    assert at.success[0].value.startswith("Erased: personal data removed")


def test_a_manager_gets_no_privacy_section(users: dict[str, User], engine: Engine) -> None:
    cid = make_ana(engine, users)
    at = open_profile(users["manager"], cid)
    assert not at.get("download_button")
    assert not any(b.label in ("Erase this person…", "Record the basis") for b in at.button)
    assert not any(e.label == "Privacy" for e in at.expander)
    recruiter = open_profile(users["recruiter"], cid)
    assert any(e.label == "Privacy" for e in recruiter.expander)


def test_profile_shows_the_last_touch_then_the_last_contact(
    users: dict[str, User], engine: Engine
) -> None:
    """Last touch = the later of last contacted (10 days ago) and last engaged (2 days
    ago), the same rule as the privacy retention list (crm.touches)."""
    import datetime as dt

    from crm import clock, db
    from crm.models import Candidate

    cid = make_ana(engine, users)

    def schedule_line(at) -> str:
        [line] = [m.value for m in at.markdown if m.value.startswith(":material/schedule:")]
        return line.replace("\\", "")

    at = open_profile(users["recruiter"], cid)
    assert schedule_line(at) == ":material/schedule: Last touch never · never contacted"
    with db.write_session(engine) as session:
        ana = session.get(Candidate, cid)
        ana.last_contacted_at = clock.now() - dt.timedelta(days=10)
        ana.last_contacted_by_id = users["recruiter"].id
        ana.last_contact_channel = "phone"
        ana.last_engaged_at = clock.now() - dt.timedelta(days=2)
    at = open_profile(users["recruiter"], cid)
    assert schedule_line(at) == (
        ":material/schedule: Last touch 2 days ago · last contacted 10 days ago by "
        f"{users['recruiter'].display_name} (phone)"
    )
