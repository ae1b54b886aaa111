"""Suspected duplicates, "not a duplicate" dismissals, and merging two records into one.

Identity keys (email, LinkedIn) already stop exact duplicates at entry and import; what
slips through is the same person under another address. Two signals catch most of it:
the same name at the same company, and the same phone number. A recruiter either
dismisses a pair (remembered, lower id first) or merges it field by field.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Engine,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crm import activities, audit, clock, field_registry
from crm.db import read_session, write_session
from crm.errors import ValidationError
from crm.models import (
    APPLICATION_STAGES,
    Activity,
    Application,
    Candidate,
    CandidateTag,
    DuplicateDismissal,
    Enrollment,
    Event,
    OutboxMessage,
    PoolMember,
    User,
)
from crm.permissions import require_writer

SAME_NAME_AND_COMPANY = "same name and company"
SAME_PHONE = "same phone"

# The fields a person picks between in the merge dialog. Identity keys follow their field
# (email -> email_normalized, ...); consent fields follow consent_status.
MERGEABLE_FIELDS = field_registry.names(field_registry.MERGE)
_FOLLOWERS: dict[str, tuple[str, ...]] = {
    "email": ("email_normalized",),
    "linkedin_url": ("linkedin_normalized",),
    "phone": ("phone_normalized",),
    "consent_status": ("consent_at", "consent_source", "consent_note"),
}
_UNIQUE_KEYS = ("email_normalized", "linkedin_normalized")
# Consent never loosens in a merge: a "do not contact" on either record wins.
_CONSENT_STRICTNESS = {"do_not_contact": 1}
_PROGRESS_STAGES = APPLICATION_STAGES[: APPLICATION_STAGES.index("hired") + 1]
_ENROLLMENT_FINALITY = {"active": 0, "completed": 1, "stopped": 2}

Side = Literal["keep", "remove"]


@dataclass(frozen=True)
class DuplicatePair:
    a_id: int
    b_id: int
    reason: str  # SAME_NAME_AND_COMPANY or SAME_PHONE
    a_name: str
    b_name: str
    a_summary: str  # email / company / title, for telling the two apart at a glance
    b_summary: str


# --- finding ----------------------------------------------------------------------------


def _name_key() -> tuple[ColumnElement[Any], ...]:
    return (
        func.lower(Candidate.first_name),
        func.lower(Candidate.last_name),
        func.lower(Candidate.company),
    )


def _groups(
    session: Session,
    key: tuple[ColumnElement[Any], ...],
    has_key: ColumnElement[bool],
    person: int | None,
) -> dict[tuple[Any, ...], list[int]]:
    """People sharing a key with someone else, grouped by key, ids ascending.

    One scan with COUNT(*) OVER (PARTITION BY key) keeps only keys held more than once.
    A self-join would do the same, but PostgreSQL misjudges the size of a join on
    lower(...) expressions and picked a nested loop that took 18 s on 100,000 people.
    """
    query = select(Candidate.id, *key).where(has_key)
    if person is not None:
        mine = select(*key).where(Candidate.id == person, has_key).subquery()
        query = query.where(*(k == c for k, c in zip(key, mine.c, strict=True)))
    counted = query.add_columns(func.count().over(partition_by=key).label("n")).subquery()
    width = len(key)
    rows = session.execute(
        select(*counted.c[: width + 1])
        .where(counted.c.n > 1)
        .order_by(*counted.c[1 : width + 1], counted.c[0])
    )
    groups: dict[tuple[Any, ...], list[int]] = {}
    for row in rows:
        groups.setdefault(tuple(row[1:]), []).append(row[0])
    return groups


def _pairs(
    groups: dict[tuple[Any, ...], list[int]], person: int | None
) -> Iterator[tuple[int, int]]:
    for ids in groups.values():
        if person is None:
            yield from itertools.combinations(ids, 2)
        elif person in ids:
            yield from (tuple(sorted((person, other))) for other in ids if other != person)


def _summary(candidate: Any) -> str:
    parts = (candidate.email or candidate.linkedin_url, candidate.company, candidate.title)
    return " / ".join(part for part in parts if part)


def _name(candidate: Any) -> str:
    return f"{candidate.first_name} {candidate.last_name}".strip() or f"#{candidate.id}"


def suspected_duplicates(
    engine: Engine, *, limit: int = 100, candidate_id: int | None = None
) -> list[DuplicatePair]:
    """Pairs that look like one person, newest first, without the dismissed ones.

    candidate_id restricts the list to pairs with that person (the profile page). A pair
    matching on both signals is listed once, as "same name and company". The pairs are
    formed from the (small) groups in Python and only the newest `limit` are kept, so a
    number shared by hundreds of records costs time but not memory.
    """
    named = and_(
        Candidate.company.is_not(None),
        Candidate.company != "",
        or_(Candidate.first_name != "", Candidate.last_name != ""),
    )
    phoned = Candidate.phone_normalized.is_not(None)
    with read_session(engine) as session:
        by_name = _groups(session, _name_key(), named, candidate_id)
        by_phone = _groups(session, (Candidate.phone_normalized,), phoned, candidate_id)
        dismissed_query = select(
            DuplicateDismissal.candidate_a_id, DuplicateDismissal.candidate_b_id
        )
        if candidate_id is not None:
            dismissed_query = dismissed_query.where(
                or_(
                    DuplicateDismissal.candidate_a_id == candidate_id,
                    DuplicateDismissal.candidate_b_id == candidate_id,
                )
            )
        dismissed = {(a_id, b_id) for a_id, b_id in session.execute(dismissed_query)}
        name_of = {i: key for key, ids in by_name.items() for i in ids}

        def found() -> Iterator[tuple[int, int, str]]:
            for a_id, b_id in _pairs(by_name, candidate_id):
                if (a_id, b_id) not in dismissed:
                    yield a_id, b_id, SAME_NAME_AND_COMPANY
            for a_id, b_id in _pairs(by_phone, candidate_id):
                same_name = a_id in name_of and name_of[a_id] == name_of.get(b_id)
                if not same_name and (a_id, b_id) not in dismissed:
                    yield a_id, b_id, SAME_PHONE

        pairs = heapq.nlargest(limit, found(), key=lambda pair: (pair[1], pair[0]))
        ids = {i for a_id, b_id, _ in pairs for i in (a_id, b_id)}
        people = {
            row.id: row
            for row in session.execute(
                select(
                    Candidate.id,
                    Candidate.first_name,
                    Candidate.last_name,
                    Candidate.email,
                    Candidate.linkedin_url,
                    Candidate.company,
                    Candidate.title,
                ).where(Candidate.id.in_(ids))
            )
        }
    return [
        DuplicatePair(
            a_id=a_id,
            b_id=b_id,
            reason=reason,
            a_name=_name(people[a_id]),
            b_name=_name(people[b_id]),
            a_summary=_summary(people[a_id]),
            b_summary=_summary(people[b_id]),
        )
        for a_id, b_id, reason in pairs
    ]


# --- dismissing -------------------------------------------------------------------------


def _insert_ignoring_conflict(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert dismissals, skipping any already there (two people may click at once)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(DuplicateDismissal).values(rows).on_conflict_do_nothing())


def _existing(session: Session, *ids: int) -> set[int]:
    return set(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))


def dismiss(engine: Engine, *, actor: User, a_id: int, b_id: int) -> None:
    """Remember that two candidates are different people; doing it twice changes nothing."""
    require_writer(engine, actor)
    if a_id == b_id:
        raise ValidationError("A candidate cannot be a duplicate of themself.")
    low, high = sorted((a_id, b_id))
    with write_session(engine, actor=actor) as session:
        if _existing(session, low, high) != {low, high}:
            raise ValidationError("One of the two candidates no longer exists.")
        _insert_ignoring_conflict(
            session,
            [
                {
                    "candidate_a_id": low,
                    "candidate_b_id": high,
                    "dismissed_by_id": actor.id,
                    "dismissed_at": clock.now(),
                }
            ],
        )
        audit.record_about(session, actor, "candidate.not_duplicate", low, {"other_id": high})


# --- merging ----------------------------------------------------------------------------


def _empty(value: Any) -> bool:
    return value is None or value == ""


def _side_for(field: str, choices: Mapping[str, Side], keep: Candidate, gone: Candidate) -> Side:
    """The chosen side; a field nobody chose keeps the kept record's value unless it is
    empty and the other one is not (a merge should not lose what only one record knew)."""
    if field in choices:
        return choices[field]
    return "remove" if _empty(getattr(keep, field)) and not _empty(getattr(gone, field)) else "keep"


def _check_choices(choices: Mapping[str, str]) -> None:
    for field, side in choices.items():
        if field not in MERGEABLE_FIELDS:
            raise ValidationError(f"{field!r} is not a field that can be chosen in a merge.")
        if side not in ("keep", "remove"):
            raise ValidationError(f"The choice for {field} must be 'keep' or 'remove'.")


def _latest(*values: dt.datetime | None) -> dt.datetime | None:
    present = [value for value in values if value is not None]
    return max(present) if present else None


def _earliest(*values: dt.datetime | None) -> dt.datetime | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None


def _merged_values(keep: Candidate, gone: Candidate, choices: Mapping[str, Side]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in MERGEABLE_FIELDS:
        side = _side_for(field, choices, keep, gone)
        if field == "consent_status":
            strict = {
                "keep": _CONSENT_STRICTNESS.get(keep.consent_status, 0),
                "remove": _CONSENT_STRICTNESS.get(gone.consent_status, 0),
            }
            other: Side = "remove" if side == "keep" else "keep"
            if strict[other] > strict[side]:
                side = other
        source = keep if side == "keep" else gone
        for name in (field, *_FOLLOWERS.get(field, ())):
            values[name] = getattr(source, name)
    if keep.last_contacted_at is None or (
        gone.last_contacted_at is not None and gone.last_contacted_at > keep.last_contacted_at
    ):
        contact = gone
    else:
        contact = keep
    values["last_contacted_at"] = contact.last_contacted_at
    values["last_contacted_by_id"] = contact.last_contacted_by_id
    values["last_contact_channel"] = contact.last_contact_channel
    values["last_engaged_at"] = _latest(keep.last_engaged_at, gone.last_engaged_at)
    values["unsubscribed_at"] = _earliest(keep.unsubscribed_at, gone.unsubscribed_at)
    values["created_at"] = _earliest(keep.created_at, gone.created_at)
    # The sooner follow-up reminder, with its note.
    follow = keep
    if gone.follow_up_on is not None and (
        keep.follow_up_on is None or gone.follow_up_on < keep.follow_up_on
    ):
        follow = gone
    values["follow_up_on"] = follow.follow_up_on
    values["follow_up_note"] = follow.follow_up_note
    custom = dict(gone.custom_fields or {})
    custom.update({k: v for k, v in (keep.custom_fields or {}).items() if not _empty(v)})
    values["custom_fields"] = custom
    return values


def _progress(application: Application) -> int:
    """How far an application got (rejected or withdrawn ones by the stages they passed)."""
    reached = [
        index
        for index, stage in enumerate(_PROGRESS_STAGES)
        if application.stage == stage or getattr(application, f"{stage}_at") is not None
    ]
    return max(reached, default=-1)


def _move_pool_places(session: Session, keep_id: int, gone_id: int) -> None:
    """Move pool places; where both are in a pool, keep the earlier place (and a stage)."""
    kept = {
        member.pool_id: member
        for member in session.scalars(select(PoolMember).where(PoolMember.candidate_id == keep_id))
    }
    for member in session.scalars(
        select(PoolMember).where(PoolMember.candidate_id == gone_id)
    ).all():
        mine = kept.get(member.pool_id)
        if mine is None:
            continue
        if member.added_at < mine.added_at:
            mine.added_at, mine.added_by_id = member.added_at, member.added_by_id
        if mine.stage is None:
            mine.stage = member.stage
        session.delete(member)
    session.flush()
    _reassign(session, PoolMember, keep_id, gone_id)


def _reassign(session: Session, model: Any, keep_id: int, gone_id: int) -> None:
    """Give the merged-away person's remaining rows of this table to the kept person."""
    session.execute(
        update(model)
        .where(model.candidate_id == gone_id)
        .values(candidate_id=keep_id)
        .execution_options(synchronize_session=False)
    )


