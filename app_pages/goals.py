"""Goals & ROI: goals against their targets and the metrics that prove the return.

Everyone reads the page (it is the managers' landing page); admins and recruiters also
set and delete goals. Every figure comes from crm.metrics / crm.goals (docs/metrics.md);
the read models are cached for REFRESH_SECONDS, keyed by database, period and scope.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from app_pages import common
from crm import (
    auth,
    campaigns,
    clock,
    export_values,
    figures,
    goals,
    metrics,
    money,
    pool_yield,
    pools,
)
from crm.errors import CrmError

REFRESH_SECONDS = 300
DIALOG = "goals_dialog"  # ("new",) or ("delete", goal_id, title)
NOTICE = "goals_notice"
PRINT = "goals_print"
SECTION = "goals_section"  # the open tab
PERIODS = ("Last 90 days", "This year", "Last 12 months", "Custom")
CARD_METRICS = figures.CARD_METRICS
STATUS_COLORS = {"on_track": "green", "at_risk": "orange", "off_track": "red", "no_data": "gray"}
STATUS_ICONS = {
    "on_track": ":material/check_circle:",
    "at_risk": ":material/warning:",
    "off_track": ":material/error:",
    "no_data": ":material/hourglass_empty:",
}
UNIT_SUFFIX = {"days": " (days)", "money": " ({currency})", "fraction": " (%)", "count": ""}

engine = common.engine()
user = common.current_user()
writable = common.can_write()
today = clock.today()


# --- read models (cached) ---------------------------------------------------------------


def _scope(
    families: tuple[str, ...], key_roles: bool, pool_id: int | None, campaign_id: int | None
):
    return metrics.Scope(
        role_families=families, key_roles=key_roles, pool_id=pool_id, campaign_id=campaign_id
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_options(url: str) -> dict[str, Any]:
    """Role families, pools, campaigns and users for the pickers."""
    return {
        "families": goals.role_family_choices(common.engine()),
        "pools": pools.pool_names(common.engine()),
        "campaigns": campaigns.campaign_names(common.engine()),
        "users": {u.id: u.display_name or u.username for u in auth.list_users(common.engine())},
    }


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_report(
    url: str, start: dt.date, end: dt.date, scope_key: tuple[Any, ...]
) -> metrics.MetricsReport:
    return metrics.compute(common.engine(), start=start, end=end, scope=_scope(*scope_key))


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_trends(url: str, start: dt.date, end: dt.date, scope_key: tuple[Any, ...]) -> pd.DataFrame:
    """One row per metric and month: the metric over that month (clipped to the period)."""
    rows = []
    for metric in CARD_METRICS:
        for month, value in metrics.monthly(
            common.engine(), metric=metric, start=start, end=end, scope=_scope(*scope_key)
        ):
            rows.append(
                {
                    "month": month,
                    "metric": metric,
                    "label": metrics.METRICS[metric].label,
                    "value": value,
                }
            )
    return pd.DataFrame(rows, columns=["month", "metric", "label", "value"])


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_goals(
    url: str, day: dt.date
) -> list[tuple[goals.GoalProgress, list[tuple[dt.date, float | None, float | None]]]]:
    return goals.all_progress_with_series(common.engine(), today=day)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_funnel(url: str, start: dt.date, end: dt.date, pool_id: int | None) -> dict[str, int]:
    return pool_yield.funnel(common.engine(), start=start, end=end, pool_id=pool_id)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_savings(
    url: str, start: dt.date, end: dt.date, agency_cost: Decimal | None
) -> dict[str, Any]:
    return pool_yield.savings(
        common.engine(), start=start, end=end, agency_cost_per_hire=agency_cost
    )


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def load_money_note(url: str) -> str | None:
    """The team currency and rates the cost figures use (crm.money), for beside them."""
    return money.figures_note(common.engine())


def clear_caches() -> None:
    load_goals.clear()
    load_options.clear()


# --- small helpers ----------------------------------------------------------------------


def period_for(choice: str, custom: Any) -> tuple[dt.date, dt.date]:
    if choice == "This year":
        return dt.date(today.year, 1, 1), today
    if choice == "Last 12 months":
        try:
            start = today.replace(year=today.year - 1) + dt.timedelta(days=1)
        except ValueError:  # 29 February
            start = dt.date(today.year - 1, 3, 1)
        return start, today
    if choice == "Custom" and isinstance(custom, tuple | list) and len(custom) == 2:
        return custom[0], custom[1]
    return today - dt.timedelta(days=89), today


def unit_suffix(unit: str) -> str:
    """What a chart's axis or facet adds to a metric's name: its unit."""
    return UNIT_SUFFIX[unit].format(currency=common.team_currency())


def unit_of(metric: str) -> str:
    return metrics.METRICS[metric].unit


def shown(metric: str, value: float | None) -> float | None:
    """A value as charts show it: rates in percent, the rest as they are."""
    if value is None:
        return None
    return value * 100 if unit_of(metric) == "fraction" else value


def exact(metric: str, value: float | None) -> str:
    """The value to the last decimal the service gives (for help texts)."""
    return common.format_value(metric, value, exact=True)


def money_text(value: float | None, *, exact: bool = False) -> str:
    return figures.text("money", value, currency=common.team_currency(), exact=exact)


def delta_text(metric: str, now: float | None, then: float | None) -> str | None:
    return figures.change_text(unit_of(metric), now, then, currency=common.team_currency())


def png_of(chart: alt.TopLevelMixin) -> Callable[[], bytes]:
    """A callable that renders the chart to PNG when the download is clicked."""

    def render() -> bytes:
        buffer = io.BytesIO()
        chart.save(buffer, format="png", scale_factor=2)
        return buffer.getvalue()

    return render


def chart_block(
    name: str,
    chart: alt.TopLevelMixin,
    data: pd.DataFrame,
    *,
    alt_text: str,
    printing: bool,
    title: str | None = None,
) -> None:
    """The chart, and (outside the print view) its data as CSV and itself as PNG."""
    st.altair_chart(chart, alt=alt_text, key=f"goals_chart_{name}")
    if printing:
        return
    with st.container(horizontal=True):
        st.download_button(
            "CSV",
            data=export_values.csv_table(list(data.columns), data.to_dict("records")),
            file_name=f"{name}.csv",
            mime="text/csv",
            icon=":material/table:",
            on_click="ignore",
            key=f"goals_csv_{name}",
            type="tertiary",
        )
        st.download_button(
            "PNG",
            data=png_of(chart.properties(background="white", title=title or "")),
            file_name=f"{name}.png",
            mime="image/png",
            icon=":material/image:",
            on_click="ignore",
            key=f"goals_png_{name}",
            type="tertiary",
        )


def describe_scope(scope: dict[str, Any], options: dict[str, Any]) -> str:
    parsed = metrics.Scope.from_json(scope)
    names = {}
    if parsed.pool_id is not None:
        names["pool"] = options["pools"].get(parsed.pool_id, f"#{parsed.pool_id}")
    if parsed.campaign_id is not None:
        names["campaign"] = options["campaigns"].get(parsed.campaign_id, f"#{parsed.campaign_id}")
    return parsed.describe(names)


def finish(message: str) -> None:
    st.session_state.pop(DIALOG, None)
    st.session_state[NOTICE] = message
    clear_caches()
    st.rerun()


# --- goal management (admins and recruiters) --------------------------------------------


@st.dialog("New goal", width="large", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def new_goal_dialog(options: dict[str, Any]) -> None:
    metric_names = list(metrics.METRICS)
    with st.form("goal_form", border=False):
        st.text_input("Title", key="goal_title", max_chars=200)
        left, right = st.columns(2)
        metric = left.selectbox(
            "Metric",
            metric_names,
            format_func=lambda m: metrics.METRICS[m].label,
            key="goal_metric",
        )
        owner = right.selectbox(
            "Owner",
            list(options["users"]),
            index=list(options["users"]).index(user.id) if user.id in options["users"] else 0,
            format_func=lambda uid: options["users"].get(uid, str(uid)),
            key="goal_owner",
        )
        st.markdown("**Scope** (empty means all hiring)")
        a, b, c, d = st.columns([3, 1, 2, 2], vertical_alignment="bottom")
        a.multiselect("Role families", options["families"], key="goal_families")
        b.checkbox("Key roles only", key="goal_key_roles")
        c.selectbox(
            "Pool",
            [None, *options["pools"]],
            format_func=lambda pid: "Any pool" if pid is None else options["pools"][pid],
            key="goal_pool",
        )
        d.selectbox(
            "Campaign",
            [None, *options["campaigns"]],
            format_func=lambda cid: "Any campaign" if cid is None else options["campaigns"][cid],
            key="goal_campaign",
        )
        st.markdown("**Target**")
        a, b = st.columns(2)
        a.radio(
            "Kind",
            ["relative", "absolute"],
            format_func={
                "relative": "A change from the baseline (%)",
                "absolute": "A value to reach",
            }.get,
            key="goal_target_kind",
        )
        b.number_input(
            "Target",
            value=None,
            step=1.0,
            key="goal_target",
            help="A change in percent (-15 for 15% less, 10 for 10% more), or the value to "
            "reach in the metric's unit: days, dollars, a count, or percent for rates.",
        )
        a, b = st.columns(2)
        a.date_input("Start", value=today, key="goal_start")
        b.date_input("Deadline", value=today + dt.timedelta(days=182), key="goal_deadline")
        st.markdown("**Baseline**")
        a, b = st.columns(2)
        a.date_input(
            "Measured over",
            value=(today - dt.timedelta(days=182), today - dt.timedelta(days=1)),
            key="goal_baseline_period",
            help="The metric over this period is the baseline, unless you enter one.",
        )
        b.number_input(
            "Or enter the baseline",
            value=None,
            min_value=0.0,
            step=1.0,
            key="goal_baseline_value",
            help="In the metric's unit (percent for rates). Leave empty to measure it.",
        )
        submitted = st.form_submit_button("Save goal", type="primary", icon=":material/flag:")
    if not submitted:
        return
    state = st.session_state
    metric = state.get("goal_metric", metric)
    fraction = unit_of(metric) == "fraction"
    kind = state.get("goal_target_kind", "relative")
    target = state.get("goal_target")
    if target is None:
        st.error("Give a target: a change in percent or a value to reach.")
        return
    target_value = target / 100 if kind == "relative" or fraction else target
    baseline = state.get("goal_baseline_value")
    if baseline is not None and fraction:
        baseline = baseline / 100
    period = state.get("goal_baseline_period") or ()
    baseline_from, baseline_to = (period[0], period[1]) if len(period) == 2 else (None, None)
    scope: dict[str, Any] = {}
    if state.get("goal_families"):
        scope["role_families"] = list(state["goal_families"])
    if state.get("goal_key_roles"):
        scope["key_roles"] = True
    if state.get("goal_pool") is not None:
        scope["pool_id"] = state["goal_pool"]
    if state.get("goal_campaign") is not None:
        scope["campaign_id"] = state["goal_campaign"]
    draft = goals.GoalDraft(
        metric=metric,
        target_kind=kind,
        target_value=float(target_value),
        start_date=state.get("goal_start") or today,
        deadline=state.get("goal_deadline") or today,
        title=state.get("goal_title") or "",
        scope=scope,
        baseline_value=None if baseline is None else float(baseline),
        baseline_from=None if baseline is not None else baseline_from,
        baseline_to=None if baseline is not None else baseline_to,
        owner_id=owner,
    )
    try:
        goals.save_goal(engine, actor=user, draft=draft)
    except CrmError as error:
        st.error(str(error), icon=":material/error:")
        return
    for key in [k for k in state if str(k).startswith("goal_")]:
        del state[key]
    finish(f"Saved the goal {draft.title!r}.")


@st.dialog("Delete goal", on_dismiss=lambda: st.session_state.pop(DIALOG, None))
def delete_goal_dialog(goal_id: int, title: str) -> None:
    st.write(f"Delete the goal **{common.md(title)}**? Its history is not kept.")
    if st.button("Delete the goal", type="primary", icon=":material/delete:", key="goal_delete"):
        try:
            goals.delete_goal(engine, actor=user, goal_id=goal_id)
        except CrmError as error:
            st.error(str(error))
        else:
            finish(f"Deleted the goal {title!r}.")


def add_guide_examples() -> None:
    try:
        added, refused = goals.add_guide_examples(engine, actor=user, today=today)
    except CrmError as error:
        st.error(str(error))
        return
    clear_caches()
    if added:
        st.session_state[NOTICE] = f"Added {len(added)} of the guide's examples."
    if refused:
        st.session_state["goals_refused"] = refused


# --- the page ---------------------------------------------------------------------------

state = st.session_state
st.title("Goals & ROI", anchor=False)
printing = bool(state.get(PRINT))
common.read_only_caption()
if NOTICE in state:
    st.success(state.pop(NOTICE), icon=":material/check_circle:")
for refusal in state.pop("goals_refused", []):
    st.error(f"Not added: {refusal}", icon=":material/error:")

url = common.database_key()
options = load_options(url)

# The filters as they stand (widget values are in session state before they are drawn),
# so the scope button can say what it holds.
start, end = period_for(state.get("goals_period") or PERIODS[0], state.get("goals_custom"))
families = tuple(f for f in state.get("goals_families") or () if f in options["families"])
pool_id = state.get("goals_pool") if state.get("goals_pool") in options["pools"] else None
campaign_id = (
    state.get("goals_campaign") if state.get("goals_campaign") in options["campaigns"] else None
)
scope_key = (families, bool(state.get("goals_key_roles")), pool_id, campaign_id)
scope = _scope(*scope_key)
scope_text = describe_scope(scope.as_json(), options)

length = (end - start).days + 1
before_end = start - dt.timedelta(days=1)
before_start = before_end - dt.timedelta(days=length - 1)
charts_per_row = 1 if printing else 2


def print_switch() -> None:
    st.toggle(
        "Print view",
        key=PRINT,
        help="Hide the controls and lay every section out, one chart per row, ready to print.",
    )


def period_and_scope() -> None:
    """The period and scope the metric tabs follow (goals carry their own), and what they
    are compared with. The values live in session state, so they hold across the tabs."""
    if not printing:
        with st.container(horizontal=True, vertical_alignment="bottom"):
            choice = st.segmented_control(
                "Period",
                PERIODS,
                default=PERIODS[0],
                required=True,
                key="goals_period",
                persist_state="page",
            )
            if choice == "Custom":
                st.date_input(
                    "From – to",
                    value=(today - dt.timedelta(days=89), today),
                    max_value=today,
                    key="goals_custom",
                    persist_state="page",
                    width=260,
                )
            # The scope filters live in a popover: four pickers drawn on every visit cost
            # more than the figures they filter.
            with st.popover(
                f"Scope: {common.md(scope_text)}",
                icon=":material/filter_list:",
                help="Role families, key roles, a talent pool or a campaign.",
            ):
                st.multiselect(
                    "Role families",
                    options["families"],
                    key="goals_families",
                    placeholder="All role families",
                    persist_state="page",
                )
                st.toggle("Key roles only", key="goals_key_roles", persist_state="page")
                st.selectbox(
                    "Talent pool",
                    [None, *options["pools"]],
                    format_func=lambda pid: (
                        "Any pool" if pid is None else options["pools"].get(pid, "?")
                    ),
                    key="goals_pool",
                    persist_state="page",
                )
                st.selectbox(
                    "Campaign",
                    [None, *options["campaigns"]],
                    format_func=lambda cid: (
                        "Any campaign" if cid is None else options["campaigns"].get(cid, "?")
                    ),
                    key="goals_campaign",
                    persist_state="page",
                )
            st.space("stretch")
            print_switch()
    st.caption(
        f"{start:%d %b %Y} – {end:%d %b %Y} · {common.md(scope_text)} · changes are against "
        f"{before_start:%d %b %Y} – {before_end:%d %b %Y}. Definitions: docs/metrics.md; "
        f"figures refresh every {REFRESH_SECONDS // 60} minutes."
    )


def goal_chart_data(
    goal: goals.GoalProgress, points: list[tuple[dt.date, float | None, float | None]]
) -> pd.DataFrame:
    rows = []
    for first, actual, expected in points:
        month_end = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        rows.append(
            {
                "month": first,
                "measured_to": min(month_end, today, goal.deadline),
                "actual": actual,
                "expected_on_path": expected,
                "target": goal.target,
            }
        )
    return pd.DataFrame(
        rows, columns=["month", "measured_to", "actual", "expected_on_path", "target"]
    )


def goal_chart(goal: goals.GoalProgress, data: pd.DataFrame) -> alt.LayerChart | None:
    unit = unit_of(goal.metric)
    axis_title = metrics.METRICS[goal.metric].label + unit_suffix(unit)
    layers = []
    if goal.baseline is not None and goal.target is not None:
        path = pd.DataFrame(
            {
                "day": pd.to_datetime([goal.start_date, goal.deadline]),
                "value": [shown(goal.metric, goal.baseline), shown(goal.metric, goal.target)],
                "line": ["Path to target"] * 2,
            }
        )
        layers.append(
            alt.Chart(path)
            .mark_line(strokeDash=[6, 4])
            .encode(
                x=alt.X("day:T", title=None),
                y=alt.Y("value:Q", title=axis_title),
                color=alt.Color("line:N", title=None),
                tooltip=[alt.Tooltip("day:T", title="Date"), alt.Tooltip("value:Q", format=",.2f")],
            )
        )
    actual = data.dropna(subset=["actual"]).assign(
        value=lambda df: [shown(goal.metric, v) for v in df["actual"]],
        line="Actual",
        measured_to=lambda df: pd.to_datetime(df["measured_to"]),
    )
    if not actual.empty:
        layers.append(
            alt.Chart(actual[["measured_to", "value", "line"]])
            .mark_line(point=True)
            .encode(
                x=alt.X("measured_to:T", title=None),
                y=alt.Y("value:Q", title=axis_title),
                color=alt.Color("line:N", title=None),
                tooltip=[
                    alt.Tooltip("measured_to:T", title="Measured to"),
                    alt.Tooltip("value:Q", title="Actual", format=",.2f"),
                ],
            )
        )
    if not layers:
        return None
    return alt.layer(*layers).properties(height=240).configure_legend(orient="bottom")


def progress_block(goal: goals.GoalProgress, points: list[Any]) -> None:
    """One goal's progress chart (actual against the path), with its CSV and PNG."""
    data = goal_chart_data(goal, points)
    chart = goal_chart(goal, data)
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(f"**{common.md(goal.title)}**", width="content")
        st.badge(
            goals.STATUS_LABELS[goal.status],
            icon=STATUS_ICONS[goal.status],
            color=STATUS_COLORS[goal.status],
        )
    st.caption(
        f"{metrics.METRICS[goal.metric].label} · {common.md(describe_scope(goal.scope, options))}"
        f" · {goal.start_date:%d %b %Y} – {goal.deadline:%d %b %Y} · expected by today "
        f"{exact(goal.metric, goal.expected)}, actual {exact(goal.metric, goal.actual)}. The "
        "actual value is measured from the goal's start to each month's end; the dashed line "
        "runs straight from the baseline to the target."
    )
    if chart is None:
        st.info(
            "No data yet: the baseline or the metric since the start is missing.",
            icon=":material/hourglass_empty:",
        )
        return
    chart_block(
        f"goal_{goal.goal_id}",
        chart,
        data,
        alt_text=f"{goal.title}: {goals.STATUS_LABELS[goal.status].lower()}",
        printing=printing,
        title=goal.title,
    )


