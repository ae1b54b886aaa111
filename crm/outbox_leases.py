"""Who holds which due message: claiming a batch, giving it back, and recovering leases.

A delivery worker leases due rows before it sends them (PostgreSQL: FOR UPDATE SKIP
LOCKED, so several workers share the queue; SQLite: one writer and a conditional
UPDATE). Rows a worker did not get to go back to the queue; a row left "sending" by a
worker that died becomes "needs review", since nobody knows whether it went out.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading

from sqlalchemy import Engine, or_, select, update

from crm import clock
from crm.db import write_session
from crm.models import Campaign, OutboxMessage

BATCH_SIZE = 50
LEASE = dt.timedelta(minutes=5)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100000}"


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
    now = now or clock.now()
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


def release(engine: Engine, ids: list[int], worker: str) -> None:
    """Give back whatever of a batch this worker leased but did not send, stop or defer."""
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


def unsend(engine: Engine, outbox_id: int) -> None:
    """Put a message marked "sending" back in the queue: the server was never reached."""
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
