"""Talent pools: segments that stay current, hand-kept lists, stages and insight."""

import json

import pandas as pd
import streamlit as st

from app_pages import common, pool_builder
from crm import exporter, figures, pool_board, pool_filter, pools, touches
from crm.errors import CrmError

REFRESH_SECONDS = 10
VIEW = "pools_view"
VIEWS = ["Pools", "Build a pool", "Overlap"]
SELECTED = "pools_selected"
DIALOG = "pools_dialog"
NOTICE = "pools_notice"
POOL_TOUCH_HELP = (
    "When the pool as a whole was last reached: a campaign aimed at it sent, or content "
    "published to it. Contacting one member another way does not count."
)

engine = common.engine()
user = common.current_user()
writable = common.can_write()


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_pools(url: str) -> list[pools.PoolSummary]:
    return pools.list_pools(common.engine())


@st.cache_data(ttl=60, show_spinner=False)
def load_options(url: str) -> pools.FilterOptions:
    return pools.filter_options(common.engine())


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_preview(url: str, filter_text: str) -> tuple[pools.FilterPreview | None, str | None]:
    """The count and sample for a filter, or the sentence saying what is wrong with it."""
    try:
        return pools.preview_filter(common.engine(), json.loads(filter_text), sample=10), None
    except CrmError as error:
        return None, str(error)


def refresh() -> None:
    load_pools.clear()
    load_preview.clear()
    load_options.clear()


def finish(message: str, *, view: str | None = None, selected: int | None = None) -> None:
    """Close any dialog, keep the message for the next run, and rerun."""
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    if view:
        st.session_state["pools_next_view"] = view
    if selected is not None:
        st.session_state[SELECTED] = selected
    refresh()
    st.rerun()


def forget_dialog() -> None:
    st.session_state.pop(DIALOG, None)


def people_frame(rows: list[dict]) -> pd.DataFrame:
    """A few people (preview_filter rows) as a table, newest data, no HTML."""
    return pd.DataFrame(
        {
            "Name": [common.person_name(r["first_name"], r["last_name"]) for r in rows],
            "Title": [r["title"] or "" for r in rows],
            "Company": [r["company"] or "" for r in rows],
            "Location": [r["location"] or "" for r in rows],
            "Last contacted": [figures.ago(r["last_contacted_at"]) for r in rows],
        }
    )


@st.dialog("Delete pool", on_dismiss=forget_dialog)
def delete_dialog(pool_id: int, name: str) -> None:
    st.write(f"Delete the pool **{common.md(name)}**?")
    st.caption("The people stay in the database; the pool, its list and its stages go.")
    if st.button("Delete pool", type="primary"):
        try:
            pools.delete_pool(engine, actor=user, pool_id=pool_id)
        except CrmError as error:
            st.error(str(error))
            return
        st.session_state.pop(SELECTED, None)
        finish(f"Deleted the pool {common.md(name)}.")


def edit_in_builder(pool_id: int, filter_json: dict) -> None:
    if not pool_builder.load(filter_json, pool_id=pool_id):
        st.session_state["pools_json_text"] = json.dumps(filter_json, indent=2)
    st.session_state["pools_next_view"] = "Build a pool"


# --- the pools list -------------------------------------------------------------------------


def pools_view() -> None:
    summaries = load_pools(common.database_key())
    if not summaries:
        st.info(
            "There are no talent pools yet. Open **Build a pool** to make one from a filter "
            "(skills, location, engagement...), or load examples with `crm demo`."
        )
        return
    for summary in summaries:
        if summary.problem:
            st.warning(f"{common.md(summary.name)}: {common.md(summary.problem)}")
    for summary in summaries:  # the table keeps numbers (it sorts them); noted as shown
        common.figure_text("pool.size", summary.size, subject=summary.name)
        common.figure_text("pool.hires", summary.hires, subject=summary.name)
    frame = pd.DataFrame(
        {
            "Pool": [s.name for s in summaries],
            "Kind": ["stays current" if s.kind == "dynamic" else "list" for s in summaries],
            "People": [s.size for s in summaries],
            "New (90 days)": [s.growth for s in summaries],
            "Engaged (90 days)": [s.engagement_rate for s in summaries],
            touches.LABEL: [
                common.figure_text("pool.last_touch", s.last_touch, subject=s.name)
                for s in summaries
            ],
            "Hires (12 months)": [s.hires for s in summaries],
            "Owner": [s.owner or "" for s in summaries],
            "About": [s.description or "" for s in summaries],
        }
    )
    event = st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="pools_table",
        column_config={
            "People": st.column_config.NumberColumn(format="localized"),
            "Engaged (90 days)": st.column_config.ProgressColumn(
                format="percent",
                min_value=0.0,
                max_value=1.0,
                help="Members who opened, clicked or replied in the last 90 days",
            ),
            "New (90 days)": st.column_config.NumberColumn(
                help="Added to a list, or (dynamic pools) new in the database and matching"
            ),
            touches.LABEL: st.column_config.TextColumn(help=POOL_TOUCH_HELP),
        },
    )
    rows = event.selection.rows if event and event.selection else []
    if rows:
        st.session_state[SELECTED] = summaries[rows[0]].id
    chosen = next((s for s in summaries if s.id == st.session_state.get(SELECTED)), None)
    if chosen is None:
        st.caption(
            "Pick a pool to see its stages board, members and what is aimed at it. Sizes "
            f"refresh every {REFRESH_SECONDS} seconds; dynamic pools are counted from their "
            "filter, so someone imported a minute ago is already in."
        )
        return
    pool_detail(chosen)