def glance_table(goal_rows: list[Any]) -> pd.DataFrame:
    """Every goal on one row: status, actual against target, and its monthly sparkline."""
    rows = []
    for goal, points in goal_rows:
        rows.append(
            {
                "Goal": goal.title,
                "Status": goals.STATUS_LABELS[goal.status],
                **{
                    figures.label(f"goal.{name}"): common.figure_text(
                        f"goal.{name}", getattr(goal, name), subject=goal.title, metric=goal.metric
                    )
                    for name in ("actual", "target", "expected")
                },
                "Trend": [shown(goal.metric, a) for _, a, _ in points if a is not None],
                "Metric": metrics.METRICS[goal.metric].label,
                "Scope": describe_scope(goal.scope, options),
                "Deadline": goal.deadline,
                "Owner": options["users"].get(goal.owner_id, "nobody"),
            }
        )
    return pd.DataFrame(rows)


def draw_goals() -> None:
    """Goals at a glance, and the progress chart of the goal picked (all when printing)."""
    goal_rows = load_goals(url, today)
    if not printing:
        with st.container(horizontal=True, vertical_alignment="center"):
            if writable:
                if st.button("New goal", icon=":material/add:", key="goals_new", type="primary"):
                    state[DIALOG] = ("new",)
                titles = {goal.title for goal, _ in goal_rows}
                if any(example["title"] not in titles for example in goals.GUIDE_EXAMPLES):
                    st.button(
                        "Add the guide's examples",
                        icon=":material/library_add:",
                        key="goals_guide",
                        on_click=add_guide_examples,
                        help="; ".join(example["title"] for example in goals.GUIDE_EXAMPLES),
                    )
            st.space("stretch")
            print_switch()
    if not goal_rows:
        st.info(
            "No goals yet. Set one with **New goal**, or add the guide's three examples."
            if writable
            else "No goals yet. An admin or a recruiter sets them on this page.",
            icon=":material/flag:",
        )
        return
    st.dataframe(
        glance_table(goal_rows),
        hide_index=True,
        column_config={
            "Goal": st.column_config.TextColumn(width="medium"),
            "Trend": st.column_config.LineChartColumn(
                "Trend", help="The actual value measured from the start to each month's end."
            ),
            "Deadline": st.column_config.DateColumn(format="D MMM YYYY"),
        },
    )
    if printing:
        st.subheader("Progress against the path to each target", anchor=False)
        for goal, points in goal_rows:
            with st.container(border=True):
                progress_block(goal, points)
        return
    by_id = {goal.goal_id: (goal, points) for goal, points in goal_rows}
    picked = st.selectbox(
        "Progress of",
        list(by_id),
        index=None,
        format_func=lambda goal_id: by_id[goal_id][0].title,
        placeholder="Pick a goal to see its progress against the path to its target",
        key="goals_picked",
    )
    if picked is None:
        return
    goal, points = by_id[picked]
    with st.container(border=True):
        progress_block(goal, points)
        if writable and st.button(
            "Delete this goal",
            icon=":material/delete:",
            key=f"goals_delete_{goal.goal_id}",
            type="tertiary",
        ):
            state[DIALOG] = ("delete", goal.goal_id, goal.title)


