"""What talent pools yield: the funnel from pool member to hire (in the pool, contacted,
engaged, applied, hired from talent pools), the hires each pool brought, and what hiring
from pools saved.

Both build on the metrics' definitions (crm.metrics: periods, scope, pool membership,
hires and costs), so their figures agree with the Goals page's metrics.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from crm import metrics
from crm.db import read_session
from crm.models import Application, Candidate, Event, OutboxMessage

# Costs that buying hires elsewhere takes, and the CRM's own running costs (savings()).
EXTERNAL_COST_CATEGORIES = ("agency_fees", "job_ads")
EXTERNAL_SOURCES = ("agency", "job_board")
CRM_COST_CATEGORIES = ("tools", "recruiter_time")

# The funnel's steps, each within the one before; the last is "Hired from talent pools".
FUNNEL_STEPS = ("members", "contacted", "engaged", "applied", "hired_from_talent_pools")
FUNNEL_LABELS = {
    "members": "In the pool now, or hired from it",
    "contacted": "Contacted",
    "engaged": "Engaged",
    "applied": "Applied",
    "hired_from_talent_pools": "Hired from talent pools",
}


def _pool_hire_conditions(
    low: dt.datetime, high: dt.datetime, pool_id: int | None
) -> list[ColumnElement[bool]]:
    """The applications that are the period's hires from talent pools.

    With no pool: hired in the period with source talent_pool or campaign, exactly the
    hires counted in hires_from_talent_pools_share's numerator. With a pool: hired in the
    period from that pool (Application.pool_id), whatever the source.
    """
    came_from = (
        Application.source.in_(metrics.TALENT_POOL_SOURCES)
        if pool_id is None
        else Application.pool_id == pool_id
    )
    return [Application.hired_at >= low, Application.hired_at < high, came_from]


def _hired_from_talent_pools(
    session: Session, low: dt.datetime, high: dt.datetime, pool_id: int | None
) -> int:
    """People hired from talent pools in the period (_pool_hire_conditions): each person
    once, however many such hires they had; a hire whose person was erased is one person."""
    found = session.scalar(
        select(
            func.count(Application.candidate_id.distinct())
            + func.count().filter(Application.candidate_id.is_(None))
        ).where(*_pool_hire_conditions(low, high, pool_id))
    )
    return int(found or 0)


def hired_from_talent_pools(
    engine: Engine, *, start: dt.date, end: dt.date, pool_id: int | None = None
) -> int:
    """People hired from talent pools in the period: the funnel's last step and Savings'
    figure. With no pool it equals the numerator of hires_from_talent_pools_share (which
    counts hires) unless one person was hired twice from pools in the period."""
    metrics.check_period(start, end)
    low, high = metrics.period_bounds(start, end)
    with read_session(engine) as session:
        return _hired_from_talent_pools(session, low, high, pool_id)


def funnel(
    engine: Engine, *, start: dt.date, end: dt.date, pool_id: int | None = None
) -> dict[str, int]:
    """People, step by step: in the pool → contacted → engaged → applied → hired from
    talent pools, each step holding everyone of the steps after it. All of the pools
    without pool_id.

    hired_from_talent_pools = hired_from_talent_pools(): people with a hire in the period
    from talent pools (no pool: source talent_pool or campaign, so with no pool it is the
    numerator of hires_from_talent_pools_share, counted per person; with a pool: hires
    whose application came from that pool). They count in every earlier step, having
    necessarily been in a pool, contacted, engaged and applied, even when they have since
    left a dynamic pool or were contacted before the period.
    The other people are the pool's members now:
    - members: members now, plus those hired from pools in the period who have left;
    - contacted: sent a campaign message, or last contacted, in the period;
    - engaged: contacted, and a human open, click or reply, or an application that got
      past sourcing, in the period (applying is engaging);
    - applied: contacted, and an application that got past sourcing in the period.
    """
    metrics.check_period(start, end)
    low, high = metrics.period_bounds(start, end)
    scope = metrics.Scope(pool_id=pool_id)
    hire_conditions = _pool_hire_conditions(low, high, pool_id)
    with read_session(engine) as session:
        member = metrics.pool_members_condition(session, scope)
        hired = Candidate.id.in_(
            select(Application.candidate_id).where(
                *hire_conditions, Application.candidate_id.is_not(None)
            )
        )
        contacted = or_(
            and_(Candidate.last_contacted_at >= low, Candidate.last_contacted_at < high),
            exists(
                select(OutboxMessage.id).where(
                    OutboxMessage.candidate_id == Candidate.id,
                    OutboxMessage.sent_at >= low,
                    OutboxMessage.sent_at < high,
                )
            ),
        )
        moved_on = func.coalesce(
            Application.applied_at,
            Application.screen_at,
            Application.interview_at,
            Application.offer_at,
            Application.hired_at,
        )
        applied = exists(
            select(Application.id).where(
                Application.candidate_id == Candidate.id, moved_on >= low, moved_on < high
            )
        )
        engaged = or_(
            applied,
            exists(
                select(Event.id).where(
                    Event.candidate_id == Candidate.id,
                    Event.occurred_at >= low,
                    Event.occurred_at < high,
                    Event.kind.in_(metrics.HUMAN_ENGAGEMENT),
                    Event.is_machine.is_(False),
                )
            ),
        )
        # Over members and the hired only: a member counts in a step by its condition,
        # a person hired from pools in every step.
        row = session.execute(
            select(
                func.count(),
                func.count().filter(or_(hired, contacted)),
                func.count().filter(or_(hired, and_(contacted, engaged))),
                func.count().filter(or_(hired, and_(contacted, applied))),
                func.count().filter(hired),
            )
            .select_from(Candidate)
            .where(or_(member, hired))
        ).one()
        # A pool hire whose person was erased is still one person in every step.
        erased = session.scalar(
            select(func.count()).where(*hire_conditions, Application.candidate_id.is_(None))
        )
    return dict(zip(FUNNEL_STEPS, (int(n or 0) + int(erased or 0) for n in row), strict=True))


def _cost_of(session: Session, period: metrics.Period, categories: tuple[str, ...]) -> Any:
    """The period's costs in these categories, in the team currency, for every job."""
    return metrics.costs_in(session, period, metrics.Scope(), False, categories)[None][0]


