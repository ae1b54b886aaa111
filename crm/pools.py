"""Talent pools: dynamic pools (a stored filter, always current) and static lists.

A filter is the JSON of DESIGN.md: {"all": [...]} or {"any": [...]} groups that nest,
holding conditions {"field", "op", "value"}. It is compiled to SQL through an allow-list
of fields and operators; values are always bound parameters, never pasted into SQL.

A filter is also bounded (check_filter: text length, list length, conditions, nesting,
finite numbers, no NUL), and so is what it grows into with the pools it refers to
(MAX_TERMS, MAX_POOL_DEPTH): one saved pool must never be more than the database can
count, or every page listing pools would fail with it. A stored pool that cannot be
counted anyway (saved before a limit, or otherwise broken) is listed with the sentence
saying why instead of a size.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Engine,
    Text,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Grouping

from crm import activities, audit, clock, metrics, touches
from crm.db import read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.identity import clean_text
from crm.models import (
    APPLICATION_STAGES,
    POOL_KINDS,
    Application,
    Campaign,
    Candidate,
    CandidateTag,
    ContentItem,
    ContentItemPool,
    CustomField,
    Event,
    Pool,
    PoolMember,
    User,
    UtcDateTime,
)
from crm.permissions import require_writer
from crm.sql import has_item

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
    "skills": None,  # a TextList column on the candidate: crm.sql.has_item
    "tags": (CandidateTag, CandidateTag.tag),
}
BOOL_FIELDS = {"remote": Candidate.remote}

TEXT_OPS = {"eq", "ne", "in", "not_in", "contains", "is_empty", "is_not_empty"}
NUMBER_OPS = {"eq", "ne", "gte", "lte", "between", "is_empty", "is_not_empty"}
DATE_OPS = {"within_days", "older_than_days", "is_empty", "is_not_empty"}
SET_OPS = {"has_any", "has_all", "has_none", "is_empty", "is_not_empty"}
BOOL_OPS = {"eq", "ne"}
ENGAGEMENT_OPS = {
    "opened_within_days": ("open",),
    "clicked_within_days": ("click",),
    "replied_within_days": ("reply",),
    "engaged_within_days": ("open", "click", "reply"),
    "never_engaged": ("open", "click", "reply"),
}
SPECIAL_FIELDS = {
    "owner": {"eq", "ne", "in", "is_empty", "is_not_empty"},
    "pool": {"in", "not_in"},
    "pipeline_stage": {"in", "not_in"},
    "engagement": set(ENGAGEMENT_OPS),
}
CUSTOM_PREFIX = "custom."  # "custom.<key>" names an admin-defined field
CUSTOM_OPS = {
    "text": TEXT_OPS,
    "choice": TEXT_OPS,
    "number": NUMBER_OPS,
    "date": {"before", "after", "within_days", "is_empty", "is_not_empty"},
}

FIELD_OPS: dict[str, set[str]] = {
    **{name: TEXT_OPS for name in TEXT_FIELDS},
    **{name: NUMBER_OPS for name in NUMBER_FIELDS},
    **{name: DATE_OPS for name in DATE_FIELDS},
    **{name: SET_OPS for name in SET_FIELDS},
    **{name: BOOL_OPS for name in BOOL_FIELDS},
    **SPECIAL_FIELDS,
}


INSIGHT_DAYS = 90  # the window of "growth" and "engagement rate"
HIRES_DAYS = 365  # the window of "hires from the pool"
MAX_NAME = 120
MAX_SAMPLE = 50

# How big a filter may be. SQLite refuses a LIKE pattern over 50,000 bytes and an
# expression over 1,000 levels deep; both databases take time for every value tested.
MAX_TEXT = 200  # characters in one text value
MAX_VALUES = 500  # values in one list
MAX_CONDITIONS = 100  # conditions and groups in one filter
MAX_DEPTH = 10  # groups inside groups
MAX_NUMBER = 10**12  # a number's size either way (SQLite integers stop at 2**63)
MAX_TERMS = 1_000  # conditions and list values in all, with the pools a filter refers to
MAX_POOL_DEPTH = 5  # pools in filters that refer to pools that refer to pools...
NUL_IN_FILTER = "A filter value cannot contain a NUL character."
TOO_MANY_TERMS = (
    f"A filter can hold at most {MAX_TERMS:,} conditions and values in all, counting "
    "those of the pools it refers to."
)
UNCOUNTABLE = "The database could not count this pool's filter; make the filter simpler."

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSummary:
    id: int
    name: str
    kind: str
    description: str | None
    size: int | None
    problem: str | None  # why the size could not be computed, said plainly
    owner: str | None = None
    # Members who joined in the last INSIGHT_DAYS: added to a list, or (dynamic pools,
    # whose membership has no history) new in the database and matching.
    growth: int | None = None
    engaged: int | None = None  # members who opened, clicked or replied in INSIGHT_DAYS
    # When the pool as a whole was last reached (crm.touches): a campaign aimed at it
    # sent, or content published to it; None for never.
    last_touch: dt.datetime | None = None
    hires: int = 0  # hires in the last HIRES_DAYS that came from this pool

    @property
    def engagement_rate(self) -> float | None:
        if not self.size or self.engaged is None:
            return None
        return self.engaged / self.size


@dataclass(frozen=True)
class FilterPreview:
    """What a filter matches right now: how many, and a few of them by name."""

    count: int
    sample: list[dict[str, Any]]


@dataclass(frozen=True)
class Overlap:
    first: int
    second: int
    both: int


def _fail(message: str) -> ValidationError:
    return ValidationError(message)


def _shown(value: Any) -> str:
    """A field or operator name as a message quotes it, cut short if it is long."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_filter(filter_json: Any) -> None:
    """Refuse a filter over the limits above, in one sentence that names the limit.

    Walks the filter with a list, not recursion, and stops at the first limit crossed, so
    a filter nested a thousand levels deep or holding a million conditions is refused at
    once; compiling it (recursive) is safe afterwards. Types and operators are checked
    when it is compiled.
    """
    pending: list[tuple[Any, int]] = [(filter_json, 1)]
    seen = 0
    while pending:
        node, depth = pending.pop()
        seen += 1
        if seen > MAX_CONDITIONS:
            raise _fail(f"A filter can have at most {MAX_CONDITIONS} conditions and groups.")
        if not isinstance(node, dict):
            raise _fail("A filter is an object with 'all', 'any' or 'field'.")
        group = "all" if "all" in node else "any" if "any" in node else None
        if group is None:
            _check_condition(node)
            continue
        if depth > MAX_DEPTH:
            raise _fail(f"Filter groups can nest at most {MAX_DEPTH} levels deep.")
        children = node[group]
        if not isinstance(children, list):
            raise _fail(f"'{group}' must hold a list of conditions.")
        if seen + len(children) > MAX_CONDITIONS:
            raise _fail(f"A filter can have at most {MAX_CONDITIONS} conditions and groups.")
        pending.extend((child, depth + 1) for child in children)


