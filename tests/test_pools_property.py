"""Pool filters, checked against a second opinion: for random people and random filters,
the SQL count, the members listed and a pandas evaluation of the same filter agree.

The pandas evaluator below implements the documented semantics of crm.pool_filter on its own
(it shares no code with the compiler) and only for the fields in EVALUATED_FIELDS, so
fields added to FIELD_OPS later are simply not drawn here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select

from crm import db, pool_filter
from crm.models import CONSENT_STATUSES, Candidate, CandidateTag, Pool, PoolMember, User

# One clock for the data and the filter; microseconds so precision slips would show.
NOW = dt.datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)

# --- the people ---------------------------------------------------------------------------

TEXT_VALUES: dict[str, list[str | None]] = {
    "first_name": ["Ana", "ana", "ANA", "ana ", "Ben", "O'Neil", ""],  # NOT NULL
    "location": [None, "", "London", "london", "LONDON", " London", "Berlin", "New York"],
    "title": [
        None,
        "",
        "Engineer",
        "Staff 100% Engineer",
        "1000 Engineer",
        "O'Brien's designer",
        "data_engineer",
        "dataXengineer",
        "C:\\Temp\\Lead",
    ],
    "role_family": [None, "", "Software Engineering", "software engineering", "Design"],
    "source": [None, "", "LinkedIn", "linkedin", "Referral", "50%_off"],
    "consent_status": list(CONSENT_STATUSES),  # NOT NULL, a CHECKed choice
}
# Skills are stored lower-cased as compact JSON text; "go"/"golang" and 'c"sharp'/"sharp"
# would match each other under a naive substring test.
SKILLS = ["go", "golang", "python", "aws", 'c"sharp', "sharp"]
TAGS = ["silver medalist", "alumni", "vip"]
USERNAMES = ["admin", "recruiter", "manager"]  # the users fixture
DATE_FIELD_NAMES = ["last_contacted_at", "last_engaged_at", "created_at"]

days_ago = st.builds(
    lambda days, seconds: NOW - dt.timedelta(days=days, seconds=seconds),
    st.integers(0, 400),
    st.sampled_from([0, 0, 1, 43_200]),  # mostly whole days, to hit the cut-offs exactly
)


def sublist(items: list[str]) -> st.SearchStrategy[list[str]]:
    """Some of the items, in order; a yes/no per item, so each shrinks away on its own."""
    flags = st.lists(st.booleans(), min_size=len(items), max_size=len(items))
    return flags.map(lambda keep: [item for item, kept in zip(items, keep, strict=True) if kept])


person = st.fixed_dictionaries(
    {
        **{field: st.sampled_from(values) for field, values in TEXT_VALUES.items()},
        "remote": st.booleans(),
        "years_experience": st.none() | st.integers(0, 30),
        "skills": sublist(SKILLS),
        "tags": sublist(TAGS),
        "owner": st.none() | st.sampled_from(USERNAMES),
        "last_contacted_at": st.none() | days_ago,
        "last_engaged_at": st.none() | days_ago,
        "created_at": days_ago,
        "picked": st.booleans(),  # a member of the static pool "Picked"
    }
)

# --- the filters --------------------------------------------------------------------------

TEXT_OPS = {"eq", "ne", "in", "not_in", "contains", "is_empty", "is_not_empty"}
NUMBER_OPS = {"eq", "ne", "gte", "lte", "between", "is_empty", "is_not_empty"}
DATE_OPS = {"within_days", "older_than_days", "is_empty", "is_not_empty"}
SET_OPS = {"has_any", "has_all", "has_none", "is_empty", "is_not_empty"}
BOOL_OPS = {"eq", "ne"}
OWNER_OPS = {"eq", "ne", "in", "is_empty", "is_not_empty"}
POOL_OPS = {"in", "not_in"}

# The fields (and their operators) the evaluator implements; only these are drawn.
EVALUATED_FIELDS: dict[str, set[str]] = {
    **dict.fromkeys(TEXT_VALUES, TEXT_OPS),
    "years_experience": NUMBER_OPS,
    **dict.fromkeys(DATE_FIELD_NAMES, DATE_OPS),
    "skills": SET_OPS,
    "tags": SET_OPS,
    "remote": BOOL_OPS,
    "owner": OWNER_OPS,
    "pool": POOL_OPS,
}
# A static list and three dynamic pools, made afresh for each example.
DYNAMIC_POOLS = ["Dynamic 1", "Dynamic 2", "Dynamic 3"]
POOL_NAMES = ["Picked", *DYNAMIC_POOLS]

TRICKY_TEXT = ["", "x'; drop table candidates; --", "%", "_", "'", "\\", "a_e", "100%", "nobody"]
CASINGS: list[Callable[[str], str]] = [
    str,
    str.lower,
    str.upper,
    str.title,
    lambda s: f"  {s} ",
]


def cased(values: list[str]) -> st.SearchStrategy[str]:
    return st.builds(
        lambda value, case: case(value), st.sampled_from(values), st.sampled_from(CASINGS)
    )


def text_value(field: str) -> st.SearchStrategy[str]:
    present = [v for v in TEXT_VALUES[field] if v is not None]
    return cased(present) | st.sampled_from(TRICKY_TEXT)


def needle(field: str) -> st.SearchStrategy[str]:
    """A piece of a stored value (any case), or text with LIKE wildcards and quotes."""
    present = [v for v in TEXT_VALUES[field] if v]
    piece = st.sampled_from(present).flatmap(
        lambda s: st.tuples(st.integers(0, len(s)), st.integers(0, len(s))).map(
            lambda ij: s[min(ij) : max(ij)]
        )
    )
    return st.builds(lambda s, case: case(s), piece, st.sampled_from(CASINGS)) | st.sampled_from(
        TRICKY_TEXT
    )


def one_or_list(item: st.SearchStrategy[str]) -> st.SearchStrategy[str | list[str]]:
    return item | st.lists(item, min_size=1, max_size=3)


def value_for(field: str, op: str) -> st.SearchStrategy[Any]:
    if op in {"is_empty", "is_not_empty"}:
        return st.none()
    if field in TEXT_VALUES:
        if op == "contains":
            return needle(field)
        if op in {"eq", "ne"}:
            return text_value(field)
        return one_or_list(text_value(field))
    if field == "years_experience":
        number = st.integers(-1, 31) | st.sampled_from([2.5, 7.5, 29.99])
        if op == "between":
            return st.lists(st.integers(-1, 31), min_size=2, max_size=2)
        return number
    if field in DATE_FIELD_NAMES:
        return st.integers(0, 420) | st.sampled_from([0.5, 30.5, 89.99])
    if field in {"skills", "tags"}:
        known = SKILLS if field == "skills" else TAGS
        # "go" and "sharp" are pieces of "golang" and 'c"sharp', so drawn more often
        tricky = st.sampled_from(["go", "sharp", "o", "%", "rust", '"', "\\"])
        return one_or_list(cased(known) | tricky)
    if field == "remote":
        return st.booleans()
    if field == "owner":
        name = cased(USERNAMES) | st.just("nobody")
        return name if op in {"eq", "ne"} else one_or_list(name)
    assert field == "pool"
    return one_or_list(st.sampled_from(POOL_NAMES))


# Fields by the semantics they share; a kind is drawn first, so the six text fields do not
# crowd out numbers, dates, sets, owners and pools.
FIELD_KINDS = [
    list(TEXT_VALUES),
    ["years_experience"],
    DATE_FIELD_NAMES,
    ["skills", "tags"],
    ["remote"],
    ["owner"],
    ["pool"],
]
assert sorted(f for kind in FIELD_KINDS for f in kind) == sorted(EVALUATED_FIELDS)


def pick(options: list[st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each as likely (st.one_of would flatten nested choices)."""
    return st.sampled_from(options).flatmap(lambda chosen: chosen)