def _both_have(
    session: Session, model: Any, key: str, keep_id: int, gone_id: int
) -> Iterator[tuple[Any, Any]]:
    """(the merged-away person's row, the kept person's) for each `key` both have, locked."""
    kept = {
        getattr(row, key): row
        for row in session.scalars(
            select(model).where(model.candidate_id == keep_id).with_for_update()
        )
    }
    for row in session.scalars(
        select(model).where(model.candidate_id == gone_id).with_for_update()
    ).all():
        mine = kept.get(getattr(row, key))
        if mine is not None:
            yield row, mine


def _move_applications(session: Session, keep_id: int, gone_id: int) -> None:
    """Move applications; for a job both applied to, the one that got furthest stays."""
    for app, mine in _both_have(session, Application, "job_id", keep_id, gone_id):
        if _progress(app) > _progress(mine):
            session.delete(mine)
            session.flush()  # free (candidate_id, job_id) before the move below
        else:
            session.delete(app)
    session.flush()
    _reassign(session, Application, keep_id, gone_id)


def _move_enrollments(session: Session, keep_id: int, gone_id: int) -> None:
    """Move campaign enrollments; for a campaign both are in, the more final one stays
    (a stopped sequence must stay stopped) and takes over the other's messages, whose
    queued ones are cancelled so the person is not mailed twice."""
    for enrollment, mine in _both_have(session, Enrollment, "campaign_id", keep_id, gone_id):
        winner, loser = mine, enrollment
        if _ENROLLMENT_FINALITY[enrollment.status] > _ENROLLMENT_FINALITY[mine.status]:
            winner, loser = enrollment, mine
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.enrollment_id == loser.id, OutboxMessage.status == "queued")
            .values(status="cancelled", skip_reason="merged with a duplicate record")
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.enrollment_id == loser.id)
            .values(enrollment_id=winner.id)
            .execution_options(synchronize_session=False)
        )
        session.delete(loser)
        session.flush()
    _reassign(session, Enrollment, keep_id, gone_id)


