"""Reading the mailbox against a real IMAP server (dovecot, tests/imap_server.py).

Messages go into the mailbox with IMAP APPEND, after a real campaign was delivered to
the SMTP test server, so every Message-ID matched here is one the outbox really sent.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from crm import config, db, outbox, replies
from crm.errors import ConfigError
from crm.identity import address_hash
from crm.models import Candidate, Enrollment, Event, OutboxMessage, Suppression, User
from tests.imap_server import NOT_INSTALLED, DovecotServer, free_port
from tests.smtp_server import FaultySmtpServer
from tests.test_outbox import TWO_STEPS, launched

SENDER = "talent@acme.example"


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    try:
        server = DovecotServer()
    except RuntimeError as error:
        if str(error) == NOT_INSTALLED:
            pytest.fail(NOT_INSTALLED, pytrace=False)
        raise
    with server:
        yield server


@pytest.fixture
def mailbox(
    engine: Engine, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> DovecotServer:
    """An empty INBOX on the shared dovecot, and CRM_IMAP_* pointing at it."""
    dovecot.empty()
    monkeypatch.setenv("CRM_IMAP_HOST", dovecot.host)
    monkeypatch.setenv("CRM_IMAP_PORT", str(dovecot.port))
    monkeypatch.setenv("CRM_IMAP_USER", dovecot.user)
    monkeypatch.setenv("CRM_IMAP_PASSWORD", dovecot.password)
    monkeypatch.setenv("CRM_IMAP_SECURITY", "none")
    return dovecot


@pytest.fixture
def sent(engine: Engine, users: dict[str, User], smtp: FaultySmtpServer) -> dict[str, int]:
    """A two-step campaign to p0..p2@example.com, step one delivered: address -> outbox id."""
    campaign_id = launched(engine, users["admin"], 3, steps=TWO_STEPS)
    assert outbox.deliver_due(engine).sent == 3
    with db.read_session(engine) as session:
        rows = session.execute(
            select(OutboxMessage.to_address, OutboxMessage.id).where(
                OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == "sent"
            )
        ).all()
    return {address: outbox_id for address, outbox_id in rows}


def message_id(engine: Engine, outbox_id: int) -> str:
    with db.read_session(engine) as session:
        value = session.scalar(
            select(OutboxMessage.message_id).where(OutboxMessage.id == outbox_id)
        )
    assert value and value.startswith("<")
    return value


def events(engine: Engine, kind: str) -> list[Event]:
    with db.read_session(engine) as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def candidate_id(engine: Engine, address: str) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(Candidate.id).where(Candidate.email_normalized == address))


def next_steps(engine: Engine) -> dict[str, tuple[str, str | None]]:
    """address -> (status, skip_reason) of each person's second step."""
    with db.read_session(engine) as session:
        rows = session.execute(
            select(Candidate.email, OutboxMessage.status, OutboxMessage.skip_reason)
            .join(Candidate, Candidate.id == OutboxMessage.candidate_id)
            .where(OutboxMessage.status != "sent")
        ).all()
    return {email: (status, reason) for email, status, reason in rows}


def enrollment_status(engine: Engine, address: str) -> str:
    with db.read_session(engine) as session:
        return session.scalar(
            select(Enrollment.status).where(
                Enrollment.candidate_id == candidate_id(engine, address)
            )
        )


def suppressed(engine: Engine) -> dict[str, str]:
    with db.read_session(engine) as session:
        return dict(session.execute(select(Suppression.address_hash, Suppression.reason)).all())


def reply(
    *,
    sender: str = "P0 Test <p0@example.com>",
    subject: str = "Re: Hi P0",
    message_id: str = "<reply-1@mail.example.com>",
    extra: str = "",
    body: str = "Sounds good, let's talk on Tuesday.",
) -> str:
    return (
        f"From: {sender}\n"
        f"To: Acme Talent <{SENDER}>\n"
        f"Subject: {subject}\n"
        "Date: Mon, 24 Nov 2099 10:00:00 +0000\n"
        f"Message-ID: {message_id}\n"
        f"{extra}"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "\n"
        f"{body}\n"
    )


