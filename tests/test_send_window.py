"""Send windows: parsing and refusals, the spec round trip, scheduling (including DST) and a
property test checking next_send_time against a minute-by-minute scan."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from crm import send_window
from crm.errors import ValidationError
from crm.send_window import SendWindow, describe, next_send_time, parse_window, window_to_spec

UTC = dt.UTC
LONDON = "Europe/London"
WEEKDAYS = frozenset(range(5))


def window(**overrides: Any) -> SendWindow:
    spec: dict[str, Any] = {"days": "mon-fri", "hours": "9-17", "timezone": LONDON}
    spec.update(overrides)
    parsed = parse_window(spec)
    assert parsed is not None
    return parsed


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int, fold: int = 0) -> dt.datetime:
    return dt.datetime(*args, tzinfo=ZoneInfo(zone), fold=fold)


# --- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [None, {}])
def test_no_window(spec: dict[str, Any] | None) -> None:
    assert parse_window(spec) is None


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        ("mon-fri", {0, 1, 2, 3, 4}),
        ("mon,wed,fri", {0, 2, 4}),
        ("sat-sun", {5, 6}),
        ("mon-sun", set(range(7))),
        ("tue", {1}),
        (["mon", "tue"], {0, 1}),
        ("fri-mon", {4, 5, 6, 0}),
        ("MON-Fri", {0, 1, 2, 3, 4}),
        ("Monday, Wednesday", {0, 2}),
        ("saturday-monday", {5, 6, 0}),
        (" mon - wed , sun ", {0, 1, 2, 6}),
        ("Mon\u2013Fri", {0, 1, 2, 3, 4}),  # the en dash describe() prints
    ],
)
def test_days_forms(days: str | list[str], expected: set[int]) -> None:
    assert window(days=days).days == frozenset(expected)


@pytest.mark.parametrize(
    ("hours", "start", "end"),
    [
        ("9-17", 9 * 60, 17 * 60),
        ("09:30-17:00", 9 * 60 + 30, 17 * 60),
        ("8-20", 8 * 60, 20 * 60),
        ("0-24", 0, 1440),
        ("22:15-24:00", 22 * 60 + 15, 1440),
        (" 9 - 17 ", 9 * 60, 17 * 60),
    ],
)
def test_hours_forms(hours: str, start: int, end: int) -> None:
    parsed = window(hours=hours)
    assert (parsed.start_minute, parsed.end_minute) == (start, end)


def test_full_window_with_holidays() -> None:
    parsed = window(holidays=["2026-12-25", dt.date(2026, 12, 26)], timezone="Asia/Tokyo")
    assert parsed == SendWindow(
        days=WEEKDAYS,
        start_minute=540,
        end_minute=1020,
        timezone="Asia/Tokyo",
        holidays=frozenset({dt.date(2026, 12, 25), dt.date(2026, 12, 26)}),
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"hours": "17-9"},
            "The send window's hours '17-9' must start before they end (no overnight windows).",
        ),
        (
            {"hours": "9-9"},
            "The send window's hours '9-9' must start before they end (no overnight windows).",
        ),
        (
            {"hours": "9-25"},
            "The send window's hours '9-25' contain '25', which is not a time from 0:00 to 24:00.",
        ),
        (
            {"hours": "9:60-17"},
            "The send window's hours '9:60-17' contain '9:60', which is not a time "
            "from 0:00 to 24:00.",
        ),
        (
            {"hours": "24:30-24:45"},
            "The send window's hours '24:30-24:45' contain '24:30', which is not a time "
            "from 0:00 to 24:00.",
        ),
        (
            {"hours": "nine to five"},
            "The send window's hours 'nine to five' must be a range like '9-17' or '09:30-17:00'.",
        ),
        (
            {"hours": 9},
            "The send window's hours must be text like '9-17' or '09:30-17:00'.",
        ),
        (
            {"days": "mon-fry"},
            "The send window's days 'mon-fry' include 'fry', which is not a day name "
            "(use mon, tue, wed, thu, fri, sat or sun).",
        ),
        (
            {"days": ["mon", "xyz"]},
            "The send window's days 'mon, xyz' include 'xyz', which is not a day name "
            "(use mon, tue, wed, thu, fri, sat or sun).",
        ),
        (
            {"days": "mon-wed-fri"},
            "The send window's days 'mon-wed-fri' contain 'mon-wed-fri', which is not a range.",
        ),
        (
            {"days": ""},
            "The send window's days must name at least one day, like 'mon-fri'.",
        ),
        (
            {"days": 5},
            "The send window's days must be text like 'mon-fri' or a list like ['mon', 'tue'].",
        ),
        (
            {"timezone": "Mars/Olympus_Mons"},
            "The send window's timezone 'Mars/Olympus_Mons' is not a known IANA timezone, "
            "like 'Europe/London'.",
        ),
        (
            {"timezone": "/etc/passwd"},
            "The send window's timezone '/etc/passwd' is not a known IANA timezone, "
            "like 'Europe/London'.",
        ),
        (
            {"timezone": ""},
            "The send window needs a timezone, like 'Europe/London'.",
        ),
        (
            {"holidays": ["2026-12-25", "2026-02-30"]},
            "The send window's holiday '2026-02-30' is not a date in the form YYYY-MM-DD.",
        ),
        (
            {"holidays": ["20261225"]},
            "The send window's holiday '20261225' is not a date in the form YYYY-MM-DD.",
        ),
        (
            {"holidays": [dt.datetime(2026, 12, 25, 9)]},
            "The send window's holiday datetime.datetime(2026, 12, 25, 9, 0) is not a date "
            "in the form YYYY-MM-DD.",
        ),
        (
            {"holidays": "2026-12-25"},
            "The send window's holidays must be a list of dates like ['2026-12-25'].",
        ),
        (
            {"start": "9"},
            "The send window has an unknown setting 'start'; use days, hours, timezone, "
            "holidays, country and region.",
        ),
        (
            {"country": "XX"},
            "The send window's country 'XX' is not a country code the holiday calendar knows; "
            "use a two-letter code such as 'DE', 'GB' or 'US'.",
        ),
        (
            {"country": "DE", "region": "ZZ"},
            "The send window's region 'ZZ' is not a region of DE; use one of BB, BE, BW, BY, "
            "HB, HE, HH, MV, NI, NW, RP, SH, SL, SN, ST, TH, Augsburg.",
        ),
        (
            {"region": "BY"},
            "A send window's region needs its country, like 'DE'.",
        ),
        (
            {"country": 49},
            "The send window's country must be a code like 'DE'.",
        ),
    ],
)
def test_refusals(overrides: dict[str, Any], message: str) -> None:
    spec: dict[str, Any] = {"days": "mon-fri", "hours": "9-17", "timezone": LONDON, **overrides}
    with pytest.raises(ValidationError) as raised:
        parse_window(spec)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("days", "The send window needs days, for example 'mon-fri'."),
        ("hours", "The send window needs hours, for example '9-17'."),
        ("timezone", "The send window needs timezone, for example 'Europe/London'."),
    ],
)
def test_required_settings(missing: str, message: str) -> None:
    spec = {"days": "mon-fri", "hours": "9-17", "timezone": LONDON}
    del spec[missing]
    with pytest.raises(ValidationError, match=f"^{message}$".replace("(", r"\(")):
        parse_window(spec)


def test_not_a_table_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be a table"):
        parse_window(["mon-fri"])  # type: ignore[arg-type]


def test_direct_construction_is_checked() -> None:
    with pytest.raises(ValidationError, match="no overnight windows"):
        SendWindow(days=WEEKDAYS, start_minute=600, end_minute=540, timezone=LONDON)
    with pytest.raises(ValidationError, match="at least one day"):
        SendWindow(days=frozenset(), start_minute=0, end_minute=60, timezone=LONDON)
    with pytest.raises(ValidationError, match="'Nowhere/City'"):
        SendWindow(days=WEEKDAYS, start_minute=0, end_minute=60, timezone="Nowhere/City")


# --- round trip and text --------------------------------------------------------------------


def test_window_to_spec_shape() -> None:
    parsed = window(hours="9:30-24", holidays=["2026-12-26", "2026-12-25"])
    assert window_to_spec(parsed) == {
        "days": "mon,tue,wed,thu,fri",
        "hours": "09:30-24:00",
        "timezone": LONDON,
        "holidays": ["2026-12-25", "2026-12-26"],
    }
    assert "holidays" not in window_to_spec(window())  # type: ignore[operator]
    bavaria = window(timezone="Europe/Berlin", country="de", region="by")
    assert window_to_spec(bavaria) == {
        "days": "mon,tue,wed,thu,fri",
        "hours": "09:00-17:00",
        "timezone": "Europe/Berlin",
        "country": "DE",
        "region": "BY",
    }
    assert parse_window(window_to_spec(bavaria)) == bavaria
    assert window_to_spec(None) is None
    assert parse_window(window_to_spec(None)) is None


@given(
    days=st.frozensets(st.integers(0, 6), min_size=1),
    start=st.integers(0, 1439),
    length=st.integers(1, 1440),
    zone=st.sampled_from([LONDON, "UTC", "America/New_York", "Asia/Kolkata"]),
    holidays=st.frozensets(st.dates(dt.date(2000, 1, 1), dt.date(2100, 1, 1)), max_size=4),
)
def test_window_to_spec_round_trips(
    days: frozenset[int], start: int, length: int, zone: str, holidays: frozenset[dt.date]
) -> None:
    original = SendWindow(days, start, min(start + length, 1440), zone, holidays)
    spec = window_to_spec(original)
    assert parse_window(spec) == original
    # Through JSON-able types only, so it can sit in the campaign_steps JSON column.
    assert all(isinstance(v, str | list) for v in spec.values())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (None, "as soon as due"),
        (
            {"days": "mon-fri", "hours": "9-17", "timezone": LONDON},
            "Mon\u2013Fri, 09:00\u201317:00 Europe/London",
        ),
        (
            {
                "days": "mon-fri",
                "hours": "9-17",
                "timezone": LONDON,
                "holidays": ["2026-12-25", "2026-12-26"],
            },
            "Mon\u2013Fri, 09:00\u201317:00 Europe/London, skipping 2 holidays",
        ),
        (
            {
                "days": "fri-mon,wed",
                "hours": "8:30-24",
                "timezone": "UTC",
                "holidays": ["2026-01-01"],
            },
            "Wed, Fri\u2013Mon, 08:30\u201324:00 UTC, skipping 1 holiday",
        ),
        (
            {"days": "mon-fri", "hours": "9-17", "timezone": "Europe/Berlin", "country": "DE"},
            "Mon\u2013Fri, 09:00\u201317:00 Europe/Berlin, skipping public holidays in DE",
        ),
        (
            {
                "days": "mon-fri",
                "hours": "9-17",
                "timezone": "Europe/Berlin",
                "country": "DE",
                "region": "BY",
                "holidays": ["2026-12-24"],
            },
            "Mon\u2013Fri, 09:00\u201317:00 Europe/Berlin, skipping public holidays in DE-BY "
            "and 1 holiday",
        ),
        (
            {"days": "mon,wed,fri", "hours": "0-24", "timezone": "Asia/Tokyo"},
            "Mon, Wed, Fri, 00:00\u201324:00 Asia/Tokyo",
        ),
        (
            {"days": "mon-sun", "hours": "9-17", "timezone": "UTC"},
            "Every day, 09:00\u201317:00 UTC",
        ),
    ],
)
def test_describe(spec: dict[str, Any] | None, text: str) -> None:
    assert describe(parse_window(spec)) == text


def test_describe_output_parses_back_as_days() -> None:
    assert window(days="Sat\u2013Mon, Wed").days == frozenset({5, 6, 0, 2})


# --- next_send_time ----------------------------------------------------------------------------


def test_no_window_is_earliest_in_utc() -> None:
    earliest = local("Asia/Tokyo", 2026, 6, 1, 3, 0)
    result = next_send_time(None, earliest)
    assert result == utc(2026, 5, 31, 18, 0)
    assert result.tzinfo is UTC


def test_inside_window_returns_earliest_unchanged() -> None:
    earliest = local(LONDON, 2026, 6, 3, 11, 17, 23, 456789)  # a Wednesday, BST
    result = next_send_time(window(), earliest)
    assert result == earliest
    assert result == utc(2026, 6, 3, 10, 17, 23, 456789)
    assert result.tzinfo is UTC


def test_before_opening_is_same_day_opening() -> None:
    assert next_send_time(window(), local(LONDON, 2026, 6, 3, 6, 45)) == utc(2026, 6, 3, 8, 0)


def test_after_closing_is_next_days_opening() -> None:
    assert next_send_time(window(), local(LONDON, 2026, 6, 3, 18, 0)) == utc(2026, 6, 4, 8, 0)


def test_exactly_at_end_minute_is_outside() -> None:
    assert next_send_time(window(), local(LONDON, 2026, 6, 3, 17, 0)) == utc(2026, 6, 4, 8, 0)
    last = local(LONDON, 2026, 6, 3, 16, 59, 59, 999999)
    assert next_send_time(window(), last) == last


def test_exactly_at_opening_is_inside() -> None:
    assert next_send_time(window(), local(LONDON, 2026, 6, 3, 9, 0)) == utc(2026, 6, 3, 8, 0)


def test_friday_evening_waits_for_monday_morning() -> None:
    friday_evening = local(LONDON, 2026, 6, 5, 18, 30)
    assert friday_evening.weekday() == 4
    assert next_send_time(window(), friday_evening) == utc(2026, 6, 8, 8, 0)
    saturday = local(LONDON, 2026, 6, 6, 12, 0)
    assert next_send_time(window(), saturday) == utc(2026, 6, 8, 8, 0)


def test_wrap_around_days() -> None:
    weekend = window(days="sat-sun", hours="10-12")
    # Monday -> the next Saturday.
    assert next_send_time(weekend, local(LONDON, 2026, 6, 1, 9, 0)) == utc(2026, 6, 6, 9, 0)


def test_holidays_are_skipped() -> None:
    christmas = window(holidays=["2026-12-25", "2026-12-28"])
    assert dt.date(2026, 12, 25).weekday() == 4  # a Friday
    thursday_evening = local(LONDON, 2026, 12, 24, 18, 0)
    # Friday 25th and Monday 28th are holidays, Saturday and Sunday are not send days.
    assert next_send_time(christmas, thursday_evening) == utc(2026, 12, 29, 9, 0)
    # Inside the hours on a holiday still waits.
    assert next_send_time(christmas, local(LONDON, 2026, 12, 25, 10, 0)) == utc(2026, 12, 29, 9, 0)


def test_a_countrys_public_holidays_are_skipped() -> None:
    berlin = window(days="mon-sun", timezone="Europe/Berlin", country="DE")
    # Christmas Day and Boxing Day (Friday and Saturday) are public holidays in Germany.
    christmas_eve = local("Europe/Berlin", 2026, 12, 24, 18, 0)
    assert next_send_time(berlin, christmas_eve) == utc(2026, 12, 27, 8, 0)
    assert next_send_time(berlin, local("Europe/Berlin", 2026, 12, 26, 10)) == utc(2026, 12, 27, 8)
    # Epiphany is a holiday in Bavaria, not in all of Germany.
    evening = local("Europe/Berlin", 2027, 1, 5, 18, 0)
    assert next_send_time(berlin, evening) == utc(2027, 1, 6, 8, 0)
    bavaria = window(timezone="Europe/Berlin", country="DE", region="BY")
    assert next_send_time(bavaria, evening) == utc(2027, 1, 7, 8, 0)
    # Listed dates count as well as the public holidays.
    listed = window(timezone="Europe/Berlin", country="DE", holidays=["2027-01-07"])
    assert next_send_time(listed, local("Europe/Berlin", 2027, 1, 6, 18, 0)) == utc(2027, 1, 8, 8)


def test_holidays_are_local_dates() -> None:
    # 23:30 UTC on the 24th is already the 25th (a holiday) in Tokyo.
    tokyo = window(hours="0-24", timezone="Asia/Tokyo", holidays=["2026-12-25"])
    assert next_send_time(tokyo, utc(2026, 12, 24, 23, 30)) == utc(2026, 12, 27, 15, 0)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # Monday 09:00 UTC is 05:00 EDT: wait for 09:00 EDT the same day.
        ("America/New_York", utc(2026, 6, 1, 13, 0)),
        # ... and 18:00 JST, after closing: wait for Tuesday 09:00 JST.
        ("Asia/Tokyo", utc(2026, 6, 2, 0, 0)),
        ("Asia/Kolkata", utc(2026, 6, 1, 9, 0)),  # 14:30 IST, inside
    ],
)
def test_timezones(zone: str, expected: dt.datetime) -> None:
    assert next_send_time(window(timezone=zone), utc(2026, 6, 1, 9, 0)) == expected


def test_new_york_winter_offset() -> None:
    # EST (UTC-5) in January, so the same 09:00 opening is an hour later in UTC.
    assert next_send_time(window(timezone="America/New_York"), utc(2026, 1, 5, 9, 0)) == utc(
        2026, 1, 5, 14, 0
    )


def test_dst_spring_forward_opening_in_the_gap() -> None:
    # 2027-03-28 (a Sunday) London jumps from 01:00 GMT to 02:00 BST, so 01:30 does not
    # exist: the window opens at the first real instant after it, 02:00 BST = 01:00 UTC.
    early = window(days="mon-sun", hours="01:30-05:00")
    assert next_send_time(early, utc(2027, 3, 28, 0, 0)) == utc(2027, 3, 28, 1, 0)
    # The day before and after, 01:30 is an ordinary GMT or BST time.
    assert next_send_time(early, utc(2027, 3, 27, 0, 0)) == utc(2027, 3, 27, 1, 30)
    assert next_send_time(early, utc(2027, 3, 28, 5, 0)) == utc(2027, 3, 29, 0, 30)


def test_dst_spring_forward_window_wholly_in_the_gap_skips_the_day() -> None:
    # 01:30-01:45 never happens on 2027-03-28; 02:00 BST is past the window's end.
    gap = window(days="mon-sun", hours="01:30-01:45")
    assert next_send_time(gap, utc(2027, 3, 28, 0, 0)) == utc(2027, 3, 29, 0, 30)


def test_dst_fall_back_opening_uses_first_occurrence() -> None:
    # 2026-10-25 (a Sunday) London goes from 02:00 BST back to 01:00 GMT, so 01:30 happens
    # twice: 00:30 UTC (fold=0, BST) and 01:30 UTC. The first one opens the window.
    early = window(days="mon-sun", hours="01:30-05:00")
    assert next_send_time(early, utc(2026, 10, 24, 23, 0)) == utc(2026, 10, 25, 0, 30)
    # (Via astimezone: PEP 495 makes == between zones False for any ambiguous local time.)
    first = local(LONDON, 2026, 10, 25, 1, 30, fold=0).astimezone(UTC)
    assert next_send_time(early, utc(2026, 10, 24, 23, 0)) == first
    # 01:00 GMT (after the clocks went back) is before 01:30 on the local clock again.
    assert next_send_time(early, utc(2026, 10, 25, 1, 0)) == utc(2026, 10, 25, 1, 30)
    # Inside the first pass stays put.
    assert next_send_time(early, utc(2026, 10, 25, 0, 45)) == utc(2026, 10, 25, 0, 45)


def test_dst_fall_back_second_pass_is_inside() -> None:
    # A window that closed during the BST pass reopens when the clock repeats the hour.
    short = window(days="mon-sun", hours="01:30-01:45")
    assert next_send_time(short, utc(2026, 10, 25, 0, 50)) == utc(2026, 10, 25, 1, 30)


def test_dst_fall_back_jump_lands_inside_window() -> None:
    # 00:30-01:30: at 01:00 UTC the clock jumps from 01:59:59 BST back to 01:00 GMT, which
    # is inside the window even though it is not the opening.
    late = window(days="mon-sun", hours="00:30-01:30")
    assert next_send_time(late, utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 25, 1, 0)


def test_naive_datetime_raises() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(window(), dt.datetime(2026, 6, 1, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_send_time(None, dt.datetime(2026, 6, 1, 9, 0))


def test_holidays_blocking_every_day_for_400_days_raise() -> None:
    mondays = [dt.date(2026, 6, 1) + dt.timedelta(weeks=n) for n in range(60)]
    blocked = window(days="mon", holidays=mondays)
    with pytest.raises(ValidationError, match="no day to send on for 400 days"):
        next_send_time(blocked, utc(2026, 6, 1, 0, 0))
    # With one Monday free inside the 400 days, that Monday is found.
    almost = window(days="mon", holidays=[d for d in mondays if d != dt.date(2027, 5, 31)])
    assert next_send_time(almost, utc(2026, 6, 1, 0, 0)) == utc(2027, 5, 31, 8, 0)


# --- property: next_send_time against a minute-by-minute scan -------------------------------

ZONES = [
    LONDON,
    "UTC",
    "America/New_York",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # DST ends at local midnight, going back into the previous date
    "America/Havana",  # DST starts at local midnight, skipping 00:00-01:00
    "Pacific/Chatham",  # +12:45 / +13:45
]
# Instants near the 2026-2027 transitions of the zones above, where the bugs would be.
TRANSITIONS = [
    utc(2026, 3, 29, 1),  # London
    utc(2026, 10, 25, 1),
    utc(2027, 3, 28, 1),
    utc(2026, 3, 8, 7),  # New York
    utc(2026, 11, 1, 6),
    utc(2026, 4, 4, 15),  # Lord Howe
    utc(2026, 10, 3, 15, 30),
    utc(2026, 4, 5, 3),  # Santiago
    utc(2026, 9, 6, 4),
    utc(2026, 3, 8, 5),  # Havana
    utc(2026, 11, 1, 5),
    utc(2026, 4, 4, 14),  # Chatham
    utc(2026, 9, 26, 14),
]
MAX_SCAN = dt.timedelta(days=40)

earliest_times = st.one_of(
    st.builds(
        lambda base, minutes, second: base + dt.timedelta(minutes=minutes, seconds=second),
        st.sampled_from(TRANSITIONS),
        st.integers(-3 * 1440, 3 * 1440),
        st.sampled_from([0, 0, 0, 30.5]),
    ),
    st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2028, 12, 31), timezones=st.just(UTC)),
).flatmap(
    # The caller's own zone must not matter, so present earliest in an arbitrary one.
    lambda instant: st.sampled_from(ZONES).map(lambda z: instant.astimezone(ZoneInfo(z)))
)


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(0, 1439))
    # Short windows are the interesting ones around DST, so favour them.
    length = draw(st.one_of(st.integers(1, 90), st.integers(1, 1440)))
    return SendWindow(
        days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        start_minute=start,
        end_minute=min(start + length, 1440),
        timezone=draw(st.sampled_from(ZONES)),
        holidays=draw(
            st.frozensets(st.dates(dt.date(2025, 1, 1), dt.date(2029, 1, 1)), max_size=3)
        ),
    )


def is_inside(win: SendWindow, instant: dt.datetime) -> bool:
    """The definition, applied directly through a local conversion."""
    wall = instant.astimezone(ZoneInfo(win.timezone))
    seconds = wall.hour * 3600 + wall.minute * 60 + wall.second + wall.microsecond / 1e6
    return (
        wall.weekday() in win.days
        and wall.date() not in win.holidays
        and win.start_minute * 60 <= seconds < win.end_minute * 60
    )


@settings(max_examples=120, deadline=None)
@given(win=windows(), earliest=earliest_times)
def test_next_send_time_is_the_first_inside_instant(win: SendWindow, earliest: dt.datetime) -> None:
    result = next_send_time(win, earliest)
    note(f"result {result} = {result.astimezone(ZoneInfo(win.timezone))} local")
    assert result.tzinfo is UTC
    assert result >= earliest
    assert is_inside(win, result)
    if result > earliest:
        # The result opens a stretch of inside time: a moment before it is outside ...
        assert not is_inside(win, result - dt.timedelta(microseconds=1))
        # ... and so is every minute from earliest up to it. All offsets here are whole
        # minutes, so inside-ness only changes on minute boundaries; checking earliest and
        # each whole minute after it covers every instant.
        gap = result - earliest
        assert gap < MAX_SCAN  # at most 3 holidays on top of one send day a week
        assert not is_inside(win, earliest)
        minute = earliest.astimezone(UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        while minute < result:
            assert not is_inside(win, minute), minute
            minute += dt.timedelta(minutes=1)


def test_the_country_picker_names_countries_and_their_regions() -> None:
    countries = send_window.holiday_countries()
    assert countries["DE"] == "Germany"
    assert countries["GB"] == "United Kingdom"
    assert all(len(code) == 2 for code in countries)
    assert list(countries.values()) == sorted(countries.values())
    assert send_window.holiday_regions("DE")["BY"] == "Bayern"
    assert send_window.holiday_regions("GB")["SCT"] == "Scotland"
    assert send_window.holiday_regions("XX") == {}
