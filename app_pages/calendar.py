"""Content calendar: what each pool hears, week by week."""

import datetime as dt

import pandas as pd
import streamlit as st

from app_pages import common
from crm import calendar

st.title("Content calendar", anchor=False)

today = dt.date.today()
month = st.date_input("Month", value=today.replace(day=1), format="YYYY-MM-DD", key="cal_month")
start_day = month.replace(day=1)
end_day = (start_day + dt.timedelta(days=32)).replace(day=1)
start = dt.datetime.combine(start_day, dt.time(), dt.UTC)
end = dt.datetime.combine(end_day, dt.time(), dt.UTC)

entries = calendar.items_between(common.engine(), start=start, end=end)
if not entries:
    st.info(f"Nothing is planned for {start_day:%B %Y}. Pick another month.")
    st.stop()

frame = pd.DataFrame(
    {
        "week": [
            f"Week of {e.scheduled_at.date() - dt.timedelta(days=e.scheduled_at.weekday()):%d %b}"
            for e in entries
        ],
        "when": [e.scheduled_at.strftime("%a %d %b %H:%M") for e in entries],
        "channel": [calendar.CHANNEL_LABELS[e.channel] for e in entries],
        "title": [e.title for e in entries],
        "pools": [", ".join(e.pools) for e in entries],
        "theme": [calendar.THEME_LABELS.get(e.theme or "", "") for e in entries],
        "status": [e.status for e in entries],
    }
)
st.dataframe(frame, hide_index=True, width="stretch")
st.caption(
    f"{len(entries)} items in {start_day:%B %Y}. Month and week grids, editing and "
    "recurring items are the next step for this page."
)
