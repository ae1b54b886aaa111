"""The ROI metrics, each defined once and computed by SQL aggregation.

docs/metrics.md holds the definitions and the rules for awkward data; in short:
- hires: applications whose hired_at falls in the period.
- time_to_fill_days: mean days from a job's opened_at to its filled_at, over jobs filled
  in the period (a job filled before it opened is left out as bad data).
- time_to_hire_days: mean days from applied_at (sourced_at for people we approached, who
  never applied) to the accepted offer, over offers accepted in the period (an
  acceptance dated before the entry is left out as bad data).
- offer_acceptance_rate: offers accepted / offers decided in the period. An offer is
  decided when offer_accepted is set, dated offer_decided_at; a hire with no offer on
  record (an ATS import) counts as an offer accepted on its hire date.
- cost_per_hire: costs incurred in the period, in the team currency (crm/money.py) / hires
  in the period.
- source_of_hire: each source's share of the period's hires; hires_from_talent_pools_share
  the share whose source is the talent pool or a CRM campaign.
- reply_rate, click_rate, campaign_application_rate: of the people delivered a message of
  a campaign in the period (one per campaign and person; sent and no bounce), the share
  who replied to, clicked (human clicks only) in, or applied through that campaign (at
  any time).
- pool_engagement_rate: of the pool's members (now), the share who opened, clicked or
  replied (human events) in the period; pool_to_hire_rate: the share hired in the period.
A metric with no data in the period is None ("no data"), never 0 (hires, a count, is 0).
Scope filters: role_families, key_roles, pool_id, campaign_id (Scope below).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    Engine,
    Select,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from crm import money, pool_filter
from crm.db import read_session
from crm.errors import CrmError
from crm.jobs import cost_conditions
from crm.models import (
    Application,
    Campaign,
    Candidate,
    Cost,
    Event,
    Job,
    OutboxMessage,
    Pool,
)
from crm.sql import days_between, month_of

TALENT_POOL_SOURCES = ("talent_pool", "campaign")
SOURCE_LABELS = {
    "talent_pool": "Talent pool",
    "campaign": "CRM campaign",
    "job_board": "Job board",
    "referral": "Referral",
    "agency": "Agency",
    "career_site": "Career site",
    "direct": "Direct",
}
HUMAN_ENGAGEMENT = ("open", "click", "reply", "interested")


class Metric(NamedTuple):
    """How a metric is shown: its label, its unit (days, money, fraction or count) and
    which direction is better (lower or higher)."""

    label: str
    unit: str
    better: str


METRICS: dict[str, Metric] = {
    "time_to_hire_days": Metric("Time to hire", "days", "lower"),
    "time_to_fill_days": Metric("Time to fill", "days", "lower"),
    "cost_per_hire": Metric("Cost per hire", "money", "lower"),
    "offer_acceptance_rate": Metric("Offer acceptance rate", "fraction", "higher"),
    "hires_from_talent_pools_share": Metric("Hires from talent pools", "fraction", "higher"),
    "hires": Metric("Hires", "count", "higher"),
    "campaign_application_rate": Metric("Applications from campaigns", "fraction", "higher"),
    "reply_rate": Metric("Reply rate", "fraction", "higher"),
    "click_rate": Metric("Click rate", "fraction", "higher"),
    "pool_engagement_rate": Metric("Pool engagement", "fraction", "higher"),
    "pool_to_hire_rate": Metric("Pool-to-hire conversion", "fraction", "higher"),
}

# Which aggregation each metric needs (one SQL query each, grouped by month on request).
_NEEDS: dict[str, tuple[str, ...]] = {
    "hires": ("hires",),
    "hires_from_talent_pools_share": ("hires",),
    "cost_per_hire": ("hires", "costs"),
    "offer_acceptance_rate": ("offers",),
    "time_to_hire_days": ("offers",),
    "time_to_fill_days": ("fills",),
    "campaign_application_rate": ("outreach",),
    "reply_rate": ("outreach",),
    "click_rate": ("outreach",),
    "pool_engagement_rate": ("pool",),
    "pool_to_hire_rate": ("pool",),
}


@dataclass(frozen=True)
class Scope:
    """Which part of the hiring a metric looks at; empty means everything.

    role_families / key_roles narrow jobs (and, for outreach and pool metrics, people by
    their role family; key_roles then narrows only the hires). pool_id / campaign_id
    narrow applications to those that came from the pool / campaign, jobs to those with a
    hire from it, and outreach to that campaign or the campaigns aimed at that pool.
    """

    role_families: tuple[str, ...] = ()
    key_roles: bool = False
    pool_id: int | None = None
    campaign_id: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Scope:
        """From a goal's scope; accepts role_family (one) and key_roles_only as well."""
        data = data or {}
        families = data.get("role_families") or ()
        if isinstance(families, str):
            families = (families,)
        if data.get("role_family"):
            families = (*families, data["role_family"])
        return cls(
            role_families=tuple(dict.fromkeys(str(f) for f in families)),
            key_roles=bool(data.get("key_roles") or data.get("key_roles_only")),
            pool_id=_optional_int(data.get("pool_id")),
            campaign_id=_optional_int(data.get("campaign_id")),
        )

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.role_families:
            data["role_families"] = list(self.role_families)
        if self.key_roles:
            data["key_roles"] = True
        if self.pool_id is not None:
            data["pool_id"] = self.pool_id
        if self.campaign_id is not None:
            data["campaign_id"] = self.campaign_id
        return data

    @property
    def narrows_jobs(self) -> bool:
        return bool(self.role_families or self.key_roles or self.pool_id or self.campaign_id)

    def describe(self, names: dict[str, str] | None = None) -> str:
        """'key roles · Software Engineering · pool Backend'; names maps 'pool'/'campaign'
        to display names."""
        names = names or {}
        parts = []
        if self.key_roles:
            parts.append("key roles")
        if self.role_families:
            parts.append(", ".join(self.role_families))
        if self.pool_id is not None:
            parts.append(f"pool {names.get('pool', f'#{self.pool_id}')}")
        if self.campaign_id is not None:
            parts.append(f"campaign {names.get('campaign', f'#{self.campaign_id}')}")
        return " · ".join(parts) or "all roles"


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


