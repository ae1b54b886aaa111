"""What needs attention today, for the Home page: each list computed from the database."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from crm import goals, outbox_view, touches, touchpoints
from crm.content_calendar import cadence, occurrences
from crm.db import read_session
from crm.models import Pool

QUIET_AFTER_DAYS = 30


@dataclass(frozen=True)
class QuietPool:
    name: str
    last_touch: dt.datetime | None


@dataclass(frozen=True)
class Attention:
    week_start: dt.date
    calendar_this_week: list[occurrences.CalendarEntry]
    steps_due: list[outbox_view.StepDue]
    quiet_pools: list[QuietPool]
    pool_count: int
    goals_needing_care: list[goals.GoalProgress]
    follow_ups: list[dict]
    # Pools the calendar would contact more often than their weekly cap (next four weeks).
    too_often: list[cadence.CadenceWarning] = field(default_factory=list)


def pools_gone_quiet(engine: Engine, *, now: dt.datetime) -> tuple[list[QuietPool], int]:
    """Pools whose last touch (crm.touches: a campaign aimed at the pool sent, or content
    published to it) is QUIET_AFTER_DAYS days old or more, or never was; and how many pools
    there are in all."""
    with read_session(engine) as session:
        last_touches = touches.pool_last_touches(session)
        pools = session.execute(select(Pool.id, Pool.name).order_by(Pool.name)).all()
    cutoff = now - dt.timedelta(days=QUIET_AFTER_DAYS)
    quiet = []
    for pool_id, name in pools:
        last_touch = last_touches.get(pool_id)
        if last_touch is None or last_touch < cutoff:
            quiet.append(QuietPool(name, last_touch))
    return quiet, len(pools)


def today_view(engine: Engine, *, now: dt.datetime) -> Attention:
    today = now.date()
    week_start = today - dt.timedelta(days=today.weekday())
    week_start_at = dt.datetime.combine(week_start, dt.time(), dt.UTC)
    end_of_today = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.UTC)
    quiet_pools, pool_count = pools_gone_quiet(engine, now=now)
    return Attention(
        week_start=week_start,
        calendar_this_week=occurrences.items_between(
            engine, start=week_start_at, end=week_start_at + dt.timedelta(days=7)
        ),
        steps_due=outbox_view.steps_due(engine, until=end_of_today),
        quiet_pools=quiet_pools,
        pool_count=pool_count,
        goals_needing_care=[
            progress
            for progress in goals.all_progress(engine, today=today)
            if progress.status in {"off_track", "at_risk"}
        ],
        follow_ups=touchpoints.follow_ups_due(engine, today=today),
        too_often=[
            warning
            for warning in cadence.cadence_warnings(
                engine, start=week_start_at, end=week_start_at + dt.timedelta(days=28), now=now
            )
            if warning.kind == "too_often"
        ],
    )
