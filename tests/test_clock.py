"""The clock: one place for "now", which the tests (and `make test`'s moved passes) move."""

from __future__ import annotations

import datetime as dt
import subprocess
import zoneinfo

import time_machine

from crm import clock
from tests.conftest import HARD_MOMENTS, MOVED_TO, PROJECT_ROOT, python_command


def test_now_is_aware_utc_and_today_follows_the_team_timezone() -> None:
    eve = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)
    with time_machine.travel(eve, tick=False):
        assert clock.now() == eve and clock.now().tzinfo == dt.UTC
        assert clock.today() == dt.date(2026, 12, 31)
        assert clock.today("Europe/Berlin") == dt.date(2027, 1, 1)
        assert clock.today(zoneinfo.ZoneInfo("America/Los_Angeles")) == dt.date(2026, 12, 31)


def test_the_moved_pass_really_moves_the_clock_here_and_in_subprocesses() -> None:
    """Under CRM_TEST_CLOCK the session ticks on from the moment; without it, it is real."""
    code = "from crm import clock; print(clock.now().isoformat())"
    result = subprocess.run(
        python_command("-c", code),
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60, check=True,
    )  # fmt: skip
    theirs = dt.datetime.fromisoformat(result.stdout.strip())
    assert abs(theirs - clock.now()) < dt.timedelta(minutes=1)
    if MOVED_TO is None:
        assert abs(clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(seconds=1)
        return
    assert MOVED_TO in HARD_MOMENTS.values()
    # The whole pass takes minutes, not hours.
    assert MOVED_TO <= clock.now() < MOVED_TO + dt.timedelta(hours=2)
