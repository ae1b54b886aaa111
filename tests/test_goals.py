"""Goal status against a straight-line path, at its boundaries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, func, select

from crm import db, goals, metrics
from crm.errors import NotFound, PermissionDenied, ValidationError
from crm.models import Application, AuditLog, Candidate, Goal, Job, User


@pytest.mark.parametrize(
    "actual, status",
    [
        (90.0, "on_track"),  # exactly on the expected path
        (85.0, "on_track"),  # better than expected (lower is better here)
        (92.5, "at_risk"),
        (95.0, "at_risk"),  # behind by exactly a quarter of the planned change (20)
        (95.1, "off_track"),
        (None, "no_data"),
    ],
)
def test_status_for_a_reduction(actual: float | None, status: str) -> None:
    # baseline 100 -> target 80 over the period; halfway the path expects 90
    expected = goals.expected_value(
        100.0, 80.0, dt.date(2026, 1, 1), dt.date(2026, 1, 21), dt.date(2026, 1, 11)
    )
    assert expected == pytest.approx(90.0)
    assert goals.status_for(baseline=100.0, target=80.0, expected=expected, actual=actual) == status


def test_status_for_an_increase() -> None:
    # baseline 0.6 -> target 0.8; at the deadline the path expects 0.8
    assert goals.status_for(baseline=0.6, target=0.8, expected=0.8, actual=0.8) == "on_track"
    assert goals.status_for(baseline=0.6, target=0.8, expected=0.8, actual=0.75) == "at_risk"
    assert goals.status_for(baseline=0.6, target=0.8, expected=0.8, actual=0.7) == "off_track"


def test_expected_value_is_clamped_to_the_period() -> None:
    start, deadline = dt.date(2026, 1, 1), dt.date(2026, 7, 1)
    assert goals.expected_value(10, 20, start, deadline, dt.date(2025, 6, 1)) == 10
    assert goals.expected_value(10, 20, start, deadline, dt.date(2027, 1, 1)) == 20


def make_goal(**changes: object) -> Goal:
    values = dict(
        title="Reduce time-to-hire by 15% for key tech roles in six months",
        metric="time_to_hire_days",
        scope={"key_roles": True},
        target_kind="relative",
        target_value=-0.15,
        start_date=dt.date(2026, 1, 1),
        deadline=dt.date(2026, 7, 1),
        baseline_value=40.0,
    )
    values.update(changes)
    return Goal(**values)


def test_guide_examples_are_expressible() -> None:
    time_to_hire = make_goal()
    goals.validate_goal(time_to_hire)
    assert goals.target_value(time_to_hire, 40.0) == pytest.approx(34.0)
    acceptance = make_goal(metric="offer_acceptance_rate", target_value=0.10, baseline_value=0.7)
    goals.validate_goal(acceptance)
    assert goals.target_value(acceptance, 0.7) == pytest.approx(0.77)
    pool_share = make_goal(
        metric="hires_from_talent_pools_share",
        target_kind="absolute",
        target_value=0.25,
        deadline=dt.date(2026, 12, 31),
        baseline_value=0.1,
    )
    goals.validate_goal(pool_share)
    assert goals.target_value(pool_share, 0.1) == 0.25


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"target_value": -2.0}, "100% or more is impossible"),
        ({"target_value": 0.0}, "no change"),
        ({"metric": "happiness"}, "Unknown metric"),
        ({"deadline": dt.date(2025, 1, 1)}, "deadline must come after"),
        (
            {"metric": "offer_acceptance_rate", "target_kind": "absolute", "target_value": 1.5},
            "between 0% and 100%",
        ),
    ],
)
def test_impossible_goals_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        goals.validate_goal(make_goal(**changes))


@pytest.mark.parametrize(
    "actual, status",
    [
        (30.0, "on_track"),  # holding the line exactly
        (28.0, "on_track"),  # lower is better: below the path is ahead
        (31.5, "at_risk"),  # behind by exactly 5% of the baseline
        (31.6, "off_track"),
    ],
)
def test_holding_the_line_on_a_lower_is_better_metric(actual: float, status: str) -> None:
    found = goals.status_for(
        baseline=30.0, target=30.0, expected=30.0, actual=actual, better="lower"
    )
    assert found == status


def test_direction_follows_the_metric_when_the_baseline_already_beats_the_target() -> None:
    # share 0.30 at the start, target 0.25: the path goes down, but higher stays better
    expected = goals.expected_value(
        0.30, 0.25, dt.date(2026, 1, 1), dt.date(2026, 1, 11), dt.date(2026, 1, 6)
    )
    assert expected == pytest.approx(0.275)
    kwargs = dict(baseline=0.30, target=0.25, expected=expected, better="higher")
    assert goals.status_for(actual=0.29, **kwargs) == "on_track"
    assert goals.status_for(actual=0.2625, **kwargs) == "at_risk"  # a quarter of 0.05 behind
    assert goals.status_for(actual=0.26, **kwargs) == "off_track"


# --- saved goals against real data -------------------------------------------------------

START = dt.date(2026, 7, 1)
TODAY = dt.date(2026, 9, 30)


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.fixture
def hiring(engine: Engine) -> Engine:
    """Baseline (Jan-Jun 2026): one key tech hire from an agency in 40 days, one declined
    offer. Since July 1: one key tech hire from the talent pool in 30 days."""
    with db.write_session(engine) as session:
        people = [Candidate(first_name=f"G{i}") for i in range(3)]
        job = Job(
            title="Platform",
            role_family="DevOps & Cloud",
            key_role=True,
            opened_at=dt.date(2026, 1, 1),
        )
        session.add_all([*people, job])
        session.flush()
        session.add_all(
            [
                Application(
                    candidate_id=people[0].id,
                    job_id=job.id,
                    source="agency",
                    stage="hired",
                    applied_at=at("2026-02-01"),
                    offer_at=at("2026-03-10"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-03-13"),
                    hired_at=at("2026-03-20"),
                ),
                Application(
                    candidate_id=people[1].id,
                    job_id=job.id,
                    source="job_board",
                    stage="withdrew",
                    applied_at=at("2026-03-01"),
                    offer_at=at("2026-03-28"),
                    offer_accepted=False,
                    offer_decided_at=at("2026-04-01"),
                    withdrew_at=at("2026-04-01"),
                ),
                Application(
                    candidate_id=people[2].id,
                    job_id=job.id,
                    source="talent_pool",
                    stage="hired",
                    applied_at=at("2026-07-02"),
                    offer_at=at("2026-07-28"),
                    offer_accepted=True,
                    offer_decided_at=at("2026-08-01"),
                    hired_at=at("2026-08-10"),
                ),
            ]
        )
    return engine


def test_guide_examples_read_exactly_as_the_guide_writes_them() -> None:
    assert [example["title"] for example in goals.GUIDE_EXAMPLES] == [
        "Reduce time-to-hire by 15% for key tech roles in six months",
        "Boost the offer acceptance rate by 10%",
        "Source 25% of new hires directly from your talent pool by year's end",
    ]
    drafts = goals.guide_drafts(today=START)
    assert [d.deadline for d in drafts] == [
        dt.date(2027, 1, 1),
        dt.date(2027, 1, 1),
        dt.date(2026, 12, 31),
    ]
    assert drafts[0].scope == {"key_roles": True, "role_families": list(goals.TECH_ROLE_FAMILIES)}
    assert goals.guide_drafts(today=dt.date(2026, 12, 15))[2].deadline == dt.date(2027, 12, 31)


def test_guide_examples_save_and_evaluate(hiring: Engine, users: dict[str, User]) -> None:
    ids = [
        goals.save_goal(hiring, actor=users["recruiter"], draft=draft)
        for draft in goals.guide_drafts(today=START)
    ]
    found = {p.goal_id: p for p in goals.all_progress(hiring, today=TODAY)}
    time_to_hire, acceptance, pool_share = (found[goal_id] for goal_id in ids)
    # 40 days in the baseline, 15% less is 34; on Sep 30, 91 of the 184 days have passed
    assert (time_to_hire.baseline, time_to_hire.target) == (pytest.approx(40), pytest.approx(34))
    assert time_to_hire.expected == pytest.approx(40 - 6 * 91 / 184)
    assert time_to_hire.actual == pytest.approx(30) and time_to_hire.status == "on_track"
    assert time_to_hire.better == "lower"
    assert (acceptance.baseline, acceptance.target) == (0.5, pytest.approx(0.55))
    assert acceptance.actual == 1.0 and acceptance.status == "on_track"
    assert (pool_share.baseline, pool_share.target, pool_share.actual) == (0.0, 0.25, 1.0)
    assert pool_share.status == "on_track"
    with db.read_session(hiring) as session:
        assert session.scalar(select(func.count()).where(AuditLog.action == "goal.create")) == 3
        owners = set(session.scalars(select(Goal.owner_id)))
    assert owners == {users["recruiter"].id}


def test_progress_falls_behind_a_reduction(hiring: Engine, users: dict[str, User]) -> None:
    draft = goals.GoalDraft(
        title="Faster key hires",
        metric="time_to_hire_days",
        scope={"key_roles": True},
        baseline_value=36.0,
        target_kind="absolute",
        target_value=20.0,
        start_date=START,
        deadline=dt.date(2026, 8, 31),
    )
    goal = goals.get_goal(hiring, goals.save_goal(hiring, actor=users["admin"], draft=draft))
    # at the deadline the path expects 20 and the actual is 30: 10 behind of a 16 change
    result = goals.progress(hiring, goal, today=TODAY)
    assert (result.expected, result.actual, result.status) == (20.0, 30.0, "off_track")
    # on Aug 16 the path expects 36 - 16 * 46/61 = 23.9: 6.1 behind, beyond the band of 4
    assert goals.progress(hiring, goal, today=dt.date(2026, 8, 16)).status == "off_track"
    # on Jul 16, a quarter of the way, the path expects 32.1; no acceptance yet: no data
    assert goals.progress(hiring, goal, today=dt.date(2026, 7, 16)).status == "no_data"
    # on Aug 2 the path expects 36 - 16 * 32/61 = 27.6; 30 is 2.4 behind, within 4: at risk
    assert goals.progress(hiring, goal, today=dt.date(2026, 8, 2)).status == "at_risk"


def test_series_follows_the_path_month_by_month(hiring: Engine, users: dict[str, User]) -> None:
    draft = goals.guide_drafts(today=START)[0]
    goal = goals.get_goal(hiring, goals.save_goal(hiring, actor=users["admin"], draft=draft))
    points = goals.series(hiring, goal, today=TODAY)
    assert [month for month, _, _ in points] == [
        dt.date(2026, 7, 1),
        dt.date(2026, 8, 1),
        dt.date(2026, 9, 1),
    ]
    assert [actual for _, actual, _ in points] == [None, 30.0, 30.0]
    span = (goal.deadline - goal.start_date).days
    assert [expected for _, _, expected in points] == [
        pytest.approx(40 - 6 * 30 / span),
        pytest.approx(40 - 6 * 61 / span),
        pytest.approx(40 - 6 * 91 / span),
    ]
    last = goals.progress(hiring, goal, today=TODAY)
    assert points[-1][1] == last.actual and points[-1][2] == pytest.approx(last.expected)
    assert goals.series(hiring, goal, today=dt.date(2026, 6, 1)) == []


def draft(**changes: object) -> goals.GoalDraft:
    values: dict = dict(
        title="Boost the offer acceptance rate by 10%",
        metric="offer_acceptance_rate",
        target_kind="relative",
        target_value=0.10,
        start_date=START,
        deadline=dt.date(2026, 12, 31),
        baseline_value=0.6,
    )
    values.update(changes)
    return goals.GoalDraft(**values)


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"metric": "time_to_hire_days", "target_value": -2.0},
            r"A reduction of 100% or more is impossible \(200% was asked\)\.",
        ),
        ({"target_kind": "absolute", "target_value": 1.5}, "between 0% and 100%"),
        (
            {"baseline_value": 0.95},
            r"10% more than the baseline of 95% would need offer acceptance rate of 104.5%, "
            r"above 100%\.",
        ),
        (
            {"metric": "cost_per_hire", "baseline_value": 5000.0},
            "Cost per hire is better lower; set a reduction, not an increase.",
        ),
        (
            {
                "baseline_value": None,
                "baseline_from": dt.date(2025, 1, 1),
                "baseline_to": dt.date(2025, 6, 30),
            },
            "Offer acceptance rate has no data from 2025-01-01 to 2025-06-30",
        ),
        ({"baseline_value": None}, "Give a baseline value or a baseline period"),
        ({"baseline_value": 0.0}, "The baseline is 0"),
        ({"scope": {"team": "x"}}, "no filter 'team'"),
        ({"title": " "}, "needs a title"),
    ],
)
def test_impossible_targets_are_refused_when_saved(
    hiring: Engine, users: dict[str, User], changes: dict, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        goals.save_goal(hiring, actor=users["recruiter"], draft=draft(**changes))
    assert goals.list_goals(hiring) == []


def test_update_delete_and_managers(hiring: Engine, users: dict[str, User]) -> None:
    recruiter, manager = users["recruiter"], users["manager"]
    with pytest.raises(PermissionDenied, match="read-only"):
        goals.save_goal(hiring, actor=manager, draft=draft())
    goal_id = goals.save_goal(hiring, actor=recruiter, draft=draft(scope={"key_roles_only": True}))
    assert goals.get_goal(hiring, goal_id).scope == {"key_roles": True}
    goals.save_goal(hiring, actor=recruiter, draft=draft(target_value=0.2), goal_id=goal_id)
    assert goals.get_goal(hiring, goal_id).target_value == 0.2
    assert len(goals.list_goals(hiring)) == 1
    with pytest.raises(PermissionDenied):
        goals.delete_goal(hiring, actor=manager, goal_id=goal_id)
    goals.delete_goal(hiring, actor=recruiter, goal_id=goal_id)
    assert goals.list_goals(hiring) == []
    with pytest.raises(NotFound):
        goals.delete_goal(hiring, actor=recruiter, goal_id=goal_id)
    with pytest.raises(NotFound, match="pool"):
        goals.save_goal(hiring, actor=recruiter, draft=draft(scope={"pool_id": 999}))


def test_every_metric_can_be_a_goal(hiring: Engine) -> None:
    for metric in metrics.METRICS:
        goal = make_goal(
            metric=metric, target_kind="absolute", target_value=0.5, baseline_value=0.5
        )
        goals.validate_goal(goal)
