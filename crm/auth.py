"""Users, passwords, sign-in (password, cookie, single sign-on) and browser sessions.

No Streamlit here: the sign-in screen is app_pages/sign_in.py, the cookie that keeps a
browser signed in is crm/session_cookie.py, sign-in throttling crm/throttle.py, and the
permission checks the writing services make crm/permissions.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import bcrypt
import zxcvbn
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm import audit, clock, session_cookie, throttle
from crm.db import get_existing, read_session, write_session
from crm.errors import CrmError, NotFound, SignInRefused, ValidationError
from crm.identity import email_key
from crm.models import ROLES, User
from crm.permissions import (
    DEACTIVATED,
    SIGNED_OUT,
    require_active,
    require_admin,
    signed_out_since,
)

if TYPE_CHECKING:
    pass

COOKIE_NAME = "crm_auth"
COOKIE_EXPIRY_DAYS = 14.0
MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4: 3 is "safely unguessable" for an online attack
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything longer, so we refuse it
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

# Session-state keys of a signed-in browser session.
SESSION_USER_ID = "crm_user_id"
SESSION_SIGNED_IN_AT = "crm_signed_in_at"
SESSION_NOTICE = "crm_auth_notice"
SESSION_SSO_REFUSAL = "crm_sso_refusal"  # why the provider's identity was not let in
SESSION_CLEAR_COOKIE = "crm_clear_cookie"  # signed out here: the browser's cookie must go

INCORRECT = "The username or password is incorrect."
TOO_MANY = "Too many failed sign-ins; wait {wait} and try again."


# --- passwords --------------------------------------------------------------------------


def validate_password(password: str, *, username: str = "") -> None:
    """Refuse a password that is short, too long for bcrypt, the username, or guessable
    (zxcvbn's estimate, which knows common passwords, keyboard walks and repeats)."""
    if len(password.strip()) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise ValidationError(
            f"The password is longer than {MAX_PASSWORD_BYTES} bytes; choose a shorter one."
        )
    name = username.strip().lower()
    if name and password.strip().lower() == name:
        raise ValidationError("The password must not be the username.")
    estimate = zxcvbn.zxcvbn(password, user_inputs=[name] if name else [])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        hint = estimate["feedback"].get("warning") or "It is too easy to guess."
        raise ValidationError(f"Choose a stronger password: {hint.rstrip('.')}.")


@functools.cache
def _nobody_hash() -> str:
    """A hash no typed password matches: an unknown name costs the time of a real check."""
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt()).decode("ascii")


def hash_password(password: str, *, username: str = "") -> str:
    validate_password(password, username=username)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def password_matches(password: str, password_hash: str | None) -> bool:
    encoded = password.encode("utf-8")
    if not password_hash or len(encoded) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except ValueError:
        return False


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
    password_hash = hash_password(password, username=username)
    with write_session(engine) as session:
        first_user = session.scalar(select(func.count()).select_from(User)) == 0
        if first_user and role != "admin":
            raise ValidationError("The first user must be an admin.")
        if not first_user and not as_operator:
            require_admin(session, actor)
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
        audit.record_about(session, actor or user, "user.create", user.id)
    return user


def _load_for_change(session: Session, actor: User, user_id: int) -> User:
    require_admin(session, actor)
    user = get_existing(session, User, user_id, "user", with_for_update=True)
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
        audit.record_about(session, actor, action, user.id)


def set_role(engine: Engine, *, actor: User, user_id: int, role: str) -> None:
    if role not in ROLES:
        raise ValidationError(f"The role must be one of {', '.join(ROLES)}, not {role!r}.")
    with write_session(engine) as session:
        user = _load_for_change(session, actor, user_id)
        if user.role == "admin" and role != "admin" and _other_active_admins(session, user.id) == 0:
            raise ValidationError("The last active admin must stay an admin.")
        user.role = role
        audit.record_about(session, actor, "user.role", user.id, {"role": role})


