"""Reading the reply mailbox: replies, auto-replies and bounces (CRM_IMAP_*).

`check_mailbox` opens the folder over IMAP, takes every message without the
`$CrmProcessed` keyword, and for each one:

- a delivery status notification (multipart/report; report-type=delivery-status) is read
  per recipient: Action failed with a 5.x.x status is a hard bounce (the address is
  suppressed and its sequences stop), a 4.x.x status or Action delayed is a soft bounce;
  the bounced message is found by the Message-ID in the returned headers, else by address;
- an auto-reply (Auto-Submitted, X-Autoreply, Precedence, "Out of office" subjects) is
  counted and nothing else;
- anything else is a reply, matched to the message we sent by In-Reply-To, then by
  References, then by the sender's address against candidates' emails.

The message is then flagged `$CrmProcessed`; a message that cannot be read is flagged
`$CrmUnreadable` as well and counted. Mail is never deleted, moved or marked read, so the
mailbox stays a person's mailbox. A flag is only set once the database has the result, so
a crash or a database outage loses nothing: the message is read again next round (a reply
is recorded once per Message-ID even then).

A server that is down, refuses the login or answers garbage gives a report whose
`problem` is one sentence; nothing here raises for those.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import imaplib
import logging
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from crm import clock
from crm.config import ImapSettings, Settings, load_settings
from crm.db import read_session
from crm.engagement import record_bounce, record_reply
from crm.errors import ConfigError
from crm.identity import email_key
from crm.models import Candidate, Event, OutboxMessage

log = logging.getLogger(__name__)

PROCESSED = "$CrmProcessed"
UNREADABLE = "$CrmUnreadable"
TIMEOUT_SECONDS = 30.0
MAX_MESSAGE_BYTES = 2_000_000  # a reply's attachments are not needed: the headers are
MAX_PER_ROUND = 500  # the rest waits for the next round
DETAIL_LENGTH = 200

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,245}>")
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UID_LIST = re.compile(rb"^[\d ]*$")
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:\[?auto(?:matic)?[- ]?(?:reply|response|answer)|autoreply|out of (?:the )?office"
    r"|on vacation|abwesenheit|automatische antwort|r[ée]ponse automatique"
    r"|respuesta autom[áa]tica|risposta automatica|automatisch antwoord)",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|failure|has failed)|returned mail|failure notice"
    r"|mail delivery (?:failed|system)|delivery notification",
    re.IGNORECASE,
)
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon")


@dataclass
class MailboxReport:
    replies: int = 0
    bounces_hard: int = 0
    bounces_soft: int = 0
    auto_replies: int = 0
    unmatched: int = 0
    unreadable: int = 0
    notices: int = 0  # delivery notices that need nothing (delivered, relayed)
    problem: str | None = None

    @property
    def processed(self) -> int:
        return (
            self.replies
            + self.bounces_hard
            + self.bounces_soft
            + self.auto_replies
            + self.unmatched
            + self.unreadable
            + self.notices
        )


class Unreadable(Exception):
    """The message cannot be understood; the text says why, in a few words."""


class MailboxProblem(Exception):
    """The server is unreachable, refuses us or talks nonsense; the text is one sentence."""


# --- reading one message ----------------------------------------------------------------


@dataclass(frozen=True)
class BounceLine:
    address: str | None
    hard: bool
    reason: str


@dataclass(frozen=True)
class Bounce:
    original_message_id: str | None
    recipients: list[BounceLine]


@dataclass(frozen=True)
class Reply:
    message_id: str | None
    subject: str
    in_reply_to: list[str]
    references: list[str]
    sender: str | None  # the From address's key (lower case), when it is an address
    sent_at: dt.datetime | None


@dataclass(frozen=True)
class AutoReply:
    why: str


@dataclass(frozen=True)
class Notice:
    why: str


Reading = Bounce | Reply | AutoReply | Notice


def _text(value: Any) -> str:
    """A header's text with RFC 2047 words decoded; '' when absent or undecodable."""
    if value is None:
        return ""
    raw = str(value).replace("\x00", "")
    try:
        decoded = str(make_header(decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, TypeError):
        decoded = raw
    # A NUL is no part of any subject, and no database stores it: drop it.
    return " ".join(decoded.replace("\x00", "").split())


def _ids(value: Any) -> list[str]:
    return _MESSAGE_ID.findall(_text(value))


def _address_key(value: str | None) -> str | None:
    if not value:
        return None
    _, address = email.utils.parseaddr(value)
    if not address:
        return None
    return email_key(address)


def _date(value: Any) -> dt.datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def parse_message(raw: bytes) -> Reading:
    """What a raw message is; Unreadable when it cannot be understood."""
    if not raw or not raw.strip():
        raise Unreadable("the message is empty")
    try:
        message = BytesParser(policy=compat32).parsebytes(raw)
    except Exception as error:  # the parser is lenient; anything it raises is unreadable
        raise Unreadable(f"the message cannot be parsed ({type(error).__name__})") from None
    if not message.keys():
        raise Unreadable("the message has no headers")
    sender = _text(message.get("From"))
    if not sender and not message.get("Message-ID") and not message.get("Subject"):
        raise Unreadable("the message has no From, Message-ID or Subject header")
    content_type = message.get_content_type()
    report_type = (message.get_param("report-type") or "") if content_type else ""
    if content_type == "multipart/report" and str(report_type).lower() == "delivery-status":
        return _delivery_status(message)
    if content_type == "multipart/report":
        return AutoReply(f"a {report_type or 'machine'} report")
    if _looks_like_bounce(message, sender):
        raise Unreadable("a delivery failure notice that is not a standard DSN (RFC 3464)")
    why = _automatic(message)
    if why:
        return AutoReply(why)
    return Reply(
        message_id=(_ids(message.get("Message-ID")) or [None])[0],
        subject=_text(message.get("Subject")),
        in_reply_to=_ids(message.get("In-Reply-To")),
        references=_ids(" ".join(str(v) for v in message.get_all("References") or [])),
        sender=_address_key(sender),
        sent_at=_date(message.get("Date")),
    )


def _looks_like_bounce(message: Message, sender: str) -> bool:
    _, address = email.utils.parseaddr(sender)
    local = address.split("@", 1)[0].lower()
    if local in _BOUNCE_SENDERS:
        return True
    null_sender = _text(message.get("Return-Path")) == "<>"
    return null_sender and _BOUNCE_SUBJECT.search(_text(message.get("Subject"))) is not None


def _automatic(message: Message) -> str | None:
    submitted = _text(message.get("Auto-Submitted")).lower()
    if submitted and submitted != "no":
        return f"Auto-Submitted: {submitted[:40]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        if message.get(name) is not None:
            return name
    precedence = _text(message.get("Precedence")).lower()
    if precedence in {"auto_reply", "bulk", "junk", "list"}:
        return f"Precedence: {precedence}"
    subject = _text(message.get("Subject"))
    if _AUTO_SUBJECT.search(subject):
        return f"subject {subject[:60]!r}"
    return None


def _delivery_status(message: Message) -> Bounce | Notice:
    status_part: Message | None = None
    original: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status" and status_part is None:
            status_part = part
        elif kind in {"text/rfc822-headers", "message/rfc822-headers"} and original is None:
            original = _original_id_from_text(part)
        elif kind == "message/rfc822" and original is None:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                original = (_ids(inner[0].get("Message-ID")) or [None])[0]
            elif isinstance(inner, str):
                original = _original_id_from_text(part)
    if status_part is None:
        raise Unreadable("a delivery report without a message/delivery-status part")
    blocks = status_part.get_payload()
    if isinstance(blocks, str):  # some senders encode it; read it as plain fields
        blocks = _blocks_from_text(_decoded_text(status_part))
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise Unreadable("a delivery report without per-recipient fields")
    lines: list[BounceLine] = []
    notices = 0
    for block in blocks[1:]:
        if not isinstance(block, Message):
            continue
        action = _text(block.get("Action")).lower()
        status_text = _text(block.get("Status"))
        status = _STATUS.search(status_text)
        recipient = _recipient(block)
        if not action and not status:
            continue
        if action in {"delivered", "relayed", "expanded"} or (status and status[1] == "2"):
            notices += 1
            continue
        if action not in {"failed", "delayed"}:
            continue
        hard = action == "failed" and status is not None and status[1] == "5"
        if action == "failed" and status is None:
            hard = True  # failed without a code: the server gave up on it for good
        diagnostic = _text(block.get("Diagnostic-Code"))
        if ";" in diagnostic:
            diagnostic = diagnostic.split(";", 1)[1].strip()
        code = status.group(0) if status else ""
        reason = " ".join(part for part in (action, code, diagnostic) if part)
        lines.append(BounceLine(recipient, hard, reason[:300]))
    if lines:
        return Bounce(original, lines)
    if notices:
        return Notice("a delivery report that says the message was delivered")
    raise Unreadable("a delivery report with no recipient marked failed or delayed")


def _recipient(block: Message) -> str | None:
    for name in ("Final-Recipient", "Original-Recipient"):
        value = _text(block.get(name))
        if ";" in value:
            value = value.split(";", 1)[1]
        value = value.strip().strip("<>").strip()
        if value and "@" in value:
            key = email_key(value)
            if key:
                return key
    return None


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    return str(part.get_payload())


def _blocks_from_text(text: str) -> list[Message]:
    chunks = [c for c in re.split(r"\r?\n\s*\r?\n", text.strip()) if c.strip()]
    return [HeaderParser(policy=compat32).parsestr(chunk + "\n") for chunk in chunks]


def _original_id_from_text(part: Message) -> str | None:
    headers = HeaderParser(policy=compat32).parsestr(_decoded_text(part))
    return (_ids(headers.get("Message-ID")) or [None])[0]


# --- recording --------------------------------------------------------------------------


def _outbox_by_ids(engine: Engine, ids: list[str]) -> int | None:
    """The outbox row sent with the first of these Message-IDs that is ours."""
    if not ids:
        return None
    with read_session(engine) as session:
        found = dict(
            session.execute(
                select(OutboxMessage.message_id, OutboxMessage.id).where(
                    OutboxMessage.message_id.in_(ids[:100]),
                    OutboxMessage.status.in_(("sent", "needs_review")),
                )
            ).all()
        )
    for message_id in ids:
        if message_id in found:
            return found[message_id]
    return None


def _candidate_by_address(engine: Engine, key: str, sent_before: dt.datetime | None) -> int | None:
    """The candidate with this email whom we have mailed (before the reply was written)."""
    with read_session(engine) as session:
        candidate_id = session.scalar(select(Candidate.id).where(Candidate.email_normalized == key))
        if candidate_id is None:
            return None
        query = select(OutboxMessage.id).where(
            OutboxMessage.candidate_id == candidate_id, OutboxMessage.status == "sent"
        )
        if sent_before is not None:
            # A day's grace for the sender's clock; an older message is not an answer.
            query = query.where(OutboxMessage.sent_at <= sent_before + dt.timedelta(days=1))
        return candidate_id if session.scalar(query.limit(1)) is not None else None


def _already_recorded(
    engine: Engine, outbox_id: int | None, candidate_id: int | None, message_id: str
) -> bool:
    """A reply event carrying this Message-ID exists already (a flag lost to a crash)."""
    with read_session(engine) as session:
        if outbox_id is not None:
            candidate_id = session.scalar(
                select(OutboxMessage.candidate_id).where(OutboxMessage.id == outbox_id)
            )
        if candidate_id is None:
            return False
        details = session.scalars(
            select(Event.detail)
            .where(Event.kind == "reply", Event.candidate_id == candidate_id)
            .order_by(Event.id.desc())
            .limit(500)
        )
        return any(
            isinstance(detail, dict) and detail.get("message_id") == message_id
            for detail in details
        )


def _record(engine: Engine, reading: Reading, report: MailboxReport, now: dt.datetime) -> str:
    """Record one reading; returns a few words for the log."""
    if isinstance(reading, AutoReply):
        report.auto_replies += 1
        return f"auto-reply ({reading.why})"
    if isinstance(reading, Notice):
        report.notices += 1
        return reading.why
    if isinstance(reading, Bounce):
        outbox_id = _outbox_by_ids(engine, [reading.original_message_id or ""])
        matched = False
        for line in reading.recipients:
            if record_bounce(
                engine,
                outbox_id=outbox_id,
                address=line.address,
                hard=line.hard,
                reason=line.reason,
                now=now,
            ):
                matched = True
                if line.hard:
                    report.bounces_hard += 1
                else:
                    report.bounces_soft += 1
        if not matched:
            report.unmatched += 1
            return "a bounce for a message or address we do not know"
        return "bounce " + "; ".join(line.reason for line in reading.recipients)[:200]
    outbox_id = _outbox_by_ids(engine, reading.in_reply_to) or _outbox_by_ids(
        engine, list(reversed(reading.references))
    )
    candidate_id = None
    if outbox_id is None and reading.sender:
        candidate_id = _candidate_by_address(engine, reading.sender, reading.sent_at)
    if outbox_id is None and candidate_id is None:
        report.unmatched += 1
        return "a message that answers nothing we sent"
    detail = {
        "subject": reading.subject[:DETAIL_LENGTH],
        "message_id": (reading.message_id or "")[:250] or None,
    }
    if reading.message_id and _already_recorded(
        engine, outbox_id, candidate_id, detail["message_id"] or ""
    ):
        report.replies += 1
        return "a reply recorded before"
    if record_reply(
        engine,
        outbox_id=outbox_id,
        candidate_id=candidate_id,
        source="mailbox",
        now=now,
        detail=detail,
    ):
        report.replies += 1
        return "reply"
    if outbox_id is not None and reading.sender:
        # The message was ours but its person is gone; try the sender's address.
        candidate_id = _candidate_by_address(engine, reading.sender, reading.sent_at)
        if candidate_id is not None and record_reply(
            engine, candidate_id=candidate_id, source="mailbox", now=now, detail=detail
        ):
            report.replies += 1
            return "reply"
    report.unmatched += 1
    return "a reply from someone no longer in the CRM"


# --- IMAP -------------------------------------------------------------------------------


def _where(settings: ImapSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _short(error: BaseException) -> str:
    text = error.args[0] if error.args else str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = " ".join(str(text).split()) or type(error).__name__
    return text[:200].rstrip(".")


@contextlib.contextmanager
def _connected(settings: ImapSettings) -> Iterator[imaplib.IMAP4]:
    where = _where(settings)
    try:
        if settings.security == "ssl":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                settings.host,
                settings.port,
                ssl_context=ssl.create_default_context(),
                timeout=TIMEOUT_SECONDS,
            )
        else:
            client = imaplib.IMAP4(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
    except ssl.SSLError as error:
        raise MailboxProblem(
            f"A secure connection to the mailbox server at {where} failed ({_short(error)})."
        ) from None
    except TimeoutError:
        raise MailboxProblem(
            f"The mailbox server at {where} did not answer within {TIMEOUT_SECONDS:g} seconds."
        ) from None
    except OSError as error:
        reason = error.strerror or _short(error)
        raise MailboxProblem(
            f"The mailbox server at {where} cannot be reached ({reason})."
        ) from None
    except (imaplib.IMAP4.error, EOFError, ValueError, UnicodeError) as error:
        raise MailboxProblem(
            f"The mailbox server at {where} did not answer like an IMAP server ({_short(error)})."
        ) from None
    try:
        if settings.security == "starttls":
            try:
                client.starttls(ssl_context=ssl.create_default_context())
            except (imaplib.IMAP4.error, ssl.SSLError, OSError) as error:
                raise MailboxProblem(
                    f"The mailbox server at {where} did not start TLS ({_short(error)})."
                ) from None
        try:
            client.login(settings.user, settings.password)
        except imaplib.IMAP4.abort as error:
            raise MailboxProblem(
                f"The mailbox server at {where} dropped the connection at login ({_short(error)})."
            ) from None
        except imaplib.IMAP4.error as error:
            raise MailboxProblem(
                f"The mailbox server at {where} refused the login for {settings.user!r} "
                f"({_short(error)})."
            ) from None
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()


def _mailbox_name(folder: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./-]+", folder):
        return folder
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unprocessed(client: imaplib.IMAP4, settings: ImapSettings) -> list[bytes]:
    status, data = client.select(_mailbox_name(settings.folder))
    if status != "OK":
        raise MailboxProblem(
            f"The mailbox folder {settings.folder!r} cannot be opened "
            f"({_short(imaplib.IMAP4.error(data[0] if data else status))})."
        )
    flags = b" ".join(item for item in client.untagged_responses.get("PERMANENTFLAGS", []) if item)
    if flags and b"\\*" not in flags and PROCESSED.encode() not in flags:
        raise MailboxProblem(
            f"The mailbox folder {settings.folder!r} does not keep custom flags such as "
            f"{PROCESSED}, so processed mail cannot be told apart."
        )
    status, data = client.uid("SEARCH", "UNKEYWORD", PROCESSED)
    found = data[0] if data and isinstance(data[0], bytes) else b""
    if status != "OK" or not _UID_LIST.match(found):
        raise MailboxProblem(
            f"The mailbox server at {_where(settings)} answered the search with something "
            f"that is not a list of messages ({found[:80]!r})."
        )
    return found.split()


def _fetch(client: imaplib.IMAP4, uid: bytes) -> bytes | None:
    """The message's bytes (up to MAX_MESSAGE_BYTES), None when the server has none."""
    status, data = client.uid("FETCH", uid, f"(BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)")
    if status != "OK":
        raise imaplib.IMAP4.error(data[0] if data else status)
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _flag(client: imaplib.IMAP4, uid: bytes, *keywords: str) -> None:
    status, data = client.uid("STORE", uid, "+FLAGS.SILENT", f"({' '.join(keywords)})")
    if status != "OK":
        raise imaplib.IMAP4.error(data[0] if data else status)


def _settings(settings: Settings | None) -> ImapSettings:
    try:
        loaded = settings or load_settings()
    except ConfigError as error:
        raise MailboxProblem(str(error)) from None
    if loaded.imap is None:
        raise MailboxProblem("Reading the mailbox is not set up: CRM_IMAP_HOST is empty.")
    return loaded.imap


def check_mailbox(
    engine: Engine, *, settings: Settings | None = None, now: dt.datetime | None = None
) -> MailboxReport:
    """Read the unprocessed mail once, record what it says, flag it; never raises for IMAP."""
    report = MailboxReport()
    where = "?"
    try:
        imap = _settings(settings)
        where = _where(imap)
        with _connected(imap) as client:
            _process(engine, client, imap, report, now)
    except MailboxProblem as problem:
        report.problem = str(problem)
    except TimeoutError:
        report.problem = (
            f"The mailbox server at {where} stopped answering in the middle of reading; "
            "unflagged mail is read again next time."
        )
    except (imaplib.IMAP4.error, OSError, EOFError, ValueError) as error:
        report.problem = (
            f"The mailbox server at {where} failed in the middle of reading ({_short(error)}); "
            "unflagged mail is read again next time."
        )
    if report.problem:
        log.warning("Mailbox: %s", report.problem)
    elif report.processed:
        log.info(
            "Mailbox: %d replies, %d hard and %d soft bounces, %d auto-replies, "
            "%d unmatched, %d unreadable.",
            report.replies,
            report.bounces_hard,
            report.bounces_soft,
            report.auto_replies,
            report.unmatched,
            report.unreadable,
        )
    return report


def _process(
    engine: Engine,
    client: imaplib.IMAP4,
    settings: ImapSettings,
    report: MailboxReport,
    now: dt.datetime | None,
) -> None:
    for uid in _unprocessed(client, settings)[:MAX_PER_ROUND]:
        name = uid.decode("ascii", errors="replace")
        raw = _fetch(client, uid)
        if raw is None:  # expunged meanwhile by someone else
            continue
        try:
            reading = parse_message(raw)
        except Unreadable as why:
            log.warning(
                "Mailbox message uid %s in %s cannot be read: %s; flagged %s and left there.",
                name,
                settings.folder,
                why,
                UNREADABLE,
            )
            _flag(client, uid, PROCESSED, UNREADABLE)
            report.unreadable += 1
            continue
        try:
            what = _record(engine, reading, report, now or clock.now())
        except DBAPIError as error:
            raise MailboxProblem(
                f"The database could not record mailbox message uid {name} "
                f"({type(error.orig).__name__}); it stays unflagged and is read again next time."
            ) from None
        except Exception:  # a bug with one message must not stop the others
            log.exception(
                "Mailbox message uid %s could not be recorded; it is read again next time.", name
            )
            continue
        _flag(client, uid, PROCESSED)
        log.info("Mailbox message uid %s: %s.", name, what)


def run_forever(
    engine: Engine, *, stop: threading.Event, interval_seconds: float = 60
) -> None:  # pragma: no cover - exercised through crm serve / crm replies
    """The mailbox loop of `crm replies` and `crm serve`: read, then wait."""
    while not stop.is_set():
        try:
            check_mailbox(engine)
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("The mailbox loop failed; trying again in %g seconds.", interval_seconds)
        stop.wait(interval_seconds)
