"""Roles and what each may do, checked by the services against the database.

Roles: admin (users and settings, and everything a recruiter does), recruiter (all the
work), manager (reads everything, writes nothing). Writing services call
require_writer(engine, actor) or require_admin(engine, actor) before they do anything.

The `User` a page hands over may be stale: a dialog or a fragment reruns without
app.py's check of the signed-in user, so the object can say "active admin" for someone
deactivated, demoted or signed out a minute ago. So the checks read the user's row again
and trust only that; a write session given the actor (db.write_session(engine,
actor=...)) checks once more inside its own transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from crm.errors import PermissionDenied
from crm.models import User

Need = Literal["any", "writer", "admin"]
WRITER_ROLES = frozenset({"admin", "recruiter"})

SIGN_IN_TO_CHANGE = "Sign in to make changes."
READ_ONLY_MESSAGE = "Managers have read-only access; ask a recruiter or an admin to do this."
ADMINS_ONLY = "Only an admin can manage users and settings."
DEACTIVATED = "Your account has been deactivated; ask an admin."
SIGNED_OUT = "You have been signed out; sign in again."


def can_write(user: User | None) -> bool:
    """Whether to offer write controls to this user (the services decide for real)."""
    return user is not None and user.active and user.role in WRITER_ROLES


def signed_out_since(revoked_at: dt.datetime | None, signed_in_at: dt.datetime) -> bool:
    return revoked_at is not None and signed_in_at < revoked_at


def _refusal(need: Need, role: str) -> str | None:
    if need == "any":
        return None
    if need == "admin" and role != "admin":
        return ADMINS_ONLY
    if role not in WRITER_ROLES:
        return READ_ONLY_MESSAGE
    return None


def confirm(bind: Engine | Connection | Session, actor: User | None, need: Need) -> None:
    """Refuse unless actor's stored row is an active user, of a role that may do `need`,
    who has not signed out since this session signed in. Within a transaction, pass its
    session or connection: the check then holds for the whole write."""
    if actor is None:
        raise PermissionDenied(SIGN_IN_TO_CHANGE)
    # What the object says first: a manager is refused without a query.
    refusal = DEACTIVATED if not actor.active else _refusal(need, actor.role)
    if refusal:
        raise PermissionDenied(refusal)
    query = select(User.active, User.role, User.sessions_revoked_at).where(User.id == actor.id)
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            stored = connection.execute(query).one_or_none()
    else:
        stored = bind.execute(query).one_or_none()
    if stored is None or not stored.active:
        raise PermissionDenied(DEACTIVATED)
    signed_in_at = actor.signed_in_at
    if signed_in_at is not None and signed_out_since(stored.sessions_revoked_at, signed_in_at):
        raise PermissionDenied(SIGNED_OUT)
    refusal = _refusal(need, stored.role)
    if refusal:
        raise PermissionDenied(refusal)


def require_writer(bind: Engine | Connection | Session, actor: User | None) -> None:
    """Refuse a write by a manager, a deactivated or signed-out user, or nobody."""
    confirm(bind, actor, "writer")


def require_admin(bind: Engine | Connection | Session, actor: User | None) -> None:
    """Refuse anyone but an active admin."""
    confirm(bind, actor, "admin")


def require_active(bind: Engine | Connection | Session, actor: User | None) -> None:
    """Refuse a deactivated or signed-out user (any role may change their own things)."""
    confirm(bind, actor, "any")
