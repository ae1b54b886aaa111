"""Goal status against a straight-line path, at its boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from crm import goals
from crm.errors import ValidationError
from crm.models import Goal


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