def _move_dismissals(session: Session, keep_id: int, gone_id: int) -> None:
    """Carry "not a duplicate" answers over to the kept record (lower id first)."""
    rows = session.scalars(
        select(DuplicateDismissal).where(
            or_(
                DuplicateDismissal.candidate_a_id == gone_id,
                DuplicateDismissal.candidate_b_id == gone_id,
            )
        )
    ).all()
    moved = []
    for row in rows:
        other = row.candidate_b_id if row.candidate_a_id == gone_id else row.candidate_a_id
        if other != keep_id:
            low, high = sorted((keep_id, other))
            moved.append(
                {
                    "candidate_a_id": low,
                    "candidate_b_id": high,
                    "dismissed_by_id": row.dismissed_by_id,
                    "dismissed_at": row.dismissed_at,
                }
            )
    session.execute(
        delete(DuplicateDismissal)
        .where(
            or_(
                DuplicateDismissal.candidate_a_id == gone_id,
                DuplicateDismissal.candidate_b_id == gone_id,
            )
        )
        .execution_options(synchronize_session=False)
    )
    _insert_ignoring_conflict(session, moved)


def _move_simple(session: Session, keep_id: int, gone_id: int) -> None:
    """Rows with no uniqueness per person simply change hands."""
    for model in (Activity, OutboxMessage, Event):
        _reassign(session, model, keep_id, gone_id)


