"""Goals & ROI: goals against their targets and the metrics behind them. Read-only for all."""

import datetime as dt

import pandas as pd
import streamlit as st

from app_pages import common
from crm import goals, metrics

REFRESH_SECONDS = 60


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load(
    url: str, today: dt.date
) -> tuple[list[goals.GoalProgress], metrics.MetricsReport, metrics.MetricsReport]:
    """Goal progress, and the last 90 days against the 90 before, computed in SQL."""
    engine = common.engine()
    recent = metrics.compute(engine, start=today - dt.timedelta(days=89), end=today)
    before = metrics.compute(
        engine, start=today - dt.timedelta(days=179), end=today - dt.timedelta(days=90)
    )
    return goals.all_progress(engine, today=today), recent, before


st.title("Goals & ROI", anchor=False)

today = dt.date.today()
progress_list, recent, before = load(common.database_key(), today)
st.subheader("Goals", anchor=False)
if not progress_list:
    st.info("No goals yet. Load demo data with `crm demo` to see the guide's examples.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "goal": [p.title for p in progress_list],
                "status": [goals.STATUS_LABELS[p.status] for p in progress_list],
                "baseline": [common.format_value(p.metric, p.baseline) for p in progress_list],
                "expected by today": [
                    common.format_value(p.metric, p.expected) for p in progress_list
                ],
                "actual since start": [
                    common.format_value(p.metric, p.actual) for p in progress_list
                ],
                "target": [common.format_value(p.metric, p.target) for p in progress_list],
                "period": [
                    f"{p.start_date:%d %b %Y} – {p.deadline:%d %b %Y}" for p in progress_list
                ],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"goal": st.column_config.TextColumn(width="large")},
    )

st.subheader("The last 90 days", anchor=False)
st.caption("Each change is against the 90 days before.")
columns = st.columns(5)
for column, name in zip(
    columns,
    [
        "hires",
        "time_to_hire_days",
        "time_to_fill_days",
        "cost_per_hire",
        "offer_acceptance_rate",
    ],
    strict=True,
):
    label, unit, better = metrics.METRICS[name]
    now_value, then_value = recent.value(name), before.value(name)
    delta = None
    if now_value is not None and then_value is not None:
        change = now_value - then_value
        delta = f"{change:+.0%}" if unit == "fraction" else f"{change:+,.1f}"
    column.metric(
        label,
        common.format_value(name, now_value),
        delta=delta,
        delta_color="inverse" if better == "lower" else "normal",
        border=True,
    )
if recent.source_of_hire:
    st.markdown("**Source of hire**")
    shares = sorted(recent.source_of_hire.items(), key=lambda item: -item[1])
    st.dataframe(
        pd.DataFrame(
            {
                "source": [metrics.SOURCE_LABELS.get(source, source) for source, _ in shares],
                "share of hires": [share for _, share in shares],
            }
        ),
        hide_index=True,
        column_config={
            "share of hires": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0
            )
        },
    )
st.caption(
    f"Definitions are in docs/metrics.md; figures refresh every {REFRESH_SECONDS} seconds. "
    "Monthly trends, goal progress charts and exports are the next step for this page."
)
