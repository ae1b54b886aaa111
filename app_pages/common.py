"""Shared UI helpers for the pages: the cached engine, the signed-in user, small widgets."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from crm import db, figures, money, permissions
from crm.config import load_settings
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


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>~$:")


def md(text: object) -> str:
    """User data made inert inside Streamlit markdown (no links, emphasis or icons)."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in str(text))


def person_name(first: str | None, last: str | None) -> str:
    return f"{first or ''} {last or ''}".strip() or "(no name)"


@st.cache_data(ttl=60, show_spinner=False)
def _team_currency(url: str) -> str:
    return money.team_money(engine()).currency


def team_currency() -> str:
    """The currency every cost figure is counted in (Settings → Money)."""
    return _team_currency(database_key())


FIGURES_SHOWN = "figures_shown"


def figure_text(
    key: str,
    value: float | None,
    *,
    subject: str = "",
    exact: bool = False,
    metric: str | None = None,
) -> str:
    """A registered figure (crm.figures) as the page shows it, noted for this run.

    tests/test_figures.py reads the note: every figure a page shows must be registered and
    equal the value its service computes, whichever page shows it.
    """
    shown = figures.shown(key, value, currency=team_currency(), exact=exact, metric=metric)
    st.session_state.setdefault(FIGURES_SHOWN, []).append((key, subject, shown))
    return shown


def figure_metric(
    container: object, key: str, value: float | None, *, subject: str = "", **options: object
) -> None:
    """st.metric for a registered figure: its registered label and its formatting."""
    container.metric(figures.label(key), figure_text(key, value, subject=subject), **options)  # type: ignore[attr-defined]


def format_value(metric: str, value: float | None, *, exact: bool = False) -> str:
    """A metric value in its unit (crm.figures.text); 'no data' rather than a misleading zero."""
    return figures.metric_text(metric, value, currency=team_currency(), exact=exact)


def last_contact(row: dict) -> str:
    """'41 days ago · Priya Shah, LinkedIn message' from a candidate search row."""
    text = figures.ago(row.get("last_contacted_at"))
    if row.get("last_contacted_at") is None:
        return text
    details = [row.get("contacted_by"), (row.get("last_contact_channel") or "").replace("_", " ")]
    details = [part for part in details if part]
    return f"{text} · {', '.join(details)}" if details else text
