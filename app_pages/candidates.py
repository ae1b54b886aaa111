"""Candidates: the shared database, searched, filtered and paged in SQL, with bulk actions."""

import time

import pandas as pd
import streamlit as st

from app_pages import common
from crm import auth, candidates, pools
from crm.candidate_fields import CONSENT_LABELS
from crm.errors import CrmError

PAGE_SIZE = 50
SORT_LABELS = {
    "name": "Name",
    "recently_added": "Recently added",
    "last_contacted": "Recently contacted",
    "longest_quiet": "Longest without contact",
}
CONTACT_LABELS = {
    None: "Any time",
    "recent": "In the last 30 days",
    "quiet": "Not for 90+ days",
    "never": "Never",
}
DIALOG = "candidates_dialog"
COUNT_MEMO = "candidates_count"  # (text and filters, total, time.monotonic() when counted)
COUNT_TTL_S = 30
COLUMNS = (
    "name",
    "title",
    "company",
    "location",
    "remote",
    "email",
    "source",
    "owner",
    "last contact",
    "basis",
)


@st.cache_data(ttl=300, show_spinner=False)
def known_sources(url: str) -> list[str]:
    """The sources in use, for the filter; a new one shows within five minutes."""
    return candidates.sources(common.engine())


def recent_count(text: str, filters: candidates.QuickFilters) -> int | None:
    """This search's count if this session made it in the last COUNT_TTL_S seconds.

    A text search or filter counts by reading every row (over 100 ms at 100,000
    candidates), and paging, sorting or selecting a row reruns the page; those reruns
    reuse the count. The unfiltered list is counted every run: an index answers that.
    Others' changes show in the total within COUNT_TTL_S, this page's own at once
    (finish forgets it), and search() makes the total exact whenever the last page shows.
    """
    if not text.strip() and filters == candidates.QuickFilters():
        return None
    memo = st.session_state.get(COUNT_MEMO)
    if memo and memo[0] == (text, filters) and time.monotonic() - memo[2] < COUNT_TTL_S:
        return memo[1]
    return None


engine = common.engine()
user = common.current_user()
writable = common.can_write()


def forget_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def finish(message: str) -> None:
    """Close any dialog, remember the message for the next run, and rerun."""
    st.session_state.pop(DIALOG, None)
    st.session_state["candidates_notice"] = message
    st.session_state.pop(COUNT_MEMO, None)
    st.rerun()


@st.dialog("Add a candidate", width="large", on_dismiss=forget_dialog)
def add_candidate_dialog() -> None:
    with st.form("add_candidate", border=False):
        left, right = st.columns(2)
        first = left.text_input("First name")
        last = right.text_input("Last name")
        email = left.text_input("Email")
        linkedin = right.text_input("LinkedIn URL", placeholder="https://www.linkedin.com/in/...")
        title = left.text_input("Title")
        company = right.text_input("Company")
        location = left.text_input("Location")
        phone = right.text_input("Phone")
        skills = st.text_input("Skills", placeholder="python, aws, kubernetes")
        source = left.text_input("Source", placeholder="Referral, event, LinkedIn...")
        consent = right.selectbox(
            "Lawful basis",
            list(CONSENT_LABELS),
            index=1,
            format_func=CONSENT_LABELS.get,
            help="Legitimate interest is the usual basis for sourcing; record consent when "
            "the person gave it.",
        )
        remote = st.checkbox("Open to remote work")
        st.caption("A name and either an email address or a LinkedIn URL are required.")
        submitted = st.form_submit_button("Add candidate", type="primary")
    if not submitted:
        return
    fields = {
        "first_name": first,
        "last_name": last,
        "email": email,
        "linkedin_url": linkedin,
        "title": title,
        "company": company,
        "location": location,
        "phone": phone,
        "skills": skills,
        "source": source,
        "consent_status": consent,
        "remote": remote,
    }
    try:
        created = candidates.create_candidate(engine, actor=user, fields=fields)
    except candidates.CandidateInvalid as error:
        for _, problem in error.problems:
            st.error(problem)
        return
    except candidates.DuplicateCandidate as error:
        st.error(str(error))
        if st.button("Open the existing profile"):
            forget_dialog()
            st.switch_page("app_pages/profile.py", query_params={"id": error.existing_id})
        return
    except CrmError as error:
        st.error(str(error))
        return
    finish(f"Added {common.md(created.full_name)}.")


