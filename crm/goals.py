"""Goals: a metric, a scope, a baseline, a target and a deadline, and where we stand.

Status rule: the expected value moves in a straight line from the baseline (at the start
date) to the target (at the deadline). The actual value is the metric measured from the
start date to today (or the deadline, once past). "Ahead" is the metric's better
direction: lower for time and cost metrics, higher for the rest (a target the baseline
already beats then means "stay at or beyond this path"). A goal is
- on track when the actual value is at or beyond the expected value,
- at risk when it is behind by no more than a quarter of the whole planned change (5% of
  the baseline for a goal that holds the line),
- off track when it is further behind,
- no data when there is no baseline or the metric has no data since the start.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from crm import audit, metrics
from crm.db import get_existing, read_session, write_session
from crm.errors import CrmError, NotFound, ValidationError
from crm.models import Campaign, Goal, Job, Pool, User
from crm.permissions import require_writer

AT_RISK_SHARE = 0.25
HOLD_BAND = 0.05  # the at-risk band of a goal whose target equals its baseline
STATUSES = ("on_track", "at_risk", "off_track", "no_data")
STATUS_LABELS = {
    "on_track": "On track",
    "at_risk": "At risk",
    "off_track": "Off track",
    "no_data": "No data yet",
}
TARGET_KINDS = ("absolute", "relative")
SCOPE_KEYS = (
    "role_families",
    "role_family",
    "key_roles",
    "key_roles_only",
    "pool_id",
    "campaign_id",
)
# The role families "tech roles" means in the guide's first example (the demo's families).
TECH_ROLE_FAMILIES = ("Software Engineering", "Data & Analytics", "DevOps & Cloud")

# The guide's three example goals, exactly as written. Dates are relative to the day the
# goal is set (guide_drafts): "months" after the start, or "until": "year_end". The
# baseline is the metric over the `baseline_months` before the start.
GUIDE_EXAMPLES: list[dict[str, Any]] = [
    {
        "title": "Reduce time-to-hire by 15% for key tech roles in six months",
        "metric": "time_to_hire_days",
        "scope": {"key_roles": True, "role_families": list(TECH_ROLE_FAMILIES)},
        "target_kind": "relative",
        "target_value": -0.15,
        "months": 6,
        "baseline_months": 6,
    },
    {
        # "by 10%" is relative: 70% accepted becomes 77%. The guide names no deadline.
        "title": "Boost the offer acceptance rate by 10%",
        "metric": "offer_acceptance_rate",
        "scope": {},
        "target_kind": "relative",
        "target_value": 0.10,
        "months": 6,
        "baseline_months": 6,
    },
    {
        "title": "Source 25% of new hires directly from your talent pool by year's end",
        "metric": "hires_from_talent_pools_share",
        "scope": {},
        "target_kind": "absolute",
        "target_value": 0.25,
        "until": "year_end",
        "baseline_months": 6,
    },
]


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
    better: str = "higher"  # the metric's better direction
    scope: dict[str, Any] = field(default_factory=dict)
    owner_id: int | None = None


@dataclass
class GoalDraft:
    """What the goal form edits; save_goal checks it and stores it."""

    metric: str
    target_kind: str
    target_value: float
    start_date: dt.date
    deadline: dt.date
    title: str
    scope: dict[str, Any] = field(default_factory=dict)
    baseline_value: float | None = None
    baseline_from: dt.date | None = None
    baseline_to: dt.date | None = None
    owner_id: int | None = None

    @classmethod
    def from_goal(cls, goal: Goal) -> GoalDraft:
        return cls(
            metric=goal.metric,
            target_kind=goal.target_kind,
            target_value=goal.target_value,
            start_date=goal.start_date,
            deadline=goal.deadline,
            title=goal.title,
            scope=dict(goal.scope or {}),
            baseline_value=goal.baseline_value,
            baseline_from=goal.baseline_from,
            baseline_to=goal.baseline_to,
            owner_id=goal.owner_id,
        )

    def as_goal(self) -> Goal:
        return Goal(**asdict(self))


def _add_months(day: dt.date, count: int) -> dt.date:
    month_index = day.month - 1 + count
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def guide_drafts(*, today: dt.date, owner_id: int | None = None) -> list[GoalDraft]:
    """GUIDE_EXAMPLES as drafts starting today ("by year's end": this year's last day, or
    next year's when less than a month is left)."""
    drafts = []
    for example in GUIDE_EXAMPLES:
        if example.get("until") == "year_end":
            deadline = dt.date(today.year, 12, 31)
            if (deadline - today).days < 31:
                deadline = dt.date(today.year + 1, 12, 31)
        else:
            deadline = _add_months(today, example["months"])
        drafts.append(
            GoalDraft(
                title=example["title"],
                metric=example["metric"],
                scope=dict(example["scope"]),
                target_kind=example["target_kind"],
                target_value=example["target_value"],
                start_date=today,
                deadline=deadline,
                baseline_from=_add_months(today, -example["baseline_months"]),
                baseline_to=today - dt.timedelta(days=1),
                owner_id=owner_id,
            )
        )
    return drafts


# --- values -----------------------------------------------------------------------------


def target_value(goal: Goal | GoalDraft, baseline: float | None) -> float | None:
    if goal.target_kind == "absolute":
        return goal.target_value
    if baseline is None:
        return None
    return baseline * (1 + goal.target_value)


def baseline_value(engine: Engine, goal: Goal | GoalDraft) -> float | None:
    """The entered baseline, or the metric over the baseline period."""
    if goal.baseline_value is not None:
        return goal.baseline_value
    if goal.baseline_from is None or goal.baseline_to is None:
        return None
    return metrics.value(
        engine,
        metric=goal.metric,
        start=goal.baseline_from,
        end=goal.baseline_to,
        scope=metrics.Scope.from_json(goal.scope),
    )


def expected_value(
    baseline: float, target: float, start: dt.date, deadline: dt.date, today: dt.date
) -> float:
    span = (deadline - start).days
    elapsed = min(max((today - start).days, 0), span)
    fraction = elapsed / span if span > 0 else 1.0
    return baseline + (target - baseline) * fraction


def status_for(
    *,
    baseline: float | None,
    target: float | None,
    expected: float | None,
    actual: float | None,
    better: str | None = None,
) -> str:
    if actual is None or baseline is None or target is None or expected is None:
        return "no_data"
    planned_change = target - baseline
    if better in {"lower", "higher"}:
        direction = -1.0 if better == "lower" else 1.0
    else:
        direction = -1.0 if planned_change < 0 else 1.0
    band = abs(planned_change) * AT_RISK_SHARE if planned_change else abs(baseline) * HOLD_BAND
    ahead_by = (actual - expected) * direction
    tolerance = 1e-9 * max(1.0, abs(planned_change), abs(baseline))  # float noise
    if ahead_by >= -tolerance:
        return "on_track"
    if -ahead_by <= band + tolerance:
        return "at_risk"
    return "off_track"


def _better(metric: str) -> str:
    return metrics.METRICS[metric].better if metric in metrics.METRICS else "higher"


def progress(engine: Engine, goal: Goal, *, today: dt.date) -> GoalProgress:
    baseline = baseline_value(engine, goal)
    target = target_value(goal, baseline)
    measured_to = min(today, goal.deadline)
    actual = None
    if measured_to >= goal.start_date:
        actual = metrics.value(
            engine,
            metric=goal.metric,
            start=goal.start_date,
            end=measured_to,
            scope=metrics.Scope.from_json(goal.scope),
        )
    expected = None
    if baseline is not None and target is not None:
        expected = expected_value(baseline, target, goal.start_date, goal.deadline, today)
    better = _better(goal.metric)
    return GoalProgress(
        goal_id=goal.id,
        title=goal.title,
        metric=goal.metric,
        baseline=baseline,
        target=target,
        expected=expected,
        actual=actual,
        status=status_for(
            baseline=baseline, target=target, expected=expected, actual=actual, better=better
        ),
        start_date=goal.start_date,
        deadline=goal.deadline,
        better=better,
        scope=dict(goal.scope or {}),
        owner_id=goal.owner_id,
    )


def series(
    engine: Engine, goal: Goal, *, today: dt.date
) -> list[tuple[dt.date, float | None, float | None]]:
    """(month, actual, expected) for each month from the start to today (or the deadline).

    actual is the metric from the start date to the month's last day (today in the
    current month), as progress() measures it, so the last point is today's status;
    expected is the straight-line path on that day.
    """
    last = min(today, goal.deadline)
    if last < goal.start_date:
        return []
    baseline = baseline_value(engine, goal)
    target = target_value(goal, baseline)
    scope = metrics.Scope.from_json(goal.scope)
    points = []
    for first, _, month_end in metrics.months(goal.start_date, last):
        actual = metrics.value(
            engine, metric=goal.metric, start=goal.start_date, end=month_end, scope=scope
        )
        expected = None
        if baseline is not None and target is not None:
            expected = expected_value(baseline, target, goal.start_date, goal.deadline, month_end)
        points.append((first, actual, expected))
    return points


def role_family_choices(engine: Engine) -> list[str]:
    """The role families to pick from (a goal's scope, a job's family): those the jobs
    have, and the tech families of the guide's examples, in order."""
    with read_session(engine) as session:
        used = set(session.scalars(select(Job.role_family).where(Job.role_family.is_not(None))))
    return sorted((used - {""}) | set(TECH_ROLE_FAMILIES))


def list_goals(engine: Engine) -> list[Goal]:
    with read_session(engine) as session:
        return list(session.scalars(select(Goal).order_by(Goal.deadline, Goal.id)))


def get_goal(engine: Engine, goal_id: int) -> Goal:
    with read_session(engine) as session:
        goal = get_existing(session, Goal, goal_id, "goal")
        return goal


def all_progress(engine: Engine, *, today: dt.date) -> list[GoalProgress]:
    return [progress(engine, goal, today=today) for goal in list_goals(engine)]


def all_progress_with_series(
    engine: Engine, *, today: dt.date
) -> list[tuple[GoalProgress, list[tuple[dt.date, float | None, float | None]]]]:
    """Each goal's progress and its month-by-month series, for the Goals page."""
    return [
        (progress(engine, goal, today=today), series(engine, goal, today=today))
        for goal in list_goals(engine)
    ]


def add_guide_examples(
    engine: Engine, *, actor: User, today: dt.date
) -> tuple[list[str], list[str]]:
    """Save the guide's example goals (guide_drafts) for the actor: (titles added, one
    sentence per example refused, naming it)."""
    require_writer(engine, actor)
    added, refused = [], []
    for draft in guide_drafts(today=today, owner_id=actor.id):
        try:
            save_goal(engine, actor=actor, draft=draft)
        except CrmError as error:  # one example refused does not stop the others
            refused.append(f"“{draft.title}”: {error}")
        else:
            added.append(draft.title)
    return added, refused


# --- checks and saving ------------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{value * 100:.4g}%"


def validate_goal(goal: Goal | GoalDraft, *, baseline: float | None = None) -> None:
    """Refuse an impossible or self-contradicting goal with one sentence. With the
    baseline known, also refuse a relative target that leaves the possible range."""
    if goal.metric not in metrics.METRICS:
        raise ValidationError(f"Unknown metric {goal.metric!r}.")
    if not (goal.title or "").strip():
        raise ValidationError("A goal needs a title.")
    if goal.deadline <= goal.start_date:
        raise ValidationError("The deadline must come after the start date.")
    if goal.target_kind not in TARGET_KINDS:
        raise ValidationError("The target is either absolute or a relative change.")
    label, unit, better = metrics.METRICS[goal.metric]
    if (
        goal.baseline_from is not None
        and goal.baseline_to is not None
        and goal.baseline_to < goal.baseline_from
    ):
        raise ValidationError("The baseline period ends before it starts.")
    if goal.baseline_value is not None:
        if goal.baseline_value < 0:
            raise ValidationError("The baseline cannot be negative.")
        if unit == "fraction" and goal.baseline_value > 1:
            raise ValidationError("A rate or share baseline must lie between 0% and 100%.")
    if goal.target_kind == "relative":
        if goal.target_value <= -1:
            raise ValidationError(
                f"A reduction of 100% or more is impossible ({_percent(-goal.target_value)} "
                "was asked)."
            )
        if goal.target_value == 0:
            raise ValidationError("A relative target of 0% is no change; give a percentage.")
        if (goal.target_value > 0) != (better == "higher"):
            wanted = "a reduction" if better == "lower" else "an increase"
            raise ValidationError(
                f"{label} is better {better}; set {wanted}, not "
                f"{'an increase' if goal.target_value > 0 else 'a reduction'}."
            )
    elif unit == "fraction" and not 0 <= goal.target_value <= 1:
        raise ValidationError("A rate or share target must lie between 0% and 100%.")
    elif goal.target_value < 0:
        raise ValidationError("The target cannot be negative.")
    if baseline is None:
        return
    target = target_value(goal, baseline)
    if goal.target_kind == "relative" and baseline == 0:
        raise ValidationError(
            f"The baseline is 0, so a relative change stays 0; set an absolute target for "
            f"{label.lower()}."
        )
    if unit == "fraction" and target is not None and target > 1:
        raise ValidationError(
            f"{_percent(goal.target_value)} more than the baseline of {_percent(baseline)} "
            f"would need {label.lower()} of {_percent(target)}, above 100%."
        )


def _clean_scope(session: Any, scope: dict[str, Any] | None) -> dict[str, Any]:
    scope = scope or {}
    unknown = sorted(set(scope) - set(SCOPE_KEYS))
    if unknown:
        raise ValidationError(f"A goal's scope has no filter {unknown[0]!r}.")
    try:
        parsed = metrics.Scope.from_json(scope)
    except (TypeError, ValueError):
        raise ValidationError("The pool and campaign in a scope are given by id.") from None
    if parsed.pool_id is not None and session.get(Pool, parsed.pool_id) is None:
        raise NotFound("The goal's pool no longer exists.")
    if parsed.campaign_id is not None and session.get(Campaign, parsed.campaign_id) is None:
        raise NotFound("The goal's campaign no longer exists.")
    return parsed.as_json()


def save_goal(engine: Engine, *, actor: User, draft: GoalDraft, goal_id: int | None = None) -> int:
    """Create (goal_id None) or replace a goal; refused with one sentence when impossible.

    The baseline comes from the draft's value, or else its baseline period, which must
    then have data.
    """
    require_writer(engine, actor)
    draft.title = " ".join((draft.title or "").split())
    if len(draft.title) > 200:
        raise ValidationError("A goal's title is at most 200 characters.")
    validate_goal(draft)
    if draft.baseline_value is None and (draft.baseline_from is None or draft.baseline_to is None):
        raise ValidationError("Give a baseline value or a baseline period to measure it in.")
    with write_session(engine, actor=actor) as session:
        scope = _clean_scope(session, draft.scope)
        owner_id = draft.owner_id or actor.id
        if session.get(User, owner_id) is None:
            raise NotFound("The goal's owner no longer exists.")
    draft.scope = scope
    baseline = baseline_value(engine, draft)
    if baseline is None:
        raise ValidationError(
            f"{metrics.METRICS[draft.metric].label} has no data from {draft.baseline_from} to "
            f"{draft.baseline_to}; pick another baseline period or enter the baseline."
        )
    validate_goal(draft, baseline=baseline)
    values = asdict(draft) | {"owner_id": owner_id, "scope": scope}
    with write_session(engine, actor=actor) as session:
        if goal_id is None:
            goal = Goal(**values)
            session.add(goal)
            session.flush()
            action = "goal.create"
        else:
            goal = get_existing(session, Goal, goal_id, "goal")
            for name, value in values.items():
                setattr(goal, name, value)
            action = "goal.update"
        audit.record_about(session, actor, action, goal.id)
        return goal.id


def delete_goal(engine: Engine, *, actor: User, goal_id: int) -> None:
    """Delete a goal; the audit entry keeps its title."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        goal = get_existing(session, Goal, goal_id, "goal")
        session.delete(goal)
        audit.record_about(session, actor, "goal.delete", goal_id, {"title": goal.title})
