"""Shared UI helpers for the pages: the cached engine, the signed-in user, small widgets."""

from __future__ import annotations

import datetime as dt

import streamlit as st
from sqlalchemy import Engine

from crm import clock, db, permissions
from crm.config import load_settings
from crm.metrics import METRICS
from crm.models import User

CURRENT_USER_KEY = "crm_current_user"


@st.cache_resource(show_spinner=False)
def _engine_for(url: str) -> Engine:
    # The process's registered engine (db.get_engine), so db.dispose_engines() reaches it.
    return db.get_engine(url)


def engine() -> Engine:
    """The process-wide engine for CRM_DATABASE_URL (one per URL, shared by sessions)."""
    return _engine_for(load_settings().database_url)


def database_key() -> str:
    """Names the database in st.cache_data keys, so two databases never share a cache."""
    return engine().url.render_as_string(hide_password=False)


def current_user() -> User:
    """The user app.py signed in for this rerun."""
    return st.session_state[CURRENT_USER_KEY]


def can_write() -> bool:
    return permissions.can_write(current_user())


def read_only_caption() -> None:
    """Say why controls are disabled, once per page, for managers."""
    if not can_write():
        st.caption(":material/visibility: You have read-only access; changes are disabled.")


def ago(moment: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """'3 days ago' style text; 'never' for None."""
    if moment is None:
        return "never"
    now = now or clock.now()
    days = (now - moment).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    return f"{days // 30} months ago"


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def md(text: object) -> str:
    """User data made inert inside Streamlit markdown (no links, emphasis or icons)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))


def person_name(first: str | None, last: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or "(no name)"


def format_value(metric: str, value: float | None) -> str:
    """A metric value in its unit; 'no data' rather than a misleading zero."""
    if value is None:
        return "no data"
    unit = METRICS[metric][1]
    if unit == "fraction":
        return f"{value:.0%}"
    if unit == "money":
        return f"${value:,.0f}"
    if unit == "days":
        return f"{value:.1f} days"
    return f"{value:,.0f}"


def last_contact(row: dict) -> str:
    """'41 days ago · Priya Shah, LinkedIn message' from a candidate search row."""
    text = ago(row.get("last_contacted_at"))
    if row.get("last_contacted_at") is None:
        return text
    details = [row.get("contacted_by"), (row.get("last_contact_channel") or "").replace("_", " ")]
    details = [part for part in details if part]
    return f"{text} · {', '.join(details)}" if details else text
