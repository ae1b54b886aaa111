"""Campaigns as written: drafts and their steps, TOML campaign files, saved templates.

Everything here happens before launch: a draft is checked whole (subjects, bodies and
their merge tags, delays, send windows, sender, audience) and saved in one transaction.
Launching and what follows live in crm.campaign_lifecycle; the message itself is
crm.composer's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from crm import audit, mailer, merge_tags, pools, send_window
from crm.composer import allowed_tags
from crm.db import get_existing, read_session, write_session
from crm.errors import InputUnusable, ValidationError
from crm.identity import clean_text, normalize_email
from crm.models import (
    Campaign,
    CampaignRecipient,
    CampaignStep,
    Candidate,
    EmailTemplate,
    Pool,
    User,
)
from crm.permissions import require_writer

# --- drafts ------------------------------------------------------------------------------

MAX_STEPS = 10
MAX_DELAY_DAYS = 365
MAX_BODY = 20_000
MAX_NAME = 160


@dataclass
class StepDraft:
    subject: str
    body: str
    delay_days: int = 0
    send_window: dict[str, Any] | None = None
    stop_on_reply: bool = True
    stop_on_click: bool = False
    stop_on_pipeline: bool = True


@dataclass
class CampaignDraft:
    name: str
    steps: list[StepDraft]
    audience_pool_id: int | None = None
    candidate_ids: list[int] = field(default_factory=list)
    sender_name: str | None = None
    sender_email: str | None = None


def _clean_single_line(value: str | None, *, what: str, limit: int) -> str:
    text = value or ""
    if "\n" in text or "\r" in text:
        raise ValidationError(f"{what} cannot contain a line break.")
    text = " ".join(clean_text(text).split())
    if len(text) > limit:
        raise ValidationError(f"{what} can be at most {limit} characters.")
    return text


def _check_step(step: StepDraft, number: int, allowed: Collection[str]) -> StepDraft:
    subject = _clean_single_line(step.subject, what=f"Step {number}'s subject", limit=300)
    if not subject:
        raise ValidationError(f"Step {number} needs a subject.")
    body = (step.body or "").replace("\r\n", "\n")
    if not body.strip():
        raise ValidationError(f"Step {number} needs a message.")
    if len(body) > MAX_BODY:
        raise ValidationError(f"Step {number}'s message can be at most {MAX_BODY:,} characters.")
    merge_tags.parse(subject, allowed=allowed, where=f"Step {number}'s subject")
    merge_tags.parse(body, allowed=allowed, where=f"Step {number}'s message")
    try:
        delay = int(step.delay_days)
    except (TypeError, ValueError):
        raise ValidationError(f"Step {number}'s delay must be a whole number of days.") from None
    if not 0 <= delay <= MAX_DELAY_DAYS:
        raise ValidationError(f"Step {number}'s delay must be between 0 and {MAX_DELAY_DAYS} days.")
    window = send_window.parse_window(step.send_window)
    return StepDraft(
        subject=subject,
        body=body,
        delay_days=delay,
        send_window=send_window.window_to_spec(window),
        stop_on_reply=bool(step.stop_on_reply),
        stop_on_click=bool(step.stop_on_click),
        stop_on_pipeline=bool(step.stop_on_pipeline),
    )


def _check_sender(name: str | None, email: str | None) -> tuple[str | None, str | None]:
    clean_name = _clean_single_line(name, what="The sender name", limit=120) or None
    if email in (None, ""):
        return clean_name, None
    if "\n" in email or "\r" in email:
        raise ValidationError("The sender address cannot contain a line break.")
    normalized = normalize_email(email)
    if normalized is None:
        raise ValidationError(f"The sender address {email.strip()!r} is not a valid email address.")
    return clean_name, normalized[0]


def save_campaign(
    engine: Engine, *, actor: User, draft: CampaignDraft, campaign_id: int | None = None
) -> int:
    """Create a draft campaign, or replace a draft's settings and steps; returns its id.

    Every template is checked first (unknown tag, broken syntax: refused with the line),
    so nothing is saved half-way. Launched campaigns cannot be edited.
    """
    require_writer(engine, actor)
    name = _clean_single_line(draft.name, what="The campaign name", limit=MAX_NAME)
    if not name:
        raise ValidationError("Give the campaign a name.")
    if not draft.steps:
        raise ValidationError("A campaign needs at least one step.")
    if len(draft.steps) > MAX_STEPS:
        raise ValidationError(f"A campaign can have at most {MAX_STEPS} steps.")
    sender_name, sender_email = _check_sender(draft.sender_name, draft.sender_email)
    with write_session(engine, actor=actor) as session:
        allowed = allowed_tags(session)
        steps = [_check_step(step, n, allowed) for n, step in enumerate(draft.steps, start=1)]
        if draft.audience_pool_id is not None:
            if session.get(Pool, draft.audience_pool_id) is None:
                raise ValidationError("The audience pool no longer exists; pick another.")
        elif not draft.candidate_ids:
            raise ValidationError("Choose an audience: a talent pool or hand-picked people.")
        clash = session.scalar(
            select(Campaign.id).where(Campaign.name == name, Campaign.id != (campaign_id or 0))
        )
        if clash is not None:
            raise ValidationError(f"A campaign called {name!r} already exists; pick another name.")
        if campaign_id is None:
            campaign = Campaign(name=name, created_by_id=actor.id, status="draft")
            session.add(campaign)
        else:
            campaign = get_existing(session, Campaign, campaign_id, "campaign")
            if campaign.status != "draft":
                raise ValidationError("A launched campaign cannot be edited; duplicate it instead.")
            campaign.name = name
            session.execute(delete(CampaignStep).where(CampaignStep.campaign_id == campaign.id))
            session.execute(
                delete(CampaignRecipient).where(CampaignRecipient.campaign_id == campaign.id)
            )
        campaign.audience_pool_id = draft.audience_pool_id
        campaign.sender_name = sender_name
        campaign.sender_email = sender_email
        session.flush()
        for position, step in enumerate(steps, start=1):
            session.add(
                CampaignStep(
                    campaign_id=campaign.id,
                    position=position,
                    subject=step.subject,
                    body_markdown=step.body,
                    delay_days=step.delay_days,
                    send_window=step.send_window,
                    stop_on_reply=step.stop_on_reply,
                    stop_on_click=step.stop_on_click,
                    stop_on_pipeline=step.stop_on_pipeline,
                )
            )
        if draft.audience_pool_id is None:
            chosen = sorted(set(draft.candidate_ids))
            existing = set(
                session.scalars(select(Candidate.id).where(Candidate.id.in_(chosen))).all()
            )
            session.execute(
                insert(CampaignRecipient),
                [
                    {"campaign_id": campaign.id, "candidate_id": cid}
                    for cid in chosen
                    if cid in existing
                ],
            )
        audit.record_about(
            session, actor, "campaign.save", campaign.id, {"name": name, "steps": len(steps)}
        )
        return campaign.id


def campaign_id_by_name(engine: Engine, name: str) -> int | None:
    with read_session(engine) as session:
        return session.scalar(select(Campaign.id).where(Campaign.name == name.strip()))


def campaign_names(engine: Engine) -> dict[int, str]:
    """{id: name} of every campaign, newest first as the campaign list orders them, for
    pickers (one query: a picker needs no figures)."""
    with read_session(engine) as session:
        return dict(
            session.execute(
                select(Campaign.id, Campaign.name).order_by(
                    Campaign.created_at.desc(), Campaign.id.desc()
                )
            ).all()
        )


@dataclass(frozen=True)
class CampaignDetail:
    id: int
    name: str
    status: str
    pause_reason: str | None
    audience_pool_id: int | None
    audience: str
    sender_name: str | None
    sender_email: str | None
    launched_at: dt.datetime | None
    launch_summary: dict[str, Any] | None
    steps: list[StepDraft]


def get_campaign(engine: Engine, campaign_id: int) -> CampaignDetail:
    with read_session(engine) as session:
        campaign = get_existing(session, Campaign, campaign_id, "campaign")
        pool_name = (
            session.scalar(select(Pool.name).where(Pool.id == campaign.audience_pool_id))
            if campaign.audience_pool_id
            else None
        )
        picked = session.scalar(
            select(func.count())
            .select_from(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id)
        )
        return CampaignDetail(
            id=campaign.id,
            name=campaign.name,
            status=campaign.status,
            pause_reason=campaign.pause_reason,
            audience_pool_id=campaign.audience_pool_id,
            audience=pool_name or f"{picked} hand-picked people",
            sender_name=campaign.sender_name,
            sender_email=campaign.sender_email,
            launched_at=campaign.launched_at,
            launch_summary=campaign.launch_summary,
            steps=[
                StepDraft(
                    subject=step.subject,
                    body=step.body_markdown,
                    delay_days=step.delay_days,
                    send_window=step.send_window,
                    stop_on_reply=step.stop_on_reply,
                    stop_on_click=step.stop_on_click,
                    stop_on_pipeline=step.stop_on_pipeline,
                )
                for step in campaign.steps
            ],
        )


def hand_picked_ids(engine: Engine, campaign_id: int) -> list[int]:
    with read_session(engine) as session:
        return list(
            session.scalars(
                select(CampaignRecipient.candidate_id)
                .where(CampaignRecipient.campaign_id == campaign_id)
                .order_by(CampaignRecipient.candidate_id)
            )
        )


def delete_campaign(engine: Engine, *, actor: User, campaign_id: int) -> None:
    """Delete a draft (launched campaigns are cancelled instead, keeping their history)."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        campaign = get_existing(session, Campaign, campaign_id, "campaign")
        if campaign.status != "draft":
            raise ValidationError("Only a draft can be deleted; cancel a launched campaign.")
        session.delete(campaign)
        audit.record_about(session, actor, "campaign.delete", campaign_id)


