"""Date, time and amount cells as ATS exports and content spreadsheets write them, and a
file's date order.

A file writes its dates one way, so the order of 03/04/2025 is decided for the whole file
(day_first) by a date that can only be read one way, such as 13/04 or 04/13.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from decimal import Decimal

from crm.identity import clean_text

CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_TIME_TAIL = re.compile(
    r"^(?P<date>\S+)(?:[ T]+(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
    r"\s*(?P<ampm>[AaPp][Mm])?\s*(?P<tz>Z|UTC|[+-]\d{2}:?\d{2})?)?$"
)
# "4 Mar 2025", "4th March, 2025", "March 4 2025", "Tue, Mar. 4th, 2025" (lower-cased).
_WORD_DATE = re.compile(
    r"^(?:[a-z]+,?\s+)?(?:(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})"
    r"|([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))$"
)
_MONTHS = {
    name.lower(): number
    for number in range(1, 13)
    for name in (calendar.month_name[number], calendar.month_abbr[number])
} | {"sept": 9}
_TIME = re.compile(r"^(\d{1,2})(?:[:.h](\d{2}))?(?::(\d{2}))?\s*([ap])?\.?m?\.?$")


def day_first(values: Iterable[str], *, default: bool = True) -> bool:
    """Whether a file's slashed dates are day/month: decided by a date that can only be
    read one way (13/01 or 01/13), else (none, or both ways) the default."""
    seen_day_first = seen_month_first = False
    for value in values:
        head = value.strip().split(" ")[0].split("T")[0]
        match = _NUMERIC.match(head)
        if match:
            first, second = int(match.group(1)), int(match.group(2))
            seen_month_first |= second > 12 and first <= 12
            seen_day_first |= first > 12 and second <= 12
    if seen_day_first == seen_month_first:
        return default
    return seen_day_first


def parse_date(text: str, *, month_first: bool = False) -> dt.date:
    """A date cell (2025-03-04, 04/03/2025, 4.3.25, 4 Mar 2025, March 4th, 2025) as a
    date; 04/03 is day first unless month_first. ValueError when it is none."""
    value = " ".join(text.strip().lower().split())
    if match := _ISO.match(value):
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    if match := _NUMERIC.match(value):
        first, second, year = int(match[1]), int(match[2]), match[3]
        day, month = (second, first) if month_first else (first, second)
        return dt.date(int(year) if len(year) == 4 else 2000 + int(year), month, day)
    if match := _WORD_DATE.match(value):
        day_text, month_name, year = (
            match.group(1, 2, 3) if match[1] else (match[5], match[4], match[6])
        )
        if month_name in _MONTHS:
            return dt.date(int(year), _MONTHS[month_name], int(day_text))
    raise ValueError(text)


def parse_time(text: str) -> dt.time:
    """A time cell (09:30, 9.30, 9h30, 0930, 2pm, 9:30 a.m., noon) as a time; ValueError
    when it is none (a bare number such as 9 is not a time)."""
    value = text.strip().lower()
    if value in {"noon", "midday"}:
        return dt.time(12, 0)
    if re.fullmatch(r"\d{4}", value):  # 0930
        value = f"{value[:2]}:{value[2:]}"
    match = _TIME.match(value)
    if not match:
        raise ValueError(text)
    hour, minute = int(match[1]), int(match[2] or 0)
    if match[4]:
        if not 1 <= hour <= 12:
            raise ValueError(text)
        hour = hour % 12 + (12 if match[4] == "p" else 0)
    elif match[2] is None:
        raise ValueError(text)
    if hour > 23 or minute > 59:
        raise ValueError(text)
    return dt.time(hour, minute)


def parse_moment(text: str, *, month_first: bool = False) -> dt.datetime:
    """A date or date-time cell as an aware UTC datetime (a bare date: midnight UTC)."""
    value = " ".join(clean_text(text).replace(",", " ").split())
    if not value:
        raise ValueError(text)
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" UTC", "Z"))
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    match = _TIME_TAIL.match(value)
    if match:
        day = parse_date(match.group("date"), month_first=month_first)
        hour, minute = int(match.group("h") or 0), int(match.group("m") or 0)
        second = int(match.group("s") or 0)
        ampm = (match.group("ampm") or "").lower()
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        zone = match.group("tz")
        offset = dt.UTC
        if zone and zone not in {"Z", "UTC"}:
            digits = zone.replace(":", "")
            delta = dt.timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
            offset = dt.timezone(delta if digits[0] == "+" else -delta)
        moment = dt.datetime.combine(day, dt.time(hour, minute, second), offset)
        return moment.astimezone(dt.UTC)
    for candidate in (value, " ".join(value.split(" ")[:3])):  # "4 Mar 2025 10:00"
        try:
            day = parse_date(candidate, month_first=month_first)
            return dt.datetime.combine(day, dt.time(), dt.UTC)
        except ValueError:
            continue
    raise ValueError(text)


def parse_amount(text: str) -> tuple[Decimal, str | None]:
    """(amount, currency from its symbol or code or None) for '$1,234.50', '1.234,50 €'."""
    value = clean_text(text).replace("\u00a0", "").replace(" ", "").replace("'", "")
    currency = None
    for symbol, code in CURRENCY_SYMBOLS.items():
        if symbol in value:
            currency, value = code, value.replace(symbol, "")
    match = re.match(r"^([A-Za-z]{3})?(.*?)([A-Za-z]{3})?$", value)
    if match and (match.group(1) or match.group(3)):
        currency = (match.group(1) or match.group(3)).upper()
        value = match.group(2)
    negative = value.startswith("(") and value.endswith(")")
    value = value.strip("()")
    if value.startswith("-"):
        negative, value = True, value[1:]
    if "," in value and "." in value:
        decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
        value = value.replace("." if decimal_mark == "," else ",", "").replace(",", ".")
    elif "," in value:
        value = value.replace(",", "") if re.match(r"^\d{1,3}(,\d{3})+$", value) else value
        value = value.replace(",", ".")
    elif re.match(r"^\d{1,3}(\.\d{3}){2,}$", value):
        value = value.replace(".", "")
    if not re.match(r"^\d+(\.\d+)?$", value):
        raise ValueError(text)
    amount = Decimal(value)
    return (-amount if negative else amount), currency
