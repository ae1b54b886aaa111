"""Privacy: consent, access (export everything held about a person), erasure, retention
review and the audit log's admin view.

Erasure removes the person and every piece of personal text, but keeps what the reports
count, detached and anonymous: sent messages, events, enrollments and applications stay
(without candidate id, address, subject, body, reply text or user agent), so crm.metrics
and the campaign reports give the same figures after it. The address goes on the
suppression list as a hash (reason "erasure"), so an import that brings the person back
creates a do-not-contact record.

Retention review lists people with no reply, click or touch for a period; "keep with a
reason" is remembered as a timeline entry (kind "retention_keep"), which takes the person
off the list until the period has passed again.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from crm import activities, audit, candidates, clock, pools, touches
from crm.db import read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.exporter import escape_cell
from crm.identity import address_hash, clean_text, normalize_email
from crm.models import (
    CONSENT_STATUSES,
    Activity,
    Application,
    AuditLog,
    Campaign,
    CampaignRecipient,
    CampaignStep,
    Candidate,
    CandidateTag,
    CustomField,
    DuplicateDismissal,
    Enrollment,
    Event,
    ImportBatch,
    ImportChange,
    Job,
    Link,
    OutboxMessage,
    Pool,
    PoolMember,
    Suppression,
    User,
)
from crm.permissions import require_admin, require_writer

ERASURE_REASON = "erasure"
KEEP_KIND = "retention_keep"
HUMAN_EVENT_KINDS = ("reply", "click", "interested")
# Event detail keys that say nothing about the person; everything else goes on erasure
# (a reply's subject and Message-ID, a bounce's reason, which may quote the address).
ANONYMOUS_EVENT_DETAIL = ("source", "answer", "hard", "how")
CONSENT_LABELS = {
    "consented": "Consented",
    "legitimate_interest": "Legitimate interest",
    "do_not_contact": "Do not contact",
}
MAX_BULK = candidates.MAX_BULK
MAX_PAGE = 1000
MAX_SOURCE = 120
MAX_NOTE = 2000
MAX_KEEP_REASON = 300
CSV_BATCH = 1000


def _missing() -> NotFound:
    return NotFound("That candidate no longer exists; someone may have erased or deleted it.")


def _jsonable(value: Any) -> Any:
    """Plain JSON values: timestamps and dates as ISO text, decimals as text."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(item) for item in value]
    return value


def _rows(session: Session, query: Select[Any]) -> list[dict[str, Any]]:
    return [_jsonable(dict(row._mapping)) for row in session.execute(query)]


def _check_ids(candidate_ids: Iterable[int]) -> list[int]:
    ids = sorted({int(cid) for cid in candidate_ids})
    if not ids:
        raise ValidationError("Select at least one candidate first.")
    if len(ids) > MAX_BULK:
        raise ValidationError(f"Select at most {MAX_BULK:,} candidates at a time.")
    return ids


def _page(limit: int, offset: int) -> tuple[int, int]:
    if limit < 1 or limit > MAX_PAGE:
        raise ValidationError(f"A page holds 1 to {MAX_PAGE:,} rows.")
    if offset < 0:
        raise ValidationError("The page offset cannot be negative.")
    return limit, offset


def _aware(moment: dt.datetime | None) -> dt.datetime:
    if moment is None:
        return clock.now()
    if moment.tzinfo is None:
        raise ValidationError("Give the time with its time zone.")
    return moment


# --- finding a person -------------------------------------------------------------------


def find_by_email(engine: Engine, email: str) -> int | None:
    """The id of the person with this address (however it is written), or None."""
    normalized = normalize_email(email)
    if normalized is None:
        raise ValidationError("Type the person's email address.")
    with read_session(engine) as session:
        return session.scalar(
            select(Candidate.id).where(Candidate.email_normalized == normalized[1])
        )


# --- access: everything held about one person -------------------------------------------

_CANDIDATE_FIELDS = (
    "id",
    "first_name",
    "last_name",
    "email",
    "linkedin_url",
    "phone",
    "location",
    "country",
    "remote",
    "title",
    "company",
    "role_family",
    "years_experience",
    "source",
    "consent_status",
    "consent_at",
    "consent_source",
    "consent_note",
    "last_contacted_at",
    "last_contact_channel",
    "last_engaged_at",
    "unsubscribed_at",
    "follow_up_on",
    "follow_up_note",
    "created_at",
    "updated_at",
)


