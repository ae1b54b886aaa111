"""Campaigns: email sequences and how each one is doing."""

import pandas as pd
import streamlit as st

from app_pages import common
from crm import campaigns
from crm.config import load_settings

st.title("Campaigns", anchor=False)

if not load_settings().smtp_configured:
    st.info(
        "Sending is off: no SMTP server is configured (CRM_SMTP_HOST). "
        "Campaign results below still show what was sent before."
    )

summaries = campaigns.list_campaigns(common.engine())
if not summaries:
    st.info("No campaigns yet. Load demo data with `crm demo` to see examples.")
    st.stop()


def rate(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


frame = pd.DataFrame(
    {
        "campaign": [s.name for s in summaries],
        "status": [s.status for s in summaries],
        "audience": [s.audience or "hand-picked" for s in summaries],
        "steps": [s.steps for s in summaries],
        "sent": [s.sent for s in summaries],
        "queued": [s.queued for s in summaries],
        "failed": [s.failed for s in summaries],
        "reply rate": [rate(s.replies, s.sent) for s in summaries],
        "click rate": [rate(s.clicks, s.sent) for s in summaries],
        "open rate": [rate(s.opens, s.sent) for s in summaries],
        "unsubscribes": [s.unsubscribes for s in summaries],
    }
)
st.dataframe(frame, hide_index=True, width="stretch")
st.caption(
    "Rates count people, not messages: a person who opened twice counts once. "
    "The composer, preview and launch are the next step for this page."
)
