"""Delivering the outbox: claim due messages, send them, record each result at once.

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
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.orm import Session

from crm import mailer, send_window
from crm.config import Settings, load_settings
from crm.db import write_session
from crm.identity import address_hash
from crm.models import (
    Activity,
    Application,
    Campaign,
    CampaignStep,
    Candidate,
    Enrollment,
    Event,
    OutboxMessage,
    Setting,
    Suppression,
    utcnow,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 50
LEASE = dt.timedelta(minutes=5)
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


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


def frequency_cap(session: Session) -> tuple[int, int]:
    """(emails, days): at most that many campaign emails per person in that many days."""
    setting = session.get(Setting, FREQUENCY_CAP_KEY)
    value = setting.value if setting is not None else DEFAULT_FREQUENCY_CAP
    return int(value.get("emails", 2)), int(value.get("days", 7))


def set_frequency_cap(engine: Engine, *, actor: object, emails: int, days: int) -> None:
    from crm.auth import require_admin
    from crm.errors import ValidationError

    require_admin(actor)  # type: ignore[arg-type]
    if not (1 <= emails <= 50 and 1 <= days <= 90):
        raise ValidationError("The frequency cap must be 1-50 emails in 1-90 days.")
    with write_session(engine) as session:
        setting = session.get(Setting, FREQUENCY_CAP_KEY)
        if setting is None:
            session.add(Setting(key=FREQUENCY_CAP_KEY, value={"emails": emails, "days": days}))
        else:
            setting.value = {"emails": emails, "days": days}


# --- claiming --------------------------------------------------------------------------


def _dead_local_workers(names: list[str]) -> list[str]:
    """Workers on this machine whose process is gone: their leases need not run out first."""
    host = socket.gethostname()
    dead: list[str] = []
    for name in names:
        worker_host, _, rest = name.partition(":")
        pid_text = rest.partition(":")[0]
        if worker_host != host or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            dead.append(name)
        except PermissionError:  # alive, someone else's
            pass
    return dead


def recover_stale(engine: Engine, *, now: dt.datetime | None = None) -> int:
    """Rows left in "sending" by a worker that died: their fate is unknown, so review them.

    Leases of a dead worker on this machine are released at once (a restart after a crash
    carries on); elsewhere a lease simply runs out.
    """
    now = now or utcnow()
    with write_session(engine) as session:
        holders = list(
            session.scalars(
                select(OutboxMessage.leased_by)
                .where(
                    OutboxMessage.status.in_(("queued", "sending")),
                    OutboxMessage.lease_until >= now,
                    OutboxMessage.leased_by.is_not(None),
                )
                .distinct()
            )
        )
        dead = _dead_local_workers(holders)
        stale = OutboxMessage.lease_until < now
        if dead:
            stale = or_(stale, OutboxMessage.leased_by.in_(dead))
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "queued", OutboxMessage.leased_by.in_(dead))
                .values(lease_until=None, leased_by=None)
            )
        return session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending", stale)
            .values(
                status="needs_review",
                last_error="The sender stopped while this message was going out; it may or "
                "may not have arrived.",
            )
        ).rowcount


def claim(engine: Engine, *, worker: str, now: dt.datetime, limit: int = BATCH_SIZE) -> list[int]:
    """Lease up to `limit` due messages of active campaigns for this worker."""
    due = (
        select(OutboxMessage.id)
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .where(
            OutboxMessage.status == "queued",
            OutboxMessage.due_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
            Campaign.status == "active",
        )
        .order_by(OutboxMessage.due_at, OutboxMessage.id)
        .limit(limit)
    )
    if engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=OutboxMessage)
    with write_session(engine) as session:
        ids = list(session.scalars(due))
        if ids:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "queued")
                .values(leased_by=worker, lease_until=now + LEASE)
            )
        return ids


# --- one message -----------------------------------------------------------------------


@dataclass
class Prepared:
    outbox_id: int
    campaign_id: int
    message: object  # EmailMessage


def _stop_reason(
    session: Session, row: OutboxMessage, step: CampaignStep, candidate: Candidate | None
) -> str | None:
    """Why this message must not go out now (None: it may)."""
    if candidate is None:
        return "person erased"
    if not candidate.email_normalized:
        return "no email address"
    if candidate.unsubscribed_at is not None:
        return "unsubscribed"
    if candidate.consent_status == "do_not_contact":
        return "do not contact"
    if session.scalar(
        select(Suppression.id).where(
            Suppression.address_hash == address_hash(candidate.email_normalized)
        )
    ):
        return "suppressed"
    enrollment = session.get(Enrollment, row.enrollment_id)
    since = enrollment.enrolled_at if enrollment else row.created_at
    if step.stop_on_reply and session.scalar(
        select(Event.id).where(
            Event.candidate_id == candidate.id, Event.kind == "reply", Event.occurred_at >= since
        )
    ):
        return "replied"
    if step.stop_on_click and session.scalar(
        select(Event.id).where(
            Event.candidate_id == candidate.id,
            Event.kind == "click",
            Event.campaign_id == row.campaign_id,
        )
    ):
        return "clicked"
    if step.stop_on_pipeline and session.scalar(
        select(Application.id).where(
            Application.candidate_id == candidate.id, Application.created_at >= since
        )
    ):
        return "entered a job's pipeline"
    return None


def stop_enrollment(session: Session, enrollment_id: int, reason: str) -> int:
    """Cancel what is left of one person's sequence; returns the messages cancelled."""
    cancelled = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.enrollment_id == enrollment_id,
            OutboxMessage.status.in_(("queued", "waiting")),
        )
        .values(status="cancelled", skip_reason=reason)
    ).rowcount
    session.execute(
        update(Enrollment)
        .where(Enrollment.id == enrollment_id, Enrollment.status == "active")
        .values(status="stopped", stopped_reason=reason)
    )
    return cancelled