def condition(field: str) -> st.SearchStrategy[dict[str, Any]]:
    ops = sorted(EVALUATED_FIELDS[field] & pool_filter.FIELD_OPS[field])
    return pick(
        [
            st.builds(dict, field=st.just(field), op=st.just(op), value=value_for(field, op))
            for op in ops
        ]
    )


def filters(depth: int, *, with_pool: bool) -> st.SearchStrategy[dict[str, Any]]:
    kinds = [kind for kind in FIELD_KINDS if with_pool or kind != ["pool"]]
    leaf = pick([pick([condition(field) for field in kind]) for kind in kinds])
    if depth == 0:
        return leaf
    children = st.lists(filters(depth - 1, with_pool=with_pool), max_size=4)
    return leaf | st.builds(dict, all=children) | st.builds(dict, any=children)


# --- the second opinion: the same filter over a DataFrame ---------------------------------


def _texts(value: Any) -> list[str]:
    return [item.strip().lower() for item in (value if isinstance(value, list) else [value])]


def evaluate(frame: pd.DataFrame, node: dict[str, Any], pool_filters: dict) -> pd.Series:
    """Who matches the filter, as a boolean Series over the frame's rows.

    Two-valued on purpose: a condition on an unknown value is simply true or false, as the
    filter's documented semantics say, whatever SQL's NULL logic would make of it.
    """
    if "all" in node or "any" in node:
        kind = "all" if "all" in node else "any"
        result = pd.Series(kind == "all", index=frame.index, dtype=bool)
        for child in node[kind]:
            part = evaluate(frame, child, pool_filters)
            result = (result & part) if kind == "all" else (result | part)
        return result
    field, op, value = node["field"], node["op"], node.get("value")
    if field == "pool":
        result = pd.Series(False, index=frame.index, dtype=bool)
        for name in value if isinstance(value, list) else [value]:
            if name == "Picked":
                result |= frame["picked"]
            else:
                result |= evaluate(frame, pool_filters[name], pool_filters)
        return result if op == "in" else ~result
    column = frame[field]
    if field in TEXT_VALUES:
        if op == "is_empty":
            return column.isna() | (column == "")
        if op == "is_not_empty":
            return column.notna() & (column != "")
        lowered = column.fillna("").str.lower()
        if op == "contains":
            return lowered.str.contains(_texts(value)[0], regex=False)
        matched = lowered.isin(_texts(value))
        return matched if op in {"eq", "in"} else ~matched
    if field == "years_experience":
        if op == "is_empty":
            return column.isna()
        if op == "is_not_empty":
            return column.notna()
        if op == "between":
            low, high = value
            return (column >= low) & (column <= high)
        return {
            "eq": column == value,
            "ne": column.isna() | (column != value),  # an unknown number is "not 5"
            "gte": column >= value,
            "lte": column <= value,
        }[op]
    if field in DATE_FIELD_NAMES:
        if op == "is_empty":
            return column.isna()
        if op == "is_not_empty":
            return column.notna()
        cutoff = pd.Timestamp(NOW - dt.timedelta(days=value))
        if op == "within_days":
            return column.notna() & (column >= cutoff)  # an empty date never matches
        return column.isna() | (column < cutoff)  # never contacted counts as gone quiet
    if field in {"skills", "tags"}:
        if op == "is_empty":
            return column.map(len) == 0
        if op == "is_not_empty":
            return column.map(len) > 0
        wanted = set(_texts(value))
        if op == "has_any":
            return column.map(lambda items: bool(wanted & set(items)))
        if op == "has_all":
            return column.map(lambda items: wanted <= set(items))
        return column.map(lambda items: not wanted & set(items))  # has_none
    if field == "remote":
        return column == value if op == "eq" else column != value
    assert field == "owner"
    if op == "is_empty":
        return column.isna()
    if op == "is_not_empty":
        return column.notna()
    named = column.isin(_texts(value))  # usernames are lower-case; NaN is in no list
    return (column.isna() | ~named) if op == "ne" else named


