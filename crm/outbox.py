"""Delivering the outbox: claim due messages, send them, record each result at once.

Each message is built by crm.composer (the same composer the preview uses); leases are
crm.outbox_leases'; ending or moving on a person's sequence is crm.enrollments'.
The rules that keep a message from being lost or sent twice:
- A worker leases a batch of due rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so several
  workers share the queue; SQLite: one writer, BEGIN IMMEDIATE and a conditional UPDATE).
- Just before a message goes out its row is marked "sending" in its own commit, and right
  after the server's reply it is marked sent (or failed, or queued again) in the next one.
  A worker killed in between leaves exactly that one row in "sending"; when its lease runs
  out it becomes "needs review", never sent again by itself.
- A connection lost after the message content went out is "needs review" too; a connection
  lost before that (or a 4xx) is retried with backoff; a 5xx fails with the server's reply.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from crm import audit, clock, composer, engagement, mailer, merge_tags, send_window
from crm.config import Settings, load_settings
from crm.db import read_session, write_connection, write_session
from crm.enrollments import (
    HARD_BOUNCE,
    MESSAGE_KEYS,
    OPEN_STATES,
    REPLIED,
    UNSUBSCRIBED,
    stop_enrollment,
    stop_everything,
)
from crm.errors import ValidationError
from crm.identity import address_hash
from crm.models import (
    Application,
    Campaign,
    CampaignStep,
    Candidate,
    Enrollment,
    Event,
    Link,
    OutboxMessage,
    Setting,
    Suppression,
    User,
)
from crm.outbox_leases import LEASE, claim, recover_stale, release, unsend, worker_name
from crm.permissions import require_admin

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
PAUSE_AFTER_FAILURES = 5
DEFAULT_FREQUENCY_CAP = {"emails": 2, "days": 7}
FREQUENCY_CAP_KEY = "frequency_cap"


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    needs_review: int = 0
    cancelled: int = 0
    paused: list[str] = field(default_factory=list)
    problem: str | None = None

    @property
    def handled(self) -> int:
        return self.sent + self.failed + self.retried + self.deferred + self.needs_review


def frequency_cap(session: Session) -> tuple[int, int]:
    """(emails, days): at most that many campaign emails per person in that many days."""
    setting = session.get(Setting, FREQUENCY_CAP_KEY)
    value = setting.value if setting is not None else DEFAULT_FREQUENCY_CAP
    return int(value.get("emails", 2)), int(value.get("days", 7))


def current_frequency_cap(engine: Engine) -> tuple[int, int]:
    with read_session(engine) as session:
        return frequency_cap(session)


def set_frequency_cap(engine: Engine, *, actor: User, emails: int, days: int) -> None:
    """Change the team's cap (admins); it applies to every message not yet sent."""
    require_admin(engine, actor)
    if not (1 <= emails <= 50 and 1 <= days <= 90):
        raise ValidationError("The frequency cap must be 1 to 50 emails in 1 to 90 days.")
    with write_session(engine, actor=actor, need="admin") as session:
        setting = session.get(Setting, FREQUENCY_CAP_KEY)
        if setting is None:
            session.add(Setting(key=FREQUENCY_CAP_KEY, value={"emails": emails, "days": days}))
        else:
            setting.value = {"emails": emails, "days": days}
        audit.record(
            session,
            actor=actor,
            action="settings.frequency_cap",
            detail={"emails": emails, "days": days},
        )


# --- results ---------------------------------------------------------------------------


