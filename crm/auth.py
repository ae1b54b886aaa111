"""Users, passwords, roles, single sign-on, and the login gate.

This is the only module that touches streamlit-authenticator. The service half (users,
passwords, permission checks, matching a single sign-on identity to a user) imports no
Streamlit and serves the CLI and tests; the login gate at the bottom imports Streamlit
lazily and is used by app.py.

Roles: admin (users and settings, and everything a recruiter does), recruiter (all the
work), manager (reads everything, writes nothing). Writing services call
require_writer(actor), so a manager is refused in the service, not only in the page.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import bcrypt
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm import audit, clock
from crm.db import read_session, write_session
from crm.errors import CrmError, NotFound, PermissionDenied, SignInRefused, ValidationError
from crm.identity import normalize_email
from crm.models import ROLES, User

if TYPE_CHECKING:
    from crm.config import SsoSettings

COOKIE_NAME = "crm_auth"
COOKIE_EXPIRY_DAYS = 14.0
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything longer, so we refuse it
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# Session-state keys of a signed-in browser session.
SESSION_USER_ID = "crm_user_id"
SESSION_SIGNED_IN_AT = "crm_signed_in_at"
SESSION_NOTICE = "crm_auth_notice"
SESSION_SSO_REFUSAL = "crm_sso_refusal"  # why the provider's identity was not let in

READ_ONLY_MESSAGE = "Managers have read-only access; ask a recruiter or an admin to do this."


# --- passwords --------------------------------------------------------------------------


# Sign-in is refused after this many failures in a row, until an admin sets a new password.
MAX_LOGIN_ATTEMPTS = 5
LOCKED_OUT = (
    "Too many failed sign-ins for this user; ask an admin to set a new password to unlock it."
)


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"The password is longer than {MAX_PASSWORD_BYTES} bytes; choose a shorter one."
        )


def hash_password(password: str) -> str:
    validate_password(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def password_matches(password: str, password_hash: str | None) -> bool:
    encoded = password.encode("utf-8")
    if not password_hash or len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except ValueError:
        return False


# --- roles ------------------------------------------------------------------------------


def can_write(user: User | None) -> bool:
    return user is not None and user.active and user.role in {"admin", "recruiter"}


def require_writer(actor: User | None) -> None:
    """Refuse a write by a manager (or by nobody) with one sentence."""
    if actor is None or not actor.active:
        raise PermissionDenied("Sign in to make changes.")
    if actor.role not in {"admin", "recruiter"}:
        raise PermissionDenied(READ_ONLY_MESSAGE)


def require_admin(actor: User | None) -> None:
    if actor is None or not actor.active or actor.role != "admin":
        raise PermissionDenied("Only an admin can manage users and settings.")


# --- users ------------------------------------------------------------------------------


def has_users(engine: Engine) -> bool:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(User)) > 0


def get_user(engine: Engine, user_id: int) -> User | None:
    with read_session(engine) as session:
        return session.get(User, user_id)


def find_user(engine: Engine, username: str) -> User | None:
    with read_session(engine) as session:
        return session.scalar(select(User).where(User.username == username.strip().lower()))


def list_users(engine: Engine) -> list[User]:
    with read_session(engine) as session:
        return list(session.scalars(select(User).order_by(User.username)))


def _validate_new_user(username: str, role: str, email: str | None) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValidationError(
            "A username is 2 to 64 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit."
        )
    if role not in ROLES:
        raise ValidationError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    if email and "@" not in email:
        raise ValidationError(f"{email!r} is not an email address.")


def create_user(
    engine: Engine,
    *,
    username: str,
    role: str,
    password: str,
    display_name: str | None = None,
    email: str | None = None,
    actor: User | None = None,
    as_operator: bool = False,
) -> User:
    """Add a user. An admin may (actor); so may the person running the server (as_operator,
    for `crm user add` and the demo loader); the very first user must be an admin."""
    username = username.strip().lower()  # the login library lower-cases what people type
    _validate_new_user(username, role, email)
    password_hash = hash_password(password)
    with write_session(engine) as session:
        first_user = session.scalar(select(func.count()).select_from(User)) == 0
        if first_user and role != "admin":
            raise ValidationError("The first user must be an admin.")
        if not first_user and not as_operator:
            require_admin(actor)
        if session.scalar(select(User.id).where(User.username == username)):
            raise ValidationError(f"There is already a user called {username!r}.")
        user = User(
            username=username,
            display_name=(display_name or username).strip(),
            email=(email or None),
            role=role,
            password_hash=password_hash,
        )
        session.add(user)
        session.flush()
        audit.record(
            session, actor=actor or user, action="user.create", entity="user", entity_id=user.id
        )
    return user


def _load_for_change(session: Session, actor: User, user_id: int) -> User:
    require_admin(actor)
    user = session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("That user no longer exists.")
    return user


def _other_active_admins(session: Session, user_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(User)
        .where(User.role == "admin", User.active.is_(True), User.id != user_id)
    )


def set_active(engine: Engine, *, actor: User, user_id: int, active: bool) -> None:
    """Activate or deactivate a user; a deactivated user is signed out on the next rerun."""
    with write_session(engine) as session:
        user = _load_for_change(session, actor, user_id)
        if not active and user.role == "admin" and _other_active_admins(session, user.id) == 0:
            raise ValidationError("The last active admin cannot be deactivated.")
        user.active = active
        if not active:
            user.sessions_revoked_at = clock.now()
        action = "user.activate" if active else "user.deactivate"
        audit.record(session, actor=actor, action=action, entity="user", entity_id=user.id)


def set_role(engine: Engine, *, actor: User, user_id: int, role: str) -> None:
    if role not in ROLES:
        raise ValidationError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    with write_session(engine) as session:
        user = _load_for_change(session, actor, user_id)
        if user.role == "admin" and role != "admin" and _other_active_admins(session, user.id) == 0:
            raise ValidationError("The last active admin must stay an admin.")
        user.role = role
        audit.record(
            session,
            actor=actor,
            action="user.role",
            entity="user",
            entity_id=user.id,
            detail={"role": role},
        )


def set_password(engine: Engine, *, actor: User, user_id: int, password: str) -> None:
    """Change a password (an admin for anyone, a user for themself); other sessions end."""
    if actor.id != user_id:
        require_admin(actor)
    password_hash = hash_password(password)
    with write_session(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That user no longer exists.")
        user.password_hash = password_hash
        user.sessions_revoked_at = clock.now()
        user.failed_login_attempts = 0  # a new password unlocks a locked-out user
        audit.record(session, actor=actor, action="user.password", entity="user", entity_id=user_id)


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """The active user with this username and password, or None. Records the attempt."""
    with write_session(engine) as session:
        user = session.scalar(
            select(User).where(User.username == username.strip().lower()).with_for_update()
        )
        if user is None or not user.active:
            return None
        if user.failed_login_attempts >= MAX_LOGIN_ATTEMPTS:
            return None  # locked until an admin sets a new password
        if not password_matches(password, user.password_hash):
            user.failed_login_attempts += 1
            return None
        user.failed_login_attempts = 0
        user.last_login_at = clock.now()
        audit.record(session, actor=user, action="login", entity="user", entity_id=user.id)
        return user


# --- single sign-on ---------------------------------------------------------------------


def _email_key(text: str | None) -> str | None:
    """The comparison key of an email address (lower case), None if it is not one."""
    try:
        normalized = normalize_email(text)
    except ValidationError:
        return None
    return normalized[1] if normalized else None


def _signed_out_since(user: User, signed_in_at: dt.datetime) -> bool:
    return user.sessions_revoked_at is not None and signed_in_at < user.sessions_revoked_at


def user_for_sso(
    engine: Engine,
    *,
    email: str | None,
    email_verified: bool | None,
    subject: str,
    issuer: str,
    issued_at: dt.datetime,
) -> User:
    """The active user whose email is the one the provider vouched for; records the login.

    Roles come from the users table: nobody is created here, an admin adds people (with
    their email) in Settings. issued_at is when the sign-in happened at the provider; a
    sign-in from before the user's last sign-out (or deactivation) is refused, so "sign
    out" ends single sign-on sessions in every browser too. Raises SignInRefused with the
    sentence to show.
    """
    key = _email_key(email)
    if key is None:
        raise SignInRefused(
            "The sign-in provider did not give an email address, so Candidate CRM cannot "
            "tell who you are; ask an admin to let it share your email."
        )
    shown = (email or "").strip()
    if email_verified is False:
        raise SignInRefused(
            f"The sign-in provider has not verified the email address {shown}; verify it "
            "there, then sign in again."
        )
    with write_session(engine) as session:
        matches = [
            user
            for user in session.scalars(select(User).where(User.email.is_not(None)))
            if _email_key(user.email) == key
        ]
        active = [user for user in matches if user.active]
        if not matches:
            raise SignInRefused(
                f"No Candidate CRM user has the email address {shown}; ask an admin to add "
                "it to your user in Settings, or sign in with your password."
            )
        if not active:
            raise SignInRefused(
                f"The Candidate CRM user with the email address {shown} is deactivated; "
                "ask an admin."
            )
        if len(active) > 1:
            raise SignInRefused(
                f"More than one Candidate CRM user has the email address {shown}; ask an "
                "admin to keep it on one user only."
            )
        user = session.get(User, active[0].id, with_for_update=True, populate_existing=True)
        if user is None or not user.active:
            raise SignInRefused("That user was just removed or deactivated; ask an admin.")
        if _signed_out_since(user, issued_at):
            raise SignInRefused(
                "You signed out after this single sign-on; sign in again to continue."
            )
        user.failed_login_attempts = 0
        user.last_login_at = clock.now()
        audit.record(
            session,
            actor=user,
            action="login",
            entity="user",
            entity_id=user.id,
            detail={"method": "sso", "issuer": issuer, "subject": subject},
        )
        return user


def _claim_flag(value: object) -> bool | None:
    """email_verified as a provider sends it: true/false, some send "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None