@dataclass
class MetricsReport:
    start: dt.date
    end: dt.date
    hires: int
    time_to_fill_days: float | None
    time_to_hire_days: float | None
    cost_per_hire: float | None
    offer_acceptance_rate: float | None
    hires_from_talent_pools_share: float | None
    source_of_hire: dict[str, float] = field(default_factory=dict)
    total_cost: float = 0.0
    campaign_application_rate: float | None = None
    reply_rate: float | None = None
    click_rate: float | None = None
    pool_engagement_rate: float | None = None
    pool_to_hire_rate: float | None = None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "time_to_fill_days": _round(self.time_to_fill_days),
            "time_to_hire_days": _round(self.time_to_hire_days),
            "cost_per_hire": _round(self.cost_per_hire),
            "offer_acceptance_rate": _round(self.offer_acceptance_rate, 4),
            "hires": self.hires,
            "hires_from_talent_pools_share": _round(self.hires_from_talent_pools_share, 4),
            "source_of_hire": {k: round(v, 4) for k, v in self.source_of_hire.items()},
            "total_cost": round(self.total_cost, 2),
            "campaign_application_rate": _round(self.campaign_application_rate, 4),
            "reply_rate": _round(self.reply_rate, 4),
            "click_rate": _round(self.click_rate, 4),
            "pool_engagement_rate": _round(self.pool_engagement_rate, 4),
            "pool_to_hire_rate": _round(self.pool_to_hire_rate, 4),
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None ("no data") when there is nothing to divide by."""
    if not denominator:
        return None
    return float(numerator or 0) / float(denominator)


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period as [start 00:00 UTC, day after end 00:00 UTC)."""
    low = dt.datetime.combine(start, dt.time(), dt.UTC)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    return low, high


def check_period(start: dt.date, end: dt.date) -> None:
    if end < start:
        raise ValueError("The period ends before it starts.")


# --- months -----------------------------------------------------------------------------


def _month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date, dt.date]]:
    """(first of month, first day in the period, last day in the period) per month."""
    found = []
    first = start.replace(day=1)
    while first <= end:
        following = (first + dt.timedelta(days=32)).replace(day=1)
        found.append((first, max(first, start), min(following - dt.timedelta(days=1), end)))
        first = following
    return found


# --- scope ------------------------------------------------------------------------------


def _job_conditions(scope: Scope) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if scope.role_families:
        conditions.append(Job.role_family.in_(scope.role_families))
    if scope.key_roles:
        conditions.append(Job.key_role.is_(True))
    for column, wanted in (
        (Application.pool_id, scope.pool_id),
        (Application.campaign_id, scope.campaign_id),
    ):
        if wanted is not None:
            hired_from = select(Application.id).where(
                Application.job_id == Job.id,
                Application.hired_at.is_not(None),
                column == wanted,
            )
            conditions.append(hired_from.exists())
    return conditions