def savings(
    engine: Engine,
    *,
    start: dt.date,
    end: dt.date,
    agency_cost_per_hire: Decimal | None = None,
) -> dict[str, Any]:
    """What hiring from talent pools saved in the period (docs/metrics.md, Savings).

    hired_from_talent_pools × external cost per hire - the CRM's own costs, where
    hired_from_talent_pools is the funnel's last step with no pool (people hired from
    talent pools in the period, each once). The external cost per hire is the figure
    given, else (agency fees + job ads in the period) / (agency and job board hires in the
    period); with neither, the savings are None.
    """
    metrics.check_period(start, end)
    period = metrics.Period(start, end)
    scope = metrics.Scope()
    with read_session(engine) as session:
        by_source = metrics.hires_by_source(session, period, scope, False)[None]
        external_cost = _cost_of(session, period, EXTERNAL_COST_CATEGORIES)
        crm_cost = _cost_of(session, period, CRM_COST_CATEGORIES)
        hired_from_pools = _hired_from_talent_pools(session, period.low, period.high, None)
    external_hires = sum(by_source.get(source, 0) for source in EXTERNAL_SOURCES)
    if agency_cost_per_hire is not None:
        if Decimal(agency_cost_per_hire) < 0:
            raise ValueError("The agency cost per hire cannot be negative.")
        per_hire: float | None = float(agency_cost_per_hire)
        basis = "given"
    else:
        per_hire = metrics.ratio(float(external_cost or 0), external_hires)
        basis = "computed" if per_hire is not None else "no data"
    crm_costs = float(crm_cost or 0)
    gross = None if per_hire is None else hired_from_pools * per_hire
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "hired_from_talent_pools": hired_from_pools,
        "external_hires": external_hires,
        "external_cost_per_hire": per_hire,
        "external_cost_basis": basis,
        "gross_savings": gross,
        "crm_costs": crm_costs,
        "net_savings": None if gross is None else gross - crm_costs,
    }


def hires_by_pool(engine: Engine, *, start: dt.date, end: dt.date) -> dict[int, int]:
    """Hires in the period (hired_at, as for `hires`) by the talent pool they came from."""
    low, high = metrics.period_bounds(start, end)
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
