"""Candidates: the shared database, searched and paged in SQL."""

import pandas as pd
import streamlit as st

from app_pages import common
from crm import candidates

PAGE_SIZE = 50
SORT_LABELS = {
    "name": "Name",
    "recently_added": "Recently added",
    "last_contacted": "Recently contacted",
    "longest_quiet": "Longest without contact",
}

st.title("Candidates", anchor=False)

total = candidates.count(common.engine())
if total == 0:
    st.info(
        "The database is empty. Add people from the Import / export page, "
        "or load demo data with `crm demo`."
    )
    st.stop()

search_col, sort_col = st.columns([3, 1])
text = search_col.text_input(
    "Search",
    placeholder="Name, email, title, company or a skill such as python",
    key="candidates_search",
)
sort = sort_col.selectbox(
    "Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="candidates_sort"
)
page_number = st.session_state.get("candidates_page", 1)
if st.session_state.get("candidates_last_query") != (text, sort):
    page_number = 1  # a new search starts on its first page
st.session_state["candidates_last_query"] = (text, sort)

result = candidates.search(
    common.engine(), text=text, page=page_number, page_size=PAGE_SIZE, sort=sort
)
if result.total == 0:
    st.info("Nobody matches that search. Try fewer words, or a single skill.")
    st.stop()

frame = pd.DataFrame(result.rows)
frame["name"] = [
    common.person_name(first, last)
    for first, last in zip(frame.first_name, frame.last_name, strict=True)
]
frame["last contact"] = [
    f"{common.ago(at)} ({channel})" if at and channel else common.ago(at)
    for at, channel in zip(frame.last_contacted_at, frame.last_contact_channel, strict=True)
]
st.dataframe(
    frame[
        [
            "name",
            "title",
            "company",
            "location",
            "remote",
            "email",
            "source",
            "owner",
            "last contact",
        ]
    ],
    hide_index=True,
    width="stretch",
    column_config={"remote": st.column_config.CheckboxColumn("remote")},
)

first = (result.page - 1) * PAGE_SIZE + 1
last = first + len(result.rows) - 1
info, previous, position, following = st.columns([4, 1, 1, 1], vertical_alignment="center")
info.caption(f"{first:,}–{last:,} of {result.total:,} candidates")
if previous.button("Previous", disabled=result.page <= 1, width="stretch"):
    st.session_state["candidates_page"] = result.page - 1
    st.rerun()
position.caption(f"Page {result.page:,} of {result.page_count:,}")
if following.button("Next", disabled=result.page >= result.page_count, width="stretch"):
    st.session_state["candidates_page"] = result.page + 1
    st.rerun()
st.session_state["candidates_page"] = result.page
