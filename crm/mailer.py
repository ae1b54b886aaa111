"""Turning a campaign step into a real email, and the SMTP connection it goes out on.

Messages are built with the standard library (a real multipart/alternative with a plain
text part, a unique Message-ID, the List-Unsubscribe headers of RFC 8058) and sent with
`smtp.send_message` over yagmail's connection, one connection per batch. Merged text
never goes through yagmail's content builder, which would attach any string naming a file.
"""

from __future__ import annotations

import contextlib
import html
import re
import secrets
import smtplib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr

import nh3
from markdown_it import MarkdownIt

from crm.config import SmtpSettings
from crm.merge_tags import Template

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_INLINE_LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
_ALLOWED_TAGS = {
    "a", "b", "blockquote", "br", "code", "em", "h1", "h2", "h3", "h4", "hr", "i", "li",
    "ol", "p", "pre", "strong", "ul", "img",
}  # fmt: skip


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _one_line(value: str) -> str:
    return " ".join(value.split())


@dataclass(frozen=True)
class PreparedBody:
    """A step's Markdown rendered once, with a placeholder where each tag goes.

    Rendering per person is then a substitution of escaped values, so a batch of
    thousands renders its Markdown once per step, and nothing in a candidate's record is
    ever read as Markdown or HTML.
    """

    template: Template
    skeleton: str  # sanitized HTML with the placeholders
    pattern: re.Pattern[str]
    tag_at: dict[str, int]  # placeholder -> index into template.tags
    in_attribute: bool  # a tag inside a link: sanitize again once the value is in


def prepare_body(body: Template) -> PreparedBody:
    nonce = secrets.token_hex(8)
    pieces: list[str] = []
    tag_at: dict[str, int] = {}
    position = 0
    for index, tag in enumerate(body.tags):
        pieces.append(body.text[position : tag.start])
        marker = f"mergetag{index}x{nonce}"
        tag_at[marker] = index
        pieces.append(marker)
        position = tag.end
    pieces.append(body.text[position:])
    skeleton = sanitize(_markdown.render("".join(pieces)))
    in_attribute = bool(tag_at) and re.search(rf'="[^"]*mergetag\d+x{nonce}', skeleton) is not None
    return PreparedBody(
        template=body,
        skeleton=skeleton,
        pattern=re.compile(rf"mergetag\d+x{nonce}"),
        tag_at=tag_at,
        in_attribute=in_attribute,
    )


def render(
    subject: Template,
    body: Template | PreparedBody,
    values: Mapping[str, str | None],
    *,
    footer: str,
) -> RenderedEmail:
    """Subject, plain text and HTML for one person; the same function feeds preview and send."""
    prepared = body if isinstance(body, PreparedBody) else prepare_body(body)
    template = prepared.template
    subject_text = _one_line(subject.render({k: v and _one_line(v) for k, v in values.items()}))
    text = template.render(values).replace("\r\n", "\n").strip()
    text = _INLINE_LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    unsubscribe_url = values.get("unsubscribe_url") or ""
    text = f"{text}\n\n-- \n{footer}\nUnsubscribe: {unsubscribe_url}\n"

    def value_of(match: re.Match[str]) -> str:
        tag = template.tags[prepared.tag_at[match.group()]]
        return html.escape(values.get(tag.field) or tag.fallback or "", quote=True)

    # One pass: a value that happens to look like a placeholder is never expanded.
    body_html = prepared.pattern.sub(value_of, prepared.skeleton)
    if prepared.in_attribute:
        body_html = sanitize(body_html)
    unsubscribe = html.escape(unsubscribe_url, quote=True)
    document = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5">'
        f"{body_html}"
        '<p style="font-size:12px;color:#666;margin-top:24px">'
        f'{html.escape(footer)} <a href="{unsubscribe}">Unsubscribe</a></p>'
        "</body></html>"
    )
    return RenderedEmail(subject=subject_text, text=text, html=document)