def parts(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The filter and every group and condition inside it, innermost first."""
    children = node.get("all", node.get("any", []))
    return [*(part for child in children for part in parts(child)), node]


def disagreement(
    node: dict, people: list[dict], ids: list[int], members: set[int], expected: set[int]
) -> str:
    """The filter part and the people SQL and pandas disagree on, for the failure report."""
    lines = [f"filter {node!r}"]
    for label, side in (("SQL only", members - expected), ("pandas only", expected - members)):
        lines += [f"{label}: {people[ids.index(i)]!r}" for i in sorted(side)]
    return "\n".join(lines)


# --- the property -------------------------------------------------------------------------


def store(
    engine: Engine, users: dict[str, User], people: list[dict], dynamic: dict[str, dict]
) -> list[int]:
    """Replace everyone (the fixture lives across examples) and return their ids in order."""
    with db.write_session(engine) as session:
        for table in (PoolMember, Pool, CandidateTag, Candidate):
            session.execute(delete(table))
        owner_ids = {user.username: user.id for user in users.values()}
        rows = []
        for fields in people:
            candidate = Candidate(
                **{field: fields[field] for field in TEXT_VALUES},
                last_name="Test",
                remote=fields["remote"],
                years_experience=fields["years_experience"],
                owner_id=owner_ids[fields["owner"]] if fields["owner"] else None,
                **{field: fields[field] for field in DATE_FIELD_NAMES},
            )
            candidate.skills = list(fields["skills"])
            candidate.tags = [CandidateTag(tag=tag) for tag in fields["tags"]]
            rows.append(candidate)
        session.add_all(rows)
        picked = Pool(name="Picked", kind="static")
        session.add(picked)
        session.add_all(
            Pool(name=name, kind="dynamic", filter=filter_json)
            for name, filter_json in dynamic.items()
        )
        session.flush()
        session.add_all(
            PoolMember(pool_id=picked.id, candidate_id=row.id)
            for row, fields in zip(rows, people, strict=True)
            if fields["picked"]
        )
        return [row.id for row in rows]


def frame_of(people: list[dict], ids: list[int]) -> pd.DataFrame:
    """The people as inserted, one row per id: NaN for an unknown number, NaT for a date."""
    index = pd.Index(ids, dtype="int64")

    def column(name: str, dtype: Any = object) -> pd.Series:
        return pd.Series([p[name] for p in people], index=index, dtype=dtype)

    return pd.DataFrame(
        {
            **{name: column(name) for name in [*TEXT_VALUES, "skills", "tags", "owner"]},
            "remote": column("remote", bool),
            "picked": column("picked", bool),
            "years_experience": column("years_experience", "float64"),
            **{name: pd.to_datetime(column(name), utc=True) for name in DATE_FIELD_NAMES},
        },
        index=index,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    people=st.lists(person, max_size=12),
    filter_list=st.lists(filters(3, with_pool=True), min_size=1, max_size=4),
    dynamic_filters=st.lists(
        filters(1, with_pool=False), min_size=len(DYNAMIC_POOLS), max_size=len(DYNAMIC_POOLS)
    ),
)
def test_sql_count_members_and_pandas_agree(
    users: dict[str, User],
    engine: Engine,
    people: list[dict],
    filter_list: list[dict],
    dynamic_filters: list[dict],
) -> None:
    dynamic = dict(zip(DYNAMIC_POOLS, dynamic_filters, strict=True))
    note(f"filters: {filter_list!r}\ndynamic pools: {dynamic!r}")
    ids = store(engine, users, people, dynamic)
    frame = frame_of(people, ids)
    # Every group and condition inside a filter is a filter too: check them all, so one
    # example (one set of people) tests many filters, and a failure names the part that
    # disagrees.
    with db.read_session(engine) as session:
        for node in [part for f in [*filter_list, *dynamic_filters] for part in parts(f)]:
            where = pool_filter.compile_filter(session, node, now=NOW)
            count = session.scalar(select(func.count()).select_from(Candidate).where(where))
            members = set(session.scalars(select(Candidate.id).where(where)))
            matched = evaluate(frame, node, dynamic).astype(bool)
            expected = {int(i) for i in matched[matched].index}
            assert members == expected, disagreement(node, people, ids, members, expected)
            assert count == len(members) == len(expected), f"count {count} for {node!r}"
