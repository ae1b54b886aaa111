"""The candidate database: search and paging in SQL, entry, edits, the timeline and bulk
actions. Field rules live in candidate_fields; identity keys in identity."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from crm import activities, audit, clock, custom_fields, field_registry, pools
from crm.candidate_fields import CleanCandidate, clean_candidate, split_list
from crm.custom_fields import clean_values
from crm.db import read_session, write_session
from crm.errors import CrmError, NotFound, ValidationError
from crm.identity import address_hash
from crm.models import (
    Activity,
    Campaign,
    Candidate,
    CandidateTag,
    Event,
    ImportBatch,
    OutboxMessage,
    Pool,
    PoolMember,
    Suppression,
    User,
)
from crm.permissions import require_writer
from crm.sql import has_item

SORTS = {
    "name": (Candidate.last_name, Candidate.first_name, Candidate.id),
    "recently_added": (Candidate.created_at.desc(), Candidate.id.desc()),
    "last_contacted": (Candidate.last_contacted_at.desc(), Candidate.id),
    "longest_quiet": (Candidate.last_contacted_at, Candidate.id),
}


MAX_SEARCH = 200  # characters in a search (SQLite refuses a LIKE pattern over 50,000 bytes)


@dataclass(frozen=True)
class CandidatePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    problem: str | None = None  # why the search was refused (nothing is listed), if it was

    @property
    def page_count(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class QuickFilters:
    """The Candidates page's quick filters; None means 'any'."""

    owner_id: int | None = None
    consent_status: str | None = None
    remote: bool | None = None
    source: str | None = None
    contacted: str | None = None  # "never" | "recent" (30 days) | "quiet" (90+ days or never)

    def conditions(self, now: dt.datetime) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.owner_id is not None:
            found.append(Candidate.owner_id == self.owner_id)
        if self.consent_status:
            found.append(Candidate.consent_status == self.consent_status)
        if self.remote is not None:
            found.append(Candidate.remote.is_(self.remote))
        if self.source:
            found.append(Candidate.source == self.source)
        if self.contacted == "never":
            found.append(Candidate.last_contacted_at.is_(None))
        elif self.contacted == "recent":
            found.append(Candidate.last_contacted_at >= now - dt.timedelta(days=30))
        elif self.contacted == "quiet":
            found.append(
                or_(
                    Candidate.last_contacted_at.is_(None),
                    Candidate.last_contacted_at < now - dt.timedelta(days=90),
                )
            )
        return found


def search_condition(text: str, filters: QuickFilters | None = None) -> list[ColumnElement[bool]]:
    """WHERE conditions for a search box text (and quick filters), shared by search() and
    the exporter so an export of a view holds exactly the people the view lists.

    ValidationError for a search over MAX_SEARCH characters or holding a NUL character.
    """
    found = filters.conditions(clock.now()) if filters else []
    needle = text.strip().lower()
    if len(needle) > MAX_SEARCH:
        raise ValidationError(f"A search can be at most {MAX_SEARCH} characters long.")
    if "\x00" in needle:
        raise ValidationError("A search cannot contain a NUL character.")
    if not needle:
        return found
    pattern = _like(needle)
    full_name = func.lower(Candidate.first_name + " " + Candidate.last_name)
    return found + [
        or_(
            full_name.like(pattern, escape="\\"),
            Candidate.email_normalized.like(pattern, escape="\\"),
            func.lower(func.coalesce(Candidate.title, "")).like(pattern, escape="\\"),
            func.lower(func.coalesce(Candidate.company, "")).like(pattern, escape="\\"),
            has_item(Candidate.skills, needle),
        )
    ]


