"""Every figure a manager reads, registered once: what it counts, what it divides by, which
period and scope it takes, and where it is shown.

The values come from crm/metrics.py and the modules beside it (campaign report, pools,
Home); this registry is what docs/metrics.md lists (`python -m crm.figures` prints the
table) and what tests/test_figures.py checks: every figure a page shows is registered,
and every registered figure is compared, on every page and in every export that shows it,
with the one value its service computes. A page shows a figure through `label()` and
`shown()` (app_pages/common.py `figure_text` and `figure_metric`), so the name and the
formatting are the same wherever it appears; a metric's value goes through `metric_text()`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crm import campaign_figures, clock, metrics, pool_yield

# Where figures appear (the registry's `shown_on`).
GOALS = "Goals & ROI"
CAMPAIGNS = "Campaigns"
POOLS = "Talent pools"
HOME = "Home"
JOBS = "Jobs"
PROFILE = "Candidate profile"
METRICS_JSON = "`crm metrics --json`"
REPORT_JSON = "`crm campaign report --json`"
POOLS_JSON = "`crm pool list --json`"
GOALS_CSV = "Goals & ROI CSV and PNG"

# The metrics Goals & ROI shows as cards (the others are in goals, trends and exports).
CARD_METRICS = (
    "time_to_fill_days",
    "time_to_hire_days",
    "cost_per_hire",
    "offer_acceptance_rate",
    "hires",
    "hires_from_talent_pools_share",
    "reply_rate",
    "campaign_application_rate",
)
PAGES = (GOALS, CAMPAIGNS, POOLS, HOME, JOBS, PROFILE)
PERIOD_CHOSEN = "the period chosen (first to last day, UTC)"
ALL_TIME = "since the campaign launched"


@dataclass(frozen=True)
class Figure:
    key: str  # "<family>.<name>", the name as the service and the JSON call it
    label: str  # as every page shows it
    # count, people, messages, hires, money, days, share, moment; "metric": the unit of the
    # metric it measures (a goal's figures)
    unit: str
    counts: str  # the numerator, or what is counted
    divided_by: str | None  # the denominator of a rate, share or mean
    period: str
    shown_on: tuple[str, ...]


def _metric(name: str, label: str, unit: str, counts: str, divided_by: str | None) -> Figure:
    # The label metrics.METRICS gives a metric is the one every page shows.
    return Figure(
        f"metrics.{name}",
        metrics.METRICS[name].label if name in metrics.METRICS else label,
        unit,
        counts,
        divided_by,
        PERIOD_CHOSEN,
        (GOALS, METRICS_JSON, GOALS_CSV) if name in CARD_METRICS else (METRICS_JSON, GOALS_CSV),
    )


FIGURES: tuple[Figure, ...] = (
    # --- Goals & ROI: the metrics (crm/metrics.py) --------------------------------------
    _metric(
        "hires",
        "Hires",
        "hires",
        "applications whose hire date falls in the period",
        None,
    ),
    _metric(
        "time_to_hire_days",
        "Time to hire",
        "days",
        "days from application (or sourcing) to the accepted offer, summed",
        "offers accepted in the period",
    ),
    _metric(
        "time_to_fill_days",
        "Time to fill",
        "days",
        "days from a job's opening to its filling, summed",
        "jobs filled in the period",
    ),
    _metric(
        "cost_per_hire",
        "Cost per hire",
        "money",
        "costs incurred in the period, in the team currency",
        "hires in the period",
    ),
    _metric(
        "offer_acceptance_rate",
        "Offer acceptance rate",
        "share",
        "offers accepted in the period",
        "offers decided (accepted or declined) in the period",
    ),
    _metric(
        "hires_from_talent_pools_share",
        "Hires from talent pools",
        "share",
        "hires in the period whose source is a talent pool or a CRM campaign",
        "hires in the period",
    ),
    _metric(
        "campaign_application_rate",
        "Applications from campaigns",
        "share",
        "people delivered a campaign message in the period who applied through it",
        "people delivered a campaign message in the period (once per campaign)",
    ),
    _metric(
        "reply_rate",
        "Reply rate",
        "share",
        "people delivered a campaign message in the period who replied to it",
        "people delivered a campaign message in the period (once per campaign)",
    ),
    _metric(
        "click_rate",
        "Click rate",
        "share",
        "people delivered a campaign message in the period with a human click in it",
        "people delivered a campaign message in the period (once per campaign)",
    ),
    _metric(
        "pool_engagement_rate",
        "Pool engagement",
        "share",
        "pool members now with a human open, click or reply in the period",
        "pool members now",
    ),
    _metric(
        "pool_to_hire_rate",
        "Pool-to-hire conversion",
        "share",
        "pool members now hired in the period",
        "pool members now",
    ),
    _metric(
        "total_cost",
        "Total cost",
        "money",
        "costs incurred in the period, in the team currency",
        None,
    ),
    _metric(
        "source_of_hire",
        "Source of hire",
        "share",
        "hires in the period from each source",
        "hires in the period",
    ),
)


_CAMPAIGN_SHOWN = (CAMPAIGNS, REPORT_JSON)
_PEOPLE_RULE = "people delivered at least one message of the campaign (per step: that step's)"
_CAMPAIGN_COUNTS: dict[str, str] = {
    "messages_sent": "messages the mail server accepted",
    "messages_delivered": "messages sent that no bounce came back for",
    "bounced": "sent messages a bounce came back for",
    "queued": "messages waiting, queued or being sent",
    "failed": "messages given up on after their retries",
    "needs_review": "messages whose delivery nobody can be sure of",
    "cancelled": "messages stopped after they were planned (a reply, an unsubscribe, the "
    "campaign cancelled)",
    "skipped": "messages planned but never sent for a reason of their own",
    "people_delivered": "people delivered at least one message (once each across steps)",
    "people_replied": "people delivered who replied (a reply or an interested reply)",
    "people_interested": "people delivered who said they are interested",
    "people_opened": "people delivered with a human open or click (Gmail's proxy counts as "
    "the person)",
    "people_clicked": "people delivered with a human click",
    "people_unsubscribed": "people delivered who unsubscribed",
    "apple_privacy_people": "people delivered whose only opens are Apple Mail Privacy "
    "Protection prefetches",
    "scanner_opens": "opens (events) by scanners and link checkers",
}
FIGURES += tuple(
    Figure(
        f"campaign.{name}",
        campaign_figures.LABELS[name].capitalize(),
        "people" if name in campaign_figures.PEOPLE_COUNTS else "messages",
        counts,
        None,
        ALL_TIME,
        (REPORT_JSON,) if name == "messages_delivered" else _CAMPAIGN_SHOWN,
    )
    for name, counts in _CAMPAIGN_COUNTS.items()
)
FIGURES += tuple(
    Figure(
        f"campaign.{name}",
        name.replace("_", " ").capitalize(),
        "share",
        _CAMPAIGN_COUNTS[count],
        _PEOPLE_RULE,
        ALL_TIME,
        _CAMPAIGN_SHOWN,
    )
    for name, count in campaign_figures.RATES.items()
)
FIGURES += (
    Figure(
        "campaign.applications",
        "Applications",
        "count",
        "applications attributed to the campaign",
        None,
        ALL_TIME,
        _CAMPAIGN_SHOWN,
    ),
    Figure(
        "campaign.hires",
        "Hires",
        "hires",
        "applications attributed to the campaign that ended in a hire",
        None,
        ALL_TIME,
        _CAMPAIGN_SHOWN,
    ),
)
_FUNNEL_COUNTS = {
    "members": "people in the pool now (any pool with none chosen), and people hired from "
    "it in the period who have since left",
    "contacted": "of them, people sent a campaign message or contacted in the period, and "
    "everyone of a later step",
    "engaged": "of them, people with a human open, click or reply in the period, or an "
    "application (applying is engaging), and everyone hired from the pools",
    "applied": "of them, people whose application got past sourcing in the period, and "
    "everyone hired from the pools",
    "hired_from_talent_pools": "people hired in the period whose source is a talent pool or "
    "a CRM campaign (with a pool chosen: from an application that came from that pool)",
}
FIGURES += tuple(
    Figure(
        f"funnel.{step}",
        pool_yield.FUNNEL_LABELS[step],
        "people",
        _FUNNEL_COUNTS[step],
        None,
        PERIOD_CHOSEN,
        (GOALS, GOALS_CSV),
    )
    for step in pool_yield.FUNNEL_STEPS
)
FIGURES += (
    Figure(
        "savings.hired_from_talent_pools",
        "Hired from talent pools",
        "people",
        _FUNNEL_COUNTS["hired_from_talent_pools"],
        None,
        PERIOD_CHOSEN,
        (GOALS, GOALS_CSV, METRICS_JSON),
    ),
    Figure(
        "savings.external_cost_per_hire",
        "External cost per hire",
        "money",
        "agency fees and job ads in the period (or the figure entered)",
        "hires from agencies and job boards in the period",
        PERIOD_CHOSEN,
        (GOALS, GOALS_CSV),
    ),
    Figure(
        "savings.crm_costs",
        "CRM costs",
        "money",
        "costs in the categories tools and recruiter time in the period",
        None,
        PERIOD_CHOSEN,
        (GOALS, GOALS_CSV),
    ),
    Figure(
        "savings.net_savings",
        "Net savings",
        "money",
        "people hired from talent pools × external cost per hire − CRM costs",
        None,
        PERIOD_CHOSEN,
        (GOALS, GOALS_CSV),
    ),
    Figure(
        "pool.size",
        "People",
        "people",
        "people in the pool now (a dynamic pool: everyone its filter matches)",
        None,
        "now",
        (POOLS, POOLS_JSON),
    ),
    Figure(
        "pool.last_touch",
        "Last touch",
        "moment",
        "the latest message sent by a campaign aimed at the pool, or content published to it",
        None,
        "ever",
        (POOLS, HOME, POOLS_JSON),
    ),
    Figure(
        "pool.hires",
        "Hires (12 months)",
        "hires",
        "hires in the last 12 months whose application came from the pool",
        None,
        "the last 12 months",
        (POOLS, POOLS_JSON),
    ),
    Figure(
        "person.last_touch",
        "Last touch",
        "moment",
        "the later of when we last contacted the person and when they last engaged (a human "
        "open, click or reply)",
        None,
        "ever",
        (PROFILE,),
    ),
    Figure(
        "goal.actual",
        "Actual",
        "metric",
        "the goal's metric over its scope, from its start to today (its deadline, once past)",
        None,
        "the goal's start to today",
        (GOALS,),
    ),
    Figure(
        "goal.target",
        "Target",
        "metric",
        "the target entered, or the baseline moved by the relative change entered",
        None,
        "at the goal's deadline",
        (GOALS,),
    ),
    Figure(
        "goal.expected",
        "Expected by today",
        "metric",
        "the straight path from the baseline at the start to the target at the deadline, "
        "read today",
        None,
        "today",
        (GOALS,),
    ),
    Figure(
        "jobs.cost_total",
        "Costs in all",
        "money",
        "the costs listed (a job's, or everyone's in the period chosen), in the team currency",
        None,
        "the period chosen, or all a job's costs",
        (JOBS,),
    ),
    Figure(
        "home.content_this_week",
        "Content this week",
        "count",
        "calendar items planned or published this week (Monday to Sunday)",
        None,
        "this week",
        (HOME,),
    ),
    Figure(
        "home.emails_due_today",
        "Emails due today",
        "messages",
        "campaign messages due to go by the end of today",
        None,
        "today",
        (HOME,),
    ),
    Figure(
        "home.pools_gone_quiet",
        "Pools gone quiet",
        "count",
        "pools whose last touch is more than 30 days ago, or never",
        None,
        "the last 30 days",
        (HOME,),
    ),
    Figure(
        "home.goals_needing_care",
        "Goals needing care",
        "count",
        "goals at risk or off track today",
        None,
        "today",
        (HOME,),
    ),
)
assert set(_CAMPAIGN_COUNTS) == set(campaign_figures.REPORT_COUNTERS), "register every count"

BY_KEY: dict[str, Figure] = {figure.key: figure for figure in FIGURES}


def figure(key: str) -> Figure:
    """The registered figure; a key nobody registered is a programming error."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise KeyError(f"{key!r} is not a registered figure (crm/figures.py).") from None


