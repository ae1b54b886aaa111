"""The Talent pools page under AppTest: building and saving a pool, stages, managers."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, select

from crm import candidates, db, pool_board, pools
from crm.models import Pool, User
from tests.test_app import app_as


def people(engine: Engine, users: dict[str, User]) -> dict[str, int]:
    made = {}
    for first, skills, location in (
        ("Ana", "python, aws", "London"),
        ("Ben", "python", "Berlin"),
        ("Cy", "go", "London"),
    ):
        made[first] = candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={
                "first_name": first,
                "last_name": "Test",
                "email": f"{first.lower()}@x.io",
                "skills": skills,
                "location": location,
            },
        ).id
    return made


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/pools.py").run()
    assert not at.exception, at.exception
    return at


def test_empty_page_says_what_to_do(users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    assert "no talent pools yet" in at.info[0].value


def test_build_count_live_and_save_a_dynamic_pool(users: dict[str, User], engine: Engine) -> None:
    people(engine, users)
    at = open_page(users["recruiter"])
    at.segmented_control(key="pools_view").set_value("Build a pool").run()
    assert not at.exception, at.exception
    # One blank condition: everyone matches until it has a value.
    assert at.metric[0].value == "3"
    at.selectbox(key="pb_1_field").set_value("skills").run()
    at.selectbox(key="pb_1_op").set_value("has_any").run()
    at.multiselect(key="pb_1_list").set_value(["python"]).run()
    assert not at.exception, at.exception
    assert at.metric[0].value == "2"
    # AND an OR group: London, or remote.
    next(b for b in at.button if b.label == "Add an OR group").click().run()
    at.selectbox(key="pb_3_field").set_value("location").run()
    at.multiselect(key="pb_3_list").set_value(["London"]).run()
    assert at.metric[0].value == "1"
    assert at.dataframe[0].value["Name"].tolist() == ["Ana Test"]
    form_inputs = {w.label: w for w in at.text_input}
    form_inputs["Pool name"].input("Python in London")
    at.button(key="FormSubmitter:pool_save-Save pool").click().run()
    assert not at.exception, at.exception
    assert "Saved the pool Python in London" in at.success[0].value
    with db.read_session(engine) as session:
        pool = session.scalars(select(Pool)).one()
    assert pool.kind == "dynamic"
    assert pool.filter == {
        "all": [
            {"field": "skills", "op": "has_any", "value": ["python"]},
            {"any": [{"field": "location", "op": "in", "value": ["London"]}]},
        ]
    }
    # It stays current: someone added later is in it.
    candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={"first_name": "Di", "email": "di@x.io", "skills": "python", "location": "london"},
    )
    assert pools.preview_filter(engine, pool.filter).count == 2


def test_a_bad_value_is_one_sentence_and_nothing_is_saved(
    users: dict[str, User], engine: Engine
) -> None:
    at = open_page(users["recruiter"])
    at.segmented_control(key="pools_view").set_value("Build a pool").run()
    at.text_area(key="pools_json_text").input(
        '{"all": [{"field": "salary", "op": "gte", "value": 1}]}'
    ).run()
    next(b for b in at.button if b.label == "Use this filter").click().run()
    assert not at.exception, at.exception
    assert "Unknown filter field 'salary'" in at.error[0].value
    with db.read_session(engine) as session:
        assert session.scalar(select(Pool.id)) is None


def test_save_a_static_list_from_the_people_matching(
    users: dict[str, User], engine: Engine
) -> None:
    made = people(engine, users)
    at = open_page(users["recruiter"])
    at.segmented_control(key="pools_view").set_value("Build a pool").run()
    at.selectbox(key="pb_1_field").set_value("location").run()
    at.multiselect(key="pb_1_list").set_value(["London"]).run()
    {w.label: w for w in at.text_input}["Pool name"].input("London list")
    at.radio(key="pools_save_kind").set_value("static")
    at.button(key="FormSubmitter:pool_save-Save pool").click().run()
    assert not at.exception, at.exception
    assert "with 2 people" in at.success[0].value
    pool_id = pools.pool_id_by_name(engine, "London list")
    assert pool_id is not None
    assert pools.member_ids(engine, pool_id) == sorted([made["Ana"], made["Cy"]])


def test_stages_board_moves_people(users: dict[str, User], engine: Engine) -> None:
    made = people(engine, users)
    pool_id = pools.save_pool(
        engine,
        actor=users["recruiter"],
        name="Pythonistas",
        kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["python"]},
    )
    at = open_page(users["recruiter"])
    at.session_state["pools_selected"] = pool_id
    at.run()
    assert "This pool has no stages yet" in at.info[0].value
    at.button(key=f"FormSubmitter:stages_{pool_id}-Save stages").click().run()
    assert not at.exception, at.exception
    assert "Saved 5 stages" in at.success[0].value
    mover = next(m for m in at.multiselect if m.label == "Move people")
    mover.set_value([made["Ben"]])
    next(s for s in at.selectbox if s.label == "to stage").set_value("Interested")
    at.button(key=f"FormSubmitter:move_{pool_id}-Move").click().run()
    assert not at.exception, at.exception
    assert "Moved 1 to Interested" in at.success[0].value
    board = pool_board.board(engine, pool_id)
    assert board.counts["Interested"] == 1 and board.counts["New"] == 1
    timeline = candidates.timeline(engine, made["Ben"])
    assert timeline[0].summary == "Pythonistas: moved from New to Interested"


def test_managers_see_pools_but_cannot_change_them(users: dict[str, User], engine: Engine) -> None:
    people(engine, users)
    pools.save_pool(
        engine,
        actor=users["recruiter"],
        name="Everyone",
        kind="dynamic",
        filter_json={"all": []},
    )
    at = open_page(users["manager"])
    assert at.dataframe[0].value["Pool"].tolist() == ["Everyone"]
    at.segmented_control(key="pools_view").set_value("Build a pool").run()
    assert not at.exception, at.exception
    assert not [b for b in at.button if "pool_save" in str(b.key)]


def test_a_pool_that_cannot_be_counted_is_shown_as_broken_and_the_page_still_works(
    users: dict[str, User], engine: Engine
) -> None:
    """A pool saved before the limits (a 100,000-character value SQLite cannot run) is
    listed as broken with the reason; the list, its detail, the builder and the other
    pools keep working."""
    people(engine, users)
    pools.save_pool(
        engine, actor=users["recruiter"], name="Python", kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["python"]},
    )  # fmt: skip
    with db.write_session(engine) as session:
        broken = Pool(
            name="Huge", kind="dynamic", stages=["New", "Contacted"],
            filter={"field": "title", "op": "contains", "value": "x" * 100_000},
        )  # fmt: skip
        session.add(broken)
        session.flush()
        broken_id = broken.id
    reason = "A text value in a filter can be at most 200 characters."
    at = open_page(users["recruiter"])
    assert f"Huge: {reason}" in [w.value.replace("\\", "") for w in at.warning]
    table = at.dataframe[0].value
    sizes = dict(zip(table["Pool"], table["People"], strict=True))
    assert sizes["Python"] == 2 and pd.isna(sizes["Huge"])
    at.session_state["pools_selected"] = broken_id
    at.run()
    assert not at.exception, at.exception
    assert "cannot be counted" in at.caption[0].value
    assert [w.value.replace("\\", "") for w in at.warning].count(reason) >= 2  # detail, board
    at.segmented_control(key=f"pool_part_{broken_id}").set_value("Members").run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Edit filter").click().run()
    assert not at.exception, at.exception
    assert "breaks a limit" in at.info[0].value
    assert reason in [e.value for e in at.error]
    at.segmented_control(key="pools_view").set_value("Overlap").run()
    assert not at.exception, at.exception


def test_a_filter_over_a_limit_pasted_as_json_is_one_sentence(
    users: dict[str, User], engine: Engine
) -> None:
    at = open_page(users["recruiter"])
    at.segmented_control(key="pools_view").set_value("Build a pool").run()
    pasted = {
        '{"all": [' * 600 + '{"field": "remote", "op": "eq", "value": true}' + "]}" * 600: (
            "Filter groups can nest at most 10 levels deep."
        ),
        '{"field": "title", "op": "contains", "value": "' + "x" * 100_000 + '"}': (
            "A text value in a filter can be at most 200 characters."
        ),
        '{"field": "years_experience", "op": "gte", "value": NaN}': (
            "A number in a filter must be a real number, not NaN or Infinity."
        ),
    }
    for text, sentence in pasted.items():
        at.text_area(key="pools_json_text").input(text).run()
        next(b for b in at.button if b.label == "Use this filter").click().run()
        assert not at.exception, at.exception
        assert sentence in [e.value for e in at.error]
    with db.read_session(engine) as session:
        assert session.scalar(select(Pool.id)) is None


def test_last_touch_in_the_list_and_on_the_pools_own_page(
    users: dict[str, User], engine: Engine
) -> None:
    """The same last touch as Home and `crm pool list`: A's campaign 40 days ago (not
    Ana's contact yesterday by another campaign), B's published content 3 days ago."""
    from tests.test_attention import touched_pools

    made = touched_pools(engine)
    at = open_page(users["manager"])
    table = at.dataframe[0].value
    assert "Last touched" not in table.columns
    assert dict(zip(table["Pool"], table["Last touch"], strict=True)) == {
        "AWS experts": "40 days ago",
        "Senior backend engineers": "3 days ago",
    }
    for name, shown in (("A", "40 days ago"), ("B", "3 days ago")):
        at.session_state["pools_selected"] = made[name]
        at.run()
        assert not at.exception, at.exception
        [about] = [c.value for c in at.caption if "hire(s) from it" in c.value]
        assert about.endswith(f" · last touch {shown}")
