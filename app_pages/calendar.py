"""Content calendar: what each pool hears, week by week, on every channel."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import altair as alt
import pandas as pd
import streamlit as st

from app_pages import calendar_grid, common
from crm import auth, campaign_figures, clock, pools
from crm.config import load_settings
from crm.content_calendar import cadence, drafts, files, labels
from crm.content_calendar import items as calendar_items
from crm.content_calendar.occurrences import Occurrence, occurrences_between
from crm.errors import CrmError

VIEW = "cal_view"
CURSOR = "cal_cursor"  # the date the month or week view shows
NOTHING_PLANNED = (
    "Nothing is planned here yet. Add an item with **New item**, or bring your content "
    "spreadsheet (CSV) under **Share & cadence**."
)
GRID = "cal_grid"  # the month grid component (its triggers: opened, day)
DAY = "cal_day"  # the day listed under the month grid (its "+N more" was clicked)
DIALOG = "cal_dialog"  # ("new", date) | ("open", item_id, key) | ("delete", item_id, title)
NOTICE = "cal_notice"
PER_DAY = 5  # chips per day in the month view before "+N more"
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
REPEATS = {
    "none": "Does not repeat",
    "weekly": "Weekly",
    "weeks": "Every N weeks",
    "monthly": "Monthly",
}

engine = common.engine()
user = common.current_user()
writable = common.can_write()
zone_name = load_settings().timezone  # CRM_TIMEZONE: the team's days and hours
zone = zoneinfo.ZoneInfo(zone_name)
today = clock.today(zone)

st.title("Content calendar", anchor=False)
common.read_only_caption()
if NOTICE in st.session_state:
    st.success(st.session_state.pop(NOTICE), icon=":material/check_circle:")


@st.cache_data(ttl=60, show_spinner=False)
def load_pools(url: str) -> dict[int, str]:
    """Each pool's label for the pickers; a pool whose filter cannot be counted says so."""
    return {
        p.id: f"{p.name} (broken: cannot be counted)" if p.problem else p.name
        for p in pools.list_pools(common.engine())
    }


@st.cache_data(ttl=60, show_spinner=False)
def load_users(url: str) -> dict[int, str]:
    return {u.id: u.display_name for u in auth.list_users(common.engine()) if u.active}


@st.cache_data(ttl=10, show_spinner=False)
def load_occurrences(
    url: str, start: dt.datetime, end: dt.datetime, pool_id: int | None, channel: str | None
) -> list[Occurrence]:
    return occurrences_between(
        common.engine(), start=start, end=end, pool_id=pool_id, channel=channel
    )


@st.cache_data(ttl=30, show_spinner=False)
def load_month(
    url: str,
    start: dt.datetime,
    end: dt.datetime,
    pool_id: int | None,
    channel: str | None,
    zone_key: str,
    month: int,
    day: dt.date,
) -> tuple[list[calendar_grid.GridDay], int]:
    """The month grid's data, ready to send, and how many items the month holds (cached as
    such: a month of occurrences to unpickle and sort into days cost more than the grid)."""
    occurrences = load_occurrences(url, start, end, pool_id, channel)
    # zone_key and day (today) are part of the cache key: local dates and today's cell.
    first, last = start.date(), (end - dt.timedelta(days=1)).date()
    return grid_days(first, last, by_day(occurrences), month=month), len(occurrences)


@st.cache_data(ttl=30, show_spinner=False)
def load_warnings(
    url: str, start: dt.datetime, end: dt.datetime, zone: str
) -> list[cadence.CadenceWarning]:
    return cadence.cadence_warnings(common.engine(), start=start, end=end, timezone=zone)


def finish(message: str) -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    load_occurrences.clear()
    load_month.clear()
    load_warnings.clear()
    st.rerun()


def forget_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(zone)


def chip(occurrence: Occurrence) -> str:
    """A chip coloured by channel: time and title, user text made inert."""
    colour = labels.CHANNEL_COLOURS.get(occurrence.channel, "gray")
    text = f"{local(occurrence.starts_at):%H:%M} {common.md(occurrence.title)}"
    if occurrence.status == "published":
        text = f":material/check: {text}"
    return f":{colour}-badge[{text}]"


