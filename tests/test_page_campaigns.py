"""The Campaigns page under AppTest: compose with the tag picker, preview, launch, follow."""

from __future__ import annotations

import pyarrow as pa
from sqlalchemy import Engine, func, select

from crm import campaign_figures, campaign_lifecycle, campaigns, candidates, db, outbox, pools
from crm.models import Campaign, OutboxMessage, User
from tests.smtp_server import FaultySmtpServer
from tests.test_app import app_as


def audience(engine: Engine, users: dict[str, User]) -> int:
    for first, company in (("Ana", "Acme"), ("Ben", None)):
        candidates.create_candidate(
            engine,
            actor=users["recruiter"],
            fields={
                "first_name": first,
                "last_name": "Test",
                "email": f"{first.lower()}@x.io",
                "skills": "python",
                "location": "London",
                "company": company,
            },
        )
    return pools.save_pool(
        engine,
        actor=users["recruiter"],
        name="London",
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "London"},
    )


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/campaigns.py").run()
    assert not at.exception, at.exception
    return at


def test_empty_page_says_what_to_do_and_sending_is_off(users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    assert "No campaigns yet" in at.info[0].value
    assert "Sending is off" in at.warning[0].value


def test_compose_with_the_picker_and_save(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer
) -> None:
    pool_id = audience(engine, users)
    at = open_page(users["recruiter"])
    at.segmented_control(key="campaigns_view").set_value("Compose").run()
    assert not at.exception, at.exception
    at.text_input(key="compose_name").input("Hello London")
    at.selectbox(key="compose_pool").set_value(pool_id)
    at.text_input(key="cstep_0_subject").input("Hi {{first_name|there}}")
    at.text_area(key="cstep_0_body").input("We liked your work at")
    at.selectbox(key="compose_tag").set_value("company")
    at.text_input(key="compose_tag_fallback").input("your company")
    [insert] = [b for b in at.button if b.label == "Insert"]
    insert.click().run()
    assert at.text_area(key="cstep_0_body").value == (
        "We liked your work at {{company|your company}}"
    )
    [add] = [b for b in at.button if b.label == "Add a step"]
    add.click().run()
    at.text_input(key="cstep_1_subject").input("Re: hello")
    at.text_area(key="cstep_1_body").input("Following up.")
    at.checkbox(key="cstep_1_windowed").check().run()
    assert not [box for box in at.selectbox if box.key == "cstep_1_region"]  # no country yet
    at.selectbox(key="cstep_1_country").set_value("DE").run()
    at.selectbox(key="cstep_1_region").set_value("BY")
    [save] = [b for b in at.button if b.label == "Save draft"]
    save.click().run()
    assert not at.exception, at.exception
    assert "Saved 'Hello London'" in at.success[0].value
    campaign_id = campaigns.campaign_id_by_name(engine, "Hello London")
    detail = campaigns.get_campaign(engine, campaign_id)
    assert detail.steps[1].delay_days == 4
    assert detail.steps[1].send_window["timezone"] == "Europe/London"
    assert (detail.steps[1].send_window["country"], detail.steps[1].send_window["region"]) == (
        "DE",
        "BY",
    )


def test_unknown_tag_is_refused_on_the_page(users: dict[str, User], engine: Engine) -> None:
    pool_id = audience(engine, users)
    at = open_page(users["recruiter"])
    at.segmented_control(key="campaigns_view").set_value("Compose").run()
    at.text_input(key="compose_name").input("Broken")
    at.selectbox(key="compose_pool").set_value(pool_id)
    at.text_input(key="cstep_0_subject").input("Hi")
    at.text_area(key="cstep_0_body").input("Hello\n{{frist_name}}")
    [save] = [b for b in at.button if b.label == "Save draft"]
    save.click().run()
    assert "Step 1's message, line 2: unknown merge tag {{frist_name}}" in at.error[0].value
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_preview_check_and_launch_once(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer
) -> None:
    pool_id = audience(engine, users)
    campaigns.save_campaign(
        engine,
        actor=users["recruiter"],
        draft=campaigns.CampaignDraft(
            name="Spring",
            audience_pool_id=pool_id,
            steps=[campaigns.StepDraft(subject="Hi {{first_name}}", body="At {{company}}?")],
        ),
    )
    at = open_page(users["recruiter"])
    # Select the campaign (as a click on its row does).
    at.session_state["campaigns_selected"] = campaigns.campaign_id_by_name(engine, "Spring")
    at.run()
    assert not at.exception, at.exception
    subject = [t for t in at.text_input if t.label == "Subject"][0]
    assert subject.value in {"Hi Ana", "Hi Ben"}
    # Ben has no company and the tag has no fallback: launch is blocked, and he is named.
    assert "1 people would get an empty merge tag" in at.error[0].value
    launch = [b for b in at.button if b.label == "Launch…"][0]
    assert launch.disabled
    # A fallback fixes it.
    campaign_id = campaigns.campaign_id_by_name(engine, "Spring")
    campaigns.save_campaign(
        engine,
        actor=users["recruiter"],
        campaign_id=campaign_id,
        draft=campaigns.CampaignDraft(
            name="Spring",
            audience_pool_id=pool_id,
            steps=[
                campaigns.StepDraft(subject="Hi {{first_name}}", body="At {{company|your team}}?")
            ],
        ),
    )
    at.run()
    launch = [b for b in at.button if b.label == "Launch…"][0]
    assert not launch.disabled
    launch.click().run()
    [confirm] = [b for b in at.button if b.label == "Launch"]
    confirm.click().run()
    assert not at.exception, at.exception
    assert "Launched: 2 people enrolled, 2 messages queued." in at.success[0].value
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 2
    outbox.deliver_due(engine)
    at.run()
    assert not at.exception, at.exception
    assert len(smtp.received) == 2


def test_manager_reads_but_cannot_compose_or_launch(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer
) -> None:
    pool_id = audience(engine, users)
    campaign_id = campaigns.save_campaign(
        engine,
        actor=users["recruiter"],
        draft=campaigns.CampaignDraft(
            name="Spring",
            audience_pool_id=pool_id,
            steps=[campaigns.StepDraft(subject="Hi", body="Hello {{first_name}}")],
        ),
    )
    at = open_page(users["manager"])
    assert "read-only" in at.caption[0].value
    assert [b for b in at.button if b.label == "New campaign"] == []
    at.session_state["campaigns_selected"] = campaign_id
    at.run()
    assert not at.exception, at.exception
    assert [b for b in at.button if b.label == "Launch…"][0].disabled
    assert not [b for b in at.button if b.label.startswith("Send a test")]


def launched_to_the_pool(engine: Engine, users: dict[str, User], name: str) -> int:
    """A one-step campaign to the test pool, launched and delivered (needs smtp)."""
    campaign_id = campaigns.save_campaign(
        engine,
        actor=users["recruiter"],
        draft=campaigns.CampaignDraft(
            name=name,
            audience_pool_id=audience(engine, users),
            steps=[campaigns.StepDraft(subject="Hi", body="Hello {{first_name}}")],
        ),
    )
    campaign_lifecycle.launch(engine, actor=users["recruiter"], campaign_id=campaign_id)
    outbox.deliver_due(engine)
    return campaign_id


def headline(at) -> str:
    """The report's lead: reply and interest rates first."""
    return next(m.value for m in at.markdown if m.value.startswith("#### "))


def open_campaign(user: User, campaign_id: int):
    at = open_page(user)
    at.session_state["campaigns_selected"] = campaign_id
    return at.run()


def test_results_and_replies_marked_by_hand(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer
) -> None:
    campaign_id = launched_to_the_pool(engine, users, "Spring")
    at = open_campaign(users["recruiter"], campaign_id)
    assert not at.exception, at.exception
    assert at.segmented_control(key=f"campaign_part_{campaign_id}").value == "Results"
    assert headline(at).startswith("#### 0% replied · 0% interested")
    assert not at.dataframe  # the list gives way to the campaign
    assert [b.label for b in at.button][:1] == ["All campaigns"]  # New campaign: on the list
    [open_dialog] = [b for b in at.button if b.label == "Mark replies by hand…"]
    open_dialog.click().run()
    at.text_area(key=f"replies_text_{campaign_id}").input("ana@x.io\nzed@nowhere.io")
    at.segmented_control(key=f"replies_answer_{campaign_id}").set_value("interested")
    [mark] = [b for b in at.button if b.label == "Mark replies"]
    mark.click().run()
    assert not at.exception, at.exception
    assert "Marked 1 replies. 1 addresses matched nobody: zed@nowhere.io" in at.success[0].value
    assert headline(at).startswith("#### 50% replied · 50% interested")
    [table] = [m.value for m in at.markdown if m.value.startswith("| Step | People delivered |")]
    # Per step and overall: people delivered, then replied and interested with their rates.
    assert "| **1** | 2 | 1 (50%) | 1 (50%) |" in table
    assert "| **All** | 2 | 1 (50%) | 1 (50%) |" in table
    # Back to the list.
    at.button(key="campaigns_back").click().run()
    assert "Campaign" in at.dataframe[0].value


def test_funnel_and_hires_part_draws_the_reports_numbers(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer
) -> None:
    campaign_id = launched_to_the_pool(engine, users, "Autumn")
    at = open_campaign(users["manager"], campaign_id)
    assert not at.get("vega_lite_chart")  # the funnel waits until its part is picked
    at.segmented_control(key=f"campaign_part_{campaign_id}").set_value("Funnel and hires").run()
    assert not at.exception, at.exception
    [chart] = at.get("vega_lite_chart")
    frame = pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_pandas()
    report = campaign_figures.report(engine, campaign_id)
    assert frame["count"].tolist() == [
        report["totals"]["people_delivered"], report["totals"]["people_opened"],
        report["totals"]["people_clicked"], report["totals"]["people_replied"],
        report["applications"], report["hires"],
    ]  # fmt: skip
    assert frame["count"].tolist()[0] == 2
    assert any("No applications are attributed" in c.value for c in at.main.caption)


def test_figures_on_the_page_count_people(users: dict[str, User], engine: Engine) -> None:
    """The three-step campaign of tests/test_campaigns.py: 3 of 10 people replied, over 20
    messages; the list, headline, steps table and step list all say people or messages."""
    from tests.test_campaigns import three_step_campaign

    campaign_id = three_step_campaign(engine)
    at = open_page(users["manager"])
    frame = at.dataframe[0].value
    row = frame.iloc[0]
    assert (row["Messages sent"], row["People delivered"]) == (20, 10)
    assert (row["Reply rate"], row["Click rate"], row["Open rate"]) == ("30%", "10%", "40%")
    assert row["Unsubscribed (people)"] == 1

    at.session_state["campaigns_selected"] = campaign_id
    at.run()
    assert not at.exception, at.exception
    lead = headline(at)
    assert lead.startswith("#### 30% replied · 10% interested")
    assert "3 people replied and 1 said they are interested, of the 10 people delivered" in lead
    assert "20 messages sent, 1 bounced" in lead
    # How each kind of open was counted: p4's Apple prefetches and two scanner opens apart.
    assert "4 people opened" in lead and "1 more person" in lead and "2 scanner opens" in lead
    [table] = [m.value for m in at.markdown if m.value.startswith("| Step | People delivered |")]
    assert (
        "| **1** | 10 | 2 (20%) | 0 (0%) | 3 (30%) | 0 (0%) | 1 (10%) | 1 | 2 | 10 | 0 |" in table
    )
    assert "| **2** | 5 | 1 (20%) | 1 (20%) | 1 (20%) | 1 (20%) | 0 (0%) | 1 | 0 | 6 | 1 |" in table
    assert (
        "| **All** | 10 | 3 (30%) | 1 (10%) | 4 (40%) | 1 (10%) | 1 (10%) | 1 | 2 | 20 | 1 |"
        in (table)
    )

    at.segmented_control(key=f"campaign_part_{campaign_id}").set_value("Steps and outbox").run()
    assert not at.exception, at.exception
    steps = at.dataframe[0].value
    assert steps["Cancelled"].tolist() == [0, 2, 0] and steps["Skipped"].tolist() == [0, 1, 0]
    assert steps["Why cancelled"].tolist()[1] in {
        "1 unsubscribed; 1 replied",
        "1 replied; 1 unsubscribed",
    }
    assert steps["Why skipped"].tolist() == ["", "1 no email address", ""]
