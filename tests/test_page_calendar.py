"""The Content calendar page under AppTest: create, open, publish, convert to a campaign."""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo

from sqlalchemy import Engine, select

from crm import candidates, clock, db, pools
from crm.content_calendar import drafts, items, occurrences
from crm.models import Activity, User
from tests.test_app import app_as

ZONE = zoneinfo.ZoneInfo("UTC")


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/calendar.py").run()
    assert not at.exception, at.exception
    return at


def a_pool(engine: Engine, users: dict[str, User]) -> int:
    for first in ("Ana", "Ben"):
        candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={"first_name": first, "last_name": "Test", "email": f"{first}@x.io",
                    "location": "London"},
        )  # fmt: skip
    return pools.save_pool(
        engine, actor=users["recruiter"], name="London", kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "London"},
    )  # fmt: skip


def item(engine: Engine, users: dict[str, User], **changes: object) -> int:
    today = clock.today()
    values = {
        "title": "Team spotlight", "channel": "linkedin_post",
        "starts_at": dt.datetime.combine(today, dt.time(10), ZONE), "pool_ids": [],
    }  # fmt: skip
    values.update(changes)
    return items.save_item(engine, actor=users["recruiter"], draft=drafts.ItemDraft(**values))


def grid_days(at) -> list[dict]:
    """The days the month grid (a component the browser draws) was given."""
    [grid] = at.get("bidi_component")
    assert grid.proto.component_name == "crm_calendar_grid"
    return json.loads(grid.proto.json)["days"]