def _record_failure(
    engine: Engine,
    outbox_id: int,
    result: mailer.AttemptResult,
    *,
    settings: Settings,
    report: DeliveryReport,
) -> tuple[str, int] | None:
    """Record a failed attempt; returns the campaign's (status, failures in a row) after it."""
    now = clock.now()
    with write_session(engine) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            return None
        row.lease_until = None
        if result.outcome == mailer.SendOutcome.UNKNOWN:
            row.status = "needs_review"
            row.last_error = result.reply[:500]
            report.needs_review += 1
        elif result.outcome == mailer.SendOutcome.PERMANENT or row.attempts >= MAX_ATTEMPTS:
            for column, value in failed_delivery(result.reply).items():
                setattr(row, column, value)
            report.failed += 1
            if mailer.is_hard_bounce(result) and row.candidate_id is not None:
                _suppress_bounced(session, row, result.reply, now)
        else:  # transient, or the server could not be reached
            row.status = "queued"
            row.sent_at = None
            row.leased_by = None
            row.last_error = result.reply[:500]
            delay = settings.retry_base_seconds * (2 ** max(row.attempts - 1, 0))
            row.due_at = now + dt.timedelta(seconds=delay)
            row.note = f"Retry {row.attempts} of {MAX_ATTEMPTS - 1} after a temporary failure"
            report.retried += 1
        campaign = session.get(Campaign, row.campaign_id)
        if campaign is not None:
            campaign.consecutive_failures += 1
            if (
                campaign.consecutive_failures >= PAUSE_AFTER_FAILURES
                and campaign.status == "active"
            ):
                campaign.status = "paused"
                campaign.pause_reason = (
                    f"Paused itself after {campaign.consecutive_failures} failed attempts in a "
                    f"row; the last: {result.reply}"
                )[:300]
                report.paused.append(campaign.name)
            return campaign.status, campaign.consecutive_failures
        return None


def failed_delivery(reply: str) -> dict[str, object]:
    """What a message that failed for good keeps: the server's reply, and no send time."""
    return {
        "status": "failed",
        "smtp_reply": reply[:500],
        "last_error": reply[:500],
        "sent_at": None,
    }


def bounce_detail(reply: str) -> dict[str, object]:
    """The detail of the bounce event a hard bounce at delivery records."""
    return {"hard": True, "reply": reply[:300]}


def _suppress_bounced(session: Session, row: OutboxMessage, reply: str, now: dt.datetime) -> None:
    candidate = session.get(Candidate, row.candidate_id)
    if candidate is None or not candidate.email_normalized:
        return
    engagement.suppress(session, candidate.email_normalized, "hard_bounce", reply)
    message = engagement.SentMessage(
        row.id, row.campaign_id, row.step_id, row.enrollment_id, candidate.id, None
    )
    bounce = engagement.event_row("bounce", at=now, message=message, detail=bounce_detail(reply))
    session.add(Event(**bounce))
    # Nothing else may go to a bounced address, in any campaign.
    stop_everything(session, candidate.id, HARD_BOUNCE)


def _connection_failed(
    engine: Engine, ids: list[int], result: mailer.AttemptResult, report: DeliveryReport
) -> None:
    """The server cannot be used at all: count it against every campaign in the batch."""
    with write_session(engine) as session:
        campaign_ids = set(
            session.scalars(
                select(OutboxMessage.campaign_id).where(OutboxMessage.id.in_(ids))
            ).all()
        )
        for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids))):
            campaign.consecutive_failures += 1
            permanent = result.code is not None and 500 <= result.code < 600
            if campaign.status == "active" and (
                permanent or campaign.consecutive_failures >= PAUSE_AFTER_FAILURES
            ):
                campaign.status = "paused"
                campaign.pause_reason = f"Paused itself: the mail server said {result.reply}"[:300]
                report.paused.append(campaign.name)
    report.problem = result.reply


def _complete_finished_campaigns(engine: Engine) -> None:
    with write_session(engine) as session:
        open_rows = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.campaign_id == Campaign.id,
                OutboxMessage.status.in_(OPEN_STATES),
            )
            .exists()
        )
        session.execute(
            update(Campaign)
            .where(and_(Campaign.status == "active", Campaign.launched_at.is_not(None), ~open_rows))
            .values(status="completed")
            .execution_options(synchronize_session=False)
        )


# --- the fast path: one read per batch, Core writes per message --------------------------


@dataclass
class _Due:
    id: int
    campaign_id: int
    step_id: int
    enrollment_id: int
    candidate_id: int | None
    attempts: int
    enrolled_at: dt.datetime


@dataclass
class _Batch:
    """Everything the messages of one claimed batch need, read in a handful of queries."""

    rows: list[_Due]
    candidates: dict[int, Candidate]
    campaigns: dict[int, Campaign]
    steps: dict[int, CampaignStep]
    next_step: dict[int, CampaignStep | None]
    suppressed: set[str]
    last_reply: dict[int, dt.datetime]
    clicked: set[tuple[int, int]]
    last_application: dict[int, dt.datetime]
    recent_sends: dict[int, list[dt.datetime]]
    cap: tuple[int, int]
    templates: dict[int, tuple[merge_tags.Template, mailer.PreparedBody]]
    windows: dict[int, send_window.SendWindow | None]
    contacted: set[int]  # people already sent a campaign message (no first-contact notice)