def shift(days: int = 0, months: int = 0) -> None:
    cursor: dt.date = st.session_state[CURSOR]
    if months:
        month = cursor.month - 1 + months
        cursor = dt.date(cursor.year + month // 12, month % 12 + 1, 1)
    st.session_state[CURSOR] = cursor + dt.timedelta(days=days)


def go_today() -> None:
    st.session_state[CURSOR] = today


def open_from_pills(widget_key: str, by_index: list[Occurrence]) -> None:
    """A chip was clicked: open its item (and clear the selection for next time)."""
    chosen = st.session_state.get(widget_key)
    st.session_state[widget_key] = None
    if chosen is not None:
        occurrence = by_index[chosen]
        st.session_state[DIALOG] = ("open", occurrence.item_id, occurrence.key)


def open_from_grid() -> None:
    """A chip of the month grid was clicked: open its item."""
    opened = getattr(st.session_state.get(GRID), "opened", None)
    if opened and "item" in opened and "key" in opened:
        st.session_state[DIALOG] = ("open", int(opened["item"]), str(opened["key"]))


def navigate_from_grid() -> None:
    """Previous, Today or Next above the month grid."""
    move = getattr(st.session_state.get(GRID), "nav", None)
    if move == "previous":
        shift(months=-1)
    elif move == "next":
        shift(months=1)
    elif move == "today":
        go_today()


def pick_from_grid() -> None:
    """A day's "+N more" was clicked: list that day's items under the grid."""
    picked = getattr(st.session_state.get(GRID), "day", None)
    try:
        st.session_state[DAY] = dt.date.fromisoformat(str(picked))
    except ValueError:
        return


def grid_days(
    first: dt.date, last: dt.date, days: dict[dt.date, list[Occurrence]], *, month: int
) -> list[calendar_grid.GridDay]:
    """The month grid's data: every day from first to last with its first PER_DAY chips."""
    found: list[calendar_grid.GridDay] = []
    day = first
    while day <= last:
        items = days.get(day, [])
        found.append(
            {
                "date": day.isoformat(),
                "label": str(day.day),
                "today": day == today,
                "muted": day.month != month,
                "chips": [
                    {
                        "id": item.item_id,
                        "key": item.key,
                        "text": f"{local(item.starts_at):%H:%M} {item.title}",
                        "tooltip": f"{item.title} · {labels.CHANNEL_LABELS[item.channel]} · "
                        f"{item.status}",
                        "colour": labels.CHANNEL_COLOURS.get(item.channel, "gray"),
                        "published": item.status == "published",
                    }
                    for item in items[:PER_DAY]
                ],
                "more": max(0, len(items) - PER_DAY),
            }
        )
        day += dt.timedelta(days=1)
    return found


def day_cell(
    day: dt.date, items: list[Occurrence], *, in_month: bool, limit: int, clickable: bool
) -> None:
    """One day of the week view: its number and its items as chips coloured by channel
    (clickable, st.pills)."""
    label = f"**{day.day}**" if day == today else str(day.day)
    if not in_month:
        label = f":gray[{day.day}]"
    shown = items[:limit]
    more = f"  \n:gray[+{len(items) - limit} more]" if len(items) > limit else ""
    if not clickable or not shown:
        st.markdown("  \n".join([label, *(chip(item) for item in shown)]) + more)
        return
    st.markdown(label)
    key = f"cal_day_{day.isoformat()}"
    st.pills(
        "Items",
        list(range(len(shown))),
        format_func=lambda index: chip(shown[index]),
        key=key,
        label_visibility="collapsed",
        on_change=open_from_pills,
        args=(key, shown),
    )
    if more:
        st.markdown(more)


def by_day(occurrences: list[Occurrence]) -> dict[dt.date, list[Occurrence]]:
    days: dict[dt.date, list[Occurrence]] = {}
    for occurrence in occurrences:
        days.setdefault(local(occurrence.starts_at).date(), []).append(occurrence)
    return days


def bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(first, dt.time(), zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return start, end


# --- the item dialogs --------------------------------------------------------------------


def item_form(
    detail: calendar_items.ItemDetail | None, *, day: dt.date, prefix: str
) -> drafts.ItemDraft | None:
    """The fields of an item; returns a draft when the form is submitted."""
    pool_names = load_pools(common.database_key())
    people = load_users(common.database_key())
    start = local(detail.starts_at) if detail else dt.datetime.combine(day, dt.time(9), zone)
    recurrence = (detail.recurrence if detail else None) or {}
    with st.form(f"{prefix}_form", border=False):
        title = st.text_input("Title", value=detail.title if detail else "", max_chars=200)
        left, right = st.columns(2)
        channel = left.selectbox(
            "Channel", list(labels.CHANNEL_LABELS), format_func=labels.CHANNEL_LABELS.get,
            index=list(labels.CHANNEL_LABELS).index(detail.channel) if detail else 0,
        )  # fmt: skip
        theme_options = [None, *labels.THEME_LABELS]
        theme = right.selectbox(
            "Theme", theme_options,
            format_func=lambda t: "No theme" if t is None else labels.THEME_LABELS[t],
            index=theme_options.index(detail.theme) if detail else 0,
        )  # fmt: skip
        on, at, lasts = st.columns(3)
        date = on.date_input("Date", value=start.date())
        time = at.time_input("Time", value=start.time().replace(tzinfo=None), step=900)
        minutes = 0
        if detail and detail.ends_at:
            minutes = int((detail.ends_at - detail.starts_at).total_seconds() // 60)
        duration = lasts.number_input("Lasts (minutes, 0: no end)", 0, 60 * 24 * 14, minutes, 15)
        chosen_pools = st.multiselect(
            "Audience pools", list(pool_names), format_func=pool_names.get,
            default=[p for p in (detail.pool_ids if detail else []) if p in pool_names],
        )  # fmt: skip
        left, right = st.columns(2)
        statuses = list(labels.STATUS_LABELS)
        status = left.selectbox(
            "Status", statuses, format_func=labels.STATUS_LABELS.get,
            index=statuses.index(detail.status) if detail else 0,
        )  # fmt: skip
        owners = [None, *people]
        owner = right.selectbox(
            "Owner", owners, format_func=lambda o: "Nobody" if o is None else people[o],
            index=owners.index(detail.owner_id) if detail and detail.owner_id in people
            else owners.index(user.id) if user.id in people else 0,
        )  # fmt: skip
        link = st.text_input("Link", value=(detail.link or "") if detail else "")
        body = st.text_area("Content or notes", value=(detail.body or "") if detail else "")
        freq = recurrence.get("freq")
        interval = int(recurrence.get("interval") or 1)
        repeat_now = (
            "none" if not freq else ("weeks" if freq == "weekly" and interval > 1 else freq)
        )
        repeat = st.selectbox(
            "Repeats", list(REPEATS), format_func=REPEATS.get, index=list(REPEATS).index(repeat_now)
        )
        every, until, count = st.columns(3)
        weeks = every.number_input("Every N weeks", 1, 52, interval if repeat_now == "weeks" else 2)
        until_value = recurrence.get("until")
        until_day = until.date_input(
            "Until (or a count)",
            value=dt.date.fromisoformat(until_value) if until_value else None,
        )
        times = count.number_input(
            "Times (0: use the date)", 0, 520, int(recurrence.get("count") or 0)
        )
        submitted = st.form_submit_button(
            "Save" if detail else "Add to the calendar", type="primary", disabled=not writable
        )
    if not submitted:
        return None
    starts_at = dt.datetime.combine(date, time, zone)
    rule = None
    if repeat != "none":
        rule = {
            "freq": "monthly" if repeat == "monthly" else "weekly",
            "interval": int(weeks) if repeat == "weeks" else 1,
            "until": until_day.isoformat() if until_day and not times else None,
            "count": int(times) or None,
            "timezone": zone_name,
        }
    return drafts.ItemDraft(
        title=title,
        channel=channel,
        starts_at=starts_at,
        ends_at=starts_at + dt.timedelta(minutes=int(duration)) if duration else None,
        pool_ids=list(chosen_pools),
        body=body or None,
        link=link or None,
        owner_id=owner,
        status=status,
        theme=theme,
        recurrence=rule,
    )


@st.dialog("New content item", width="large", on_dismiss=forget_dialog)
def new_dialog(day: dt.date) -> None:
    draft = item_form(None, day=day, prefix="cal_new")
    if draft is not None:
        try:
            calendar_items.save_item(engine, actor=user, draft=draft)
        except CrmError as error:
            st.error(str(error))
        else:
            finish(f"Added {draft.title.strip()!r} to the calendar.")


@st.dialog("Content item", width="large", on_dismiss=forget_dialog)
def open_dialog(item_id: int, key: str) -> None:
    try:
        detail = calendar_items.get_item(engine, item_id)
    except CrmError as error:
        st.error(str(error))
        return
    st.caption(
        f"{labels.CHANNEL_LABELS[detail.channel]} · {labels.STATUS_LABELS[detail.status]}"
        + (" · repeats" if detail.recurrence else "")
    )
    if detail.campaign_id:
        campaign_results(detail.campaign_id)
    draft = item_form(detail, day=today, prefix=f"cal_edit_{item_id}")
    if draft is not None:
        try:
            calendar_items.save_item(engine, actor=user, draft=draft, item_id=item_id)
        except CrmError as error:
            st.error(str(error))
        else:
            finish("Saved." if not detail.recurrence else "Saved the whole series.")
    if not writable:
        return
    st.divider()
    if detail.channel == "email_newsletter" and not detail.campaign_id:
        if st.button("Create campaign", icon=":material/campaign:", type="primary"):
            prefill = calendar_items.campaign_prefill(engine, item_id)
            st.session_state["campaigns_prefill"] = {**prefill, "item_id": item_id}
            st.session_state.pop(DIALOG, None)
            st.switch_page("app_pages/campaigns.py")
    elif detail.channel != "email_newsletter" and detail.status != "published":
        log_touch = st.checkbox(
            "Log a touchpoint on the timeline of everyone in its pools",
            value=bool(detail.pool_ids),
            disabled=not detail.pool_ids,
        )
        if st.button("Mark published", icon=":material/task_alt:"):
            try:
                people = calendar_items.mark_published(
                    engine, actor=user, item_id=item_id, log_touchpoint=log_touch
                )
            except CrmError as error:
                st.error(str(error))
            else:
                finish(
                    "Marked published"
                    + (f"; logged on {people:,} timelines." if log_touch else ".")
                )
    if detail.recurrence:
        st.markdown(f"**This occurrence** ({dt.date.fromisoformat(key):%a %d %b %Y})")
        left, right = st.columns([2, 1], vertical_alignment="bottom")
        moved_day = left.date_input(
            "Move it to", value=dt.date.fromisoformat(key), key=f"cal_move_{item_id}_{key}"
        )
        if left.button("Move this occurrence", key=f"cal_move_go_{item_id}_{key}"):
            start = local(detail.starts_at)
            new_start = dt.datetime.combine(moved_day, start.time().replace(tzinfo=None), zone)
            try:
                calendar_items.move_occurrence(
                    engine, actor=user, item_id=item_id, key=key, starts_at=new_start
                )
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"Moved that occurrence to {moved_day:%a %d %b}.")
        if right.button("Skip this occurrence", key=f"cal_skip_{item_id}_{key}"):
            calendar_items.skip_occurrence(engine, actor=user, item_id=item_id, key=key)
            finish("Skipped that occurrence; the rest of the series stays.")
    else:
        left, right = st.columns([2, 1], vertical_alignment="bottom")
        moved_day = left.date_input(
            "Move to", value=local(detail.starts_at).date(), key=f"cal_move_{item_id}"
        )
        if left.button("Move", key=f"cal_move_go_{item_id}"):
            start = local(detail.starts_at)
            new_start = dt.datetime.combine(moved_day, start.time().replace(tzinfo=None), zone)
            try:
                calendar_items.move_item(engine, actor=user, item_id=item_id, starts_at=new_start)
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"Moved to {moved_day:%a %d %b}.")
    one, two = st.columns(2)
    if one.button("Duplicate", icon=":material/content_copy:"):
        copy = calendar_items.duplicate_item(engine, actor=user, item_id=item_id)
        st.session_state[DIALOG] = ("open", copy, local(detail.starts_at).date().isoformat())
        st.session_state[NOTICE] = "Duplicated; you are editing the copy."
        st.rerun()
    if two.button("Delete…", icon=":material/delete:"):
        st.session_state[DIALOG] = ("delete", item_id, detail.title)
        st.rerun()


@st.dialog("Delete content item", on_dismiss=forget_dialog)
def delete_dialog(item_id: int, title: str) -> None:
    st.write(f"Delete {common.md(title)}" + " and every occurrence of it?")
    if st.button("Delete", type="primary"):
        calendar_items.delete_item(engine, actor=user, item_id=item_id)
        finish(f"Deleted {title!r}.")


def campaign_results(campaign_id: int) -> None:
    try:
        result = campaign_figures.report(engine, campaign_id)
    except CrmError:
        return
    totals = result["totals"]

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    st.info(
        f"Sent as the campaign “{result['name']}” ({result['status']}): "
        f"{totals['messages_sent']:,} messages sent to {totals['people_delivered']:,} people "
        f"delivered, reply rate {share(totals['reply_rate'])}, "
        f"clicked {share(totals['click_rate'])}, {result['applications']:,} applications.",
        icon=":material/campaign:",
    )


# --- the views ---------------------------------------------------------------------------

pool_names = load_pools(common.database_key())
st.session_state.setdefault(CURSOR, today)
# Rows are flex containers, not columns: the same controls with fewer blocks to lay out.
top = st.container(horizontal=True, vertical_alignment="bottom")
view = top.segmented_control(
    "View", ["Month", "Week", "Table", "Themes", "Share & cadence"], key=VIEW, default="Month",
    label_visibility="collapsed",
) or "Month"  # fmt: skip
pool_filter = top.selectbox(
    "Pool", [None, *pool_names], format_func=lambda p: "All pools" if p is None else pool_names[p],
    key="cal_pool", width=170,
)  # fmt: skip
channel_filter = top.selectbox(
    "Channel", [None, *labels.CHANNEL_LABELS],
    format_func=lambda c: "All channels" if c is None else labels.CHANNEL_LABELS[c],
    key="cal_channel", width=170,
)  # fmt: skip
if writable and top.button("New item", icon=":material/add:"):
    st.session_state[DIALOG] = ("new", st.session_state[CURSOR])

cursor: dt.date = st.session_state[CURSOR]
if view == "Week":
    first = cursor - dt.timedelta(days=cursor.weekday())
    last = first + dt.timedelta(days=6)
    heading = f"Week of {first:%d %B %Y}"
else:
    month_start = cursor.replace(day=1)
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    first = month_start - dt.timedelta(days=month_start.weekday())
    last = month_end + dt.timedelta(days=6 - month_end.weekday())
    heading = f"{month_start:%B %Y}"
if view in ("Week", "Table"):  # the month grid draws its own title and buttons
    step = {"months": 1} if view != "Week" else {"days": 7}
    back = {"months": -1} if view != "Week" else {"days": -7}
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Previous", icon=":material/chevron_left:", on_click=shift, kwargs=back)
        st.button("Today", on_click=go_today)
        st.button("Next", icon=":material/chevron_right:", on_click=shift, kwargs=step)
        st.subheader(heading, anchor=False)

start, end = bounds(first, last)
warnings = load_warnings(common.database_key(), start, end, zone_name)
if warnings:
    st.warning(
        "  \n".join(common.md(warning.message) for warning in warnings[:4]),
        icon=":material/notifications_active:",
    )
if len(warnings) > 4:
    with st.expander(f"{len(warnings) - 4} more cadence warnings"):
        st.markdown("\n".join(f"- {common.md(warning.message)}" for warning in warnings[4:]))

if view == "Month":
    month_days, shown_count = load_month(
        common.database_key(), start, end, pool_filter, channel_filter, zone_name,
        cursor.month, today,
    )  # fmt: skip
    calendar_grid.month_grid(
        month_days,
        weekdays=WEEKDAYS,
        legend=[
            (label, labels.CHANNEL_COLOURS[channel])
            for channel, label in labels.CHANNEL_LABELS.items()
        ],
        summary=f"{shown_count:,} items shown.",
        title=heading,
        key=GRID,
        on_opened=open_from_grid,
        on_day=pick_from_grid,
        on_nav=navigate_from_grid,
    )
    picked = st.session_state.get(DAY)
    if isinstance(picked, dt.date) and first <= picked <= last:
        # The day whose "+N more" was clicked, every item a clickable chip (a widget
        # per item, so only for the day asked for).
        day_items = by_day(
            load_occurrences(common.database_key(), start, end, pool_filter, channel_filter)
        ).get(picked, [])
        with st.container(border=True):
            with st.container(horizontal=True, vertical_alignment="center"):
                st.markdown(f"**{picked:%A %d %B}** · {len(day_items):,} items")
                st.button(
                    "Close",
                    icon=":material/close:",
                    type="tertiary",
                    key="cal_day_close",
                    on_click=lambda: st.session_state.pop(DAY, None),
                )
            key = f"cal_picked_{picked.isoformat()}"
            st.pills(
                "Items that day",
                list(range(len(day_items))),
                format_func=lambda index: chip(day_items[index]),
                key=key,
                label_visibility="collapsed",
                on_change=open_from_pills,
                args=(key, day_items),
            )
    if not shown_count:
        st.info(NOTHING_PLANNED)
elif view == "Week":
    occurrences = load_occurrences(common.database_key(), start, end, pool_filter, channel_filter)
    days = by_day(occurrences)
    summary = f"{len(occurrences):,} items shown."
    header = st.columns(7)
    for column, name in zip(header, WEEKDAYS, strict=True):
        column.markdown(f"**{name}**")
    row = st.columns(7)
    for offset, column in enumerate(row):
        day = first + dt.timedelta(days=offset)
        with column.container(border=True):
            day_cell(day, days.get(day, []), in_month=True, limit=50, clickable=True)
    legend = " ".join(
        f":{labels.CHANNEL_COLOURS[c]}-badge[{label}]" for c, label in labels.CHANNEL_LABELS.items()
    )
    st.caption(f"{summary} Colours: {legend}")
    if not occurrences:
        st.info(NOTHING_PLANNED)
elif view == "Table":
    occurrences = load_occurrences(common.database_key(), start, end, pool_filter, channel_filter)
    single = [o for o in occurrences if not o.recurring]
    people = load_users(common.database_key())
    if not single:
        st.info("No one-off items this month; recurring items are edited from the month view.")
    else:
        frame = pd.DataFrame(
            {
                "id": [o.item_id for o in single],
                "title": [o.title for o in single],
                "channel": [o.channel for o in single],
                "starts_at": [local(o.starts_at).replace(tzinfo=None) for o in single],
                "status": [o.status for o in single],
                "theme": [o.theme for o in single],
                "owner": [o.owner for o in single],
                "link": [o.link or "" for o in single],
            }
        )
        edited = st.data_editor(
            frame,
            key=f"cal_table_{first}",
            hide_index=True,
            width="stretch",
            disabled=["id"] if writable else True,
            column_config={
                "id": None,
                "title": st.column_config.TextColumn("Title", max_chars=200, required=True),
                "channel": st.column_config.SelectboxColumn(
                    "Channel", options=list(labels.CHANNEL_LABELS), required=True
                ),
                "starts_at": st.column_config.DatetimeColumn(
                    f"When ({zone_name})", format="YYYY-MM-DD HH:mm", required=True
                ),
                "status": st.column_config.SelectboxColumn(
                    "Status", options=list(labels.STATUS_LABELS), required=True
                ),
                "theme": st.column_config.SelectboxColumn(
                    "Theme", options=list(labels.THEME_LABELS)
                ),
                "owner": st.column_config.SelectboxColumn("Owner", options=list(people.values())),
                "link": st.column_config.LinkColumn("Link"),
            },
        )
        st.caption("Edit cells, then save: every change is saved together, or none is.")
        if writable and st.button("Save changes", type="primary", icon=":material/save:"):
            by_name = {name: uid for uid, name in people.items()}
            rows = [
                {
                    "id": int(record["id"]),
                    "title": record["title"],
                    "channel": record["channel"],
                    "starts_at": pd.Timestamp(record["starts_at"])
                    .to_pydatetime()
                    .replace(tzinfo=zone),
                    "status": record["status"],
                    "theme": record["theme"] or None,
                    "owner_id": by_name.get(record["owner"]),
                    "link": record["link"] or None,
                }
                for record in edited.to_dict("records")
            ]
            try:
                changed = calendar_items.save_table(
                    engine, actor=user, rows=rows, timezone=zone_name
                )
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"Saved {changed:,} items.")
elif view == "Themes":
    year_start = dt.date(today.year, 1, 1)
    theme_start, theme_end = bounds(year_start, dt.date(today.year, 12, 31))
    balance = cadence.theme_balance(
        engine, start=theme_start, end=theme_end, pool_id=pool_filter, timezone=zone_name
    )
    records = [
        {"month": month, "theme": labels.THEME_LABELS.get(theme, "No theme"), "items": count}
        for month, themes in sorted(balance.items())
        for theme, count in themes.items()
        if count
    ]
    if not records:
        st.info(f"No content is planned in {today.year} for this selection.")
    else:
        st.subheader(f"Themes per month, {today.year}", anchor=False)
        st.altair_chart(
            alt.Chart(pd.DataFrame(records))
            .mark_bar()
            .encode(
                x=alt.X("month:O", title=None),
                y=alt.Y("items:Q", title="Items"),
                color=alt.Color("theme:N", title="Theme"),
                tooltip=["month", "theme", "items"],
            )
            .properties(height=320),
            width="stretch",
        )
        st.caption(
            "A pool that only ever hears job alerts tunes out; aim for a mix of news, "
            "insight, advice and stories."
        )

