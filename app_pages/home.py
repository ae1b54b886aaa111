"""Home: what needs attention today."""

import datetime as dt

import streamlit as st

from app_pages import common
from crm import attention, goals
from crm.calendar import CHANNEL_LABELS


@st.cache_data(ttl=60, show_spinner=False)
def load(url: str, now_minute: str) -> attention.Attention:
    return attention.today_view(common.engine(), now=dt.datetime.fromisoformat(now_minute))


user = common.current_user()
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
view = load(common.engine().url.render_as_string(), now.isoformat())

greeting = "morning" if now.hour < 12 else "afternoon" if now.hour < 18 else "evening"
st.title(f"Good {greeting}, {common.md(user.display_name)}", anchor=False)
st.caption(f"What needs attention today, {now:%A %d %B %Y}.")

top = st.columns(4)
top[0].metric("Content this week", len(view.calendar_this_week), border=True)
top[1].metric("Emails due today", sum(step.messages for step in view.steps_due), border=True)
top[2].metric("Pools gone quiet", len(view.quiet_pools), border=True)
top[3].metric("Goals needing care", len(view.goals_needing_care), border=True)

left, right = st.columns(2)
with left:
    with st.container(border=True):
        st.subheader(":material/calendar_month: This week's content", anchor=False)
        if not view.calendar_this_week:
            st.write("Nothing is planned this week. Plan something on the Content calendar.")
        for item in view.calendar_this_week:
            pools = ", ".join(item.pools) or "no pool"
            st.markdown(
                f"**{item.scheduled_at:%a %d %b}** · {CHANNEL_LABELS[item.channel]} · "
                f"{common.md(item.title)}  \n:gray[{common.md(pools)} · {item.status}]"
            )
    with st.container(border=True):
        st.subheader(":material/campaign: Campaign steps due", anchor=False)
        if not view.steps_due:
            st.write("No campaign emails are due today.")
        for step in view.steps_due:
            campaign = common.md(step.campaign)
            st.markdown(f"**{campaign}**, step {step.step}: {step.messages:,} emails")
with right:
    with st.container(border=True):
        st.subheader(":material/flag: Goals off track or at risk", anchor=False)
        if not view.goals_needing_care:
            st.write("Every goal with data is on track. See Goals & ROI for the details.")
        for progress in view.goals_needing_care:
            badge = ":red-badge" if progress.status == "off_track" else ":orange-badge"
            st.markdown(
                f"{badge}[{goals.STATUS_LABELS[progress.status]}] {common.md(progress.title)}  \n"
                f":gray[now {common.format_value(progress.metric, progress.actual)}, expected "
                f"{common.format_value(progress.metric, progress.expected)} by today]"
            )
    with st.container(border=True):
        st.subheader(":material/bedtime: Pools gone quiet", anchor=False)
        st.caption(f"No email or published content for {attention.QUIET_AFTER_DAYS}+ days.")
        if not view.quiet_pools:
            st.write("Every pool heard from us in the last month.")
        for pool in view.quiet_pools:
            st.markdown(f"**{common.md(pool.name)}** · last touch {common.ago(pool.last_touch)}")
    with st.container(border=True):
        st.subheader(":material/alarm: Follow-ups due", anchor=False)
        if not view.follow_ups:
            st.write("No follow-up reminders are due.")
        for reminder in view.follow_ups:
            name = common.person_name(reminder["first_name"], reminder["last_name"])
            note = reminder["follow_up_note"] or ""
            st.markdown(
                f"**{common.md(name)}** · due {reminder['follow_up_on']:%d %b}  \n"
                f":gray[{common.md(note)}]"
            )
