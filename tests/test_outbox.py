"""Delivery: on time, inside windows, under the frequency cap, and never lost or doubled.

The fault tests run against a real SMTP server (tests/smtp_server.py) that drops
connections before and after DATA, refuses chosen recipients and refuses logins, and
against a worker process killed with SIGKILL mid-batch.
"""

from __future__ import annotations

import collections
import datetime as dt
import email.policy
import html
import io
import os
import re
import signal
import subprocess
import threading
import time
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from sqlalchemy import Engine, func, select, update

from crm import (
    campaign_figures,
    campaign_lifecycle,
    campaigns,
    candidates,
    clock,
    composer,
    db,
    outbox,
    pools,
)
from crm.config import load_settings
from crm.identity import address_hash
from crm.models import (
    Campaign,
    Candidate,
    Event,
    Link,
    OutboxMessage,
    Suppression,
    User,
)
from tests.conftest import BACKEND, PROJECT_ROOT, python_command
from tests.smtp_server import FaultySmtpServer
from tests.test_campaigns import add_people

ONE_STEP = [campaigns.StepDraft(subject="Hi {{first_name}}", body="Hello {{first_name}}.")]
TWO_STEPS = [
    campaigns.StepDraft(subject="Hi {{first_name}}", body="Hello {{first_name}}."),
    campaigns.StepDraft(
        subject="Again", body="Still here.", delay_days=4,
        send_window={"days": "mon-fri", "hours": "9-17", "timezone": "Europe/London"},
    ),
]  # fmt: skip


def launched(
    engine: Engine, actor: User, count: int, *, steps: list = ONE_STEP, name: str = "C"
) -> int:
    add_people(engine, count, location=name)
    pool_id = pools.save_pool(
        engine,
        actor=actor,
        name=f"pool {name}",
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": name},
    )
    campaign_id = campaigns.save_campaign(
        engine,
        actor=actor,
        draft=campaigns.CampaignDraft(name=name, steps=list(steps), audience_pool_id=pool_id),
    )
    campaign_lifecycle.launch(engine, actor=actor, campaign_id=campaign_id)
    return campaign_id


def statuses(engine: Engine, campaign_id: int) -> dict[str, int]:
    with db.read_session(engine) as session:
        return dict(
            session.execute(
                select(OutboxMessage.status, func.count())
                .where(OutboxMessage.campaign_id == campaign_id)
                .group_by(OutboxMessage.status)
            ).all()
        )


def acknowledged_per_address(server: FaultySmtpServer) -> collections.Counter[str]:
    return collections.Counter(
        to for message in server.received if message.acknowledged for to in message.rcpt_tos
    )


def test_sends_due_messages_and_schedules_the_next_step_in_its_window(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 3, steps=TWO_STEPS)
    report = outbox.deliver_due(engine)
    assert report.sent == 3
    assert statuses(engine, campaign_id) == {"sent": 3, "queued": 3}
    received = smtp.received[0].message
    assert received["From"] == "Acme Talent <talent@acme.example>"
    assert (
        received["List-Unsubscribe"].strip().startswith("<https://crm.acme.example/unsubscribe?t=")
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len({m.message["Message-ID"] for m in smtp.received}) == 3
    with db.read_session(engine) as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.status == "queued")).all()
        sent_at = session.scalar(select(func.max(OutboxMessage.sent_at)))
        for row in rows:
            local = row.due_at.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London"))
            assert row.due_at >= sent_at + dt.timedelta(days=4) - dt.timedelta(seconds=5)
            assert local.weekday() < 5 and 9 <= local.hour < 17
        person = session.scalar(select(Candidate).where(Candidate.email == "p0@example.com"))
        assert person.last_contact_channel == "email"
        assert person.last_contacted_at is not None
    entries = candidates.timeline(engine, person.id)
    assert [(e.kind, e.summary) for e in entries] == [("email_sent", "Sent “Hi P0” (C)")]
    # Nothing else is due: a second run sends nothing.
    assert outbox.deliver_due(engine).sent == 0


VARYING = ("Date", "Message-ID")  # differ per message: when it was built, a random part


def _wire(message: EmailMessage) -> bytes:
    """A message as smtplib's send_message puts it on the wire."""
    out = io.BytesIO()
    BytesGenerator(out, policy=message.policy.clone(linesep="\r\n")).flatten(message)
    return out.getvalue()


