"""The Jobs page under AppTest: jobs, a pipeline from applied to hired, offers, costs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Engine

from crm import candidates, clock, jobs, money
from crm.models import User
from tests.test_app import app_as


def people(engine: Engine, users: dict[str, User]) -> dict[str, int]:
    return {
        first: candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={"first_name": first, "last_name": "Test", "email": f"{first.lower()}@x.io"},
        ).id
        for first in ("Ana", "Ben")
    }


def a_job(engine: Engine, users: dict[str, User]) -> int:
    return jobs.create_job(
        engine,
        actor=users["recruiter"],
        title="Backend Engineer",
        role_family="Software Engineering",
        key_role=True,
        opened_at=clock.today() - dt.timedelta(days=30),
    )


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/jobs.py").run()
    assert not at.exception, at.exception
    return at


def click(at, label: str):
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, at.exception
    return at


def open_job(at, job_id: int):
    """Tick the job's row in the table (the selection callback stores the job to open)."""
    at.session_state["jobs_open"] = job_id
    at.run()
    assert not at.exception, at.exception
    return at


def open_tab(at, title: str):
    """Open one of the job's tabs (lazy: only the open one runs)."""
    at.session_state["jobs_job_tab"] = title
    at.run()
    assert not at.exception, at.exception
    return at


def move(at, job_id: int, application_id: int, stage: str):
    at.selectbox(key=f"jobs_move_person_{job_id}").set_value(application_id)
    at.selectbox(key=f"jobs_move_stage_{job_id}").set_value(stage)
    return click(at, "Move")


