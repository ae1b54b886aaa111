"""The Goals & ROI page under AppTest: cards and charts equal the services, goals, managers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Engine, func, select

from crm import candidates, clock, db, goals, jobs, metrics, pool_yield
from crm.models import Goal, User
from tests.test_app import app_as


def days_ago(n: int) -> dt.datetime:
    return dt.datetime.combine(clock.today() - dt.timedelta(days=n), dt.time(12), dt.UTC)


def hiring(engine: Engine, users: dict[str, User]) -> dict[str, int]:
    """Two jobs filled, one offer declined, three costs, all in the last 90 days."""
    actor = users["recruiter"]
    people = {
        first: candidates.create_candidate(
            engine,
            actor=actor,
            fields={"first_name": first, "last_name": "Test", "email": f"{first.lower()}@x.io"},
        ).id
        for first in ("Ana", "Ben", "Cy")
    }
    backend = jobs.create_job(
        engine,
        actor=actor,
        title="Backend Engineer",
        role_family="Software Engineering",
        key_role=True,
        opened_at=clock.today() - dt.timedelta(days=60),
    )
    analyst = jobs.create_job(
        engine,
        actor=actor,
        title="Data Analyst",
        role_family="Data & Analytics",
        opened_at=clock.today() - dt.timedelta(days=70),
    )
    ana = jobs.add_application(
        engine, actor=actor, job_id=backend, candidate_id=people["Ana"], source="talent_pool",
        at=days_ago(50),
    )  # fmt: skip
    jobs.move_stage(engine, actor=actor, application_id=ana, stage="offer", at=days_ago(30))
    jobs.move_stage(engine, actor=actor, application_id=ana, stage="hired", at=days_ago(21))
    ben = jobs.add_application(
        engine, actor=actor, job_id=analyst, candidate_id=people["Ben"], source="agency",
        at=days_ago(65),
    )  # fmt: skip
    jobs.move_stage(engine, actor=actor, application_id=ben, stage="offer", at=days_ago(40))
    jobs.move_stage(engine, actor=actor, application_id=ben, stage="hired", at=days_ago(34))
    cy = jobs.add_application(
        engine, actor=actor, job_id=backend, candidate_id=people["Cy"], source="job_board",
        at=days_ago(45),
    )  # fmt: skip
    jobs.record_offer(engine, actor=actor, application_id=cy, accepted=None, at=days_ago(31))
    jobs.record_offer(engine, actor=actor, application_id=cy, accepted=False, at=days_ago(28))
    for amount, category, ago in (("5000", "agency_fees", 35), ("500.50", "job_ads", 40),
                                  ("1000", "tools", 10)):  # fmt: skip
        jobs.add_cost(
            engine,
            actor=actor,
            amount=Decimal(amount),
            category=category,
            incurred_on=clock.today() - dt.timedelta(days=ago),
        )
    return {"backend": backend, "analyst": analyst}


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/goals.py").run()
    assert not at.exception, at.exception
    return at


def chart_frames(at) -> dict[str, pd.DataFrame]:
    """Each Altair chart's data, named by a field only that chart encodes."""
    found = {}
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        name = next(
            (n for n in ("facet", "step", "source", "measured_to") if f'"{n}"' in chart.proto.spec),
            "other",
        )
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
        # A layered chart sends a dataset per layer: keep the one with the named field.
        frames = [f for f in frames if name in f.columns] or frames
        found[name] = frames[0]
        assert spec
    return found


def open_section(at, title: str):
    """Open one of the page's tabs (lazy: only the open one runs)."""
    at.session_state["goals_section"] = title
    at.run()
    assert not at.exception, at.exception
    return at


def main_buttons(at) -> list:
    return list(at.main.button)