def sso_issued_at(claims: Mapping[str, Any]) -> dt.datetime | None:
    """When the provider signed the person in: the ID token's iat, in whole seconds.

    iat is truncated to the second, so the sign-in happened before iat + 1 s; that end
    of the second is what is compared with a later sign-out, so a sign-in made in the
    same second as the sign-out before it is not mistaken for an old one.
    """
    value = claims.get("iat")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = int(float(value))
        return dt.datetime.fromtimestamp(seconds, dt.UTC) + dt.timedelta(seconds=1)
    except (ValueError, OverflowError, OSError):
        return None


def sso_sign_in(
    engine: Engine, state: MutableMapping[str, Any], claims: Mapping[str, Any]
) -> User | None:
    """Sign this browser session in as the user the provider's identity names.

    claims is st.user (the ID token's claims, with is_logged_in). None when nobody is
    signed in at the provider, or when the identity is refused; the refusal's sentence
    is kept in state for the sign-in screen.
    """
    if claims.get("is_logged_in") is not True:
        state.pop(SESSION_SSO_REFUSAL, None)
        return None
    issued_at = sso_issued_at(claims)
    try:
        if issued_at is None:
            raise SignInRefused(
                "The sign-in provider's answer has no time of issue; sign in again."
            )
        email = claims.get("email")
        user = user_for_sso(
            engine,
            email=email if isinstance(email, str) else None,
            email_verified=_claim_flag(claims.get("email_verified")),
            subject=str(claims.get("sub") or ""),
            issuer=str(claims.get("iss") or ""),
            issued_at=issued_at,
        )
    except CrmError as error:
        state[SESSION_SSO_REFUSAL] = str(error)
        return None
    sign_in_session(state, user, signed_in_at=issued_at)
    for key in (SESSION_NOTICE, SESSION_SSO_REFUSAL):
        state.pop(key, None)
    return user


