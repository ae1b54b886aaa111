"""A person's privacy rights: access (everything held about them, as JSON or CSV),
erasure, and the lawful basis we hold their data on (consent).

Erasure removes the person and every piece of personal text, but keeps what the reports
count, detached and anonymous: sent messages, events, enrollments and applications stay
(without candidate id, address, subject, body, reply text or user agent), so crm.metrics
and the campaign reports give the same figures after it. The address goes on the
suppression list as a hash (reason "erasure"), so an import that brings the person back
creates a do-not-contact record.

The periodic reviews (consent renewal, retention) are crm.privacy_review; the audit
log's admin view is crm.audit_log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    Select,
    delete,
    select,
    update,
)
from sqlalchemy.orm import Session

from crm import activities, audit, candidates, clock, field_registry
from crm.candidates import selected_ids
from crm.db import read_session, write_session
from crm.enrollments import stop_everything
from crm.errors import NotFound, ValidationError
from crm.export_values import csv_cell, jsonable
from crm.field_registry import CONSENT_LABELS
from crm.identity import address_hash, clean_text, email_key, normalize_email
from crm.models import (
    CONSENT_STATUSES,
    Activity,
    Application,
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
from crm.paging import moment_or_now
from crm.permissions import require_writer

ERASURE_REASON = "erasure"
# Event detail keys that say nothing about the person; everything else goes on erasure
# (a reply's subject and Message-ID, a bounce's reason, which may quote the address).
ANONYMOUS_EVENT_DETAIL = ("source", "answer", "hard", "how")
MAX_SOURCE = 120
MAX_NOTE = 2000


def _missing() -> NotFound:
    return NotFound("That candidate no longer exists; someone may have erased or deleted it.")


def _rows(session: Session, query: Select[Any]) -> list[dict[str, Any]]:
    return [jsonable(dict(row._mapping)) for row in session.execute(query)]


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

_CANDIDATE_FIELDS = field_registry.names(field_registry.ACCESS)


def _columns(table: Any, names: str) -> list[Any]:
    """The table's columns named, space-separated, in that order."""
    return [getattr(table, name) for name in names.split()]


_ACTED_BY = select(User.display_name).where(User.id == Activity.actor_id).scalar_subquery()
# The lists of everything held about a person: each list's query, oldest first, and the
# column that names the person (the export adds "where it is them").
_PERSON_LISTS: dict[str, tuple[Select[Any], Any]] = {
    "activities": (
        select(*_columns(Activity, "occurred_at kind channel summary"), _ACTED_BY.label("by"))
        .add_columns(Activity.details)
        .order_by(Activity.occurred_at, Activity.id),
        Activity.candidate_id,
    ),
    "messages": (
        select(OutboxMessage.id, Campaign.name.label("campaign"))
        .add_columns(CampaignStep.position.label("step"))
        .add_columns(*_columns(OutboxMessage, "status to_address subject body_text body_html"))
        .add_columns(*_columns(OutboxMessage, "due_at sent_at skip_reason"))
        .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
        .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
        .order_by(OutboxMessage.created_at, OutboxMessage.id),
        OutboxMessage.candidate_id,
    ),
    "events": (
        select(Event.occurred_at, Event.kind, Campaign.name.label("campaign"))
        .add_columns(Event.outbox_message_id.label("message_id"), Link.url.label("link"))
        .add_columns(*_columns(Event, "is_machine user_agent detail"))
        .outerjoin(Campaign, Campaign.id == Event.campaign_id)
        .outerjoin(Link, Link.id == Event.link_id)
        .order_by(Event.occurred_at, Event.id),
        Event.candidate_id,
    ),
    "enrollments": (
        select(Campaign.name.label("campaign"))
        .add_columns(*_columns(Enrollment, "status enrolled_at stopped_reason"))
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .order_by(Enrollment.enrolled_at, Enrollment.id),
        Enrollment.candidate_id,
    ),
    "pools": (
        select(Pool.name.label("pool"), Pool.kind, PoolMember.stage, PoolMember.added_at)
        .join(PoolMember, PoolMember.pool_id == Pool.id)
        .order_by(Pool.name),
        PoolMember.candidate_id,
    ),
    "applications": (
        select(Job.title.label("job"))
        .add_columns(*_columns(Application, "external_id source source_detail stage"))
        .add_columns(*_columns(Application, "sourced_at applied_at screen_at interview_at"))
        .add_columns(*_columns(Application, "offer_at offer_accepted offer_decided_at"))
        .add_columns(*_columns(Application, "hired_at rejected_at withdrew_at"))
        .join(Job, Job.id == Application.job_id)
        .order_by(Application.created_at, Application.id),
        Application.candidate_id,
    ),
    "imports": (
        select(ImportBatch.id.label("batch"), ImportBatch.filename, ImportBatch.created_at)
        .add_columns(ImportChange.action, ImportChange.previous)
        .join(ImportBatch, ImportBatch.id == ImportChange.batch_id)
        .order_by(ImportBatch.created_at, ImportChange.id),
        ImportChange.candidate_id,
    ),
}