def _load_batch(engine: Engine, ids: list[int], now: dt.datetime) -> _Batch:
    with read_session(engine) as session:
        rows = [
            _Due(*row)
            for row in session.execute(
                select(*MESSAGE_KEYS, OutboxMessage.attempts, Enrollment.enrolled_at)
                .join(Enrollment, Enrollment.id == OutboxMessage.enrollment_id)
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.due_at, OutboxMessage.id)
            )
        ]
        people = sorted({row.candidate_id for row in rows if row.candidate_id is not None})
        candidates = {
            c.id: c for c in session.scalars(select(Candidate).where(Candidate.id.in_(people)))
        }
        campaign_ids = {row.campaign_id for row in rows}
        campaigns = {
            c.id: c for c in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
        }
        all_steps = list(
            session.scalars(
                select(CampaignStep)
                .where(CampaignStep.campaign_id.in_(campaign_ids))
                .order_by(CampaignStep.campaign_id, CampaignStep.position)
            )
        )
        next_step: dict[int, CampaignStep | None] = {}
        for step, following in zip(all_steps, [*all_steps[1:], None], strict=True):
            same = following is not None and following.campaign_id == step.campaign_id
            next_step[step.id] = following if same else None
        keys = {c.email_normalized for c in candidates.values() if c.email_normalized}
        hashes = {address_hash(key) for key in keys}
        suppressed = set(
            session.scalars(
                select(Suppression.address_hash).where(Suppression.address_hash.in_(hashes))
            )
        )
        last_reply = dict(
            session.execute(
                select(Event.candidate_id, func.max(Event.occurred_at))
                .where(Event.kind == "reply", Event.candidate_id.in_(people))
                .group_by(Event.candidate_id)
            ).all()
        )
        clicked = {
            (cid, campaign_id)
            for cid, campaign_id in session.execute(
                select(Event.candidate_id, Event.campaign_id)
                .where(
                    Event.kind == "click",
                    Event.is_machine.is_(False),
                    Event.candidate_id.in_(people),
                )
                .distinct()
            )
        }
        last_application = dict(
            session.execute(
                select(Application.candidate_id, func.max(Application.created_at))
                .where(Application.candidate_id.in_(people))
                .group_by(Application.candidate_id)
            ).all()
        )
        cap = frequency_cap(session)
        recent: dict[int, list[dt.datetime]] = {}
        for cid, sent_at in session.execute(
            select(OutboxMessage.candidate_id, OutboxMessage.sent_at).where(
                OutboxMessage.candidate_id.in_(people),
                OutboxMessage.status.in_(("sent", "sending", "needs_review")),
                OutboxMessage.sent_at >= now - dt.timedelta(days=cap[1]),
            )
        ):
            recent.setdefault(cid, []).append(sent_at)
        allowed = composer.allowed_tags(session)
        contacted = composer.contacted_before(session, people)
        templates = {
            step.id: (
                merge_tags.parse(step.subject, allowed=allowed),
                mailer.prepare_body(merge_tags.parse(step.body_markdown, allowed=allowed)),
            )
            for step in all_steps
        }
    return _Batch(
        rows=rows,
        candidates=candidates,
        campaigns=campaigns,
        steps={step.id: step for step in all_steps},
        next_step=next_step,
        suppressed=suppressed,
        last_reply=last_reply,
        clicked=clicked,
        last_application=last_application,
        recent_sends=recent,
        cap=cap,
        templates=templates,
        windows={step.id: send_window.parse_window(step.send_window) for step in all_steps},
        contacted=contacted,
    )