@st.dialog("Delete candidates", on_dismiss=forget_dialog)
def delete_dialog(ids: list[int], names: list[str]) -> None:
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    st.write(f"Delete {len(ids)} candidate(s): {shown}?")
    st.caption("Their timeline, skills, tags and pool places go too. This cannot be undone.")
    if st.button("Delete", type="primary"):
        try:
            deleted = candidates.delete_candidates(engine, actor=user, candidate_ids=ids)
        except CrmError as error:
            st.error(str(error))
            return
        finish(f"Deleted {deleted} candidate(s).")


st.title("Candidates", anchor=False)
notice = st.session_state.pop("candidates_notice", None)
if notice:
    st.success(notice)

top_left, filter_col, top_right = st.columns([5, 1, 1], vertical_alignment="bottom")
text = top_left.text_input(
    "Search",
    placeholder="Name, email, title, company or a skill such as python",
    key="candidates_search",
)
if top_right.button(
    "Add candidate",
    icon=":material/person_add:",
    type="primary",
    disabled=not writable,
    width="stretch",
):
    st.session_state[DIALOG] = "add"

users = auth.list_users(engine)
owners = {None: "Anyone", user.id: "Me"} | {u.id: u.display_name for u in users if u.id != user.id}
# Filters and sort live in a popover: the table gets the room, and the page stays light.
panel = filter_col.popover("Filters", icon=":material/filter_list:", width="stretch")
owner_id = panel.selectbox("Owner", list(owners), format_func=owners.get, key="cand_owner")
consent = panel.selectbox(
    "Lawful basis",
    [None, *CONSENT_LABELS],
    format_func=lambda v: "Any" if v is None else CONSENT_LABELS[v],
    key="cand_consent",
)
contacted = panel.selectbox(
    "Last contacted", list(CONTACT_LABELS), format_func=CONTACT_LABELS.get, key="cand_contacted"
)
source = panel.selectbox(
    "Source",
    [None, *known_sources(common.database_key())],
    format_func=lambda v: "Any" if v is None else v,
    key="cand_source",
)
sort = panel.selectbox(
    "Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="candidates_sort"
)
filters = candidates.QuickFilters(
    owner_id=owner_id, consent_status=consent, source=source, contacted=contacted
)
active = [
    label
    for label, value in (
        (f"owner: {owners.get(owner_id)}", owner_id),
        (f"basis: {CONSENT_LABELS.get(consent or '', '')}", consent),
        (f"last contacted: {CONTACT_LABELS[contacted].lower()}", contacted),
        (f"source: {source}", source),
    )
    if value is not None
]
if active:
    st.caption("Filtered by " + common.md("; ".join(active)))

query = (text, sort, filters)
page_number = st.session_state.get("candidates_page", 1)
if st.session_state.get("candidates_last_query") != query:
    page_number = 1  # a new search starts on its first page
st.session_state["candidates_last_query"] = query

known_total = recent_count(text, filters)
result = candidates.search(
    engine,
    text=text,
    page=page_number,
    page_size=PAGE_SIZE,
    sort=sort,
    filters=filters,
    total=known_total,
)
if known_total is None:
    st.session_state[COUNT_MEMO] = ((text, filters), result.total, time.monotonic())
elif result.total != known_total:  # search() corrected a stale count: keep the correction
    st.session_state[COUNT_MEMO] = ((text, filters), result.total, st.session_state[COUNT_MEMO][2])
if st.session_state.get(DIALOG) == "add":
    add_candidate_dialog()