def test_manager_reads_cards_and_charts_equal_to_the_services(
    users: dict[str, User], engine: Engine
) -> None:
    hiring(engine, users)
    at = open_page(users["manager"])
    assert "read-only access" in at.caption[0].value
    assert main_buttons(at) == []  # nothing writable: no goal buttons, no dialogs
    start, end = clock.today() - dt.timedelta(days=89), clock.today()
    report = metrics.compute(engine, start=start, end=end)
    assert not at.metric and not at.get("vega_lite_chart")  # the Goals tab opens first
    open_section(at, "Metrics")
    cards = {m.label: m.value for m in at.metric}
    for metric in (
        "time_to_fill_days",
        "time_to_hire_days",
        "cost_per_hire",
        "offer_acceptance_rate",
        "hires",
        "hires_from_talent_pools_share",
        "reply_rate",
        "campaign_application_rate",
    ):
        assert cards[metrics.METRICS[metric].label] == common_format(metric, report.value(metric))
    assert cards["Hires"] == "2"
    assert cards["Cost per hire"] == "3,250 USD"  # (5000 + 500.50 + 1000) / 2
    assert cards["Reply rate"] == "no data"
    charts = chart_frames(at)
    trends = charts["facet"]
    for metric in ("time_to_hire_days", "cost_per_hire", "offer_acceptance_rate"):
        label = metrics.METRICS[metric].label
        shown = trends[trends["facet"].str.startswith(label)]["value"].tolist()
        expected = [
            v * 100 if metrics.METRICS[metric].unit == "fraction" else v
            for _, v in metrics.monthly(engine, metric=metric, start=start, end=end)
            if v is not None
        ]
        assert shown == pytest.approx(expected, rel=1e-12)
    open_section(at, "Funnel & source of hire")
    charts = chart_frames(at)
    sources = charts["source"].set_index("source")["share"].to_dict()
    assert sources == {"Talent pool": 0.5, "Agency": 0.5}
    assert sources == {
        metrics.SOURCE_LABELS[s]: share for s, share in report.source_of_hire.items()
    }
    # Ana's hire (source talent pool) is in every funnel step though no pool exists now,
    # as in Savings: CSV and PNG of both charts.
    assert chart_frames(at)["step"]["people"].tolist() == [1, 1, 1, 1, 1]
    assert len(at.get("download_button")) == 4
    open_section(at, "Savings")
    saved = pool_yield.savings(engine, start=start, end=end)
    cards = {m.label: m.value for m in at.metric}
    assert cards["Net savings"] == f"{saved['net_savings']:,.0f} USD"
    assert [b.label for b in at.get("download_button")] == ["CSV"]
    assert main_buttons(at) == []


def common_format(metric: str, value: float | None) -> str:
    from app_pages import common

    return common.format_value(metric, value)


def test_empty_page_says_what_to_do(users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    assert "No goals yet. Set one with **New goal**" in at.info[0].value
    open_section(at, "Metrics")
    assert "Record jobs, hires and costs on the Jobs page" in at.info[0].value
    assert all(m.value in {"no data", "0"} for m in at.metric[:8])
    open_section(at, "Funnel & source of hire")
    infos = " ".join(i.value for i in at.info)
    assert "No one is in a talent pool yet" in infos
    assert "No hires in this period" in infos
    manager = open_page(users["manager"])
    assert "An admin or a recruiter sets them" in manager.info[0].value


def open_new_goal(at):
    next(b for b in at.button if b.label == "New goal").click().run()
    assert not at.exception, at.exception
    assert at.text_input(key="goal_title")
    return at


def save_goal(at):
    next(b for b in at.button if b.label == "Save goal").click().run()
    assert not at.exception, at.exception
    return at


def goal_count(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Goal))


