"""How often each pool hears from us: the cadence guard, radio silence and theme balance.

A pool may have a weekly cap (too_often: a week in which more occurrences aim at it) and
a number of silence days (silence: nobody reached it for longer, and nothing is planned in
as long). Theme balance counts the occurrences of each content theme per month.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm import audit, clock
from crm.content_calendar.occurrences import occurrences_between, read_occurrences
from crm.content_calendar.values import DEFAULT_TIMEZONE, blank, whole_number, zone
from crm.db import get_existing, read_session, write_session
from crm.errors import ValidationError
from crm.models import (
    CONTENT_THEMES,
    Campaign,
    ContentItem,
    ContentItemPool,
    OutboxMessage,
    Pool,
    User,
)
from crm.permissions import require_writer

DEFAULT_SILENCE_DAYS = 30
MAX_SILENCE_DAYS = 365
MAX_CAP_PER_WEEK = 50


@dataclass(frozen=True)
class CadenceWarning:
    pool_id: int
    pool: str
    kind: str  # "too_often" | "silence"
    message: str
    week_start: dt.date | None


def _optional_number(value: Any, low: int, high: int, sentence: str) -> int | None:
    """A whole number from low to high, None when blank, or ValidationError(sentence)."""
    if blank(value):
        return None
    number = whole_number(value)
    if number is None or not low <= number <= high:
        raise ValidationError(sentence)
    return number


def set_pool_cadence(
    engine: Engine,
    *,
    actor: User,
    pool_id: int,
    frequency_cap_per_week: int | None,
    silence_days: int | None,
) -> None:
    """A pool's cadence guard: at most so many touches a week (None: no cap), and a warning
    after so many days without any (None: DEFAULT_SILENCE_DAYS)."""
    require_writer(engine, actor)
    cap = _optional_number(
        frequency_cap_per_week,
        1,
        MAX_CAP_PER_WEEK,
        f"The weekly cap must be a whole number from 1 to {MAX_CAP_PER_WEEK}, or empty for no cap.",
    )
    silence = _optional_number(
        silence_days,
        1,
        MAX_SILENCE_DAYS,
        f"The radio-silence days must be a whole number from 1 to {MAX_SILENCE_DAYS}, "
        f"or empty for the default of {DEFAULT_SILENCE_DAYS}.",
    )
    with write_session(engine, actor=actor) as session:
        pool = get_existing(session, Pool, pool_id, "pool", with_for_update=True)
        pool.frequency_cap_per_week = cap
        pool.silence_days = silence
        audit.record_about(
            session,
            actor,
            "pool.cadence",
            pool_id,
            {"frequency_cap_per_week": cap, "silence_days": silence},
        )


def _week_start(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    day = moment.astimezone(tz).date()
    return day - dt.timedelta(days=day.weekday())


def _local_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


def _too_often(
    session: Session, pools: list[Any], start: dt.datetime, end: dt.datetime, tz: dt.tzinfo
) -> list[CadenceWarning]:
    """The weeks touching [start, end) in which a capped pool would hear from us too often."""
    capped = {row.id: row for row in pools if row.frequency_cap_per_week}
    if not capped:
        return []
    first_week = _week_start(start, tz)
    last_week = _week_start(end - dt.timedelta(microseconds=1), tz)
    occurrences = read_occurrences(
        session,
        start=_local_midnight(first_week, tz),
        end=_local_midnight(last_week + dt.timedelta(days=7), tz),
        pool_ids=list(capped),
    )
    counts: Counter[tuple[int, dt.date]] = Counter()
    for occurrence in occurrences:
        week = _week_start(occurrence.starts_at, tz)
        for pid in occurrence.pool_ids:
            if pid in capped:
                counts[pid, week] += 1
    warnings = []
    for (pid, week), count in sorted(counts.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        name, cap = capped[pid].name, capped[pid].frequency_cap_per_week
        if count > cap:
            warnings.append(
                CadenceWarning(
                    pool_id=pid,
                    pool=name,
                    kind="too_often",
                    message=(
                        f"{name} would hear from us {count} times in the week "
                        f"of {week:%d %b %Y}, more than its cap of {cap} a week."
                    ),
                    week_start=week,
                )
            )
    return warnings


def _last_reached(session: Session, now: dt.datetime) -> dict[int, dt.datetime]:
    """Pool id -> when we last reached it: a published item aimed at it or a campaign email."""
    last_content = session.execute(
        select(ContentItemPool.pool_id, func.max(ContentItem.published_at))
        .join(ContentItem, ContentItem.id == ContentItemPool.content_item_id)
        .where(ContentItem.published_at.is_not(None), ContentItem.published_at <= now)
        .group_by(ContentItemPool.pool_id)
    ).all()
    last_email = session.execute(
        select(Campaign.audience_pool_id, func.max(OutboxMessage.sent_at))
        .join(OutboxMessage, OutboxMessage.campaign_id == Campaign.id)
        .where(
            OutboxMessage.status == "sent",
            OutboxMessage.sent_at <= now,
            Campaign.audience_pool_id.is_not(None),
        )
        .group_by(Campaign.audience_pool_id)
    ).all()
    last: dict[int, dt.datetime] = {}
    for pool_id, moment in [*last_content, *last_email]:
        if moment is not None:
            last[pool_id] = max(moment, last.get(pool_id, moment))
    return last


def _silence(session: Session, pools: list[Any], now: dt.datetime) -> list[CadenceWarning]:
    """Pools nobody reached for more than their silence days, with nothing planned as soon."""
    last_reached = _last_reached(session, now)
    longest = max((row.silence_days or DEFAULT_SILENCE_DAYS for row in pools), default=0)
    upcoming: dict[int, dt.datetime] = {}
    if pools:
        for occurrence in read_occurrences(
            session, start=now, end=now + dt.timedelta(days=longest)
        ):
            for pid in occurrence.pool_ids:
                upcoming.setdefault(pid, occurrence.starts_at)
    warnings = []
    for row in pools:
        days = row.silence_days or DEFAULT_SILENCE_DAYS
        last = last_reached.get(row.id)
        since = last or row.created_at
        if now - since <= dt.timedelta(days=days):
            continue
        next_planned = upcoming.get(row.id)
        if next_planned is not None and next_planned < now + dt.timedelta(days=days):
            continue
        quiet_for = (now - since).days
        heard = (
            f"has heard nothing from us for {quiet_for} days"
            if last
            else f"has never heard from us in the {quiet_for} days since it was made"
        )
        warnings.append(
            CadenceWarning(
                pool_id=row.id,
                pool=row.name,
                kind="silence",
                message=f"{row.name} {heard} and nothing is planned in the next {days} days.",
                week_start=None,
            )
        )
    return warnings


def cadence_warnings(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> list[CadenceWarning]:
    """Pools that would hear from us too often, and pools gone quiet.

    too_often: each ISO week (Monday to Sunday in `timezone`) touching [start, end) in which
    the occurrences aimed at a pool outnumber its weekly cap. silence: a pool that nobody
    reached for more than its silence days up to now (a published item aimed at it, or a
    campaign email to it, counts; a pool never reached counts from its creation) and with
    nothing planned in as many days from now.
    """
    tz = zone(timezone)
    now = now or clock.now()
    with read_session(engine) as session:
        pools = session.execute(
            select(
                Pool.id, Pool.name, Pool.frequency_cap_per_week, Pool.silence_days, Pool.created_at
            ).order_by(Pool.name)
        ).all()
        return [*_too_often(session, pools, start, end, tz), *_silence(session, pools, now)]


def theme_balance(
    engine: Engine,
    *,
    start: dt.datetime,
    end: dt.datetime,
    pool_id: int | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[str, dict[str, int]]:
    """ "YYYY-MM" -> theme -> occurrences, for every month touching [start, end); every theme
    is listed (0 when absent), and "none" counts occurrences without a theme when any."""
    tz = zone(timezone)
    balance: dict[str, dict[str, int]] = {}
    month = start.astimezone(tz).date().replace(day=1)
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    while month <= last:
        balance[f"{month:%Y-%m}"] = dict.fromkeys(CONTENT_THEMES, 0)
        month += relativedelta(months=1)
    for occurrence in occurrences_between(engine, start=start, end=end, pool_id=pool_id):
        label = f"{occurrence.starts_at.astimezone(tz):%Y-%m}"
        themes = balance.setdefault(label, dict.fromkeys(CONTENT_THEMES, 0))
        theme = occurrence.theme or "none"
        themes[theme] = themes.get(theme, 0) + 1
    return balance