else:  # Share & cadence: export, import, and each pool's cadence settings
    year_start, year_end = bounds(today - dt.timedelta(days=31), today + dt.timedelta(days=365))
    left, right = st.columns(2)
    left.download_button(
        "Download iCalendar (.ics), next 12 months",
        data=lambda: files.export_ics(engine, start=year_start, end=year_end),
        file_name="content-calendar.ics",
        mime="text/calendar",
        icon=":material/event:",
    )
    right.download_button(
        "Download CSV, next 12 months",
        data=lambda: files.export_csv(engine, start=year_start, end=year_end, timezone=zone_name),
        file_name="content-calendar.csv",
        mime="text/csv",
        icon=":material/table:",
    )
    if writable:
        upload = st.file_uploader(
            "Import a content spreadsheet (CSV)", type=["csv"], key="cal_import"
        )
        if upload is not None and st.button("Import", key="cal_import_go"):
            try:
                result = files.import_csv(
                    engine,
                    actor=user,
                    data=upload.getvalue(),
                    filename=upload.name,
                    timezone=zone_name,
                )
            except CrmError as error:
                st.error(str(error))
            else:
                skipped = f"; {result.skipped:,} already on the calendar" if result.skipped else ""
                st.success(f"Imported {result.created:,} of {result.read:,} rows{skipped}.")
                if result.errors:
                    st.warning(f"{len(result.errors):,} rows were refused:")
                    st.dataframe(
                        pd.DataFrame(result.errors, columns=["row", "column", "problem"]),
                        hide_index=True,
                    )
                    st.download_button(
                        "Download the error report",
                        data=result.error_report_csv(),
                        file_name="calendar-import-errors.csv",
                        mime="text/csv",
                    )
        st.markdown("**Cadence per pool**")
        if pool_names:
            chosen = st.selectbox(
                "Pool", list(pool_names), format_func=pool_names.get, key="cal_cadence_pool"
            )
            pool = pools.get_pool(engine, chosen)
            a, b, c = st.columns(3, vertical_alignment="bottom")
            cap = a.number_input(
                "At most per week (0: no cap)", 0, 50,
                int(pool.frequency_cap_per_week or 0) if pool else 0, key=f"cal_cap_{chosen}",
            )  # fmt: skip
            silence = b.number_input(
                "Radio silence after (days)", 1, 365,
                int(pool.silence_days or 30) if pool else 30, key=f"cal_silence_{chosen}",
            )  # fmt: skip
            if c.button("Save cadence", key="cal_cadence_go"):
                cadence.set_pool_cadence(
                    engine, actor=user, pool_id=chosen,
                    frequency_cap_per_week=int(cap) or None, silence_days=int(silence),
                )  # fmt: skip
                finish(f"Saved the cadence for {pool.name if pool else pool_names[chosen]}.")

dialog = st.session_state.get(DIALOG)
if dialog and dialog[0] == "new" and writable:
    new_dialog(dialog[1])
elif dialog and dialog[0] == "open":
    open_dialog(dialog[1], dialog[2])
elif dialog and dialog[0] == "delete" and writable:
    delete_dialog(dialog[1], dialog[2])
