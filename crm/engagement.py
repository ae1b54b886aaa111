"""What people do with our messages: opens, clicks, unsubscribes, replies and bounces.

Every event lands in `events` (the timeline and the reports read it from there), moves
the person's engagement date, and stops what should stop: an unsubscribe or a hard bounce
suppresses the address and cancels every queued message to it at once; a reply ends the
sequences whose next step says so (a step that stops on a click checks when it is due).

Every open and click records how it was seen (`seen_via`, see classify_hit): by the
person's mail program, through Gmail's image proxy (which fetches when the person opens,
so it counts as theirs), through Apple Mail Privacy Protection (which fetches whether or
not anyone reads), or by a scanner or link checker. The last two are flagged `is_machine`
and move nobody's engagement date, so reports count them apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from crm import audit, clock, tokens
from crm.config import secret_key
from crm.db import read_session, write_session
from crm.enrollments import (
    HARD_BOUNCE,
    MESSAGE_KEYS,
    REPLIED,
    UNSUBSCRIBED,
    stop_everything,
    stop_where_next_step_says,
)
from crm.errors import ValidationError
from crm.identity import address_hash, email_key
from crm.models import Candidate, Event, Link, OutboxMessage, Suppression, User
from crm.permissions import require_writer

log = logging.getLogger(__name__)

MACHINE_OPEN_SECONDS = 10  # an open this soon after delivery is a scanner's
MACHINE_CLICK_SECONDS = 10
ALL_LINKS_SECONDS = 5  # every link of a message clicked within this: a link scanner
# Click tokens sent before their scheme changed named outbox_id * 1000 + position, so the
# 1,001st link of one message was the first of the next. They are still read (they are in
# people's mailboxes) where that number means one link only, and never written again.
LEGACY_LINK_POSITIONS = 1000
LEGACY_OVERLAP = 20  # earlier messages an old number could also point into (20,000 links)

# How an open or click was seen (events.seen_via), and how reports name each way.
PERSON = "person"
GMAIL_PROXY = "gmail_proxy"
APPLE_PRIVACY = "apple_privacy"
SCANNER = "scanner"
SEEN_VIA = {
    PERSON: "the person's mail program",
    GMAIL_PROXY: "Gmail's image proxy",
    APPLE_PRIVACY: "Apple Mail Privacy Protection",
    SCANNER: "a scanner or link checker",
}
MACHINE_SEEN_VIA = frozenset({APPLE_PRIVACY, SCANNER})  # is_machine: not the person's doing
# Gmail fetches a message's images through its proxy when the person opens the message, as
# "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
# (https://alexkunz.wordpress.com/2020/07/14/gmail-runs-on-windows-xp/): the person's open.
GMAIL_PROXY_AGENTS = ("googleimageproxy", "ggpht.com")
# Apple Mail Privacy Protection fetches remote content through Apple's relays when the
# device downloads the message, read or not, and its user agent is exactly this, nothing
# more (https://github.com/ua-parser/uap-core/issues/509; how MPP works:
# https://help.socketlabs.com/docs/identifying-apple-mpp-opens-in-notification-api-events).
# The agent alone decides, not the address: the relays are iCloud Private Relay's
# (https://wordtothewise.com/2021/09/apple-mpp-reporting-and-geolocation/), whose exits are
# mostly Akamai's, Cloudflare's and Fastly's, not Apple's own 17.0.0.0/8, and are listed
# only in a file of some 300,000 ranges that changes daily
# (https://developer.apple.com/support/prepare-your-network-for-icloud-private-relay/).
# No mail program or browser a person uses sends this bare string.
APPLE_PRIVACY_AGENT = "Mozilla/5.0"
SCANNER_AGENTS = (
    "yahoomailproxy",
    "yahoo! slurp",
    "outlook-link-preview",
    "ms-office",
    "microsoft office",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "messagelabs",
    "trendmicro",
    "sophos",
    "bot",
    "spider",
    "crawler",
    "preview",
    "python-requests",
    "python-urllib",
    "curl/",
    "wget",
    "go-http-client",
    "headlesschrome",
    # Google's scanner fetching on delivery ("... Edge/12.246 Mozilla/5.0"), not a person:
    # https://github.com/pentacent/keila/pull/164
    "edge/12.246 mozilla/5.0",
)
ANSWERS = ("interested", "not_now")


def classify_hit(
    *, user_agent: str | None, seconds_after_delivery: float | None, is_click: bool
) -> tuple[bool, str]:
    """(is_machine, seen_via) of one open or click, from what its request sent.

    It reads only what an event keeps (the user agent, the time since delivery, open or
    click), so a stored event can be classified again, and the demo writes exactly what
    tracking would. seconds_after_delivery is None when the send time is unknown. The one
    rule it cannot see, every link of a message clicked within seconds, is record_hits'.
    """
    agent = (user_agent or "").strip()
    lowered = agent.lower()
    if agent == APPLE_PRIVACY_AGENT:
        # Apple's relays fetch images only; a click with this agent is a script's.
        return (True, SCANNER) if is_click else (True, APPLE_PRIVACY)
    if not agent or any(marker in lowered for marker in SCANNER_AGENTS):
        return True, SCANNER
    limit = MACHINE_CLICK_SECONDS if is_click else MACHINE_OPEN_SECONDS
    if seconds_after_delivery is not None and seconds_after_delivery < limit:
        return True, SCANNER
    if any(marker in lowered for marker in GMAIL_PROXY_AGENTS):
        # The proxy fetches images and never follows links: a click naming it is a machine.
        return (True, SCANNER) if is_click else (False, GMAIL_PROXY)
    return False, PERSON


def _count(number: int, one: str, many: str) -> str:
    return f"{number:,} {one if number == 1 else many}"


def opens_explained(*, people_opened: int, apple_privacy_people: int, scanner_opens: int) -> str:
    """The one line a report shows about how its opens were counted.

    people_opened: people with an open or click of their own (is_machine false: seen_via
    person or gmail_proxy); apple_privacy_people: people with an apple_privacy open and no
    open or click of their own; scanner_opens: open events seen_via scanner.
    """
    if min(people_opened, apple_privacy_people, scanner_opens) < 0:
        raise ValueError("counts of opens and people cannot be negative")
    line = (
        f"Opens count people: {_count(people_opened, 'person', 'people')} opened "
        "(Gmail's image proxy counts as the person opening, and a click counts as an open)"
    )
    left_out = []
    if apple_privacy_people:
        left_out.append(
            f"Apple Mail Privacy Protection prefetches for "
            f"{_count(apple_privacy_people, 'more person', 'more people')} "
            "(made whether or not anyone reads)"
        )
    if scanner_opens:
        left_out.append(_count(scanner_opens, "scanner open", "scanner opens"))
    if left_out:
        line += "; not counted: " + " and ".join(left_out)
    return line + "."


@dataclass(frozen=True)
class SentMessage:
    """A message that went out (sent, or perhaps: needs review), and whose it is."""

    id: int
    campaign_id: int
    step_id: int
    enrollment_id: int
    candidate_id: int | None
    sent_at: dt.datetime | None


def _messages_sent(session: Session, outbox_ids: list[int]) -> dict[int, SentMessage]:
    """These messages, by id, if they went out (sent, or perhaps sent: needs review)."""
    return {
        message.id: message
        for message in (
            SentMessage(*values)
            for values in session.execute(
                select(*MESSAGE_KEYS, OutboxMessage.sent_at).where(
                    OutboxMessage.id.in_(outbox_ids),
                    OutboxMessage.status.in_(("sent", "needs_review")),
                )
            )
        )
    }


def _message(session: Session, outbox_id: int) -> SentMessage | None:
    return _messages_sent(session, [outbox_id]).get(outbox_id)


def event_row(
    kind: str,
    *,
    at: dt.datetime,
    message: SentMessage | None,
    candidate_id: int | None = None,
    link_id: int | None = None,
    machine: bool = False,
    seen_via: str | None = None,
    user_agent: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The events row of something a person (or a machine) did with a message we sent, or,
    without a message, with us (candidate_id): the one shape every event is written in."""
    return {
        "kind": kind,
        "occurred_at": at,
        "candidate_id": message.candidate_id if message else candidate_id,
        "campaign_id": message.campaign_id if message else None,
        "step_id": message.step_id if message else None,
        "outbox_message_id": message.id if message else None,
        "link_id": link_id,
        "is_machine": machine,
        "seen_via": seen_via,
        "user_agent": (user_agent or None) and user_agent[:400],
        "detail": detail,
    }