# --- browser sessions -------------------------------------------------------------------


def sign_in_session(
    state: MutableMapping[str, Any], user: User, *, signed_in_at: dt.datetime | None = None
) -> None:
    """Mark a browser session (st.session_state, or AppTest's) as signed in as user."""
    state[SESSION_USER_ID] = user.id
    state[SESSION_SIGNED_IN_AT] = (signed_in_at or clock.now()).isoformat()


def _forget_session(state: MutableMapping[str, Any], notice: str | None) -> None:
    for key in (SESSION_USER_ID, SESSION_SIGNED_IN_AT):
        if key in state:
            del state[key]
    # streamlit-authenticator's own keys: without this it would keep saying "signed in".
    for key in ("authentication_status", "username", "name", "email", "roles"):
        state[key] = None
    state["logout"] = True
    if notice:
        state[SESSION_NOTICE] = notice


def session_user(engine: Engine, state: MutableMapping[str, Any]) -> User | None:
    """The signed-in user of this browser session, re-checked against the database.

    Runs on every rerun, so a deactivation, a password change or a logout elsewhere
    takes effect at once, whatever the browser's cookie says.
    """
    user_id = state.get(SESSION_USER_ID)
    if user_id is None:
        return None
    user = get_user(engine, int(user_id))
    if user is None or not user.active:
        _forget_session(state, "Your account has been deactivated; ask an admin.")
        return None
    signed_in_at = dt.datetime.fromisoformat(state.get(SESSION_SIGNED_IN_AT) or "1970-01-01+00:00")
    if _signed_out_since(user, signed_in_at):
        _forget_session(state, "You have been signed out; sign in again.")
        return None
    return user