def pool_detail(summary: pools.PoolSummary) -> None:
    pool = pools.get_pool(engine, summary.id)
    if pool is None:
        st.session_state.pop(SELECTED, None)
        st.warning("That pool was just deleted.")
        return
    st.subheader(pool.name, anchor=False, divider="gray")
    size = (
        f"{common.figure_text('pool.size', summary.size, subject=pool.name)} people"
        if summary.size is not None
        else "cannot be counted"
    )
    kind = "Dynamic: stays current" if pool.kind == "dynamic" else "Static list"
    st.caption(
        f"{kind} · {size} · owner {common.md(summary.owner or 'nobody')} · "
        f"{common.figure_text('pool.hires', summary.hires, subject=pool.name)} hire(s) from it "
        f"in 12 months · {touches.LABEL.lower()} "
        f"{common.figure_text('pool.last_touch', summary.last_touch, subject=pool.name)}",
        help=POOL_TOUCH_HELP,
    )
    if summary.problem:
        st.warning(common.md(summary.problem), icon=":material/error:")
    if pool.description:
        st.write(common.md(pool.description))
    if pool.kind == "dynamic":
        st.markdown("**Filter**")
        st.code(json.dumps(pool.filter, indent=2), language="json")
    buttons = st.columns(4)
    if pool.kind == "dynamic":
        buttons[0].button(
            "Edit filter",
            icon=":material/tune:",
            disabled=not writable,
            on_click=edit_in_builder,
            args=(pool.id, pool.filter),
        )
    buttons[1].download_button(
        "Export CSV",
        data=lambda: exporter.export_to_bytes(
            engine, actor=user, scope=exporter.ExportScope(pool_name=pool.name)
        )[0],
        file_name=f"{pool.name}.csv",
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        disabled=bool(summary.problem),  # nobody can be listed from it
    )
    if buttons[2].button("Delete", icon=":material/delete:", disabled=not writable):
        st.session_state[DIALOG] = ("delete", pool.id, pool.name)
        st.rerun()
    part = st.segmented_control(
        "Show",
        ["Stages board", "Members", "Campaigns and calendar"],
        default="Stages board",
        key=f"pool_part_{pool.id}",
        label_visibility="collapsed",
    )
    if part == "Members":
        members(pool)
    elif part == "Campaigns and calendar":
        aimed_at(pool.id)
    else:
        stages_board(pool)


def stage_editor(pool) -> None:
    with st.form(f"stages_{pool.id}"):
        text = st.text_area(
            "Stages, one per line, in order",
            value="\n".join(pool.stages or pool_board.DEFAULT_STAGES),
            height=160,
        )
        if st.form_submit_button("Save stages", disabled=not writable):
            try:
                saved = pool_board.set_stages(
                    engine, actor=user, pool_id=pool.id, stages=text.splitlines()
                )
            except CrmError as error:
                st.error(str(error))
                return
            finish(f"Saved {len(saved)} stages for {common.md(pool.name)}.")


