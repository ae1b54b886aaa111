"""Portable SQL expressions that SQLite and PostgreSQL spell differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


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
