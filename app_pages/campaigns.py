"""Campaigns: write a sequence, preview it for anyone, launch it, and watch it go out."""

from __future__ import annotations

import base64
import zoneinfo

import altair as alt
import pandas as pd
import streamlit as st

from app_pages import common
from crm import (
    campaign_figures,
    campaign_lifecycle,
    campaigns,
    candidates,
    clock,
    composer,
    engagement,
    figures,
    mailer,
    merge_tags,
    outbox_view,
    pools,
    send_window,
)
from crm.config import load_settings
from crm.content_calendar.items import link_campaign
from crm.errors import CrmError

VIEW = "campaigns_view"
SELECTED = "campaigns_selected"
EDITING = "campaigns_editing"  # None: a new campaign; an id: that draft
STEPS = "campaigns_steps"  # the number of steps in the composer
PICKED = "campaigns_picked"  # hand-picked candidate ids
DIALOG = "campaigns_dialog"
NOTICE = "campaigns_notice"
PREFILL = "campaigns_prefill"  # set by the calendar page: start a campaign from an item
FROM_ITEM = "campaigns_from_item"  # the calendar item the composer started from
NEXT_VIEW = "campaigns_next_view"  # the view to show on the next run (set after the control)
PAGE_SIZE = 50
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

engine = common.engine()
user = common.current_user()
writable = common.can_write()
settings = load_settings()

st.title("Campaigns", anchor=False)
if not settings.smtp_configured:
    st.warning(
        "Sending is off: no SMTP server is configured (CRM_SMTP_HOST), so campaigns can be "
        "written and previewed but not launched. See the README's configuration section.",
        icon=":material/mail_lock:",
    )
common.read_only_caption()
if NOTICE in st.session_state:
    st.success(st.session_state.pop(NOTICE), icon=":material/check_circle:")


@st.cache_data(ttl=10, show_spinner=False)
def load_summaries(url: str) -> list[campaign_figures.CampaignSummary]:
    return campaign_figures.list_campaigns(common.engine())


@st.cache_data(ttl=60, show_spinner=False)
def load_pool_names(url: str) -> dict[int, str]:
    return pools.pool_names(common.engine())


@st.cache_data(ttl=60, show_spinner=False)
def load_tags(url: str) -> dict[str, str]:
    return campaigns.tag_fields(common.engine())


def finish(message: str, *, selected: int | None = None, view: str | None = None) -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    if selected is not None:
        st.session_state[SELECTED] = selected
    if view is not None:
        st.session_state[NEXT_VIEW] = view
    for cached in (load_summaries, load_report, load_step_counts, load_outbox):
        cached.clear()
    st.rerun()


# --- composer ---------------------------------------------------------------------------


def step_key(index: int, name: str) -> str:
    return f"cstep_{index}_{name}"


def load_into_composer(detail: campaigns.CampaignDetail | None) -> None:
    """Fill the composer's widgets from a draft (or empty them for a new campaign)."""
    state = st.session_state
    for key in [k for k in state if str(k).startswith(("cstep_", "compose_"))]:
        del state[key]
    state[EDITING] = detail.id if detail else None
    steps = detail.steps if detail else [campaigns.StepDraft(subject="", body="")]
    state[STEPS] = len(steps)
    state["compose_name"] = detail.name if detail else ""
    state["compose_sender_name"] = (detail.sender_name or "") if detail else ""
    state["compose_sender_email"] = (detail.sender_email or "") if detail else ""
    state["compose_audience_kind"] = (
        "Hand-picked people" if detail and detail.audience_pool_id is None else "Talent pool"
    )
    if detail and detail.audience_pool_id:
        state["compose_pool"] = detail.audience_pool_id
    state[PICKED] = campaigns.hand_picked_ids(engine, detail.id) if detail else []
    for index, step in enumerate(steps):
        put_step(index, step)


