"""How a recurring calendar item repeats: its rule, its slots, and its skipped or moved ones.

A series is stored as ContentItem.recurrence, {"freq": "weekly"|"monthly", "interval": N,
"until": "YYYY-MM-DD"|None, "count": N|None, "timezone": "Europe/London"}, and expanded
with dateutil.rrule, the RFC 5545 model an iCalendar RRULE speaks. The rule runs in naive
local time of the series' timezone and each slot is then localised: a weekly post at 09:00
Europe/London stays at 09:00 local across the clock changes, so its UTC time moves by an
hour. A monthly series on the 29th to 31st falls on the last day of shorter months
(BYMONTHDAY=d,-1 with BYSETPOS=1).

An occurrence is named by its key: the local date of its slot (ISO), which stays its name
when it is moved. ContentItem.recurrence_exceptions lists {"key", "skip": true} or
{"key", "starts_at"}: every key leaves its slot out of the rule (EXDATE), and a moved one
comes back at its own moment (like RDATE, but keeping its key).

Every series has an end (`until` or `count`) and at most MAX_OCCURRENCES occurrences within
MAX_YEARS years, and a moved occurrence stays within MAX_MOVE of its slot, so every
occurrence of a series lies in [scheduled_at - MAX_MOVE, scheduled_at + SERIES_SPAN] and
a window query can find the series that matter with the scheduled_at index.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from dateutil.rrule import MONTHLY, WEEKLY, rrule, rruleset

from crm.content_calendar.values import (
    DEFAULT_TIMEZONE,
    FieldError,
    parse_moment,
    whole_number,
    zone,
)
from crm.errors import ValidationError

FREQUENCIES = {"weekly": WEEKLY, "monthly": MONTHLY}
MAX_OCCURRENCES = 520
MAX_YEARS = 5
MAX_INTERVAL = 52
MAX_MOVE = dt.timedelta(days=366)
# From a series' start to its last occurrence, a moved one included.
SERIES_SPAN = dt.timedelta(days=366 * MAX_YEARS + 2) + MAX_MOVE
# A slot's UTC moment is within a day of its naive local one; windows are widened by this.
_ZONE_SLACK = dt.timedelta(days=2)


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@functools.lru_cache(maxsize=1024)
def _rule(
    freq: str, first: dt.datetime, interval: int, last_day: dt.date, count: int | None
) -> tuple[rrule, bool]:
    """The rule of a series from its first naive local slot, and whether every counted slot
    fits by last_day. Rules are shared and keep their slots once expanded (the calendar
    expands the same series on every view), so each series is worked out once."""
    month_days: dict[str, Any] = {}
    if freq == "monthly" and first.day > 28:
        month_days = {"bymonthday": (first.day, -1), "bysetpos": 1}
    rule = rrule(
        FREQUENCIES[freq],
        dtstart=first,
        interval=interval,
        until=dt.datetime.combine(last_day, first.time()),
        cache=True,
        **month_days,
    )
    if not count:
        return rule, True
    # A count ends the rule at its last slot, so the rule holds one end (as RFC 5545 asks).
    counted = list(islice(rule, min(count, MAX_OCCURRENCES)))
    if counted:
        rule = rule.replace(until=counted[-1])
    return rule, len(counted) == count


class Series:
    """The slots of a recurring item: the dates of its rule at the first one's wall time."""

    def __init__(self, starts_at: dt.datetime, recurrence: dict[str, Any]) -> None:
        self.tz = zone(recurrence.get("timezone") or DEFAULT_TIMEZONE)
        local = starts_at.astimezone(self.tz)
        self.first = local.date()
        self.wall = local.time().replace(tzinfo=None)
        self.horizon = _add_years(self.first, MAX_YEARS)
        until = recurrence.get("until")
        last_day = min(dt.date.fromisoformat(until), self.horizon) if until else self.horizon
        count = recurrence.get("count")
        self.rule, self.complete = _rule(
            recurrence["freq"],
            self._naive(self.first),
            int(recurrence.get("interval") or 1),
            last_day,
            int(count) if count else None,
        )

    def _naive(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.wall)

    def at(self, day: dt.date) -> dt.datetime:
        """The slot's moment in UTC (a wall time skipped by DST reads with the old offset)."""
        return dt.datetime.combine(day, self.wall, self.tz).astimezone(dt.UTC)

    def day(self, n: int) -> dt.date | None:
        """The date of slot n (from 0), or None past the end of the series."""
        found = next(islice(self.rule, n, n + 1), None)
        return found.date() if found else None

    def index_of(self, day: dt.date) -> int | None:
        """n when day is a slot of the series, else None."""
        if day < self.first:
            return None
        before = self.rule.between(self._naive(self.first), self._naive(day), inc=True)
        if not before or before[-1].date() != day:
            return None
        return len(before) - 1

    def slots(
        self, start: dt.datetime, end: dt.datetime, skipped: Iterable[str] = ()
    ) -> Iterator[tuple[dt.date, dt.datetime]]:
        """(date, UTC start) of the slots starting in [start, end), in order, without the
        slots whose keys are in `skipped` (EXDATE)."""
        rules = rruleset()
        rules.rrule(self.rule)
        for key in skipped:
            try:
                rules.exdate(self._naive(dt.date.fromisoformat(key)))
            except ValueError:
                continue
        lo = (start - _ZONE_SLACK).astimezone(self.tz).replace(tzinfo=None)
        hi = (end + _ZONE_SLACK).astimezone(self.tz).replace(tzinfo=None)
        for naive in rules.between(lo, hi, inc=True):
            moment = self.at(naive.date())
            if start <= moment < end:
                yield naive.date(), moment