# --- campaign files (TOML) ---------------------------------------------------------------

_FILE_KEYS = {"name", "audience", "sender", "sender_name", "sender_email", "steps"}
_STEP_KEYS = {
    "subject",
    "body",
    "delay_days",
    "send_window",
    "stop_on_reply",
    "stop_on_click",
    "stop_on_pipeline",
}


def draft_from_toml(engine: Engine, text: str) -> CampaignDraft:
    """The campaign a TOML file describes (DESIGN.md form); one sentence when it is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InputUnusable(f"The campaign file is not valid TOML: {error}.") from None
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise InputUnusable(f"The campaign file has an unknown key {unknown[0]!r}.")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        raise InputUnusable('The campaign file needs a name = "..." line.')
    audience = data.get("audience")
    if not isinstance(audience, str) or not audience.strip():
        raise InputUnusable("The campaign file needs an audience: the name of a talent pool.")
    pool_id = pools.pool_id_by_name(engine, audience.strip())
    if pool_id is None:
        raise InputUnusable(f"There is no talent pool called {audience.strip()!r}.")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InputUnusable("The campaign file needs at least one [[steps]] table.")
    steps: list[StepDraft] = []
    for number, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, dict):
            raise InputUnusable(f"Step {number} in the campaign file is not a table.")
        extra = sorted(set(raw) - _STEP_KEYS)
        if extra:
            raise InputUnusable(f"Step {number} has an unknown key {extra[0]!r}.")
        for key in ("subject", "body"):
            if not isinstance(raw.get(key), str):
                raise InputUnusable(f"Step {number} needs a {key} (text).")
        delay = raw.get("delay_days", 0)
        if not isinstance(delay, int) or isinstance(delay, bool):
            raise InputUnusable(f"Step {number}'s delay_days must be a whole number.")
        window = raw.get("send_window")
        if window is not None and not isinstance(window, dict):
            raise InputUnusable(f"Step {number}'s send_window must be an inline table.")
        flags = {}
        for key in ("stop_on_reply", "stop_on_click", "stop_on_pipeline"):
            if key in raw:
                if not isinstance(raw[key], bool):
                    raise InputUnusable(f"Step {number}'s {key} must be true or false.")
                flags[key] = raw[key]
        steps.append(
            StepDraft(
                subject=raw["subject"],
                body=raw["body"],
                delay_days=delay,
                send_window=window,
                **flags,
            )
        )
    sender_name = data.get("sender_name")
    sender_email = data.get("sender_email")
    if isinstance(data.get("sender"), str):
        sender_name, sender_email = mailer.split_sender(data["sender"])
    return CampaignDraft(
        name=data["name"],
        steps=steps,
        audience_pool_id=pool_id,
        sender_name=sender_name,
        sender_email=sender_email,
    )


def import_campaign_file(engine: Engine, *, actor: User, text: str) -> int:
    """Save the campaign a TOML file describes as a draft (replacing a draft of that name)."""
    draft = draft_from_toml(engine, text)
    existing = campaign_id_by_name(engine, " ".join(draft.name.split()))
    return save_campaign(engine, actor=actor, draft=draft, campaign_id=existing)


# --- saved templates ---------------------------------------------------------------------


@dataclass(frozen=True)
class SavedTemplate:
    id: int
    name: str
    subject: str
    body: str


def list_templates(engine: Engine) -> list[SavedTemplate]:
    with read_session(engine) as session:
        return [
            SavedTemplate(t.id, t.name, t.subject, t.body_markdown)
            for t in session.scalars(select(EmailTemplate).order_by(EmailTemplate.name))
        ]


def save_template(engine: Engine, *, actor: User, name: str, subject: str, body: str) -> int:
    """Save (or overwrite by name) a reusable subject and body, checked like a step."""
    require_writer(engine, actor)
    clean_name = _clean_single_line(name, what="The template name", limit=120)
    if not clean_name:
        raise ValidationError("Give the template a name.")
    with write_session(engine, actor=actor) as session:
        step = _check_step(StepDraft(subject=subject, body=body), 1, allowed_tags(session))
        template = session.scalar(select(EmailTemplate).where(EmailTemplate.name == clean_name))
        if template is None:
            template = EmailTemplate(
                name=clean_name, created_by_id=actor.id, subject="", body_markdown=""
            )
            session.add(template)
        template.subject = step.subject
        template.body_markdown = step.body
        session.flush()
        return template.id


def tag_fields(engine: Engine) -> dict[str, str]:
    """The merge-tag picker's fields: name -> label."""
    with read_session(engine) as session:
        return allowed_tags(session)


def people_labels(engine: Engine, candidate_ids: list[int]) -> list[tuple[int, str]]:
    """(id, "Name <email>") for hand-picked people, in the order given."""
    if not candidate_ids:
        return []
    with read_session(engine) as session:
        rows = {
            cid: f"{first} {last}".strip() + (f" <{email}>" if email else " (no email)")
            for cid, first, last, email in session.execute(
                select(
                    Candidate.id, Candidate.first_name, Candidate.last_name, Candidate.email
                ).where(Candidate.id.in_(candidate_ids))
            )
        }
    return [(cid, rows[cid]) for cid in candidate_ids if cid in rows]


def addresses_in_csv(data: bytes) -> list[str]:
    """Every cell that looks like an email address in an uploaded CSV (any column)."""
    text = data.decode("utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    found: list[str] = []
    for row in csv.reader(io.StringIO(text), dialect):
        found.extend(cell.strip() for cell in row if "@" in cell and len(cell) <= 254)
    return found