def _collect(session: Session, candidate: Candidate) -> dict[str, Any]:
    cid = candidate.id
    fields = {name: _jsonable(getattr(candidate, name)) for name in _CANDIDATE_FIELDS}
    names = dict(session.execute(select(User.id, User.display_name)).all())
    fields["owner"] = names.get(candidate.owner_id) if candidate.owner_id else None
    fields["last_contacted_by"] = (
        names.get(candidate.last_contacted_by_id) if candidate.last_contacted_by_id else None
    )
    labels = dict(session.execute(select(CustomField.key, CustomField.label)).all())
    custom = [
        {"key": key, "label": labels.get(key, key), "value": _jsonable(value)}
        for key, value in sorted((candidate.custom_fields or {}).items())
    ]
    tags = sorted(session.scalars(select(CandidateTag.tag).where(CandidateTag.candidate_id == cid)))
    actor = select(User.display_name).where(User.id == Activity.actor_id).scalar_subquery()
    activity_rows = _rows(
        session,
        select(
            Activity.occurred_at,
            Activity.kind,
            Activity.channel,
            Activity.summary,
            actor.label("by"),
            Activity.details,
        )
        .where(Activity.candidate_id == cid)
        .order_by(Activity.occurred_at, Activity.id),
    )
    messages = _rows(
        session,
        select(
            OutboxMessage.id,
            Campaign.name.label("campaign"),
            CampaignStep.position.label("step"),
            OutboxMessage.status,
            OutboxMessage.to_address,
            OutboxMessage.subject,
            OutboxMessage.body_text,
            OutboxMessage.body_html,
            OutboxMessage.due_at,
            OutboxMessage.sent_at,
            OutboxMessage.skip_reason,
        )
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .where(OutboxMessage.candidate_id == cid)
        .order_by(OutboxMessage.created_at, OutboxMessage.id),
    )
    events = _rows(
        session,
        select(
            Event.occurred_at,
            Event.kind,
            Campaign.name.label("campaign"),
            Event.outbox_message_id.label("message_id"),
            Link.url.label("link"),
            Event.is_machine,
            Event.user_agent,
            Event.detail,
        )
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .outerjoin(Link, Link.id == Event.link_id)
        .where(Event.candidate_id == cid)
        .order_by(Event.occurred_at, Event.id),
    )
    enrollments = _rows(
        session,
        select(
            Campaign.name.label("campaign"),
            Enrollment.status,
            Enrollment.enrolled_at,
            Enrollment.stopped_reason,
        )
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(Enrollment.candidate_id == cid)
        .order_by(Enrollment.enrolled_at, Enrollment.id),
    )
    hand_picked = sorted(
        session.scalars(
            select(Campaign.name)
            .join(CampaignRecipient, CampaignRecipient.campaign_id == Campaign.id)
            .where(CampaignRecipient.candidate_id == cid)
        )
    )
    pool_rows = _rows(
        session,
        select(Pool.name.label("pool"), Pool.kind, PoolMember.stage, PoolMember.added_at)
        .join(PoolMember, PoolMember.pool_id == Pool.id)
        .where(PoolMember.candidate_id == cid)
        .order_by(Pool.name),
    )
    applications = _rows(
        session,
        select(
            Job.title.label("job"),
            Application.external_id,
            Application.source,
            Application.source_detail,
            Application.stage,
            Application.sourced_at,
            Application.applied_at,
            Application.screen_at,
            Application.interview_at,
            Application.offer_at,
            Application.offer_accepted,
            Application.offer_decided_at,
            Application.hired_at,
            Application.rejected_at,
            Application.withdrew_at,
        )
        .join(Job, Job.id == Application.job_id)
        .where(Application.candidate_id == cid)
        .order_by(Application.created_at, Application.id),
    )
    imports = _rows(
        session,
        select(
            ImportBatch.id.label("batch"),
            ImportBatch.filename,
            ImportBatch.created_at,
            ImportChange.action,
            ImportChange.previous,
        )
        .join(ImportBatch, ImportBatch.id == ImportChange.batch_id)
        .where(ImportChange.candidate_id == cid)
        .order_by(ImportBatch.created_at, ImportChange.id),
    )
    if candidate.import_batch_id is not None and not any(
        row["batch"] == candidate.import_batch_id for row in imports
    ):
        batch = session.get(ImportBatch, candidate.import_batch_id)
        if batch is not None:
            imports.insert(
                0,
                {
                    "batch": batch.id,
                    "filename": batch.filename,
                    "created_at": _jsonable(batch.created_at),
                    "action": "created",
                    "previous": None,
                },
            )
    suppressed = bool(candidate.email_normalized) and (
        session.scalar(
            select(Suppression.id).where(
                Suppression.address_hash == address_hash(candidate.email_normalized or "")
            )
        )
        is not None
    )
    return {
        "candidate": fields,
        "custom_fields": custom,
        "tags": tags,
        "skills": list(candidate.skills or []),
        "activities": activity_rows,
        "messages": messages,
        "events": events,
        "enrollments": enrollments,
        "campaign_recipient_of": hand_picked,
        "pools": pool_rows,
        "applications": applications,
        "imports": imports,
        "suppressed": suppressed,
    }