def _scoped_applications(query: Select[Any], scope: Scope) -> Select[Any]:
    if scope.role_families or scope.key_roles:
        query = query.join(Job, Job.id == Application.job_id)
        if scope.role_families:
            query = query.where(Job.role_family.in_(scope.role_families))
        if scope.key_roles:
            query = query.where(Job.key_role.is_(True))
    if scope.pool_id is not None:
        query = query.where(Application.pool_id == scope.pool_id)
    if scope.campaign_id is not None:
        query = query.where(Application.campaign_id == scope.campaign_id)
    return query


def _scoped_jobs(query: Select[Any], scope: Scope) -> Select[Any]:
    conditions = _job_conditions(scope)
    return query.where(*conditions) if conditions else query


# --- the aggregations -------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date

    @property
    def low(self) -> dt.datetime:
        return period_bounds(self.start, self.end)[0]

    @property
    def high(self) -> dt.datetime:
        return period_bounds(self.start, self.end)[1]


def _grouped(
    session: Session,
    query: Select[Any],
    moment: ColumnElement[Any],
    by_month: bool,
) -> dict[str | None, tuple[Any, ...]]:
    """Run an aggregate query once, or once grouped by the month of `moment`."""
    if not by_month:
        return {None: tuple(session.execute(query).one())}
    key = month_of(moment)
    grouped = query.add_columns(key.label("month")).group_by(key)
    return {row[-1]: tuple(row[:-1]) for row in session.execute(grouped)}


def hires_by_source(
    session: Session, period: Period, scope: Scope, by_month: bool
) -> dict[Any, Any]:
    """{month: {source: hires}}"""
    query = _scoped_applications(
        select(Application.source, func.count()).where(
            Application.hired_at >= period.low, Application.hired_at < period.high
        ),
        scope,
    ).group_by(Application.source)
    found: dict[Any, dict[str, int]] = {}
    if by_month:
        key = month_of(Application.hired_at)
        rows = session.execute(query.add_columns(key).group_by(key))
        for source, count, month in rows:
            found.setdefault(month, {})[source] = count
    else:
        found[None] = {source: count for source, count in session.execute(query)}
    return found


def _decided_at() -> ColumnElement[Any]:
    return case(
        (
            Application.offer_accepted.is_not(None),
            func.coalesce(Application.offer_decided_at, Application.hired_at),
        ),
        else_=Application.hired_at,
    )


def _offers(session: Session, period: Period, scope: Scope, by_month: bool) -> dict[Any, Any]:
    """{month: (accepted, decided, sum of days to hire, count of times to hire)}"""
    decided_at = _decided_at()
    accepted = or_(
        Application.offer_accepted.is_(True),
        and_(Application.offer_accepted.is_(None), Application.hired_at.is_not(None)),
    )
    entered = func.coalesce(Application.applied_at, Application.sourced_at)
    timed_ok = and_(accepted, entered.is_not(None), decided_at >= entered)
    query = _scoped_applications(
        select(
            func.coalesce(func.sum(case((accepted, 1), else_=0)), 0),
            func.count(),
            func.sum(case((timed_ok, days_between(decided_at, entered)))),
            func.coalesce(func.sum(case((timed_ok, 1), else_=0)), 0),
        ).where(decided_at >= period.low, decided_at < period.high),
        scope,
    )
    return _grouped(session, query, decided_at, by_month)


def _fills(session: Session, period: Period, scope: Scope, by_month: bool) -> dict[Any, Any]:
    """{month: (sum of days to fill, jobs filled)}"""
    query = _scoped_jobs(
        select(func.sum(days_between(Job.filled_at, Job.opened_at)), func.count()).where(
            Job.filled_at >= period.start,
            Job.filled_at <= period.end,
            Job.filled_at >= Job.opened_at,
        ),
        scope,
    )
    return _grouped(session, query, Job.filled_at, by_month)


def _cost_query(
    period: Period, scope: Scope, categories: Iterable[str] | None, team: money.TeamMoney
) -> Select[Any]:
    # Each cost in the team currency (money.team_value): costs in other currencies are
    # converted at the team's rates, never added as if they were the same money.
    query = select(func.coalesce(func.sum(money.team_value(team)), 0)).where(
        Cost.incurred_on >= period.start, Cost.incurred_on <= period.end
    )
    if categories is not None:
        query = query.where(Cost.category.in_(tuple(categories)))
    if scope.narrows_jobs:
        query = _scoped_jobs(query.join(Job, Job.id == Cost.job_id), scope)
    return query


