"""The fault-injecting SMTP test server, exercised with smtplib and yagmail clients."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import yagmail

from tests.smtp_server import FaultySmtpServer
from tests.smtp_server import smtp_server as smtp_server_fixture  # noqa: F401

SENDER = "recruiter@example.com"


def make_message(to: str | list[str], subject: str = "Hello") -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = ", ".join([to] if isinstance(to, str) else to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="crm.test")
    message["X-Crm-Batch"] = "batch-1"
    message.set_content("Hi there,\nthis is a test.\n")
    return message


def connect(server: FaultySmtpServer) -> smtplib.SMTP:
    return smtplib.SMTP(server.host, server.port, timeout=5)


def yagmail_client(
    server: FaultySmtpServer, user: str = SENDER, password: str = "", skip_login: bool = True
) -> yagmail.SMTP:
    client = yagmail.SMTP(
        user,
        password,
        host=server.host,
        port=server.port,
        smtp_starttls=False,
        smtp_ssl=False,
        smtp_skip_login=skip_login,
    )
    client.login()  # yagmail connects lazily; .smtp is None until login()
    return client


def test_delivers_and_records_message_with_headers(smtp_server: FaultySmtpServer) -> None:
    message = make_message("ada@example.com", subject="Interview — next week")
    with connect(smtp_server) as client:
        assert client.send_message(message) == {}

    [received] = smtp_server.received
    assert received.acknowledged is True
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.message["Message-ID"] == message["Message-ID"]
    assert received.message["Subject"] == "Interview — next week"
    assert received.message["X-Crm-Batch"] == "batch-1"
    assert received.message.get_content() == "Hi there,\nthis is a test.\n"
    assert b"Message-ID: " + message["Message-ID"].encode() in received.raw
    assert smtp_server.messages_to("ADA@example.com") == [received]
    assert smtp_server.messages_to("bob@example.com") == []


def test_yagmail_client_delivers_via_send_message(smtp_server: FaultySmtpServer) -> None:
    yag = yagmail_client(smtp_server)
    try:
        message = make_message(["ada@example.com", "bob@example.com"])
        assert yag.smtp.send_message(message) == {}
    finally:
        yag.close()

    [received] = smtp_server.received
    assert received.rcpt_tos == ["ada@example.com", "bob@example.com"]
    assert received.message["Message-ID"] == message["Message-ID"]
    assert smtp_server.connections == 1


def test_drop_before_data_every_third_message(smtp_server: FaultySmtpServer) -> None:
    smtp_server.drop_before_data_every = 3
    messages = [make_message(f"c{i}@example.com") for i in range(1, 5)]

    with connect(smtp_server) as client:
        client.send_message(messages[0])
        client.send_message(messages[1])
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.send_message(messages[2])
    with connect(smtp_server) as client:
        client.send_message(messages[3])

    ids = [m.message["Message-ID"] for m in smtp_server.received]
    assert ids == [messages[i]["Message-ID"] for i in (0, 1, 3)]
    assert smtp_server.messages_to("c3@example.com") == []
    assert smtp_server.connections == 2


def test_drop_before_data_with_yagmail(smtp_server: FaultySmtpServer) -> None:
    smtp_server.drop_before_data_every = 1
    yag = yagmail_client(smtp_server)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        yag.smtp.send_message(make_message("ada@example.com"))
    yag.close()
    assert smtp_server.received == []


def test_drop_after_data_records_unacknowledged_message(smtp_server: FaultySmtpServer) -> None:
    smtp_server.drop_after_data_times = 1
    first, second = make_message("ada@example.com"), make_message("bob@example.com")

    with connect(smtp_server) as client, pytest.raises(smtplib.SMTPServerDisconnected):
        client.send_message(first)
    # The knob is used up: the next message is acknowledged normally.
    with connect(smtp_server) as client:
        client.send_message(second)

    assert smtp_server.drop_after_data_times == 0
    unacked, acked = smtp_server.received
    assert unacked.message["Message-ID"] == first["Message-ID"]
    assert unacked.acknowledged is False
    assert acked.message["Message-ID"] == second["Message-ID"]
    assert acked.acknowledged is True


def test_drop_after_data_with_yagmail(smtp_server: FaultySmtpServer) -> None:
    smtp_server.drop_after_data_times = 1
    yag = yagmail_client(smtp_server)
    message = make_message("ada@example.com")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        yag.smtp.send_message(message)
    yag.close()
    [received] = smtp_server.messages_to("ada@example.com")
    assert received.acknowledged is False
    assert received.message["Message-ID"] == message["Message-ID"]


@pytest.mark.parametrize(
    ("reply", "code"),
    [("451 4.7.1 Try again later", 451), ("550 5.1.1 No such user", 550)],
)
def test_rcpt_reply_refuses_recipient(smtp_server: FaultySmtpServer, reply: str, code: int) -> None:
    smtp_server.rcpt_replies = {"ada@example.com": reply}
    with connect(smtp_server) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as caught:
            client.send_message(make_message("Ada@Example.com"))
        # The connection stays usable after a refusal.
        client.send_message(make_message("bob@example.com"))

    refused_code, refused_text = caught.value.recipients["Ada@Example.com"]
    assert refused_code == code
    assert refused_text == reply.split(" ", 1)[1].encode()
    assert smtp_server.messages_to("ada@example.com") == []
    assert len(smtp_server.messages_to("bob@example.com")) == 1


def test_partial_refusal_does_not_raise(smtp_server: FaultySmtpServer) -> None:
    smtp_server.rcpt_replies = {"ada@example.com": "550 5.1.1 No such user"}
    with connect(smtp_server) as client:
        refused = client.send_message(make_message(["ada@example.com", "bob@example.com"]))

    assert refused == {"ada@example.com": (550, b"5.1.1 No such user")}
    [received] = smtp_server.received
    assert received.rcpt_tos == ["bob@example.com"]


def test_auth_wrong_password_is_rejected() -> None:
    with FaultySmtpServer(auth=("mailer", "s3cret")) as server:
        with connect(server) as client, pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            client.login("mailer", "wrong")
        assert caught.value.smtp_code == 535

        with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
            yagmail_client(server, user="mailer@example.com", password="x", skip_login=False)
        assert caught.value.smtp_code == 535


def test_auth_right_password_works_and_mail_without_auth_is_refused() -> None:
    with FaultySmtpServer(auth=("mailer@example.com", "s3cret")) as server:
        yag = yagmail_client(server, user="mailer@example.com", password="s3cret", skip_login=False)
        try:
            yag.smtp.send_message(make_message("ada@example.com"))
        finally:
            yag.close()
        assert len(server.messages_to("ada@example.com")) == 1

        with connect(server) as client:
            client.ehlo()
            assert "PLAIN" in client.esmtp_features["auth"]
            assert "LOGIN" in client.esmtp_features["auth"]
            with pytest.raises(smtplib.SMTPSenderRefused) as caught:
                client.send_message(make_message("bob@example.com"))
        assert caught.value.smtp_code == 530
        assert server.messages_to("bob@example.com") == []


def test_auth_login_mechanism() -> None:
    with FaultySmtpServer(auth=("mailer", "s3cret")) as server, connect(server) as client:
        client.ehlo()
        client.user, client.password = "mailer", "s3cret"
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235


def test_without_auth_no_login_is_offered(smtp_server: FaultySmtpServer) -> None:
    with connect(smtp_server) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            client.login("mailer", "s3cret")


def test_connections_are_counted(smtp_server: FaultySmtpServer) -> None:
    assert smtp_server.connections == 0
    with connect(smtp_server) as client:
        for i in range(3):
            client.send_message(make_message(f"c{i}@example.com"))
    assert smtp_server.connections == 1
    with connect(smtp_server):
        pass
    assert smtp_server.connections == 2
    assert len(smtp_server.received) == 3


def test_reset_clears_messages_counters_and_knobs(smtp_server: FaultySmtpServer) -> None:
    with connect(smtp_server) as client:
        client.send_message(make_message("ada@example.com"))
    smtp_server.drop_before_data_every = 2
    smtp_server.drop_after_data_times = 3
    smtp_server.rcpt_replies = {"bob@example.com": "550 5.1.1 No such user"}

    smtp_server.reset()

    assert smtp_server.received == []
    assert smtp_server.connections == 0
    assert smtp_server.drop_before_data_every is None
    assert smtp_server.drop_after_data_times == 0
    assert smtp_server.rcpt_replies == {}
    with connect(smtp_server) as client:
        for _ in range(2):
            client.send_message(make_message("bob@example.com"))
    assert [m.acknowledged for m in smtp_server.received] == [True, True]


def test_server_stops_and_frees_port() -> None:
    with FaultySmtpServer() as server:
        port = server.port
        assert port > 0
    with pytest.raises(OSError):
        smtplib.SMTP(server.host, port, timeout=1)
