"""The signed-in person's own account: changing their password (every role)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from crm import auth
from crm.errors import CrmError
from crm.models import User

OPEN = "account_password_open"  # the dialog is open (a flag, so its reruns keep it open)
NOTICE = "account_notice"


def forget() -> None:
    st.session_state.pop(OPEN, None)


@st.dialog("Change your password", on_dismiss=forget)
def password_dialog(engine: Engine, user: User) -> None:
    with st.form("own_password", border=False):
        current = st.text_input("Current password", type="password")
        new = st.text_input(
            "New password",
            type="password",
            help=f"At least {auth.MIN_PASSWORD_LENGTH} characters, and hard to guess.",
        )
        repeated = st.text_input("Repeat the new password", type="password")
        submitted = st.form_submit_button("Change password", type="primary")
    st.caption("Your other sessions, in other browsers and tabs, are signed out.")
    if not submitted:
        return
    if new != repeated:
        st.error("The two new passwords differ.")
        return
    try:
        auth.change_own_password(engine, actor=user, current_password=current, new_password=new)
    except CrmError as error:
        st.error(str(error))
        return
    auth.sign_in_session(st.session_state, user)  # this session carries on
    forget()
    st.session_state[NOTICE] = "Your password is changed; your other sessions are signed out."
    st.rerun()


def password_controls(engine: Engine, user: User) -> None:
    """The sidebar's "Change password" button, its dialog and what it said."""
    if st.button("Change password", icon=":material/password:", key="own_password"):
        st.session_state[OPEN] = True
    if st.session_state.get(OPEN):
        password_dialog(engine, user)
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        st.success(notice)
