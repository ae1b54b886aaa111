"""Privacy (admins, recruiters): access and erasure requests, retention review, consent to
renew. The work is done by crm.privacy; this page only asks and shows."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from app_pages import common
from crm import candidates, figures, privacy, privacy_review
from crm.candidate_fields import CONSENT_LABELS
from crm.errors import CrmError

PAGE_SIZE = 50
TABS = ["Access or erasure request", "Retention review", "Consent to renew"]
TAB = "privacy_tab"
DIALOG = "privacy_dialog"  # ("one", id, name) or ("many", ids, names)
NOTICE = "privacy_notice"
FOUND = "privacy_found"  # the id of the person the access request found
ROUND = "privacy_round"  # bumped after each action, so table selections start afresh
ERASURE_EFFECTS = (
    "- Their personal data and every timeline entry are removed for good.\n"
    "- Messages still queued for them are cancelled.\n"
    "- Anonymous counts stay, so campaign reports and metrics do not change.\n"
    "- Their address goes on the suppression list: they are never emailed again, even if "
    "an import brings them back."
)

st.title("Privacy", anchor=False)
engine = common.engine()
user = common.current_user()
if not common.can_write():
    # The menu does not offer this page to managers; a typed URL must not get further.
    st.error("Only admins and recruiters can open Privacy.")
    st.stop()

if NOTICE in st.session_state:
    st.success(st.session_state.pop(NOTICE), icon=":material/check_circle:")


@st.cache_data(ttl=30, show_spinner=False)
def load_retention(url: str, days: int, offset: int) -> tuple[list[dict], int]:
    return privacy_review.retention_due(
        common.engine(), after_days=days, limit=PAGE_SIZE, offset=offset
    )


@st.cache_data(ttl=30, show_spinner=False)
def load_consent(url: str, days: int, offset: int) -> tuple[list[dict], int]:
    return privacy_review.consent_due(
        common.engine(), older_than_days=days, limit=PAGE_SIZE, offset=offset
    )


def forget_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def finish(message: str) -> None:
    """Close any dialog, forget cached lists and selections, say what happened, rerun."""
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    st.session_state[ROUND] = st.session_state.get(ROUND, 0) + 1
    load_retention.clear()
    load_consent.clear()
    st.rerun()


def people(count: int) -> str:
    return "1 person" if count == 1 else f"{count:,} people"


def who(names: list[str]) -> str:
    shown = ", ".join(common.md(name) for name in names[:5])
    return shown + (f" and {len(names) - 5:,} more" if len(names) > 5 else "")


@st.dialog("Erase this person", on_dismiss=forget_dialog)
def erase_one_dialog(candidate_id: int, name: str) -> None:
    st.markdown(f"Erase **{common.md(name)}**? This cannot be undone.")
    st.markdown(ERASURE_EFFECTS)
    if st.button("Erase permanently", type="primary", icon=":material/delete_forever:"):
        try:
            done = privacy.erase(engine, actor=user, candidate_id=candidate_id)
        except CrmError as error:
            st.error(str(error))
            return
        st.session_state.pop(FOUND, None)
        cancelled = f"{done.messages_cancelled:,} queued message(s) cancelled"
        suppressed = "the address is suppressed" if done.suppressed else "there was no address"
        finish(f"Erased: personal data removed, {cancelled}, {suppressed}.")


@st.dialog("Erase the selected people", on_dismiss=forget_dialog)
def erase_many_dialog(ids: list[int], names: list[str]) -> None:
    st.markdown(f"Erase **{people(len(ids))}**: {who(names)}? This cannot be undone.")
    st.markdown(ERASURE_EFFECTS)
    if st.button(f"Erase {people(len(ids))}", type="primary", icon=":material/delete_forever:"):
        try:
            erased = privacy.erase_many(engine, actor=user, candidate_ids=ids)
        except CrmError as error:
            st.error(str(error))
            return
        finish(
            f"Erased {people(erased)}; addresses are suppressed so they are never emailed again."
        )


def start_renewal(ids: list[int]) -> None:
    try:
        renewal = privacy_review.start_consent_renewal(engine, actor=user, candidate_ids=ids)
    except CrmError as error:
        st.error(str(error))
        return
    finish(
        f"Started a consent renewal: {people(renewal.people)} on the hand-kept pool "
        f"“{common.md(renewal.name)}”. Aim a campaign at it on the Campaigns page to ask them "
        "to renew."
    )


def pager(key: str, total: int) -> int:
    """The page to show (1-based) for a list of `total` rows, kept in range."""
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(int(st.session_state.get(key, 1)), 1), pages)
    st.session_state[key] = page
    return page


def pager_controls(key: str, page: int, total: int, shown: int, noun: str) -> None:
    pages = max(1, -(-total // PAGE_SIZE))
    first = (page - 1) * PAGE_SIZE + 1
    info, previous, position, following = st.columns([4, 1, 1, 1], vertical_alignment="center")
    info.caption(
        f"{first:,}–{first + shown - 1:,} of {total:,} {noun} · select rows to act on them"
    )
    if pages == 1:
        return
    if previous.button("Previous", key=f"{key}_prev", disabled=page <= 1, width="stretch"):
        st.session_state[key] = page - 1
        st.rerun()
    position.caption(f"Page {page:,} of {pages:,}")
    if following.button("Next", key=f"{key}_next", disabled=page >= pages, width="stretch"):
        st.session_state[key] = page + 1
        st.rerun()


def paged(loader, days: int, key: str) -> tuple[list[dict], int, int]:
    """One page of a list, starting again at page 1 when the period changes."""
    if st.session_state.get(f"{key}_days") != days:
        st.session_state[key] = 1
    st.session_state[f"{key}_days"] = days
    page = int(st.session_state.get(key, 1))
    rows, total = loader(common.database_key(), days, (page - 1) * PAGE_SIZE)
    if not rows and total and page > 1:  # the list shrank under this page
        page = pager(key, total)
        rows, total = loader(common.database_key(), days, (page - 1) * PAGE_SIZE)
    return rows, total, page


def selected_table(frame: pd.DataFrame, key: str, column_config: dict) -> list[int]:
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=key,
        on_select="rerun",
        selection_mode="multi-row",
        column_config=column_config,
    )
    return list(event.selection.rows) if event else []


def date_only(moment: dt.datetime | None) -> dt.date | None:
    return moment.date() if moment else None


# --- access or erasure request ----------------------------------------------------------


def access_section() -> None:
    st.caption(
        "Someone asks for a copy of what we hold about them, or to be forgotten. Find them by "
        "the email address they wrote from."
    )
    with st.form("privacy_find", border=False):
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        email = left.text_input("Email address", placeholder="name@example.com")
        find = right.form_submit_button("Find", icon=":material/search:", width="stretch")
    if find:
        st.session_state.pop(FOUND, None)
        try:
            found = privacy.find_by_email(engine, email)
        except CrmError as error:
            st.error(str(error))
            return
        if found is None:
            st.info(
                "Nobody in the database has that address, so there is nothing to export or "
                "erase; check the spelling or search by name on the Candidates page."
            )
            return
        st.session_state[FOUND] = found
    found_id = st.session_state.get(FOUND)
    if found_id is None:
        return
    person = candidates.get_candidate(engine, found_id)
    if person is None:
        st.session_state.pop(FOUND, None)
        st.info("That person is no longer in the database; they may have been erased already.")
        return
    name = person.full_name or "(no name)"
    with st.container(border=True):
        st.markdown(
            f"**{common.md(name)}** · {common.md(person.email or 'no email')} · "
            f"{CONSENT_LABELS.get(person.consent_status, person.consent_status)}"
        )
        st.page_link(
            "app_pages/profile.py",
            label="Open the profile",
            icon=":material/person:",
            query_params={"id": str(person.id)},
        )
        json_col, csv_col, erase_col = st.columns(3)
        json_col.download_button(
            "Download everything (JSON)",
            data=lambda: privacy.export_data_json(engine, actor=user, candidate_id=found_id),
            file_name=f"candidate-{found_id}-data.json",
            mime="application/json",
            icon=":material/download:",
            on_click="ignore",
            width="stretch",
            key="privacy_export_json",
        )
        csv_col.download_button(
            "Download everything (CSV)",
            data=lambda: privacy.export_data_csv(engine, actor=user, candidate_id=found_id),
            file_name=f"candidate-{found_id}-data.csv",
            mime="text/csv",
            icon=":material/table:",
            on_click="ignore",
            width="stretch",
            key="privacy_export_csv",
        )
        if erase_col.button("Erase this person…", icon=":material/delete:", width="stretch"):
            st.session_state[DIALOG] = ("one", person.id, name)
        st.caption(
            "The export holds the record, custom fields, tags, timeline, messages, events, "
            "campaigns, pools, applications and imports; each download is recorded in the "
            "audit log."
        )


# --- retention review -------------------------------------------------------------------


def retention_section() -> None:
    st.caption(
        "People with no reply, click, touch or application for the period, and on file at "
        "least that long. Keep someone with a reason and they leave the list until the period "
        "has passed again."
    )
    days = st.columns([1, 3])[0].number_input(
        "Quiet for at least (days)",
        min_value=1,
        max_value=36500,
        value=730,
        step=30,
        key="privacy_retention_days",
    )
    key = "privacy_retention_page"
    rows, total, page = paged(load_retention, int(days), key)
    if not total:
        st.info(
            f"Nobody is due: everyone on file has been in touch within {int(days):,} days "
            "or was kept with a reason."
        )
        return
    st.markdown(f"**{people(total)}** quiet for {int(days):,} days or more.")
    names = [common.person_name(r["first_name"], r["last_name"]) for r in rows]
    frame = pd.DataFrame(
        {
            "name": names,
            "email": [r["email"] or "" for r in rows],
            "basis": [CONSENT_LABELS.get(r["consent_status"], r["consent_status"]) for r in rows],
            "on file since": [date_only(r["created_at"]) for r in rows],
            "last touch": [figures.ago(r["last_touch"]) for r in rows],
        }
    )
    chosen = selected_table(
        frame,
        f"privacy_retention_table_{days}_{page}_{st.session_state.get(ROUND, 0)}",
        {"on file since": st.column_config.DateColumn(format="YYYY-MM-DD")},
    )
    pager_controls(key, page, total, len(rows), "people")
    ids = [rows[i]["id"] for i in chosen if i < len(rows)]
    picked = [names[i] for i in chosen if i < len(rows)]
    with st.container(border=True):
        st.markdown(f"**{len(ids):,} selected**" if ids else "**Select people to act on them**")
        renew_col, erase_col = st.columns(2)
        if renew_col.button(
            "Start consent renewal",
            key="privacy_retention_renew",
            icon=":material/autorenew:",
            disabled=not ids,
            width="stretch",
            help="Puts them on a new hand-kept pool; aim a campaign at it to ask them to renew.",
        ):
            start_renewal(ids)
        if erase_col.button(
            "Erase the selected…",
            key="privacy_retention_erase",
            icon=":material/delete:",
            disabled=not ids,
            width="stretch",
        ):
            st.session_state[DIALOG] = ("many", ids, picked)
        with st.form("privacy_keep", clear_on_submit=True, border=False):
            reason_col, keep_col = st.columns([4, 1], vertical_alignment="bottom")
            reason = reason_col.text_input(
                "Reason to keep them",
                max_chars=privacy_review.MAX_KEEP_REASON,
                placeholder="In a hiring process with a client; asked us to stay in touch",
            )
            keep = keep_col.form_submit_button("Keep", disabled=not ids, width="stretch")
        if keep:
            try:
                kept = privacy_review.keep(engine, actor=user, candidate_ids=ids, reason=reason)
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"Kept {people(kept)}; off the list for the next {int(days):,} days.")


# --- consent to renew -------------------------------------------------------------------


def consent_section() -> None:
    st.caption(
        "People we may contact whose consent or legitimate interest was recorded (or, without "
        "a date, who were added) longer ago than the period. Do-not-contact and unsubscribed "
        "people are not listed."
    )
    days = st.columns([1, 3])[0].number_input(
        "Recorded more than (days) ago",
        min_value=1,
        max_value=36500,
        value=365,
        step=30,
        key="privacy_consent_days",
    )
    key = "privacy_consent_page"
    rows, total, page = paged(load_consent, int(days), key)
    if not total:
        st.info(f"Nobody is due: every basis on file was recorded within {int(days):,} days.")
        return
    st.markdown(f"**{people(total)}** with a basis older than {int(days):,} days.")
    names = [common.person_name(r["first_name"], r["last_name"]) for r in rows]
    frame = pd.DataFrame(
        {
            "name": names,
            "email": [r["email"] or "" for r in rows],
            "basis": [CONSENT_LABELS.get(r["consent_status"], r["consent_status"]) for r in rows],
            "recorded": [date_only(r["since"]) for r in rows],
            "source": [r["consent_source"] or "" for r in rows],
        }
    )
    chosen = selected_table(
        frame,
        f"privacy_consent_table_{days}_{page}_{st.session_state.get(ROUND, 0)}",
        {"recorded": st.column_config.DateColumn(format="YYYY-MM-DD")},
    )
    pager_controls(key, page, total, len(rows), "people")
    ids = [rows[i]["id"] for i in chosen if i < len(rows)]
    with st.container(border=True):
        st.markdown(f"**{len(ids):,} selected**" if ids else "**Select people to act on them**")
        if st.button(
            "Start consent renewal",
            key="privacy_consent_renew",
            icon=":material/autorenew:",
            type="primary",
            disabled=not ids,
            help="Puts them on a new hand-kept pool; aim a campaign at it to ask them to renew.",
        ):
            start_renewal(ids)


# --- the page ---------------------------------------------------------------------------

access_tab, retention_tab, consent_tab = st.tabs(TABS, key=TAB, on_change="rerun")
with access_tab:
    if access_tab.open:
        access_section()
with retention_tab:
    if retention_tab.open:
        retention_section()
with consent_tab:
    if consent_tab.open:
        consent_section()

dialog = st.session_state.get(DIALOG)
if dialog and dialog[0] == "one":
    erase_one_dialog(*dialog[1:])
elif dialog and dialog[0] == "many":
    erase_many_dialog(*dialog[1:])
