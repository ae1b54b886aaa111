"""Users, passwords, roles and browser sessions (the service half of crm.auth)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from crm import auth, clock, db, goals, permissions
from crm.errors import PermissionDenied, SignInRefused, ValidationError
from crm.models import AuditLog, Goal, User
from tests.conftest import PASSWORDS, signs_in


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
        ("short", "at least 12 characters"),
        (" " * 12, "at least 12 characters"),
        ("password1234", "stronger password"),
        ("123456789012", "stronger password"),
        ("qwertyuiopas", "stronger password"),
        ("Ada", "at least 12 characters"),
        ("é" * 37, "longer than 72 bytes"),  # 74 bytes in UTF-8, 37 characters
        ("x" * 73, "longer than 72 bytes"),
    ],
)
def test_unusable_passwords_are_refused_cleanly(
    engine: Engine, password: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        auth.create_user(engine, username="ada", role="admin", password=password)


def test_the_username_is_not_a_password(engine: Engine) -> None:
    with pytest.raises(ValidationError, match="must not be the username"):
        auth.create_user(
            engine, username="ada.lovelace.1815", role="admin", password="Ada.Lovelace.1815"
        )


def test_password_of_exactly_72_bytes_works(engine: Engine) -> None:
    password = ("seven lanterns drift over quiet harbours while gulls argue about bread " * 2)[:72]
    auth.create_user(engine, username="ada", role="admin", password=password)
    assert signs_in(engine, "ada", password)
    assert not signs_in(engine, "ada", password + "x")


def test_authenticate_counts_failures_and_resets_on_success(
    users: dict[str, User], engine: Engine
) -> None:
    assert not signs_in(engine, "recruiter", "wrong-password")
    assert not signs_in(engine, "recruiter", "wrong-again")
    assert auth.find_user(engine, "recruiter").failed_login_attempts == 2
    assert signs_in(engine, "RECRUITER", PASSWORDS["recruiter"])
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
    assert not signs_in(engine, "recruiter", PASSWORDS["recruiter"])


def test_sign_out_ends_every_session_of_the_user(users: dict[str, User], engine: Engine) -> None:
    first_tab: dict = {}
    second_tab: dict = {}
    auth.sign_in_session(first_tab, users["manager"])
    auth.sign_in_session(second_tab, users["manager"])
    auth.sign_out(engine, first_tab, users["manager"])
    assert auth.session_user(engine, first_tab) is None
    assert auth.session_user(engine, second_tab) is None
    # A new sign-in after the logout is honoured.
    later = clock.now() + dt.timedelta(seconds=1)
    auth.sign_in_session(first_tab, users["manager"], signed_in_at=later)
    assert auth.session_user(engine, first_tab) is not None


def test_password_change_signs_out_other_sessions(users: dict[str, User], engine: Engine) -> None:
    state: dict = {}
    auth.sign_in_session(state, users["recruiter"])
    auth.set_password(
        engine, actor=users["recruiter"], user_id=users["recruiter"].id, password="new-password-1"
    )
    assert auth.session_user(engine, state) is None
    assert signs_in(engine, "recruiter", "new-password-1")
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
        permissions.require_writer(engine, manager)
    draft = goals.GoalDraft(
        title="More hires",
        metric="hires",
        target_kind="absolute",
        target_value=10,
        start_date=dt.date(2026, 1, 1),
        deadline=dt.date(2026, 12, 31),
        baseline_value=5,
    )
    with pytest.raises(PermissionDenied, match="read-only"):
        goals.save_goal(engine, actor=manager, draft=draft)
    with db.read_session(engine) as session:
        assert session.scalars(select(Goal)).all() == []
    with pytest.raises(PermissionDenied):
        auth.set_role(engine, actor=manager, user_id=manager.id, role="admin")
    assert permissions.can_write(users["recruiter"]) and not permissions.can_write(manager)


def test_user_changes_are_audited(users: dict[str, User], engine: Engine) -> None:
    auth.set_role(engine, actor=users["admin"], user_id=users["manager"].id, role="recruiter")
    with db.read_session(engine) as session:
        actions = [row.action for row in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions.count("user.create") == 3
    assert actions[-1] == "user.role"


# --- single sign-on ---------------------------------------------------------------------


def _add_email(engine: Engine, user: User, email: str) -> None:
    with db.write_session(engine) as session:
        session.get(User, user.id).email = email


def _sso(engine: Engine, email: str | None, **overrides: object) -> User:
    arguments: dict = {
        "email": email,
        "email_verified": True,
        "subject": "sub-123",
        "issuer": "https://id.acme.example",
        "issued_at": clock.now(),
    }
    arguments.update(overrides)
    return auth.user_for_sso(engine, **arguments)


def test_sso_signs_in_the_user_with_that_email_and_the_tables_role(
    users: dict[str, User], engine: Engine
) -> None:
    _add_email(engine, users["manager"], "Manny.Manager@Acme.example")
    _add_email(engine, users["recruiter"], "rita@acme.example")
    with db.write_session(engine) as session:
        session.get(User, users["manager"].id).failed_login_attempts = 3
    user = _sso(engine, "  manny.manager@ACME.example ")  # case and spaces do not matter
    assert (user.id, user.role) == (users["manager"].id, "manager")
    stored = auth.get_user(engine, user.id)
    assert stored.failed_login_attempts == 0
    assert stored.last_login_at is not None
    with db.read_session(engine) as session:
        entry = session.scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert (entry.action, entry.user_id, entry.username) == ("login", user.id, "manager")
    assert entry.detail == {
        "method": "sso",
        "issuer": "https://id.acme.example",
        "subject": "sub-123",
    }
    # No user is made up from a provider's answer.
    assert len(auth.list_users(engine)) == 3


@pytest.mark.parametrize(
    "email, verified, message",
    [
        ("stranger@acme.example", True, "No Candidate CRM user has the email address"),
        ("rita@acme.example", False, "has not said that it verified the email address rita@"),
        ("rita@acme.example", None, "has not said that it verified the email address rita@"),
        (None, True, "did not give an email address"),
        ("not an address", True, "did not give an email address"),
    ],
)
def test_sso_refuses_unknown_unverified_and_missing_emails(
    users: dict[str, User], engine: Engine, email: str | None, verified: bool | None, message: str
) -> None:
    _add_email(engine, users["recruiter"], "rita@acme.example")
    with pytest.raises(SignInRefused, match=message) as refused:
        _sso(engine, email, email_verified=verified)
    sentence = str(refused.value)
    assert sentence.endswith(".") and "\n" not in sentence and "Traceback" not in sentence
    with db.read_session(engine) as session:
        actions = session.scalars(select(AuditLog.action)).all()
    assert "login" not in actions
    assert auth.get_user(engine, users["recruiter"].id).last_login_at is None


def test_sso_takes_an_unverified_email_only_from_the_issuer_the_admin_trusts(
    users: dict[str, User], engine: Engine
) -> None:
    """Entra ID sends no email_verified; where an admin knows it verifies every address
    (one tenant), CRM_OIDC_TRUSTED_ISSUER names it. Another issuer's claim stays refused."""
    _add_email(engine, users["recruiter"], "rita@acme.example")
    trusted = "https://login.microsoftonline.com/acme-tenant/v2.0"
    with pytest.raises(SignInRefused, match="CRM_OIDC_TRUSTED_ISSUER"):
        _sso(engine, "rita@acme.example", email_verified=None, issuer="https://evil.example",
             trusted_issuer=trusted)  # fmt: skip
    user = _sso(engine, "rita@acme.example", email_verified=None, issuer=trusted,
                trusted_issuer=trusted)  # fmt: skip
    assert user.id == users["recruiter"].id