def test_create_a_goal_through_the_dialog_and_see_its_status(
    users: dict[str, User], engine: Engine
) -> None:
    hiring(engine, users)
    at = open_new_goal(open_page(users["recruiter"]))
    at.text_input(key="goal_title").input("Two hires this quarter")
    at.selectbox(key="goal_metric").set_value("hires")
    at.radio(key="goal_target_kind").set_value("absolute")
    at.number_input(key="goal_target").set_value(2)
    at.date_input(key="goal_start").set_value(clock.today() - dt.timedelta(days=60))
    at.date_input(key="goal_deadline").set_value(clock.today() + dt.timedelta(days=30))
    at.number_input(key="goal_baseline_value").set_value(0)
    save_goal(at)
    assert "Saved the goal 'Two hires this quarter'" in at.success[0].value
    [goal] = goals.list_goals(engine)
    assert (goal.metric, goal.target_value, goal.baseline_value) == ("hires", 2, 0)
    assert goals.progress(engine, goal, today=clock.today()).status == "on_track"
    glance = at.dataframe[0].value
    assert glance[["Goal", "Status", "Actual", "Target"]].values.tolist() == [
        ["Two hires this quarter", "On track", "2", "2"]
    ]
    assert not at.get("vega_lite_chart")  # no chart until a goal is picked
    at.selectbox(key="goals_picked").set_value(goal.id).run()
    page = " ".join(str(m.value) for m in at.markdown)
    assert ":green-badge[:material/check_circle: On track]" in page
    # Its progress chart plots the service's series.
    frame = chart_frames(at)["measured_to"]
    assert frame["value"].tolist() == [
        actual
        for _, actual, _ in goals.series(engine, goal, today=clock.today())
        if actual is not None
    ]


def test_an_impossible_target_is_refused_with_the_services_sentence(
    users: dict[str, User], engine: Engine
) -> None:
    hiring(engine, users)
    at = open_new_goal(open_page(users["admin"]))
    at.text_input(key="goal_title").input("Hire instantly")
    at.selectbox(key="goal_metric").set_value("time_to_hire_days")
    at.radio(key="goal_target_kind").set_value("relative")
    at.number_input(key="goal_target").set_value(-120)
    save_goal(at)
    assert at.error[0].value == ("A reduction of 100% or more is impossible (120% was asked).")
    assert goal_count(engine) == 0
    # Still open with what was typed, so it can be corrected.
    assert at.text_input(key="goal_title").value == "Hire instantly"
    at.number_input(key="goal_target").set_value(-15)
    save_goal(at)
    assert goal_count(engine) == 1


def test_the_guides_examples_are_added_in_one_click(users: dict[str, User], engine: Engine) -> None:
    hiring(engine, users)
    at = open_page(users["recruiter"])
    next(b for b in at.button if b.label == "Add the guide's examples").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Added 3 of the guide's examples."
    titles = sorted(g.title for g in goals.list_goals(engine))
    assert titles == sorted(example["title"] for example in goals.GUIDE_EXAMPLES)
    assert sorted(at.dataframe[0].value["Goal"]) == titles
    # All three are there now: nothing left to add twice.
    assert not [b for b in at.button if b.label == "Add the guide's examples"]


def test_guide_examples_without_baseline_data_are_refused_by_name(
    users: dict[str, User], engine: Engine
) -> None:
    at = open_page(users["admin"])
    next(b for b in at.button if b.label == "Add the guide's examples").click().run()
    assert not at.exception, at.exception
    assert len(at.error) == 3
    assert "has no data from" in at.error[0].value
    assert goal_count(engine) == 0


def five_hires(engine: Engine, users: dict[str, User], *, start: dt.date) -> None:
    goals.save_goal(
        engine,
        actor=users["admin"],
        draft=goals.GoalDraft(
            metric="hires", target_kind="absolute", target_value=5, baseline_value=1,
            start_date=start, deadline=clock.today() + dt.timedelta(days=90), title="Five hires",
        ),
    )  # fmt: skip


def test_delete_a_goal_after_confirming(users: dict[str, User], engine: Engine) -> None:
    hiring(engine, users)
    five_hires(engine, users, start=clock.today())
    at = open_page(users["recruiter"])
    [goal] = goals.list_goals(engine)
    at.selectbox(key="goals_picked").set_value(goal.id).run()
    at.button(key=f"goals_delete_{goal.id}").click().run()
    assert goal_count(engine) == 1  # only asked
    at.button(key="goal_delete").click().run()
    assert not at.exception, at.exception
    assert goal_count(engine) == 0
    assert "Deleted the goal 'Five hires'" in at.success[0].value
    manager = open_page(users["manager"])
    assert main_buttons(manager) == []


