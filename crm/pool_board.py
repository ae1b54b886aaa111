"""Pool stages: each pool's ordered stages, a board of its members by stage, and moves.

A person's stage in a pool is kept in pool_members.stage. For a static pool that row is the
membership itself; for a dynamic pool (membership decided by the filter) the row only
records a stage, written the first time someone is moved. A member with no stage, or with
a stage since removed from the pool, stands in the first stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, case, func, insert, literal, select, update

from crm import audit, clock
from crm.db import get_existing, read_session, write_session
from crm.errors import ValidationError
from crm.identity import clean_text
from crm.models import Activity, Candidate, Pool, PoolMember, User
from crm.permissions import require_writer
from crm.pool_filter import membership_condition

DEFAULT_STAGES = ("New", "Contacted", "Engaged", "Interested", "Not now")
MAX_STAGES = 12
MAX_STAGE_NAME = 60
CARDS_PER_STAGE = 50


@dataclass(frozen=True)
class Card:
    id: int
    name: str
    title: str | None
    company: str | None
    last_contacted_at: dt.datetime | None


@dataclass
class Board:
    stages: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    cards: dict[str, list[Card]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def clean_stages(stages: Sequence[str]) -> list[str]:
    """Stage names as given, trimmed; refuses blanks in the middle, repeats and long names."""
    cleaned: list[str] = []
    for raw in stages:
        name = " ".join(clean_text(raw).split())
        if not name:
            continue
        if len(name) > MAX_STAGE_NAME:
            raise ValidationError(f"A stage name can be at most {MAX_STAGE_NAME} characters.")
        if name.lower() in (existing.lower() for existing in cleaned):
            raise ValidationError(f"The stage {name!r} is listed twice.")
        cleaned.append(name)
    if len(cleaned) > MAX_STAGES:
        raise ValidationError(f"A pool can have at most {MAX_STAGES} stages.")
    return cleaned


def set_stages(engine: Engine, *, actor: User, pool_id: int, stages: Sequence[str]) -> list[str]:
    """Replace a pool's stages (in order). People in a removed stage stand in the first."""
    require_writer(engine, actor)
    cleaned = clean_stages(stages)
    with write_session(engine, actor=actor) as session:
        pool = get_existing(session, Pool, pool_id, "pool", with_for_update=True)
        pool.stages = cleaned
        audit.record_about(session, actor, "pool.stages", pool_id, {"stages": cleaned})
    return cleaned


def _effective_stage(stages: list[str]) -> Any:
    """SQL for the stage a member stands in: their own if the pool still has it."""
    return case(
        (PoolMember.stage.in_(stages), PoolMember.stage),
        else_=literal(stages[0]),
    )


def board(engine: Engine, pool_id: int, *, per_stage: int = CARDS_PER_STAGE) -> Board:
    """The pool's members by stage: a count per stage and the first cards of each, by name."""
    with read_session(engine) as session:
        pool = get_existing(session, Pool, pool_id, "pool")
        stages = list(pool.stages or [])
        if not stages:
            return Board(stages=[])
        members = membership_condition(session, pool)
        stage = _effective_stage(stages).label("stage")
        joined = (
            select(Candidate.id)
            .outerjoin(
                PoolMember,
                and_(PoolMember.pool_id == pool_id, PoolMember.candidate_id == Candidate.id),
            )
            .where(members)
        )
        counts = dict(
            session.execute(joined.with_only_columns(stage, func.count()).group_by(stage)).all()
        )
        result = Board(stages=stages, counts={name: counts.get(name, 0) for name in stages})
        for name in stages:
            rows = session.execute(
                joined.with_only_columns(
                    Candidate.id,
                    Candidate.first_name,
                    Candidate.last_name,
                    Candidate.title,
                    Candidate.company,
                    Candidate.last_contacted_at,
                )
                .where(_effective_stage(stages) == name)
                .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
                .limit(per_stage)
            )
            result.cards[name] = [
                Card(
                    row.id,
                    f"{row.first_name} {row.last_name}".strip(),
                    row.title,
                    row.company,
                    row.last_contacted_at,
                )
                for row in rows
            ]
        return result


def move(
    engine: Engine, *, actor: User, pool_id: int, candidate_ids: Sequence[int], stage: str
) -> int:
    """Move members of a pool to a stage, logged on each one's timeline; returns how many
    changed stage. People who are not in the pool are refused."""
    require_writer(engine, actor)
    ids = sorted(set(candidate_ids))
    if not ids:
        raise ValidationError("Select at least one person first.")
    with write_session(engine, actor=actor) as session:
        pool = get_existing(session, Pool, pool_id, "pool")
        stages = list(pool.stages or [])
        if stage not in stages:
            raise ValidationError(f"{pool.name} has no stage called {stage!r}.")
        members = set(
            session.scalars(
                select(Candidate.id).where(
                    Candidate.id.in_(ids), membership_condition(session, pool)
                )
            )
        )
        outside = [cid for cid in ids if cid not in members]
        if outside:
            raise ValidationError(
                f"{len(outside)} of the people chosen are not in {pool.name} (any more)."
            )
        current = dict(
            session.execute(
                select(PoolMember.candidate_id, PoolMember.stage).where(
                    PoolMember.pool_id == pool_id, PoolMember.candidate_id.in_(ids)
                )
            ).all()
        )
        now = clock.now()
        moved: list[tuple[int, str]] = []
        for cid in ids:
            before = current.get(cid)
            standing = before if before in stages else stages[0]
            if standing == stage:
                continue  # already there: nothing to record
            moved.append((cid, standing))
        with_rows = [cid for cid, _ in moved if cid in current]
        if with_rows:
            session.execute(
                update(PoolMember)
                .where(PoolMember.pool_id == pool_id, PoolMember.candidate_id.in_(with_rows))
                .values(stage=stage)
                .execution_options(synchronize_session=False)
            )
        new_rows = [cid for cid, _ in moved if cid not in current]
        if new_rows:  # a dynamic pool's first move of these people
            session.execute(
                insert(PoolMember),
                [
                    {
                        "pool_id": pool_id,
                        "candidate_id": cid,
                        "stage": stage,
                        "added_at": now,
                        "added_by_id": actor.id,
                    }
                    for cid in new_rows
                ],
            )
        if moved:
            session.execute(
                insert(Activity),
                [
                    {
                        "candidate_id": cid,
                        "kind": "stage",
                        "actor_id": actor.id,
                        "summary": f"{pool.name}: moved from {standing} to {stage}",
                        "details": {"pool_id": pool_id, "from": standing, "to": stage},
                        "occurred_at": now,
                    }
                    for cid, standing in moved
                ],
            )
        audit.record_about(
            session, actor, "pool.move", pool_id, {"count": len(moved), "stage": stage}
        )
        return len(moved)


def stage_of(engine: Engine, pool_id: int, candidate_id: int) -> str | None:
    """The stage a member stands in (None if the pool has no stages)."""
    with read_session(engine) as session:
        pool = session.get(Pool, pool_id)
        if pool is None or not pool.stages:
            return None
        own = session.scalar(
            select(PoolMember.stage).where(
                PoolMember.pool_id == pool_id, PoolMember.candidate_id == candidate_id
            )
        )
        return own if own in pool.stages else pool.stages[0]
