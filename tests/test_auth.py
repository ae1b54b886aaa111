"""Users, passwords, roles and browser sessions (the service half of crm.auth)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from crm import auth, db, goals
from crm.errors import PermissionDenied, ValidationError
from crm.models import AuditLog, Goal, User
from tests.conftest import PASSWORDS


def test_first_user_must_be_an_admin(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="first user must be an admin"):
        auth.create_user(engine, username="rita", role="recruiter", password="long-enough-1")
    admin = auth.create_user(engine, username="Ada", role="admin", password="long-enough-1")
    assert admin.username == "ada"  # usernames are case-insensitive, stored lower-case


def test_only_an_admin_adds_users(users: dict[str, User], engine: Engine) -> None:
    with pytest.raises(PermissionDenied):
        auth.create_user(
            engine,
            username="x1",
            role="recruiter",
            password="long-enough-1",
            actor=users["recruiter"],
        )


@pytest.mark.parametrize(
    "password, message",
    [
        ("short", "at least 8 characters"),
        ("é" * 37, "longer than 72 bytes"),  # 74 bytes in UTF-8, 37 characters
        ("x" * 73, "longer than 72 bytes"),
    ],
)
def test_unusable_passwords_are_refused_cleanly(
    engine: Engine, password: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        auth.create_user(engine, username="ada", role="admin", password=password)


def test_password_of_exactly_72_bytes_works(engine: Engine) -> None:
    password = "p" * 72
    auth.create_user(engine, username="ada", role="admin", password=password)
    assert auth.authenticate(engine, "ada", password) is not None
    assert auth.authenticate(engine, "ada", password + "x") is None


def test_authenticate_counts_failures_and_resets_on_success(
    users: dict[str, User], engine: Engine
) -> None:
    assert auth.authenticate(engine, "recruiter", "wrong-password") is None
    assert auth.authenticate(engine, "recruiter", "wrong-again") is None
    assert auth.find_user(engine, "recruiter").failed_login_attempts == 2
    assert auth.authenticate(engine, "RECRUITER", PASSWORDS["recruiter"]) is not None
    user = auth.find_user(engine, "recruiter")
    assert user.failed_login_attempts == 0
    assert user.last_login_at is not None


def test_deactivated_user_cannot_sign_in_and_loses_open_sessions(
    users: dict[str, User], engine: Engine
) -> None:
    state: dict = {}
    auth.sign_in_session(state, users["recruiter"])
    assert auth.session_user(engine, state).id == users["recruiter"].id
    auth.set_active(engine, actor=users["admin"], user_id=users["recruiter"].id, active=False)
    assert auth.session_user(engine, state) is None
    assert "deactivated" in state[auth.SESSION_NOTICE]
    assert auth.authenticate(engine, "recruiter", PASSWORDS["recruiter"]) is None


def test_sign_out_ends_every_session_of_the_user(users: dict[str, User], engine: Engine) -> None:
    first_tab: dict = {}
    second_tab: dict = {}
    auth.sign_in_session(first_tab, users["manager"])
    auth.sign_in_session(second_tab, users["manager"])
    auth.sign_out(engine, first_tab, users["manager"])
    assert auth.session_user(engine, first_tab) is None
    assert auth.session_user(engine, second_tab) is None
    # A new sign-in after the logout is honoured.
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    auth.sign_in_session(first_tab, users["manager"], signed_in_at=later)
    assert auth.session_user(engine, first_tab) is not None


def test_password_change_signs_out_other_sessions(users: dict[str, User], engine: Engine) -> None:
    state: dict = {}
    auth.sign_in_session(state, users["recruiter"])
    auth.set_password(
        engine, actor=users["recruiter"], user_id=users["recruiter"].id, password="new-password-1"
    )
    assert auth.session_user(engine, state) is None
    assert auth.authenticate(engine, "recruiter", "new-password-1") is not None
    with pytest.raises(PermissionDenied):
        auth.set_password(
            engine, actor=users["recruiter"], user_id=users["admin"].id, password="hijack-pass"
        )


def test_the_last_admin_stays(users: dict[str, User], engine: Engine) -> None:
    admin = users["admin"]
    with pytest.raises(ValidationError, match="last active admin"):
        auth.set_active(engine, actor=admin, user_id=admin.id, active=False)
    with pytest.raises(ValidationError, match="last active admin"):
        auth.set_role(engine, actor=admin, user_id=admin.id, role="recruiter")


def test_managers_are_refused_by_writing_services(users: dict[str, User], engine: Engine) -> None:
    manager = users["manager"]
    with pytest.raises(PermissionDenied, match="read-only"):
        auth.require_writer(manager)
    goal = Goal(
        title="More hires",
        metric="hires",
        target_kind="absolute",
        target_value=10,
        start_date=dt.date(2026, 1, 1),
        deadline=dt.date(2026, 12, 31),
    )
    with pytest.raises(PermissionDenied, match="read-only"):
        goals.create_goal(engine, actor=manager, goal=goal)
    with db.read_session(engine) as session:
        assert session.scalars(select(Goal)).all() == []
    with pytest.raises(PermissionDenied):
        auth.set_role(engine, actor=manager, user_id=manager.id, role="admin")
    assert auth.can_write(users["recruiter"]) and not auth.can_write(manager)


def test_user_changes_are_audited(users: dict[str, User], engine: Engine) -> None:
    auth.set_role(engine, actor=users["admin"], user_id=users["manager"].id, role="recruiter")
    with db.read_session(engine) as session:
        actions = [row.action for row in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions.count("user.create") == 3
    assert actions[-1] == "user.role"