def costs_in(
    session: Session,
    period: Period,
    scope: Scope,
    by_month: bool,
    categories: Iterable[str] | None = None,
) -> dict[Any, Any]:
    """{month: (total cost in the team currency,)}"""
    team = money.team_money_in(session)
    query = _cost_query(period, scope, categories, team)
    return _grouped(session, query, Cost.incurred_on, by_month)


@dataclass(frozen=True)
class CostTotal:
    costs: int  # every cost matching, counted or not
    total: float  # their sum in the team currency
    left_out: int  # costs in a currency the team has no rate for (money.figures_note)


def cost_total(
    engine: Engine,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    job_id: int | None = None,
) -> CostTotal:
    """The costs the Jobs page lists (a job's, or everyone's in a period) and their sum,
    converted in SQL exactly as total_cost and cost_per_hire convert them."""
    with read_session(engine) as session:
        team = money.team_money_in(session)
        value = money.team_value(team)
        query = (
            select(
                func.count(),
                func.coalesce(func.sum(value), 0),
                func.count().filter(value.is_(None)),
            )
            .select_from(Cost)
            .where(*cost_conditions(start=start, end=end, job_id=job_id))
        )
        count, total, left_out = session.execute(query).one()
    return CostTotal(int(count), float(total), int(left_out))


def message_bounced() -> ColumnElement[bool]:
    """A bounce came back for the outbox message (OutboxMessage in the query)."""
    same_message = (
        Event.kind == "bounce",
        Event.campaign_id == OutboxMessage.campaign_id,
        Event.outbox_message_id == OutboxMessage.id,
    )
    # A bounce carries its message's person and campaign: the (candidate_id, campaign_id,
    # kind) index finds it in one seek. Once the person is erased both lose the person,
    # and the campaign's bounces are looked through instead (rare rows only).
    return case(
        (
            OutboxMessage.candidate_id.is_not(None),
            exists(
                select(Event.id).where(
                    Event.candidate_id == OutboxMessage.candidate_id, *same_message
                )
            ),
        ),
        else_=exists(select(Event.id).where(*same_message)),
    )


def message_delivered() -> ColumnElement[bool]:
    """The one definition of a delivered message, for every figure that counts them:
    the mail server accepted it (status "sent") and no bounce came back for it."""
    return and_(OutboxMessage.status == "sent", ~message_bounced())


def _outreach(session: Session, period: Period, scope: Scope, by_month: bool) -> dict[Any, Any]:
    """{month: (people delivered to, replied, clicked, applied)}, one per campaign and person.

    The denominator is the people a campaign delivered at least one message to
    (message_delivered()) with sent_at in the period; of them, those who replied (a human
    reply or "interested"), clicked (human clicks) or applied through that campaign, at
    any time. campaign_figures.report() counts its people the same way, so a campaign's reply
    rate here over a period covering all its sends equals its report's; the one
    difference is that people erased since (no longer anyone) are left out here.
    """
    sent = OutboxMessage.sent_at
    columns: list[Any] = [OutboxMessage.campaign_id, OutboxMessage.candidate_id]
    if by_month:
        columns.append(month_of(sent).label("month"))
    pairs_query = select(*columns).where(
        sent >= period.low,
        sent < period.high,
        OutboxMessage.candidate_id.is_not(None),
        message_delivered(),
    )
    if scope.campaign_id is not None:
        pairs_query = pairs_query.where(OutboxMessage.campaign_id == scope.campaign_id)
    if scope.pool_id is not None:
        pairs_query = pairs_query.join(Campaign, Campaign.id == OutboxMessage.campaign_id).where(
            Campaign.audience_pool_id == scope.pool_id
        )
    if scope.role_families:
        pairs_query = pairs_query.join(Candidate, Candidate.id == OutboxMessage.candidate_id).where(
            Candidate.role_family.in_(scope.role_families)
        )
    pairs = pairs_query.distinct().subquery()

    def event_of(*kinds: str) -> ColumnElement[bool]:
        return exists(
            select(Event.id).where(
                Event.campaign_id == pairs.c.campaign_id,
                Event.candidate_id == pairs.c.candidate_id,
                Event.kind.in_(kinds),
                Event.is_machine.is_(False),
            )
        )

    applied = exists(
        select(Application.id).where(
            Application.campaign_id == pairs.c.campaign_id,
            Application.candidate_id == pairs.c.candidate_id,
        )
    )
    query = select(
        func.count(),
        func.coalesce(func.sum(case((event_of("reply", "interested"), 1), else_=0)), 0),
        func.coalesce(func.sum(case((event_of("click"), 1), else_=0)), 0),
        func.coalesce(func.sum(case((applied, 1), else_=0)), 0),
    ).select_from(pairs)
    if not by_month:
        return {None: tuple(session.execute(query).one())}
    grouped = query.add_columns(pairs.c.month).group_by(pairs.c.month)
    return {row[-1]: tuple(row[:-1]) for row in session.execute(grouped)}


