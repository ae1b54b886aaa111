"""Timeline entries (activities): one person's, or one per person of a bulk action, written
inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from crm import clock
from crm.models import Activity, User


def record(
    session: Session,
    *,
    actor: User,
    candidate_ids: Iterable[int],
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
) -> None:
    """One entry per person, all at the same moment, in one INSERT per 5,000 people."""
    ids = sorted(set(candidate_ids))
    now = clock.now()
    for start in range(0, len(ids), 5000):
        session.execute(
            insert(Activity),
            [
                {
                    "candidate_id": cid,
                    "kind": kind,
                    "actor_id": actor.id,
                    "summary": summary,
                    "details": details,
                    "occurred_at": now,
                }
                for cid in ids[start : start + 5000]
            ],
        )


def add_one(
    session: Session,
    actor: User,
    candidate_id: int,
    kind: str,
    summary: str,
    details: dict[str, Any] | None = None,
    **columns: Any,
) -> None:
    """One entry on one person's timeline, by the actor; `columns` sets the others
    (occurred_at, else now; channel)."""
    session.add(
        Activity(
            candidate_id=candidate_id,
            kind=kind,
            actor_id=actor.id,
            summary=summary,
            details=details,
            **columns,
        )
    )