def _cap_deferral(session: Session, candidate_id: int, now: dt.datetime) -> dt.datetime | None:
    """When the frequency cap lets this person hear from us again (None: now is fine)."""
    emails, days = frequency_cap(session)
    since = now - dt.timedelta(days=days)
    recent = list(
        session.scalars(
            select(OutboxMessage.sent_at)
            .where(
                OutboxMessage.candidate_id == candidate_id,
                OutboxMessage.status.in_(("sent", "sending", "needs_review")),
                OutboxMessage.sent_at >= since,
            )
            .order_by(OutboxMessage.sent_at.desc())
            .limit(emails)
        )
    )
    if len(recent) < emails:
        return None
    return recent[-1] + dt.timedelta(days=days)


def _prepare(
    engine: Engine, outbox_id: int, *, worker: str, settings: Settings, report: DeliveryReport
) -> Prepared | None:
    """Check, render and mark "sending" in one short transaction; None when not sending."""
    from crm import campaigns

    now = utcnow()
    with write_session(engine) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.status != "queued" or row.leased_by != worker:
            return None
        campaign = session.get(Campaign, row.campaign_id)
        step = session.get(CampaignStep, row.step_id)
        if campaign is None or step is None or campaign.status != "active":
            row.lease_until = None
            row.leased_by = None
            return None
        candidate = session.get(Candidate, row.candidate_id) if row.candidate_id else None
        reason = _stop_reason(session, row, step, candidate)
        if reason is not None:
            report.cancelled += stop_enrollment(session, row.enrollment_id, reason)
            return None
        assert candidate is not None
        later = _cap_deferral(session, candidate.id, now)
        if later is not None:
            row.due_at = send_window.next_send_time(
                send_window.parse_window(step.send_window), later
            )
            row.lease_until = None
            row.leased_by = None
            row.note = "Deferred by the frequency cap"
            report.deferred += 1
            return None
        unsubscribe = campaigns.unsubscribe_url(row.id, settings)
        rendered = campaigns.render_for(
            session, campaign, step, candidate, unsubscribe=unsubscribe, settings=settings
        )
        name, address = campaigns.sender_of(campaign, settings)
        message_id = mailer.new_message_id(row.id, address)
        message = mailer.build_message(
            rendered,
            sender=mailer.format_sender(name, address),
            to=candidate.email or "",
            message_id=message_id,
            unsubscribe_url=unsubscribe,
        )
        row.status = "sending"
        row.attempts += 1
        row.to_address = candidate.email
        row.subject = rendered.subject
        row.body_text = rendered.text
        row.body_html = rendered.html
        row.message_id = message_id
        row.sent_at = now  # when it went out; kept if the outcome is unknown
        row.lease_until = now + LEASE
        return Prepared(row.id, campaign.id, message)


