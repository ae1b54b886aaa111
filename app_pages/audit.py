"""Audit log (admins): who created, changed, exported, sent, erased or signed in, and when."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from app_pages import common
from crm import audit_log, clock
from crm.errors import CrmError

PAGE_SIZE = 50
PAGE = "audit_page"

st.title("Audit log", anchor=False)
engine = common.engine()
admin = common.current_user()
if admin.role != "admin":
    # The menu only offers this page to admins; a typed URL must not get further.
    st.error("Only an admin can open the audit log.")
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def load_actions(url: str) -> list[str]:
    """The actions in the log and their families ("candidate" takes in "candidate.erase")."""
    actions = audit_log.actions(common.engine(), actor=common.current_user())
    families = {action.split(".")[0] for action in actions if "." in action}
    return sorted(set(actions) | families)


def action_label(action: str | None) -> str:
    if action is None:
        return "Any action"
    return action if "." in action else f"{action} (all)"


def details_text(detail: object) -> str:
    """An entry's details as one line of plain text."""
    if not detail:
        return ""
    if not isinstance(detail, dict):
        return json.dumps(detail, ensure_ascii=False, default=str)
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
        parts.append(f"{key}: {value}")
    return "; ".join(parts)


def entity_text(entity: str | None, entity_id: str | None) -> str:
    if not entity:
        return ""
    return f"{entity} #{entity_id}" if entity_id else entity


actions = load_actions(common.database_key())
# Flex rows rather than columns: the same controls with fewer blocks to lay out.
filter_row = st.container(horizontal=True)
action = filter_row.selectbox(
    "Action", [None, *actions], format_func=action_label, key="audit_action"
)
username = filter_row.text_input("Username", placeholder="anyone", key="audit_username")
today = clock.today()
since = filter_row.date_input("From", value=None, max_value=today, key="audit_since")
until = filter_row.date_input("To", value=None, max_value=today, key="audit_until")
filters = {"action": action, "username": username, "since": since, "until": until}

if st.session_state.get("audit_last_filters") != filters:
    st.session_state[PAGE] = 1  # new filters start on their first page
st.session_state["audit_last_filters"] = filters
page = int(st.session_state.get(PAGE, 1))
try:
    rows, total = audit_log.entries(
        engine, actor=admin, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
    )
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:
        page = pages
        rows, total = audit_log.entries(
            engine, actor=admin, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, **filters
        )
except CrmError as error:
    st.error(str(error))
    st.stop()

if not total:
    if any(value for value in filters.values()):
        st.info("No entries match these filters. Widen the dates or clear a filter.")
    else:
        st.info("The audit log is empty: entries appear as people sign in and change things.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        {
            "when": [row["at"] for row in rows],
            "who": [row["username"] or "system" for row in rows],
            "action": [row["action"] for row in rows],
            "entity": [entity_text(row["entity"], row["entity_id"]) for row in rows],
            "details": [details_text(row["detail"]) for row in rows],
        }
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "when": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
        "details": st.column_config.TextColumn(width="large"),
    },
)
first = (page - 1) * PAGE_SIZE + 1
where = f"page {page:,} of {pages:,} · " if pages > 1 else ""
bottom = st.container(horizontal=True, vertical_alignment="center")
bottom.caption(
    f"{first:,}–{first + len(rows) - 1:,} of {total:,} entries · {where}newest first · UTC"
)
if pages > 1 and bottom.button("Previous", disabled=page <= 1):
    st.session_state[PAGE] = page - 1
    st.rerun()
if pages > 1 and bottom.button("Next", disabled=page >= pages):
    st.session_state[PAGE] = page + 1
    st.rerun()
st.session_state[PAGE] = page

bottom.download_button(
    "Download this entry (CSV)" if total == 1 else f"Download these {total:,} entries (CSV)",
    data=lambda: audit_log.export_csv(engine, actor=admin, **filters),
    file_name=f"audit-log-{today.isoformat()}.csv",
    mime="text/csv",
    icon=":material/download:",
    on_click="ignore",
    key="audit_download",
    help="The download is recorded in the audit log too.",
)