def draw_metrics() -> None:
    """Each metric against the period before, with its months, and the trends chart."""
    period_and_scope()
    report = load_report(url, start, end, scope_key)
    previous = load_report(url, before_start, before_end, scope_key)
    trends = load_trends(url, start, end, scope_key)
    for row in (CARD_METRICS[:4], CARD_METRICS[4:]):
        for column, metric in zip(st.columns(len(row)), row, strict=True):
            label, _, better = metrics.METRICS[metric]
            now_value, then_value = report.value(metric), previous.value(metric)
            spark = [
                shown(metric, v)
                for v in trends.loc[trends["metric"] == metric, "value"].tolist()
                if v is not None and not pd.isna(v)
            ]
            common.figure_metric(
                column,
                f"metrics.{metric}",
                now_value,
                delta=delta_text(metric, now_value, then_value),
                delta_color="inverse" if better == "lower" else "normal",
                help=f"Exactly {exact(metric, now_value)}; before: {exact(metric, then_value)}.",
                border=True,
                height="stretch",
                chart_data=spark if len(spark) > 1 else None,
                chart_type="line",
            )
    money_note = load_money_note(url)
    if money_note:
        st.caption(f"Cost per hire: {money_note}")
    st.subheader("Trends by month", anchor=False)
    known = trends.dropna(subset=["value"])
    if known[known["metric"] != "hires"].empty and not known["value"].any():
        st.info(
            "No hiring, cost or campaign data in this period yet. Record jobs, hires and "
            "costs on the Jobs page, or pick a longer period.",
            icon=":material/insights:",
        )
        return
    plotted = known.assign(
        month=pd.to_datetime(known["month"]),
        value=[shown(m, v) for m, v in zip(known["metric"], known["value"], strict=True)],
        facet=[metrics.METRICS[m].label + unit_suffix(unit_of(m)) for m in known["metric"]],
    )
    order = [metrics.METRICS[m].label + unit_suffix(unit_of(m)) for m in CARD_METRICS]
    trend_chart = (
        alt.Chart(plotted[["month", "facet", "value"]])
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):T", title=None, axis=alt.Axis(format="%b %Y")),
            y=alt.Y("value:Q", title=None, axis=alt.Axis(format=",.4~f")),
            tooltip=[
                alt.Tooltip("yearmonth(month):T", title="Month"),
                alt.Tooltip("facet:N", title="Metric"),
                alt.Tooltip("value:Q", format=",.2f"),
            ],
        )
        .properties(width=170 if not printing else 640, height=120)
        .facet(
            facet=alt.Facet("facet:N", title=None, sort=order),
            columns=4 if not printing else 1,
        )
        .resolve_scale(y="independent")
    )
    with st.container(border=True):
        st.caption("Each month on its own (the first and last months clipped to the period).")
        chart_block(
            "trends",
            trend_chart,
            trends[["month", "metric", "value"]],
            alt_text="Each ROI metric month by month",
            printing=printing,
        )