def _check_condition(node: dict[str, Any]) -> None:
    field, op = node.get("field"), node.get("op")
    if not isinstance(field, str) or len(field) > MAX_TEXT:
        raise _fail(f"Unknown filter field {_shown(field)}.")
    if not isinstance(op, str) or len(op) > MAX_TEXT:
        raise _fail(f"Unknown operator {_shown(op)} for {field}.")
    value = node.get("value")
    if isinstance(value, list):
        if len(value) > MAX_VALUES:
            raise _fail(f"A list in a filter can hold at most {MAX_VALUES} values.")
        items = value
    else:
        items = [value]
    for item in items:
        if isinstance(item, str):
            if len(item) > MAX_TEXT:
                raise _fail(f"A text value in a filter can be at most {MAX_TEXT} characters.")
            if "\x00" in item:
                raise _fail(NUL_IN_FILTER)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _fail("A number in a filter must be a real number, not NaN or Infinity.")
        elif isinstance(item, int | float) and not isinstance(item, bool):
            if abs(item) > MAX_NUMBER:
                raise _fail(
                    f"A number in a filter must be between -{MAX_NUMBER:,} and {MAX_NUMBER:,}."
                )
        elif item is not None and not isinstance(item, bool):
            raise _fail(
                f"The value of {field} must be text, a number, true or false, or a list of them."
            )