def postfix_dsn(
    *,
    recipient: str,
    original_id: str,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
) -> str:
    """A bounce as Postfix writes it: text, message/delivery-status, text/rfc822-headers."""
    boundary = "3F1B12C0A2.1764000000/mail.acme.example"
    subject = (
        "Undelivered Mail Returned to Sender"
        if action == "failed"
        else "Delayed Mail (still being retried)"
    )
    return f"""Return-Path: <>
From: MAILER-DAEMON@mail.acme.example (Mail Delivery System)
Subject: {subject}
To: {SENDER}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Content-Transfer-Encoding: 8bit
Message-Id: <20991124100000.3F1B12C0A2@mail.acme.example>
Date: Mon, 24 Nov 2099 10:00:05 +0000 (UTC)

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=utf-8

This is the mail system at host mail.acme.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{recipient}>: host mx.example.com[93.184.216.34] said: 550 5.1.1
    <{recipient}>: Recipient address rejected: User unknown (in reply to RCPT TO
    command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.acme.example
X-Postfix-Queue-ID: 3F1B12C0A2
X-Postfix-Sender: rfc822; {SENDER}
Arrival-Date: Mon, 24 Nov 2099 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.example.com
Diagnostic-Code: {diagnostic.format(r=recipient)}

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{SENDER}>
From: Acme Talent <{SENDER}>
To: {recipient}
Subject: Hi P0
Message-ID: {original_id}
Date: Mon, 24 Nov 2099 09:59:59 +0000

--{boundary}--
"""


def exchange_dsn(*, recipient: str, original_id: str) -> str:
    """A bounce as Exchange writes it: the whole original as a message/rfc822 part."""
    boundary = "_000_exchange_boundary_"
    return f"""From: postmaster@outlook.example
To: {SENDER}
Subject: Undeliverable: Hi P0
Date: Mon, 24 Nov 2099 10:00:05 +0000
Message-ID: <bounce-77@outlook.example>
Content-Language: en-US
MIME-Version: 1.0
Content-Type: multipart/report; report-type="delivery-status"; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset="us-ascii"

Delivery has failed to these recipients or groups:

{recipient}
The email address you entered couldn't be found.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB1234.eurprd01.prod.outlook.example
Received-From-MTA: dns;AM0PR01MB5678.eurprd01.prod.outlook.example
Arrival-Date: Mon, 24 Nov 2099 10:00:01 +0000

Final-Recipient: rfc822;{recipient.upper()}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found

--{boundary}
Content-Type: message/rfc822

From: Acme Talent <{SENDER}>
To: <{recipient}>
Subject: Hi P0
Message-ID: {original_id}
MIME-Version: 1.0
Content-Type: text/plain

Hello P0.

--{boundary}--
"""


def check(engine: Engine) -> replies.MailboxReport:
    report = replies.check_mailbox(engine)
    assert report.problem is None, report.problem
    return report


# --- replies ----------------------------------------------------------------------------