def draw_funnel_and_sources() -> None:
    """The talent pool funnel and the source of hire, side by side."""
    period_and_scope()
    report = load_report(url, start, end, scope_key)
    columns = st.columns(charts_per_row)
    with columns[0], st.container(border=True):
        st.subheader("Talent pool funnel", anchor=False)
        funnel = load_funnel(url, start, end, pool_id)
        last_step = "Hired from this pool" if pool_id else "Hired from talent pools"
        st.caption(
            f"{'Pool ' + common.md(options['pools'][pool_id]) if pool_id else 'All pools'}: "
            "people in the pool now, and who of them was contacted, engaged and applied in "
            f"the period. {last_step}: people hired in the period "
            + (
                "from an application that came from this pool"
                if pool_id
                else "whose source is a talent pool or a CRM campaign (as on Savings)"
            )
            + "; they count in every step, even if they have left the pool since. "
            "The funnel follows the pool filter only."
        )
        if not funnel["members"]:
            st.info(
                "No one is in a talent pool yet. Build one on the Talent pools page.",
                icon=":material/workspaces:",
            )
        else:
            funnel_data = pd.DataFrame(
                {
                    "step": [
                        last_step if s == "hired_from_talent_pools" else pool_yield.FUNNEL_LABELS[s]
                        for s in pool_yield.FUNNEL_STEPS
                    ],
                    "people": [funnel[s] for s in pool_yield.FUNNEL_STEPS],
                    "share_of_pool": [
                        funnel[s] / funnel["members"] for s in pool_yield.FUNNEL_STEPS
                    ],
                }
            )
            for step in pool_yield.FUNNEL_STEPS:  # the bars' labels, noted as shown
                common.figure_text(f"funnel.{step}", funnel[step], subject=last_step)
            order = list(funnel_data["step"])
            bars = alt.Chart(funnel_data).encode(
                y=alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
                x=alt.X("people:Q", title="People"),
                tooltip=[
                    "step:N",
                    alt.Tooltip("people:Q", format=","),
                    alt.Tooltip("share_of_pool:Q", title="Share of the pool", format=".2%"),
                ],
            )
            funnel_chart = (
                bars.mark_bar()
                + bars.mark_text(align="left", dx=3).encode(text=alt.Text("people:Q", format=","))
            ).properties(height=220)
            chart_block(
                "funnel",
                funnel_chart,
                funnel_data,
                alt_text=(
                    f"Funnel: {funnel['members']:,} in the pool or hired from it, "
                    f"{funnel['hired_from_talent_pools']:,} {last_step.lower()}"
                ),
                printing=printing,
            )
    with columns[-1], st.container(border=True):
        st.subheader("Source of hire", anchor=False)
        if not report.source_of_hire:
            st.info(
                "No hires in this period. Move people to Hired on the Jobs page.",
                icon=":material/work:",
            )
            return
        sources = sorted(report.source_of_hire.items(), key=lambda item: (-item[1], item[0]))
        source_data = pd.DataFrame(
            {
                "source": [metrics.SOURCE_LABELS.get(s, s) for s, _ in sources],
                "hires": [round(share * report.hires) for _, share in sources],
                "share": [share for _, share in sources],
            }
        )
        source_chart = (
            alt.Chart(source_data)
            .mark_bar()
            .encode(
                y=alt.Y("source:N", sort="-x", title=None),
                x=alt.X("share:Q", title="Share of hires", axis=alt.Axis(format="%")),
                tooltip=[
                    "source:N",
                    alt.Tooltip("hires:Q", format=","),
                    alt.Tooltip("share:Q", format=".2%"),
                ],
            )
            .properties(height=220)
        )
        st.caption(f"{report.hires:,} hires in the period.")
        chart_block(
            "source_of_hire",
            source_chart,
            source_data,
            alt_text="Share of hires per source",
            printing=printing,
        )