def sanitize(fragment: str) -> str:
    """HTML reduced to harmless formatting and http(s)/mailto links (nh3)."""
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        url_schemes={"http", "https", "mailto"},
        attributes={"a": {"href", "title"}, "img": {"src", "alt", "width", "height"}},
    )


def preview_document(rendered: RenderedEmail) -> str:
    """The HTML for a sandboxed preview frame: sanitized again, no scripts, nothing remote."""
    body = rendered.html.split("<body", 1)[-1].split(">", 1)[-1].rsplit("</body>", 1)[0]
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        "</head>"
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:15px;line-height:1.5">'
        f"{sanitize(body)}</body></html>"
    )


def sender_domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


def new_message_id(outbox_id: int, sender_address: str) -> str:
    """Unique per message (time, process, random), and it names the outbox row for replies."""
    return make_msgid(idstring=f"crm{outbox_id}", domain=sender_domain(sender_address))


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to: str,
    message_id: str,
    unsubscribe_url: str,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id
    if unsubscribe_url:
        message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def format_sender(name: str | None, address: str) -> str:
    return formataddr((name or "", address)) if name else address


def split_sender(text: str) -> tuple[str, str]:
    """("Name", "addr") from "Name <addr>" or a bare address."""
    name, address = parseaddr(text or "")
    return name, address


# --- the SMTP connection -----------------------------------------------------------------


class SendOutcome:
    """How one attempt ended, for the outbox to act on."""

    SENT = "sent"
    TRANSIENT = "transient"  # nothing reached the server: try again later
    PERMANENT = "permanent"  # the server refused for good (5xx)
    UNKNOWN = "unknown"  # the connection died after the content went out: never resend
    CONNECTION = "connection"  # cannot connect or log in at all


@dataclass(frozen=True)
class AttemptResult:
    outcome: str
    reply: str
    code: int | None = None