def set_password(
    engine: Engine,
    *,
    actor: User | None,
    user_id: int,
    password: str,
    as_operator: bool = False,
) -> None:
    """Change a password: an admin for anyone, a user for themself, the person running the
    server for anyone (as_operator: `crm user password`). Every session of that user ends."""
    own = actor is not None and actor.id == user_id
    check = None if as_operator else require_active if own else require_admin
    if check:
        check(engine, actor)
    target = get_user(engine, user_id)
    if target is None:
        raise NotFound("That user no longer exists.")
    password_hash = hash_password(password, username=target.username)
    with write_session(engine) as session:
        if check:
            check(session, actor)
        user = get_existing(session, User, user_id, "user")
        user.password_hash = password_hash
        # Every session of the user ends, the one making the change included: a stolen
        # session cannot outlive the password it was opened with.
        user.sessions_revoked_at = clock.now()
        _clear_failures(user)  # a new password also lifts any wait
        audit.record_about(session, actor, "user.password", user_id)


def change_own_password(
    engine: Engine, *, actor: User, current_password: str, new_password: str
) -> None:
    """A user changes their own password, proving the current one; every session of
    theirs ends (the page signs its own session in again)."""
    require_active(engine, actor)
    stored = get_user(engine, actor.id)
    if stored is None:
        raise NotFound("That user no longer exists.")
    # Guessing the current password from an open session waits like guessing at sign-in.
    wait = sign_in_wait(stored)
    if wait:
        raise ValidationError(TOO_MANY.format(wait=throttle.describe(wait)))
    if not password_matches(current_password, stored.password_hash):
        with write_session(engine) as session:
            user = session.get(User, actor.id, with_for_update=True)
            if user is not None:
                user.failed_login_attempts += 1
                user.last_failed_login_at = clock.now()
        raise ValidationError("Your current password is not right.")
    if new_password == current_password:
        raise ValidationError("Choose a password different from the current one.")
    set_password(engine, actor=actor, user_id=actor.id, password=new_password)


def unlock(engine: Engine, *, actor: User | None, user_id: int, as_operator: bool = False) -> None:
    """Lift a user's wait after failed sign-ins: an admin, or the person running the
    server (as_operator: `crm user unlock`)."""
    if not as_operator:
        require_admin(engine, actor)
    with write_session(engine, actor=actor, need="admin") as session:
        if not as_operator:
            require_admin(session, actor)
        user = get_existing(session, User, user_id, "user", with_for_update=True)
        _clear_failures(user)
        audit.record_about(session, actor, "user.unlock", user_id)


def _clear_failures(user: User) -> None:
    user.failed_login_attempts = 0
    user.last_failed_login_at = None


def sign_in_wait(user: User, now: dt.datetime | None = None) -> dt.timedelta:
    """How long this user must still wait before the next password attempt is checked."""
    return throttle.wait_left(
        user.failed_login_attempts, user.last_failed_login_at, now or clock.now()
    )


def password_sign_in(
    engine: Engine, *, username: str, password: str, client: str | None = None
) -> User:
    """The active user with this username and password; records the attempt.

    Raises SignInRefused with the sentence to show: incorrect, or wait (after repeated
    failures for this name or from this client; see crm/throttle.py). An unknown name
    and a real one get the same answers in the same time.
    """
    now = clock.now()
    name = username.strip().lower()
    waits = [throttle.CLIENTS.wait_left(client, now)]
    with write_session(engine) as session:
        user = session.scalar(select(User).where(User.username == name).with_for_update())
        known = user is not None and user.active and bool(user.password_hash)
        waits.append(
            sign_in_wait(user, now) if known else throttle.UNKNOWN_NAMES.wait_left(name, now)
        )
        wait = max(waits)
        if wait:
            pass  # refused below, without checking the password: no guess counts now
        elif known and password_matches(password, user.password_hash):
            _clear_failures(user)
            user.last_login_at = now
            audit.record(session, actor=user, action="login", entity="user", entity_id=user.id)
            throttle.CLIENTS.clear(client)
            return user
        else:
            if known:
                user.failed_login_attempts += 1
                user.last_failed_login_at = now
            else:
                password_matches(password, _nobody_hash())  # the same time as a real check
                throttle.UNKNOWN_NAMES.failed(name, now)
            throttle.CLIENTS.failed(client, now)
    if wait:
        raise SignInRefused(TOO_MANY.format(wait=throttle.describe(wait)))
    raise SignInRefused(INCORRECT)


# --- single sign-on ---------------------------------------------------------------------