def test_reply_matched_by_in_reply_to_records_and_stops_the_sequence(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    first = sent["p0@example.com"]
    # Sent from another address: only the In-Reply-To header can match it.
    mailbox.deliver(
        reply(
            sender="Pat Zero <pat.zero@home.example>",
            extra=f"In-Reply-To: {message_id(engine, first)}\n"
            f"References: {message_id(engine, sent['p1@example.com'])}\n",
        )
    )
    report = check(engine)
    assert (report.replies, report.unmatched, report.unreadable) == (1, 0, 0)
    [event] = events(engine, "reply")
    assert event.outbox_message_id == first
    assert event.candidate_id == candidate_id(engine, "p0@example.com")
    with db.read_session(engine) as session:
        row = session.get(OutboxMessage, first)
        assert event.campaign_id == row.campaign_id and event.step_id == row.step_id
        person = session.get(Candidate, event.candidate_id)
        assert person.last_contact_channel == "email reply"
    assert event.detail == {
        "source": "mailbox",
        "subject": "Re: Hi P0",
        "message_id": "<reply-1@mail.example.com>",
    }
    assert next_steps(engine) == {
        "p0@example.com": ("cancelled", "replied"),
        "p1@example.com": ("queued", None),
        "p2@example.com": ("queued", None),
    }
    assert enrollment_status(engine, "p0@example.com") == "stopped"
    [flags] = mailbox.flags()
    assert replies.PROCESSED in flags
    assert "\\Seen" not in flags and replies.UNREADABLE not in flags  # a person's mailbox


def test_reply_matched_by_references_only(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    target = sent["p1@example.com"]
    mailbox.deliver(
        reply(
            sender="Someone <someone@elsewhere.example>",
            subject="Fwd: Re: Hi P1",
            extra="In-Reply-To: not a <message id\n"
            f"References: <unrelated-1@elsewhere.example>\n"
            f"  {message_id(engine, target)}\n  <unrelated-2@elsewhere.example> <broken\n",
        )
    )
    report = check(engine)
    assert report.replies == 1
    [event] = events(engine, "reply")
    assert event.outbox_message_id == target
    assert next_steps(engine)["p1@example.com"] == ("cancelled", "replied")
    assert next_steps(engine)["p0@example.com"] == ("queued", None)


def test_reply_matched_by_sender_address_only(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    mailbox.deliver(reply(sender='"P2 Test" <P2@Example.COM>', subject="Hello again"))
    mailbox.deliver(
        reply(sender="Stranger <stranger@nowhere.example>", message_id="<stranger@x.example>")
    )
    # Written long before we mailed p1: old mail is not an answer to this campaign.
    mailbox.deliver(
        reply(sender="p1@example.com", message_id="<old@x.example>").replace(
            "Date: Mon, 24 Nov 2099", "Date: Mon, 24 Nov 2003"
        )
    )
    report = check(engine)
    assert (report.replies, report.unmatched) == (1, 2)
    [event] = events(engine, "reply")
    assert event.candidate_id == candidate_id(engine, "p2@example.com")
    assert event.outbox_message_id == sent["p2@example.com"]
    assert next_steps(engine)["p2@example.com"] == ("cancelled", "replied")
    # The unmatched message is flagged too, so it is not read again every minute.
    assert all(replies.PROCESSED in flags for flags in mailbox.flags())


@pytest.mark.parametrize(
    "extra, subject",
    [
        ("Auto-Submitted: auto-replied\n", "Re: Hi P0"),
        ("X-Autoreply: yes\n", "Re: Hi P0"),
        ("X-Autorespond: yes\n", "Re: Hi P0"),
        ("Precedence: auto_reply\n", "Re: Hi P0"),
        ("Precedence: bulk\n", "Re: Hi P0"),
        ("", "Automatic reply: Hi P0"),
        ("", "Out of Office: Hi P0"),
        ("", "=?utf-8?q?R=C3=A9ponse_automatique_=3A_Hi_P0?="),
    ],
)
def test_auto_reply_is_not_a_reply(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int], extra: str, subject: str
) -> None:
    original = message_id(engine, sent["p0@example.com"])
    mailbox.deliver(reply(subject=subject, extra=f"In-Reply-To: {original}\n{extra}"))
    report = check(engine)
    assert (report.auto_replies, report.replies) == (1, 0)
    assert events(engine, "reply") == []
    assert next_steps(engine)["p0@example.com"] == ("queued", None)
    assert replies.PROCESSED in mailbox.flags()[0]


def test_auto_submitted_no_is_a_reply(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    original = message_id(engine, sent["p0@example.com"])
    mailbox.deliver(reply(extra=f"In-Reply-To: {original}\nAuto-Submitted: no\n"))
    assert check(engine).replies == 1


# --- bounces ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["postfix", "exchange"])
def test_hard_bounce_suppresses_the_address_and_stops_its_sequences(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int], style: str
) -> None:
    bounced = sent["p0@example.com"]
    original = message_id(engine, bounced)
    if style == "postfix":
        # The address the mail server reports is an alias: only the Message-ID matches.
        mailbox.deliver(postfix_dsn(recipient="pzero@alias.example", original_id=original))
    else:
        mailbox.deliver(exchange_dsn(recipient="p0@example.com", original_id=original))
    report = check(engine)
    assert (report.bounces_hard, report.bounces_soft, report.auto_replies) == (1, 0, 0)
    assert suppressed(engine) == {address_hash("p0@example.com"): "hard_bounce"}
    [event] = events(engine, "bounce")
    assert event.outbox_message_id == bounced
    assert event.detail["hard"] is True
    assert "5.1.1" in event.detail["reason"]
    assert next_steps(engine) == {
        "p0@example.com": ("cancelled", "hard bounce"),
        "p1@example.com": ("queued", None),
        "p2@example.com": ("queued", None),
    }
    assert enrollment_status(engine, "p0@example.com") == "stopped"
    assert events(engine, "reply") == []


def test_hard_bounce_matched_by_address_when_the_headers_are_not_ours(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    mailbox.deliver(postfix_dsn(recipient="P1@example.com", original_id="<not-ours@x.example>"))
    report = check(engine)
    assert report.bounces_hard == 1
    assert suppressed(engine) == {address_hash("p1@example.com"): "hard_bounce"}
    assert next_steps(engine)["p1@example.com"] == ("cancelled", "hard bounce")


def test_soft_bounce_records_an_event_and_suppresses_nothing(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    bounced = sent["p0@example.com"]
    mailbox.deliver(
        postfix_dsn(
            recipient="p0@example.com",
            original_id=message_id(engine, bounced),
            action="delayed",
            status="4.4.1",
            diagnostic="X-Postfix; connect to mx.example.com[93.184.216.34]:25: timed out",
        )
    )
    mailbox.deliver(
        postfix_dsn(
            recipient="p1@example.com",
            original_id=message_id(engine, sent["p1@example.com"]),
            status="4.2.2",
            diagnostic="smtp; 452 4.2.2 Mailbox full",
        )
    )
    report = check(engine)
    assert (report.bounces_hard, report.bounces_soft) == (0, 2)
    assert [(e.outbox_message_id, e.detail["hard"]) for e in events(engine, "bounce")] == [
        (bounced, False),
        (sent["p1@example.com"], False),
    ]
    assert suppressed(engine) == {}
    assert next_steps(engine)["p0@example.com"] == ("queued", None)
    assert next_steps(engine)["p1@example.com"] == ("queued", None)


def test_delivered_notice_changes_nothing(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    original = message_id(engine, sent["p0@example.com"])
    mailbox.deliver(
        postfix_dsn(
            recipient="p0@example.com",
            original_id=original,
            action="delivered",
            status="2.0.0",
            diagnostic="smtp; 250 2.0.0 OK",
        )
    )
    report = check(engine)
    assert (report.notices, report.bounces_hard, report.bounces_soft) == (1, 0, 0)
    assert events(engine, "bounce") == [] and events(engine, "reply") == []


# --- what cannot be read ----------------------------------------------------------------

ODD_DSN = """From: MAILER-DAEMON@mx.odd.example
To: talent@acme.example
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered. Sorry!

--b1
Content-Type: message/delivery-status

The recipient was not happy, please try something else.

--b1--
"""

QMAIL_BOUNCE = """From: MAILER-DAEMON@qmail.example
To: talent@acme.example
Subject: failure notice

Hi. This is the qmail-send program at qmail.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<p1@example.com>:
Sorry, no mailbox here by that name. (#5.1.1)
"""

GARBAGE = bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"") * 4 + b"\r\n"


def test_unreadable_messages_are_counted_logged_flagged_and_kept(
    engine: Engine,
    mailbox: DovecotServer,
    sent: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox.deliver(ODD_DSN)
    mailbox.deliver(QMAIL_BOUNCE)
    mailbox.deliver(GARBAGE)
    mailbox.deliver(reply(extra=f"In-Reply-To: {message_id(engine, sent['p0@example.com'])}\n"))
    with caplog.at_level(logging.INFO, logger="crm.replies"):
        report = check(engine)
    assert (report.unreadable, report.replies, report.bounces_hard) == (3, 1, 0)
    assert suppressed(engine) == {}
    assert len(events(engine, "reply")) == 1
    unreadable_lines = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(unreadable_lines) == 3
    assert all(r.levelno == logging.WARNING for r in unreadable_lines)
    assert any("not a standard DSN" in r.getMessage() for r in unreadable_lines)
    # Kept in the mailbox, flagged so they are not retried forever.
    flags = mailbox.flags()
    assert mailbox.count() == 4
    assert [replies.UNREADABLE in f for f in flags] == [True, True, True, False]
    assert all(replies.PROCESSED in f for f in flags)
    assert replies.check_mailbox(engine).unreadable == 0


def test_parse_message_refuses_what_it_cannot_read() -> None:
    for raw in (b"", b"   \r\n", b"\r\n\r\njust a body\r\n", GARBAGE):
        with pytest.raises(replies.Unreadable):
            replies.parse_message(raw)


# --- idempotence, and nothing lost ------------------------------------------------------


def test_checking_twice_records_nothing_twice(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int]
) -> None:
    mailbox.deliver(reply(extra=f"In-Reply-To: {message_id(engine, sent['p0@example.com'])}\n"))
    mailbox.deliver(
        postfix_dsn(
            recipient="p1@example.com", original_id=message_id(engine, sent["p1@example.com"])
        )
    )
    mailbox.deliver(
        postfix_dsn(
            recipient="p2@example.com",
            original_id=message_id(engine, sent["p2@example.com"]),
            action="delayed",
            status="4.4.1",
        )
    )
    first = check(engine)
    assert (first.replies, first.bounces_hard, first.bounces_soft) == (1, 1, 1)
    second = check(engine)
    assert second.processed == 0
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Event).where(
            Event.kind.in_(("reply", "bounce"))
        )) == 3  # fmt: skip
    assert len(suppressed(engine)) == 1
    # A flag lost (a crash between recording and flagging): the reply is still recorded once.
    mailbox.set_flags(1, "-FLAGS", f"({replies.PROCESSED})")
    third = check(engine)
    assert third.replies == 1
    assert len(events(engine, "reply")) == 1
    # New mail after that is read as usual.
    mailbox.deliver(
        reply(
            sender="p2@example.com",
            message_id="<reply-2@mail.example.com>",
            extra=f"In-Reply-To: {message_id(engine, sent['p2@example.com'])}\n",
        )
    )
    assert check(engine).replies == 1
    assert len(events(engine, "reply")) == 2


def test_database_failure_leaves_the_message_for_next_time(
    engine: Engine,
    mailbox: DovecotServer,
    sent: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox.deliver(reply(extra=f"In-Reply-To: {message_id(engine, sent['p0@example.com'])}\n"))

    def database_down(*args: object, **kwargs: object) -> bool:
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    with monkeypatch.context() as patch:
        patch.setattr(replies, "record_reply", database_down)
        report = replies.check_mailbox(engine)
    assert report.problem is not None and "database" in report.problem
    assert report.problem.count(".") == 1 and report.problem.endswith(".")
    assert replies.PROCESSED not in mailbox.flags()[0]
    assert check(engine).replies == 1
    assert len(events(engine, "reply")) == 1


# --- a server that is down, refuses us or talks nonsense --------------------------------


def test_server_down_gives_a_problem_not_an_exception(
    engine: Engine, mailbox: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_IMAP_PORT", str(free_port()))
    report = replies.check_mailbox(engine)
    assert report.problem is not None
    assert "cannot be reached" in report.problem and "Connection refused" in report.problem
    assert report.processed == 0


def test_wrong_password_gives_a_problem(
    engine: Engine, mailbox: DovecotServer, sent: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox.deliver(reply(extra=f"In-Reply-To: {message_id(engine, sent['p0@example.com'])}\n"))
    monkeypatch.setenv("CRM_IMAP_PASSWORD", "wrong-password")
    report = replies.check_mailbox(engine)
    assert report.problem is not None and "refused the login" in report.problem
    assert report.processed == 0 and events(engine, "reply") == []
    assert replies.PROCESSED not in mailbox.flags()[0]


class GarbageServer:
    """A TCP server that answers every connection with something that is not IMAP."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.sendall(self.answer)
                connection.settimeout(1)
                with contextlib.suppress(OSError):
                    connection.recv(1024)

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    "answer",
    [b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", b"\x16\x03\x01\x00\x00garbage", b""],
)
def test_garbage_server_gives_a_problem(
    engine: Engine, mailbox: DovecotServer, monkeypatch: pytest.MonkeyPatch, answer: bytes
) -> None:
    server = GarbageServer(answer)
    try:
        monkeypatch.setenv("CRM_IMAP_PORT", str(server.port))
        report = replies.check_mailbox(engine)
    finally:
        server.close()
    assert report.problem is not None
    assert report.problem.startswith(f"The mailbox server at 127.0.0.1:{server.port}")
    assert report.problem.endswith(".")


def test_not_configured_gives_a_problem(engine: Engine) -> None:
    report = replies.check_mailbox(engine)
    assert report.problem == "Reading the mailbox is not set up: CRM_IMAP_HOST is empty."


# --- settings ---------------------------------------------------------------------------


def test_imap_settings(crm_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.load_settings().imap is None
    assert not config.load_settings().imap_configured
    monkeypatch.setenv("CRM_IMAP_HOST", "imap.acme.example")
    monkeypatch.setenv("CRM_IMAP_USER", "talent")
    monkeypatch.setenv("CRM_IMAP_PASSWORD", "secret")
    settings = config.load_settings()
    assert settings.imap_configured
    assert settings.imap == config.ImapSettings(
        host="imap.acme.example", port=993, user="talent", password="secret", security="ssl"
    )
    assert settings.imap.folder == "INBOX"
    monkeypatch.setenv("CRM_IMAP_SECURITY", "STARTTLS")
    assert (config.load_settings().imap.security, config.load_settings().imap.port) == (
        "starttls",
        143,
    )
    monkeypatch.setenv("CRM_IMAP_SECURITY", "none")
    monkeypatch.setenv("CRM_IMAP_PORT", "1143")
    assert config.load_settings().imap.port == 1143
    monkeypatch.setenv("CRM_IMAP_SECURITY", "tls")
    with pytest.raises(ConfigError, match="CRM_IMAP_SECURITY must be none, starttls or ssl"):
        config.load_settings()
    monkeypatch.setenv("CRM_IMAP_SECURITY", "ssl")
    monkeypatch.setenv("CRM_IMAP_PORT", "imap")
    with pytest.raises(ConfigError, match="CRM_IMAP_PORT must be a port number"):
        config.load_settings()


def test_bad_settings_give_a_problem(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_IMAP_HOST", "imap.acme.example")
    monkeypatch.setenv("CRM_IMAP_SECURITY", "tls")
    report = replies.check_mailbox(engine)
    assert report.problem is not None and "CRM_IMAP_SECURITY" in report.problem


def test_a_nul_in_a_subject_is_dropped_not_stored_or_retried_forever() -> None:
    """No database stores NUL (PostgreSQL refuses it; the app refuses it on both), so a
    reply whose subject carries one would fail on every round of the mailbox loop."""
    assert replies._text("Re: Hello\x00 there") == "Re: Hello there"
    assert replies._text("=?utf-8?q?Re=3A_Hi=00_you?=") == "Re: Hi you"
