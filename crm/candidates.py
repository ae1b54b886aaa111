"""The candidate database: search and paging in SQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, exists, func, or_, select

from crm.db import read_session
from crm.models import Candidate, CandidateSkill, User

SORTS = {
    "name": (Candidate.last_name, Candidate.first_name, Candidate.id),
    "recently_added": (Candidate.created_at.desc(), Candidate.id.desc()),
    "last_contacted": (Candidate.last_contacted_at.desc(), Candidate.id),
    "longest_quiet": (Candidate.last_contacted_at, Candidate.id),
}


@dataclass(frozen=True)
class CandidatePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(
    engine: Engine,
    *,
    text: str = "",
    page: int = 1,
    page_size: int = 50,
    sort: str = "name",
) -> CandidatePage:
    """One page of candidates matching text in name, email, title, company or a skill."""
    conditions = []
    needle = text.strip().lower()
    if needle:
        pattern = _like(needle)
        full_name = func.lower(Candidate.first_name + " " + Candidate.last_name)
        conditions.append(
            or_(
                full_name.like(pattern, escape="\\"),
                Candidate.email_normalized.like(pattern, escape="\\"),
                func.lower(func.coalesce(Candidate.title, "")).like(pattern, escape="\\"),
                func.lower(func.coalesce(Candidate.company, "")).like(pattern, escape="\\"),
                exists(
                    select(1).where(
                        CandidateSkill.candidate_id == Candidate.id,
                        CandidateSkill.skill == needle,
                    )
                ),
            )
        )
    page = max(1, page)
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Candidate).where(*conditions))
        owner = select(User.display_name).where(User.id == Candidate.owner_id).scalar_subquery()
        query = (
            select(
                Candidate.id,
                Candidate.first_name,
                Candidate.last_name,
                Candidate.title,
                Candidate.company,
                Candidate.location,
                Candidate.remote,
                Candidate.email,
                Candidate.source,
                Candidate.last_contacted_at,
                Candidate.last_contact_channel,
                owner.label("owner"),
            )
            .where(*conditions)
            .order_by(*SORTS.get(sort, SORTS["name"]))
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        rows = [dict(row._mapping) for row in session.execute(query)]
    return CandidatePage(rows=rows, total=total, page=page, page_size=page_size)


def count(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Candidate))


def follow_ups_due(engine: Engine, *, today: dt.date, limit: int = 20) -> list[dict[str, Any]]:
    """Reminders whose date has come: who, when, and the note."""
    with read_session(engine) as session:
        query = (
            select(
                Candidate.id,
                Candidate.first_name,
                Candidate.last_name,
                Candidate.follow_up_on,
                Candidate.follow_up_note,
            )
            .where(Candidate.follow_up_on <= today)
            .order_by(Candidate.follow_up_on, Candidate.id)
            .limit(limit)
        )
        return [dict(row._mapping) for row in session.execute(query)]