def parse_filter(text: str) -> Any:
    """A filter from JSON text (pasted or given on the command line), checked against the
    limits; ValidationError in one sentence if it is not JSON or is over a limit."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise _fail(f"That is not valid JSON ({error.msg}).") from None
    except RecursionError:  # the decoder's own stack, at about 500 levels of nesting
        raise _fail(f"Filter groups can nest at most {MAX_DEPTH} levels deep.") from None
    check_filter(parsed)
    return parsed


class _Budget:
    """Conditions and list values compiled so far, across the pools a filter refers to: a
    filter that names a pool 100 times, whose filter names another 100 times, would
    otherwise grow into a million conditions."""

    def __init__(self, *, root_is_pool: bool = False) -> None:
        self.left = MAX_TERMS
        # Pools on the path from the start (`seen`) that are not references: the pool
        # being counted, when the filter is a stored pool's.
        self.roots = 1 if root_is_pool else 0

    def spend(self, node: dict[str, Any]) -> None:
        value = node.get("value")
        self.left -= 1 + (len(value) if isinstance(value, list) else 0)
        if self.left < 0:
            raise _fail(TOO_MANY_TERMS)


_FLAT = 16  # AND/OR terms written in one run before they are split in halves


class _Bracket(Grouping[bool]):
    """Brackets that stay: and_/or_ merge a plain Grouping of their own operator back into
    one flat chain (it passes `operator` through to what it holds)."""

    inherit_cache = True
    operator = None


def _combine(
    combine: Callable[..., ColumnElement[bool]], parts: Sequence[ColumnElement[bool]]
) -> ColumnElement[bool]:
    """and_ or or_ of the parts as a balanced tree of bracketed halves.

    SQLite reads "a AND b AND c ..." as a chain as deep as it is long and refuses one over
    1,000 levels deep (500 skills each tested by two ANDed terms); bracketed halves keep
    the depth to the logarithm. The terms stay in their order.
    """
    if len(parts) <= _FLAT:
        return combine(*parts)
    middle = len(parts) // 2
    return combine(
        _Bracket(_combine(combine, parts[:middle])), _Bracket(_combine(combine, parts[middle:]))
    )


def _text_list(field: str, value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(item, str) for item in values):
        raise _fail(f"The value of {field} must be text or a list of text.")
    return [item.strip().lower() for item in values]


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


MAX_DAYS = 36_500  # a hundred years: "never" (LONG_AGO) stays older than any cutoff


def _days(field: str, value: Any) -> float:
    days = _number(field, value)
    if not 0 <= days <= MAX_DAYS:
        raise _fail(f"The number of days for {field} must be between 0 and {MAX_DAYS:,}.")
    return days


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
    days = _days(field, value)
    cutoff = now - dt.timedelta(days=days)
    if op == "within_days":
        return column >= cutoff  # an empty date never matches
    # Never contacted counts as gone quiet. COALESCE rather than "IS NULL OR <": the OR
    # sends SQLite through the date index and one row lookup per match, far slower than
    # a scan when most people match.
    return func.coalesce(column, literal(LONG_AGO, UtcDateTime())) < cutoff


def _set_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    if field == "skills":
        return _skills_condition(op, value)
    table, column = SET_FIELDS[field]  # type: ignore[misc]

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
    return _combine(and_, [having([item]) for item in dict.fromkeys(items)])


def _skills_condition(op: str, value: Any) -> ColumnElement[bool]:
    column = Candidate.skills
    if op in {"is_empty", "is_not_empty"}:
        stored = type_coerce(column, Text())  # the JSON text itself, not a list to encode
        return (stored == "[]") if op == "is_empty" else (stored != "[]")
    items = list(dict.fromkeys(_text_list("skills", value)))
    tests = [has_item(column, item) for item in items]
    if op == "has_any":
        return _combine(or_, tests) if tests else false()
    if op == "has_none":
        return not_(_combine(or_, tests)) if tests else true()
    return _combine(and_, tests) if tests else true()  # has_all


def _engagement_condition(op: str, value: Any, now: dt.datetime) -> ColumnElement[bool]:
    """Opened, clicked or replied within N days (machine opens by scanners do not count),
    or never engaged at all."""
    engaged = select(Event.candidate_id).where(
        Event.kind.in_(ENGAGEMENT_OPS[op]),
        Event.candidate_id.is_not(None),  # NOT IN over a NULL would match nobody
        Event.is_machine.is_(False),
    )
    if op == "never_engaged":
        return Candidate.id.not_in(engaged)
    days = _days("engagement", value)
    return Candidate.id.in_(engaged.where(Event.occurred_at >= now - dt.timedelta(days=days)))


def _pipeline_condition(op: str, value: Any) -> ColumnElement[bool]:
    stages = _text_list("pipeline_stage", value)
    unknown = [stage for stage in stages if stage not in APPLICATION_STAGES]
    if unknown:
        known = ", ".join(APPLICATION_STAGES)
        raise _fail(f"Unknown pipeline stage {unknown[0]!r}; use one of {known}.")
    in_stage = Candidate.id.in_(
        select(Application.candidate_id).where(
            Application.stage.in_(stages), Application.candidate_id.is_not(None)
        )
    )
    return in_stage if op == "in" else not_(in_stage)


def _custom_condition(
    session: Session, field: str, op: str, value: Any, now: dt.datetime
) -> ColumnElement[bool]:
    key = field[len(CUSTOM_PREFIX) :]
    definition = session.scalar(select(CustomField).where(CustomField.key == key))
    if definition is None:
        raise _fail(f"The filter refers to a custom field that no longer exists: {key!r}.")
    allowed = CUSTOM_OPS[definition.kind]
    if op not in allowed:
        raise _fail(
            f"Unknown operator {op!r} for {definition.label}; use one of "
            f"{', '.join(sorted(allowed))}."
        )
    stored = Candidate.custom_fields[key]
    if definition.kind == "number":
        number = stored.as_float()
        if op in {"is_empty", "is_not_empty"}:
            return number.is_(None) if op == "is_empty" else number.is_not(None)
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise _fail(f"between on {definition.label} takes two numbers, like [3, 8].")
            low, high = (_number(definition.label, item) for item in value)
            return number.between(low, high)
        wanted = _number(definition.label, value)
        return {
            "eq": number == wanted,
            "ne": or_(number.is_(None), number != wanted),
            "gte": number >= wanted,
            "lte": number <= wanted,
        }[op]
    text = stored.as_string()
    if op == "is_empty":
        return or_(text.is_(None), text == "")
    if op == "is_not_empty":
        return and_(text.is_not(None), text != "")
    if definition.kind == "date":
        if op == "within_days":
            days = _days(definition.label, value)
            return text >= (now - dt.timedelta(days=days)).date().isoformat()
        bad_date = f"The value of {definition.label} must be a date like 2026-01-31."
        if not isinstance(value, str):
            raise _fail(bad_date)
        try:
            day = dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise _fail(bad_date) from None
        return text < day if op == "before" else text > day  # ISO dates sort as text
    lowered = func.lower(func.coalesce(text, ""))
    if op == "contains":
        (needle,) = _text_list(definition.label, value)[:1] or [""]
        return lowered.like(f"%{_like_escape(needle)}%", escape="\\")
    values = _text_list(definition.label, value)
    return lowered.in_(values) if op in {"eq", "in"} else not_(lowered.in_(values))


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
    session: Session,
    op: str,
    value: Any,
    now: dt.datetime,
    seen: frozenset[int],
    budget: _Budget,
) -> ColumnElement[bool]:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(name, str) for name in names):
        raise _fail("The value of pool must be a pool name or a list of pool names.")
    if len(seen) - budget.roots >= MAX_POOL_DEPTH:
        raise _fail(f"Pools can refer to pools at most {MAX_POOL_DEPTH} levels deep.")
    memberships = []
    for name in dict.fromkeys(names):
        pool = session.scalar(select(Pool).where(Pool.name == name))
        if pool is None:
            raise _fail(f"The filter refers to a pool that no longer exists: {name!r}.")
        if pool.id in seen:
            raise _fail(f"The pool {name!r} refers to itself through its filter.")
        memberships.append(
            membership_condition(session, pool, now=now, seen=seen | {pool.id}, budget=budget)
        )
    matched = _combine(or_, memberships)
    if op == "in":
        return matched
    # A dynamic pool's condition is unknown (NULL) for someone with an empty value it tests;
    # they are not in that pool, so they must be in "not in" it.
    return not_(func.coalesce(matched, false(), type_=Boolean()))


def _compile(
    session: Session, node: Any, now: dt.datetime, seen: frozenset[int], budget: _Budget
) -> ColumnElement[bool]:
    """The WHERE clause for a filter that check_filter has passed (so the recursion is
    at most MAX_DEPTH deep in each pool)."""
    if not isinstance(node, dict):
        raise _fail("A filter is an object with 'all', 'any' or 'field'.")
    budget.spend(node)
    for group, combine in (("all", and_), ("any", or_)):
        if group in node:
            children = node[group]
            if not isinstance(children, list):
                raise _fail(f"'{group}' must hold a list of conditions.")
            # SQLite tests AND-ed conditions in the order written: plain column tests first,
            # then the skill text searches, then subqueries (a third faster on a scan).
            ordered = sorted(children, key=_cost) if group == "all" else children
            parts = [_compile(session, child, now, seen, budget) for child in ordered]
            if not parts:
                return true() if group == "all" else false()
            return _combine(combine, parts)
    field, op = node.get("field"), node.get("op")
    if isinstance(field, str) and field.startswith(CUSTOM_PREFIX):
        return _custom_condition(session, field, op, node.get("value"), now)
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
    if field == "engagement":
        return _engagement_condition(op, value, now)
    if field == "pipeline_stage":
        return _pipeline_condition(op, value)
    return _pool_condition(session, op, value, now, seen, budget)


_SUBQUERY_FIELDS = {"tags", "pool", "pipeline_stage", "engagement"}


def _cost(node: Any) -> int:
    """How much a condition costs per row, roughly, for ordering an AND."""
    if not isinstance(node, dict) or "field" not in node:
        return 1
    field = node.get("field")
    if field in _SUBQUERY_FIELDS:
        return 2
    return 1 if field == "skills" else 0


def compile_filter(
    session: Session, filter_json: Any, *, now: dt.datetime | None = None
) -> ColumnElement[bool]:
    """A WHERE clause over Candidate for the filter; ValidationError names what is wrong.

    Every way a filter comes in (the builder, pasted JSON, `crm pool save`, a preview)
    and every stored filter is checked here before anything else looks at it.
    """
    check_filter(filter_json)
    return _compile(session, filter_json, now or clock.now(), frozenset(), _Budget())


def membership_condition(
    session: Session,
    pool: Pool,
    *,
    now: dt.datetime | None = None,
    seen: frozenset[int] = frozenset(),
    budget: _Budget | None = None,
) -> ColumnElement[bool]:
    """Who is in a pool right now: the filter for dynamic pools, the list for static ones.

    A stored filter is checked against today's limits (it may have been saved before
    them): ValidationError says why it cannot be counted.
    """
    if pool.kind == "dynamic":
        stored = pool.filter or {"all": []}
        check_filter(stored)
        budget = budget or _Budget(root_is_pool=True)
        return _compile(session, stored, now or clock.now(), seen | {pool.id}, budget)
    return Candidate.id.in_(select(PoolMember.candidate_id).where(PoolMember.pool_id == pool.id))


def _unless_lost(error: DBAPIError) -> None:
    """Re-raise a driver error that is about the connection, not about the statement."""
    if error.connection_invalidated:
        raise error


@contextmanager
def _runnable() -> Iterator[None]:
    """A filter the database refuses to run (however it got past the limits) is one
    sentence, like any other bad filter, not a driver error on the page."""
    try:
        yield
    except DBAPIError as error:
        _unless_lost(error)
        log.warning("A pool filter could not be run: %s", _described(error))
        raise _fail("The database could not run this filter; make the filter simpler.") from None


def _described(error: DBAPIError) -> str:
    """What went wrong, for the log: the driver's error class and code, never its message
    (PostgreSQL's may quote a candidate's value)."""
    code = getattr(error.orig, "sqlstate", None)
    return type(error.orig).__name__ + (f" ({code})" if code else "")


def count_matching(engine: Engine, filter_json: Any) -> int:
    with read_session(engine) as session:
        condition = compile_filter(session, filter_json)
        with _runnable():
            return session.scalar(select(func.count()).select_from(Candidate).where(condition))


def _dynamic_figures(
    session: Session, conditions: dict[int, ColumnElement[bool]], since: dt.datetime
) -> tuple[dict[int, tuple[Any, ...]], dict[int, str]]:
    """(size, growth, engaged) of each dynamic pool, and the pools the
    database could not count with the sentence saying so.

    One pass over the candidates measures every pool (aggregates with FILTER per pool).
    Should the database refuse that statement (one pool's SQL, or all of them together,
    more than it takes), each pool is measured alone, so the others are still counted.
    """
    new = Candidate.created_at >= since
    engaged = Candidate.last_engaged_at >= since

    def measure(pool_ids: list[int]) -> dict[int, tuple[Any, ...]]:
        columns = []
        for pool_id in pool_ids:
            condition = conditions[pool_id]
            columns += [
                func.count().filter(condition),
                func.count().filter(and_(condition, new)),
                func.count().filter(and_(condition, engaged)),
            ]
        with session.begin_nested():  # a refused statement leaves the transaction usable
            found = session.execute(select(*columns).select_from(Candidate)).one()
        return {pool_id: tuple(found[i * 3 : i * 3 + 3]) for i, pool_id in enumerate(pool_ids)}

    everyone = list(conditions)
    if not everyone:
        return {}, {}
    try:
        return measure(everyone), {}
    except DBAPIError as error:
        _unless_lost(error)
        if len(everyone) == 1:
            log.warning("Pool %s could not be counted: %s", everyone[0], _described(error))
            return {}, {everyone[0]: UNCOUNTABLE}
    figures: dict[int, tuple[Any, ...]] = {}
    problems: dict[int, str] = {}
    for pool_id in everyone:
        try:
            figures.update(measure([pool_id]))
        except DBAPIError as error:
            _unless_lost(error)
            log.warning("Pool %s could not be counted: %s", pool_id, _described(error))
            problems[pool_id] = UNCOUNTABLE
    return figures, problems


def list_pools(engine: Engine) -> list[PoolSummary]:
    """Every pool with its size and insight; a broken filter is reported, not raised:
    a pool that cannot be counted (over a limit, referring to a deleted pool, or refused
    by the database) has no figures and a `problem` sentence, and the rest are counted.

    Dynamic pools are measured in one pass over the candidates (aggregates with FILTER
    per pool), static lists from their member rows joined to the candidates; every pool's
    last touch comes from one grouped query (crm.touches), whatever the pool's size.
    """
    with read_session(engine) as session:
        now = clock.now()
        since = now - dt.timedelta(days=INSIGHT_DAYS)
        all_pools = list(session.scalars(select(Pool).order_by(Pool.name)))
        owners = dict(session.execute(select(User.id, User.display_name)).all())
        engaged = Candidate.last_engaged_at >= since
        static = {
            pool_id: (size, growth, engaged_count)
            for pool_id, size, growth, engaged_count in session.execute(
                select(
                    PoolMember.pool_id,
                    func.count(),
                    func.count().filter(PoolMember.added_at >= since),
                    func.count().filter(engaged),
                )
                .join(Candidate, Candidate.id == PoolMember.candidate_id)
                .join(Pool, Pool.id == PoolMember.pool_id)
                .where(Pool.kind == "static")
                .group_by(PoolMember.pool_id)
            )
        }
        conditions: dict[int, ColumnElement[bool]] = {}
        problems: dict[int, str] = {}
        for pool in all_pools:
            if pool.kind != "dynamic":
                continue
            try:
                conditions[pool.id] = membership_condition(session, pool, now=now)
            except ValidationError as error:
                problems[pool.id] = str(error)
        dynamic, uncounted = _dynamic_figures(session, conditions, since)
        problems.update(uncounted)
        last_touches = touches.pool_last_touches(session)
    today = now.date()
    hires = metrics.hires_by_pool(
        engine, start=today - dt.timedelta(days=HIRES_DAYS - 1), end=today
    )
    summaries = []
    for pool in all_pools:
        if pool.id in problems:
            figures: tuple[Any, ...] = (None, None, None)
        elif pool.kind == "static":
            figures = static.get(pool.id, (0, 0, 0))
        else:
            figures = dynamic[pool.id]
        size, growth, engaged_count = figures
        summaries.append(
            PoolSummary(
                pool.id,
                pool.name,
                pool.kind,
                pool.description,
                size,
                problems.get(pool.id),
                owners.get(pool.owner_id) if pool.owner_id else None,
                growth,
                engaged_count,
                last_touches.get(pool.id),  # known even when the members cannot be counted
                hires.get(pool.id, 0),
            )
        )
    return summaries


def preview_filter(
    engine: Engine, filter_json: Any, *, sample: int = 10, now: dt.datetime | None = None
) -> FilterPreview:
    """The count and a sample of the people a filter matches; ValidationError if it is bad.

    Both are SQL (a COUNT and a LIMIT), so editing a filter never loads whole tables.
    """
    with read_session(engine) as session, _runnable():
        condition = compile_filter(session, filter_json, now=now)
        count = session.scalar(select(func.count()).select_from(Candidate).where(condition))
        rows = session.execute(
            select(
                Candidate.id,
                Candidate.first_name,
                Candidate.last_name,
                Candidate.title,
                Candidate.company,
                Candidate.location,
                Candidate.last_contacted_at,
            )
            .where(condition)
            .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
            .limit(max(0, min(sample, MAX_SAMPLE)))
        )
        return FilterPreview(count or 0, [dict(row._mapping) for row in rows])


def member_ids(engine: Engine, pool_id: int) -> list[int]:
    """Everyone in a pool right now, by id."""
    with read_session(engine) as session:
        pool = session.get(Pool, pool_id)
        if pool is None:
            raise NotFound("That pool no longer exists.")
        condition = membership_condition(session, pool)
        return list(session.scalars(select(Candidate.id).where(condition).order_by(Candidate.id)))


def overlap(engine: Engine, first_id: int, second_id: int) -> Overlap:
    """How many people each of two pools holds, and how many are in both (one scan)."""
    with read_session(engine) as session:
        first, second = session.get(Pool, first_id), session.get(Pool, second_id)
        if first is None or second is None:
            raise NotFound("One of the two pools no longer exists.")
        in_first = membership_condition(session, first)
        in_second = membership_condition(session, second)
        counts = session.execute(
            select(
                func.count().filter(in_first),
                func.count().filter(in_second),
                func.count().filter(and_(in_first, in_second)),
            ).select_from(Candidate)
        ).one()
        return Overlap(*counts)


def get_pool(engine: Engine, pool_id: int) -> Pool | None:
    with read_session(engine) as session:
        return session.get(Pool, pool_id)


def pool_id_by_name(engine: Engine, name: str) -> int | None:
    with read_session(engine) as session:
        return session.scalar(select(Pool.id).where(Pool.name == name))


def _clean_name(name: str) -> str:
    cleaned = " ".join(clean_text(name).split())
    if not cleaned:
        raise ValidationError("Give the pool a name.")
    if len(cleaned) > MAX_NAME:
        raise ValidationError(f"A pool name can be at most {MAX_NAME} characters.")
    return cleaned


def save_pool(
    engine: Engine,
    *,
    actor: User,
    name: str,
    kind: str,
    filter_json: Any = None,
    description: str | None = None,
    pool_id: int | None = None,
) -> int:
    """Create a pool (pool_id None) or change one; returns its id.

    A dynamic pool stores its filter, checked by compiling it; a static pool is a list
    that people are added to by hand. A pool's kind never changes.
    """
    require_writer(engine, actor)
    name = _clean_name(name)
    if kind not in POOL_KINDS:
        raise ValidationError(f"A pool is {' or '.join(POOL_KINDS)}, not {kind!r}.")
    about = clean_text(description) or None
    with write_session(engine, actor=actor) as session:
        clash = session.scalar(select(Pool.id).where(Pool.name == name))
        if clash is not None and clash != pool_id:
            raise ValidationError(f"There is already a pool called {name!r}.")
        if kind == "dynamic":
            if filter_json is None:
                raise ValidationError("A dynamic pool needs a filter.")
            compile_filter(session, filter_json)  # refuses what cannot run, naming it
        if pool_id is None:
            pool = Pool(name=name, kind=kind, owner_id=actor.id, stages=[])
            session.add(pool)
        else:
            found = session.get(Pool, pool_id, with_for_update=True)
            if found is None:
                raise NotFound("That pool no longer exists.")
            if found.kind != kind:
                raise ValidationError(
                    f"{found.name} is a {found.kind} pool; a pool's kind cannot change."
                )
            pool = found
        pool.name = name
        pool.description = about
        pool.filter = filter_json if kind == "dynamic" else None
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="pool.save" if pool_id else "pool.create",
            entity="pool",
            entity_id=pool.id,
            detail={"name": name, "kind": kind, "filter": pool.filter},
        )
        return pool.id


def delete_pool(engine: Engine, *, actor: User, pool_id: int) -> str:
    """Delete a pool (its list and stages go with it; the people stay); returns its name."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        pool = session.get(Pool, pool_id)
        if pool is None:
            raise NotFound("That pool no longer exists.")
        users = [
            other.name
            for other in session.scalars(select(Pool).where(Pool.kind == "dynamic"))
            if other.id != pool_id and _mentions_pool(other.filter, pool.name)
        ]
        if users:
            raise ValidationError(
                f"{pool.name} is used in the filter of {', '.join(users)}; change that first."
            )
        name = pool.name
        session.delete(pool)
        audit.record(
            session,
            actor=actor,
            action="pool.delete",
            entity="pool",
            entity_id=pool_id,
            detail={"name": name},
        )
        return name


