"""Home: what needs attention today."""

import datetime as dt

import streamlit as st

from app_pages import common
from crm import attention, clock, goals, touches
from crm.content_calendar.labels import CHANNEL_LABELS


@st.cache_data(ttl=60, show_spinner=False)
def load(url: str, now_minute: str) -> attention.Attention:
    return attention.today_view(common.engine(), now=dt.datetime.fromisoformat(now_minute))


user = common.current_user()
now = clock.now().replace(second=0, microsecond=0)
view = load(common.database_key(), now.isoformat())

greeting = "morning" if now.hour < 12 else "afternoon" if now.hour < 18 else "evening"
st.title(f"Good {greeting}, {common.md(user.display_name)}", anchor=False)
st.caption(f"What needs attention today, {now:%A %d %B %Y}.")

top = st.columns(4)
common.figure_metric(top[0], "home.content_this_week", len(view.calendar_this_week), border=True)
common.figure_metric(
    top[1], "home.emails_due_today", sum(step.messages for step in view.steps_due), border=True
)
common.figure_metric(top[2], "home.pools_gone_quiet", len(view.quiet_pools), border=True)
common.figure_metric(top[3], "home.goals_needing_care", len(view.goals_needing_care), border=True)


SHOWN_PER_SECTION = 8  # a busy week can hold hundreds of items: the rest are counted


def section(
    title: str, lines: list[str], empty: str, caption: str | None = None, more: str = ""
) -> None:
    """A bordered box: a heading and one markdown block with the first few lines, and how
    many more there are (and where to see them)."""
    with st.container(border=True):
        st.subheader(title, anchor=False)
        if caption:
            st.caption(caption)
        shown = lines[:SHOWN_PER_SECTION]
        if len(lines) > len(shown):
            shown.append(f":gray[and {len(lines) - len(shown):,} more{more}]")
        st.markdown("\n\n".join(shown) if shown else empty)


left, right = st.columns(2)
with left:
    section(
        ":material/calendar_month: This week's content",
        [
            f"**{item.scheduled_at:%a %d %b}** · {CHANNEL_LABELS[item.channel]} · "
            f"{common.md(item.title)}  \n"
            f":gray[{common.md(', '.join(item.pools) or 'no pool')} · {item.status}]"
            for item in view.calendar_this_week
        ],
        "Nothing is planned this week. Plan something on the Content calendar.",
        more=" on the Content calendar",
    )
    section(
        ":material/campaign: Campaign steps due",
        [
            f"**{common.md(step.campaign)}**, step {step.step}: {step.messages:,} emails"
            for step in view.steps_due
        ],
        "No campaign emails are due today.",
    )
with right:
    section(
        ":material/flag: Goals off track or at risk",
        [
            f"{':red-badge' if p.status == 'off_track' else ':orange-badge'}"
            f"[{goals.STATUS_LABELS[p.status]}] {common.md(p.title)}  \n"
            f":gray[now {common.format_value(p.metric, p.actual)}, expected "
            f"{common.format_value(p.metric, p.expected)} by today]"
            for p in view.goals_needing_care
        ],
        "Every goal with data is on track. See Goals & ROI for the details.",
        more=" on Goals & ROI",
    )
    section(
        ":material/bedtime: Pools gone quiet",
        [
            f"**{common.md(pool.name)}** · {touches.LABEL.lower()} "
            f"{common.figure_text('pool.last_touch', pool.last_touch, subject=pool.name)}"
            for pool in view.quiet_pools
        ],
        "Every pool heard from us in the last month."
        if view.pool_count
        else "No talent pools yet. Create one on the Talent pools page.",
        caption=(
            f"No campaign aimed at the pool sent and no content published to it for "
            f"{attention.QUIET_AFTER_DAYS}+ days."
        ),
    )
    if view.too_often:
        section(
            ":material/notifications_active: Pools hearing from us too often",
            [f"{common.md(warning.message)}" for warning in view.too_often],
            "",
            caption="From the content calendar's next four weeks against each pool's cap.",
        )
    section(
        ":material/alarm: Follow-ups due",
        [
            f"**{common.md(common.person_name(r['first_name'], r['last_name']))}** · "
            f"due {r['follow_up_on']:%d %b}  \n:gray[{common.md(r['follow_up_note'] or '')}]"
            for r in view.follow_ups
        ],
        "No follow-up reminders are due.",
    )
