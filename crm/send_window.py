"""Send windows: the weekdays, hours and holidays (in one timezone) when a campaign step may send.

A window is written in the campaign file as
``send_window = {days = "mon-fri", hours = "9-17", timezone = "Europe/London"}`` with
optional holidays: dates, ``holidays = ["2026-12-25"]``, and a country's public holidays,
``country = "DE"`` with an optional ``region = "BY"`` (its subdivision), taken from the
`holidays` package. No window means "as soon as due".

An instant is inside the window when, seen on the window's local clock, its weekday is one
of the days, its date is not a holiday (listed, or public in the country and region) and
its time of day is in [start, end). Everything
below follows from that definition, including the DST cases: an opening that falls in a
spring-forward gap becomes the first real instant after the gap, and an opening that
happens twice when clocks go back is taken the first time (fold=0).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as public_holidays
from holidays.registry import COUNTRIES as HOLIDAY_COUNTRIES

from crm.errors import ValidationError

MINUTES_PER_DAY = 24 * 60
# A holiday list that blocks every allowed day for this long is treated as a mistake.
MAX_BLOCKED_DAYS = 400

DAY_ABBREVIATIONS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES: dict[str, int] = {
    **{name: index for index, name in enumerate(DAY_ABBREVIATIONS)},
    "monday": 0,
    "tues": 1,
    "tuesday": 1,
    "wednesday": 2,
    "thur": 3,
    "thurs": 3,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_KEYS = ("days", "hours", "timezone", "holidays", "country", "region")
_EXAMPLES = {"days": "'mon-fri'", "hours": "'9-17'", "timezone": "'Europe/London'"}
# describe() prints an en dash, so accept it back as well as a hyphen.
_RANGE_SEPARATOR = re.compile(r"\s*[-\u2013]\s*")
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UTC = dt.UTC
# Offsets are sampled this often to find DST transitions; zones never change twice within it.
_TRANSITION_PROBE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class SendWindow:
    days: frozenset[int]  # 0=Monday .. 6=Sunday, non-empty
    start_minute: int  # local minutes after midnight, inclusive (0..1439)
    end_minute: int  # local minutes after midnight, exclusive (1..1440); > start_minute
    timezone: str  # IANA name, validated with zoneinfo
    holidays: frozenset[dt.date] = frozenset()
    country: str | None = None  # ISO 3166 code whose public holidays are skipped, e.g. "DE"
    region: str | None = None  # the country's subdivision, e.g. "BY" (Bavaria)

    def __post_init__(self) -> None:
        # Windows are also built directly (not only by parse_window), so hold the rules here.
        if not self.days or not all(isinstance(d, int) and 0 <= d <= 6 for d in self.days):
            raise ValidationError("A send window needs at least one day, numbered 0 to 6.")
        if not 0 <= self.start_minute < self.end_minute <= MINUTES_PER_DAY:
            raise ValidationError(
                "A send window's hours must start before they end within one day "
                "(no overnight windows)."
            )
        _zone(self.timezone)
        if any(isinstance(h, dt.datetime) or not isinstance(h, dt.date) for h in self.holidays):
            raise ValidationError("A send window's holidays must be dates.")
        if self.region is not None and self.country is None:
            raise ValidationError("A send window's region needs its country, like 'DE'.")
        if self.country is not None:
            _public_holidays(self.country, self.region)

    def is_holiday(self, day: dt.date) -> bool:
        """Whether the local date is a listed holiday or a public one in the country/region."""
        if day in self.holidays:
            return True
        return self.country is not None and day in _public_holidays(self.country, self.region)


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("The send window needs a timezone, like 'Europe/London'.")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError covers malformed keys such as absolute paths.
        raise ValidationError(
            f"The send window's timezone {name!r} is not a known IANA timezone, "
            "like 'Europe/London'."
        ) from None


@functools.cache
def holiday_countries() -> dict[str, str]:
    """{two-letter code: name} of every country whose public holidays a window can skip,
    by name, for a picker ("Germany" for DE)."""
    supported = public_holidays.list_supported_countries()
    names = {
        code: re.sub(r"(?<=[a-z])(?=[A-Z])", " ", class_name)  # "UnitedKingdom" -> words
        for class_name, code, *_ in HOLIDAY_COUNTRIES.values()
        if len(code) == 2 and code in supported
    }
    return dict(sorted(names.items(), key=lambda item: item[1]))


@functools.cache
def holiday_regions(country: str) -> Mapping[str, str]:
    """{subdivision code: name} of a country whose own public holidays a window can follow
    ("BY": "Bayern" in DE); empty for a country with none, or an unknown one. Cached: the
    campaign editor asks on every rerun, and building a country's calendar takes ~5 ms."""
    codes = public_holidays.list_supported_countries().get(country)
    if not codes:
        return MappingProxyType({})
    aliases = public_holidays.country_holidays(country).get_subdivision_aliases()
    return MappingProxyType(
        {code: names[0] if names else code for code, names in aliases.items() if code in codes}
    )