def test_manager_sees_a_goals_progress_but_cannot_delete_it(
    users: dict[str, User], engine: Engine
) -> None:
    hiring(engine, users)
    five_hires(engine, users, start=clock.today() - dt.timedelta(days=80))
    [goal] = goals.list_goals(engine)
    at = open_page(users["manager"])
    at.selectbox(key="goals_picked").set_value(goal.id).run()
    assert not at.exception, at.exception
    assert "measured_to" in chart_frames(at)
    assert main_buttons(at) == []


def test_print_view_hides_the_controls(users: dict[str, User], engine: Engine) -> None:
    hiring(engine, users)
    at = open_page(users["recruiter"])
    # Goals carry their own periods: the period and scope are on the metric tabs.
    assert not [w for w in at.segmented_control if w.key == "goals_period"]
    open_section(at, "Metrics")
    assert at.segmented_control(key="goals_period").value == "Last 90 days"
    at.segmented_control(key="goals_period").set_value("This year").run()
    at.toggle(key="goals_print").set_value(True).run()
    assert not at.exception, at.exception
    assert not at.get("download_button")
    # Every section one after another, no tabs.
    assert [h.value for h in at.header] == ["Goals", "Metrics", "Funnel & source of hire",
                                            "Savings"]  # fmt: skip
    assert not at.tabs
    assert {"facet", "source"} <= set(chart_frames(at))
    assert not [w for w in at.segmented_control if w.key == "goals_period"]
    assert main_buttons(at) == []
    assert f"01 Jan {clock.today().year}" in at.caption[0].value + at.caption[1].value
    at.toggle(key="goals_print").set_value(False).run()
    open_section(at, "Metrics")
    assert at.segmented_control(key="goals_period").value == "This year"


def test_custom_period_and_scope_filter_the_cards(users: dict[str, User], engine: Engine) -> None:
    hiring(engine, users)
    at = open_section(open_page(users["manager"]), "Metrics")
    at.multiselect(key="goals_families").set_value(["Software Engineering"]).run()
    assert not at.exception, at.exception
    assert "Scope: Software Engineering" in at.get("popover")[0].proto.popover.label
    cards = {m.label: m.value for m in at.metric}
    assert cards["Hires"] == "1"
    assert cards["Time to fill"] == "39.0 days"
    at.segmented_control(key="goals_period").set_value("Custom").run()
    at.date_input(key="goals_custom").set_value(
        (clock.today() - dt.timedelta(days=25), clock.today())
    ).run()
    assert not at.exception, at.exception
    cards = {m.label: m.value for m in at.metric}
    assert cards["Hires"] == "1"
    assert cards["Offer acceptance rate"] == "100%"  # Cy declined 28 days ago, before
    # Team costs belong to no job, so a role-family scope leaves them out.
    assert cards["Cost per hire"] == "0 USD"
    report = metrics.compute(
        engine,
        start=clock.today() - dt.timedelta(days=25),
        end=clock.today(),
        scope=metrics.Scope(role_families=("Software Engineering",)),
    )
    assert cards["Time to hire"] == common_format("time_to_hire_days", report.time_to_hire_days)


def test_funnel_savings_and_cards_show_one_number_for_hires(
    users: dict[str, User], engine: Engine
) -> None:
    """The fixture in test_metrics: 5 hires in the last 90 days, 4 of them from talent
    pools (two of those people have left the pool, one was contacted only before)."""
    from tests.test_metrics import pool_hires_world

    pool_hires_world(engine)
    at = open_section(open_page(users["manager"]), "Metrics")
    cards = {m.label: m.value for m in at.metric}
    assert cards["Hires"] == "5"
    assert cards["Hires from talent pools"] == common_format("hires_from_talent_pools_share", 0.8)
    open_section(at, "Funnel & source of hire")
    funnel = chart_frames(at)["step"]
    assert dict(zip(funnel["step"], funnel["people"], strict=True)) == {
        "In the pool now, or hired from it": 6,
        "Contacted": 5,
        "Engaged": 5,
        "Applied": 4,
        "Hired from talent pools": 4,
    }
    assert not [s for s in funnel["step"] if s == "Hired"]
    open_section(at, "Savings")
    cards = {m.label: m.value for m in at.metric}
    assert cards["Hired from talent pools"] == "4"
    assert "Pool hires" not in cards
