"""Portable SQL expressions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String, and_, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from crm.models import encode_items


class days_between(FunctionElement[float]):  # named like the SQL function
    """(later - earlier) in fractional days, for two timestamp or date columns."""

    type = Float()
    inherit_cache = True
    name = "days_between"

    def __init__(self, later: ColumnElement[Any], earlier: ColumnElement[Any]) -> None:
        super().__init__(later, earlier)


@compiles(days_between, "sqlite")
def _days_between_sqlite(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return (
        f"(julianday({compiler.process(later, **kw)}) - "
        f"julianday({compiler.process(earlier, **kw)}))"
    )


@compiles(days_between, "postgresql")
def _days_between_postgresql(element: days_between, compiler: Any, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    # Casting to timestamp makes dates and timestamps subtract alike (to an interval).
    return (
        f"(EXTRACT(EPOCH FROM (CAST({compiler.process(later, **kw)} AS TIMESTAMP) - "
        f"CAST({compiler.process(earlier, **kw)} AS TIMESTAMP))) / 86400.0)"
    )


class item_position(FunctionElement[int]):  # named like the SQL it stands for
    """Where a TextList item's quoted JSON form starts in the column's text (0: absent)."""

    type = Integer()
    inherit_cache = True
    name = "item_position"


@compiles(item_position, "sqlite")
def _item_position_sqlite(element: item_position, compiler: Any, **kw: Any) -> str:
    column, needle = list(element.clauses)
    return f"instr({compiler.process(column, **kw)}, {compiler.process(needle, **kw)})"


@compiles(item_position, "postgresql")
def _item_position_postgresql(element: item_position, compiler: Any, **kw: Any) -> str:
    column, needle = list(element.clauses)
    return f"strpos({compiler.process(column, **kw)}, {compiler.process(needle, **kw)})"


def has_item(column: ColumnElement[Any], item: str) -> ColumnElement[bool]:
    """True when a TextList column (crm.models.TextList) holds the item.

    The stored text is compact JSON, so the item's quoted JSON form appears in it exactly
    when the item is in the list: '"go"' is in '["go","rust"]' but not in '["golang"]'.
    A plain substring search (instr / strpos), not LIKE: no wildcards to escape, no case
    folding, and faster on a scan.
    """
    quoted = encode_items([item])[1:-1]
    # The quoted item can also sit inside an escaped longer one ('"sharp"' in '["c\\"sharp"]'),
    # so a match must start an element: right after '[' or ','. The plain test comes first
    # because it rules out almost every row with one search.
    anywhere = item_position(column, literal(quoted, String())) > 0
    first = item_position(column, literal("[" + quoted, String())) > 0
    later = item_position(column, literal("," + quoted, String())) > 0
    return and_(anywhere, or_(first, later))


def escape_like(text: str) -> str:
    """Text for a LIKE pattern with its wildcards taken literally (use escape="\\\\")."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