def _parts(raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, bytes]]]:
    """(headers but Date and Message-ID, (content type, decoded bytes) of each part)."""
    parsed = BytesParser(policy=email.policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
    # Values unfolded: a longer token may fold a header onto two lines.
    headers = [(k, " ".join(str(v).split())) for k, v in parsed.items() if k not in VARYING]
    leaves = [(p.get_content_type(), p.get_payload(decode=True)) for p in parsed.walk()]
    return headers, [(kind, body) for kind, body in leaves if body is not None]


def test_preview_is_byte_for_byte_what_the_server_receives(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    steps = [
        campaigns.StepDraft(
            subject="Hi {{first_name}}, from {{sender_first_name|us}}",
            body="Hello **{{first_name}}**, see [our jobs](https://acme.example/jobs?a=1&b=2)."
            "\n\nNot for you? [Stop these]({{unsubscribe_url}}).",
        )
    ]
    campaign_id = launched(engine, users["admin"], 1, steps=steps)
    with db.write_session(engine) as session:  # the first-contact notice is in the footer
        session.execute(update(Candidate).values(source="LinkedIn"))
        candidate_id = session.scalar(select(Candidate.id))
    preview = composer.preview(engine, campaign_id, step=1, candidate_id=candidate_id)
    assert outbox.deliver_due(engine).sent == 1
    (received,) = smtp.received
    with db.read_session(engine) as session:
        row_id = session.scalar(select(OutboxMessage.id))
        links = session.execute(select(Link.position, Link.url)).all()
    # Tracking tokens aside: each signed link of the sent message becomes the preview's.
    settings = load_settings()
    sent, shown = composer.links_for(row_id, settings), composer.preview_links(settings)
    swaps = {sent.unsubscribe: shown.unsubscribe, sent.open: shown.open}
    swaps.update({sent.click(position, url): shown.click(position, url) for position, url in links})
    assert len(links) == 1 and "/c/" in next(iter(swaps.keys() - {sent.unsubscribe, sent.open}))
    wire = received.raw
    sent_headers, sent_parts = _parts(wire)
    for signed, unsigned in swaps.items():
        sent_headers = [(k, v.replace(signed, unsigned)) for k, v in sent_headers]
        sent_parts = [
            (kind, body.replace(old.encode(), new.encode()))
            for kind, body in sent_parts
            for old, new in [
                (html.escape(signed), html.escape(unsigned))
                if kind == "text/html"
                else (signed, unsigned)
            ]
        ]
    preview_headers, preview_parts = _parts(_wire(preview.message))
    assert [kind for kind, _ in sent_parts] == ["text/plain", "text/html"]
    assert sent_parts == preview_parts  # byte for byte
    boundary = re.compile(r'boundary="[^"]+"')
    assert [(k, boundary.sub("", v)) for k, v in sent_headers] == [
        (k, boundary.sub("", v)) for k, v in preview_headers
    ]
    assert "found your public professional profile (source: LinkedIn)" in preview.text


def test_frequency_cap_defers_and_does_not_drop(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    first = launched(engine, users["admin"], 1, name="A")
    outbox.deliver_due(engine)
    with db.write_session(engine) as session:
        person = session.scalar(select(Candidate).where(Candidate.location == "A"))
        person.location = "B"  # now in the second campaign's pool too
    # Finish the first campaign so the person is free for the second one.
    second = launched(engine, users["admin"], 0, name="B")
    outbox.deliver_due(engine)
    third_steps = [campaigns.StepDraft(subject="Third", body="x")]
    with db.write_session(engine) as session:
        person = session.scalar(select(Candidate).where(Candidate.email == "p0@example.com"))
        person.location = "C"
    third = launched(engine, users["admin"], 0, name="C", steps=third_steps)
    report = outbox.deliver_due(engine)
    assert report.deferred == 1 and report.sent == 0
    with db.read_session(engine) as session:
        row = session.scalar(select(OutboxMessage).where(OutboxMessage.campaign_id == third))
        first_sent = session.scalar(
            select(OutboxMessage.sent_at).where(OutboxMessage.campaign_id == first)
        )
    assert row.status == "queued" and row.note == "Deferred by the frequency cap"
    assert abs(row.due_at - (first_sent + dt.timedelta(days=7))) < dt.timedelta(seconds=1)
    assert statuses(engine, second) == {"sent": 1}


def test_reply_stops_the_following_steps(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 2, steps=TWO_STEPS)
    outbox.deliver_due(engine)
    with db.write_session(engine) as session:
        replier = session.scalar(select(Candidate.id).where(Candidate.email == "p0@example.com"))
        session.add(Event(kind="reply", candidate_id=replier, campaign_id=campaign_id))
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(due_at=clock.now() - dt.timedelta(seconds=1))
        )
    report = outbox.deliver_due(engine)
    assert report.sent == 1 and report.cancelled == 1
    counts = campaign_figures.step_counts(engine, campaign_id)
    assert counts[1].cancelled_reasons == {"replied": 1}
    assert campaigns.get_campaign(engine, campaign_id).status == "completed"


def test_unsubscribed_after_launch_gets_nothing(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 2)
    with db.write_session(engine) as session:
        session.execute(
            update(Candidate)
            .where(Candidate.email == "p1@example.com")
            .values(unsubscribed_at=clock.now())
        )
    outbox.deliver_due(engine)
    assert set(acknowledged_per_address(smtp)) == {"p0@example.com"}
    assert campaign_figures.step_counts(engine, campaign_id)[0].cancelled_reasons == {
        "unsubscribed": 1
    }


def test_fault_matrix_loses_and_doubles_nothing(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 120)
    smtp.drop_before_data_every = 50
    smtp.drop_after_data_times = 1
    smtp.rcpt_replies = {
        "p7@example.com": "451 4.7.1 Greylisted, try again later",
        "p8@example.com": "550 5.1.1 No such user",
    }
    report = outbox.deliver_due(engine)
    counts = statuses(engine, campaign_id)
    assert counts == {"sent": 117, "needs_review": 1, "failed": 2}
    assert report.needs_review == 1
    delivered = acknowledged_per_address(smtp)
    assert max(delivered.values()) == 1
    with db.read_session(engine) as session:
        review = session.scalar(select(OutboxMessage).where(OutboxMessage.status == "needs_review"))
        failed = {
            row.to_address: row
            for row in session.scalars(
                select(OutboxMessage).where(OutboxMessage.status == "failed")
            )
        }
        suppressed = session.scalar(
            select(Suppression.reason).where(
                Suppression.address_hash == address_hash("p8@example.com")
            )
        )
    # The one lost after DATA reached the server once and is never sent again by itself.
    assert [m.acknowledged for m in smtp.messages_to(review.to_address)] == [False]
    assert review.to_address not in delivered
    assert failed["p8@example.com"].smtp_reply.startswith("550 5.1.1 No such user")
    assert failed["p7@example.com"].smtp_reply.startswith("451")
    assert failed["p7@example.com"].attempts == outbox.MAX_ATTEMPTS
    assert suppressed == "hard_bounce"
    everyone_else = {f"p{n}@example.com" for n in range(120)} - {
        "p7@example.com", "p8@example.com", review.to_address,
    }  # fmt: skip
    assert set(delivered) == everyone_else
    # Settling the review: it arrived. Running again sends nothing more.
    campaign_lifecycle.resolve_review(
        engine, actor=users["admin"], outbox_id=review.id, arrived=True
    )
    assert outbox.deliver_due(engine).sent == 0
    assert max(acknowledged_per_address(smtp).values()) == 1


def test_transient_failure_is_retried_later_with_backoff(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_RETRY_BASE", "60")
    campaign_id = launched(engine, users["admin"], 1)
    smtp.rcpt_replies = {"p0@example.com": "451 4.7.1 Try later"}
    report = outbox.deliver_due(engine)
    assert report.retried == 1
    with db.read_session(engine) as session:
        row = session.scalar(select(OutboxMessage))
    assert row.status == "queued" and row.attempts == 1
    assert dt.timedelta(seconds=55) < row.due_at - clock.now() <= dt.timedelta(seconds=60)
    smtp.rcpt_replies = {}
    with db.write_session(engine) as session:
        session.execute(update(OutboxMessage).values(due_at=clock.now()))
    assert outbox.deliver_due(engine).sent == 1
    assert statuses(engine, campaign_id) == {"sent": 1}


def test_wrong_login_pauses_the_campaign_and_keeps_every_message(
    engine: Engine, users: dict[str, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FaultySmtpServer(auth=("team", "right")) as server:
        for name, value in {
            "CRM_SMTP_HOST": server.host, "CRM_SMTP_PORT": str(server.port),
            "CRM_SMTP_SECURITY": "none", "CRM_SMTP_USER": "team", "CRM_SMTP_PASSWORD": "wrong",
            "CRM_FROM": "talent@acme.example", "CRM_SEND_RATE": "1000",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        campaign_id = launched(engine, users["admin"], 3)
        report = outbox.deliver_due(engine)
        assert report.sent == 0 and report.problem.startswith("535")
        detail = campaigns.get_campaign(engine, campaign_id)
        assert detail.status == "paused"
        assert "535" in detail.pause_reason
        assert statuses(engine, campaign_id) == {"queued": 3}
        monkeypatch.setenv("CRM_SMTP_PASSWORD", "right")
        campaign_lifecycle.resume(engine, actor=users["admin"], campaign_id=campaign_id)
        assert outbox.deliver_due(engine).sent == 3


def test_consecutive_failures_pause_the_campaign(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 8)
    smtp.rcpt_replies = {f"p{n}@example.com": "550 5.7.1 Rejected" for n in range(8)}
    report = outbox.deliver_due(engine)
    assert report.failed == outbox.PAUSE_AFTER_FAILURES
    detail = campaigns.get_campaign(engine, campaign_id)
    assert detail.status == "paused"
    assert "5 failed attempts in a row" in detail.pause_reason
    assert statuses(engine, campaign_id) == {"failed": 5, "queued": 3}


def test_resume_respaces_overdue_messages(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_SEND_RATE", "2")
    campaign_id = launched(engine, users["admin"], 4)
    campaign_lifecycle.pause(engine, actor=users["admin"], campaign_id=campaign_id)
    assert outbox.deliver_due(engine).sent == 0
    with db.write_session(engine) as session:
        session.execute(update(OutboxMessage).values(due_at=clock.now() - dt.timedelta(days=3)))
    before = clock.now()
    assert campaign_lifecycle.resume(engine, actor=users["admin"], campaign_id=campaign_id) == 4
    with db.read_session(engine) as session:
        due = sorted(session.scalars(select(OutboxMessage.due_at)))
    assert due[0] >= before - dt.timedelta(seconds=1)
    gaps = [b - a for a, b in zip(due, due[1:], strict=False)]
    assert all(abs(gap - dt.timedelta(seconds=0.5)) < dt.timedelta(milliseconds=50) for gap in gaps)


def test_two_workers_at_once_send_each_message_once(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 150)
    reports: list[outbox.DeliveryReport] = []

    def work(name: str) -> None:
        reports.append(
            outbox.deliver_due(
                db.create_engine_for(str(engine.url.render_as_string(hide_password=False))),
                worker=name,
            )
        )

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in reports) == 150
    assert statuses(engine, campaign_id) == {"sent": 150}
    delivered = acknowledged_per_address(smtp)
    assert len(delivered) == 150 and max(delivered.values()) == 1
    if BACKEND == "postgres":
        assert all(r.sent > 0 for r in reports), "both workers should share the queue"


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        python_command("-m", "crm.cli", "send", "--once"),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_killed_workers_never_double_send(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    people = 200
    campaign_id = launched(engine, users["admin"], people)
    env = {**os.environ, "CRM_SEND_RATE": "150"}
    kills = 0
    for delay in (0.9, 1.1, 1.3):
        worker = _worker(env)
        # Kill once it is visibly mid-batch.
        deadline = time.monotonic() + 30
        start_count = len(smtp.received)
        while len(smtp.received) < start_count + 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay - 0.9)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        kills += 1
    final = _worker(env)
    _, errors = final.communicate(timeout=120)
    assert final.returncode == 0, errors.decode()
    counts = statuses(engine, campaign_id)
    assert counts.get("needs_review", 0) <= kills
    assert counts["sent"] + counts.get("needs_review", 0) == people
    delivered = acknowledged_per_address(smtp)
    assert max(delivered.values()) == 1
    with db.read_session(engine) as session:
        review = set(
            session.scalars(
                select(OutboxMessage.to_address).where(OutboxMessage.status == "needs_review")
            )
        )
        sent = set(
            session.scalars(select(OutboxMessage.to_address).where(OutboxMessage.status == "sent"))
        )
    # Every sent row reached the server exactly once; reviewed ones at most once.
    assert sent <= set(delivered)
    assert all(delivered.get(address, 0) <= 1 for address in review)
    assert campaigns.get_campaign(engine, campaign_id).status in {"active", "completed"}
    with db.read_session(engine) as session:
        assert session.scalar(select(Campaign.status)) in {"active", "completed"}


def test_first_message_to_a_sourced_person_says_who_we_are_and_why(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    launched(engine, users["admin"], 1, steps=TWO_STEPS)
    with db.write_session(engine) as session:
        session.execute(update(Candidate).values(source="LinkedIn"))
    outbox.deliver_due(engine)
    with db.write_session(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(due_at=clock.now() - dt.timedelta(seconds=1))
        )
    outbox.deliver_due(engine)
    first, second = (m.message.get_body(("plain",)).get_content() for m in smtp.received)
    assert "found your public professional profile (source: LinkedIn)" in first
    assert "legitimate interest" in first and "Unsubscribe: https://" in first
    assert "found your public professional profile" not in second
    assert "Unsubscribe: https://" in second