def _decide(batch: _Batch, row: _Due, now: dt.datetime) -> tuple[str, object]:
    """("send", None), ("stop", reason) or ("defer", until), from the batch's facts."""
    step = batch.steps[row.step_id]
    candidate = batch.candidates.get(row.candidate_id) if row.candidate_id else None
    if candidate is None:
        return "stop", "person erased"
    if not candidate.email_normalized:
        return "stop", "no email address"
    if candidate.unsubscribed_at is not None:
        return "stop", UNSUBSCRIBED
    if candidate.consent_status == "do_not_contact":
        return "stop", "do not contact"
    if address_hash(candidate.email_normalized) in batch.suppressed:
        return "stop", "suppressed"
    replied = batch.last_reply.get(candidate.id)
    if step.stop_on_reply and replied is not None and replied >= row.enrolled_at:
        return "stop", REPLIED
    if step.stop_on_click and (candidate.id, row.campaign_id) in batch.clicked:
        return "stop", "clicked"
    applied = batch.last_application.get(candidate.id)
    if step.stop_on_pipeline and applied is not None and applied >= row.enrolled_at:
        return "stop", "entered a job's pipeline"
    emails, days = batch.cap
    recent = sorted(batch.recent_sends.get(candidate.id, []), reverse=True)
    if len(recent) >= emails:
        return "defer", recent[emails - 1] + dt.timedelta(days=days)
    return "send", None


def _stop_row(engine: Engine, row: _Due, reason: str) -> int:
    with write_session(engine) as session:
        return stop_enrollment(session, row.enrollment_id, reason)


def _defer_row(engine: Engine, row: _Due, step: CampaignStep, until: dt.datetime) -> None:
    with write_connection(engine) as connection:
        connection.execute(
            update(OutboxMessage.__table__)
            .where(OutboxMessage.__table__.c.id == row.id)
            .values(
                due_at=send_window.next_send_time(
                    send_window.parse_window(step.send_window), until
                ),
                lease_until=None,
                leased_by=None,
                note="Deferred by the frequency cap",
            )
        )


# Statements of the hot path, built once: per message only their parameters change.
_OUTBOX = OutboxMessage.__table__
_PEOPLE = Candidate.__table__
_MARK_SENDING = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("p_row_id"),
        _OUTBOX.c.status == "queued",
        _OUTBOX.c.leased_by == bindparam("p_worker"),
        # The person may have opted out since the batch was read: checked at the last moment.
        select(_PEOPLE.c.id)
        .where(
            _PEOPLE.c.id == bindparam("p_candidate_id"),
            _PEOPLE.c.unsubscribed_at.is_(None),
            _PEOPLE.c.consent_status != "do_not_contact",
        )
        .exists(),
        ~select(Suppression.__table__.c.id)
        .where(Suppression.__table__.c.address_hash == bindparam("p_address_hash"))
        .exists(),
        # A pause or cancel on the page takes effect from the next message.
        select(Campaign.__table__.c.id)
        .where(
            Campaign.__table__.c.id == _OUTBOX.c.campaign_id,
            Campaign.__table__.c.status == "active",
        )
        .exists(),
    )
    .values(
        status="sending",
        attempts=_OUTBOX.c.attempts + 1,
        to_address=bindparam("p_to_address"),
        subject=bindparam("p_subject"),
        body_text=bindparam("p_body_text"),
        body_html=bindparam("p_body_html"),
        message_id=bindparam("p_message_id"),
        sent_at=bindparam("p_now"),
        lease_until=bindparam("p_lease_until"),
    )
)
_MARK_SENT = (
    update(_OUTBOX)
    .where(_OUTBOX.c.id == bindparam("p_row_id"))
    .values(
        status="sent",
        sent_at=bindparam("p_now"),
        smtp_reply=bindparam("p_reply"),
        lease_until=None,
        last_error=None,
    )
)
_QUEUE_NEXT = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.enrollment_id == bindparam("p_enrollment_id"),
        _OUTBOX.c.step_id == bindparam("p_next_step_id"),
        _OUTBOX.c.status == "waiting",
    )
    .values(status="queued", due_at=bindparam("p_due"))
)
_COMPLETE_ENROLLMENT = (
    update(Enrollment.__table__)
    .where(
        Enrollment.__table__.c.id == bindparam("p_enrollment_id"),
        Enrollment.__table__.c.status == "active",
    )
    .values(status="completed")
)
_STORE_LINK = insert(Link.__table__)
_FORGET_LINKS = delete(Link.__table__).where(
    Link.__table__.c.outbox_message_id == bindparam("p_outbox_id")
)
_TOUCH_PERSON = (
    update(_PEOPLE)
    .where(_PEOPLE.c.id == bindparam("p_candidate_id"))
    .values(
        last_contacted_at=bindparam("p_now"),
        last_contacted_by_id=bindparam("p_by"),
        last_contact_channel="email",
    )
)