def pool_members_condition(session: Session, scope: Scope) -> ColumnElement[bool]:
    """Who is in the scope's pool now (any pool without one); broken filters count no one."""
    chosen = select(Pool)
    if scope.pool_id is not None:
        chosen = chosen.where(Pool.id == scope.pool_id)
    conditions = []
    for pool in session.scalars(chosen):
        try:
            conditions.append(pool_filter.membership_condition(session, pool))
        except CrmError:
            continue
    condition = or_(*conditions) if conditions else false()
    if scope.role_families:
        condition = and_(condition, Candidate.role_family.in_(scope.role_families))
    return condition


def _pool(session: Session, period: Period, scope: Scope, by_month: bool) -> dict[Any, Any]:
    """{month: (members now, engaged in the month, hired in the month)}"""
    members_condition = pool_members_condition(session, scope)
    members = session.scalar(select(func.count()).select_from(Candidate).where(members_condition))
    event_filter = [
        Event.occurred_at >= period.low,
        Event.occurred_at < period.high,
        Event.kind.in_(HUMAN_ENGAGEMENT),
        Event.is_machine.is_(False),
    ]
    if scope.campaign_id is not None:
        event_filter.append(Event.campaign_id == scope.campaign_id)
    # A pool's filters are weighed once per person, never per event row (that took 13 s
    # at a million events): one seek per member for the period's count, and the members
    # picked once (an IN) for the counts by month.
    if by_month:
        member_ids = select(Candidate.id).where(members_condition)
        engaged_query = select(func.count(Event.candidate_id.distinct())).where(
            Event.candidate_id.in_(member_ids), *event_filter
        )
    else:
        engaged_query = (
            select(func.count())
            .select_from(Candidate)
            .where(
                members_condition,
                exists(select(Event.id).where(Event.candidate_id == Candidate.id, *event_filter)),
            )
        )
    hired_query = (
        select(func.count(Candidate.id.distinct()))
        .select_from(Candidate)
        .join(Application, Application.candidate_id == Candidate.id)
        .where(
            members_condition,
            Application.hired_at >= period.low,
            Application.hired_at < period.high,
        )
    )
    hire_scope = Scope(key_roles=scope.key_roles, campaign_id=scope.campaign_id)
    hired_query = _scoped_applications(hired_query, hire_scope)
    engaged = _grouped(session, engaged_query, Event.occurred_at, by_month)
    hired = _grouped(session, hired_query, Application.hired_at, by_month)
    keys = set(engaged) | set(hired) | ({None} if not by_month else set())
    return {key: (members or 0, engaged.get(key, (0,))[0], hired.get(key, (0,))[0]) for key in keys}


_AGGREGATIONS: dict[str, Callable[[Session, Period, Scope, bool], dict[Any, Any]]] = {
    "hires": hires_by_source,
    "offers": _offers,
    "fills": _fills,
    "costs": costs_in,
    "outreach": _outreach,
    "pool": _pool,
}
_EMPTY: dict[str, Any] = {
    "hires": {},
    "offers": (0, 0, None, 0),
    "fills": (None, 0),
    "costs": (0,),
    "outreach": (0, 0, 0, 0),
    "pool": None,  # members are counted even in a month with no events: see monthly()
}