def merge(
    engine: Engine,
    *,
    actor: User,
    keep_id: int,
    remove_id: int,
    choices: Mapping[str, Side],
) -> Candidate:
    """Merge remove_id into keep_id in one transaction and return the kept candidate.

    choices picks a side per MERGEABLE_FIELDS entry (unchosen: the kept value, or the
    other one where the kept one is empty). Whatever is chosen, consent never loosens,
    the earliest unsubscribe and the latest contact stay, skills and tags are united,
    and the timeline, pools, applications, enrollments, messages and events move over.
    """
    require_writer(engine, actor)
    _check_choices(choices)
    if keep_id == remove_id:
        raise ValidationError("A candidate cannot be merged with themself.")
    with write_session(engine, actor=actor) as session:
        # Both rows locked, in id order so two merges of one pair cannot deadlock.
        found = {
            c.id: c
            for c in session.scalars(
                select(Candidate)
                .where(Candidate.id.in_((keep_id, remove_id)))
                .order_by(Candidate.id)
                .with_for_update()
            )
        }
        if len(found) != 2:
            raise ValidationError("One of the two candidates no longer exists.")
        keep, gone = found[keep_id], found[remove_id]
        values = _merged_values(keep, gone, choices)
        gone_name, gone_contact = _name(gone), gone.email or gone.linkedin_url
        tags = {t.tag for t in keep.tags}
        new_skills = [skill for skill in gone.skills if skill not in keep.skills]
        new_tags = sorted({t.tag for t in gone.tags} - tags)

        # The removed record lets go of its unique keys first, so the kept one may take them.
        for key in _UNIQUE_KEYS:
            setattr(gone, key, None)
        session.flush()

        _move_simple(session, keep_id, remove_id)
        _move_pool_places(session, keep_id, remove_id)
        _move_applications(session, keep_id, remove_id)
        _move_enrollments(session, keep_id, remove_id)
        _move_dismissals(session, keep_id, remove_id)

        for name, value in values.items():
            setattr(keep, name, value)
        keep.skills = [*keep.skills, *new_skills]  # a new list: the column sees the change
        keep.tags.extend(CandidateTag(tag=tag) for tag in new_tags)
        keep.updated_by_id = actor.id
        keep.updated_at = clock.now()  # always an UPDATE, so the version moves on
        session.delete(gone)
        session.flush()

        summary = f"Merged with {gone_name}" + (f" ({gone_contact})" if gone_contact else "")
        details = {"removed_id": remove_id, "choices": dict(choices)}
        activities.add_one(session, actor, keep_id, "merge", summary, details)
        audit.record_about(
            session,
            actor,
            "candidate.merge",
            keep_id,
            {"removed_id": remove_id, "removed_name": gone_name, "choices": dict(choices)},
        )
        session.flush()
        return keep