def label(key: str) -> str:
    return figure(key).label


SHARE_UNITS = ("share", "fraction")  # fraction: metrics.METRICS' name for a share


def text(unit: str, value: float | None, *, currency: str, exact: bool = False) -> str:
    """A figure as pages show it ("no data" rather than a misleading zero); exact gives the
    last decimal the service computes, for help texts and exports."""
    if value is None:
        return "no data"
    if unit in SHARE_UNITS:
        return f"{value:.4%}" if exact else f"{value:.0%}"
    if unit == "money":
        amount = f"{abs(value):,.2f}" if exact else f"{abs(value):,.0f}"
        return f"{'-' if value < 0 else ''}{amount} {currency}"
    if unit == "days":
        return f"{value:,.2f} days" if exact else f"{value:.1f} days"
    if unit == "moment":
        raise ValueError("A moment is shown as an age: ago() (shown() does it).")
    if unit == "metric":
        raise ValueError("A goal's figure takes its metric's unit: metric_text().")
    return f"{value:,.0f}"


def metric_text(metric: str, value: float | None, *, currency: str, exact: bool = False) -> str:
    """A metric's value in its unit (metrics.METRICS); 'no data' rather than a misleading
    zero."""
    return text(metrics.METRICS[metric].unit, value, currency=currency, exact=exact)


