"""Paged lists (the audit log, the consent and retention reviews): the bounds a page
must keep, and the moment a list is drawn up at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, func, select

from crm import clock
from crm.db import read_session
from crm.errors import ValidationError

MAX_PAGE = 1000


def check_page(limit: int, offset: int) -> tuple[int, int]:
    """(limit, offset) of a page; one sentence if the page is empty, too big or before the
    start."""
    if limit < 1 or limit > MAX_PAGE:
        raise ValidationError(f"A page holds 1 to {MAX_PAGE:,} rows.")
    if offset < 0:
        raise ValidationError("The page offset cannot be negative.")
    return limit, offset


def page_of(
    engine: Engine,
    columns: Select[Any],
    *,
    table: Any,
    conditions: Sequence[ColumnElement[bool]],
    order_by: Sequence[ColumnElement[Any]],
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the rows that meet the conditions, as dicts in the order given, and how
    many rows of the table meet them in all (counted without the page's columns)."""
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(table).where(*conditions))
        query = columns.where(*conditions).order_by(*order_by).limit(limit).offset(offset)
        rows = [dict(row._mapping) for row in session.execute(query)]
    return rows, total or 0


def moment_or_now(moment: dt.datetime | None) -> dt.datetime:
    """The moment given (with its time zone, or one sentence), else now (crm.clock)."""
    if moment is None:
        return clock.now()
    if moment.tzinfo is None:
        raise ValidationError("Give the time with its time zone.")
    return moment