def _event(
    session: Session,
    kind: str,
    message: SentMessage | None,
    *,
    now: dt.datetime,
    candidate_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        Event(**event_row(kind, at=now, message=message, candidate_id=candidate_id, detail=detail))
    )


def reply_detail(
    *, source: str, answer: str | None = None, detail: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a reply event keeps: where it was seen, what the mail said, the answer if any."""
    details = {"source": source, **(detail or {})}
    if answer:
        details["answer"] = answer
    return details


def _engaged(session: Session, candidate_id: int | None, now: dt.datetime) -> None:
    if candidate_id is None:
        return
    session.execute(
        update(Candidate)
        .where(
            Candidate.id == candidate_id,
            (Candidate.last_engaged_at.is_(None)) | (Candidate.last_engaged_at < now),
        )
        .values(last_engaged_at=now)
        .execution_options(synchronize_session=False)
    )


# Moves people's engagement dates on to p_at, never back (one parameter set per person).
_PEOPLE = Candidate.__table__
MOVE_ENGAGED = (
    update(_PEOPLE)
    .where(
        _PEOPLE.c.id == bindparam("p_id"),
        (_PEOPLE.c.last_engaged_at.is_(None)) | (_PEOPLE.c.last_engaged_at < bindparam("p_at")),
    )
    .values(last_engaged_at=bindparam("p_at"))
)


def suppression_row(email_key: str, reason: str, note: str | None) -> dict[str, Any]:
    """The suppression list's row for an address (its dedupe key), kept as a hash."""
    return {"address_hash": address_hash(email_key), "reason": reason, "note": note and note[:300]}


def suppress(session: Session, email_key: str | None, reason: str, note: str | None) -> None:
    """Put an address (its dedupe key) on the suppression list, once: nothing goes to it."""
    if not email_key:
        return
    row = suppression_row(email_key, reason, note)
    listed = select(Suppression.id).where(Suppression.address_hash == row["address_hash"])
    if session.scalar(listed) is None:
        session.add(Suppression(**row))


# --- opens and clicks -------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """An open (pixel fetched) or a click (link_id set), as the route saw it."""

    outbox_id: int
    at: dt.datetime
    user_agent: str | None
    link_id: int | None = None


def record_hits(engine: Engine, hits: list[Hit]) -> int:
    """Record opens and clicks in one transaction; returns how many were for real messages.

    Each is classified by classify_hit (is_machine and seen_via); clicks are also a
    scanner's when every link of the message was clicked within a few seconds. Only the
    person's own hits (directly or through Gmail's proxy) move their engagement date: an
    Apple Mail Privacy Protection prefetch is not engagement.
    """
    if not hits:
        return 0
    with write_session(engine) as session:
        messages = _messages_sent(session, sorted({hit.outbox_id for hit in hits}))
        rows: list[dict[str, Any]] = []
        engaged: dict[int, dt.datetime] = {}
        for hit in hits:
            message = messages.get(hit.outbox_id)
            if message is None:
                continue
            agent = (hit.user_agent or None) and hit.user_agent[:400]  # as stored, and judged
            machine, seen_via = classify_hit(
                user_agent=agent,
                seconds_after_delivery=(hit.at - message.sent_at).total_seconds()
                if message.sent_at is not None
                else None,
                is_click=hit.link_id is not None,
            )
            rows.append(
                event_row(
                    "click" if hit.link_id else "open",
                    at=hit.at,
                    message=message,
                    link_id=hit.link_id,
                    machine=machine,
                    seen_via=seen_via,
                    user_agent=agent,
                )
            )
            if not machine and message.candidate_id is not None:
                engaged[message.candidate_id] = max(
                    hit.at, engaged.get(message.candidate_id, hit.at)
                )
        if not rows:
            return 0
        session.execute(insert(Event), rows)
        clicked = {row["outbox_message_id"] for row in rows if row["kind"] == "click"}
        scanned = _scanned_messages(session, clicked, min(hit.at for hit in hits))
        if scanned:
            session.execute(
                update(Event)
                .where(
                    Event.outbox_message_id.in_(scanned),
                    Event.kind == "click",
                    Event.occurred_at
                    >= min(hit.at for hit in hits) - dt.timedelta(seconds=ALL_LINKS_SECONDS),
                )
                .values(is_machine=True, seen_via=SCANNER)
                .execution_options(synchronize_session=False)
            )
            for outbox_id in scanned:
                person = messages[outbox_id].candidate_id
                if person is not None and not any(
                    row["candidate_id"] == person
                    and not row["is_machine"]
                    and row["kind"] == "open"
                    for row in rows
                ):
                    engaged.pop(person, None)
        if engaged:
            session.execute(
                MOVE_ENGAGED,
                [{"p_id": person, "p_at": at} for person, at in engaged.items()],
            )
        return len(rows)


def _scanned_messages(session: Session, outbox_ids: set[int], since: dt.datetime) -> set[int]:
    """Messages (of these) whose every link, two or more, was clicked within seconds."""
    if not outbox_ids:
        return set()
    links = dict(
        session.execute(
            select(Link.outbox_message_id, func.count())
            .where(Link.outbox_message_id.in_(outbox_ids))
            .group_by(Link.outbox_message_id)
        ).all()
    )
    several = [outbox_id for outbox_id, count in links.items() if count >= 2]
    if not several:
        return set()
    clicked = session.execute(
        select(Event.outbox_message_id, func.count(func.distinct(Event.link_id)))
        .where(
            Event.outbox_message_id.in_(several),
            Event.kind == "click",
            Event.occurred_at >= since - dt.timedelta(seconds=ALL_LINKS_SECONDS),
        )
        .group_by(Event.outbox_message_id)
    ).all()
    return {outbox_id for outbox_id, count in clicked if count == links[outbox_id]}


def _click_key() -> str:
    """The key click tokens are signed with: derived from CRM_SECRET_KEY, and not the key
    itself, so no token of the old scheme (a bare number) can pass for one of these."""
    return hmac.new(
        secret_key().encode(), b"crm click tokens: outbox id and link position", hashlib.sha256
    ).hexdigest()


def click_token(outbox_id: int, position: int) -> str:
    """The signed token of one link of one message, however many links the message has.

    It names the message and the position side by side, as one number: the outbox id's
    digits, the position's digits, then how many digits the position has (1 to 9). Message
    5, link 1,000 is 5 1000 4; message 6, link 0 is 6 0 1.
    """
    width = len(str(position))
    digits = f"{outbox_id}{position}{width}"
    if outbox_id < 1 or position < 0 or width > 9 or len(digits) > 18:  # 18: tokens.verify
        raise ValueError(f"no click token for message {outbox_id}, link {position}")
    return tokens.sign("click", int(digits), key=_click_key())


class ClickToken(NamedTuple):
    """The link a click token names."""

    outbox_id: int
    position: int
    legacy: bool = False  # the old scheme: see link_target


def read_click_token(token: str) -> ClickToken | None:
    """The message and link position a click token names, or None if we did not sign it."""
    ident = tokens.verify("click", token, key=_click_key())
    if ident is not None:
        width = ident % 10
        outbox_id, position = divmod(ident // 10, 10**width)
        if width == 0 or outbox_id < 1 or len(str(position)) != width:
            return None  # not a number click_token writes
        return ClickToken(outbox_id, position)
    old = tokens.verify("click", token)
    if old is None:
        return None
    return ClickToken(*divmod(old, LEGACY_LINK_POSITIONS), legacy=True)


def link_target(
    engine: Engine, outbox_id: int, position: int, *, legacy: bool = False
) -> tuple[int, str] | None:
    """(link id, URL) of a stored link in a sent message, or None.

    legacy: the position came from an old token (outbox_id * 1000 + position), which is
    also link position + 1,000 of the message before, + 2,000 of the one before that...
    It is followed only when no such other link exists: a click must never be recorded
    for someone else, or lead to their link.
    """
    links = Link.__table__
    with engine.connect() as connection:
        if legacy:
            behind = outbox_id - links.c.outbox_message_id  # 1 for the message just before
            shared = connection.execute(
                select(links.c.id)
                .where(
                    links.c.outbox_message_id.between(outbox_id - LEGACY_OVERLAP, outbox_id - 1),
                    links.c.position == position + behind * LEGACY_LINK_POSITIONS,
                )
                .limit(1)
            ).first()
            if shared is not None:
                return None
        row = connection.execute(
            select(links.c.id, links.c.url).where(
                links.c.outbox_message_id == outbox_id, links.c.position == position
            )
        ).first()
    return (row[0], row[1]) if row else None


class HitBuffer:
    """Opens and clicks queued by the routes and written by one thread in batches.

    The routes answer at once (a pixel never waits for the database), and one write
    transaction records a whole batch instead of one per request. Batches are written
    every `interval` seconds; whatever is queued is written when the server stops.
    """

    def __init__(self, engine: Engine, *, interval: float = 0.1, max_batch: int = 2000) -> None:
        self.engine = engine
        self.interval = interval
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Hit] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crm-tracking", daemon=True)

    def add(self, hit: Hit) -> None:
        self._queue.put(hit)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()

    def flush(self) -> int:
        written = 0
        while True:
            batch: list[Hit] = []
            try:
                while len(batch) < self.max_batch:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if not batch:
                return written
            try:
                written += record_hits(self.engine, batch)
            except Exception:
                log.exception("Could not record %d opens and clicks; retrying.", len(batch))
                for hit in batch:
                    self._queue.put(hit)
                return written

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()


# --- unsubscribes, replies, bounces -----------------------------------------------------


def unsubscribe(
    engine: Engine, outbox_id: int, *, how: str, now: dt.datetime | None = None
) -> bool:
    """Unsubscribe the person a message went to, from everything, at once (idempotent).

    Returns False when the message is not one we sent (nothing changes).
    """
    now = now or clock.now()
    with write_session(engine) as session:
        message = _message(session, outbox_id)
        if message is None:
            return False
        candidate = (
            session.get(Candidate, message.candidate_id, with_for_update=True)
            if message.candidate_id is not None
            else None
        )
        if candidate is None:
            # The person was erased; their address is suppressed already by the erasure.
            return True
        if candidate.unsubscribed_at is None:
            candidate.unsubscribed_at = now
            _event(session, "unsubscribe", message, now=now, detail={"how": how})
        suppress(session, candidate.email_normalized, "unsubscribe", f"unsubscribed ({how})")
        stop_everything(session, candidate.id, UNSUBSCRIBED)
        return True


def record_reply(
    engine: Engine,
    *,
    outbox_id: int | None = None,
    candidate_id: int | None = None,
    answer: str | None = None,
    actor: User | None = None,
    source: str = "mailbox",
    now: dt.datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """A reply to a message (or, marked by hand, from a person); False if nobody matches.

    `answer` is "interested" or "not_now" when a recruiter says so; "interested" is also
    recorded as its own event, which the reports count.
    """
    if answer is not None and answer not in ANSWERS:
        raise ValidationError(f"The answer must be one of {', '.join(ANSWERS)}.")
    if actor is not None:
        require_writer(engine, actor)
    now = now or clock.now()
    with write_session(engine, actor=actor) as session:
        message = _message(session, outbox_id) if outbox_id is not None else None
        if message is None and candidate_id is not None:
            message = _latest_message_to(session, candidate_id)
        person = message.candidate_id if message else candidate_id
        if person is None or session.get(Candidate, person) is None:
            return False
        details = reply_detail(source=source, answer=answer, detail=detail)
        _event(session, "reply", message, now=now, candidate_id=person, detail=details)
        if answer == "interested":
            _event(session, "interested", message, now=now, candidate_id=person, detail=details)
        _engaged(session, person, now)
        session.execute(
            update(Candidate)
            .where(Candidate.id == person)
            .values(last_contacted_at=now, last_contact_channel="email reply")
            .execution_options(synchronize_session=False)
        )
        stop_where_next_step_says(session, person, "stop_on_reply", REPLIED)
        if actor is not None:
            audit.record_about(session, actor, "candidate.reply_marked", person, {"answer": answer})
        return True


def _latest_message_to(session: Session, candidate_id: int) -> SentMessage | None:
    outbox_id = session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.candidate_id == candidate_id, OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at.desc())
        .limit(1)
    )
    return _message(session, outbox_id) if outbox_id is not None else None


