"""The clock: the one place the app reads "now" and "today" from.

Every service, page and command asks this module for the time (or takes a `now`
parameter that defaults to it), so a test that moves the clock moves all of the app at
once. The product uses the real clock; the tests move it with time-machine, which
patches the standard library underneath this module.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo


def now() -> dt.datetime:
    """This moment, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def today(timezone: str | dt.tzinfo = "UTC") -> dt.date:
    """Today's date where the team works (`CRM_TIMEZONE`), UTC when not said."""
    zone = zoneinfo.ZoneInfo(timezone) if isinstance(timezone, str) else timezone
    return now().astimezone(zone).date()
