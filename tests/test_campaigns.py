"""Campaigns: composing, files, the launch check, launch, pause, resume and cancel."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import Engine, func, select, update

from crm import campaigns, clock, db, pools
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
    for action in (campaigns.launch, campaigns.pause, campaigns.cancel):
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
    check = campaigns.launch_check(engine, campaign_id)
    assert check.audience == 7
    assert check.eligible == 3
    assert {k: v for k, v in check.skipped.items() if v} == {
        "no_email": 1, "unsubscribed": 1, "do_not_contact": 1, "suppressed": 1,
    }  # fmt: skip
    assert check.missing_total == 3
    assert check.missing[0].fields == ["company"]
    assert "empty merge tag" in (check.blocked or "")
    with pytest.raises(ValidationError, match="empty merge tag"):
        campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert campaigns.get_campaign(engine, campaign_id).status == "draft"
    # Filling in the records (or adding a fallback) unblocks it.
    with db.write_session(engine) as session:
        for person in session.scalars(select(Candidate).where(Candidate.id.in_(ready))):
            person.company = "Acme"
    assert campaigns.launch_check(engine, campaign_id).blocked is None


def test_launch_enrolls_once_and_queues_one_row_per_person_and_step(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    add_people(engine, 5)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    results: list[object] = []

    def click() -> None:
        try:
            results.append(campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id))
        except ValidationError as error:
            results.append(str(error))

    threads = [threading.Thread(target=click) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    launched = [r for r in results if isinstance(r, campaigns.LaunchResult)]
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
    campaigns.launch(engine, actor=users["admin"], campaign_id=first)
    second = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(london, name="Other")
    )
    assert campaigns.launch_check(engine, second).skipped["in_other_sequence"] == 2


def test_launch_without_smtp_is_refused(
    engine: Engine, users: dict[str, User], london: int
) -> None:
    add_people(engine, 1)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    with pytest.raises(ValidationError, match="Sending is not set up"):
        campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id)


def test_preview_matches_the_record(engine: Engine, users: dict[str, User], london: int) -> None:
    (ana,) = add_people(engine, 1, first_name="Ana<b>", company="Acme")
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    rendered = campaigns.preview(engine, campaign_id, step=1, candidate_id=ana)
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
    assert campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id).enrolled == 2


def test_cancel_stops_everything_queued(
    engine: Engine, users: dict[str, User], london: int, smtp: FaultySmtpServer
) -> None:
    add_people(engine, 3)
    campaign_id = campaigns.save_campaign(engine, actor=users["admin"], draft=draft(london))
    campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert campaigns.cancel(engine, actor=users["admin"], campaign_id=campaign_id) == 6
    counts = campaigns.step_counts(engine, campaign_id)
    assert counts[0].counts["cancelled"] == 3
    assert counts[0].skip_reasons == {"campaign cancelled": 3}
    with pytest.raises(ValidationError, match="cancelled campaign cannot be resumed"):
        campaigns.resume(engine, actor=users["admin"], campaign_id=campaign_id)


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

    campaign_id = campaigns.save_campaign(
        engine, actor=users["admin"], draft=draft(None, candidate_ids=add_people(engine, 4))
    )
    campaigns.launch(engine, actor=users["admin"], campaign_id=campaign_id)
    assert outbox.deliver_due(engine).sent == 4
    with db.write_session(engine) as session:
        rows = {
            row.to_address: row.id
            for row in session.scalars(select(OutboxMessage).where(OutboxMessage.status == "sent"))
        }
        session.execute(update(OutboxMessage).values(sent_at=clock.now() - dt.timedelta(hours=2)))
    browser = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"
    p0, p1, p2, p3 = (rows[f"p{n}@example.com"] for n in range(4))
    engagement.record_open(engine, p0, user_agent=browser)  # p0 opens twice: one person
    engagement.record_open(engine, p0, user_agent=browser)
    engagement.record_open(engine, p1, user_agent="Mozilla/5.0 GoogleImageProxy")  # machine
    with db.write_session(engine) as session:  # p2 clicks without the pixel loading
        session.add(Link(outbox_message_id=p2, url="https://acme.example", position=0))
    engagement.record_click(engine, p2, 0, user_agent=browser)
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
    result = campaigns.report(engine, campaign_id)
    expected_step_1 = {
        "step": 1, "queued": 0, "sent": 4, "failed": 0, "needs_review": 0, "skipped": 0,
        "delivered": 3, "opens_human": 2, "opens_machine": 1, "clicks": 1, "replies": 1,
        "interested": 1, "unsubscribes": 1, "bounces": 1,
    }  # fmt: skip
    assert result["steps"][0] == expected_step_1
    # Step 2: p0 replied, p1 unsubscribed, p3 bounced; only p2 is still to hear from us.
    assert (result["steps"][1]["queued"], result["steps"][1]["skipped"]) == (1, 3)
    assert result["totals"]["opens_human"] == 2 and result["totals"]["sent"] == 4
    assert (result["applications"], result["hires"]) == (1, 1)
    (attributed,) = campaigns.attributed_applications(engine, campaign_id)
    assert (attributed.name, attributed.job, attributed.stage) == (
        "P0 Test",
        "Backend engineer",
        "hired",
    )