class MailConnection:
    """One SMTP connection (yagmail's) for a batch, reopened when the server drops it."""

    def __init__(self, settings: SmtpSettings, *, timeout: float = 30.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._client = None
        self.opened = 0

    def _open(self) -> smtplib.SMTP:
        import yagmail

        settings = self.settings
        # yagmail opens the connection (TLS as configured); the login is ours, because
        # yagmail would turn a user name without "@" into a Gmail address.
        client = yagmail.SMTP(
            user=settings.user or None,
            host=settings.host,
            port=settings.port,
            smtp_starttls=settings.security == "starttls",
            smtp_ssl=settings.security == "ssl",
            smtp_skip_login=True,
            soft_email_validation=False,
            timeout=self.timeout,
        )
        client.set_logging(None)
        client.login()
        self._client = client
        if settings.user:
            client.smtp.login(settings.user, settings.password)
        self.opened += 1
        return client.smtp

    @property
    def smtp(self) -> smtplib.SMTP:
        if self._client is None or self._client.smtp is None:
            return self._open()
        return self._client.smtp

    def connect(self) -> AttemptResult | None:
        """Open now; an AttemptResult says why the server cannot be used, None when ready."""
        try:
            self.smtp  # noqa: B018 - opening is the point
        except smtplib.SMTPAuthenticationError as error:
            self.reset()
            return AttemptResult(SendOutcome.CONNECTION, _reply_text(error), error.smtp_code)
        except (OSError, smtplib.SMTPException) as error:
            self.reset()
            return AttemptResult(SendOutcome.CONNECTION, _reply_text(error))
        return None

    def reset(self) -> None:
        """Forget a broken connection without talking to the server again."""
        client, self._client = self._client, None
        if client is not None and client.smtp is not None:
            with contextlib.suppress(OSError):
                client.smtp.close()

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def send(self, message: EmailMessage) -> AttemptResult:
        """Send one message and classify what happened (the caller records it at once)."""
        problem = self.connect()
        if problem is not None:
            return problem
        smtp = self.smtp
        # Which side of DATA a dropped connection happened on decides whether the
        # message may have been delivered: after the server's 354, it may have been.
        phase = {"content_sent": False}
        original_getreply = smtp.getreply
        original_data = smtp.data

        def data(payload: bytes) -> tuple[int, bytes]:
            phase["in_data"] = True
            return original_data(payload)

        def getreply() -> tuple[int, bytes]:
            code, text = original_getreply()
            if phase.get("in_data") and code == 354:
                phase["content_sent"] = True
            return code, text

        smtp.data = data  # type: ignore[method-assign]
        smtp.getreply = getreply  # type: ignore[method-assign]
        try:
            refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            self._rset(smtp)
            return _by_code(code, reply)
        except smtplib.SMTPSenderRefused as error:
            self._rset(smtp)
            return _by_code(error.smtp_code, error.smtp_error)
        except smtplib.SMTPDataError as error:
            self._rset(smtp)
            return _by_code(error.smtp_code, error.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPResponseException) as error:
            self.reset()
            if phase["content_sent"]:
                return AttemptResult(
                    SendOutcome.UNKNOWN,
                    f"The connection was lost after the message was handed over ({error}).",
                )
            return AttemptResult(SendOutcome.TRANSIENT, _reply_text(error))
        finally:
            smtp.data = original_data  # type: ignore[method-assign]
            smtp.getreply = original_getreply  # type: ignore[method-assign]
        if refused:
            code, reply = next(iter(refused.values()))
            return _by_code(code, reply)
        return AttemptResult(SendOutcome.SENT, "250 accepted", 250)

    @staticmethod
    def _rset(smtp: smtplib.SMTP) -> None:
        with contextlib.suppress(smtplib.SMTPException, OSError):
            smtp.rset()


def _reply_text(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        detail = error.smtp_error
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return f"{error.smtp_code} {detail}"[:500]
    if isinstance(error, socket.timeout):
        return "The SMTP server did not answer in time."
    return (str(error) or type(error).__name__)[:500]


def _by_code(code: int, reply: bytes | str) -> AttemptResult:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    full = f"{code} {text}"[:500]
    if 400 <= code < 500:
        return AttemptResult(SendOutcome.TRANSIENT, full, code)
    return AttemptResult(SendOutcome.PERMANENT, full, code)


def is_hard_bounce(result: AttemptResult) -> bool:
    """A 5xx that says the address itself is bad (RFC 3463 class 5.1.x, or 550/551/553)."""
    if result.outcome != SendOutcome.PERMANENT or result.code is None:
        return False
    detail = result.reply.split(" ", 2)
    if len(detail) > 1 and detail[1].startswith("5.1."):
        return True
    return result.code in {550, 551, 553}


_HREF = re.compile(r'<a href="([^"]*)"')


def add_tracking(
    document: str,
    *,
    click_url: Callable[[int, str], str],
    open_url: str,
    skip: set[str],
) -> tuple[str, list[tuple[int, str]]]:
    """The HTML with each web link sent through the click route, plus the open pixel.

    `click_url(position, original URL)` gives each link's new address. Returns the new
    HTML and the (position, original URL) of each tracked link; the click route redirects
    only to these stored URLs. Links in `skip` (the unsubscribe link) and
    mailto: links stay as they are.
    """
    links: list[tuple[int, str]] = []

    def swap(match: re.Match[str]) -> str:
        escaped = match.group(1)
        url = html.unescape(escaped)
        if url in skip or not url.lower().startswith(("http://", "https://")):
            return match.group(0)
        position = len(links)
        links.append((position, url))
        return f'<a href="{html.escape(click_url(position, url), quote=True)}"'

    tracked = _HREF.sub(swap, document)
    pixel = f'<img src="{html.escape(open_url, quote=True)}" width="1" height="1" alt="">'
    tracked = tracked.replace("</body>", pixel + "</body>", 1)
    return tracked, links
