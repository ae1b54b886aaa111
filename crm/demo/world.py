"""What the demo loader carries from one part to the next while it loads.

Its random numbers (one random.Random(seed), drawn in a fixed order so the same seed and
day give the same data), its "today", the users, pools and campaigns made so far, and the
bulk-insert helpers every part writes its rows with.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.orm import Session

from crm.models import Campaign, CampaignStep, Pool

CHUNK = 5_000
COMPANY = "Fernwood"  # the (fictional) employer doing the recruiting

ProgressFn = Callable[[str, float], None]


@dataclass
class World:
    engine: Engine
    count: int  # candidates to create
    rng: random.Random
    today: dt.date
    progress_fn: ProgressFn | None = None
    users: dict[str, int] = field(default_factory=dict)
    users_created: list[str] = field(default_factory=list)
    # family -> [(candidate id, created_at)], for applications
    by_family: dict[str, list[tuple[int, dt.datetime]]] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    steps: dict[str, list[CampaignStep]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    now: dt.datetime = field(init=False)  # the start of today: everything "past" is before it

    def __post_init__(self) -> None:
        self.now = moment(self.today, 0)

    def report(self, label: str, fraction: float) -> None:
        if self.progress_fn is not None:
            self.progress_fn(label, round(min(1.0, max(0.0, fraction)), 4))

    def days_ago(self, days: float) -> dt.datetime:
        return self.now - dt.timedelta(seconds=int(days * 86_400))


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_day))


def moment(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def to_money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def cumulative(weights: Iterable[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def insert_rows(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[start : start + CHUNK])


def max_id(session: Session, table: Table) -> int:
    return session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0


def reset_sequence(session: Session, table: Table) -> None:
    """After explicit ids on PostgreSQL, move the id sequence past them (SQLite needs nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    highest = max_id(session, table)
    if highest:
        session.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"), highest)))