def user_for_sso(
    engine: Engine,
    *,
    email: str | None,
    email_verified: bool | None,
    subject: str,
    issuer: str,
    issued_at: dt.datetime,
    trusted_issuer: str | None = None,
) -> User:
    """The active user whose email is the one the provider vouched for; records the login.

    Roles come from the users table: nobody is created here, an admin adds people (with
    their email) in Settings. issued_at is when the sign-in happened at the provider; a
    sign-in from before the user's last sign-out (or deactivation) is refused, so "sign
    out" ends single sign-on sessions in every browser too. Raises SignInRefused with the
    sentence to show.
    """
    key = email_key(email)
    if key is None:
        raise SignInRefused(
            "The sign-in provider did not give an email address, so Candidate CRM cannot "
            "tell who you are; ask an admin to let it share your email."
        )
    shown = (email or "").strip()
    if not subject or not issuer:
        raise SignInRefused(
            "The sign-in provider's answer does not say who signed in (no issuer or "
            "subject); sign in again, or ask an admin."
        )
    # An email the provider has not verified may be one the person typed themself (the
    # "nOAuth" takeover: Entra ID lets users set it in some setups), so it names nobody.
    if email_verified is not True and issuer != trusted_issuer:
        raise SignInRefused(
            f"The sign-in provider has not said that it verified the email address {shown}; "
            "verify it there and sign in again, or ask an admin about trusting this "
            "provider's addresses (CRM_OIDC_TRUSTED_ISSUER)."
        )
    with write_session(engine) as session:
        matches = [
            user
            for user in session.scalars(select(User).where(User.email.is_not(None)))
            if email_key(user.email) == key
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
        if signed_out_since(user.sessions_revoked_at, issued_at):
            raise SignInRefused(
                "You signed out after this single sign-on; sign in again to continue."
            )
        # The first sign-in binds the user to this provider account; another account
        # that later shows the same email is someone else.
        if user.sso_subject is None:
            taken = session.scalar(
                select(User.username).where(
                    User.sso_issuer == issuer, User.sso_subject == subject, User.id != user.id
                )
            )
            if taken:
                raise SignInRefused(
                    "This sign-in provider account already belongs to another Candidate "
                    "CRM user; ask an admin."
                )
            user.sso_issuer, user.sso_subject = issuer, subject
        elif (user.sso_issuer, user.sso_subject) != (issuer, subject):
            raise SignInRefused(
                f"The Candidate CRM user with the email address {shown} signs in with a "
                "different account at the sign-in provider; ask an admin."
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
    engine: Engine,
    state: MutableMapping[str, Any],
    claims: Mapping[str, Any],
    *,
    trusted_issuer: str | None = None,
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
            trusted_issuer=trusted_issuer,
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
        _forget_session(state, DEACTIVATED)
        return None
    signed_in_at = dt.datetime.fromisoformat(state.get(SESSION_SIGNED_IN_AT) or "1970-01-01+00:00")
    if signed_out_since(user.sessions_revoked_at, signed_in_at):
        _forget_session(state, SIGNED_OUT)
        return None
    user.signed_in_at = signed_in_at  # the services refuse it once this session is signed out
    return user


def sign_out(engine: Engine, state: MutableMapping[str, Any], user: User) -> None:
    """End this user's sessions everywhere: later reruns and old cookies are refused."""
    with write_session(engine) as session:
        stored = session.get(User, user.id)
        if stored is not None:
            stored.sessions_revoked_at = clock.now()
            audit.record(session, actor=stored, action="logout", entity="user", entity_id=user.id)
    _forget_session(state, "You have signed out.")
    state[SESSION_CLEAR_COOKIE] = True  # the sign-in screen has the server clear it


def cookie_sign_in(
    engine: Engine, cookie: str | None, *, secret: str
) -> tuple[User, dt.datetime] | None:
    """The user a sign-in cookie names and when it was issued, when it is ours, has not
    lapsed, and was issued after that user last signed out, changed password or was
    deactivated; records the sign-in."""
    read = session_cookie.read_cookie(cookie, secret=secret)
    user = _complete_login(engine, *read) if read else None
    return (user, read[1]) if user and read else None


def _complete_login(engine: Engine, username: str, issued_at: dt.datetime) -> User | None:
    """Record a sign-in from a cookie issued at issued_at; None if it is not honoured."""
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