def schedule_next(session: Session, row: OutboxMessage, *, sent_at: dt.datetime) -> None:
    """Queue the person's next step from this step's actual send time, inside its window."""
    current = session.get(CampaignStep, row.step_id)
    following = session.execute(
        select(OutboxMessage, CampaignStep)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .where(
            OutboxMessage.enrollment_id == row.enrollment_id,
            OutboxMessage.status == "waiting",
            CampaignStep.position > (current.position if current else 0),
        )
        .order_by(CampaignStep.position)
        .limit(1)
    ).first()
    if following is None:
        still_open = session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.enrollment_id == row.enrollment_id,
                OutboxMessage.status.in_(("waiting", "queued", "sending", "needs_review")),
            )
        )
        if not still_open:
            session.execute(
                update(Enrollment)
                .where(Enrollment.id == row.enrollment_id, Enrollment.status == "active")
                .values(status="completed")
            )
        return
    next_row, next_step = following
    next_row.status = "queued"
    next_row.due_at = send_window.next_send_time(
        send_window.parse_window(next_step.send_window),
        sent_at + dt.timedelta(days=next_step.delay_days),
    )


def _record_sent(engine: Engine, prepared: Prepared, result: mailer.AttemptResult) -> None:
    now = utcnow()
    with write_session(engine) as session:
        row = session.get(OutboxMessage, prepared.outbox_id)
        if row is None:
            return
        row.status = "sent"
        row.sent_at = now
        row.smtp_reply = result.reply[:500]
        row.lease_until = None
        row.last_error = None
        schedule_next(session, row, sent_at=now)
        campaign = session.get(Campaign, row.campaign_id)
        if campaign is not None and campaign.consecutive_failures:
            campaign.consecutive_failures = 0
        if row.candidate_id is not None:
            session.add(
                Activity(
                    candidate_id=row.candidate_id,
                    kind="email_sent",
                    channel="email",
                    occurred_at=now,
                    actor_id=campaign.created_by_id if campaign else None,
                    summary=f"Email sent: {row.subject}",
                    campaign_id=row.campaign_id,
                    details={"outbox_id": row.id},
                )
            )
            session.execute(
                update(Candidate)
                .where(Candidate.id == row.candidate_id)
                .values(
                    last_contacted_at=now,
                    last_contacted_by_id=campaign.created_by_id if campaign else None,
                    last_contact_channel="email",
                )
                .execution_options(synchronize_session=False)
            )


def _record_failure(
    engine: Engine,
    prepared: Prepared,
    result: mailer.AttemptResult,
    *,
    settings: Settings,
    report: DeliveryReport,
) -> None:
    now = utcnow()
    with write_session(engine) as session:
        row = session.get(OutboxMessage, prepared.outbox_id)
        if row is None:
            return
        row.lease_until = None
        if result.outcome == mailer.SendOutcome.UNKNOWN:
            row.status = "needs_review"
            row.last_error = result.reply[:500]
            report.needs_review += 1
        elif result.outcome == mailer.SendOutcome.PERMANENT or row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
            row.smtp_reply = result.reply[:500]
            row.last_error = result.reply[:500]
            row.sent_at = None
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


