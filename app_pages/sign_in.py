"""The sign-in screen: the password form, single sign-on's button, the first admin.

app.py draws it (whatever page the URL names) until a browser session is signed in. The
rules live in crm/auth.py (passwords, throttling, single sign-on); the cookie that keeps a
browser signed in is set and cleared by the server (crm/session_cookie.py).
"""

from __future__ import annotations

import urllib.parse

import streamlit as st
from sqlalchemy import Engine

from app_pages import browser
from crm import auth, session_cookie, throttle
from crm.auth import SESSION_NOTICE, SESSION_SSO_REFUSAL, create_user, has_users, sign_in_session
from crm.config import SsoSettings
from crm.errors import CrmError, ValidationError

SIGNED_OUT_PARAM = "signed_out"  # /session/end sends the browser back with it


def login_screen(engine: Engine, secret: str, sso: SsoSettings | None = None) -> None:
    """Draw the sign-in form (and the single sign-on button when sso is set up), or the
    first-admin form when nobody has an account yet."""
    state = st.session_state
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Candidate CRM", anchor=False)
        refusal = state.get(SESSION_SSO_REFUSAL) if sso is not None else None
        notice = state.get(SESSION_NOTICE)
        if st.query_params.get(SIGNED_OUT_PARAM):
            notice = notice or "You have signed out."
        if refusal:
            st.error(refusal)
        elif notice:
            st.info(notice)
        if not has_users(engine):
            _first_admin_form(engine)
            return
        if sso is not None:
            _sso_buttons(sso, refused=bool(refusal))
        _cookie_sign_in(engine, secret)
        _password_form(engine, secret)


def _sso_buttons(sso: SsoSettings, *, refused: bool) -> None:
    """Sign in with the provider (st.login); after a refusal, also leave its account."""
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


def _client_address() -> str | None:
    """The browser's public address, for throttling failed sign-ins per client; None for
    a private or loopback one, which is a reverse proxy or an office network shared by
    everyone (throttling it would let one person make the whole team wait)."""
    try:
        return throttle.public_address(st.context.ip_address)
    except (AttributeError, RuntimeError):
        return None


def _cookie_sign_in(engine: Engine, secret: str) -> None:
    """Sign this session in from the browser's sign-in cookie, when it is honoured; right
    after signing out here, have the server clear the cookie instead."""
    state = st.session_state
    if state.pop(auth.SESSION_CLEAR_COOKIE, None):
        next_page = f"/?{SIGNED_OUT_PARAM}=1"
        browser.go_to(f"session/end?{urllib.parse.urlencode({'next': next_page})}", key="crm_end")
        return
    cookie = st.context.cookies.get(session_cookie.COOKIE_NAME)
    signed_in = auth.cookie_sign_in(engine, cookie, secret=secret) if cookie else None
    if signed_in is None:
        return  # none, lapsed, or issued before a sign-out: the form asks
    user, issued_at = signed_in
    sign_in_session(state, user, signed_in_at=issued_at)
    state.pop(SESSION_NOTICE, None)
    st.rerun()


def _here() -> str:
    """This page's path, so the browser comes back to it once the cookie is set."""
    try:
        return urllib.parse.urlsplit(st.context.url or "").path or "/"
    except (AttributeError, RuntimeError, ValueError):
        return "/"


def _password_form(engine: Engine, secret: str) -> None:
    with st.form("crm_sign_in"):
        st.subheader("Sign in", anchor=False)
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in")
    if not submitted:
        return
    try:
        user = auth.password_sign_in(
            engine, username=username, password=password, client=_client_address()
        )
    except CrmError as error:  # refused, or the database cannot take the sign-in now
        st.error(str(error))
        return
    sign_in_session(st.session_state, user)
    st.session_state.pop(SESSION_NOTICE, None)
    st.success("Signed in. Opening Candidate CRM…")
    # The server sets the sign-in cookie (HttpOnly) and sends the browser back here.
    query = urllib.parse.urlencode(
        {"ticket": session_cookie.ticket(user.username, secret=secret), "next": _here()}
    )
    browser.go_to(f"session/start?{query}", key="crm_set_cookie")