@functools.cache
def _public_holidays(country: str, region: str | None) -> public_holidays.HolidayBase:
    """The country's (and region's) public holidays; they fill in year by year when asked."""
    regions = public_holidays.list_supported_countries().get(country)
    if regions is None:
        raise ValidationError(
            f"The send window's country {country!r} is not a country code the holiday "
            "calendar knows; use a two-letter code such as 'DE', 'GB' or 'US'."
        )
    try:
        return public_holidays.country_holidays(country, subdiv=region)
    except NotImplementedError:
        raise ValidationError(
            f"The send window's region {region!r} is not a region of {country}; "
            f"use one of {', '.join(regions)}."
        ) from None


# --- parsing ----------------------------------------------------------------------------


def parse_window(spec: Mapping[str, Any] | None) -> SendWindow | None:
    """The window a campaign file (or stored JSON) describes; None or {} means no window."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ValidationError(
            "The send window must be a table like "
            '{days = "mon-fri", hours = "9-17", timezone = "Europe/London"}.'
        )
    if not spec:
        return None
    for key in spec:
        if key not in _KEYS:
            raise ValidationError(
                f"The send window has an unknown setting {key!r}; "
                "use days, hours, timezone, holidays, country and region."
            )
    # All three are required: a silent default (every day, all day, UTC) would send at
    # hours nobody chose.
    for key in ("days", "hours", "timezone"):
        if key not in spec:
            raise ValidationError(f"The send window needs {key}, for example {_EXAMPLES[key]}.")
    start, end = _parse_hours(spec["hours"])
    return SendWindow(
        days=_parse_days(spec["days"]),
        start_minute=start,
        end_minute=end,
        timezone=_zone(spec["timezone"]).key,
        holidays=_parse_holidays(spec.get("holidays")),
        country=_parse_code(spec.get("country"), "country", "'DE'"),
        region=_parse_code(spec.get("region"), "region", "'BY'"),
    )


def _parse_days(value: object) -> frozenset[int]:
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise ValidationError(
            "The send window's days must be text like 'mon-fri' or a list like ['mon', 'tue']."
        )
    shown = value if isinstance(value, str) else ", ".join(value)
    if not shown.strip():
        raise ValidationError("The send window's days must name at least one day, like 'mon-fri'.")
    days: set[int] = set()
    for part in parts:
        ends = _RANGE_SEPARATOR.split(part.strip())
        if len(ends) > 2:
            raise ValidationError(
                f"The send window's days {shown!r} contain {part.strip()!r}, which is not a range."
            )
        first, last = (_day(ends[0], shown), _day(ends[-1], shown))
        # Wrap-around ranges ("fri-mon") run forward through the end of the week.
        days.update((first + step) % 7 for step in range((last - first) % 7 + 1))
    return frozenset(days)


def _day(name: str, shown: str) -> int:
    key = name.strip().lower()
    if key not in _DAY_NAMES:
        raise ValidationError(
            f"The send window's days {shown!r} include {name.strip()!r}, "
            "which is not a day name (use mon, tue, wed, thu, fri, sat or sun)."
        )
    return _DAY_NAMES[key]


def _parse_hours(value: object) -> tuple[int, int]:
    if not isinstance(value, str):
        raise ValidationError("The send window's hours must be text like '9-17' or '09:30-17:00'.")
    ends = _RANGE_SEPARATOR.split(value.strip())
    if len(ends) != 2:
        raise ValidationError(
            f"The send window's hours {value!r} must be a range like '9-17' or '09:30-17:00'."
        )
    start, end = (_clock(text, value) for text in ends)
    if start >= end:
        raise ValidationError(
            f"The send window's hours {value!r} must start before they end (no overnight windows)."
        )
    return start, end


def _clock(text: str, whole: str) -> int:
    match = _CLOCK.fullmatch(text)
    hour = int(match.group(1)) if match else -1
    minute = int(match.group(2) or 0) if match else -1
    if not (0 <= hour <= 24 and 0 <= minute <= 59) or (hour == 24 and minute):
        raise ValidationError(
            f"The send window's hours {whole!r} contain {text!r}, which is not a time "
            "from 0:00 to 24:00."
        )
    return hour * 60 + minute


def _parse_holidays(value: object) -> frozenset[dt.date]:
    if value is None:
        return frozenset()
    if not isinstance(value, list | tuple):
        raise ValidationError(
            "The send window's holidays must be a list of dates like ['2026-12-25']."
        )
    holidays: set[dt.date] = set()
    for item in value:
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            holidays.add(item)
            continue
        try:
            # The regex keeps out the other forms fromisoformat accepts ("20261225", weeks).
            if not isinstance(item, str) or not _ISO_DATE.fullmatch(item.strip()):
                raise ValueError
            holidays.add(dt.date.fromisoformat(item.strip()))
        except ValueError:
            raise ValidationError(
                f"The send window's holiday {item!r} is not a date in the form YYYY-MM-DD."
            ) from None
    return frozenset(holidays)


def _parse_code(value: object, what: str, example: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"The send window's {what} must be a code like {example}.")
    code = value.strip()
    # Codes are upper case; a named subdivision such as "England" keeps its spelling.
    return code.upper() if len(code) <= 3 else code


def window_to_spec(window: SendWindow | None) -> dict[str, Any] | None:
    """A JSON-able dict that parse_window turns back into the same window."""
    if window is None:
        return None
    spec: dict[str, Any] = {
        "days": ",".join(DAY_ABBREVIATIONS[d] for d in sorted(window.days)),
        "hours": f"{_hhmm(window.start_minute)}-{_hhmm(window.end_minute)}",
        "timezone": window.timezone,
    }
    if window.holidays:
        spec["holidays"] = [h.isoformat() for h in sorted(window.holidays)]
    if window.country is not None:
        spec["country"] = window.country
    if window.region is not None:
        spec["region"] = window.region
    return spec


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# --- scheduling -------------------------------------------------------------------------


def next_send_time(window: SendWindow | None, earliest: dt.datetime) -> dt.datetime:
    """The first instant at or after `earliest` inside the window, as an aware UTC datetime."""
    if earliest.tzinfo is None or earliest.utcoffset() is None:
        raise ValueError("next_send_time needs a timezone-aware datetime.")
    current = earliest.astimezone(_UTC)
    if window is None:
        return current
    zone = ZoneInfo(window.timezone)
    # Walk stretches of constant UTC offset: within one, local time is UTC plus a fixed
    # offset, so the next opening is plain arithmetic. If a DST transition comes before
    # that opening, restart from the transition with the new offset.
    while True:
        offset = _offset(zone, current)
        wall = current.replace(tzinfo=None) + offset
        candidate = (_next_open_wall(window, wall) - offset).replace(tzinfo=_UTC)
        transition = _first_transition(zone, current, candidate, offset)
        if transition is None:
            return candidate
        current = transition


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # ZoneInfo always knows its offset
    return offset


def _next_open_wall(window: SendWindow, wall: dt.datetime) -> dt.datetime:
    """The first local wall-clock time at or after `wall` inside the window (ignoring DST)."""
    day = wall.date()
    minute_of_day = (wall - dt.datetime.combine(day, dt.time())) / dt.timedelta(minutes=1)
    for step in range(MAX_BLOCKED_DAYS + 1):
        date = day + dt.timedelta(days=step)
        if date.weekday() not in window.days or window.is_holiday(date):
            continue
        if step == 0:
            if window.start_minute <= minute_of_day < window.end_minute:
                return wall
            if minute_of_day >= window.end_minute:
                continue
        return dt.datetime.combine(date, dt.time()) + dt.timedelta(minutes=window.start_minute)
    raise ValidationError(
        f"The send window's holidays leave no day to send on for {MAX_BLOCKED_DAYS} days "
        f"after {day.isoformat()}."
    )


def _first_transition(
    zone: ZoneInfo, start: dt.datetime, end: dt.datetime, offset: dt.timedelta
) -> dt.datetime | None:
    """The first instant in (start, end] whose UTC offset differs from `offset`, if any."""
    low = start
    while low < end:
        high = min(low + _TRANSITION_PROBE, end)
        if _offset(zone, high) != offset:
            # Bisect to the microsecond: low keeps the old offset, high has the new one.
            while high - low > dt.timedelta(microseconds=1):
                middle = low + (high - low) / 2
                if _offset(zone, middle) == offset:
                    low = middle
                else:
                    high = middle
            return high
        low = high
    return None


# --- text -------------------------------------------------------------------------------


def describe(window: SendWindow | None) -> str:
    """Human text such as 'Mon–Fri, 09:00–17:00 Europe/London, skipping 2 holidays' (or
    'skipping public holidays in DE-BY and 2 holidays')."""
    if window is None:
        return "as soon as due"
    text = (
        f"{_describe_days(window.days)}, "
        f"{_hhmm(window.start_minute)}\u2013{_hhmm(window.end_minute)} {window.timezone}"
    )
    skipped = []
    if window.country is not None:
        place = f"{window.country}-{window.region}" if window.region else window.country
        skipped.append(f"public holidays in {place}")
    if window.holidays:
        count = len(window.holidays)
        skipped.append(f"{count} holiday{'s' if count != 1 else ''}")
    if skipped:
        text += f", skipping {' and '.join(skipped)}"
    return text


def _describe_days(days: frozenset[int]) -> str:
    if len(days) == 7:
        return "Every day"
    # Runs of consecutive days, allowing the week to wrap (Fri–Mon), listed by first day.
    starts = sorted(d for d in days if (d - 1) % 7 not in days)
    runs = []
    for first in starts:
        last = first
        while (last + 1) % 7 in days:
            last = (last + 1) % 7
        name = DAY_ABBREVIATIONS[first].title()
        runs.append(name if last == first else f"{name}\u2013{DAY_ABBREVIATIONS[last].title()}")
    return ", ".join(runs)
