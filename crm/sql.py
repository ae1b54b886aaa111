"""Portable SQL expressions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String, and_, literal, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from crm.models import encode_items


def _spelled_per_dialect(
    name: str, result: TypeEngine[Any], *, sqlite: str, postgresql: str
) -> type[FunctionElement[Any]]:
    """A SQL function that each dialect spells by its own template; {0}, {1}... stand for
    the arguments' SQL."""
    function: type[FunctionElement[Any]] = type(
        name, (FunctionElement,), {"type": result, "inherit_cache": True, "name": name}
    )
    for dialect, template in (("sqlite", sqlite), ("postgresql", postgresql)):

        def spell(element: Any, compiler: Any, template: str = template, **kw: Any) -> str:
            return template.format(*(compiler.process(arg, **kw) for arg in element.clauses))

        compiles(function, dialect)(spell)
    return function


# (later - earlier) in fractional days, for two timestamp or date columns. Casting to
# timestamp makes dates and timestamps subtract alike in PostgreSQL (to an interval).
days_between = _spelled_per_dialect(
    "days_between",
    Float(),
    sqlite="(julianday({0}) - julianday({1}))",
    postgresql="(EXTRACT(EPOCH FROM (CAST({0} AS TIMESTAMP) - CAST({1} AS TIMESTAMP))) / 86400.0)",
)
# Where a TextList item's quoted JSON form starts in the column's text (0: absent).
item_position = _spelled_per_dialect(
    "item_position", Integer(), sqlite="instr({0}, {1})", postgresql="strpos({0}, {1})"
)
# 'YYYY-MM' of a date or timestamp column.
month_of = _spelled_per_dialect(
    "month_of", String(), sqlite="strftime('%Y-%m', {0})", postgresql="to_char({0}, 'YYYY-MM')"
)


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