def _mark_sending(
    connection: Connection,
    row: _Due,
    candidate: Candidate,
    *,
    worker: str,
    now: dt.datetime,
    rendered: mailer.RenderedEmail,
    message_id: str,
) -> bool:
    """Claim this one message for the wire, unless the person opted out a moment ago."""
    result = connection.execute(
        _MARK_SENDING,
        {
            "p_row_id": row.id,
            "p_worker": worker,
            "p_candidate_id": row.candidate_id,
            "p_address_hash": address_hash(candidate.email_normalized or ""),
            "p_to_address": candidate.email,
            "p_subject": rendered.subject,
            "p_body_text": rendered.text,
            "p_body_html": rendered.html,
            "p_message_id": message_id,
            "p_now": now,
            "p_lease_until": now + LEASE,
        },
    )
    return result.rowcount == 1


def _mark_sent(
    connection: Connection, batch: _Batch, row: _Due, result: mailer.AttemptResult, now: dt.datetime
) -> None:
    connection.execute(
        _MARK_SENT, {"p_row_id": row.id, "p_now": now, "p_reply": result.reply[:500]}
    )
    following = batch.next_step.get(row.step_id)
    if following is not None:
        due = send_window.next_send_time(
            batch.windows.get(following.id), now + dt.timedelta(days=following.delay_days)
        )
        connection.execute(
            _QUEUE_NEXT,
            {"p_enrollment_id": row.enrollment_id, "p_next_step_id": following.id, "p_due": due},
        )
    else:
        connection.execute(_COMPLETE_ENROLLMENT, {"p_enrollment_id": row.enrollment_id})
    campaign = batch.campaigns[row.campaign_id]
    if campaign.consecutive_failures:
        connection.execute(
            update(Campaign.__table__)
            .where(Campaign.__table__.c.id == campaign.id)
            .values(consecutive_failures=0)
        )
        campaign.consecutive_failures = 0
    if row.candidate_id is not None:
        # No timeline row: the timeline reads sent messages from the outbox itself.
        connection.execute(
            _TOUCH_PERSON,
            {"p_candidate_id": row.candidate_id, "p_now": now, "p_by": campaign.created_by_id},
        )
        batch.recent_sends.setdefault(row.candidate_id, []).append(now)
        batch.contacted.add(row.candidate_id)


# --- the loop --------------------------------------------------------------------------


@dataclass
class _Ready:
    """One message rendered and built, waiting for its turn on the wire."""

    row: _Due
    candidate: Candidate
    composed: composer.Composed
    marked: bool = False


def _ready_messages(
    engine: Engine,
    batch: _Batch,
    *,
    worker: str,
    settings: Settings,
    report: DeliveryReport,
    stop: threading.Event | None,
) -> Iterator[_Ready]:
    """The batch's messages that should go out now, built one at a time.

    Stops and frequency-cap deferrals are written as they are met (each in its own short
    transaction); nothing here touches the SMTP connection.
    """
    for row in batch.rows:
        if stop and stop.is_set():
            return
        campaign = batch.campaigns[row.campaign_id]
        if campaign.status != "active":
            continue  # released with the rest of the batch
        now = clock.now()
        verdict, detail = _decide(batch, row, now)
        if verdict == "stop":
            report.cancelled += _stop_row(engine, row, str(detail))
            continue
        step = batch.steps[row.step_id]
        if verdict == "defer":
            _defer_row(engine, row, step, detail)  # type: ignore[arg-type]
            report.deferred += 1
            continue
        candidate = batch.candidates[row.candidate_id]  # type: ignore[index]
        subject, body = batch.templates[step.id]
        composed = composer.compose(
            campaign,
            candidate,
            subject=subject,
            body=body,
            contacted_before=candidate.id in batch.contacted,
            links=composer.links_for(row.id, settings),
            settings=settings,
        )
        yield _Ready(row, candidate, composed)


