"""Talent pools: dynamic pools (a stored filter, always current, crm.pool_filter) and
static lists kept by hand; their sizes and insight, their overlap, and saving them.

A stored pool that cannot be counted (saved before a limit, or otherwise broken) is
listed with the sentence saying why instead of a size.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    delete,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from crm import activities, audit, clock, pool_filter, pool_yield, touches
from crm.db import get_existing, read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.identity import clean_text
from crm.models import (
    POOL_KINDS,
    Campaign,
    Candidate,
    CandidateTag,
    ContentItem,
    ContentItemPool,
    CustomField,
    Pool,
    PoolMember,
    User,
)
from crm.permissions import require_writer

INSIGHT_DAYS = 90  # the window of "growth" and "engagement rate"
HIRES_DAYS = 365  # the window of "hires from the pool"
MAX_NAME = 120
MAX_SAMPLE = 50
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


# What a preview shows of each person in its sample.
_SAMPLE_FIELDS = "id first_name last_name title company location last_contacted_at"
_SAMPLE_COLUMNS = [getattr(Candidate, name) for name in _SAMPLE_FIELDS.split()]


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
        pool_filter.raise_if_connection_lost(error)
        if len(everyone) == 1:
            log.warning(
                "Pool %s could not be counted: %s",
                everyone[0],
                pool_filter.driver_error_name(error),
            )
            return {}, {everyone[0]: UNCOUNTABLE}
    figures: dict[int, tuple[Any, ...]] = {}
    problems: dict[int, str] = {}
    for pool_id in everyone:
        try:
            figures.update(measure([pool_id]))
        except DBAPIError as error:
            pool_filter.raise_if_connection_lost(error)
            log.warning(
                "Pool %s could not be counted: %s", pool_id, pool_filter.driver_error_name(error)
            )
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
                conditions[pool.id] = pool_filter.membership_condition(session, pool, now=now)
            except ValidationError as error:
                problems[pool.id] = str(error)
        dynamic, uncounted = _dynamic_figures(session, conditions, since)
        problems.update(uncounted)
        last_touches = touches.pool_last_touches(session)
    today = now.date()
    hires = pool_yield.hires_by_pool(
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
    with read_session(engine) as session, pool_filter.runnable():
        condition = pool_filter.compile_filter(session, filter_json, now=now)
        count = session.scalar(select(func.count()).select_from(Candidate).where(condition))
        rows = session.execute(
            select(*_SAMPLE_COLUMNS)
            .where(condition)
            .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
            .limit(max(0, min(sample, MAX_SAMPLE)))
        )
        return FilterPreview(count or 0, [dict(row._mapping) for row in rows])


def member_ids(engine: Engine, pool_id: int) -> list[int]:
    """Everyone in a pool right now, by id."""
    with read_session(engine) as session:
        pool = get_existing(session, Pool, pool_id, "pool")
        condition = pool_filter.membership_condition(session, pool)
        return list(session.scalars(select(Candidate.id).where(condition).order_by(Candidate.id)))


def overlap(engine: Engine, first_id: int, second_id: int) -> Overlap:
    """How many people each of two pools holds, and how many are in both (one scan)."""
    with read_session(engine) as session:
        first, second = session.get(Pool, first_id), session.get(Pool, second_id)
        if first is None or second is None:
            raise NotFound("One of the two pools no longer exists.")
        in_first = pool_filter.membership_condition(session, first)
        in_second = pool_filter.membership_condition(session, second)
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
            pool_filter.compile_filter(session, filter_json)  # refuses what cannot run, naming it
        if pool_id is None:
            pool = Pool(name=name, kind=kind, owner_id=actor.id, stages=[])
            session.add(pool)
        else:
            found = get_existing(session, Pool, pool_id, "pool", with_for_update=True)
            if found.kind != kind:
                raise ValidationError(
                    f"{found.name} is a {found.kind} pool; a pool's kind cannot change."
                )
            pool = found
        pool.name = name
        pool.description = about
        pool.filter = filter_json if kind == "dynamic" else None
        session.flush()
        record_change(
            session,
            actor=actor,
            action="pool.save" if pool_id else "pool.create",
            pool_id=pool.id,
            name=name,
            kind=kind,
            filter=pool.filter,
        )
        return pool.id


def delete_pool(engine: Engine, *, actor: User, pool_id: int) -> str:
    """Delete a pool (its list and stages go with it; the people stay); returns its name."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        pool = get_existing(session, Pool, pool_id, "pool")
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
        record_change(session, actor=actor, action="pool.delete", pool_id=pool_id, name=name)
        return name


def record_change(
    session: Session, *, actor: User, action: str, pool_id: int, **detail: Any
) -> None:
    """The audit entry of a change to a pool, written in the change's transaction."""
    audit.record(
        session, actor=actor, action=action, entity="pool", entity_id=pool_id, detail=detail
    )


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
        record_change(
            session, actor=actor, action="pool.remove_members", pool_id=pool_id, count=len(removed)
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


def pool_names(engine: Engine) -> dict[int, str]:
    """{id: name} of every pool, in name order, for pickers (one query, no sizes: counting
    is the slow part)."""
    with read_session(engine) as session:
        return dict(session.execute(select(Pool.id, Pool.name).order_by(Pool.name)).all())


def add_matching(engine: Engine, *, actor: User, pool_id: int, filter_json: Any) -> int:
    """Add everyone a filter matches now to a hand-kept list; returns how many."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        pool = static_pool(session, pool_id)
        ids = list(
            session.scalars(
                select(Candidate.id)
                .where(pool_filter.compile_filter(session, filter_json))
                .order_by(Candidate.id)
            )
        )
        added = add_members(session, pool, ids, actor)
        record_change(
            session,
            actor=actor,
            action="pool.add_members",
            pool_id=pool_id,
            count=added,
            filter=filter_json,
        )
        return added


def static_pool(session: Session, pool_id: int) -> Pool:
    """The hand-kept pool, locked for the change; one sentence if it is gone or dynamic."""
    pool = get_existing(session, Pool, pool_id, "pool", with_for_update=True)
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
