"""The audit log: who created, changed, exported, sent, erased or signed in, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm.models import AuditLog, User


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity: str | None = None,
    entity_id: object | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit entry inside the caller's transaction, so it commits with the change."""
    session.add(
        AuditLog(
            user_id=actor.id if actor is not None else None,
            username=actor.username if actor is not None else None,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            detail=detail,
        )
    )


def record_about(
    session: Session,
    actor: User | None,
    action: str,
    entity_id: object,
    detail: dict[str, Any] | None = None,
) -> None:
    """An audit entry about one record of the entity the action names first: "pool.stages"
    is about the pool entity_id."""
    entity = action.partition(".")[0]
    record(session, actor=actor, action=action, entity=entity, entity_id=entity_id, detail=detail)


def record_many(
    session: Session, actor: User | None, action: str, count: int, **detail: Any
) -> None:
    """An audit entry about an action on several records at once: how many, and whatever
    else the detail says."""
    record(session, actor=actor, action=action, detail={"count": count, **detail})
