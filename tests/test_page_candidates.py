"""The Candidates page under AppTest: search, the add dialog, selection and bulk actions."""

from __future__ import annotations

from sqlalchemy import Engine

from crm import candidates, db
from crm.models import Pool, User
from tests.test_app import app_as


def people(engine: Engine, users: dict[str, User], n: int = 3) -> list[int]:
    return [
        candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={
                "first_name": f"Person{i}",
                "last_name": "Test",
                "email": f"p{i}@x.io",
                "skills": "python" if i % 2 else "go",
            },
        ).id
        for i in range(n)
    ]


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/candidates.py").run()
    assert not at.exception
    return at


def test_empty_database_says_what_to_do(users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    assert "The database is empty" in at.info[0].value


def test_add_candidate_dialog_validates_and_saves(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    next(b for b in at.button if b.label == "Add candidate").click().run()
    inputs = {w.label: w for w in at.text_input}
    inputs["First name"].input("Ana")
    inputs["Email"].input("not an email")
    at.button(key="FormSubmitter:add_candidate-Add candidate").click().run()
    assert not at.exception
    assert "not a valid email address" in at.error[0].value
    assert candidates.count(engine) == 0
    inputs = {w.label: w for w in at.text_input}
    inputs["Email"].input("ana@example.com")
    inputs["Skills"].input("Python, SQL")
    at.button(key="FormSubmitter:add_candidate-Add candidate").click().run()
    assert not at.exception
    assert at.success[0].value == "Added Ana."
    assert candidates.count(engine) == 1
    assert at.dataframe[0].value.name.tolist() == ["Ana"]


def test_search_and_filters_run_in_sql(users: dict[str, User], engine: Engine) -> None:
    people(engine, users, 5)
    at = open_page(users["recruiter"])
    assert len(at.dataframe[0].value) == 5
    at.text_input(key="candidates_search").input("python").run()
    assert len(at.dataframe[0].value) == 2
    at.text_input(key="candidates_search").input("'; drop table candidates; --").run()
    assert not at.exception and "Nobody matches" in at.info[0].value
    at.text_input(key="candidates_search").input("").run()
    at.selectbox(key="cand_contacted").select("never").run()
    assert len(at.dataframe[0].value) == 5


def test_bulk_tag_and_add_to_pool_for_selected_rows(users: dict[str, User], engine: Engine) -> None:
    ids = people(engine, users, 3)
    with db.write_session(engine) as session:
        session.add(Pool(name="Shortlist", kind="static"))
    at = open_page(users["recruiter"])
    at.session_state["candidates_table"] = {"selection": {"rows": [0, 2], "columns": []}}
    at.run()
    assert any(m.value == "**2 selected**" for m in at.markdown)
    tags = next(w for w in at.text_input if w.label == "Tags to add")
    tags.input("alumni").run()
    next(b for b in at.button if b.label == "Add tags").click().run()
    assert not at.exception
    assert at.success[0].value == "Tagged 2 candidate(s)."
    tagged = {
        cid
        for cid in ids
        if any(t.tag == "alumni" for t in candidates.get_candidate(engine, cid).tags)
    }
    assert len(tagged) == 2


def test_manager_sees_bulk_actions_disabled(users: dict[str, User], engine: Engine) -> None:
    people(engine, users, 2)
    at = open_page(users["manager"])
    assert next(b for b in at.button if b.label == "Add candidate").disabled
    at.session_state["candidates_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    for label in ("Add tags", "Assign owner", "Delete…"):
        assert next(b for b in at.button if b.label == label).disabled, label


def test_a_search_of_fifty_thousand_characters_leaves_the_page_working(
    users: dict[str, User], engine: Engine
) -> None:
    people(engine, users, 3)
    at = open_page(users["recruiter"])
    at.text_input(key="candidates_search").input("a" * 50_001).run()
    assert not at.exception, at.exception
    assert at.warning[0].value.startswith("A search can be at most")
    assert not at.info  # not "Nobody matches": the search itself was refused
    at.text_input(key="candidates_search").input("python").run()
    assert not at.exception and len(at.dataframe[0].value) == 1
