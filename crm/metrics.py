"""The ROI metrics, each defined once and computed by SQL aggregation.

Definitions (docs/metrics.md repeats them for readers):
- hires: applications whose hired_at falls in the period.
- time_to_fill_days: mean days from a job's opened_at to its filled_at, for jobs filled
  in the period.
- time_to_hire_days: mean days from applied_at (sourced_at for people we approached, who
  never applied) to the offer's acceptance (offer_decided_at with offer_accepted), for
  offers accepted in the period.
- cost_per_hire: costs incurred in the period divided by hires in the period.
- offer_acceptance_rate: offers accepted / offers decided (accepted or declined) in the
  period.
- source_of_hire: each source's share of the period's hires.
- hires_from_talent_pools_share: the share of hires whose source is the talent pool or a
  CRM campaign (both come from the pipeline this CRM keeps warm).
A metric with no data in the period is None ("no data"), never 0.
Scope filters: role_families (list), key_roles (bool).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Select, and_, case, func, select

from crm.db import read_session
from crm.models import Application, Cost, Job
from crm.sql import days_between

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

# name -> (label, unit, which direction is better)
METRICS: dict[str, tuple[str, str, str]] = {
    "time_to_hire_days": ("Time to hire", "days", "lower"),
    "time_to_fill_days": ("Time to fill", "days", "lower"),
    "cost_per_hire": ("Cost per hire", "money", "lower"),
    "offer_acceptance_rate": ("Offer acceptance rate", "fraction", "higher"),
    "hires_from_talent_pools_share": ("Hires from talent pools", "fraction", "higher"),
    "hires": ("Hires", "count", "higher"),
}


@dataclass(frozen=True)
class Scope:
    role_families: tuple[str, ...] = ()
    key_roles: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Scope:
        data = data or {}
        return cls(
            role_families=tuple(data.get("role_families") or ()),
            key_roles=bool(data.get("key_roles")),
        )

    def describe(self) -> str:
        parts = []
        if self.key_roles:
            parts.append("key roles")
        if self.role_families:
            parts.append(", ".join(self.role_families))
        return " · ".join(parts) or "all roles"


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
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def _bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The period as [start 00:00 UTC, day after end 00:00 UTC)."""
    low = dt.datetime.combine(start, dt.time(), dt.UTC)
    high = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.UTC)
    return low, high


def _scoped_applications(query: Select[Any], scope: Scope) -> Select[Any]:
    if not scope.role_families and not scope.key_roles:
        return query
    query = query.join(Job, Job.id == Application.job_id)
    if scope.role_families:
        query = query.where(Job.role_family.in_(scope.role_families))
    if scope.key_roles:
        query = query.where(Job.key_role.is_(True))
    return query


def _scoped_jobs(query: Select[Any], scope: Scope) -> Select[Any]:
    if scope.role_families:
        query = query.where(Job.role_family.in_(scope.role_families))
    if scope.key_roles:
        query = query.where(Job.key_role.is_(True))
    return query


def compute(
    engine: Engine, *, start: dt.date, end: dt.date, scope: Scope | None = None
) -> MetricsReport:
    if end < start:
        raise ValueError("The period ends before it starts.")
    scope = scope or Scope()
    low, high = _bounds(start, end)
    hired_in_period = and_(Application.hired_at >= low, Application.hired_at < high)
    with read_session(engine) as session:
        by_source = dict(
            session.execute(
                _scoped_applications(
                    select(Application.source, func.count()).where(hired_in_period), scope
                ).group_by(Application.source)
            ).all()
        )
        hires = sum(by_source.values())

        entered = func.coalesce(Application.applied_at, Application.sourced_at)
        decided = and_(
            Application.offer_decided_at >= low,
            Application.offer_decided_at < high,
            Application.offer_accepted.is_not(None),
        )
        accepted_count, decided_count, time_to_hire = session.execute(
            _scoped_applications(
                select(
                    func.sum(case((Application.offer_accepted.is_(True), 1), else_=0)),
                    func.count(),
                    func.avg(
                        case(
                            (
                                and_(Application.offer_accepted.is_(True), entered.is_not(None)),
                                days_between(Application.offer_decided_at, entered),
                            )
                        )
                    ),
                ).where(decided),
                scope,
            )
        ).one()

        time_to_fill = session.scalar(
            _scoped_jobs(
                select(func.avg(days_between(Job.filled_at, Job.opened_at))).where(
                    Job.filled_at >= start, Job.filled_at <= end
                ),
                scope,
            )
        )

        cost_query = select(func.coalesce(func.sum(Cost.amount), 0)).where(
            Cost.incurred_on >= start, Cost.incurred_on <= end
        )
        if scope.role_families or scope.key_roles:
            cost_query = _scoped_jobs(cost_query.join(Job, Job.id == Cost.job_id), scope)
        total_cost = float(session.scalar(cost_query) or Decimal(0))

    pool_hires = sum(by_source.get(source, 0) for source in TALENT_POOL_SOURCES)
    return MetricsReport(
        start=start,
        end=end,
        hires=hires,
        time_to_fill_days=None if time_to_fill is None else float(time_to_fill),
        time_to_hire_days=None if time_to_hire is None else float(time_to_hire),
        cost_per_hire=(total_cost / hires) if hires else None,
        offer_acceptance_rate=(accepted_count or 0) / decided_count if decided_count else None,
        hires_from_talent_pools_share=(pool_hires / hires) if hires else None,
        source_of_hire={
            source: count / hires for source, count in sorted(by_source.items()) if hires
        },
        total_cost=total_cost,
    )


def hires_by_pool(engine: Engine, *, start: dt.date, end: dt.date) -> dict[int, int]:
    """Hires in the period (hired_at, as for `hires`) by the talent pool they came from."""
    low, high = _bounds(start, end)
    with read_session(engine) as session:
        return {
            pool_id: count
            for pool_id, count in session.execute(
                select(Application.pool_id, func.count())
                .where(
                    Application.pool_id.is_not(None),
                    Application.hired_at >= low,
                    Application.hired_at < high,
                )
                .group_by(Application.pool_id)
            )
        }