def _until(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise FieldError(
            "recurrence", "The repeat end date must be a date such as 2027-06-30."
        ) from None


def check_recurrence(recurrence: Any, starts_at: dt.datetime) -> dict[str, Any] | None:
    """The recurrence in its stored form, or one sentence about what is wrong with it."""
    if not recurrence:
        return None
    if not isinstance(recurrence, dict):
        raise FieldError("recurrence", "The repeat rule is not understood.")
    freq = recurrence.get("freq")
    if freq not in FREQUENCIES:
        raise FieldError("recurrence", "A repeating item repeats weekly or monthly.")
    interval_value = recurrence.get("interval")
    interval = 1 if interval_value in (None, "") else whole_number(interval_value)
    if interval is None or not 1 <= interval <= MAX_INTERVAL:
        raise FieldError(
            "recurrence",
            f"The repeat interval must be a whole number from 1 to {MAX_INTERVAL}.",
        )
    until = _until(recurrence.get("until"))
    count_value = recurrence.get("count")
    count = None
    if count_value not in (None, ""):
        count = whole_number(count_value)
        if count is None or count < 1:
            raise FieldError(
                "recurrence", "The number of occurrences must be a whole number of 1 or more."
            )
    if until is None and count is None:
        raise FieldError(
            "recurrence",
            "A repeating item needs an end: give an end date or a number of occurrences.",
        )
    if count is not None and count > MAX_OCCURRENCES:
        raise FieldError(
            "recurrence", f"A repeating item can have at most {MAX_OCCURRENCES} occurrences."
        )
    timezone = recurrence.get("timezone") or DEFAULT_TIMEZONE
    zone(timezone)
    stored = {
        "freq": freq,
        "interval": interval,
        "until": until.isoformat() if until else None,
        "count": count,
        "timezone": timezone.strip(),
    }
    series = Series(starts_at, stored)
    if until is not None and until < series.first:
        raise FieldError("recurrence", "The repeat end date is before the first occurrence.")
    if until is not None and until > series.horizon:
        raise FieldError(
            "recurrence",
            f"A repeating item can repeat for at most {MAX_YEARS} years; "
            "choose an earlier end date.",
        )
    if until is None and not series.complete:
        raise FieldError(
            "recurrence",
            f"A repeating item can repeat for at most {MAX_YEARS} years; choose fewer occurrences.",
        )
    return stored


def remap_exceptions(
    old_start: dt.datetime,
    old_recurrence: dict[str, Any] | None,
    new_start: dt.datetime,
    new_recurrence: dict[str, Any] | None,
    exceptions: Iterable[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Exceptions carried over to a changed series: each follows its occurrence's number,
    a moved one keeps its distance from its slot; those past the new end are dropped."""
    if not old_recurrence or not new_recurrence:
        return []
    old, new = Series(old_start, old_recurrence), Series(new_start, new_recurrence)
    carried = []
    for exception in exceptions:
        try:
            old_day = dt.date.fromisoformat(exception["key"])
        except (KeyError, TypeError, ValueError):
            continue
        n = old.index_of(old_day)
        new_day = new.day(n) if n is not None else None
        if new_day is None:
            continue
        moved = dict(exception, key=new_day.isoformat())
        if exception.get("starts_at"):
            shifted = parse_moment(exception["starts_at"]) + (new.at(new_day) - old.at(old_day))
            moved["starts_at"] = shifted.astimezone(dt.UTC).isoformat()
        carried.append(moved)
    return carried


def _exceptions_by_key(exceptions: Any) -> dict[str, dict[str, Any]]:
    return {
        entry["key"]: entry
        for entry in exceptions or []
        if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    }


def expand(
    starts_at: dt.datetime,
    recurrence: dict[str, Any],
    exceptions: Any,
    start: dt.datetime,
    end: dt.datetime,
) -> Iterator[tuple[str, dt.datetime, bool]]:
    """(key, UTC start, moved) of the series' occurrences starting in [start, end): its
    slots less every excepted one, and the moved ones at their new moment."""
    series = Series(starts_at, recurrence)
    changed = _exceptions_by_key(exceptions)
    for day, moment in series.slots(start, end, skipped=changed):
        yield day.isoformat(), moment, False
    for key, entry in changed.items():
        if entry.get("skip") or not entry.get("starts_at"):
            continue
        moved_to = parse_moment(entry["starts_at"])
        if not start <= moved_to < end:
            continue
        try:
            day = dt.date.fromisoformat(key)
        except ValueError:
            continue
        if series.index_of(day) is not None:
            yield key, moved_to, True


def series_slot(
    starts_at: dt.datetime, recurrence: dict[str, Any] | None, key: str
) -> tuple[Series, dt.date]:
    """The series and the slot date an occurrence key names, or one sentence why not."""
    if not recurrence:
        raise ValidationError("This item does not repeat; move or delete the item itself instead.")
    series = Series(starts_at, recurrence)
    try:
        day = dt.date.fromisoformat(str(key))
    except ValueError:
        raise ValidationError(f"{key!r} is not a date such as 2027-01-07.") from None
    if series.index_of(day) is None:
        raise ValidationError(f"The series has no occurrence on {day.isoformat()}.")
    return series, day


def with_exception(
    exceptions: Iterable[dict[str, Any]], key: str, entry: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The exceptions with the one for `key` replaced by entry (None: removed), by key."""
    kept = [e for e in exceptions if e.get("key") != key]
    if entry is not None:
        kept.append(entry)
    kept.sort(key=lambda e: e.get("key", ""))
    return kept