def unit_of(key: str, *, metric: str | None = None) -> str:
    """The unit a registered figure is shown in; a goal's figures take the unit of the
    metric the goal measures."""
    unit = figure(key).unit
    return metrics.METRICS[metric or ""].unit if unit == "metric" else unit


def shown(
    key: str,
    value: float | dt.datetime | None,
    *,
    currency: str,
    exact: bool = False,
    metric: str | None = None,
) -> str:
    """A registered figure as every page shows it: a moment as an age, the rest by text()."""
    unit = unit_of(key, metric=metric)
    if unit == "moment":
        return ago(value)  # type: ignore[arg-type]
    return text(unit, value, currency=currency, exact=exact)  # type: ignore[arg-type]


def ago(moment: dt.datetime | None, *, now: dt.datetime | None = None) -> str:
    """'3 days ago' style text; 'never' for None."""
    if moment is None:
        return "never"
    now = now or clock.now()
    days = (now - moment).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 60:
        return f"{days} days ago"
    return f"{days // 30} months ago"


def change_text(unit: str, now: float | None, then: float | None, *, currency: str) -> str | None:
    """How a figure moved since the period before (percentage points for shares)."""
    if now is None or then is None:
        return None
    change = now - then
    if unit in SHARE_UNITS:
        return f"{change * 100:+.1f} pp"
    if unit == "money":
        return f"{'-' if change < 0 else '+'}{abs(change):,.0f} {currency}"
    if unit == "days":
        return f"{change:+.1f} days"
    return f"{change:+,.0f}"


def markdown_table() -> str:
    """The table of every figure, as docs/metrics.md carries it."""
    lines = [
        "| figure | shown as | counts | divided by | period | shown on |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for item in FIGURES:
        lines.append(
            f"| `{item.key}` | {item.label} | {item.counts} | {item.divided_by or '—'} | "
            f"{item.period} | {', '.join(item.shown_on)} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