def test_sso_binds_the_user_to_the_first_provider_account_it_signs_in_with(
    users: dict[str, User], engine: Engine
) -> None:
    """nOAuth: another account at the provider claiming the same email is someone else."""
    _add_email(engine, users["recruiter"], "rita@acme.example")
    _add_email(engine, users["manager"], "manny@acme.example")
    assert _sso(engine, "rita@acme.example", subject="rita-1").id == users["recruiter"].id
    stored = auth.get_user(engine, users["recruiter"].id)
    assert (stored.sso_issuer, stored.sso_subject) == ("https://id.acme.example", "rita-1")
    with pytest.raises(SignInRefused, match="signs in with a different account"):
        _sso(engine, "rita@acme.example", subject="mallory-7")
    with pytest.raises(SignInRefused, match="signs in with a different account"):
        _sso(engine, "rita@acme.example", subject="rita-1", issuer="https://other.example")
    # Rita's provider account cannot become Manny's by showing Manny's email either.
    with pytest.raises(SignInRefused, match="already belongs to another"):
        _sso(engine, "manny@acme.example", subject="rita-1")
    assert _sso(engine, "rita@acme.example", subject="rita-1").id == users["recruiter"].id
    with pytest.raises(SignInRefused, match="does not say who signed in"):
        _sso(engine, "rita@acme.example", subject="")