def put_step(index: int, step: campaigns.StepDraft) -> None:
    state = st.session_state
    state[step_key(index, "subject")] = step.subject
    state[step_key(index, "body")] = step.body
    state[step_key(index, "delay")] = int(step.delay_days)
    state[step_key(index, "reply")] = step.stop_on_reply
    state[step_key(index, "click")] = step.stop_on_click
    state[step_key(index, "pipeline")] = step.stop_on_pipeline
    window = send_window.parse_window(step.send_window) if step.send_window else None
    state[step_key(index, "windowed")] = window is not None
    if window is not None:
        state[step_key(index, "days")] = [DAYS[d] for d in sorted(window.days)]
        state[step_key(index, "hours")] = (window.start_minute // 60, -(-window.end_minute // 60))
        state[step_key(index, "tz")] = window.timezone
        state[step_key(index, "holidays")] = ", ".join(
            day.isoformat() for day in sorted(window.holidays)
        )
        state[step_key(index, "country")] = window.country
        state[step_key(index, "region")] = window.region


def read_step(index: int) -> campaigns.StepDraft:
    state = st.session_state
    window = None
    if state.get(step_key(index, "windowed")):
        low, high = state.get(step_key(index, "hours"), (9, 17))
        holidays = [
            part.strip()
            for part in str(state.get(step_key(index, "holidays"), "")).split(",")
            if part.strip()
        ]
        window = {
            "days": ",".join(state.get(step_key(index, "days")) or []) or "mon-fri",
            "hours": f"{low}-{high}",
            "timezone": state.get(step_key(index, "tz")) or "UTC",
        }
        if holidays:
            window["holidays"] = holidays
        if country := state.get(step_key(index, "country")):
            window["country"] = country
            if region := state.get(step_key(index, "region")):
                window["region"] = region
    return campaigns.StepDraft(
        subject=state.get(step_key(index, "subject"), ""),
        body=state.get(step_key(index, "body"), ""),
        delay_days=int(state.get(step_key(index, "delay"), 0)),
        send_window=window,
        stop_on_reply=bool(state.get(step_key(index, "reply"), True)),
        stop_on_click=bool(state.get(step_key(index, "click"), False)),
        stop_on_pipeline=bool(state.get(step_key(index, "pipeline"), True)),
    )


def insert_tag() -> None:
    """The picker's Insert: append the chosen tag to the chosen step's message."""
    state = st.session_state
    field = state.get("compose_tag")
    if not field:
        return
    index = int(state.get("compose_tag_step", 1)) - 1
    key = step_key(index, "body")
    text = merge_tags.tag_text(field, (state.get("compose_tag_fallback") or "").strip() or None)
    current = state.get(key, "")
    state[key] = f"{current}{'' if not current or current.endswith((' ', chr(10))) else ' '}{text}"


def use_template(index: int, template: campaigns.SavedTemplate) -> None:
    st.session_state[step_key(index, "subject")] = template.subject
    st.session_state[step_key(index, "body")] = template.body


def remove_step(index: int) -> None:
    count = st.session_state[STEPS]
    drafts = [read_step(i) for i in range(count) if i != index]
    for key in [k for k in st.session_state if str(k).startswith("cstep_")]:
        del st.session_state[key]
    st.session_state[STEPS] = len(drafts)
    for i, draft in enumerate(drafts):
        put_step(i, draft)


def add_step() -> None:
    count = st.session_state[STEPS]
    put_step(
        count,
        campaigns.StepDraft(subject="", body="", delay_days=4 if count else 0),
    )
    st.session_state[STEPS] = count + 1


def step_editor(index: int, templates: list[campaigns.SavedTemplate]) -> None:
    count = st.session_state[STEPS]
    with st.container(border=True):
        head, tools = st.columns([3, 2], vertical_alignment="center")
        head.subheader(f"Step {index + 1}", anchor=False)
        if templates:
            with tools.popover("Start from a template", icon=":material/library_books:"):
                for template in templates:
                    st.button(
                        template.name,
                        key=f"cstep_{index}_use_{template.id}",
                        on_click=use_template,
                        args=(index, template),
                        disabled=not writable,
                    )
        st.text_input("Subject", key=step_key(index, "subject"), max_chars=300)
        st.text_area(
            "Message (Markdown)",
            key=step_key(index, "body"),
            height=180,
            help="**bold**, *italic*, [link text](https://...), lists with -. "
            "Merge tags such as {{first_name|there}} come from the picker above.",
        )
        left, right = st.columns(2)
        left.number_input(
            "Days after the previous step" if index else "Days after launch",
            key=step_key(index, "delay"),
            min_value=0,
            max_value=campaigns.MAX_DELAY_DAYS,
            step=1,
        )
        with right:
            st.checkbox("Only send inside a window", key=step_key(index, "windowed"))
        if st.session_state.get(step_key(index, "windowed")):
            days, hours, zone = st.columns([3, 2, 2])
            st.session_state.setdefault(step_key(index, "days"), DAYS[:5])
            st.session_state.setdefault(step_key(index, "hours"), (9, 17))
            st.session_state.setdefault(step_key(index, "tz"), "Europe/London")
            days.multiselect("Weekdays", DAYS, key=step_key(index, "days"))
            hours.slider("Hours", 0, 24, key=step_key(index, "hours"))
            zone.selectbox("Timezone", timezones(), key=step_key(index, "tz"))
            countries = send_window.holiday_countries()
            public, region, extra = st.columns([2, 1, 3])
            country = public.selectbox(
                "Public holidays of",
                [None, *countries],
                format_func=lambda code: "No country" if code is None else countries[code],
                key=step_key(index, "country"),
                help="Skip the public holidays of a country (and of one of its regions).",
            )
            regions = send_window.holiday_regions(country) if country else ()
            if st.session_state.get(step_key(index, "region")) not in (None, *regions):
                del st.session_state[step_key(index, "region")]  # a region of another country
            if regions:
                region.selectbox(
                    "Region",
                    [None, *regions],
                    format_func=lambda code: "Whole country" if code is None else regions[code],
                    key=step_key(index, "region"),
                )
            extra.text_input(
                "Other days to skip (YYYY-MM-DD, comma-separated)",
                key=step_key(index, "holidays"),
            )
        if index:
            st.caption("Stop this step for people who:")
            a, b, c = st.columns(3)
            a.checkbox("replied", key=step_key(index, "reply"))
            b.checkbox("clicked", key=step_key(index, "click"))
            c.checkbox("entered a job's pipeline", key=step_key(index, "pipeline"))
        if count > 1:
            st.button(
                "Remove this step",
                key=f"cstep_{index}_remove",
                icon=":material/delete:",
                on_click=remove_step,
                args=(index,),
            )


@st.cache_data(show_spinner=False)
def timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def audience_editor(pool_names: dict[int, str]) -> None:
    kind = st.radio(
        "Audience", ["Talent pool", "Hand-picked people"], key="compose_audience_kind",
        horizontal=True,
    )  # fmt: skip
    if kind == "Talent pool":
        if not pool_names:
            st.info("There are no talent pools yet: build one on the Talent pools page.")
            return
        st.selectbox(
            "Talent pool", list(pool_names), format_func=pool_names.get, key="compose_pool"
        )
        return
    picked: list[int] = st.session_state.setdefault(PICKED, [])
    query = st.text_input("Find people to add", key="compose_find", placeholder="Name or email")
    options = dict(campaigns.people_labels(engine, picked))
    if query.strip():
        found = candidates.search(engine, text=query, page_size=20).rows
        for row in found:
            options.setdefault(
                row["id"],
                common.person_name(row["first_name"], row["last_name"])
                + f" <{row['email'] or 'no email'}>",
            )
    chosen = st.multiselect(
        "People in this campaign",
        list(options),
        default=[cid for cid in picked if cid in options],
        format_func=lambda cid: options.get(cid, str(cid)),
        key=f"compose_people_{len(picked)}_{hash(query)}",
    )
    st.session_state[PICKED] = chosen


def apply_prefill(prefill: dict) -> None:
    """Start a new campaign from a content calendar item (its pool, date and text)."""
    load_into_composer(None)
    state = st.session_state
    state["compose_name"] = prefill.get("name") or ""
    if prefill.get("pool_id"):
        state["compose_audience_kind"] = "Talent pool"
        state["compose_pool"] = prefill["pool_id"]
    starts = prefill.get("starts_at")
    days = max((starts.date() - clock.today()).days, 0) if starts else 0
    put_step(
        0,
        campaigns.StepDraft(
            subject=prefill.get("subject") or "", body=prefill.get("body") or "", delay_days=days
        ),
    )
    state[FROM_ITEM] = prefill.get("item_id")


def compose_view() -> None:
    if not writable:
        st.info("Managers can read campaigns but not write them.")
        return
    state = st.session_state
    if PREFILL in state:
        apply_prefill(state.pop(PREFILL))
    if STEPS not in state:
        load_into_composer(None)
    if state.get(FROM_ITEM):
        st.info(
            "Starting from a content calendar item: step 1's delay is set so it goes out on "
            "the item's date if you launch today, and the item will show this campaign's "
            "results.",
            icon=":material/calendar_month:",
        )
    editing = state.get(EDITING)
    st.subheader("Edit draft" if editing else "New campaign", anchor=False)
    pool_names = load_pool_names(common.database_key())
    st.text_input("Campaign name", key="compose_name", max_chars=campaigns.MAX_NAME)
    default_name, default_address = mailer.split_sender(
        settings.smtp.sender if settings.smtp else ""
    )
    left, right = st.columns(2)
    left.text_input("Sender name", key="compose_sender_name", placeholder=default_name or "")
    right.text_input(
        "Sender address",
        key="compose_sender_email",
        placeholder=default_address or "you@company.com",
    )
    audience_editor(pool_names)

    tags = load_tags(common.database_key())
    with st.expander("Merge tags", icon=":material/data_object:"):
        a, b, c, d = st.columns([3, 2, 1, 1], vertical_alignment="bottom")
        a.selectbox(
            "Field", list(tags), format_func=lambda f: f"{tags[f]} · {{{{{f}}}}}", key="compose_tag"
        )
        b.text_input("Fallback when empty", key="compose_tag_fallback", placeholder="there")
        c.number_input("Step", min_value=1, max_value=state[STEPS], key="compose_tag_step")
        d.button("Insert", on_click=insert_tag, icon=":material/add:")
        st.caption(
            "Write {{field}} or {{field|fallback}}; only these fields exist, and a value is "
            "always shown as text, never as formatting."
        )
    templates = campaigns.list_templates(engine)
    for index in range(state[STEPS]):
        step_editor(index, templates)
    if state[STEPS] < campaigns.MAX_STEPS:
        st.button("Add a step", icon=":material/add_circle:", on_click=add_step)

    save, as_template, cancel_edit = st.columns([2, 2, 1])
    if save.button("Save draft", type="primary", icon=":material/save:"):
        draft = campaigns.CampaignDraft(
            name=state.get("compose_name", ""),
            steps=[read_step(i) for i in range(state[STEPS])],
            audience_pool_id=state.get("compose_pool")
            if state.get("compose_audience_kind") == "Talent pool"
            else None,
            candidate_ids=list(state.get(PICKED, []))
            if state.get("compose_audience_kind") != "Talent pool"
            else [],
            sender_name=state.get("compose_sender_name") or None,
            sender_email=state.get("compose_sender_email") or None,
        )
        try:
            campaign_id = campaigns.save_campaign(
                engine, actor=user, draft=draft, campaign_id=editing
            )
        except CrmError as error:
            st.error(str(error), icon=":material/error:")
        else:
            item_id = state.pop(FROM_ITEM, None)
            if item_id:
                link_campaign(engine, actor=user, item_id=item_id, campaign_id=campaign_id)
            for key in [k for k in state if str(k).startswith(("cstep_", "compose_"))]:
                del state[key]
            state.pop(STEPS, None)
            finish(f"Saved {draft.name.strip()!r}.", selected=campaign_id, view="Campaigns")
    with as_template.popover("Save step 1 as a template", icon=":material/bookmark_add:"):
        name = st.text_input("Template name", key="compose_template_name")
        if st.button("Save template", key="compose_template_save"):
            first = read_step(0)
            try:
                campaigns.save_template(
                    engine, actor=user, name=name, subject=first.subject, body=first.body
                )
            except CrmError as error:
                st.error(str(error))
            else:
                st.success(f"Saved the template {name.strip()!r}.")
    if cancel_edit.button("Start over"):
        load_into_composer(None)
        st.rerun()


# --- one campaign -----------------------------------------------------------------------


def sandboxed(rendered: mailer.RenderedEmail) -> None:
    """The HTML part in a frame of its own origin: sanitized, no scripts, nothing remote."""
    document = mailer.preview_document(rendered).encode("utf-8")
    st.iframe(
        "data:text/html;charset=utf-8;base64," + base64.b64encode(document).decode("ascii"),
        height=320,
        alt="Preview of the email's HTML part",
    )


@st.dialog("Launch campaign", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def launch_dialog(campaign_id: int, name: str, eligible: int) -> None:
    st.write(f"Send {common.md(name)} to **{eligible:,}** people now?")
    st.caption(
        "Everyone in the audience at this moment is enrolled; later changes to the pool "
        "do not add people."
    )
    if st.button("Launch", type="primary", icon=":material/rocket_launch:"):
        try:
            result = campaign_lifecycle.launch(engine, actor=user, campaign_id=campaign_id)
        except CrmError as error:
            st.error(str(error))
        else:
            finish(
                f"Launched: {result.enrolled:,} people enrolled, "
                f"{result.messages:,} messages queued."
            )


@st.dialog("Cancel campaign", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def cancel_dialog(campaign_id: int, name: str) -> None:
    st.write(
        f"Cancel {common.md(name)}? Nothing more will be sent; what was sent stays in its report."
    )
    if st.button("Cancel the campaign", type="primary"):
        try:
            cancelled = campaign_lifecycle.cancel(engine, actor=user, campaign_id=campaign_id)
        except CrmError as error:
            st.error(str(error))
        else:
            finish(f"Cancelled; {cancelled:,} queued messages will not be sent.")


def preview_section(detail: campaigns.CampaignDetail) -> None:
    st.subheader("Preview", anchor=False)
    sample = campaign_lifecycle.audience_sample(engine, detail.id)
    if not sample:
        st.info("Nobody is in the audience yet, so there is no one to preview for.")
        return
    labels = dict(sample)
    left, right = st.columns([1, 3])
    step = left.selectbox("Step", range(1, len(detail.steps) + 1), key=f"preview_step_{detail.id}")
    person = right.selectbox(
        "As received by", list(labels), format_func=labels.get, key=f"preview_person_{detail.id}"
    )
    try:
        rendered = composer.preview(engine, detail.id, step=step, candidate_id=person).rendered
    except CrmError as error:
        st.error(str(error))
        return
    st.text_input(
        "Subject",
        value=rendered.subject,
        disabled=True,
        key=f"preview_subject_{detail.id}_{step}_{person}",
    )
    html_tab, text_tab = st.tabs(["HTML", "Plain text"])
    with html_tab:
        sandboxed(rendered)
    with text_tab:
        st.code(rendered.text, language=None, wrap_lines=True)
    if writable and st.button(
        f"Send a test to me ({user.email or 'no email on your user'})",
        icon=":material/outgoing_mail:",
        disabled=not (settings.smtp_configured and user.email),
    ):
        try:
            address = composer.send_test(
                engine, actor=user, campaign_id=detail.id, step=step, candidate_id=person
            )
        except CrmError as error:
            st.error(str(error))
        else:
            st.success(f"Sent a test to {address}.")


def launch_section(detail: campaigns.CampaignDetail) -> None:
    st.subheader("Launch check", anchor=False)
    check = campaign_lifecycle.launch_check(engine, detail.id)
    a, b, c = st.columns(3)
    a.metric("In the audience now", f"{check.audience:,}")
    b.metric("Will be enrolled", f"{check.eligible:,}")
    c.metric("Skipped", f"{sum(check.skipped.values()):,}")
    skipped = {campaign_lifecycle.SKIP_REASONS[k]: v for k, v in check.skipped.items() if v}
    if skipped:
        st.caption("Skipped: " + "; ".join(f"{v:,} {k}" for k, v in skipped.items()))
    if check.missing:
        st.error(check.blocked, icon=":material/block:")
        st.dataframe(
            pd.DataFrame(
                {
                    "Person": [m.name for m in check.missing],
                    "Tags without a value": [", ".join(m.fields) for m in check.missing],
                }
            ),
            hide_index=True,
        )
    elif check.blocked:
        st.warning(check.blocked)
    reason = None
    if not settings.smtp_configured:
        reason = "Sending is not set up (CRM_SMTP_HOST)."
    elif not writable:
        reason = "Managers cannot launch campaigns."
    if reason:
        st.caption(reason)
    if st.button(
        "Launch…",
        type="primary",
        icon=":material/rocket_launch:",
        disabled=bool(reason or check.blocked),
        key=f"launch_{detail.id}",
    ):
        st.session_state[DIALOG] = ("launch", detail.id, detail.name, check.eligible)
        st.rerun()


@st.cache_data(ttl=15, show_spinner=False)
def load_report(url: str, campaign_id: int) -> dict:
    return campaign_figures.report(common.engine(), campaign_id)


def report_section(detail: campaigns.CampaignDetail) -> None:
    """The honest numbers: people, not messages; replies and interest first."""
    result = load_report(common.database_key(), detail.id)
    totals = result["totals"]

    def shown(row: dict, name: str) -> str:
        """A figure of one row (a step, or All) as shown, noted for the consistency test."""
        subject = f"{detail.name} · step {row.get('step', 'All')}"
        return common.figure_text(f"campaign.{name}", row[name], subject=subject)

    if not totals["people_delivered"]:
        st.info(
            "Nobody has been delivered a message of this campaign yet: its figures start "
            "with the first delivery.",
            icon=":material/schedule_send:",
        )
        return
    # The lead figures in one headline, replies and interest first (six metric cards
    # took longer to draw than the rest of the report; the table below has every count).
    st.markdown(
        f"#### {shown(totals, 'reply_rate')} replied · "
        f"{shown(totals, 'interested_rate')} interested\n"
        f"{shown(totals, 'people_replied')} people replied and "
        f"{shown(totals, 'people_interested')} said they are interested, of the "
        f"{shown(totals, 'people_delivered')} people delivered "
        f"at least one message. {shown(totals, 'open_rate')} opened one, "
        f"{shown(totals, 'click_rate')} clicked; {shown(totals, 'people_unsubscribed')} people "
        f"unsubscribed. {shown(totals, 'messages_sent')} messages sent, "
        f"{shown(totals, 'bounced')} bounced.  \n"
        ":gray["
        + engagement.opens_explained(
            people_opened=totals["people_opened"],
            apple_privacy_people=totals["apple_privacy_people"],
            scanner_opens=totals["scanner_opens"],
        )
        + " Rates are of the people delivered; a step's, of the people delivered that step.]",
    )
    rows = [*result["steps"], {"step": "All", **totals}]

    def with_rate(row: dict, count: str, rate_name: str) -> str:
        return f"{shown(row, count)} ({shown(row, rate_name)})"

    # A plain table (one markdown element): a data grid for four rows took as long to draw
    # as the rest of the report.
    columns = {
        "Step": lambda r: f"**{r['step']}**",
        "People delivered": lambda r: shown(r, "people_delivered"),
        "Replied": lambda r: with_rate(r, "people_replied", "reply_rate"),
        "Interested": lambda r: with_rate(r, "people_interested", "interested_rate"),
        "Opened": lambda r: with_rate(r, "people_opened", "open_rate"),
        "Clicked": lambda r: with_rate(r, "people_clicked", "click_rate"),
        "Unsubscribed": lambda r: with_rate(r, "people_unsubscribed", "unsubscribe_rate"),
        "Apple privacy only (people)": lambda r: shown(r, "apple_privacy_people"),
        "Scanner opens": lambda r: shown(r, "scanner_opens"),
        "Messages sent": lambda r: shown(r, "messages_sent"),
        "Bounced (messages)": lambda r: shown(r, "bounced"),
    }
    st.markdown(
        "| "
        + " | ".join(columns)
        + " |\n| "
        + " | ".join("---" for _ in columns)
        + " |\n"
        + "\n".join("| " + " | ".join(cell(r) for cell in columns.values()) + " |" for r in rows)
    )
    st.caption(
        "Replied to opened count people: a step's row, the people delivered that step's "
        "message and what they did with it; the All row counts each person once."
    )
    if writable and st.button(
        "Mark replies by hand…", icon=":material/mark_email_read:", key=f"replies_{detail.id}"
    ):
        st.session_state[DIALOG] = ("replies", detail.id)
        st.rerun()


def hires_section(detail: campaigns.CampaignDetail) -> None:
    """The funnel from delivered to hired, and the applications the campaign brought."""
    result = load_report(common.database_key(), detail.id)
    funnel_section(detail)
    attributed = campaign_figures.attributed_applications(engine, detail.id)
    if attributed:
        subject = f"{detail.name} · step All"
        applications = common.figure_text(
            "campaign.applications", result["applications"], subject=subject
        )
        hires = common.figure_text("campaign.hires", result["hires"], subject=subject)
        (st.markdown(f"**Applications from this campaign** ({applications}, {hires} hired)"),)
        st.dataframe(
            pd.DataFrame(
                {
                    "Person": [a.name for a in attributed],
                    "Job": [a.job for a in attributed],
                    "Stage": [a.stage for a in attributed],
                    "Applied": [a.applied_at for a in attributed],
                    "Hired": [a.hired_at for a in attributed],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption(
            "No applications are attributed to this campaign yet: when someone it reached "
            "applies, record the application with this campaign as its source."
        )


@st.dialog(
    "Mark replies by hand", width="large", on_dismiss=lambda: st.session_state.pop(DIALOG, None)
)
def replies_dialog(campaign_id: int) -> None:
    st.caption(
        "Without a mailbox connection (CRM_IMAP_HOST) the app cannot see replies. Paste the "
        "addresses of people who answered, one per line, or upload a CSV with an email column."
    )
    pasted = st.text_area("Addresses", key=f"replies_text_{campaign_id}")
    upload = st.file_uploader("Or a CSV file", type=["csv"], key=f"replies_csv_{campaign_id}")
    answer = st.segmented_control(
        "They said", ["replied", "interested", "not now"], default="replied",
        key=f"replies_answer_{campaign_id}",
    )  # fmt: skip
    if st.button("Mark replies", key=f"replies_go_{campaign_id}"):
        addresses = [line.strip() for line in pasted.splitlines() if line.strip()]
        if upload is not None:
            addresses += campaigns.addresses_in_csv(upload.getvalue())
        if not addresses:
            st.warning("Paste some addresses or upload a CSV first.")
            return
        marked = engagement.mark_replies_from_addresses(
            engine,
            actor=user,
            addresses=addresses,
            answer={"interested": "interested", "not now": "not_now"}.get(answer or ""),
        )
        message = f"Marked {marked.marked:,} replies."
        if marked.unknown:
            shown = ", ".join(marked.unknown[:10]) + ("…" if len(marked.unknown) > 10 else "")
            message += f" {len(marked.unknown):,} addresses matched nobody: {shown}"
        finish(message)


@st.cache_data(ttl=10, show_spinner=False)
def load_step_counts(url: str, campaign_id: int) -> list[campaign_figures.StepCounts]:
    return campaign_figures.step_counts(common.engine(), campaign_id)


@st.cache_data(ttl=10, show_spinner=False)
def load_outbox(
    url: str, campaign_id: int, status: str | None, step: int | None, search: str, page: int
) -> tuple[list[outbox_view.OutboxRow], int]:
    return outbox_view.outbox(
        common.engine(), campaign_id, status=status, step=step, search=search,
        limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE,
    )  # fmt: skip


def funnel_section(detail: campaigns.CampaignDetail) -> None:
    """From people delivered to hires (Altair)."""
    result = load_report(common.database_key(), detail.id)
    totals = result["totals"]
    funnel = pd.DataFrame(
        {
            "stage": ["Delivered", "Opened", "Clicked", "Replied", "Applications", "Hires"],
            "count": [
                totals["people_delivered"],
                totals["people_opened"],
                totals["people_clicked"],
                totals["people_replied"],
                result["applications"],
                result["hires"],
            ],
        }
    )
    chart = (
        alt.Chart(funnel)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            y=alt.Y("stage:N", sort=list(funnel["stage"]), title=None),
            x=alt.X("count:Q", title="People, then applications"),
            tooltip=["stage", "count"],
        )
        .properties(height=220)
    )
    labels = chart.mark_text(align="left", dx=4).encode(text="count:Q")
    st.altair_chart(chart + labels, width="stretch")
    st.caption(
        "People delivered at least one message, and of them the people who opened (by "
        "hand, not Apple's prefetch or scanners), clicked and replied; then the applications "
        "attributed to this campaign and the hires among them (one person may apply twice)."
    )


def progress_section(detail: campaigns.CampaignDetail) -> None:
    st.subheader("Steps", anchor=False)
    st.caption(
        "Messages by status. Cancelled: stopped after it was planned (a reply, an "
        "unsubscribe, the campaign cancelled); skipped: never due to go. Each with its reasons."
    )
    rows = load_step_counts(common.database_key(), detail.id)
    for row in rows:  # the table keeps numbers; noted as shown (they equal the report's)
        for status in ("failed", "needs_review", "cancelled", "skipped"):
            common.figure_text(
                f"campaign.{status}", row.counts[status], subject=f"{detail.name} · step {row.step}"
            )
    st.dataframe(
        pd.DataFrame(
            {
                "Step": [r.step for r in rows],
                "Subject": [r.subject for r in rows],
                **{
                    label.capitalize(): [r.counts[status] for r in rows]
                    for status, label in campaign_figures.OUTBOX_LABELS.items()
                    if status != "sending"
                },
                "Why cancelled": [
                    "; ".join(f"{n:,} {why}" for why, n in r.cancelled_reasons.items())
                    for r in rows
                ],
                "Why skipped": [
                    "; ".join(f"{n:,} {why}" for why, n in r.skipped_reasons.items()) for r in rows
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    review = sum(r.counts["needs_review"] for r in rows)
    if review:
        st.warning(
            f"{review} message(s) need review: the connection was lost after the server took "
            "the message, or the sender stopped mid-message. Open each below and say whether "
            "it arrived; they are never resent on their own.",
            icon=":material/help:",
        )

    st.subheader("Outbox", anchor=False)
    f1, f2, f3 = st.columns([2, 1, 3])
    status = f1.selectbox(
        "Status", [None, *campaign_figures.OUTBOX_LABELS],
        format_func=lambda s: "any" if s is None else campaign_figures.OUTBOX_LABELS[s],
        key=f"outbox_status_{detail.id}",
    )  # fmt: skip
    step = f2.selectbox(
        "Step", [None, *range(1, len(detail.steps) + 1)],
        format_func=lambda s: "any" if s is None else str(s),
        key=f"outbox_step_{detail.id}",
    )  # fmt: skip
    search = f3.text_input("Search name or address", key=f"outbox_search_{detail.id}")
    page = st.session_state.get(f"outbox_page_{detail.id}", 1)
    rows_page, total = load_outbox(common.database_key(), detail.id, status, step, search, page)
    if not total:
        st.caption("No messages match.")
        return
    frame = pd.DataFrame(
        {
            "Step": [r.step for r in rows_page],
            "Person": [r.name for r in rows_page],
            "Address": [r.to_address or "" for r in rows_page],
            "Status": [campaign_figures.OUTBOX_LABELS[r.status] for r in rows_page],
            "Due": [r.due_at for r in rows_page],
            "Sent": [r.sent_at for r in rows_page],
            "Attempts": [r.attempts for r in rows_page],
            "Detail": [r.detail or "" for r in rows_page],
        }
    )
    selection = st.dataframe(
        frame, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
        key=f"outbox_table_{detail.id}_{page}_{status}_{step}_{search}",
        column_config={
            "Due": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
            "Sent": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
        },
    )  # fmt: skip
    pages = max(1, -(-total // PAGE_SIZE))
    st.caption(f"{total:,} messages · page {page} of {pages}")
    if pages > 1:
        st.number_input(
            "Page",
            min_value=1,
            max_value=pages,
            key=f"outbox_page_{detail.id}",
            label_visibility="collapsed",
        )
    chosen = selection.selection.rows
    if chosen:
        message_view(rows_page[chosen[0]])


def message_view(row: outbox_view.OutboxRow) -> None:
    sent = outbox_view.message(engine, row.id)
    with st.container(border=True):
        st.markdown(
            f"**{common.md(row.name)}** · {common.md(row.to_address or '')} · "
            f"{campaign_figures.OUTBOX_LABELS[row.status]}"
        )
        if sent.subject is None:
            st.caption("Not sent yet: the message is rendered when it goes out.")
        elif sent.text is None:
            st.caption(f"Subject: {sent.subject}. The body of this message was not kept.")
        else:
            st.text_input(
                "Subject", value=sent.subject, disabled=True, key=f"sent_subject_{row.id}"
            )
            html_tab, text_tab = st.tabs(["HTML", "Plain text"])
            with html_tab:
                sandboxed(mailer.RenderedEmail(sent.subject, sent.text or "", sent.html or ""))
            with text_tab:
                st.code(sent.text or "", language=None, wrap_lines=True)
        if row.status == "needs_review" and writable:
            st.caption(row.detail or "")
            arrived, again = st.columns(2)
            if arrived.button("It arrived", key=f"review_yes_{row.id}", icon=":material/done:"):
                campaign_lifecycle.resolve_review(
                    engine, actor=user, outbox_id=row.id, arrived=True
                )
                finish("Marked as arrived; the next step is scheduled.")
            if again.button("Send it again", key=f"review_no_{row.id}", icon=":material/replay:"):
                campaign_lifecycle.resolve_review(
                    engine, actor=user, outbox_id=row.id, arrived=False
                )
                finish("Queued to be sent again.")


def campaign_section(campaign_id: int) -> None:
    try:
        detail = campaigns.get_campaign(engine, campaign_id)
    except CrmError:
        st.session_state.pop(SELECTED, None)
        return
    st.header(common.md(detail.name), anchor=False, divider="gray")
    sender_name, sender_address = detail.sender_name, detail.sender_email
    if not sender_address and settings.smtp:
        sender_name, sender_address = mailer.split_sender(settings.smtp.sender)
    sender = (
        mailer.format_sender(sender_name, sender_address) if sender_address else "no sender set"
    )
    about = (
        f"{detail.status.capitalize()} · to {common.md(detail.audience)} · from "
        f"{common.md(sender)}"
        + (f" · launched {figures.ago(detail.launched_at)}" if detail.launched_at else "")
    )
    if detail.launch_summary:
        summary = detail.launch_summary
        skipped = summary.get("skipped") or {}
        about += (
            f"  \nAt launch: {summary.get('enrolled', 0):,} of {summary.get('audience', 0):,} "
            "enrolled"
            + (
                "; skipped "
                + "; ".join(
                    f"{n:,} {campaign_lifecycle.SKIP_REASONS.get(k, k)}" for k, n in skipped.items()
                )
                if skipped
                else ""
            )
        )
    lines = []
    for number, step in enumerate(detail.steps, start=1):
        window = send_window.describe(send_window.parse_window(step.send_window))
        delay = (
            "at launch"
            if number == 1 and not step.delay_days
            else f"{step.delay_days} days after the {'previous step' if number > 1 else 'launch'}"
        )
        subject = common.md(step.subject)
        lines.append(f"**Step {number}**: {subject} · {delay} · {common.md(window)}")
    st.caption("  \n".join([about, *lines]))  # one block: who, when, and each step
    if detail.pause_reason and detail.status == "paused":
        st.warning(common.md(detail.pause_reason), icon=":material/pause_circle:")

    if writable and detail.status in {"draft", "active", "paused"}:
        buttons = st.container(horizontal=True)
        if detail.status == "draft":
            if buttons.button("Edit", icon=":material/edit:"):
                load_into_composer(detail)
                st.session_state[NEXT_VIEW] = "Compose"
                st.rerun()
            if buttons.button("Delete draft", icon=":material/delete:"):
                campaigns.delete_campaign(engine, actor=user, campaign_id=detail.id)
                st.session_state.pop(SELECTED, None)
                finish(f"Deleted the draft {detail.name!r}.")
        if detail.status == "active" and buttons.button("Pause", icon=":material/pause:"):
            campaign_lifecycle.pause(engine, actor=user, campaign_id=detail.id)
            finish("Paused; nothing more goes out until you resume.")
        if detail.status == "paused" and buttons.button("Resume", icon=":material/play_arrow:"):
            moved = campaign_lifecycle.resume(engine, actor=user, campaign_id=detail.id)
            finish(f"Resumed; {moved:,} overdue messages re-spaced from now.")
        if detail.status in {"active", "paused"} and buttons.button(
            "Cancel…", icon=":material/cancel:"
        ):
            st.session_state[DIALOG] = ("cancel", detail.id, detail.name)
            st.rerun()

    if detail.status == "draft":
        preview_section(detail)
        launch_section(detail)
    else:
        # One part at a time: a big campaign's outbox, funnel and preview cost nothing
        # until asked.
        part = st.segmented_control(
            "Show",
            ["Results", "Funnel and hires", "Steps and outbox", "Preview"],
            default="Results",
            key=f"campaign_part_{detail.id}",
            label_visibility="collapsed",
        )
        if part == "Steps and outbox":
            progress_section(detail)
        elif part == "Funnel and hires":
            hires_section(detail)
        elif part == "Preview":
            preview_section(detail)
        else:
            report_section(detail)


# --- the page ---------------------------------------------------------------------------

views = ["Campaigns", "Compose"] if writable else ["Campaigns"]
if PREFILL in st.session_state and writable:
    st.session_state[NEXT_VIEW] = "Compose"
if NEXT_VIEW in st.session_state:
    st.session_state[VIEW] = st.session_state.pop(NEXT_VIEW)
if st.session_state.get(VIEW) not in views:
    st.session_state[VIEW] = "Campaigns"
view = st.segmented_control("View", views, key=VIEW, label_visibility="collapsed") or "Campaigns"

if view == "Compose":
    compose_view()
else:
    summaries = load_summaries(common.database_key())
    opened = st.session_state.get(SELECTED) in {s.id for s in summaries}
    if writable and not opened and st.button("New campaign", icon=":material/add:"):
        load_into_composer(None)
        st.session_state[NEXT_VIEW] = "Compose"
        st.rerun()
    if not summaries:
        st.info(
            "No campaigns yet. Write a short sequence with **New campaign**, aim it at a "
            "talent pool, preview it for anyone in it and launch it; or bring a campaign "
            "file with `crm campaign import FILE`."
        )
    elif opened:
        # One campaign at a time, its report in place of the list (the list's table and the
        # report's together took twice a plain page's time to draw).
        st.button(
            "All campaigns",
            icon=":material/arrow_back:",
            type="tertiary",
            key="campaigns_back",
            on_click=lambda: st.session_state.pop(SELECTED, None),
        )
        campaign_section(st.session_state[SELECTED])
    else:

        def listed(summary: campaign_figures.CampaignSummary, name: str) -> str:
            """A figure of the list as shown, noted (it must equal the report's All row)."""
            subject = f"{summary.name} · step All"
            return common.figure_text(f"campaign.{name}", getattr(summary, name), subject=subject)

        for summary in summaries:  # the counts stay numbers (the table sorts them)
            for name in (
                "messages_sent",
                "queued",
                "failed",
                "people_delivered",
                "people_unsubscribed",
            ):
                listed(summary, name)
        frame = pd.DataFrame(
            {
                "Campaign": [s.name for s in summaries],
                "Status": [s.status for s in summaries],
                "Audience": [s.audience or "hand-picked" for s in summaries],
                "Steps": [s.steps for s in summaries],
                "Messages sent": [s.messages_sent for s in summaries],
                "Queued": [s.queued for s in summaries],
                "Failed": [s.failed for s in summaries],
                "People delivered": [s.people_delivered for s in summaries],
                "Reply rate": [listed(s, "reply_rate") for s in summaries],
                "Click rate": [listed(s, "click_rate") for s in summaries],
                "Open rate": [listed(s, "open_rate") for s in summaries],
                "Unsubscribed (people)": [s.people_unsubscribed for s in summaries],
            }
        )
        selection = st.dataframe(
            frame, hide_index=True, width="stretch", on_select="rerun",
            selection_mode="single-row", key="campaigns_table",
        )  # fmt: skip
        st.caption(
            "Select a campaign to preview, launch or follow it. Rates count people, not "
            "messages: of the people delivered at least one message, the share who replied, "
            "clicked or opened (by hand; Apple's prefetches and scanners left out), each "
            "person once however many steps reached them."
        )
        if selection.selection.rows:
            st.session_state[SELECTED] = summaries[selection.selection.rows[0]].id
            st.rerun()

dialog = st.session_state.get(DIALOG)
if dialog and dialog[0] == "launch":
    launch_dialog(*dialog[1:])
elif dialog and dialog[0] == "cancel":
    cancel_dialog(*dialog[1:])
elif dialog and dialog[0] == "replies" and writable:
    replies_dialog(dialog[1])