def _gather(engine: Engine, actor: User, candidate_id: int, form: str) -> dict[str, Any]:
    require_writer(engine, actor)
    with read_session(engine) as session:
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            raise _missing()
        data = _collect(session, candidate)
    data["timeline"] = [
        {
            "at": _jsonable(entry.at),
            "kind": entry.kind,
            "channel": entry.channel,
            "summary": entry.summary,
            "by": entry.actor,
        }
        for entry in candidates.timeline(engine, candidate_id, limit=1_000_000)
    ]
    with write_session(engine, actor=actor) as session:
        audit.record(
            session,
            actor=actor,
            action="candidate.export_data",
            entity="candidate",
            entity_id=candidate_id,
            detail={"format": form},
        )
    return {
        "exported_at": _jsonable(clock.now()),
        "exported_by": actor.display_name,
        **data,
    }


def export_data(engine: Engine, *, actor: User, candidate_id: int) -> dict[str, Any]:
    """Everything held about one person, as one JSON-able document (admins, recruiters)."""
    return _gather(engine, actor, candidate_id, "json")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return escape_cell(text)


def _flatten(document: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(section, item, field, value) rows of an export document."""
    for key in ("exported_at", "exported_by", "suppressed"):
        yield "export", "", key, document.get(key)
    for name, value in document["candidate"].items():
        yield "candidate", "", name, value
    for section, value in document.items():
        if section in {"exported_at", "exported_by", "suppressed", "candidate"}:
            continue
        for number, item in enumerate(value, start=1):
            if isinstance(item, dict):
                for field, cell in item.items():
                    yield section, str(number), field, cell
            else:
                yield section, str(number), "value", item


def export_data_json(engine: Engine, *, actor: User, candidate_id: int) -> bytes:
    """export_data as the UTF-8 JSON document the pages and `crm candidate export-data` give."""
    data = export_data(engine, actor=actor, candidate_id=candidate_id)
    return json.dumps(data, indent=2, ensure_ascii=False, default=str).encode("utf-8")


def export_data_csv(engine: Engine, *, actor: User, candidate_id: int) -> bytes:
    """The same export as (section, item, field, value) rows: UTF-8 with a BOM, every cell
    formula-escaped."""
    document = _gather(engine, actor, candidate_id, "csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("section", "item", "field", "value"))
    for row in _flatten(document):
        writer.writerow([_cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# --- erasure ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    candidate_id: int
    messages_cancelled: int
    suppressed: bool


def _known_addresses(session: Session, candidate_id: int, current: str | None) -> set[str]:
    """Every address the person is known by: the current one, and older ones an edit or
    an import replaced (so an old address does not bring them back either)."""
    found = {current} if current else set()
    older: list[Any] = []
    for previous in session.scalars(
        select(ImportChange.previous).where(
            ImportChange.candidate_id == candidate_id, ImportChange.previous.is_not(None)
        )
    ):
        fields = previous.get("fields") if isinstance(previous, dict) else None
        if isinstance(fields, dict):
            older += [fields.get("email_normalized"), fields.get("email")]
    for details in session.scalars(
        select(Activity.details).where(
            Activity.candidate_id == candidate_id,
            Activity.kind == "edit",
            Activity.details.is_not(None),
        )
    ):
        change = details.get("changes", {}).get("email") if isinstance(details, dict) else None
        if isinstance(change, list):
            older += change
    for address in older:
        if not isinstance(address, str) or not address.strip():
            continue
        try:
            normalized = normalize_email(address)
        except ValidationError:
            continue
        if normalized is not None:
            found.add(normalized[1])
    return found


def _suppress(session: Session, email_key: str) -> None:
    digest = address_hash(email_key)
    if session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)) is None:
        session.add(Suppression(address_hash=digest, reason=ERASURE_REASON))
        session.flush()


def _erase(session: Session, actor: User, candidate_id: int) -> Erasure:
    from crm.outbox import stop_enrollment

    row = session.execute(
        select(Candidate.id, Candidate.email_normalized)
        .where(Candidate.id == candidate_id)
        .with_for_update()
    ).first()
    if row is None:
        raise _missing()
    addresses = _known_addresses(session, candidate_id, row.email_normalized)

    # Stop whatever was still to go out, then cancel any stray queued message.
    cancelled = sum(
        stop_enrollment(session, enrollment_id, "person erased")
        for enrollment_id in session.scalars(
            select(Enrollment.id).where(
                Enrollment.candidate_id == candidate_id, Enrollment.status == "active"
            )
        ).all()
    )
    cancelled += session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.candidate_id == candidate_id,
            OutboxMessage.status.in_(("queued", "waiting")),
        )
        .values(status="cancelled", skip_reason="person erased")
        .execution_options(synchronize_session=False)
    ).rowcount

    # Messages stay (the campaign's counts), without who they went to or what they said.
    message_ids = select(OutboxMessage.id).where(OutboxMessage.candidate_id == candidate_id)
    link_ids = select(Link.id).where(Link.outbox_message_id.in_(message_ids))
    session.execute(
        update(Event)
        .where(Event.link_id.in_(link_ids))
        .values(link_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Link)
        .where(Link.outbox_message_id.in_(message_ids))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.candidate_id == candidate_id)
        .values(
            candidate_id=None,
            to_address=None,
            subject=None,
            body_text=None,
            body_html=None,
            smtp_reply=None,
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )

    # Events stay (opens, clicks, replies are counted), without anything personal.
    for event_id, detail in session.execute(
        select(Event.id, Event.detail).where(
            Event.candidate_id == candidate_id, Event.detail.is_not(None)
        )
    ).all():
        kept = (
            {k: v for k, v in detail.items() if k in ANONYMOUS_EVENT_DETAIL}
            if isinstance(detail, dict)
            else {}
        )
        session.execute(
            update(Event)
            .where(Event.id == event_id)
            .values(detail=kept or None)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(Event)
        .where(Event.candidate_id == candidate_id)
        .values(candidate_id=None, user_agent=None)
        .execution_options(synchronize_session=False)
    )
    for model in (Enrollment, Application):
        session.execute(
            update(model)
            .where(model.candidate_id == candidate_id)
            .values(candidate_id=None)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(ImportChange)
        .where(ImportChange.candidate_id == candidate_id)
        .values(candidate_id=None, previous=None)
        .execution_options(synchronize_session=False)
    )

    # The person, their timeline, tags and places in pools and audiences.
    for model, column in (
        (Activity, Activity.candidate_id),
        (CandidateTag, CandidateTag.candidate_id),
        (PoolMember, PoolMember.candidate_id),
        (CampaignRecipient, CampaignRecipient.candidate_id),
        (DuplicateDismissal, DuplicateDismissal.candidate_a_id),
        (DuplicateDismissal, DuplicateDismissal.candidate_b_id),
    ):
        session.execute(
            delete(model).where(column == candidate_id).execution_options(synchronize_session=False)
        )
    session.execute(
        delete(Candidate)
        .where(Candidate.id == candidate_id)
        .execution_options(synchronize_session=False)
    )
    for key in sorted(addresses):
        _suppress(session, key)
    audit.record(
        session,
        actor=actor,
        action="candidate.erase",
        entity="candidate",
        entity_id=candidate_id,
        detail={"messages_cancelled": cancelled, "addresses_suppressed": len(addresses)},
    )
    return Erasure(candidate_id, cancelled, bool(addresses))


def erase(engine: Engine, *, actor: User, candidate_id: int) -> Erasure:
    """Erase one person in one transaction (admins, recruiters): see the module docstring.

    Every address the person was known by is suppressed; one already on the list (an
    unsubscribe, a bounce) keeps its first reason. `suppressed` is False only for someone
    with no address at all (LinkedIn only).
    """
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        return _erase(session, actor, candidate_id)


def erase_many(engine: Engine, *, actor: User, candidate_ids: Sequence[int]) -> int:
    """Erase each person selected (one transaction each); returns how many were erased.

    People already gone are passed over.
    """
    require_writer(engine, actor)
    erased = 0
    for candidate_id in _check_ids(candidate_ids):
        with write_session(engine, actor=actor) as session:
            try:
                _erase(session, actor, candidate_id)
            except NotFound:
                continue
            erased += 1
    return erased


# --- consent ----------------------------------------------------------------------------


def set_consent(
    engine: Engine,
    *,
    actor: User,
    candidate_id: int,
    status: str,
    source: str | None,
    note: str | None,
    at: dt.datetime | None = None,
) -> None:
    """Record the person's lawful basis (consented, legitimate interest, do not contact)
    with its date, where it came from and a note."""
    require_writer(engine, actor)
    if status not in CONSENT_STATUSES:
        raise ValidationError(
            f"The consent status must be one of {', '.join(CONSENT_STATUSES)}, not {status!r}."
        )
    source = clean_text(source) or None
    note = clean_text(note) or None
    if source is not None and len(source) > MAX_SOURCE:
        raise ValidationError(f"The consent source is longer than {MAX_SOURCE} characters.")
    if note is not None and len(note) > MAX_NOTE:
        raise ValidationError(f"The consent note is longer than {MAX_NOTE:,} characters.")
    now = clock.now()
    at = _aware(at) if at is not None else now
    if at > now + dt.timedelta(minutes=5):
        raise ValidationError("The consent date cannot be in the future.")
    with write_session(engine, actor=actor) as session:
        candidate = session.get(Candidate, candidate_id, with_for_update=True)
        if candidate is None:
            raise _missing()
        if status != "do_not_contact" and candidate.email_normalized:
            digest = address_hash(candidate.email_normalized)
            if session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)):
                raise ValidationError(
                    "This address is on the suppression list (unsubscribed, bounced or erased); "
                    "it stays do-not-contact."
                )
        before = candidate.consent_status
        candidate.consent_status = status
        candidate.consent_at = at
        candidate.consent_source = source
        candidate.consent_note = note
        candidate.updated_by_id = actor.id
        candidate.updated_at = now  # an edit: bumps the version too
        label = CONSENT_LABELS[status]
        session.add(
            Activity(
                candidate_id=candidate_id,
                kind="consent",
                actor_id=actor.id,
                occurred_at=now,
                summary=f"{actor.display_name} recorded: {label}"
                + (f" ({source})" if source else ""),
                details={"changes": {"consent_status": [before, status]}},
            )
        )
        audit.record(
            session,
            actor=actor,
            action="candidate.consent",
            entity="candidate",
            entity_id=candidate_id,
            detail={"status": status, "before": before},
        )


def _consent_since() -> ColumnElement[dt.datetime]:
    return func.coalesce(Candidate.consent_at, Candidate.created_at)


def consent_due(
    engine: Engine,
    *,
    older_than_days: int = 365,
    limit: int = 100,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """People we may contact whose consent (or, without a date, their record) is older than
    the period, oldest first: (one page, how many in all)."""
    if older_than_days < 1:
        raise ValidationError("The consent period must be at least one day.")
    limit, offset = _page(limit, offset)
    cutoff = _aware(now) - dt.timedelta(days=older_than_days)
    since = _consent_since()
    conditions = (
        Candidate.consent_status.in_(("consented", "legitimate_interest")),
        Candidate.unsubscribed_at.is_(None),
        since < cutoff,
    )
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Candidate).where(*conditions))
        rows = [
            dict(row._mapping)
            for row in session.execute(
                select(
                    Candidate.id,
                    Candidate.first_name,
                    Candidate.last_name,
                    Candidate.email,
                    Candidate.consent_status,
                    Candidate.consent_at,
                    Candidate.consent_source,
                    Candidate.created_at,
                )
                .where(*conditions)
                .order_by(since, Candidate.id)
                .limit(limit)
                .offset(offset)
            )
        ]
    for row in rows:
        row["since"] = row["consent_at"] or row["created_at"]
    return rows, total or 0


def start_consent_renewal(engine: Engine, *, actor: User, candidate_ids: Sequence[int]) -> int:
    """Put the people selected (those we may still contact) on a new static pool named
    "Consent renewal YYYY-MM-DD", for a campaign asking them to renew; returns its id."""
    require_writer(engine, actor)
    ids = _check_ids(candidate_ids)
    now = clock.now()
    with write_session(engine, actor=actor) as session:
        reachable = list(
            session.scalars(
                select(Candidate.id).where(
                    Candidate.id.in_(ids),
                    Candidate.consent_status != "do_not_contact",
                    Candidate.unsubscribed_at.is_(None),
                )
            )
        )
        if not reachable:
            raise ValidationError(
                "None of the people selected can be asked to renew consent "
                "(they are gone, unsubscribed or do not contact)."
            )
        base = f"Consent renewal {now:%Y-%m-%d}"
        taken = set(session.scalars(select(Pool.name).where(Pool.name.like(f"{base}%"))))
        name = base
        number = 2
        while name in taken:
            name = f"{base} ({number})"
            number += 1
        pool = Pool(
            name=name,
            kind="static",
            owner_id=actor.id,
            stages=[],
            description=f"People asked to renew their consent, started by {actor.display_name}.",
        )
        session.add(pool)
        session.flush()
        added = pools.add_members(session, pool, reachable, actor)
        audit.record(
            session,
            actor=actor,
            action="consent.renewal",
            entity="pool",
            entity_id=pool.id,
            detail={"name": name, "count": added, "skipped": len(ids) - added},
        )
        return pool.id


# --- retention --------------------------------------------------------------------------


def _retention_conditions(cutoff: dt.datetime) -> list[ColumnElement[bool]]:
    human = exists().where(
        Event.candidate_id == Candidate.id,
        Event.kind.in_(HUMAN_EVENT_KINDS),
        Event.is_machine.is_(False),
        Event.occurred_at >= cutoff,
    )
    kept = exists().where(
        Activity.candidate_id == Candidate.id,
        Activity.kind == KEEP_KIND,
        Activity.occurred_at >= cutoff,
    )
    in_pipeline = exists().where(
        Application.candidate_id == Candidate.id,
        or_(Application.created_at >= cutoff, Application.updated_at >= cutoff),
    )
    return [
        Candidate.created_at < cutoff,
        or_(Candidate.last_contacted_at.is_(None), Candidate.last_contacted_at < cutoff),
        or_(Candidate.last_engaged_at.is_(None), Candidate.last_engaged_at < cutoff),
        ~human,
        ~kept,
        ~in_pipeline,
    ]


def retention_due(
    engine: Engine,
    *,
    after_days: int = 730,
    limit: int = 100,
    offset: int = 0,
    now: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """People with no reply, click, touch or application for after_days (and on file that
    long), not kept with a reason within the period; longest quiet first: (page, total)."""
    if after_days < 1:
        raise ValidationError("The retention period must be at least one day.")
    limit, offset = _page(limit, offset)
    cutoff = _aware(now) - dt.timedelta(days=after_days)
    conditions = _retention_conditions(cutoff)
    # Longest quiet first by the person's last touch (crm.touches), never touched by age.
    last_touch = touches.person_last_touch_sql()
    quiet_since = func.coalesce(last_touch, Candidate.created_at)
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Candidate).where(*conditions))
        rows = [
            dict(row._mapping)
            for row in session.execute(
                select(
                    Candidate.id,
                    Candidate.first_name,
                    Candidate.last_name,
                    Candidate.email,
                    Candidate.consent_status,
                    Candidate.created_at,
                    Candidate.last_contacted_at,
                    Candidate.last_engaged_at,
                    last_touch.label("last_touch"),
                )
                .where(*conditions)
                .order_by(quiet_since, Candidate.id)
                .limit(limit)
                .offset(offset)
            )
        ]
    return rows, total or 0


def keep(engine: Engine, *, actor: User, candidate_ids: Sequence[int], reason: str) -> int:
    """Keep people on review with a reason: they leave the retention list until the period
    passes again. Returns how many were kept."""
    require_writer(engine, actor)
    ids = _check_ids(candidate_ids)
    reason = " ".join(clean_text(reason).split())
    if not reason:
        raise ValidationError("Give a reason for keeping them.")
    if len(reason) > MAX_KEEP_REASON:
        raise ValidationError(f"The reason is longer than {MAX_KEEP_REASON} characters.")
    with write_session(engine, actor=actor) as session:
        present = list(session.scalars(select(Candidate.id).where(Candidate.id.in_(ids))))
        activities.record(
            session,
            actor=actor,
            candidate_ids=present,
            kind=KEEP_KIND,
            summary=f"Kept after retention review: {reason}",
            details={"reason": reason},
        )
        audit.record(
            session,
            actor=actor,
            action="retention.keep",
            detail={"count": len(present), "reason": reason},
        )
        return len(present)


# --- the audit log ----------------------------------------------------------------------

AUDIT_COLUMNS = ("at", "username", "action", "entity", "entity_id", "detail")


def _moment(value: dt.datetime | dt.date | None, *, end: bool) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _aware(value)
    day = value + dt.timedelta(days=1) if end else value
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _audit_conditions(
    action: str | None,
    username: str | None,
    since: dt.datetime | dt.date | None,
    until: dt.datetime | dt.date | None,
) -> list[ColumnElement[bool]]:
    """action matches itself and its sub-actions ("candidate" finds "candidate.erase");
    a date for until takes in that whole day."""
    found: list[ColumnElement[bool]] = []
    action = (action or "").strip()
    if action:
        found.append(
            or_(
                AuditLog.action == action, AuditLog.action.startswith(action + ".", autoescape=True)
            )
        )
    username = (username or "").strip().lower()
    if username:
        found.append(AuditLog.username == username)
    low = _moment(since, end=False)
    high = _moment(until, end=True)
    if low is not None and high is not None and high < low:
        raise ValidationError("The period ends before it starts.")
    if low is not None:
        found.append(AuditLog.at >= low)
    if high is not None:
        # A moment is the last one included; a date takes in its whole day.
        found.append(AuditLog.at <= high if isinstance(until, dt.datetime) else AuditLog.at < high)
    return found


_AUDIT_SELECT = select(
    AuditLog.id,
    AuditLog.at,
    AuditLog.username,
    AuditLog.action,
    AuditLog.entity,
    AuditLog.entity_id,
    AuditLog.detail,
)


def audit_entries(
    engine: Engine,
    *,
    actor: User,
    action: str | None = None,
    username: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the audit log, newest first, and how many entries match (admins only)."""
    require_admin(engine, actor)
    limit, offset = _page(limit, offset)
    conditions = _audit_conditions(action, username, since, until)
    with read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(AuditLog).where(*conditions))
        rows = [
            dict(row._mapping)
            for row in session.execute(
                _AUDIT_SELECT.where(*conditions)
                .order_by(AuditLog.at.desc(), AuditLog.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ]
    return rows, total or 0


def audit_actions(engine: Engine, *, actor: User) -> list[str]:
    """The actions in the log, for the admin view's filter."""
    require_admin(engine, actor)
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(AuditLog.action).group_by(AuditLog.action).order_by(AuditLog.action)
            )
        )