def search(
    engine: Engine,
    *,
    text: str = "",
    page: int = 1,
    page_size: int = 50,
    sort: str = "name",
    filters: QuickFilters | None = None,
    total: int | None = None,
) -> CandidatePage:
    """One page of candidates matching text in name, email, title, company or a skill.

    total: this search's count when the caller already has it (the page keeps it briefly
    while paging); None counts here. Where the page itself shows the true figure, a stale
    one is corrected: a short page is the last, a full one proves at least its rows.

    A search that cannot be run (too long, a NUL character) lists nobody, and `problem`
    says why in one sentence, so every search box keeps working.
    """
    page = max(1, page)
    try:
        conditions = search_condition(text, filters)
    except ValidationError as error:
        return CandidatePage(rows=[], total=0, page=1, page_size=page_size, problem=str(error))
    with read_session(engine) as session:
        if total is None:
            total = session.scalar(select(func.count()).select_from(Candidate).where(*conditions))
        owner = select(User.display_name).where(User.id == Candidate.owner_id).scalar_subquery()
        contacted_by = (
            select(User.display_name)
            .where(User.id == Candidate.last_contacted_by_id)
            .scalar_subquery()
        )
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
                Candidate.consent_status,
                owner.label("owner"),
                contacted_by.label("contacted_by"),
            )
            .where(*conditions)
            .order_by(*SORTS.get(sort, SORTS["name"]))
            .limit(page_size)
            .offset((page - 1) * page_size)
        )
        rows = [dict(row._mapping) for row in session.execute(query)]
    before = (page - 1) * page_size
    if len(rows) < page_size and (rows or page == 1):
        total = before + len(rows)
    elif rows:
        total = max(total, before + len(rows))
    return CandidatePage(rows=rows, total=total, page=page, page_size=page_size)


def sources(engine: Engine) -> list[str]:
    """The distinct sources in use, for the quick filter."""
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(Candidate.source)
                .where(Candidate.source.is_not(None))
                .group_by(Candidate.source)
                .order_by(Candidate.source)
                .limit(200)
            )
        )


def count(engine: Engine) -> int:
    with read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(Candidate))


# --- entry, edits and the timeline ------------------------------------------------------

EDITABLE_FIELDS = field_registry.names(field_registry.EDIT)


