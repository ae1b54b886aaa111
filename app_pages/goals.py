"""Goals & ROI: goals against their targets and the metrics behind them. Read-only for all."""

import datetime as dt

import streamlit as st

from app_pages import common
from crm import goals, metrics

st.title("Goals & ROI", anchor=False)

today = dt.date.today()
engine = common.engine()

progress_list = goals.all_progress(engine, today=today)
st.subheader("Goals", anchor=False)
if not progress_list:
    st.info("No goals yet. Load demo data with `crm demo` to see the guide's examples.")
badges = {
    "on_track": ":green-badge",
    "at_risk": ":orange-badge",
    "off_track": ":red-badge",
    "no_data": ":gray-badge",
}
for progress in progress_list:
    with st.container(border=True):
        title, status = st.columns([4, 1])
        title.markdown(f"**{common.md(progress.title)}**")
        status.markdown(f"{badges[progress.status]}[{goals.STATUS_LABELS[progress.status]}]")
        cells = st.columns(4)
        cells[0].metric("Baseline", common.format_value(progress.metric, progress.baseline))
        cells[1].metric(
            "Expected by today", common.format_value(progress.metric, progress.expected)
        )
        cells[2].metric("Actual since start", common.format_value(progress.metric, progress.actual))
        cells[3].metric("Target", common.format_value(progress.metric, progress.target))
        st.caption(
            f"{metrics.METRICS[progress.metric][0]} · {progress.start_date:%d %b %Y} to "
            f"{progress.deadline:%d %b %Y}"
        )

st.subheader("The last 90 days", anchor=False)
recent = metrics.compute(engine, start=today - dt.timedelta(days=89), end=today)
before = metrics.compute(
    engine, start=today - dt.timedelta(days=179), end=today - dt.timedelta(days=90)
)
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
        help="Compared with the 90 days before.",
    )
if recent.source_of_hire:
    st.markdown("**Source of hire**")
    st.bar_chart(
        {metrics.SOURCE_LABELS.get(k, k): v for k, v in recent.source_of_hire.items()},
        horizontal=True,
        x_label="share of hires",
    )
st.caption(
    "Definitions are in docs/metrics.md. Monthly trends, goal progress charts and "
    "exports are the next step for this page."
)