def _value(metric: str, parts: dict[str, Any]) -> float | None:
    """Each metric's formula, once, from its aggregations for one period."""
    if metric in {"hires", "hires_from_talent_pools_share", "cost_per_hire"}:
        by_source: dict[str, int] = parts["hires"]
        hires = sum(by_source.values())
        if metric == "hires":
            return hires
        if metric == "hires_from_talent_pools_share":
            return ratio(sum(by_source.get(s, 0) for s in TALENT_POOL_SOURCES), hires)
        return ratio(float(parts["costs"][0] or Decimal(0)), hires)
    if metric in {"offer_acceptance_rate", "time_to_hire_days"}:
        accepted, decided, days, timed_count = parts["offers"]
        if metric == "offer_acceptance_rate":
            return ratio(accepted, decided)
        return ratio(days, timed_count)
    if metric == "time_to_fill_days":
        days, filled = parts["fills"]
        return ratio(days, filled)
    if metric in {"reply_rate", "click_rate", "campaign_application_rate"}:
        people, replied, clicked, applied = parts["outreach"]
        chosen = {"reply_rate": replied, "click_rate": clicked}.get(metric, applied)
        return ratio(chosen, people)
    if metric in {"pool_engagement_rate", "pool_to_hire_rate"}:
        members, engaged, hired = parts["pool"]
        return ratio(engaged if metric == "pool_engagement_rate" else hired, members)
    raise ValueError(f"Unknown metric {metric!r}.")


def _asked(metric: str, start: dt.date, end: dt.date, scope: Scope | None) -> tuple[Period, Scope]:
    """The period and scope of a question about one metric, checked."""
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.")
    check_period(start, end)
    return Period(start, end), scope or Scope()


# --- public -----------------------------------------------------------------------------


def compute(
    engine: Engine, *, start: dt.date, end: dt.date, scope: Scope | None = None
) -> MetricsReport:
    """Every metric for the period (one aggregation query per group of metrics)."""
    check_period(start, end)
    scope = scope or Scope()
    period = Period(start, end)
    with read_session(engine) as session:
        parts = {
            name: aggregate(session, period, scope, False)[None]
            for name, aggregate in _AGGREGATIONS.items()
        }
    by_source = parts["hires"]
    hires = sum(by_source.values())
    values = {metric: _value(metric, parts) for metric in METRICS}
    return MetricsReport(
        start=start,
        end=end,
        hires=hires,
        time_to_fill_days=values["time_to_fill_days"],
        time_to_hire_days=values["time_to_hire_days"],
        cost_per_hire=values["cost_per_hire"],
        offer_acceptance_rate=values["offer_acceptance_rate"],
        hires_from_talent_pools_share=values["hires_from_talent_pools_share"],
        source_of_hire={
            source: count / hires for source, count in sorted(by_source.items()) if hires
        },
        total_cost=float(parts["costs"][0] or 0),
        campaign_application_rate=values["campaign_application_rate"],
        reply_rate=values["reply_rate"],
        click_rate=values["click_rate"],
        pool_engagement_rate=values["pool_engagement_rate"],
        pool_to_hire_rate=values["pool_to_hire_rate"],
    )


def value(
    engine: Engine, *, metric: str, start: dt.date, end: dt.date, scope: Scope | None = None
) -> float | None:
    """One metric for the period, running only the aggregations it needs."""
    period, scope = _asked(metric, start, end, scope)
    with read_session(engine) as session:
        parts = {
            name: _AGGREGATIONS[name](session, period, scope, False)[None]
            for name in _NEEDS[metric]
        }
    return _value(metric, parts)


def monthly(
    engine: Engine,
    *,
    metric: str,
    start: dt.date,
    end: dt.date,
    scope: Scope | None = None,
) -> list[tuple[dt.date, float | None]]:
    """(first of month, value) for each month the period touches, the month clipped to the
    period: each value equals value() over that clipped month. One grouped query per
    aggregation the metric needs."""
    period, scope = _asked(metric, start, end, scope)
    with read_session(engine) as session:
        grouped = {
            name: _AGGREGATIONS[name](session, period, scope, True) for name in _NEEDS[metric]
        }
        members = None
        if "pool" in grouped:
            members = session.scalar(
                select(func.count())
                .select_from(Candidate)
                .where(pool_members_condition(session, scope))
            )
    series = []
    for first, _, _ in months(start, end):
        key = _month_key(first)
        parts: dict[str, Any] = {}
        for name, found in grouped.items():
            empty = _EMPTY[name] if name != "pool" else (members or 0, 0, 0)
            parts[name] = found.get(key, empty)
        series.append((first, _value(metric, parts)))
    return series


__all__ = [
    "METRICS",
    "SOURCE_LABELS",
    "TALENT_POOL_SOURCES",
    "CostTotal",
    "Metric",
    "MetricsReport",
    "Period",
    "Scope",
    "compute",
    "cost_total",
    "monthly",
    "months",
    "value",
]
