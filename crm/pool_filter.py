"""The pool filter: the JSON that says who is in a dynamic pool, checked and compiled to SQL.

A filter is the JSON of DESIGN.md: {"all": [...]} or {"any": [...]} groups that nest,
holding conditions {"field", "op", "value"}. It is compiled to SQL through an allow-list
of fields and operators; values are always bound parameters, never pasted into SQL.

A filter is also bounded (check_filter: text length, list length, conditions, nesting,
finite numbers, no NUL), and so is what it grows into with the pools it refers to
(MAX_TERMS, MAX_POOL_DEPTH): one saved pool must never be more than the database can
count, or every page listing pools would fail with it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Engine,
    Text,
    and_,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import Grouping

from crm import clock
from crm.db import read_session
from crm.errors import ValidationError
from crm.models import (
    APPLICATION_STAGES,
    Application,
    Candidate,
    CandidateTag,
    CustomField,
    Event,
    Pool,
    PoolMember,
    User,
    UtcDateTime,
)
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
log = logging.getLogger(__name__)


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
    if op == "is_empty":
        return or_(column.is_(None), column == "")
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "")
    return _text_matched(column, field, op, value)


def _text_matched(text: ColumnElement[Any], label: str, op: str, value: Any) -> ColumnElement[bool]:
    """Text (a column, or a custom field's value) containing a word, or equal to one of the
    values or to none of them, ignoring case; `label` names it in a bad value's sentence."""
    lowered = func.lower(func.coalesce(text, ""))
    if op == "contains":
        (needle,) = _text_list(label, value)[:1] or [""]
        return lowered.like(f"%{_like_escape(needle)}%", escape="\\")
    values = _text_list(label, value)
    if op in {"eq", "in"}:
        return lowered.in_(values)
    return not_(lowered.in_(values))  # ne, not_in


def _number_condition(field: str, op: str, value: Any) -> ColumnElement[bool]:
    return _number_compared(NUMBER_FIELDS[field], field, op, value)


def _number_compared(
    number: ColumnElement[Any], label: str, op: str, value: Any
) -> ColumnElement[bool]:
    """A number (a column, or a custom field's value) empty or not, between two numbers or
    compared with one; `label` names it in the sentence a bad value gets."""
    if op == "is_empty":
        return number.is_(None)
    if op == "is_not_empty":
        return number.is_not(None)
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _fail(f"between on {label} takes two numbers, like [3, 8].")
        low, high = (_number(label, item) for item in value)
        return number.between(low, high)
    wanted = _number(label, value)
    return {
        "eq": number == wanted,
        "ne": or_(number.is_(None), number != wanted),
        "gte": number >= wanted,
        "lte": number <= wanted,
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
        return _number_compared(stored.as_float(), definition.label, op, value)
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
    return _text_matched(text, definition.label, op, value)


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


def raise_if_connection_lost(error: DBAPIError) -> None:
    """Re-raise a driver error that is about the connection, not about the statement."""
    if error.connection_invalidated:
        raise error


@contextmanager
def runnable() -> Iterator[None]:
    """A filter the database refuses to run (however it got past the limits) is one
    sentence, like any other bad filter, not a driver error on the page."""
    try:
        yield
    except DBAPIError as error:
        raise_if_connection_lost(error)
        log.warning("A pool filter could not be run: %s", driver_error_name(error))
        raise _fail("The database could not run this filter; make the filter simpler.") from None


def driver_error_name(error: DBAPIError) -> str:
    """What went wrong, for the log: the driver's error class and code, never its message
    (PostgreSQL's may quote a candidate's value)."""
    code = getattr(error.orig, "sqlstate", None)
    return type(error.orig).__name__ + (f" ({code})" if code else "")


def count_matching(engine: Engine, filter_json: Any) -> int:
    """How many people a filter matches now; ValidationError if it is bad."""
    with read_session(engine) as session:
        condition = compile_filter(session, filter_json)
        with runnable():
            return session.scalar(select(func.count()).select_from(Candidate).where(condition))