def test_empty_page_says_what_to_do(users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    assert at.title[0].value == "Jobs"
    assert "No jobs yet. Create one with **New job**" in at.info[0].value
    at.segmented_control(key="jobs_view").set_value("Costs").run()
    assert not at.exception, at.exception
    assert "No costs in this period" in at.info[0].value


def test_create_a_job_through_the_dialog(users: dict[str, User], engine: Engine) -> None:
    at = click(open_page(users["recruiter"]), "New job")
    at.text_input(key="job_title").input("  Data   Engineer ")
    at.selectbox(key="job_family").set_value("Data & Analytics")
    at.text_input(key="job_manager").input("Grace Hopper")
    at.checkbox(key="job_key_role").check()
    click(at, "Create job")
    assert at.success[0].value == "Created the job 'Data Engineer'."
    [job] = jobs.list_jobs(engine)
    assert (job.title, job.role_family, job.key_role, job.hiring_manager, job.status) == (
        "Data Engineer", "Data & Analytics", True, "Grace Hopper", "open",
    )  # fmt: skip
    assert at.session_state["jobs_open"] == job.id  # the new job is opened
    assert [h.value for h in at.subheader] == ["Data Engineer"]
    table = at.dataframe[0].value
    assert table["title"].tolist() == ["Data Engineer"]
    assert table["applied"].tolist() == [0]


def test_a_job_needs_a_title(users: dict[str, User], engine: Engine) -> None:
    at = click(open_page(users["admin"]), "New job")
    click(at, "Create job")
    assert at.error[0].value == "A job needs a title."
    assert jobs.list_jobs(engine) == []


def test_add_a_person_and_move_them_to_hired(users: dict[str, User], engine: Engine) -> None:
    made = people(engine, users)
    job_id = a_job(engine, users)
    at = open_page(users["recruiter"])
    assert not at.subheader  # nothing opened until a row is ticked
    assert "Tick a job's row to open its pipeline" in at.caption[-2].value + at.caption[-1].value
    open_job(at, job_id)
    assert "Add one on the Add a person tab" in at.info[0].value
    open_tab(at, "Add a person")
    at.text_input(key=f"jobs_find_{job_id}").input("ana@x").run()
    at.selectbox(key=f"jobs_add_person_{job_id}").set_value(made["Ana"])
    at.selectbox(key=f"jobs_add_source_{job_id}").set_value("talent_pool")
    click(at, "Add to the pipeline")
    assert at.success[0].value == "Added Ana Test to Backend Engineer."
    [view] = jobs.pipeline(engine, job_id)["applied"]
    assert (view.candidate_id, view.source) == (made["Ana"], "talent_pool")
    assert at.dataframe[0].value["applied"].tolist() == [1]
    # Adding her twice is refused with one sentence.
    at.text_input(key=f"jobs_find_{job_id}").input("ana@x").run()
    at.selectbox(key=f"jobs_add_person_{job_id}").set_value(made["Ana"])
    click(at, "Add to the pipeline")
    assert at.error[0].value == "Ana Test is already on the pipeline for Backend Engineer."
    open_tab(at, "Pipeline")
    for stage in ("screen", "interview", "offer", "hired"):
        move(at, job_id, view.id, stage)
        assert at.success[0].value == f"Moved Ana Test to {stage}."
        assert [v.id for v in jobs.pipeline(engine, job_id)[stage]] == [view.id]
    job = jobs.get_job(engine, job_id)
    assert (job.status, job.filled_at) == ("filled", clock.now().date())
    assert at.dataframe[0].value["hired"].tolist() == [1]
    assert any("Filled" in str(m.value) for m in at.markdown)


def test_record_a_declined_offer(users: dict[str, User], engine: Engine) -> None:
    made = people(engine, users)
    job_id = a_job(engine, users)
    application = jobs.add_application(
        engine, actor=users["recruiter"], job_id=job_id, candidate_id=made["Ben"],
        source="job_board", at=clock.today() - dt.timedelta(days=10),
    )  # fmt: skip
    at = open_job(open_page(users["recruiter"]), job_id)
    declined = next(b for b in at.button if b.label == "Declined")
    assert declined.disabled  # nobody has an offer out yet
    move(at, job_id, application, "offer")
    at.selectbox(key=f"jobs_offer_person_{job_id}").set_value(application)
    click(at, "Declined")
    assert at.success[0].value == "Recorded: Ben Test declined the offer."
    [view] = jobs.pipeline(engine, job_id)["withdrew"]
    assert (view.id, view.offer_accepted) == (application, False)
    assert jobs.get_job(engine, job_id).status == "open"


def test_add_and_delete_a_cost(users: dict[str, User], engine: Engine) -> None:
    job_id = a_job(engine, users)
    at = open_tab(open_job(open_page(users["recruiter"]), job_id), "Costs")
    assert "No costs recorded for this job yet" in " ".join(i.value for i in at.info)
    at.selectbox(key=f"jobs_cost_category_{job_id}").set_value("agency_fees")
    at.number_input(key=f"jobs_cost_amount_{job_id}").set_value(4500.5)
    at.text_input(key=f"jobs_cost_note_{job_id}").input("Search firm")
    click(at, "Add cost")
    assert at.success[0].value == "Added a cost of 4,500.50 USD."
    [cost] = jobs.list_costs(engine, job_id=job_id)
    assert (cost.amount, cost.category, cost.note, cost.incurred_on) == (
        Decimal("4500.50"), "agency_fees", "Search firm", clock.today(),
    )  # fmt: skip
    # The period view lists it with the job's title.
    at.segmented_control(key="jobs_view").set_value("Costs").run()
    assert at.dataframe[0].value["job"].tolist() == ["Backend Engineer"]
    click(at, "Delete…")
    assert jobs.list_costs(engine) != []  # only asked
    click(at, "Delete the cost")
    assert jobs.list_costs(engine) == []


def test_a_negative_cost_is_one_sentence(users: dict[str, User], engine: Engine) -> None:
    job_id = a_job(engine, users)
    at = open_tab(open_job(open_page(users["recruiter"]), job_id), "Costs")
    at.number_input(key=f"jobs_cost_amount_{job_id}").set_value(-5.0)
    click(at, "Add cost")
    assert [e.value for e in at.error] == ["A cost must be more than zero."]
    assert jobs.list_costs(engine, job_id=job_id) == []


def test_a_cost_of_its_own_kind_in_another_currency(users: dict[str, User], engine: Engine) -> None:
    """EUR team, 1 USD = 0.9 EUR: a sign-on bonus paid in USD, listed with its label."""
    money.set_team_currency(engine, actor=users["admin"], currency="EUR", rates={"USD": "0.9"})
    job_id = a_job(engine, users)
    jobs.add_cost(
        engine, actor=users["recruiter"], amount=Decimal(1000), category="agency_fees",
        incurred_on=clock.today(), job_id=job_id,
    )  # fmt: skip
    at = open_tab(open_job(open_page(users["recruiter"]), job_id), "Costs")
    currency = at.selectbox(key=f"jobs_cost_currency_{job_id}")
    assert currency.value == "EUR" and currency.options == ["EUR", "USD"]
    currency.set_value("USD")
    at.text_input(key=f"jobs_cost_label_{job_id}").input("  Sign-on bonus ")
    at.number_input(key=f"jobs_cost_amount_{job_id}").set_value(500)
    click(at, "Add cost")
    assert at.success[0].value == "Added a cost of 500.00 USD."
    by_category = {c.category_text: (c.amount, c.currency) for c in jobs.list_costs(engine)}
    assert by_category == {
        "Agency fees": (Decimal("1000.00"), "EUR"),
        "Other: Sign-on bonus": (Decimal("500.00"), "USD"),
    }
    [table] = [d.value for d in at.dataframe if "category" in d.value.columns]
    assert sorted(zip(table["category"], table["currency"], strict=True)) == [
        ("Agency fees", "EUR"),
        ("Other: Sign-on bonus", "USD"),
    ]
    # 1000 + 500 × 0.9 EUR
    assert any(
        c.value == "2 costs, 1,450.00 EUR in all. In EUR; USD converted at 0.9." for c in at.caption
    )


def test_a_cost_must_be_more_than_zero(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    at.segmented_control(key="jobs_view").set_value("Costs").run()
    at.number_input(key="jobs_cost_amount_all").set_value(0)
    click(at, "Add cost")
    assert at.error[0].value == "A cost must be more than zero."
    assert jobs.list_costs(engine) == []


def test_manager_reads_but_changes_nothing(users: dict[str, User], engine: Engine) -> None:
    made = people(engine, users)
    job_id = a_job(engine, users)
    jobs.add_application(
        engine, actor=users["recruiter"], job_id=job_id, candidate_id=made["Ana"],
        source="referral",
    )  # fmt: skip
    jobs.add_cost(
        engine, actor=users["recruiter"], amount=Decimal(100), category="tools",
        incurred_on=clock.today(), job_id=job_id,
    )  # fmt: skip
    at = open_job(open_page(users["manager"]), job_id)
    assert "read-only access" in at.caption[0].value
    assert [link.label.split("  \n")[0] for link in at.get("page_link")] == ["Ana Test"]
    buttons = list(at.main.button)
    assert {b.label for b in buttons} >= {"New job", "Move", "Accepted", "Declined"}
    assert all(b.disabled for b in buttons if b.label != "Close")  # closing only reads
    open_tab(at, "Costs")
    buttons = list(at.main.button)
    assert {b.label for b in buttons} >= {"New job", "Add cost", "Delete…"}
    assert all(b.disabled for b in buttons if b.label != "Close")
    open_tab(at, "Add a person")
    assert at.text_input(key=f"jobs_find_{job_id}").disabled


def test_close_the_open_job(users: dict[str, User], engine: Engine) -> None:
    job_id = a_job(engine, users)
    at = open_job(open_page(users["manager"]), job_id)
    assert [h.value for h in at.subheader] == ["Backend Engineer"]
    at.button(key="jobs_close").click().run()
    assert not at.exception, at.exception
    assert not at.subheader
    assert "jobs_open" not in at.session_state
