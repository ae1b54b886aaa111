"""Rendering a step into a real message, and classifying what the SMTP server said."""

from __future__ import annotations

import email
import email.policy
from types import SimpleNamespace

from crm import mailer, merge_tags
from crm.config import SmtpSettings
from tests.smtp_server import FaultySmtpServer

ALLOWED = merge_tags.available_fields()


def render(body: str, **values: str | None) -> mailer.RenderedEmail:
    subject = merge_tags.parse("Hello {{first_name|there}}", allowed=ALLOWED)
    values.setdefault("unsubscribe_url", "https://crm.example/unsubscribe?t=1.abc")
    return mailer.render(
        subject, merge_tags.parse(body, allowed=ALLOWED), values, footer="Footer text."
    )


def test_markdown_becomes_html_and_a_plain_text_part() -> None:
    rendered = render(
        "Hi **{{first_name}}**, see [our jobs](https://acme.example/jobs).", first_name="Ana"
    )
    assert rendered.subject == "Hello Ana"
    assert "<strong>Ana</strong>" in rendered.html
    assert '<a href="https://acme.example/jobs"' in rendered.html
    assert "Hi **Ana**, see our jobs (https://acme.example/jobs)." in rendered.text
    assert rendered.text.rstrip().endswith("Unsubscribe: https://crm.example/unsubscribe?t=1.abc")
    assert 'href="https://crm.example/unsubscribe?t=1.abc"' in rendered.html


def test_candidate_values_are_never_markup() -> None:
    rendered = render(
        "Hi {{first_name}} at {{company}}",
        first_name="<img src=x onerror=alert(1)>",
        company="**[click](javascript:alert(1))**",
    )
    assert "<img" not in rendered.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered.html
    assert "javascript:" not in rendered.html.replace("[click](javascript:alert(1))", "")
    assert "<strong>" not in rendered.html


def test_template_html_is_text_and_dangerous_links_are_dropped() -> None:
    rendered = render("<script>alert(1)</script> [x](javascript:alert(1))")
    assert "<script>" not in rendered.html
    assert 'href="javascript' not in rendered.html


def test_subject_values_cannot_add_headers() -> None:
    subject = merge_tags.parse("Hi {{first_name}}", allowed=ALLOWED)
    rendered = mailer.render(
        subject,
        merge_tags.parse("x", allowed=ALLOWED),
        {"first_name": "Ana\r\nBcc: evil@example.com"},
        footer="f",
    )
    assert rendered.subject == "Hi Ana Bcc: evil@example.com"


def test_message_is_multipart_alternative_with_unique_ids() -> None:
    rendered = render("Hi {{first_name}}", first_name="Zoë")
    ids = {mailer.new_message_id(7, "team@acme.example") for _ in range(50)}
    assert len(ids) == 50
    message = mailer.build_message(
        rendered,
        sender=mailer.format_sender("Rita Recruiter", "team@acme.example"),
        to="ana@example.com",
        message_id=ids.pop(),
        unsubscribe_url="https://crm.example/unsubscribe?t=1.abc",
    )
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["List-Unsubscribe"] == "<https://crm.example/unsubscribe?t=1.abc>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"].endswith("@acme.example>")
    assert "Zoë" in parsed.get_body(("plain",)).get_content()


def test_preview_document_blocks_scripts_and_remote_content() -> None:
    document = mailer.preview_document(render("Hi"))
    assert "default-src 'none'" in document
    assert "<script" not in document


def _settings(server: FaultySmtpServer, **overrides: str) -> SmtpSettings:
    values = dict(host=server.host, port=server.port, user="", password="", security="none",
                  sender="team@acme.example")  # fmt: skip
    values.update(overrides)
    return SmtpSettings(**values)  # type: ignore[arg-type]


def _message(to: str) -> email.message.EmailMessage:
    return mailer.build_message(
        render("Hi"), sender="team@acme.example", to=to,
        message_id=mailer.new_message_id(1, "team@acme.example"), unsubscribe_url="",
    )  # fmt: skip


def test_send_outcomes_against_a_real_server() -> None:
    with FaultySmtpServer() as server:
        connection = mailer.MailConnection(_settings(server))
        assert connection.send(_message("a@example.com")).outcome == mailer.SendOutcome.SENT
        server.rcpt_replies = {
            "soft@example.com": "451 4.7.1 Try again later",
            "hard@example.com": "550 5.1.1 No such user",
        }
        soft = connection.send(_message("soft@example.com"))
        hard = connection.send(_message("hard@example.com"))
        assert (soft.outcome, soft.code) == (mailer.SendOutcome.TRANSIENT, 451)
        assert (hard.outcome, hard.code) == (mailer.SendOutcome.PERMANENT, 550)
        assert mailer.is_hard_bounce(hard)
        assert "No such user" in hard.reply
        server.drop_before_data_every = 1
        assert connection.send(_message("b@example.com")).outcome == mailer.SendOutcome.TRANSIENT
        server.drop_before_data_every = None
        server.drop_after_data_times = 1
        unknown = connection.send(_message("c@example.com"))
        assert unknown.outcome == mailer.SendOutcome.UNKNOWN
        assert connection.send(_message("d@example.com")).outcome == mailer.SendOutcome.SENT
        assert [m.rcpt_tos for m in server.received] == [
            ["a@example.com"], ["c@example.com"], ["d@example.com"],
        ]  # fmt: skip
        # One connection, reopened only after each of the two drops.
        assert server.connections == 3
        connection.close()


def test_wrong_login_is_a_connection_problem() -> None:
    with FaultySmtpServer(auth=("team", "right")) as server:
        connection = mailer.MailConnection(_settings(server, user="team", password="wrong"))
        result = connection.send(_message("a@example.com"))
        assert (result.outcome, result.code) == (mailer.SendOutcome.CONNECTION, 535)
        good = mailer.MailConnection(_settings(server, user="team", password="right"))
        assert good.send(_message("a@example.com")).outcome == mailer.SendOutcome.SENT
        good.close()


def test_values_for_accepts_a_candidate_like_object() -> None:
    values = merge_tags.values_for(SimpleNamespace(first_name=" Ana ", skills=[]))
    assert values["first_name"] == "Ana"
    assert values["skills"] is None


def test_a_tag_inside_a_link_is_checked_once_its_value_is_in() -> None:
    allowed = merge_tags.available_fields(["site"])
    body = mailer.prepare_body(merge_tags.parse("[My site]({{site}})", allowed=allowed))
    assert body.in_attribute
    subject = merge_tags.parse("x", allowed=allowed)
    bad = mailer.render(subject, body, {"site": "javascript:alert(1)"}, footer="f")
    good = mailer.render(subject, body, {"site": "https://ana.example"}, footer="f")
    assert "javascript" not in bad.html
    assert 'href="https://ana.example"' in good.html


def test_prepared_and_unprepared_bodies_render_the_same() -> None:
    template = merge_tags.parse("Hi **{{first_name}}** {{company|you}}", allowed=ALLOWED)
    subject = merge_tags.parse("s", allowed=ALLOWED)
    values = {"first_name": "mergetag1xdeadbeef <b>", "unsubscribe_url": "u"}
    once = mailer.render(subject, mailer.prepare_body(template), values, footer="f")
    assert once == mailer.render(subject, template, values, footer="f")
    assert "<strong>mergetag1xdeadbeef &lt;b&gt;</strong> you" in once.html