def record_bounce(
    engine: Engine,
    *,
    outbox_id: int | None = None,
    address: str | None = None,
    hard: bool,
    reason: str,
    now: dt.datetime | None = None,
) -> bool:
    """A delivery status notification: hard bounces suppress the address and stop its mail."""
    now = now or clock.now()
    with write_session(engine) as session:
        message = _message(session, outbox_id) if outbox_id is not None else None
        candidate: Candidate | None = None
        if message is not None and message.candidate_id is not None:
            candidate = session.get(Candidate, message.candidate_id)
        elif address:
            key = email_key(address)
            if key is not None:
                candidate = session.scalar(
                    select(Candidate).where(Candidate.email_normalized == key)
                )
                if candidate is not None:
                    message = _latest_message_to(session, candidate.id)
        if message is None and candidate is None:
            return False
        _event(
            session,
            "bounce",
            message,
            now=now,
            candidate_id=candidate.id if candidate else None,
            detail={"hard": hard, "reason": reason[:300]},
        )
        if hard:
            key = candidate.email_normalized if candidate else None
            if key is None and address:
                key = email_key(address)
            suppress(session, key, "hard_bounce", reason)
            if candidate is not None:
                stop_everything(session, candidate.id, HARD_BOUNCE)
        return True


@dataclass(frozen=True)
class MarkedReplies:
    marked: int
    unknown: list[str]


def mark_replies_from_addresses(
    engine: Engine, *, actor: User, addresses: list[str], answer: str | None = None
) -> MarkedReplies:
    """Mark replies by hand for a list of addresses (a CSV column pasted or uploaded)."""
    require_writer(engine, actor)
    marked = 0
    unknown: list[str] = []
    with read_session(engine) as session:
        found: dict[str, int] = {}
        keys = {}
        for address in addresses:
            normalized = email_key(address)
            if normalized is None:
                if address.strip():
                    unknown.append(address.strip())
                continue
            keys[normalized] = address.strip()
        for start in range(0, len(keys), 5000):
            chunk = list(keys)[start : start + 5000]
            found.update(
                session.execute(
                    select(Candidate.email_normalized, Candidate.id).where(
                        Candidate.email_normalized.in_(chunk)
                    )
                ).all()
            )
    for key, shown in keys.items():
        if key in found:
            record_reply(
                engine, candidate_id=found[key], answer=answer, actor=actor, source="marked by hand"
            )
            marked += 1
        else:
            unknown.append(shown)
    return MarkedReplies(marked, unknown)