def sign_out(engine: Engine, state: MutableMapping[str, Any], user: User) -> None:
    """End this user's sessions everywhere: later reruns and old cookies are refused."""
    with write_session(engine) as session:
        stored = session.get(User, user.id)
        if stored is not None:
            stored.sessions_revoked_at = clock.now()
            audit.record(session, actor=stored, action="logout", entity="user", entity_id=user.id)
    _forget_session(state, "You have signed out.")


def _credentials(engine: Engine) -> dict[str, Any]:
    """streamlit-authenticator's credentials, fed from the users table (active users only)."""
    users = {}
    for user in list_users(engine):
        if user.active and user.password_hash:
            users[user.username] = {
                "name": user.display_name,
                "email": user.email or "",
                "password": user.password_hash,
                "roles": [user.role],
                "failed_login_attempts": user.failed_login_attempts,
                "logged_in": False,
            }
    return {"usernames": users}


def _write_back_failed_attempts(engine: Engine, credentials: dict[str, Any]) -> None:
    """Store the failed-attempt counts the library raised while checking a password."""
    counts = {
        username: entry.get("failed_login_attempts", 0)
        for username, entry in credentials["usernames"].items()
    }
    with write_session(engine) as session:
        for user in session.scalars(
            select(User).where(User.username.in_(counts)).with_for_update()
        ):
            if counts[user.username] > user.failed_login_attempts:
                user.failed_login_attempts = counts[user.username]


def _complete_login(engine: Engine, username: str, issued_at: dt.datetime) -> User | None:
    """Write the library's successful login back to the database; None if not allowed."""
    with write_session(engine) as session:
        user = session.scalar(select(User).where(User.username == username).with_for_update())
        if user is None or not user.active:
            return None
        if user.sessions_revoked_at is not None and issued_at < user.sessions_revoked_at:
            return None
        user.failed_login_attempts = 0
        user.last_login_at = clock.now()
        audit.record(session, actor=user, action="login", entity="user", entity_id=user.id)
        return user


# --- the login gate (Streamlit) ---------------------------------------------------------


def login_screen(engine: Engine, secret: str, sso: SsoSettings | None = None) -> None:
    """Draw the sign-in form (and the single sign-on button when sso is set up), or the
    first-admin form when nobody has an account yet."""
    import streamlit as st

    state = st.session_state
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Candidate CRM", anchor=False)
        refusal = state.get(SESSION_SSO_REFUSAL) if sso is not None else None
        notice = state.get(SESSION_NOTICE)
        if refusal:
            st.error(refusal)
        elif notice:
            st.info(notice)
        if not has_users(engine):
            _first_admin_form(engine)
            return
        if sso is not None:
            _sso_buttons(sso, refused=bool(refusal))
        _login_form(engine, secret)