def stages_board(pool) -> None:
    if not pool.stages:
        st.info(
            "This pool has no stages yet. Stages such as New, Contacted, Engaged, Interested "
            "and Not now show where each member stands."
        )
        stage_editor(pool)
        return
    try:
        board = pool_board.board(engine, pool.id)
    except CrmError as error:  # a pool whose filter cannot be counted has no board
        st.warning(str(error))
        return
    columns = st.columns(len(board.stages))
    for column, stage in zip(columns, board.stages, strict=True):
        with column:
            st.markdown(f"**{common.md(stage)}** · {board.counts[stage]:,}")
            for card in board.cards[stage]:
                with st.container(border=True):
                    st.page_link(
                        "app_pages/profile.py",
                        label=card.name or "(no name)",
                        query_params={"id": card.id},
                    )
                    about = " at ".join(p for p in (card.title, card.company) if p)
                    st.caption(
                        f"{common.md(about)} · contacted {figures.ago(card.last_contacted_at)}"
                    )
            hidden = board.counts[stage] - len(board.cards[stage])
            if hidden > 0:
                st.caption(f"and {hidden:,} more")
    people = {card.id: card.name for stage in board.stages for card in board.cards[stage]}
    with st.form(f"move_{pool.id}"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        chosen = left.multiselect(
            "Move people",
            list(people),
            format_func=lambda cid: people[cid],
            placeholder="Choose people from the board",
        )
        target = right.selectbox("to stage", board.stages)
        if st.form_submit_button("Move", disabled=not writable):
            try:
                moved = pool_board.move(
                    engine, actor=user, pool_id=pool.id, candidate_ids=chosen, stage=target
                )
            except CrmError as error:
                st.error(str(error))
                return
            finish(f"Moved {moved} to {common.md(target)}; it is on their timelines.")
    with st.expander("Edit stages"):
        stage_editor(pool)


def members(pool) -> None:
    try:
        preview = pools.preview_filter(
            engine, {"field": "pool", "op": "in", "value": [pool.name]}, sample=pools.MAX_SAMPLE
        )
    except CrmError as error:
        st.warning(str(error))
        return
    if not preview.count:
        hint = (
            "Add people from the Candidates page: select them and choose Add to pool."
            if pool.kind == "static"
            else "Nobody matches the filter right now."
        )
        st.info(f"No members yet. {hint}")
        return
    sample = preview.sample
    st.caption(f"The first {len(sample)} of {preview.count:,}, by name.")
    st.dataframe(people_frame(sample), hide_index=True, width="stretch")
    if pool.kind == "static" and writable:
        names = {r["id"]: common.person_name(r["first_name"], r["last_name"]) for r in sample}
        with st.form(f"remove_{pool.id}"):
            chosen = st.multiselect(
                "Take off this list", list(names), format_func=lambda cid: names[cid]
            )
            if st.form_submit_button("Remove from the list"):
                try:
                    removed = pools.remove_members(
                        engine, actor=user, pool_id=pool.id, candidate_ids=chosen
                    )
                except CrmError as error:
                    st.error(str(error))
                    return
                finish(f"Removed {removed} from {common.md(pool.name)}.")


def aimed_at(pool_id: int) -> None:
    campaigns, items = pools.aimed_at(engine, pool_id)
    st.markdown("**Campaigns**")
    if campaigns:
        st.dataframe(
            pd.DataFrame(
                {
                    "Campaign": [c["name"] for c in campaigns],
                    "Status": [c["status"] for c in campaigns],
                    "Launched": [figures.ago(c["launched_at"]) for c in campaigns],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.caption("No campaign is aimed at this pool yet.")
    st.markdown("**Calendar**")
    if items:
        st.dataframe(
            pd.DataFrame(
                {
                    "Item": [i["title"] for i in items],
                    "Channel": [i["channel"].replace("_", " ") for i in items],
                    "Status": [i["status"] for i in items],
                    "When": [i["scheduled_at"] for i in items],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"When": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")},
        )
    else:
        st.caption("Nothing on the content calendar is aimed at this pool yet.")


# --- the builder ---------------------------------------------------------------------------


def use_json() -> None:
    text = st.session_state.get("pools_json_text", "")
    try:
        parsed = pool_filter.parse_filter(text)  # JSON within the limits, or one sentence
        pools.preview_filter(engine, parsed, sample=0)  # checks every field and value
    except CrmError as error:
        st.session_state["pools_json_problem"] = str(error)
        return
    pool_id = pool_builder.state().get("pool_id")
    if pool_builder.load(parsed, pool_id=pool_id):
        st.session_state.pop("pools_json_text", None)


def builder_view() -> None:
    data = pool_builder.state()
    editing = pools.get_pool(engine, data["pool_id"]) if data.get("pool_id") else None
    if editing:
        top_left, top_right = st.columns([4, 1], vertical_alignment="bottom")
        top_left.markdown(f"Editing the filter of **{common.md(editing.name)}**")
        top_right.button("Start a new pool", on_click=pool_builder.reset)
    options = load_options(common.database_key())
    json_mode = "json" in data
    if json_mode:
        st.info(
            data.get("json_reason")
            or "This filter nests deeper than the builder draws; edit it as JSON."
        )
        filter_json = data["json"]
        unfinished = 0
    else:
        filter_json, unfinished = pool_builder.draw(options)
    with st.expander("Filter as JSON", expanded=json_mode):
        st.code(json.dumps(filter_json), language="json")
        st.text_area(
            "Paste a filter",
            key="pools_json_text",
            height=120,
            placeholder='{"all": [{"field": "skills", "op": "has_any", "value": ["python"]}]}',
        )
        st.button("Use this filter", on_click=use_json)
        problem = st.session_state.pop("pools_json_problem", None)
        if problem:
            st.error(problem)
    if unfinished:
        st.caption(f"{unfinished} condition(s) without a value are left out until you fill them.")
    preview, problem = load_preview(common.database_key(), json.dumps(filter_json, sort_keys=True))
    if problem or preview is None:
        st.error(problem or "The filter cannot be counted.")
        return
    st.metric("People matching now", f"{preview.count:,}")
    if preview.sample:
        st.dataframe(
            pd.DataFrame(
                {
                    "Name": [
                        common.person_name(r["first_name"], r["last_name"]) for r in preview.sample
                    ],
                    "Title": [r["title"] or "" for r in preview.sample],
                    "Company": [r["company"] or "" for r in preview.sample],
                    "Location": [r["location"] or "" for r in preview.sample],
                    "Last contacted": [figures.ago(r["last_contacted_at"]) for r in preview.sample],
                }
            ),
            hide_index=True,
            width="stretch",
        )
    if not writable:
        return
    save_form(filter_json, preview.count, editing)


def save_form(filter_json: dict, count: int, editing) -> None:
    with st.form("pool_save"):
        name = st.text_input(
            "Pool name", value=editing.name if editing else "", max_chars=pools.MAX_NAME
        )
        description = st.text_input(
            "What it is for", value=(editing.description or "") if editing else ""
        )
        kinds = {
            "dynamic": "Dynamic: stays current as people change and arrive",
            "static": f"Static list: the {count:,} people matching now, kept by hand after",
        }
        kind = st.radio(
            "Kind",
            list(kinds),
            format_func=kinds.get,
            disabled=editing is not None,
            key="pools_save_kind",
        )
        label = "Save changes" if editing else "Save pool"
        if not st.form_submit_button(label, type="primary"):
            return
    try:
        pool_id = pools.save_pool(
            engine,
            actor=user,
            name=name,
            kind=kind,
            filter_json=filter_json,
            description=description,
            pool_id=editing.id if editing else None,
        )
        added = 0
        if kind == "static" and editing is None:
            added = pools.add_matching(engine, actor=user, pool_id=pool_id, filter_json=filter_json)
    except CrmError as error:
        st.error(str(error))
        return
    pool_builder.reset()
    suffix = f" with {added:,} people" if kind == "static" and editing is None else ""
    finish(f"Saved the pool {common.md(name.strip())}{suffix}.", view="Pools", selected=pool_id)


# --- overlap -------------------------------------------------------------------------------


def overlap_view() -> None:
    summaries = [s for s in load_pools(common.database_key()) if not s.problem]
    if len(summaries) < 2:
        st.info("Overlap compares two pools; make at least two first.")
        return
    names = {s.id: s.name for s in summaries}
    left, right = st.columns(2)
    first = left.selectbox("Pool", list(names), format_func=names.get, key="overlap_first")
    second = right.selectbox(
        "and pool", list(names), index=1, format_func=names.get, key="overlap_second"
    )
    if first == second:
        st.caption("Choose two different pools.")
        return
    shared = pools.overlap(engine, first, second)
    a, b, both = st.columns(3)
    a.metric(names[first], f"{shared.first:,}")
    b.metric(names[second], f"{shared.second:,}")
    both.metric("In both", f"{shared.both:,}")
    smaller = min(shared.first, shared.second)
    if smaller:
        st.caption(
            f"{shared.both / smaller:.0%} of the smaller pool is also in the other: a message to "
            "both reaches these people twice unless a campaign excludes one pool."
        )


# --- the page ------------------------------------------------------------------------------

st.title("Talent pools", anchor=False)
notice = st.session_state.pop(NOTICE, None)
if notice:
    st.success(notice)
common.read_only_caption()
upcoming = st.session_state.pop("pools_next_view", None)
if upcoming:
    st.session_state[VIEW] = upcoming
view = (
    st.segmented_control("View", VIEWS, default="Pools", key=VIEW, label_visibility="collapsed")
    or "Pools"
)
if view == "Build a pool":
    builder_view()
elif view == "Overlap":
    overlap_view()
else:
    pools_view()

dialog = st.session_state.get(DIALOG)
if dialog and dialog[0] == "delete":
    delete_dialog(dialog[1], dialog[2])
