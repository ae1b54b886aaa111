"""The Audit log page under AppTest: filters, paging newest first, the CSV download, and
that only admins get in."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from app_pages import common
from crm import candidates, clock, privacy
from crm.models import User
from tests.conftest import PROJECT_ROOT
from tests.test_app import app_as
from tests.test_page_privacy import spy_downloads

PAGE = "app_pages/audit.py"


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict:
    return spy_downloads(monkeypatch)


def open_page(user: User) -> AppTest:
    at = app_as(user).run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def add_people(engine: Engine, users: dict[str, User], n: int) -> list[int]:
    return [
        candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={"first_name": f"P{i}", "email": f"p{i}@example.com"},
        ).id
        for i in range(n)
    ]


def test_admin_filters_by_action_and_downloads_the_csv(
    users: dict[str, User], engine: Engine, downloads: dict
) -> None:
    ids = add_people(engine, users, 3)
    privacy.erase(engine, actor=users["admin"], candidate_id=ids[1])
    at = open_page(users["admin"])
    assert at.title[0].value == "Audit log"
    every = at.dataframe[0].value
    assert {"user.create", "candidate.create", "candidate.erase"} <= set(every["action"])
    assert list(every["when"]) == sorted(every["when"], reverse=True)  # newest first

    at.selectbox(key="audit_action").select("candidate.erase").run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value
    assert list(shown["action"]) == ["candidate.erase"]
    assert list(shown["who"]) == ["admin"]
    assert list(shown["entity"]) == [f"candidate #{ids[1]}"]
    assert "messages_cancelled: 0" in shown["details"][0]

    at.selectbox(key="audit_action").select("candidate").run()  # the whole family
    assert set(at.dataframe[0].value["action"]) == {"candidate.create", "candidate.erase"}
    assert len(at.dataframe[0].value) == 4
    at.text_input(key="audit_username").input("admin").run()
    assert list(at.dataframe[0].value["action"]) == ["candidate.erase"]

    [button] = at.get("download_button")
    assert button.proto.label == "Download this entry (CSV)"
    [name] = [n for n in downloads if n.startswith("audit-log-")]
    lines = downloads[name]().decode("utf-8-sig").splitlines()
    assert lines[0] == "at,username,action,entity,entity_id,detail"
    assert len(lines) == 2 and ",admin,candidate.erase,candidate," in lines[1]


def test_dates_filter_and_a_bad_period_gets_a_sentence(
    users: dict[str, User], engine: Engine
) -> None:
    add_people(engine, users, 1)
    at = open_page(users["admin"])
    today = clock.today()
    at.date_input(key="audit_until").set_value(today - dt.timedelta(days=3)).run()
    assert not at.exception, at.exception
    assert "No entries match these filters" in at.info[0].value
    at.date_input(key="audit_since").set_value(today - dt.timedelta(days=1)).run()
    assert at.error[0].value == "The period ends before it starts."
    at.date_input(key="audit_until").set_value(today).run()
    assert len(at.dataframe[0].value) > 0


def test_paging_goes_through_the_log(users: dict[str, User], engine: Engine) -> None:
    add_people(engine, users, 55)  # with the three users: 58 entries
    at = open_page(users["admin"])
    assert len(at.dataframe[0].value) == 50
    assert any("1–50 of 58 entries" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "Next").click().run()
    assert len(at.dataframe[0].value) == 8
    assert list(at.dataframe[0].value["action"]).count("user.create") == 3


@pytest.mark.parametrize("role", ["recruiter", "manager"])
def test_only_admins_get_in(users: dict[str, User], engine: Engine, role: str) -> None:
    at = app_as(users[role]).run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)
    page = AppTest.from_file(str(PROJECT_ROOT / PAGE), default_timeout=60)
    page.session_state[common.CURRENT_USER_KEY] = users[role]
    page.run()
    assert not page.exception, page.exception
    assert page.error[0].value == "Only an admin can open the audit log."
    assert not page.dataframe and not page.get("download_button") and not page.selectbox