def _sso_buttons(sso: SsoSettings, *, refused: bool) -> None:
    """Sign in with the provider (st.login); after a refusal, also leave its account."""
    import streamlit as st

    st.button(
        f"Sign in with {sso.name}",
        key="crm_sso_login",
        type="primary",
        icon=":material/key:",
        width="stretch",
        on_click=st.login,
    )
    if refused:
        st.button(
            f"Sign out of {sso.name}",
            key="crm_sso_logout",
            width="stretch",
            on_click=st.logout,
        )
    st.caption("Or sign in with your username and password:")


def _first_admin_form(engine: Engine) -> None:
    import streamlit as st

    st.subheader("Create the first admin", anchor=False)
    st.caption("Nobody has an account yet. The first account manages users and settings.")
    with st.form("first_admin"):
        username = st.text_input("Username")
        display_name = st.text_input("Full name")
        email = st.text_input("Email (optional)")
        password = st.text_input("Password", type="password")
        confirm = st.text_input("Repeat the password", type="password")
        submitted = st.form_submit_button("Create admin and sign in", type="primary")
    if not submitted:
        return
    if password != confirm:
        st.error("The two passwords differ.")
        return
    try:
        user = create_user(
            engine,
            username=username,
            role="admin",
            password=password,
            display_name=display_name or username,
            email=email or None,
        )
    except ValidationError as error:
        st.error(str(error))
        return
    sign_in_session(st.session_state, user)
    st.session_state.pop(SESSION_NOTICE, None)
    st.rerun()


def _login_form(engine: Engine, secret: str) -> None:
    import jwt
    import streamlit as st
    import streamlit_authenticator as stauth
    from streamlit_authenticator.utilities import LoginError

    state = st.session_state
    credentials = _credentials(engine)
    authenticator = stauth.Authenticate(
        credentials,
        cookie_name=COOKIE_NAME,
        cookie_key=secret,
        cookie_expiry_days=COOKIE_EXPIRY_DAYS,
        auto_hash=False,
    )
    if state.get("logout") and not state.get("crm_cookie_deleted"):
        # Signed out in this session: take the old sign-in cookie out of the browser too
        # (it is refused anyway, sessions_revoked_at being later than it).
        state["crm_cookie_deleted"] = True
        authenticator.cookie_controller.delete_cookie()
    token = authenticator.cookie_controller.get_cookie()
    try:
        authenticator.login(
            location="main",
            max_login_attempts=MAX_LOGIN_ATTEMPTS,
            fields={
                "Form name": "Sign in",
                "Username": "Username",
                "Password": "Password",
                "Login": "Sign in",
            },
        )
    except LoginError as error:
        if "attempts" in str(error):
            st.error(LOCKED_OUT)
        else:
            st.error(str(error))
        return
    status = state.get("authentication_status")
    if status:
        username = state.get("username") or ""
        issued_at = clock.now()
        if token:
            # The library signed the user in from its cookie; when was that cookie issued?
            try:
                claims = jwt.decode(
                    st.context.cookies.get(COOKIE_NAME, ""), secret, algorithms=["HS256"]
                )
                expires = dt.datetime.fromtimestamp(float(claims["exp_date"]), dt.UTC)
                issued_at = expires - dt.timedelta(days=COOKIE_EXPIRY_DAYS)
            except (jwt.PyJWTError, KeyError, TypeError, ValueError):
                issued_at = dt.datetime.fromtimestamp(0, dt.UTC)
        user = _complete_login(engine, username, issued_at)
        if user is None:
            authenticator.logout(location="unrendered")
            state[SESSION_NOTICE] = "Your sign-in has expired; sign in again."
            st.rerun()
        sign_in_session(state, user, signed_in_at=issued_at if token else None)
        for key in (SESSION_NOTICE, "crm_cookie_deleted"):
            state.pop(key, None)
        state["logout"] = None
        if token:
            st.rerun()  # signed in from the cookie: open the app at once
        # Signed in through the form. The cookie component stores the sign-in in the
        # browser and then reruns the app by itself; st.rerun() here would cut it off
        # before the browser got the cookie, and a reload would ask to sign in again.
        st.success("Signed in. Opening Candidate CRM…")
        st.button("Continue", type="primary", key="crm_continue")
    elif status is False:
        _write_back_failed_attempts(engine, credentials)
        st.error("The username or password is incorrect.")