class CandidateInvalid(ValidationError):
    """Several field problems at once; str() is the first, .problems has them all."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1])
        self.problems = problems


class DuplicateCandidate(ValidationError):
    def __init__(self, message: str, existing_id: int) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class EditConflict(CrmError):
    """Someone saved the candidate after this edit began; nothing was written."""


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str
    channel: str | None
    summary: str
    actor: str | None


def get_candidate(engine: Engine, candidate_id: int) -> Candidate | None:
    """The candidate with skills, tags and owner loaded, detached for display."""
    with read_session(engine) as session:
        candidate = session.scalar(
            select(Candidate)
            .where(Candidate.id == candidate_id)
            .options(selectinload(Candidate.owner))
        )
        return candidate


def _existing_identity(
    session: Session, values: dict[str, Any], *, exclude_id: int | None = None
) -> Candidate | None:
    keys = []
    if values.get("email_normalized"):
        keys.append(Candidate.email_normalized == values["email_normalized"])
    if values.get("linkedin_normalized"):
        keys.append(Candidate.linkedin_normalized == values["linkedin_normalized"])
    if not keys:
        return None
    query = select(Candidate).where(or_(*keys))
    if exclude_id is not None:
        query = query.where(Candidate.id != exclude_id)
    return session.scalars(query.limit(1)).first()


def _duplicate_message(existing: Candidate, values: dict[str, Any]) -> str:
    same = (
        "email"
        if values.get("email_normalized")
        and values.get("email_normalized") == existing.email_normalized
        else "LinkedIn profile"
    )
    return f"{existing.full_name or 'Someone'} is already in the database with the same {same}."


def _suppressed(session: Session, email_key: str | None) -> bool:
    if not email_key:
        return False
    return (
        session.scalar(
            select(Suppression.id).where(Suppression.address_hash == address_hash(email_key))
        )
        is not None
    )


def _set_list(session: Session, candidate: Candidate, kind: str, items: list[str]) -> None:
    if kind == "skills":
        candidate.skills = list(items)
    else:
        candidate.tags = [CandidateTag(tag=item) for item in items]


def create_candidate(engine: Engine, *, actor: User, fields: Mapping[str, Any]) -> Candidate:
    """Add a person by hand. Refuses a second record for someone already here."""
    require_writer(engine, actor)
    cleaned = clean_candidate(fields)
    if cleaned.problems:
        raise CandidateInvalid(cleaned.problems)
    values = cleaned.values
    now = clock.now()
    try:
        candidate_id = _insert_candidate(engine, actor, fields, cleaned, now)
    except IntegrityError:
        # Someone added the same person (another form, an import) between the check and
        # the insert; the unique key refused the second record: say so, as for the check.
        with read_session(engine) as session:
            existing = _existing_identity(session, values)
        if existing is None:
            raise
        raise DuplicateCandidate(_duplicate_message(existing, values), existing.id) from None
    return get_candidate(engine, candidate_id)


def _insert_candidate(
    engine: Engine,
    actor: User,
    fields: Mapping[str, Any],
    cleaned: CleanCandidate,
    now: dt.datetime,
) -> int:
    values = cleaned.values
    with write_session(engine) as session:
        existing = _existing_identity(session, values)
        if existing is not None:
            raise DuplicateCandidate(_duplicate_message(existing, values), existing.id)
        values.setdefault("consent_status", "legitimate_interest")
        if _suppressed(session, values.get("email_normalized")):
            values["consent_status"] = "do_not_contact"
        if values["consent_status"] == "consented":
            values.setdefault("consent_at", now)
            values.setdefault("consent_source", "Entered by hand")
        owner_id = fields.get("owner_id") or actor.id
        candidate = Candidate(**values, owner_id=owner_id, updated_by_id=actor.id)
        session.add(candidate)
        _set_list(session, candidate, "skills", cleaned.skills)
        _set_list(session, candidate, "tags", cleaned.tags)
        session.flush()
        summary = f"Added by {actor.display_name}"
        activities.add_one(session, actor, candidate.id, "created", summary, occurred_at=now)
        audit.record_about(session, actor, "candidate.create", candidate.id)
        return candidate.id


def _shown(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def update_candidate(
    engine: Engine,
    *,
    actor: User,
    candidate_id: int,
    expected_version: int,
    fields: Mapping[str, Any],
) -> Candidate:
    """Save an edit made on a copy at expected_version.

    Optimistic locking: if anyone saved the candidate since (version moved on), nothing
    is written and EditConflict says who and when, so the page can keep this person's
    input for them to reapply.
    """
    require_writer(engine, actor)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError(f"These fields cannot be edited: {', '.join(sorted(unknown))}.")
    cleaned = clean_candidate(
        {k: v for k, v in fields.items() if k not in {"owner_id", "custom_fields"}}, partial=True
    )
    problems = list(cleaned.problems)
    custom: dict[str, Any] | None = None
    if "custom_fields" in fields:
        custom, custom_problems = clean_values(
            custom_fields.list_fields(engine), fields["custom_fields"] or {}
        )
        problems += custom_problems
    if problems:
        raise CandidateInvalid(problems)
    values = dict(cleaned.values)
    if "owner_id" in fields:
        values["owner_id"] = fields["owner_id"] or None
    for name in ("first_name", "last_name"):
        if name in values and not (values.get("first_name") or values.get("last_name")):
            raise CandidateInvalid([("first_name", "A name is required.")])
    with write_session(engine, actor=actor) as session:
        candidate = session.get(Candidate, candidate_id, with_for_update=True)
        if candidate is None:
            raise NotFound(
                "That candidate no longer exists; someone may have deleted or merged it."
            )
        if candidate.version != expected_version:
            editor = session.get(User, candidate.updated_by_id) if candidate.updated_by_id else None
            who = editor.display_name if editor else "someone"
            raise EditConflict(
                f"Not saved: this candidate was changed by {who} at "
                f"{candidate.updated_at:%Y-%m-%d %H:%M} UTC while you were editing. "
                "Your changes are kept below; review the new version and save again."
            )
        merged = {
            "email_normalized": values.get("email_normalized", candidate.email_normalized),
            "linkedin_normalized": values.get("linkedin_normalized", candidate.linkedin_normalized),
        }
        if not (merged["email_normalized"] or merged["linkedin_normalized"]):
            raise CandidateInvalid(
                [("email", "An email address or a LinkedIn profile URL is required.")]
            )
        existing = _existing_identity(session, values, exclude_id=candidate.id)
        if existing is not None:
            raise DuplicateCandidate(_duplicate_message(existing, values), existing.id)
        if values.get("consent_status") and values["consent_status"] != candidate.consent_status:
            if (
                _suppressed(session, merged["email_normalized"])
                and values["consent_status"] != "do_not_contact"
            ):
                raise ValidationError(
                    "This address is on the suppression list (unsubscribed, bounced or erased); "
                    "it stays do-not-contact."
                )
            values["consent_at"] = clock.now()
            values["consent_source"] = f"Changed by {actor.display_name}"
        if custom is not None:
            # Keep values of fields an admin has since removed; replace the rest.
            merged_custom = {**(candidate.custom_fields or {}), **custom}
            values["custom_fields"] = {k: v for k, v in merged_custom.items() if v is not None}
        changes: dict[str, list[Any]] = {}
        for name, value in values.items():
            old = getattr(candidate, name)
            if old != value:
                if not name.endswith("_normalized") and name not in {
                    "consent_at",
                    "consent_source",
                }:
                    changes[name] = [_shown(old), _shown(value)]
                setattr(candidate, name, value)
        for kind, items in (("skills", cleaned.skills), ("tags", cleaned.tags)):
            if kind not in fields:
                continue
            old_items = (
                sorted(candidate.skills)
                if kind == "skills"
                else sorted(t.tag for t in candidate.tags)
            )
            if old_items != sorted(items):
                changes[kind] = [old_items, sorted(items)]
                _set_list(session, candidate, kind, items)
        if not changes:
            return get_candidate(engine, candidate_id) or candidate
        candidate.updated_by_id = actor.id
        candidate.updated_at = clock.now()  # also bumps version (version_id_col)
        labels = ", ".join(name.replace("_", " ") for name in changes)
        summary = f"{actor.display_name} changed {labels}"
        activities.add_one(session, actor, candidate.id, "edit", summary, {"changes": changes})
        audit.record_about(
            session, actor, "candidate.update", candidate.id, {"fields": sorted(changes)}
        )
    return get_candidate(engine, candidate_id)


EVENT_LABELS = {
    "open": "Opened",
    "click": "Clicked a link in",
    "reply": "Replied to",
    "unsubscribe": "Unsubscribed from",
    "bounce": "Bounced",
    "complaint": "Marked as spam",
    "interested": "Interested in",
}


def timeline(engine: Engine, candidate_id: int, *, limit: int = 200) -> list[TimelineEntry]:
    """Everything that touched the person, newest first: activities and email events.

    An import writes a timeline row only for what the file said of a person it created
    (a note, a connection date); their plain "Imported from FILE" comes from the batch.
    """
    with read_session(engine) as session:
        actor_name = select(User.display_name).where(User.id == Activity.actor_id).scalar_subquery()
        rows = session.execute(
            select(
                Activity.occurred_at,
                Activity.kind,
                Activity.channel,
                Activity.summary,
                actor_name,
                Activity.details,
            )
            .where(Activity.candidate_id == candidate_id)
            .order_by(Activity.occurred_at.desc(), Activity.id.desc())
            .limit(limit)
        ).all()
        events = session.execute(
            select(Event.occurred_at, Event.kind, Campaign.name, Event.is_machine)
            .outerjoin(Campaign, Campaign.id == Event.campaign_id)
            .where(Event.candidate_id == candidate_id)
            .order_by(Event.occurred_at.desc())
            .limit(limit)
        ).all()
        sent = session.execute(
            select(OutboxMessage.sent_at, OutboxMessage.subject, Campaign.name)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .where(OutboxMessage.candidate_id == candidate_id, OutboxMessage.status == "sent")
            .order_by(OutboxMessage.sent_at.desc())
            .limit(limit)
        ).all()
        imported = session.execute(
            select(ImportBatch.id, ImportBatch.created_at, ImportBatch.filename, User.display_name)
            .join(Candidate, Candidate.import_batch_id == ImportBatch.id)
            .outerjoin(User, User.id == ImportBatch.created_by_id)
            .where(Candidate.id == candidate_id)
        ).first()
    entries = [
        TimelineEntry(at, kind, channel, summary, actor)
        for at, kind, channel, summary, actor, _details in rows
    ]
    if imported is not None and not any(
        kind == "import" and isinstance(details, dict) and details.get("batch_id") == imported.id
        for _at, kind, _channel, _summary, _actor, details in rows
    ):
        entries.append(
            TimelineEntry(
                imported.created_at,
                "import",
                None,
                f"Imported from {imported.filename}",
                imported.display_name,
            )
        )
    entries += [
        TimelineEntry(
            at,
            f"email_{kind}",
            "email",
            f"{EVENT_LABELS.get(kind, kind)} “{campaign or 'an email'}”"
            + (" (automatic open by a mail client or scanner)" if machine else ""),
            None,
        )
        for at, kind, campaign, machine in events
    ]
    entries += [
        TimelineEntry(at, "email_sent", "email", f"Sent “{subject}” ({campaign})", None)
        for at, subject, campaign in sent
        if at is not None
    ]
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def pools_of(engine: Engine, candidate_id: int) -> list[tuple[str, str | None]]:
    """The static pools the person is in, with their stage there."""
    with read_session(engine) as session:
        return [
            (name, stage)
            for name, stage in session.execute(
                select(Pool.name, PoolMember.stage)
                .join(PoolMember, PoolMember.pool_id == Pool.id)
                .where(PoolMember.candidate_id == candidate_id)
                .order_by(Pool.name)
            )
        ]


# --- bulk actions ------------------------------------------------------------------------

MAX_BULK = 10_000


def selected_ids(candidate_ids: Iterable[int]) -> list[int]:
    """The people selected for a bulk action, each once, in order; one sentence if there
    are none or more than MAX_BULK."""
    ids = sorted({int(cid) for cid in candidate_ids})
    if not ids:
        raise ValidationError("Select at least one candidate first.")
    if len(ids) > MAX_BULK:
        raise ValidationError(f"Select at most {MAX_BULK:,} candidates at a time.")
    return ids


def _check_bulk(engine: Engine, actor: User, candidate_ids: Sequence[int]) -> list[int]:
    require_writer(engine, actor)
    return selected_ids(candidate_ids)


def bulk_tag(engine: Engine, *, actor: User, candidate_ids: Sequence[int], tags: str) -> int:
    """Add tags to everyone selected; returns how many people got a new tag."""
    ids = _check_bulk(engine, actor, candidate_ids)
    items = split_list(tags)
    if not items:
        raise ValidationError("Type at least one tag.")
    with write_session(engine) as session:
        have = set(
            session.execute(
                select(CandidateTag.candidate_id, CandidateTag.tag).where(
                    CandidateTag.candidate_id.in_(ids), CandidateTag.tag.in_(items)
                )
            ).all()
        )
        present = set(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))
        rows = [
            {"candidate_id": cid, "tag": tag}
            for cid in ids
            if cid in present
            for tag in items
            if (cid, tag) not in have
        ]
        if rows:
            session.execute(insert(CandidateTag), rows)
        touched = {row["candidate_id"] for row in rows}
        activities.record(
            session,
            actor=actor,
            candidate_ids=touched,
            kind="tags",
            summary=f"Tagged {', '.join(items)}",
        )
        audit.record_many(session, actor, "candidate.bulk_tag", len(touched), tags=items)
        return len(touched)


def bulk_add_to_pool(
    engine: Engine, *, actor: User, candidate_ids: Sequence[int], pool_id: int
) -> int:
    """Add everyone selected to a hand-kept (static) pool; returns how many were new."""
    ids = _check_bulk(engine, actor, candidate_ids)
    with write_session(engine) as session:
        pool = pools.static_pool(session, pool_id)
        present = list(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))
        added = pools.add_members(session, pool, present, actor)
        pools.record_change(
            session, actor=actor, action="pool.add_members", pool_id=pool_id, count=added
        )
        return added


def bulk_assign_owner(
    engine: Engine, *, actor: User, candidate_ids: Sequence[int], owner_id: int
) -> int:
    """Make an active user the owner of everyone selected; returns how many people changed."""
    ids = _check_bulk(engine, actor, candidate_ids)
    with write_session(engine) as session:
        owner = session.get(User, owner_id)
        if owner is None or not owner.active:
            raise ValidationError("Choose an active user as the owner.")
        # Core update bumps version explicitly: an owner change is an edit.
        result = session.execute(
            update(Candidate)
            .where(Candidate.id.in_(ids))
            .values(
                owner_id=owner_id,
                updated_by_id=actor.id,
                updated_at=clock.now(),
                version=Candidate.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        activities.record(
            session,
            actor=actor,
            candidate_ids=set(ids),
            kind="edit",
            summary=f"Owner set to {owner.display_name}",
        )
        audit.record_many(
            session, actor, "candidate.bulk_owner", result.rowcount, owner=owner.username
        )
        return result.rowcount


def delete_candidates(engine: Engine, *, actor: User, candidate_ids: Sequence[int]) -> int:
    """Delete people (timeline, skills, tags and pool places go with them)."""
    ids = _check_bulk(engine, actor, candidate_ids)
    with write_session(engine) as session:
        result = session.execute(
            delete(Candidate)
            .where(Candidate.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        audit.record_many(session, actor, "candidate.delete", result.rowcount, ids=ids[:100])
        return result.rowcount