def _suppress_bounced(session: Session, row: OutboxMessage, reply: str, now: dt.datetime) -> None:
    candidate = session.get(Candidate, row.candidate_id)
    if candidate is None or not candidate.email_normalized:
        return
    digest = address_hash(candidate.email_normalized)
    if session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)) is None:
        session.add(Suppression(address_hash=digest, reason="hard_bounce", note=reply[:300]))
    session.add(
        Event(
            kind="bounce",
            occurred_at=now,
            candidate_id=candidate.id,
            campaign_id=row.campaign_id,
            step_id=row.step_id,
            outbox_message_id=row.id,
            detail={"hard": True, "reply": reply[:300]},
        )
    )
    # Nothing else may go to a bounced address, in any campaign.
    for enrollment_id in session.scalars(
        select(Enrollment.id).where(
            Enrollment.candidate_id == candidate.id, Enrollment.status == "active"
        )
    ):
        stop_enrollment(session, enrollment_id, "hard bounce")


def _release(engine: Engine, ids: list[int], worker: str) -> None:
    if not ids:
        return
    with write_session(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(ids),
                OutboxMessage.leased_by == worker,
                OutboxMessage.status == "queued",
            )
            .values(lease_until=None, leased_by=None)
        )


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
                OutboxMessage.status.in_(("waiting", "queued", "sending", "needs_review")),
            )
            .exists()
        )
        session.execute(
            update(Campaign)
            .where(and_(Campaign.status == "active", Campaign.launched_at.is_not(None), ~open_rows))
            .values(status="completed")
            .execution_options(synchronize_session=False)
        )


# --- the loop --------------------------------------------------------------------------


def deliver_due(
    engine: Engine,
    *,
    settings: Settings | None = None,
    worker: str | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[DeliveryReport], None] | None = None,
    connection_factory: Callable[[], mailer.MailConnection] | None = None,
) -> DeliveryReport:
    """Send everything due now (and retries that fall due while this runs), then return."""
    settings = settings or load_settings()
    report = DeliveryReport()
    if settings.smtp is None:
        report.problem = "Sending is not set up: CRM_SMTP_HOST is empty."
        return report
    worker = worker or worker_name()
    recover_stale(engine)
    interval = 1.0 / settings.send_rate
    connection = (connection_factory or (lambda: mailer.MailConnection(settings.smtp)))()
    next_slot = time.monotonic()
    try:
        while not (stop and stop.is_set()):
            ids = claim(engine, worker=worker, now=utcnow())
            if not ids:
                break
            for index, outbox_id in enumerate(ids):
                if stop and stop.is_set():
                    _release(engine, ids[index:], worker)
                    return report
                prepared = _prepare(
                    engine, outbox_id, worker=worker, settings=settings, report=report
                )
                if prepared is None:
                    continue
                wait = next_slot - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                next_slot = max(next_slot, time.monotonic() - interval) + interval
                result = connection.send(prepared.message)  # type: ignore[arg-type]
                if result.outcome == mailer.SendOutcome.SENT:
                    _record_sent(engine, prepared, result)
                    report.sent += 1
                elif result.outcome == mailer.SendOutcome.CONNECTION:
                    # Nothing went out: put this one back and stop the batch.
                    _unsend(engine, prepared.outbox_id)
                    _release(engine, ids[index + 1 :], worker)
                    _connection_failed(engine, ids, result, report)
                    return report
                else:
                    _record_failure(engine, prepared, result, settings=settings, report=report)
                if progress is not None:
                    progress(report)
    finally:
        connection.close()
        _complete_finished_campaigns(engine)
    return report


def _unsend(engine: Engine, outbox_id: int) -> None:
    with write_session(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == outbox_id, OutboxMessage.status == "sending")
            .values(
                status="queued",
                sent_at=None,
                lease_until=None,
                leased_by=None,
                attempts=OutboxMessage.attempts - 1,
            )
        )


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