if result.total == 0:
    if result.problem:  # the search itself was refused (too long, a NUL character)
        st.warning(result.problem)
    elif candidates.count(engine) == 0:
        st.info(
            "The database is empty. Add someone with **Add candidate**, or bring a CSV file "
            "in on the Import / export page."
        )
    else:
        st.info("Nobody matches. Try fewer words, a single skill, or clear a filter.")
    st.stop()

rows = result.rows  # plain Python values (None, not NaN/NaT) for the display columns
names = [common.person_name(r["first_name"], r["last_name"]) for r in rows]
shown = {column: [r[column] for r in rows] for column in COLUMNS[1:8]}
frame = pd.DataFrame(
    {
        "name": names,
        **shown,
        "last contact": [common.last_contact(r) for r in rows],
        "basis": [CONSENT_LABELS.get(r["consent_status"], r["consent_status"]) for r in rows],
    },
    columns=COLUMNS,
)
event = st.dataframe(
    frame,
    hide_index=True,
    width="stretch",
    column_config={"remote": st.column_config.CheckboxColumn("remote")},
    key="candidates_table",
    on_select="rerun",
    selection_mode="multi-row",
)
selected_rows = event.selection.rows if event else []
selected_ids = [rows[row]["id"] for row in selected_rows]
selected_names = [names[row] for row in selected_rows]

first = (result.page - 1) * PAGE_SIZE + 1
last = first + len(result.rows) - 1
info, previous, position, following = st.columns([4, 1, 1, 1], vertical_alignment="center")
info.caption(f"{first:,}–{last:,} of {result.total:,} candidates · select rows to act on them")
if previous.button("Previous", disabled=result.page <= 1, width="stretch"):
    st.session_state["candidates_page"] = result.page - 1
    st.rerun()
position.caption(f"Page {result.page:,} of {result.page_count:,}")
if following.button("Next", disabled=result.page >= result.page_count, width="stretch"):
    st.session_state["candidates_page"] = result.page + 1
    st.rerun()
st.session_state["candidates_page"] = result.page

if selected_ids:
    with st.container(border=True):
        st.markdown(f"**{len(selected_ids)} selected**")
        if len(selected_ids) == 1 and st.button("Open profile", icon=":material/person:"):
            st.switch_page("app_pages/profile.py", query_params={"id": selected_ids[0]})
        tag_col, pool_col, owner_col, delete_col = st.columns(4, vertical_alignment="bottom")
        try:
            tags = tag_col.text_input("Tags to add", placeholder="alumni, referral")
            if tag_col.button("Add tags", disabled=not writable):
                changed = candidates.bulk_tag(
                    engine, actor=user, candidate_ids=selected_ids, tags=tags
                )
                finish(f"Tagged {changed} candidate(s).")
            static = dict(pools.static_pools(engine))
            pool_id = pool_col.selectbox(
                "Hand-kept pool",
                list(static),
                format_func=static.get,
                placeholder="No hand-kept pools yet",
            )
            if pool_col.button("Add to pool", disabled=not writable or pool_id is None):
                added = candidates.bulk_add_to_pool(
                    engine, actor=user, candidate_ids=selected_ids, pool_id=pool_id
                )
                finish(f"Added {added} candidate(s) to {common.md(static[pool_id])}.")
            active = {u.id: u.display_name for u in users if u.active and u.role != "manager"}
            new_owner = owner_col.selectbox("Owner", list(active), format_func=active.get)
            if owner_col.button("Assign owner", disabled=not writable):
                changed = candidates.bulk_assign_owner(
                    engine, actor=user, candidate_ids=selected_ids, owner_id=new_owner
                )
                finish(f"{changed} candidate(s) now belong to {common.md(active[new_owner])}.")
            if delete_col.button("Delete…", disabled=not writable):
                st.session_state[DIALOG] = "delete"
        except CrmError as error:
            st.error(str(error))
        if not writable:
            common.read_only_caption()
    if st.session_state.get(DIALOG) == "delete":
        delete_dialog(selected_ids, selected_names)