def _mark(connection: Connection, ready: _Ready, *, worker: str) -> bool:
    ready.marked = _mark_sending(
        connection,
        ready.row,
        ready.candidate,
        worker=worker,
        now=clock.now(),
        rendered=ready.composed.rendered,
        message_id=ready.composed.message_id,
    )
    if ready.marked and ready.composed.links:
        # The click route redirects only to these (a retry replaces an earlier attempt's).
        connection.execute(_FORGET_LINKS, {"p_outbox_id": ready.row.id})
        connection.execute(
            _STORE_LINK,
            [
                {"outbox_message_id": ready.row.id, "position": position, "url": url}
                for position, url in ready.composed.links
            ],
        )
    return ready.marked


def deliver_due(
    engine: Engine,
    *,
    settings: Settings | None = None,
    worker: str | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[DeliveryReport], None] | None = None,
) -> DeliveryReport:
    """Send everything due now (and retries that fall due while this runs), then return.

    The next message is built while nothing is in flight, so that when the server accepts
    one message, one commit marks it sent and marks the next one "sending": a worker never
    has more than one message whose fate a crash could leave unknown.
    """
    settings = settings or load_settings()
    report = DeliveryReport()
    if settings.smtp is None:
        report.problem = "Sending is not set up: CRM_SMTP_HOST is empty."
        return report
    worker = worker or worker_name()
    recover_stale(engine)
    interval = 1.0 / settings.send_rate
    connection = mailer.MailConnection(settings.smtp)
    next_slot = time.monotonic()

    def mark_alone(ready: _Ready | None) -> None:
        if ready is not None:
            with write_connection(engine) as db_connection:
                _mark(db_connection, ready, worker=worker)

    try:
        while not (stop and stop.is_set()):
            ids = claim(engine, worker=worker, now=clock.now())
            if not ids:
                break
            batch = _load_batch(engine, ids, clock.now())
            try:
                pending = _ready_messages(
                    engine, batch, worker=worker, settings=settings, report=report, stop=stop
                )
                current = next(pending, None)
                mark_alone(current)
                while current is not None:
                    if not current.marked:
                        # Changed since the batch was read (opted out, paused, cancelled):
                        # released below, so the next claim looks at it afresh.
                        current = next(pending, None)
                        mark_alone(current)
                        continue
                    upcoming = next(pending, None)
                    wait = next_slot - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    next_slot = max(next_slot, time.monotonic() - interval) + interval
                    row = current.row
                    result = connection.send(current.composed.message)
                    if result.outcome == mailer.SendOutcome.SENT:
                        with write_connection(engine) as db_connection:
                            _mark_sent(db_connection, batch, row, result, clock.now())
                            if upcoming is not None:
                                _mark(db_connection, upcoming, worker=worker)
                        report.sent += 1
                    elif result.outcome == mailer.SendOutcome.CONNECTION:
                        # Nothing went out: put this one back and stop; the rest of the
                        # batch is released below.
                        unsend(engine, row.id)
                        _connection_failed(engine, ids, result, report)
                        return report
                    else:
                        after = _record_failure(
                            engine, row.id, result, settings=settings, report=report
                        )
                        if after is not None:
                            batch.campaigns[row.campaign_id].status = after[0]
                            batch.campaigns[row.campaign_id].consecutive_failures = after[1]
                        if (
                            upcoming is not None
                            and batch.campaigns[upcoming.row.campaign_id].status == "active"
                        ):
                            mark_alone(upcoming)
                    current = upcoming
                    if progress is not None:
                        progress(report)
            finally:
                # Whatever of this batch was not sent, stopped or deferred goes back.
                release(engine, ids, worker)
    finally:
        connection.close()
        _complete_finished_campaigns(engine)
    return report


def run_forever(
    engine: Engine, *, stop: threading.Event, idle_seconds: float = 5.0
) -> None:  # pragma: no cover - exercised through crm serve / crm send
    """The delivery loop of `crm send` and `crm serve`: deliver, then wait for more."""
    while not stop.is_set():
        try:
            report = deliver_due(engine, stop=stop)
            if report.problem:
                log.warning("Sending stopped: %s", report.problem)
        except Exception:  # keep the loop alive; the next round tries again
            log.exception("The delivery loop failed; trying again shortly.")
        stop.wait(idle_seconds)
