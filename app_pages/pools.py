"""Talent pools: segments that stay current, and hand-kept lists."""

import pandas as pd
import streamlit as st

from app_pages import common
from crm import pools

REFRESH_SECONDS = 10


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_pools(url: str) -> list[pools.PoolSummary]:
    return pools.list_pools(common.engine())


st.title("Talent pools", anchor=False)

summaries = load_pools(common.database_key())
if not summaries:
    st.info("There are no talent pools yet. Load demo data with `crm demo` to see examples.")
    st.stop()

for summary in summaries:
    if summary.problem:
        st.warning(f"{common.md(summary.name)}: {common.md(summary.problem)}")

frame = pd.DataFrame(
    {
        "pool": [s.name for s in summaries],
        "kind": ["stays current" if s.kind == "dynamic" else "hand-kept list" for s in summaries],
        "people": [s.size for s in summaries],
        "about": [s.description or "" for s in summaries],
    }
)
st.dataframe(frame, hide_index=True, width="stretch")
st.caption(
    f"Dynamic pools are counted from their filter (sizes refresh every {REFRESH_SECONDS} "
    "seconds), so people added a minute ago are already in. The filter builder, pool "
    "stages and pool insight are the next step for this page."
)
