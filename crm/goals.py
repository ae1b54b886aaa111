"""Goals: a metric, a scope, a baseline, a target and a deadline, and where we stand.

Status rule: the expected value moves in a straight line from the baseline (at the start
date) to the target (at the deadline). The actual value is the metric measured from the
start date to today (or the deadline, once past). A goal is
- on track when the actual value is at or beyond the expected value,
- at risk when it is behind by no more than a quarter of the whole planned change,
- off track when it is further behind,
- no data when the metric has no data since the start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, select

from crm import audit, metrics
from crm.auth import require_writer
from crm.db import read_session, write_session
from crm.errors import ValidationError
from crm.models import Goal, User

AT_RISK_SHARE = 0.25
STATUSES = ("on_track", "at_risk", "off_track", "no_data")
STATUS_LABELS = {
    "on_track": "On track",
    "at_risk": "At risk",
    "off_track": "Off track",
    "no_data": "No data yet",
}


@dataclass(frozen=True)
class GoalProgress:
    goal_id: int
    title: str
    metric: str
    baseline: float | None
    target: float | None
    expected: float | None
    actual: float | None
    status: str
    start_date: dt.date
    deadline: dt.date


def target_value(goal: Goal, baseline: float | None) -> float | None:
    if goal.target_kind == "absolute":
        return goal.target_value
    if baseline is None:
        return None
    return baseline * (1 + goal.target_value)


def baseline_value(engine: Engine, goal: Goal) -> float | None:
    """The entered baseline, or the metric over the baseline period."""
    if goal.baseline_value is not None:
        return goal.baseline_value
    if goal.baseline_from is None or goal.baseline_to is None:
        return None
    report = metrics.compute(
        engine,
        start=goal.baseline_from,
        end=goal.baseline_to,
        scope=metrics.Scope.from_json(goal.scope),
    )
    return report.value(goal.metric)


def expected_value(
    baseline: float, target: float, start: dt.date, deadline: dt.date, today: dt.date
) -> float:
    span = (deadline - start).days
    elapsed = min(max((today - start).days, 0), span)
    fraction = elapsed / span if span > 0 else 1.0
    return baseline + (target - baseline) * fraction


def status_for(
    *, baseline: float | None, target: float | None, expected: float | None, actual: float | None
) -> str:
    if actual is None or baseline is None or target is None or expected is None:
        return "no_data"
    planned_change = target - baseline
    direction = 1.0 if planned_change >= 0 else -1.0
    ahead_by = (actual - expected) * direction
    tolerance = 1e-9 * max(1.0, abs(planned_change))  # float noise at the exact boundaries
    if ahead_by >= -tolerance:
        return "on_track"
    if abs(ahead_by) <= abs(planned_change) * AT_RISK_SHARE + tolerance:
        return "at_risk"
    return "off_track"


def progress(engine: Engine, goal: Goal, *, today: dt.date) -> GoalProgress:
    baseline = baseline_value(engine, goal)
    target = target_value(goal, baseline)
    measured_to = min(today, goal.deadline)
    actual = None
    if measured_to >= goal.start_date:
        actual = metrics.compute(
            engine,
            start=goal.start_date,
            end=measured_to,
            scope=metrics.Scope.from_json(goal.scope),
        ).value(goal.metric)
    expected = None
    if baseline is not None and target is not None:
        expected = expected_value(baseline, target, goal.start_date, goal.deadline, today)
    return GoalProgress(
        goal_id=goal.id,
        title=goal.title,
        metric=goal.metric,
        baseline=baseline,
        target=target,
        expected=expected,
        actual=actual,
        status=status_for(baseline=baseline, target=target, expected=expected, actual=actual),
        start_date=goal.start_date,
        deadline=goal.deadline,
    )


def list_goals(engine: Engine) -> list[Goal]:
    with read_session(engine) as session:
        return list(session.scalars(select(Goal).order_by(Goal.deadline, Goal.id)))


def all_progress(engine: Engine, *, today: dt.date) -> list[GoalProgress]:
    return [progress(engine, goal, today=today) for goal in list_goals(engine)]


def validate_goal(goal: Goal) -> None:
    if goal.metric not in metrics.METRICS:
        raise ValidationError(f"Unknown metric {goal.metric!r}.")
    if not goal.title.strip():
        raise ValidationError("A goal needs a title.")
    if goal.deadline <= goal.start_date:
        raise ValidationError("The deadline must come after the start date.")
    unit = metrics.METRICS[goal.metric][1]
    if goal.target_kind == "relative":
        if goal.target_value <= -1:
            raise ValidationError("A reduction of 100% or more is impossible.")
        if goal.target_value == 0:
            raise ValidationError("A relative target of 0% is no change; give a percentage.")
    elif unit == "fraction" and not 0 <= goal.target_value <= 1:
        raise ValidationError("A rate or share target must lie between 0% and 100%.")
    elif goal.target_value < 0:
        raise ValidationError("The target cannot be negative.")


def create_goal(engine: Engine, *, actor: User, goal: Goal) -> Goal:
    require_writer(actor)
    validate_goal(goal)
    with write_session(engine) as session:
        goal.owner_id = goal.owner_id or actor.id
        session.add(goal)
        session.flush()
        audit.record(session, actor=actor, action="goal.create", entity="goal", entity_id=goal.id)
    return goal
