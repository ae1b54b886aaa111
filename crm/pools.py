"""Talent pools: dynamic pools (a stored filter, always current) and static lists.

A filter is the JSON of DESIGN.md: {"all": [...]} or {"any": [...]} groups that nest,
holding conditions {"field", "op", "value"}. It is compiled to SQL through an allow-list
of fields and operators; values are always bound parameters, never pasted into SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from crm.db import read_session
from crm.errors import ValidationError
from crm.models import (
    Candidate,
    CandidateSkill,
    CandidateTag,
    Pool,
    PoolMember,
    User,
    UtcDateTime,
    utcnow,
)

LONG_AGO = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)  # stands in for "never" in date filters

TEXT_FIELDS = {
    "first_name": Candidate.first_name,
    "last_name": Candidate.last_name,
    "email": Candidate.email,
    "title": Candidate.title,
    "company": Candidate.company,
    "location": Candidate.location,
    "country": Candidate.country,
    "role_family": Candidate.role_family,
    "source": Candidate.source,
    "consent_status": Candidate.consent_status,
}
NUMBER_FIELDS = {"years_experience": Candidate.years_experience}
DATE_FIELDS = {
    "last_contacted_at": Candidate.last_contacted_at,
    "last_engaged_at": Candidate.last_engaged_at,
    "created_at": Candidate.created_at,
}
SET_FIELDS = {
    "skills": (CandidateSkill, CandidateSkill.skill),
    "tags": (CandidateTag, CandidateTag.tag),
}
BOOL_FIELDS = {"remote": Candidate.remote}

TEXT_OPS = {"eq", "ne", "in", "not_in", "contains", "is_empty", "is_not_empty"}
NUMBER_OPS = {"eq", "ne", "gte", "lte", "between", "is_empty", "is_not_empty"}
DATE_OPS = {"within_days", "older_than_days", "is_empty", "is_not_empty"}
SET_OPS = {"has_any", "has_all", "has_none", "is_empty", "is_not_empty"}
BOOL_OPS = {"eq", "ne"}
SPECIAL_FIELDS = {"owner": {"eq", "ne", "in", "is_empty", "is_not_empty"}, "pool": {"in", "not_in"}}

FIELD_OPS: dict[str, set[str]] = {
    **{name: TEXT_OPS for name in TEXT_FIELDS},
    **{name: NUMBER_OPS for name in NUMBER_FIELDS},
    **{name: DATE_OPS for name in DATE_FIELDS},
    **{name: SET_OPS for name in SET_FIELDS},
    **{name: BOOL_OPS for name in BOOL_FIELDS},
    **SPECIAL_FIELDS,
}


@dataclass(frozen=True)
class PoolSummary:
    id: int
    name: str
    kind: str
    description: str | None
    size: int | None
    problem: str | None  # why the size could not be computed, said plainly


def _fail(message: str) -> ValidationError:
    return ValidationError(message)


def _text_list(field: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) for item in values):
        raise _fail(f"The value of {field} must be text or a list of text.")
    return [item.strip().lower() for item in values]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(f"The value of {field} must be a number.")
    return value


def _text_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    column = TEXT_FIELDS[field]
    lowered = func.lower(func.coalesce(column, ""))
    if op == "is_empty":
        return or_(column.is_(None), column == "")
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "")
    if op == "contains":
        (needle,) = _text_list(field, value)[:1] or [""]
        return lowered.like(f"%{_like_escape(needle)}%", escape="\\")
    values = _text_list(field, value)
    if op in {"eq", "in"}:
        return lowered.in_(values)
    return not_(lowered.in_(values))  # ne, not_in


def _number_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    column = NUMBER_FIELDS[field]
    if op == "is_empty":
        return column.is_(None)
    if op == "is_not_empty":
        return column.is_not(None)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(f"between on {field} takes two numbers, like [3, 8].")
        low, high = (_number(field, item) for item in value)
        return column.between(low, high)
    number = _number(field, value)
    return {
        "eq": column == number,
        "ne": or_(column.is_(None), column != number),
        "gte": column >= number,
        "lte": column <= number,
    }[op]


def _date_condition(field: str, op: str, value: Any, now: dt.datetime) -> ColumnElement[bool]:
    column = DATE_FIELDS[field]
    if op == "is_empty":
        return column.is_(None)
    if op == "is_not_empty":
        return column.is_not(None)
    days = _number(field, value)
    if days < 0:
        raise _fail(f"The number of days for {field} cannot be negative.")
    cutoff = now - dt.timedelta(days=days)
    if op == "within_days":
        return column >= cutoff  # an empty date never matches
    # Never contacted counts as gone quiet. COALESCE rather than "IS NULL OR <": the OR
    # sends SQLite through the date index and one row lookup per match, far slower than
    # a scan when most people match.
    return func.coalesce(column, literal(LONG_AGO, UtcDateTime())) < cutoff


def _set_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    table, column = SET_FIELDS[field]

    def having(items: list[str] | None) -> ColumnElement[bool]:
        # IN (subquery) lets SQLite build the set once from the (skill, candidate) index,
        # where a correlated EXISTS probes it once per candidate (three times slower).
        query = select(table.candidate_id)
        if items is not None:
            query = query.where(column.in_(items))
        return Candidate.id.in_(query)

    if op == "is_empty":
        return not_(having(None))
    if op == "is_not_empty":
        return having(None)
    items = _text_list(field, value)
    if op == "has_any":
        return having(items)
    if op == "has_none":
        return not_(having(items))
    # has_all: one set per item
    return and_(*(having([item]) for item in dict.fromkeys(items)))


def _bool_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    if not isinstance(value, bool):
        raise _fail(f"The value of {field} must be true or false.")
    column = BOOL_FIELDS[field]
    return column.is_(value) if op == "eq" else column.is_not(value)


def _owner_condition(session: Session, op: str, value: Any) -> ColumnElement[bool]:
    if op == "is_empty":
        return Candidate.owner_id.is_(None)
    if op == "is_not_empty":
        return Candidate.owner_id.is_not(None)
    names = _text_list("owner", value)
    ids = list(session.scalars(select(User.id).where(User.username.in_(names))))
    if op == "ne":
        return or_(Candidate.owner_id.is_(None), Candidate.owner_id.not_in(ids))
    return Candidate.owner_id.in_(ids) if ids else false()


def _pool_condition(
    session: Session, op: str, value: Any, now: dt.datetime, seen: frozenset[int]
) -> ColumnElement[bool]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) for name in names):
        raise _fail("The value of pool must be a pool name or a list of pool names.")
    memberships = []
    for name in names:
        pool = session.scalar(select(Pool).where(Pool.name == name))
        if pool is None:
            raise _fail(f"The filter refers to a pool that no longer exists: {name!r}.")
        if pool.id in seen:
            raise _fail(f"The pool {name!r} refers to itself through its filter.")
        memberships.append(membership_condition(session, pool, now=now, seen=seen | {pool.id}))
    matched = or_(*memberships)
    return matched if op == "in" else not_(matched)


def _compile(
    session: Session, node: Any, now: dt.datetime, seen: frozenset[int]
) -> ColumnElement[bool]:
    if not isinstance(node, dict):
        raise _fail("A filter is an object with 'all', 'any' or 'field'.")
    for group, combine in (("all", and_), ("any", or_)):
        if group in node:
            children = node[group]
            if not isinstance(children, list):
                raise _fail(f"'{group}' must hold a list of conditions.")
            parts = [_compile(session, child, now, seen) for child in children]
            if not parts:
                return true() if group == "all" else false()
            return combine(*parts)
    field, op = node.get("field"), node.get("op")
    if field not in FIELD_OPS:
        raise _fail(f"Unknown filter field {field!r}.")
    if op not in FIELD_OPS[field]:
        allowed = ", ".join(sorted(FIELD_OPS[field]))
        raise _fail(f"Unknown operator {op!r} for {field}; use one of {allowed}.")
    value = node.get("value")
    if field in TEXT_FIELDS:
        return _text_condition(field, op, value)
    if field in NUMBER_FIELDS:
        return _number_condition(field, op, value)
    if field in DATE_FIELDS:
        return _date_condition(field, op, value, now)
    if field in SET_FIELDS:
        return _set_condition(field, op, value)
    if field in BOOL_FIELDS:
        return _bool_condition(field, op, value)
    if field == "owner":
        return _owner_condition(session, op, value)
    return _pool_condition(session, op, value, now, seen)


def compile_filter(
    session: Session, filter_json: Any, *, now: dt.datetime | None = None
) -> ColumnElement[bool]:
    """A WHERE clause over Candidate for the filter; ValidationError names what is wrong."""
    return _compile(session, filter_json, now or utcnow(), frozenset())


def membership_condition(
    session: Session,
    pool: Pool,
    *,
    now: dt.datetime | None = None,
    seen: frozenset[int] = frozenset(),
) -> ColumnElement[bool]:
    """Who is in a pool right now: the filter for dynamic pools, the list for static ones."""
    if pool.kind == "dynamic":
        return _compile(session, pool.filter or {"all": []}, now or utcnow(), seen | {pool.id})
    return Candidate.id.in_(select(PoolMember.candidate_id).where(PoolMember.pool_id == pool.id))


def count_matching(engine: Engine, filter_json: Any) -> int:
    with read_session(engine) as session:
        condition = compile_filter(session, filter_json)
        return session.scalar(select(func.count()).select_from(Candidate).where(condition))


def list_pools(engine: Engine) -> list[PoolSummary]:
    """Every pool with its current size; a broken filter is reported, not raised.

    All dynamic pools are counted in one pass over the candidates (COUNT ... FILTER per
    pool), static lists from their member rows.
    """
    with read_session(engine) as session:
        now = utcnow()
        all_pools = list(session.scalars(select(Pool).order_by(Pool.name)))
        static_sizes = dict(
            session.execute(
                select(PoolMember.pool_id, func.count()).group_by(PoolMember.pool_id)
            ).all()
        )
        conditions: dict[int, ColumnElement[bool]] = {}
        problems: dict[int, str] = {}
        for pool in all_pools:
            if pool.kind != "dynamic":
                continue
            try:
                conditions[pool.id] = membership_condition(session, pool, now=now)
            except ValidationError as error:
                problems[pool.id] = str(error)
        dynamic_sizes: dict[int, int] = {}
        if conditions:
            counts = session.execute(
                select(*(func.count().filter(c) for c in conditions.values())).select_from(
                    Candidate
                )
            ).one()
            dynamic_sizes = dict(zip(conditions, counts, strict=True))
    return [
        PoolSummary(
            pool.id,
            pool.name,
            pool.kind,
            pool.description,
            static_sizes.get(pool.id, 0) if pool.kind == "static" else dynamic_sizes.get(pool.id),
            problems.get(pool.id),
        )
        for pool in all_pools
    ]


def static_pools(engine: Engine) -> list[tuple[int, str]]:
    """(id, name) of the hand-kept pools, for "add to pool" pickers."""
    with read_session(engine) as session:
        return [
            (pool_id, name)
            for pool_id, name in session.execute(
                select(Pool.id, Pool.name).where(Pool.kind == "static").order_by(Pool.name)
            )
        ]


def pool_names(engine: Engine) -> list[str]:
    """Every pool's name, for pickers (no sizes: counting is the slow part)."""
    with read_session(engine) as session:
        return list(session.scalars(select(Pool.name).order_by(Pool.name)))