def draw_savings() -> None:
    """People hired from talent pools priced at what an outside hire costs, less the CRM's
    own costs."""
    period_and_scope()
    st.subheader("Savings from hiring out of talent pools", anchor=False)
    saved = load_savings(url, start, end, None)
    if saved["external_cost_per_hire"] is None:
        if printing:
            agency = state.get("goals_agency_cost")
        else:
            agency = st.number_input(
                f"Agency or job-board cost per hire ({common.team_currency()})",
                min_value=0.0,
                value=None,
                step=500.0,
                key="goals_agency_cost",
                persist_state="page",
                help="No agency or job-board hire with costs in this period to derive it "
                "from; enter what a hire from outside usually costs.",
            )
        if agency is not None:
            saved = load_savings(url, start, end, Decimal(str(agency)))
    a, b, c, d = st.columns(4)
    common.figure_metric(
        a,
        "savings.hired_from_talent_pools",
        saved["hired_from_talent_pools"],
        help="People hired in the period whose source is a talent pool or a CRM campaign, "
        "each once: the last step of the talent pool funnel for all pools.",
        border=True,
    )
    per_hire = saved["external_cost_per_hire"]
    common.figure_metric(
        b,
        "savings.external_cost_per_hire",
        per_hire,
        help={
            "given": "As entered.",
            "computed": "Agency fees and job ads / hires from agencies and job boards.",
        }.get(saved["external_cost_basis"], "Nothing to derive it from."),
        border=True,
    )
    common.figure_metric(
        c,
        "savings.crm_costs",
        saved["crm_costs"],
        help="Tools and recruiter time in the period.",
        border=True,
    )
    net = saved["net_savings"]
    common.figure_metric(
        d,
        "savings.net_savings",
        net,
        help=None
        if net is None
        else f"Exactly {money_text(net, exact=True)}; "
        f"gross {money_text(saved['gross_savings'], exact=True)}.",
        border=True,
    )
    st.caption(
        "Hired from talent pools × external cost per hire − the CRM's own costs, for all roles "
        "(the scope filters do not apply)."
    )
    money_note = load_money_note(url)
    if money_note:
        st.caption(f"Costs: {money_note}")
    if not printing:
        st.download_button(
            "CSV",
            data=export_values.csv_table(
                [*saved, "currency"], [saved | {"currency": common.team_currency()}]
            ),
            file_name="savings.csv",
            mime="text/csv",
            icon=":material/table:",
            on_click="ignore",
            key="goals_csv_savings",
            type="tertiary",
        )


SECTIONS: dict[str, Callable[[], None]] = {
    "Goals": draw_goals,
    "Metrics": draw_metrics,
    "Funnel & source of hire": draw_funnel_and_sources,
    "Savings": draw_savings,
}
if printing:
    print_switch()
    for title, draw in SECTIONS.items():
        st.header(title, anchor=False)
        draw()
else:
    # Lazy tabs: only the open section runs and is drawn, so the page a manager lands on
    # (goals at a glance) does not wait for a dozen charts nobody looked at.
    for tab, draw in zip(
        st.tabs(list(SECTIONS), key=SECTION, on_change="rerun"), SECTIONS.values(), strict=True
    ):
        if tab.open:
            with tab:
                draw()

dialog = state.get(DIALOG)
if writable and dialog and dialog[0] == "new":
    new_goal_dialog(options)
elif writable and dialog and dialog[0] == "delete":
    delete_goal_dialog(*dialog[1:])