def test_empty_month_says_what_to_do(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    assert "Nothing is planned here yet" in at.info[0].value


def test_new_item_from_the_dialog_appears_on_the_grid(
    users: dict[str, User], engine: Engine
) -> None:
    at = open_page(users["recruiter"])
    [new] = [b for b in at.button if b.label == "New item"]
    new.click().run()
    assert not at.exception, at.exception
    at.text_input[0].input("<b>Hiring</b> update")
    [add] = [b for b in at.button if b.label == "Add to the calendar"]
    add.click().run()
    assert not at.exception, at.exception
    assert "Added '<b>Hiring</b> update' to the calendar." in at.success[0].value
    # On the grid as a chip: the grid gets the title as data, which the browser shows as
    # text (tests/e2e/test_calendar.py checks it stays inert there).
    [today] = [day for day in grid_days(at) if day["today"]]
    [chip] = today["chips"]
    assert chip["text"].endswith("<b>Hiring</b> update")
    assert chip["colour"] == "orange" and not chip["published"]  # an email newsletter
    # The week view's chips are clickable and open the item.
    at.segmented_control(key="cal_view").set_value("Week").run()
    [pills] = [
        p
        for p in at.get("button_group")
        if p.proto.options and "Hiring" in p.proto.options[0].content
    ]
    assert pills is not None


def test_month_grid_shows_five_chips_a_day_then_how_many_more(
    users: dict[str, User], engine: Engine
) -> None:
    today = clock.today()
    for hour in range(8, 15):
        item(engine, users, title=f"Post at {hour}",
             starts_at=dt.datetime.combine(today, dt.time(hour), ZONE))  # fmt: skip
    item(engine, users, title="Done", channel="sms", status="published",
         starts_at=dt.datetime.combine(today, dt.time(20), ZONE))  # fmt: skip
    at = open_page(users["recruiter"])
    days = grid_days(at)
    assert len(days) % 7 == 0 and 28 <= len(days) <= 42  # whole weeks, Monday first
    assert dt.date.fromisoformat(days[0]["date"]).weekday() == 0
    first = today.replace(day=1)
    days_in_month = ((first + dt.timedelta(days=32)).replace(day=1) - first).days
    month = [dt.date.fromisoformat(d["date"]) for d in days if not d["muted"]]
    assert month == [first + dt.timedelta(days=n) for n in range(days_in_month)]
    [this_day] = [d for d in days if d["today"]]
    assert [c["text"] for c in this_day["chips"]] == [
        f"{hour:02d}:00 Post at {hour}" for hour in range(8, 13)
    ]
    assert this_day["more"] == 3  # two more posts and the published SMS
    # No day is listed until its "+3 more" is clicked in the grid (in the browser: see
    # tests/e2e/test_calendar.py), which stores the day.
    assert not [p for p in at.get("button_group") if str(p.key).startswith("cal_picked_")]
    at.session_state["cal_day"] = today
    at.run()
    assert not at.exception, at.exception
    # Listed under the grid, every item of the day is a clickable chip.
    [pills] = [p for p in at.get("button_group") if p.key == f"cal_picked_{today}"]
    assert len(pills.proto.options) == 8
    assert ":material/check:" in pills.proto.options[-1].content
    at.button(key="cal_day_close").click().run()
    assert not [p for p in at.get("button_group") if str(p.key).startswith("cal_picked_")]


def test_an_item_without_a_title_is_refused(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    [new] = [b for b in at.button if b.label == "New item"]
    new.click().run()
    [add] = [b for b in at.button if b.label == "Add to the calendar"]
    add.click().run()
    assert at.error, "a missing title must be refused"
    assert (
        occurrences.occurrences_between(
            engine,
            start=clock.now() - dt.timedelta(days=40),
            end=clock.now() + dt.timedelta(days=40),
        )
        == []
    )


def test_open_and_mark_published_logs_on_timelines(users: dict[str, User], engine: Engine) -> None:
    pool_id = a_pool(engine, users)
    item_id = item(engine, users, pool_ids=[pool_id])
    at = open_page(users["recruiter"])
    at.session_state["cal_dialog"] = ("open", item_id, clock.today().isoformat())
    at.run()
    assert not at.exception, at.exception
    [publish] = [b for b in at.button if b.label == "Mark published"]
    publish.click().run()
    assert not at.exception, at.exception
    assert "logged on 2 timelines" in at.success[0].value
    with db.read_session(engine) as session:
        assert (
            len(session.scalars(select(Activity).where(Activity.kind == "touchpoint")).all()) == 2
        )


def test_email_item_becomes_a_campaign(users: dict[str, User], engine: Engine) -> None:
    pool_id = a_pool(engine, users)
    item_id = item(
        engine, users, title="November newsletter", channel="email_newsletter",
        pool_ids=[pool_id], body="What we are building",
    )  # fmt: skip
    at = open_page(users["recruiter"])
    at.session_state["cal_dialog"] = ("open", item_id, clock.today().isoformat())
    at.run()
    [create] = [b for b in at.button if b.label == "Create campaign"]
    create.click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Campaigns"
    # AppTest reruns the page the test chose; a browser stays where st.switch_page went.
    at.switch_page("app_pages/campaigns.py").run()
    assert at.text_input(key="compose_name").value == "November newsletter"
    assert at.selectbox(key="compose_pool").value == pool_id
    assert at.text_area(key="cstep_0_body").value == "What we are building"
    at.text_input(key="cstep_0_subject").input("News from us")
    [save] = [b for b in at.button if b.label == "Save draft"]
    save.click().run()
    assert not at.exception, at.exception
    assert not at.error, at.error[0].value
    assert "Saved" in at.success[0].value
    assert items.get_item(engine, item_id).campaign_id is not None


def test_manager_sees_the_calendar_read_only(users: dict[str, User], engine: Engine) -> None:
    item_id = item(engine, users)
    at = open_page(users["manager"])
    assert not [b for b in at.button if b.label == "New item"]
    at.session_state["cal_dialog"] = ("open", item_id, clock.today().isoformat())
    at.run()
    assert not at.exception, at.exception
    assert [b for b in at.button if b.label == "Save"][0].disabled
    assert not [b for b in at.button if b.label in ("Mark published", "Delete…", "Duplicate")]


def test_a_pool_that_cannot_be_counted_is_marked_and_the_calendar_works(
    users: dict[str, User], engine: Engine
) -> None:
    """A pool saved before the filter limits (SQLite cannot run its 100,000-character
    value) used to take the whole calendar down with it."""
    from crm.models import Pool

    a_pool(engine, users)
    with db.write_session(engine) as session:
        session.add(
            Pool(name="Huge", kind="dynamic",
                 filter={"field": "title", "op": "contains", "value": "x" * 100_000})
        )  # fmt: skip
    item(engine, users, title="Still planned")
    at = open_page(users["recruiter"])
    assert at.selectbox(key="cal_pool").options == [
        "All pools", "Huge (broken: cannot be counted)", "London"
    ]  # fmt: skip
    [this_day] = [day for day in grid_days(at) if day["today"]]
    assert [chip["text"] for chip in this_day["chips"]] == ["10:00 Still planned"]
