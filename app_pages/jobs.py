"""Jobs: open roles, who is in each pipeline at which stage, offers, and hiring costs.

Admins and recruiters change things; managers see everything with the controls disabled
(the services refuse them anyway).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import streamlit as st

from app_pages import common
from crm import campaign_figures, candidates, clock, goals, jobs, metrics, money, pools
from crm.errors import CrmError
from crm.models import APPLICATION_SOURCES, APPLICATION_STAGES, COST_CATEGORIES

VIEW = "jobs_view"
SELECTED = "jobs_open"  # the job shown under the table (kept while the session lasts)
DIALOG = "jobs_dialog"  # ("new",) or ("delete_cost", cost_id, label)
NOTICE = "jobs_notice"
JOB_TAB = "jobs_job_tab"  # the open tab of the job shown
NEXT_SELECTED = "jobs_next_selected"  # the job to open on the next run (set after the picker)
BOARD_STAGES = ("applied", "screen", "interview", "offer", "hired")
SIDE_STAGES = ("sourced", "rejected", "withdrew")
CARDS_PER_STAGE = 25
STATUS_LABELS = {"open": "Open", "on_hold": "On hold", "filled": "Filled", "closed": "Closed"}
STATUS_COLORS = {"open": "blue", "on_hold": "orange", "filled": "green", "closed": "gray"}

engine = common.engine()
user = common.current_user()
writable = common.can_write()
today = clock.today()


@st.cache_data(ttl=30, show_spinner=False)
def load_jobs(url: str) -> list[jobs.JobSummary]:
    return jobs.list_jobs(common.engine())


@st.cache_data(ttl=300, show_spinner=False)
def load_pools(url: str) -> dict[int, str]:
    return pools.pool_names(common.engine())


@st.cache_data(ttl=300, show_spinner=False)
def load_campaigns(url: str) -> dict[int, str]:
    return {c.id: c.name for c in campaign_figures.list_campaigns(common.engine())}


def finish(message: str, *, selected: int | None = None) -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    if selected is not None:
        st.session_state[NEXT_SELECTED] = selected
    load_jobs.clear()
    st.rerun()


def source_label(source: str) -> str:
    return metrics.SOURCE_LABELS.get(source, source.replace("_", " ").capitalize())


# --- dialogs ----------------------------------------------------------------------------


@st.dialog("New job", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def new_job_dialog(families: list[str]) -> None:
    with st.form("job_form", border=False):
        title = st.text_input("Title", key="job_title", max_chars=160)
        left, right = st.columns(2)
        family = left.selectbox(
            "Role family",
            families,
            index=None,
            accept_new_options=True,
            placeholder="Pick or type one",
            key="job_family",
        )
        manager = right.text_input("Hiring manager", key="job_manager", max_chars=120)
        left, right = st.columns(2)
        location = left.text_input("Location", key="job_location", max_chars=120)
        opened = right.date_input("Opened", value=today, key="job_opened")
        key_role = st.checkbox(
            "Key role", key="job_key_role", help="Goals can be set for key roles only."
        )
        submitted = st.form_submit_button("Create job", type="primary", icon=":material/add:")
    if not submitted:
        return
    try:
        job_id = jobs.create_job(
            engine,
            actor=user,
            title=title,
            role_family=family or None,
            key_role=key_role,
            hiring_manager=manager or None,
            location=location or None,
            opened_at=opened,
        )
    except CrmError as error:
        st.error(str(error), icon=":material/error:")
        return
    for key in [k for k in st.session_state if str(k).startswith("job_")]:
        del st.session_state[key]
    finish(f"Created the job {' '.join(title.split())!r}.", selected=job_id)


@st.dialog("Delete cost", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def delete_cost_dialog(cost_id: int, label: str) -> None:
    st.write(f"Delete the cost {common.md(label)}? Cost-per-hire figures change with it.")
    if st.button("Delete the cost", type="primary", icon=":material/delete:", key="cost_delete"):
        try:
            jobs.delete_cost(engine, actor=user, cost_id=cost_id)
        except CrmError as error:
            st.error(str(error))
        else:
            finish(f"Deleted the cost {label}.")


# --- sections ---------------------------------------------------------------------------


def jobs_table(summaries: list[jobs.JobSummary]) -> None:
    rows = []
    for job in summaries:
        row = {
            "id": job.id,
            "title": job.title,
            "role family": job.role_family or "",
            "key role": job.key_role,
            "hiring manager": job.hiring_manager or "",
            "status": STATUS_LABELS.get(job.status, job.status),
            "opened": job.opened_at,
            "filled": job.filled_at,
        }
        for stage in APPLICATION_STAGES:
            if stage not in jobs.OUTCOME_STAGES:
                row[jobs.STAGE_LABELS[stage].lower()] = job.stage_counts.get(stage, 0)
        row["rejected or withdrew"] = sum(job.stage_counts.get(s, 0) for s in jobs.OUTCOME_STAGES)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame["sourced"].any():
        frame = frame.drop(columns="sourced")

    def pick() -> None:
        event = st.session_state.get("jobs_table")
        chosen = event.selection.rows if event else []
        if chosen:
            st.session_state[SELECTED] = int(frame.iloc[chosen[0]]["id"])
        else:
            st.session_state.pop(SELECTED, None)

    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key="jobs_table",
        on_select=pick,
        selection_mode="single-row",
        column_order=[c for c in frame.columns if c != "id"],
        column_config={
            "title": st.column_config.TextColumn(width="medium", pinned=True),
            "role family": st.column_config.TextColumn(width="small"),
            "hiring manager": st.column_config.TextColumn(width="small"),
            **{
                jobs.STAGE_LABELS[stage].lower(): st.column_config.NumberColumn(width=60)
                for stage in APPLICATION_STAGES
            },
            "rejected or withdrew": st.column_config.NumberColumn("out", width=50),
            "key role": st.column_config.CheckboxColumn(width=70),
            "opened": st.column_config.DateColumn(format="DD MMM YYYY"),
            "filled": st.column_config.DateColumn(format="DD MMM YYYY"),
        },
    )


def person_card(view: jobs.ApplicationView) -> None:
    """One person on the board: a link to the profile, with where they came from and since
    when in grey (one element per person: a board of cards in boxes took twice as long to
    draw)."""
    since = f" · since {view.stage_at:%d %b}" if view.stage_at else ""
    offer = ""
    if view.offer_accepted is True:
        offer = " · offer accepted"
    elif view.offer_accepted is False:
        offer = " · offer declined"
    elif view.offer_at is not None and view.stage == "offer":
        offer = " · offer out"
    details = f":gray[{common.md(source_label(view.source) + since + offer)}]"
    if view.candidate_id is None:
        st.markdown(f"*(erased)*  \n{details}")
        return
    st.page_link(
        "app_pages/profile.py",
        label=f"{common.md(view.candidate_name or '(no name)')}  \n{details}",
        query_params={"id": view.candidate_id},
    )


def pipeline_section(job: jobs.JobSummary) -> None:
    board = jobs.pipeline(engine, job.id)
    everyone = {view.id: view for views in board.values() for view in views}
    if not everyone:
        st.info(
            "Nobody is on this pipeline yet. Add one on the Add a person tab.",
            icon=":material/person_add:",
        )
        return
    # The two forms wait in popovers: drawn on every visit they cost more than the board.
    with st.container(horizontal=True):
        move_form(job, everyone)
        offer_form(job, everyone)
    columns = st.columns(len(BOARD_STAGES))
    for column, stage in zip(columns, BOARD_STAGES, strict=True):
        with column:
            st.markdown(f"**{jobs.STAGE_LABELS[stage]}** · {len(board[stage]):,}")
            for view in board[stage][:CARDS_PER_STAGE]:
                person_card(view)
            hidden = len(board[stage]) - CARDS_PER_STAGE
            if hidden > 0:
                st.caption(f"and {hidden:,} more")
    st.caption(" · ".join(f"{jobs.STAGE_LABELS[s]}: {len(board[s]):,}" for s in SIDE_STAGES))
    side = [(stage, view) for stage in SIDE_STAGES for view in board[stage]]
    if side:
        with st.expander("Sourced, rejected and withdrew"):
            st.markdown(
                "  \n".join(
                    f"{common.md(view.candidate_name or '(no name)')} · "
                    f"{jobs.STAGE_LABELS[stage].lower()}"
                    for stage, view in side
                )
            )


def move_form(job: jobs.JobSummary, everyone: dict[int, jobs.ApplicationView]) -> None:
    with (
        st.popover("Move someone", icon=":material/arrow_forward:", disabled=not writable),
        st.form(f"jobs_move_form_{job.id}", border=False),
    ):
        person = st.selectbox(
            "Person",
            list(everyone),
            format_func=lambda aid: (
                f"{everyone[aid].candidate_name or '(no name)'} "
                f"({jobs.STAGE_LABELS[everyone[aid].stage].lower()})"
            ),
            key=f"jobs_move_person_{job.id}",
        )
        stage = st.selectbox(
            "To stage",
            APPLICATION_STAGES,
            index=APPLICATION_STAGES.index("screen"),
            format_func=jobs.STAGE_LABELS.get,
            key=f"jobs_move_stage_{job.id}",
        )
        if st.form_submit_button("Move", icon=":material/arrow_forward:", disabled=not writable):
            try:
                jobs.move_stage(engine, actor=user, application_id=person, stage=stage)
            except CrmError as error:
                st.error(str(error))
            else:
                name = everyone[person].candidate_name or "(no name)"
                finish(f"Moved {name} to {jobs.STAGE_LABELS[stage].lower()}.")


def offer_form(job: jobs.JobSummary, everyone: dict[int, jobs.ApplicationView]) -> None:
    offers = {aid: view for aid, view in everyone.items() if view.stage == "offer"}
    with (
        st.popover("Record an offer decision", icon=":material/handshake:", disabled=not writable),
        st.form(f"jobs_offer_form_{job.id}", border=False),
    ):
        if not offers:
            st.caption("Nobody has an offer out. Move someone to Offer first.")
        chosen = st.selectbox(
            "Person with an offer",
            list(offers),
            format_func=lambda aid: offers[aid].candidate_name or "(no name)",
            key=f"jobs_offer_person_{job.id}",
        )
        accept, decline = st.columns(2)
        accepted = accept.form_submit_button(
            "Accepted", icon=":material/thumb_up:", disabled=not writable or not offers
        )
        declined = decline.form_submit_button(
            "Declined", icon=":material/thumb_down:", disabled=not writable or not offers
        )
        if (accepted or declined) and chosen is not None:
            try:
                jobs.record_offer(engine, actor=user, application_id=chosen, accepted=accepted)
            except CrmError as error:
                st.error(str(error))
            else:
                name = offers[chosen].candidate_name or "(no name)"
                finish(f"Recorded: {name} {'accepted' if accepted else 'declined'} the offer.")


def add_person_section(job: jobs.JobSummary) -> None:
    query = st.text_input(
        "Find a person",
        key=f"jobs_find_{job.id}",
        placeholder="Name or email",
        disabled=not writable,
    )
    found = {}
    if query.strip():
        for row in candidates.search(engine, text=query, page_size=20).rows:
            found[row["id"]] = (
                f"{common.person_name(row['first_name'], row['last_name'])} "
                f"<{row['email'] or 'no email'}>"
            )
        if not found:
            st.caption("Nobody matches. Add them on the Candidates page first.")
    pool_names = load_pools(common.database_key())
    campaign_names = load_campaigns(common.database_key())
    with st.form(f"jobs_add_form_{job.id}"):
        a, b, c = st.columns([3, 2, 2])
        person = a.selectbox(
            "Person",
            list(found),
            format_func=found.get,
            placeholder="Search above first",
            key=f"jobs_add_person_{job.id}",
        )
        source = b.selectbox(
            "Source", APPLICATION_SOURCES, format_func=source_label, key=f"jobs_add_source_{job.id}"
        )
        stage = c.selectbox(
            "Stage",
            ("sourced", "applied", "screen", "interview"),
            index=1,
            format_func=jobs.STAGE_LABELS.get,
            key=f"jobs_add_stage_{job.id}",
        )
        a, b = st.columns(2)
        pool_id = a.selectbox(
            "From talent pool (optional)",
            [None, *pool_names],
            format_func=lambda pid: "None" if pid is None else pool_names[pid],
            key=f"jobs_add_pool_{job.id}",
        )
        campaign_id = b.selectbox(
            "From campaign (optional)",
            [None, *campaign_names],
            format_func=lambda cid: "None" if cid is None else campaign_names[cid],
            key=f"jobs_add_campaign_{job.id}",
        )
        if st.form_submit_button(
            "Add to the pipeline", icon=":material/person_add:", disabled=not writable
        ):
            if person is None:
                st.error("Find the person by name or email, then pick them.")
                return
            try:
                jobs.add_application(
                    engine,
                    actor=user,
                    job_id=job.id,
                    candidate_id=person,
                    source=source,
                    pool_id=pool_id,
                    campaign_id=campaign_id,
                    stage=stage,
                )
            except CrmError as error:
                st.error(str(error))
            else:
                st.session_state.pop(f"jobs_find_{job.id}", None)
                finish(f"Added {found[person].split(' <')[0]} to {job.title}.")


def cost_total(summed: metrics.CostTotal) -> str:
    """'3 costs, 1,450 EUR in all.', each cost counted in the team currency."""
    plural = "" if summed.costs == 1 else "s"
    total = common.figure_text("jobs.cost_total", summed.total, exact=True)
    text = f"{summed.costs:,} cost{plural}, {total} in all"
    # Stored before rates were required; the note beside it says which.
    return text + (f" ({summed.left_out:,} left out)." if summed.left_out else ".")


def costs_section(job: jobs.JobSummary | None, summaries: list[jobs.JobSummary]) -> None:
    """Costs of one job, or of every job and the team in a period."""
    suffix = job.id if job else "all"
    start = end = None
    if job is None:
        period = st.date_input(
            "Incurred between",
            value=(today - dt.timedelta(days=89), today),
            key="jobs_cost_period",
        )
        if isinstance(period, tuple | list) and len(period) == 2:
            start, end = period
    team = money.team_money(engine)
    job_id = job.id if job else None
    costs = jobs.list_costs(engine, start=start, end=end, job_id=job_id)
    if costs:
        note = money.figures_note(engine)
        summed = metrics.cost_total(engine, start=start, end=end, job_id=job_id)
        st.caption(cost_total(summed) + (f" {note}" if note else ""))
        st.dataframe(
            pd.DataFrame(
                {
                    "date": [c.incurred_on for c in costs],
                    "category": [c.category_text for c in costs],
                    "amount": [float(c.amount) for c in costs],
                    "currency": [c.currency for c in costs],
                    "job": [c.job_title or "(team)" for c in costs],
                    "note": [c.note or "" for c in costs],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "date": st.column_config.DateColumn(format="DD MMM YYYY"),
                "amount": st.column_config.NumberColumn(format="%.2f"),
            },
        )
        labels = {
            c.id: f"{c.incurred_on:%d %b %Y} · {c.category_text} · {c.amount:,.2f} {c.currency}"
            for c in costs
        }
        a, b = st.columns([3, 1], vertical_alignment="bottom")
        doomed = a.selectbox(
            "Cost to delete",
            list(labels),
            format_func=labels.get,
            key=f"jobs_cost_pick_{suffix}",
        )
        if b.button(
            "Delete…",
            icon=":material/delete:",
            key=f"jobs_cost_delete_{suffix}",
            disabled=not writable,
        ):
            st.session_state[DIALOG] = ("delete_cost", doomed, labels[doomed])
    else:
        st.info(
            "No costs recorded for this job yet. Add job ads, agency fees or recruiter time "
            "below; cost-per-hire counts them."
            if job
            else "No costs in this period. Add one below; cost-per-hire counts them.",
            icon=":material/payments:",
        )
    with st.form(f"jobs_cost_form_{suffix}"):
        st.markdown("**Add cost**")
        a, b, c, d = st.columns([3, 2, 1, 2])
        category = a.selectbox(
            "Category",
            COST_CATEGORIES,
            format_func=jobs.COST_LABELS.get,
            key=f"jobs_cost_category_{suffix}",
        )
        # No min_value: a negative or zero amount gets the service's sentence rather than
        # a silent red box.
        amount = b.number_input(
            "Amount",
            value=None,
            step=100.0,
            format="%.2f",
            key=f"jobs_cost_amount_{suffix}",
        )
        # Only currencies the team can count: the others would be refused (crm.money).
        currency = c.selectbox(
            "Currency",
            [team.currency, *sorted(team.rates)],
            key=f"jobs_cost_currency_{suffix}",
            help="The team's currency, or one an admin has entered a rate for in Settings → Money.",
        )
        incurred = d.date_input("Date", value=today, key=f"jobs_cost_date_{suffix}")
        own_name = st.text_input(
            "Or its own name",
            max_chars=money.LABEL_LIMIT,
            placeholder="Sign-on bonus, relocation, background check…",
            key=f"jobs_cost_label_{suffix}",
            help="Used instead of the category: a usual name for one of the categories is "
            "filed under it, anything else under Other with this name.",
        )
        job_options = {j.id: j.title for j in summaries}
        if job is None:
            job_id = st.selectbox(
                "For job",
                [None, *job_options],
                format_func=lambda jid: "The team (no job)" if jid is None else job_options[jid],
                key="jobs_cost_job_all",
            )
        else:
            job_id = job.id
        note = st.text_input("Note", max_chars=300, key=f"jobs_cost_note_{suffix}")
        if st.form_submit_button("Add cost", icon=":material/add:", disabled=not writable):
            if amount is None:
                st.error("Give the amount.")
                return
            try:
                jobs.add_cost(
                    engine,
                    actor=user,
                    amount=Decimal(str(amount)),
                    category=own_name.strip() or category,
                    incurred_on=incurred,
                    job_id=job_id,
                    note=note or None,
                    currency=currency,
                )
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"Added a cost of {Decimal(str(amount)):,.2f} {currency}.")


def status_form(job: jobs.JobSummary) -> None:
    choices = ["open", "on_hold", "closed"] + (["filled"] if job.status == "filled" else [])
    with st.popover("Change status", icon=":material/edit:", disabled=not writable):
        status = st.selectbox(
            "Status",
            choices,
            index=choices.index(job.status),
            format_func=STATUS_LABELS.get,
            key=f"jobs_status_{job.id}",
        )
        if st.button("Save status", key=f"jobs_status_save_{job.id}", disabled=not writable):
            try:
                jobs.update_job(engine, actor=user, job_id=job.id, status=status)
            except CrmError as error:
                st.error(str(error))
            else:
                finish(f"{job.title} is now {STATUS_LABELS[status].lower()}.")


def job_section(job: jobs.JobSummary, summaries: list[jobs.JobSummary]) -> None:
    """The job ticked in the table: its pipeline, the add-a-person form and its costs."""
    with st.container(border=True):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.subheader(common.md(job.title), anchor=False, width="content")
            st.badge(STATUS_LABELS[job.status], color=STATUS_COLORS[job.status])
            st.space("stretch")
            status_form(job)
            st.button(
                "Close",
                icon=":material/close:",
                key="jobs_close",
                type="tertiary",
                on_click=lambda: st.session_state.pop(SELECTED, None),
            )
        details = [
            job.role_family,
            "key role" if job.key_role else None,
            f"hiring manager {job.hiring_manager}" if job.hiring_manager else None,
            job.location,
            f"opened {job.opened_at:%d %b %Y}",
            f"filled {job.filled_at:%d %b %Y}" if job.filled_at else None,
        ]
        st.caption(common.md(" · ".join(d for d in details if d)))
        # Lazy tabs: only the open one runs and is drawn, so opening a job shows its
        # pipeline without waiting for the forms and tables of the other two.
        pipeline_tab, add_tab, costs_tab = st.tabs(
            ["Pipeline", "Add a person", "Costs"], key=JOB_TAB, on_change="rerun"
        )
        if pipeline_tab.open:
            with pipeline_tab:
                pipeline_section(job)
        if add_tab.open:
            with add_tab:
                add_person_section(job)
        if costs_tab.open:
            with costs_tab:
                costs_section(job, summaries)


# --- the page ---------------------------------------------------------------------------

st.title("Jobs", anchor=False)
common.read_only_caption()
if NOTICE in st.session_state:
    st.success(st.session_state.pop(NOTICE), icon=":material/check_circle:")

summaries = load_jobs(common.database_key())
families = goals.role_family_choices(common.engine())

top = st.container(horizontal=True, vertical_alignment="bottom")
with top:
    view = st.segmented_control(
        "View", ["Jobs", "Costs"], default="Jobs", required=True, key=VIEW,
        label_visibility="collapsed",
    )  # fmt: skip
    if st.button(
        "New job", icon=":material/add:", type="primary", key="jobs_new", disabled=not writable
    ):
        st.session_state[DIALOG] = ("new",)

if view == "Costs":
    st.subheader("Costs", anchor=False)
    costs_section(None, summaries)
elif not summaries:
    st.info(
        "No jobs yet. Create one with **New job**, then add people to its pipeline."
        if writable
        else "No jobs yet. An admin or a recruiter creates them here.",
        icon=":material/work:",
    )
else:
    status_filter = st.pills(
        "Status",
        list(STATUS_LABELS),
        selection_mode="multi",
        format_func=STATUS_LABELS.get,
        key="jobs_status_filter",
        help="None picked shows every job.",
    )
    shown = [j for j in summaries if not status_filter or j.status in status_filter]
    if shown:
        jobs_table(shown)
    else:
        st.info("No jobs with that status. Pick another status above.")
    by_id = {j.id: j for j in summaries}
    if st.session_state.get(NEXT_SELECTED) in by_id:
        st.session_state[SELECTED] = st.session_state.pop(NEXT_SELECTED)
    job = by_id.get(st.session_state.get(SELECTED))
    if job is None:
        st.caption(
            "Tick a job's row to open its pipeline: move people through the stages, add "
            "people and record its costs."
        )
    else:
        job_section(job, summaries)


dialog = st.session_state.get(DIALOG)
if writable and dialog and dialog[0] == "new":
    new_job_dialog(families)
elif writable and dialog and dialog[0] == "delete_cost":
    delete_cost_dialog(*dialog[1:])