def _mentions_pool(node: Any, name: str) -> bool:
    # A list, not recursion: a filter stored before the depth limit may nest hundreds deep.
    pending = [node]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict):
            continue
        if node.get("field") == "pool":
            value = node.get("value")
            if name in (value if isinstance(value, list) else [value]):
                return True
            continue
        for key in ("all", "any"):
            children = node.get(key)
            if isinstance(children, list):
                pending.extend(children)
    return False


def remove_members(
    engine: Engine, *, actor: User, pool_id: int, candidate_ids: Sequence[int]
) -> int:
    """Take people off a hand-kept list; returns how many were on it."""
    require_writer(engine, actor)
    ids = sorted(set(candidate_ids))
    if not ids:
        raise ValidationError("Select at least one person first.")
    with write_session(engine, actor=actor) as session:
        pool = static_pool(session, pool_id)
        removed = list(
            session.scalars(
                delete(PoolMember)
                .where(PoolMember.pool_id == pool_id, PoolMember.candidate_id.in_(ids))
                .returning(PoolMember.candidate_id)
            )
        )
        activities.record(
            session,
            actor=actor,
            candidate_ids=removed,
            kind="pool",
            summary=f"Removed from {pool.name}",
        )
        audit.record(
            session,
            actor=actor,
            action="pool.remove_members",
            entity="pool",
            entity_id=pool_id,
            detail={"count": len(removed)},
        )
        return len(removed)