def test_sso_refuses_a_deactivated_user(users: dict[str, User], engine: Engine) -> None:
    _add_email(engine, users["recruiter"], "rita@acme.example")
    auth.set_active(engine, actor=users["admin"], user_id=users["recruiter"].id, active=False)
    with pytest.raises(SignInRefused, match="rita@acme.example is deactivated; ask an admin"):
        _sso(engine, "rita@acme.example")


def test_sso_with_an_email_on_two_active_users_is_refused_but_an_old_account_is_ignored(
    users: dict[str, User], engine: Engine
) -> None:
    _add_email(engine, users["recruiter"], "rita@acme.example")
    _add_email(engine, users["manager"], "RITA@acme.example")
    with pytest.raises(SignInRefused, match="More than one Candidate CRM user"):
        _sso(engine, "rita@acme.example")
    auth.set_active(engine, actor=users["admin"], user_id=users["manager"].id, active=False)
    assert _sso(engine, "rita@acme.example").id == users["recruiter"].id


def test_sso_session_follows_sign_out_and_deactivation(
    users: dict[str, User], engine: Engine
) -> None:
    _add_email(engine, users["recruiter"], "rita@acme.example")
    now = int(clock.now().timestamp())
    claims = {
        "is_logged_in": True,
        "email": "rita@acme.example",
        "email_verified": "true",  # some providers send a string
        "sub": "sub-rita",
        "iss": "https://id.acme.example",
        "iat": now - 60,
    }
    tab: dict = {}
    other_tab: dict = {}
    assert auth.sso_sign_in(engine, tab, claims).id == users["recruiter"].id
    assert auth.sso_sign_in(engine, other_tab, claims).id == users["recruiter"].id
    assert auth.session_user(engine, tab).id == users["recruiter"].id
    # Signing out in one tab ends the other tab's session, and its provider identity
    # (issued before the sign-out) no longer signs it back in.
    auth.sign_out(engine, tab, users["recruiter"])
    assert auth.session_user(engine, other_tab) is None
    assert auth.sso_sign_in(engine, other_tab, claims) is None
    assert "signed out after this single sign-on" in other_tab[auth.SESSION_SSO_REFUSAL]
    # A fresh sign-in at the provider, even within the second of the sign-out, is honoured.
    fresh = dict(claims, iat=int(clock.now().timestamp()))
    assert auth.sso_sign_in(engine, other_tab, fresh).id == users["recruiter"].id
    assert auth.SESSION_SSO_REFUSAL not in other_tab
    assert auth.session_user(engine, other_tab).id == users["recruiter"].id
    # Deactivation ends the SSO session on the next rerun and refuses it after that.
    auth.set_active(engine, actor=users["admin"], user_id=users["recruiter"].id, active=False)
    assert auth.session_user(engine, other_tab) is None
    later = dict(claims, iat=now + 5)
    assert auth.sso_sign_in(engine, other_tab, later) is None
    assert "deactivated" in other_tab[auth.SESSION_SSO_REFUSAL]


def test_sso_sign_in_needs_a_signed_in_provider_identity(
    users: dict[str, User], engine: Engine
) -> None:
    _add_email(engine, users["recruiter"], "rita@acme.example")
    state: dict = {auth.SESSION_SSO_REFUSAL: "an old refusal"}
    # AppTest's default st.user, and a logged-out one: nothing happens.
    assert auth.sso_sign_in(engine, state, {"email": "rita@acme.example"}) is None
    assert auth.sso_sign_in(engine, state, {"is_logged_in": False}) is None
    assert state == {}
    no_time = {"is_logged_in": True, "email": "rita@acme.example", "sub": "s", "iss": "i"}
    assert auth.sso_sign_in(engine, state, no_time) is None
    assert "no time of issue" in state[auth.SESSION_SSO_REFUSAL]
    assert auth.SESSION_USER_ID not in state