def _collect(session: Session, candidate: Candidate) -> dict[str, Any]:
    cid = candidate.id
    fields = {name: jsonable(getattr(candidate, name)) for name in _CANDIDATE_FIELDS}
    names = dict(session.execute(select(User.id, User.display_name)).all())
    fields["owner"] = names.get(candidate.owner_id) if candidate.owner_id else None
    fields["last_contacted_by"] = (
        names.get(candidate.last_contacted_by_id) if candidate.last_contacted_by_id else None
    )
    labels = dict(session.execute(select(CustomField.key, CustomField.label)).all())
    custom = [
        {"key": key, "label": labels.get(key, key), "value": jsonable(value)}
        for key, value in sorted((candidate.custom_fields or {}).items())
    ]
    tags = sorted(session.scalars(select(CandidateTag.tag).where(CandidateTag.candidate_id == cid)))
    lists = {
        name: _rows(session, query.where(person == cid))
        for name, (query, person) in _PERSON_LISTS.items()
    }
    hand_picked = sorted(
        session.scalars(
            select(Campaign.name)
            .join(CampaignRecipient, CampaignRecipient.campaign_id == Campaign.id)
            .where(CampaignRecipient.candidate_id == cid)
        )
    )
    imports = lists["imports"]
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
                    "created_at": jsonable(batch.created_at),
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
        "activities": lists["activities"],
        "messages": lists["messages"],
        "events": lists["events"],
        "enrollments": lists["enrollments"],
        "campaign_recipient_of": hand_picked,
        "pools": lists["pools"],
        "applications": lists["applications"],
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
            "at": jsonable(entry.at),
            "kind": entry.kind,
            "channel": entry.channel,
            "summary": entry.summary,
            "by": entry.actor,
        }
        for entry in candidates.timeline(engine, candidate_id, limit=1_000_000)
    ]
    with write_session(engine, actor=actor) as session:
        audit.record_about(session, actor, "candidate.export_data", candidate_id, {"format": form})
    return {
        "exported_at": jsonable(clock.now()),
        "exported_by": actor.display_name,
        **data,
    }


def export_data(engine: Engine, *, actor: User, candidate_id: int) -> dict[str, Any]:
    """Everything held about one person, as one JSON-able document (admins, recruiters)."""
    return _gather(engine, actor, candidate_id, "json")


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
        writer.writerow([csv_cell(value) for value in row])
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
        key = email_key(address)
        if key is not None:
            found.add(key)
    return found


def _suppress(session: Session, email_key: str) -> None:
    digest = address_hash(email_key)
    if session.scalar(select(Suppression.id).where(Suppression.address_hash == digest)) is None:
        session.add(Suppression(address_hash=digest, reason=ERASURE_REASON))
        session.flush()


def _erase(session: Session, actor: User, candidate_id: int) -> Erasure:
    row = session.execute(
        select(Candidate.id, Candidate.email_normalized)
        .where(Candidate.id == candidate_id)
        .with_for_update()
    ).first()
    if row is None:
        raise _missing()
    addresses = _known_addresses(session, candidate_id, row.email_normalized)

    # Stop whatever was still to go out, then cancel any stray queued message.
    cancelled = stop_everything(session, candidate_id, "person erased")
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
    audit.record_about(
        session,
        actor,
        "candidate.erase",
        candidate_id,
        {"messages_cancelled": cancelled, "addresses_suppressed": len(addresses)},
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
    for candidate_id in selected_ids(candidate_ids):
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
    at = moment_or_now(at) if at is not None else now
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
        summary = f"{actor.display_name} recorded: {label}" + (f" ({source})" if source else "")
        details = {"changes": {"consent_status": [before, status]}}
        activities.add_one(
            session, actor, candidate_id, "consent", summary, details, occurred_at=now
        )
        audit.record_about(
            session, actor, "candidate.consent", candidate_id, {"status": status, "before": before}
        )


__all__ = [
    "Erasure",
    "erase",
    "erase_many",
    "export_data",
    "export_data_csv",
    "export_data_json",
    "find_by_email",
    "set_consent",
]
