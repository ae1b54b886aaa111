"""Campaigns: composing, files, the launch check, launch, pause, resume and cancel."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, func, select, update

from crm import campaign_figures, campaign_lifecycle, campaigns, clock, composer, db, pools
from crm.errors import InputUnusable, PermissionDenied, ValidationError
from crm.identity import address_hash
from crm.models import (
    Campaign,
    Candidate,
    Enrollment,
    Link,
    OutboxMessage,
    Suppression,
    User,
)
from tests.smtp_server import FaultySmtpServer

STEPS = [
    campaigns.StepDraft(
        subject="{{first_name|Hi there}}, a quick hello",
        body="Hi {{first_name|there}}, I saw your work with {{skills|your stack}}.",
    ),
    campaigns.StepDraft(subject="Re: a quick hello", body="Following up.", delay_days=4),
]


def add_people(engine: Engine, count: int, **fields: object) -> list[int]:
    with db.write_session(engine) as session:
        people = []
        for n in range(count):
            values = {
                "first_name": f"P{n}",
                "last_name": "Test",
                "email": f"p{n}@example.com",
                "email_normalized": f"p{n}@example.com",
                "location": "London",
            }
            values.update(fields)
            if values.get("email") is None:
                values["email_normalized"] = None
            elif "email" in fields:
                values["email_normalized"] = str(fields["email"]).lower()
            person = Candidate(**values)
            person.skills = ["python"]
            session.add(person)
            people.append(person)
        session.flush()
        return [p.id for p in people]


@pytest.fixture
def london(engine: Engine, users: dict[str, User]) -> int:
    return pools.save_pool(
        engine,
        actor=users["admin"],
        name="London",
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "London"},
    )


def draft(pool_id: int | None, **changes: object) -> campaigns.CampaignDraft:
    values: dict[str, object] = {
        "name": "Spring hello",
        "steps": list(STEPS),
        "audience_pool_id": pool_id,
    }
    values.update(changes)
    return campaigns.CampaignDraft(**values)  # type: ignore[arg-type]


def test_save_and_read_back(engine: Engine, users: dict[str, User], london: int) -> None:
    campaign_id = campaigns.save_campaign(engine, actor=users["recruiter"], draft=draft(london))
    detail = campaigns.get_campaign(engine, campaign_id)
    assert detail.status == "draft"
    assert detail.audience == "London"
    assert [s.subject for s in detail.steps] == [s.subject for s in STEPS]
    assert detail.steps[1].delay_days == 4


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "  "}, "Give the campaign a name."),
        ({"steps": []}, "at least one step"),
        (
            {"steps": [campaigns.StepDraft(subject="Hi", body="a\n{{frist_name}}")]},
            "Step 1's message, line 2: unknown merge tag {{frist_name}}",
        ),
        (
            {"steps": [campaigns.StepDraft(subject="Hi {{first_name", body="x")]},
            "Step 1's subject, line 1: a merge tag is not closed",
        ),
        ({"steps": [campaigns.StepDraft(subject="Hi\nBcc: x", body="x")]}, "line break"),
        ({"sender_name": "Rita\r\nBcc: evil@example.com"}, "sender name cannot contain a line"),
        ({"sender_email": "not an address"}, "not a valid email address"),
        ({"audience_pool_id": None}, "Choose an audience"),
        (
            {"steps": [campaigns.StepDraft(subject="Hi", body="x", delay_days=-1)]},
            "between 0 and 365 days",
        ),
        (
            {
                "steps": [
                    campaigns.StepDraft(
                        subject="Hi",
                        body="x",
                        send_window={
                            "days": "mon-fri",
                            "hours": "17-9",
                            "timezone": "Europe/London",
                        },
                    )
                ]
            },
            "hours",
        ),
    ],
)
def test_bad_drafts_are_refused_and_nothing_is_saved(
    engine: Engine, users: dict[str, User], london: int, changes: dict, message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        campaigns.save_campaign(engine, actor=users["recruiter"], draft=draft(london, **changes))
    assert message in str(error.value)
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0


def test_managers_cannot_write(engine: Engine, users: dict[str, User], london: int) -> None:
    with pytest.raises(PermissionDenied):
        campaigns.save_campaign(engine, actor=users["manager"], draft=draft(london))
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    for action in (campaign_lifecycle.launch, campaign_lifecycle.pause, campaign_lifecycle.cancel):
        with pytest.raises(PermissionDenied):
            action(engine, actor=users["manager"], campaign_id=campaign_id)


CAMPAIGN_FILE = '''
name = "Backend engineers, spring"
audience = "London"
sender = "Rita Recruiter <rita@acme.example>"
[[steps]]
subject = "{{first_name|Hi there}}, a quick hello from Acme"
body = """Hi {{first_name|there}}, I saw your work with {{skills}} ..."""
delay_days = 0
[[steps]]
subject = "Re: a quick hello"
body = "..."
delay_days = 4
stop_on_reply = true
send_window = {days = "mon-fri", hours = "9-17", timezone = "Europe/London"}
'''


def test_campaign_file_in_the_design_form(
    engine: Engine, users: dict[str, User], london: int
) -> None:
    campaign_id = campaigns.import_campaign_file(engine, actor=users["admin"], text=CAMPAIGN_FILE)
    detail = campaigns.get_campaign(engine, campaign_id)
    assert detail.name == "Backend engineers, spring"
    assert (detail.sender_name, detail.sender_email) == ("Rita Recruiter", "rita@acme.example")
    assert detail.steps[1].send_window == {
        "days": "mon,tue,wed,thu,fri", "hours": "09:00-17:00", "timezone": "Europe/London",
    }  # fmt: skip
    # Importing again replaces the draft rather than failing or duplicating it.
    again = campaigns.import_campaign_file(engine, actor=users["admin"], text=CAMPAIGN_FILE)
    assert again == campaign_id


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = ", "not valid TOML"),
        ('name = "x"', "needs an audience"),
        ('name = "x"\naudience = "Nowhere"', "no talent pool called 'Nowhere'"),
        ('name = "x"\naudience = "London"', "at least one [[steps]]"),
        ('name = "x"\naudience = "London"\ncolour = 1', "unknown key 'colour'"),
        ('name = "x"\naudience = "London"\n[[steps]]\nsubject = "a"', "Step 1 needs a body"),
    ],
)
def test_bad_campaign_files(
    engine: Engine, users: dict[str, User], london: int, text: str, message: str
) -> None:
    with pytest.raises(InputUnusable) as error:
        campaigns.import_campaign_file(engine, actor=users["admin"], text=text)
    assert message in str(error.value)


def test_launch_check_counts_skips_and_blocks_on_missing_tags(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    ready = add_people(engine, 3)
    add_people(
        engine, 1, email=None, linkedin_url="https://linkedin.com/in/x", linkedin_normalized="x"
    )
    add_people(engine, 1, email="gone@example.com", unsubscribed_at=clock.now())
    add_people(engine, 1, email="dnc@example.com", consent_status="do_not_contact")
    add_people(engine, 1, email="bounced@example.com")
    with db.write_session(engine) as session:
        session.add(
            Suppression(address_hash=address_hash("bounced@example.com"), reason="hard_bounce")
        )
    steps = [campaigns.StepDraft(subject="Hi {{first_name}}", body="About {{company}}")]
    campaign_id = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(london, steps=steps)
    )
    check = campaign_lifecycle.launch_check(engine, campaign_id)
    assert check.audience == 7
    assert check.eligible == 3
    assert {k: v for k, v in check.skipped.items() if v} == {
        "no_email": 1, "unsubscribed": 1, "do_not_contact": 1, "suppressed": 1,
    }  # fmt: skip
    assert check.missing_total == 3
    assert check.missing[0].fields == ["company"]
    assert "empty merge tag" in (check.blocked or "")
    with pytest.raises(ValidationError, match="empty merge tag"):
        campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert campaigns.get_campaign(engine, campaign_id).status == "draft"
    # Filling in the records (or adding a fallback) unblocks it.
    with db.write_session(engine) as session:
        for person in session.scalars(select(Candidate).where(Candidate.id.in_(ready))):
            person.company = "Acme"
    assert campaign_lifecycle.launch_check(engine, campaign_id).blocked is None


def test_launch_enrolls_once_and_queues_one_row_per_person_and_step(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    add_people(engine, 5)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    results: list[object] = []

    def click() -> None:
        try:
            results.append(
                campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id)
            )
        except ValidationError as error:
            results.append(str(error))

    threads = [threading.Thread(target=click) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    launched = [r for r in results if isinstance(r, campaign_lifecycle.LaunchResult)]
    assert len(launched) == 1
    assert launched[0].enrolled == 5 and launched[0].messages == 10
    assert results.count("This campaign has already been launched.") == 2
    with db.read_session(engine) as session:
        statuses = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
        assert dict(statuses) == {"queued": 5, "waiting": 5}
        assert session.scalar(select(func.count()).select_from(Enrollment)) == 5


def test_people_in_another_active_sequence_are_skipped(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    add_people(engine, 2)
    first = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=first)
    second = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(london, name="Other")
    )
    assert campaign_lifecycle.launch_check(engine, second).skipped["in_other_sequence"] == 2


def test_launch_without_smtp_is_refused(
    engine: Engine, users: dict[str, User], london: int
) -> None:
    add_people(engine, 1)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    with pytest.raises(ValidationError, match="Sending is not set up"):
        campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id)


def test_preview_matches_the_record(engine: Engine, users: dict[str, User], london: int) -> None:
    (ana,) = add_people(engine, 1, first_name="Ana<b>", company="Acme")
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    rendered = composer.preview(engine, campaign_id, step=1, candidate_id=ana)
    assert rendered.subject == "Ana<b>, a quick hello"
    assert "Hi Ana&lt;b&gt;, I saw your work with python." in rendered.html
    assert "Hi Ana<b>, I saw your work with python." in rendered.text


def test_hand_picked_audience(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    ids = add_people(engine, 4)
    campaign_id = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(None, candidate_ids=ids[:2])
    )
    assert campaigns.get_campaign(engine, campaign_id).audience == "2 hand-picked people"
    assert (
        campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id).enrolled
        == 2
    )


def test_cancel_stops_everything_queued(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    add_people(engine, 3)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert campaign_lifecycle.cancel(engine, actor=users["admin"], campaign_id=campaign_id) == 6
    counts = campaign_figures.step_counts(engine, campaign_id)
    assert counts[0].counts["cancelled"] == 3
    assert counts[0].cancelled_reasons == {"campaign cancelled": 3}
    assert (counts[0].counts["skipped"], counts[0].skipped_reasons) == (0, {})
    with pytest.raises(ValidationError, match="cancelled campaign cannot be resumed"):
        campaign_lifecycle.resume(engine, actor=users["admin"], campaign_id=campaign_id)


def test_templates_are_checked_and_reusable(engine: Engine, users: dict[str, User]) -> None:
    with pytest.raises(ValidationError, match="unknown merge tag"):
        campaigns.save_template(engine, actor=users["admin"], name="t", subject="{{x}}", body="b")
    campaigns.save_template(engine, actor=users["admin"], name="Hello", subject="Hi", body="B1")
    campaigns.save_template(engine, actor=users["admin"], name="Hello", subject="Hi", body="B2")
    (saved,) = campaigns.list_templates(engine)
    assert saved.body == "B2"


def test_report_numbers_against_a_hand_computed_fixture(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    """Four people, two steps; what each did is below, and the report must say exactly so."""
    from crm import engagement, outbox
    from crm.models import Application, Job
    from tests.test_engagement import clicked, open_pixel

    campaign_id = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(None, candidate_ids=add_people(engine, 4))
    )
    campaign_lifecycle.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert outbox.deliver_due(engine).sent == 4
    with db.write_session(engine) as session:
        rows = {
            row.to_address: row.id
            for row in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "sent"))
        }
        session.execute(update(OutboxMessage).values(sent_at=clock.now() - dt.timedelta(hours=2)))
    browser = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"
    p0, p1, p2, p3 = (rows[f"p{n}@example.com"] for n in range(4))
    open_pixel(engine, p0, user_agent=browser)  # p0 opens twice: one person
    open_pixel(engine, p0, user_agent=browser)
    open_pixel(engine, p1, user_agent="Mozilla/5.0 GoogleImageProxy")  # p1, by Gmail
    with db.write_session(engine) as session:  # p2 clicks without the pixel loading
        session.add(Link(outbox_message_id=p2, url="https://acme.example", position=0))
    clicked(engine, p2, 0, user_agent=browser)
    engagement.record_bounce(engine, outbox_id=p3, hard=True, reason="5.1.1 unknown")
    engagement.record_reply(engine, outbox_id=p0, answer="interested")
    engagement.unsubscribe(engine, p1, how="page")
    with db.write_session(engine) as session:
        job = Job(title="Backend engineer", opened_at=dt.date(2026, 11, 1))
        session.add(job)
        session.flush()
        p0_person = session.scalar(select(Candidate.id).where(Candidate.email == "p0@example.com"))
        session.add(
            Application(
                candidate_id=p0_person, job_id=job.id, source="campaign", campaign_id=campaign_id,
                stage="hired", applied_at=clock.now(),
                hired_at=clock.now(),
            )
        )  # fmt: skip
    result = campaign_figures.report(engine, campaign_id)
    # p3's message bounced: four sent, three delivered. p0 (twice), p1 (through Gmail's
    # image proxy, which fetches when the person opens) and p2 (a click) opened: 3 people.
    expected_step_1 = {
        "step": 1, "messages_sent": 4, "messages_delivered": 3, "bounced": 1, "queued": 0,
        "failed": 0, "needs_review": 0, "cancelled": 0, "skipped": 0,
        "people_delivered": 3, "people_replied": 1, "people_interested": 1,
        "people_opened": 3, "people_clicked": 1, "people_unsubscribed": 1,
        "apple_privacy_people": 0, "scanner_opens": 0,
        "reply_rate": 1 / 3, "interested_rate": 1 / 3, "open_rate": 1.0,
        "click_rate": 1 / 3, "unsubscribe_rate": 1 / 3,
    }  # fmt: skip
    assert result["steps"][0] == expected_step_1
    # Step 2: p0 replied, p1 unsubscribed, p3 bounced: their messages were cancelled (not
    # skipped); only p2 is still to hear from us.
    step_2 = result["steps"][1]
    assert (step_2["queued"], step_2["cancelled"], step_2["skipped"]) == (1, 3, 0)
    assert (step_2["people_delivered"], step_2["reply_rate"]) == (0, None)
    assert result["totals"]["people_opened"] == 3 and result["totals"]["messages_sent"] == 4
    assert (result["applications"], result["hires"]) == (1, 1)
    (attributed,) = campaign_figures.attributed_applications(engine, campaign_id)
    assert (attributed.name, attributed.job, attributed.stage) == (
        "P0 Test",
        "Backend engineer",
        "hired",
    )


# --- people, not messages: a three-step campaign counted by hand ----------------------
#
# Ten people p0..p9; every message sent on 2026-03-02 (step 1), 03-06 (2) and 03-10 (3).
#   step 1: sent to all ten (10 delivered)
#   step 2: sent to p0..p5, p5's bounced (5 delivered); p6 cancelled (unsubscribed), p7
#           cancelled (replied), p8 skipped (no email address), p9 failed
#   step 3: sent to p0..p3 (4 delivered); p4 still queued
# Replies: p0 to steps 1 and 3, p1 to step 2 ("interested"), p7 to step 1: 3 people.
# Opens: p0 opens step 1 twice (its own mail program), p2 through Gmail's proxy (step 1),
# p5 both by Apple's prefetch and by hand (step 1), p3 clicks in step 2 with no open;
# p4's only opens are Apple's prefetches (steps 1 and 2); p8's step 1 is opened by a
# scanner and p9's by a machine on an old row (no seen_via); p1's step-2 click is a
# scanner's. p6 unsubscribes from step 1.
MARCH = {1: "2026-03-02", 2: "2026-03-06", 3: "2026-03-10"}


def three_step_campaign(engine: Engine) -> int:
    from crm.models import CampaignStep, Event

    def at(day: str) -> dt.datetime:
        return dt.datetime.fromisoformat(day).replace(hour=9, tzinfo=dt.UTC)

    people = add_people(engine, 10)
    with db.write_session(engine) as session:
        campaign = Campaign(name="Three steps", status="active", launched_at=at(MARCH[1]))
        session.add(campaign)
        session.flush()
        steps = {}
        for position in (1, 2, 3):
            steps[position] = CampaignStep(
                campaign_id=campaign.id, position=position, subject=f"S{position}",
                body_markdown="x",
            )  # fmt: skip
        session.add_all(steps.values())
        enrollments = {
            n: Enrollment(campaign_id=campaign.id, candidate_id=people[n]) for n in range(10)
        }
        session.add_all(enrollments.values())
        session.flush()
        plan = {1: {n: "sent" for n in range(10)}}
        plan[2] = {n: "sent" for n in range(6)} | {
            6: ("cancelled", "unsubscribed"), 7: ("cancelled", "replied"),
            8: ("skipped", "no email address"), 9: "failed",
        }  # fmt: skip
        plan[3] = {n: "sent" for n in range(4)} | {4: "queued"}
        messages: dict[tuple[int, int], OutboxMessage] = {}
        for position, rows in plan.items():
            for n, state in rows.items():
                status, reason = state if isinstance(state, tuple) else (state, None)
                messages[position, n] = OutboxMessage(
                    unique_key=f"{position}-{n}", campaign_id=campaign.id,
                    step_id=steps[position].id, enrollment_id=enrollments[n].id,
                    candidate_id=people[n], status=status, skip_reason=reason,
                    due_at=at(MARCH[position]),
                    sent_at=at(MARCH[position]) if status == "sent" else None,
                )  # fmt: skip
        session.add_all(messages.values())
        session.flush()
        events = [
            ("bounce", 2, 5, False, None),
            ("reply", 1, 0, False, None),
            ("reply", 3, 0, False, None),
            ("reply", 2, 1, False, None),
            ("interested", 2, 1, False, None),
            ("reply", 1, 7, False, None),
            ("unsubscribe", 1, 6, False, None),
            ("open", 1, 0, False, "person"),
            ("open", 1, 0, False, "person"),
            ("open", 1, 2, False, "gmail_proxy"),
            ("open", 1, 5, True, "apple_privacy"),
            ("open", 1, 5, False, "person"),
            ("click", 2, 3, False, "person"),
            ("open", 1, 4, True, "apple_privacy"),
            ("open", 2, 4, True, "apple_privacy"),
            ("open", 1, 8, True, "scanner"),
            ("open", 1, 9, True, None),
            ("click", 2, 1, True, "scanner"),
        ]
        for kind, position, n, machine, seen_via in events:
            message = messages[position, n]
            session.add(
                Event(
                    kind=kind, occurred_at=at(MARCH[position]) + dt.timedelta(hours=3),
                    candidate_id=people[n], campaign_id=campaign.id, step_id=message.step_id,
                    outbox_message_id=message.id, is_machine=machine, seen_via=seen_via,
                )
            )  # fmt: skip
        return campaign.id


def test_campaign_figures_count_people_not_messages(engine: Engine) -> None:
    from crm import metrics

    campaign_id = three_step_campaign(engine)
    result = campaign_figures.report(engine, campaign_id)
    totals = result["totals"]
    # Messages: 10 + 6 + 4 sent, one bounced.
    assert {key: totals[key] for key in campaign_figures.MESSAGE_COUNTS} == {
        "messages_sent": 20, "messages_delivered": 19, "bounced": 1, "queued": 1,
        "failed": 1, "needs_review": 0, "cancelled": 2, "skipped": 1,
    }  # fmt: skip
    # People: ten delivered at least one message; each counted once across the steps.
    assert {key: totals[key] for key in campaign_figures.PEOPLE_COUNTS} == {
        "people_delivered": 10, "people_replied": 3, "people_interested": 1,
        "people_opened": 4, "people_clicked": 1, "people_unsubscribed": 1,
        "apple_privacy_people": 1,
    }  # fmt: skip
    assert totals["scanner_opens"] == 2  # p8's and p9's; Apple's and click scans apart
    assert totals["reply_rate"] == pytest.approx(3 / 10)  # not 3 of 19 messages
    assert (totals["open_rate"], totals["click_rate"]) == (pytest.approx(0.4), 0.1)
    assert (totals["interested_rate"], totals["unsubscribe_rate"]) == (0.1, 0.1)

    by_step = {row["step"]: row for row in result["steps"]}
    fields = ("people_delivered", "people_replied", "people_opened", "people_clicked")
    assert [tuple(by_step[n][f] for f in fields) for n in (1, 2, 3)] == [
        (10, 2, 3, 0),  # p0 and p7 replied; p0, p2 and p5 opened
        (5, 1, 1, 1),  # p5's bounced; p1 replied; p3 clicked (an open too)
        (4, 1, 0, 0),  # p0 replied again: once per step, once overall
    ]
    assert [by_step[n]["reply_rate"] for n in (1, 2, 3)] == [0.2, 0.2, 0.25]
    assert [by_step[n]["apple_privacy_people"] for n in (1, 2, 3)] == [1, 1, 0]
    assert [by_step[n]["scanner_opens"] for n in (1, 2, 3)] == [2, 0, 0]
    assert (by_step[2]["messages_sent"], by_step[2]["messages_delivered"]) == (6, 5)
    assert (by_step[2]["cancelled"], by_step[2]["skipped"], by_step[2]["failed"]) == (2, 1, 1)

    # The reply rate of the metrics is the same figure, from the same definition.
    period = {"start": dt.date(2026, 3, 1), "end": dt.date(2026, 3, 31)}
    scope = metrics.Scope(campaign_id=campaign_id)
    assert metrics.value(engine, metric="reply_rate", scope=scope, **period) == pytest.approx(
        totals["reply_rate"]
    )
    # The click rate too: only p3 clicked by hand (p1's click was a scanner's).
    assert metrics.value(engine, metric="click_rate", scope=scope, **period) == pytest.approx(
        totals["click_rate"]
    )

    # The step table: cancelled and skipped apart, each with its own reasons.
    step_2 = campaign_figures.step_counts(engine, campaign_id)[1]
    assert (step_2.counts["cancelled"], step_2.counts["skipped"]) == (2, 1)
    assert step_2.cancelled_reasons == {"unsubscribed": 1, "replied": 1}
    assert step_2.skipped_reasons == {"no email address": 1}

    # The list: people, not messages, from the same definitions.
    (summary,) = campaign_figures.list_campaigns(engine)
    assert (summary.messages_sent, summary.people_delivered) == (20, 10)
    assert (summary.people_replied, summary.people_opened, summary.people_clicked) == (3, 4, 1)
    assert (summary.cancelled, summary.skipped, summary.failed, summary.queued) == (2, 1, 1, 1)
    assert summary.reply_rate == pytest.approx(0.3) and summary.open_rate == pytest.approx(0.4)