def audit_csv(
    engine: Engine,
    *,
    actor: User,
    action: str | None = None,
    username: str | None = None,
    since: dt.datetime | dt.date | None = None,
    until: dt.datetime | dt.date | None = None,
) -> bytes:
    """The matching audit entries as CSV (newest first, UTF-8 with a BOM, formula-escaped);
    admins only, and the export is itself audited."""
    require_admin(engine, actor)
    conditions = _audit_conditions(action, username, since, until)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(AUDIT_COLUMNS)
    written = 0
    with read_session(engine) as session:
        result = session.execute(
            _AUDIT_SELECT.where(*conditions)
            .order_by(AuditLog.at.desc(), AuditLog.id.desc())
            .execution_options(yield_per=CSV_BATCH)
        )
        for row in result:
            writer.writerow(
                [
                    _cell(row.at.isoformat(timespec="seconds")),
                    _cell(row.username),
                    _cell(row.action),
                    _cell(row.entity),
                    _cell(row.entity_id),
                    _cell(_jsonable(row.detail)),
                ]
            )
            written += 1
    with write_session(engine, actor=actor, need="admin") as session:
        audit.record(
            session,
            actor=actor,
            action="audit.export",
            detail={
                "rows": written,
                "action": (action or "").strip() or None,
                "username": (username or "").strip().lower() or None,
                "since": _jsonable(since),
                "until": _jsonable(until),
            },
        )
    return buffer.getvalue().encode("utf-8")


__all__ = [
    "Erasure",
    "audit_actions",
    "audit_csv",
    "audit_entries",
    "consent_due",
    "erase",
    "erase_many",
    "export_data",
    "export_data_csv",
    "find_by_email",
    "keep",
    "retention_due",
    "set_consent",
    "start_consent_renewal",
]