def aimed_at(engine: Engine, pool_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The campaigns and the calendar items aimed at a pool, newest first."""
    with read_session(engine) as session:
        campaigns = [
            dict(row._mapping)
            for row in session.execute(
                select(Campaign.id, Campaign.name, Campaign.status, Campaign.launched_at)
                .where(Campaign.audience_pool_id == pool_id)
                .order_by(Campaign.created_at.desc())
            )
        ]
        items = [
            dict(row._mapping)
            for row in session.execute(
                select(
                    ContentItem.id,
                    ContentItem.title,
                    ContentItem.channel,
                    ContentItem.status,
                    ContentItem.scheduled_at,
                )
                .join(ContentItemPool, ContentItemPool.content_item_id == ContentItem.id)
                .where(ContentItemPool.pool_id == pool_id)
                .order_by(ContentItem.scheduled_at.desc())
            )
        ]
    return campaigns, items


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


def add_matching(engine: Engine, *, actor: User, pool_id: int, filter_json: Any) -> int:
    """Add everyone a filter matches now to a hand-kept list; returns how many."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        pool = static_pool(session, pool_id)
        ids = list(
            session.scalars(
                select(Candidate.id)
                .where(compile_filter(session, filter_json))
                .order_by(Candidate.id)
            )
        )
        added = add_members(session, pool, ids, actor)
        audit.record(
            session,
            actor=actor,
            action="pool.add_members",
            entity="pool",
            entity_id=pool_id,
            detail={"count": added, "filter": filter_json},
        )
        return added


def static_pool(session: Session, pool_id: int) -> Pool:
    """The hand-kept pool, locked for the change; one sentence if it is gone or dynamic."""
    pool = session.get(Pool, pool_id, with_for_update=True)
    if pool is None:
        raise NotFound("That pool no longer exists.")
    if pool.kind != "static":
        raise ValidationError(f"{pool.name} is a dynamic pool: its filter decides who is in it.")
    return pool


def add_members(session: Session, pool: Pool, candidate_ids: Sequence[int], actor: User) -> int:
    """Put people on a static pool's list (in its first stage) with "Added to POOL" on their
    timelines; people already on it are left as they are. Returns how many were added."""
    wanted = sorted(set(candidate_ids))
    already = set(
        session.scalars(select(PoolMember.candidate_id).where(PoolMember.pool_id == pool.id))
    )
    new = [cid for cid in wanted if cid not in already]
    first_stage = pool.stages[0] if pool.stages else None
    now = clock.now()
    for start in range(0, len(new), 5000):
        session.execute(
            insert(PoolMember),
            [
                {
                    "pool_id": pool.id,
                    "candidate_id": cid,
                    "stage": first_stage,
                    "added_at": now,
                    "added_by_id": actor.id,
                }
                for cid in new[start : start + 5000]
            ],
        )
    activities.record(
        session, actor=actor, candidate_ids=new, kind="pool", summary=f"Added to {pool.name}"
    )
    return len(new)


@dataclass(frozen=True)
class FilterOptions:
    """Values to offer in the filter builder (any other value can still be typed)."""

    skills: list[str]
    tags: list[str]
    locations: list[str]
    role_families: list[str]
    sources: list[str]
    owners: list[str]
    pools: list[str]
    custom_fields: list[tuple[str, str, str, list[str]]]  # key, label, kind, choices


SUGGESTION_SAMPLE = 5000  # skills are suggested from the newest people, not a full scan
_COMMON_SKILLS_SQLITE = (
    "SELECT e.value FROM (SELECT skills FROM candidates ORDER BY id DESC LIMIT :sample) AS c, "
    "json_each(c.skills) AS e GROUP BY e.value ORDER BY count(*) DESC, e.value LIMIT :limit"
)
_COMMON_SKILLS_POSTGRESQL = (
    "SELECT e.value FROM (SELECT skills FROM candidates ORDER BY id DESC LIMIT :sample) AS c, "
    "json_array_elements_text(c.skills::json) AS e(value) "
    "GROUP BY e.value ORDER BY count(*) DESC, e.value LIMIT :limit"
)


def filter_options(engine: Engine, *, limit: int = 200) -> FilterOptions:
    """The common values of each field, most used first."""
    with read_session(engine) as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        query = _COMMON_SKILLS_POSTGRESQL if postgres else _COMMON_SKILLS_SQLITE
        skills = [
            value
            for (value,) in session.execute(
                text(query), {"sample": SUGGESTION_SAMPLE, "limit": limit}
            )
        ]

        def common(column: Any) -> list[str]:
            return [
                value
                for (value,) in session.execute(
                    select(column)
                    .where(column.is_not(None), column != "")
                    .group_by(column)
                    .order_by(func.count().desc(), column)
                    .limit(limit)
                )
            ]

        tags = common(CandidateTag.tag)
        locations = common(Candidate.location)
        role_families = common(Candidate.role_family)
        sources = common(Candidate.source)
        owners = list(
            session.scalars(select(User.username).where(User.active).order_by(User.username))
        )
        pool_list = list(session.scalars(select(Pool.name).order_by(Pool.name)))
        custom = [
            (f.key, f.label, f.kind, list(f.choices or []))
            for f in session.scalars(
                select(CustomField).order_by(CustomField.position, CustomField.id)
            )
        ]
    return FilterOptions(skills, tags, locations, role_families, sources, owners, pool_list, custom)
