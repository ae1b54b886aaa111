"""Campaigns: multi-step email sequences aimed at a pool, and how each is doing."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from crm import audit, clock, engagement, mailer, merge_tags, pools, send_window, tokens

# How campaigns are doing lives in its own module; these names stay importable from here.
from crm.campaign_figures import OUTBOX_LABELS as OUTBOX_LABELS
from crm.campaign_figures import REPORT_COUNTERS as REPORT_COUNTERS
from crm.campaign_figures import CampaignSummary as CampaignSummary
from crm.campaign_figures import StepCounts as StepCounts
from crm.campaign_figures import list_campaigns as list_campaigns
from crm.campaign_figures import rate as rate
from crm.campaign_figures import report as report
from crm.campaign_figures import step_counts as step_counts
from crm.config import Settings, load_settings
from crm.db import read_session, write_session
from crm.errors import InputUnusable, NotFound, ValidationError
from crm.identity import address_hash, clean_text, normalize_email
from crm.models import (
    Application,
    Campaign,
    CampaignRecipient,
    CampaignStep,
    Candidate,
    CustomField,
    EmailTemplate,
    Enrollment,
    Job,
    OutboxMessage,
    Pool,
    Suppression,
    User,
)
from crm.permissions import require_writer
from crm.sql import escape_like


@dataclass(frozen=True)
class StepDue:
    campaign: str
    step: int
    subject: str
    messages: int


def steps_due(engine: Engine, *, until: dt.datetime) -> list[StepDue]:
    """Queued messages falling due by `until`, per active campaign and step."""
    with read_session(engine) as session:
        rows = session.execute(
            select(
                Campaign.name,
                CampaignStep.position,
                CampaignStep.subject,
                func.count(OutboxMessage.id),
            )
            .join(CampaignStep, CampaignStep.id == OutboxMessage.step_id)
            .join(Campaign, Campaign.id == OutboxMessage.campaign_id)
            .where(
                OutboxMessage.status == "queued",
                OutboxMessage.due_at <= until,
                Campaign.status == "active",
            )
            .group_by(Campaign.name, CampaignStep.position, CampaignStep.subject)
            .order_by(Campaign.name, CampaignStep.position)
        ).all()
    return [StepDue(name, position, subject, count) for name, position, subject, count in rows]


# --- composing ---------------------------------------------------------------------------

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


def allowed_tags(session: Session) -> dict[str, str]:
    """Every merge tag a template may use here: candidate, custom, sender and system fields."""
    return merge_tags.available_fields(session.scalars(select(CustomField.key)).all())


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
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound("That campaign no longer exists.")
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
        audit.record(
            session,
            actor=actor,
            action="campaign.save",
            entity="campaign",
            entity_id=campaign.id,
            detail={"name": name, "steps": len(steps)},
        )
        return campaign.id


def campaign_id_by_name(engine: Engine, name: str) -> int | None:
    with read_session(engine) as session:
        return session.scalar(select(Campaign.id).where(Campaign.name == name.strip()))


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
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("That campaign no longer exists.")
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
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound("That campaign no longer exists.")
        if campaign.status != "draft":
            raise ValidationError("Only a draft can be deleted; cancel a launched campaign.")
        session.delete(campaign)
        audit.record(
            session, actor=actor, action="campaign.delete", entity="campaign", entity_id=campaign_id
        )


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


def delete_template(engine: Engine, *, actor: User, template_id: int) -> None:
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        session.execute(delete(EmailTemplate).where(EmailTemplate.id == template_id))


# --- preview and the launch check -------------------------------------------------------

FOOTER = "You are hearing from us because we keep in touch with people we would love to work with."


def footer_for(candidate: Candidate, *, sender_name: str, contacted_before: bool) -> str:
    """The footer; the first message to someone we sourced says who we are and why.

    People we found ourselves (legitimate interest) get, in their first message, where
    their details came from, why we keep them and how to stop (GDPR art. 14 notice).
    """
    if contacted_before or candidate.consent_status != "legitimate_interest":
        return FOOTER
    who = sender_name or "our recruiting team"
    where = f" (source: {candidate.source})" if candidate.source else ""
    return (
        f"Why you are getting this: {who} found your public professional profile{where} and "
        "keeps your name, contact details and professional background to tell you about "
        "roles that may fit you, on the basis of legitimate interest. Reply to ask what we "
        "hold or to have it deleted, or stop every message with one click."
    )


def contacted_before(session: Session, candidate_ids: Collection[int]) -> set[int]:
    """Which of these people have already been sent a campaign message."""
    if not candidate_ids:
        return set()
    return set(
        session.scalars(
            select(OutboxMessage.candidate_id)
            .where(
                OutboxMessage.candidate_id.in_(list(candidate_ids)),
                OutboxMessage.status.in_(("sent", "needs_review")),
            )
            .distinct()
        )
    )


PREVIEW_UNSUBSCRIBE = "unsubscribe-link-goes-here"


def sender_of(campaign: Campaign, settings: Settings | None = None) -> tuple[str, str]:
    """(name, address) the campaign sends as: its own, else CRM_FROM."""
    default_name, default_address = mailer.split_sender(
        (settings or load_settings()).smtp.sender if (settings or load_settings()).smtp else ""
    )
    return (
        campaign.sender_name or default_name,
        campaign.sender_email or default_address,
    )


def unsubscribe_url(outbox_id: int, settings: Settings | None = None) -> str:
    base = (settings or load_settings()).public_url
    return f"{base}/unsubscribe?t={tokens.sign('unsubscribe', outbox_id)}"


def open_url(outbox_id: int, settings: Settings | None = None) -> str:
    base = (settings or load_settings()).public_url
    return f"{base}/o/{tokens.sign('open', outbox_id)}.gif"


def click_url(outbox_id: int, position: int, settings: Settings | None = None) -> str:
    """The tracked form of a message's link; the token names the message and the position."""
    base = (settings or load_settings()).public_url
    return f"{base}/c/{engagement.click_token(outbox_id, position)}"


def render_for(
    session: Session,
    campaign: Campaign,
    step: CampaignStep,
    candidate: Candidate,
    *,
    unsubscribe: str,
    settings: Settings | None = None,
) -> mailer.RenderedEmail:
    """What one person gets for one step: preview, test sends and delivery all use this."""
    allowed = allowed_tags(session)
    name, address = sender_of(campaign, settings)
    values = merge_tags.values_for(
        candidate,
        custom_fields=candidate.custom_fields,
        sender_name=name,
        sender_email=address,
        unsubscribe_url=unsubscribe,
    )
    footer = footer_for(
        candidate,
        sender_name=name,
        contacted_before=candidate.id in contacted_before(session, [candidate.id]),
    )
    return mailer.render(
        merge_tags.parse(step.subject, allowed=allowed),
        merge_tags.parse(step.body_markdown, allowed=allowed),
        values,
        footer=footer,
    )


def _audience_condition(session: Session, campaign: Campaign) -> ColumnElement[bool]:
    if campaign.audience_pool_id is not None:
        pool = session.get(Pool, campaign.audience_pool_id)
        if pool is None:
            raise ValidationError("The audience pool no longer exists; pick another.")
        return pools.membership_condition(session, pool)
    picked = select(CampaignRecipient.candidate_id).where(
        CampaignRecipient.campaign_id == campaign.id
    )
    return Candidate.id.in_(picked)


def audience_sample(engine: Engine, campaign_id: int, *, limit: int = 200) -> list[tuple[int, str]]:
    """(id, "Name <email>") of people in the audience, for the preview picker."""
    with read_session(engine) as session:
        campaign = _campaign(session, campaign_id)
        rows = session.execute(
            select(Candidate.id, Candidate.first_name, Candidate.last_name, Candidate.email)
            .where(_audience_condition(session, campaign))
            .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
            .limit(limit)
        ).all()
    return [
        (cid, f"{first} {last}".strip() + (f" <{email}>" if email else " (no email)"))
        for cid, first, last, email in rows
    ]


def preview(
    engine: Engine, campaign_id: int, *, step: int, candidate_id: int
) -> mailer.RenderedEmail:
    with read_session(engine) as session:
        campaign = _campaign(session, campaign_id)
        if not 1 <= step <= len(campaign.steps):
            raise NotFound("That step does not exist.")
        candidate = session.get(Candidate, candidate_id)
        if candidate is None:
            raise NotFound("That person no longer exists.")
        return render_for(
            session, campaign, campaign.steps[step - 1], candidate, unsubscribe=PREVIEW_UNSUBSCRIBE
        )


def _campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("That campaign no longer exists.")
    return campaign


SKIP_REASONS = {
    "no_email": "no email address",
    "unsubscribed": "unsubscribed",
    "suppressed": "on the suppression list",
    "do_not_contact": "do not contact (no consent)",
    "in_other_sequence": "already in another active sequence",
}


@dataclass(frozen=True)
class MissingTag:
    candidate_id: int
    name: str
    fields: list[str]


@dataclass(frozen=True)
class LaunchCheck:
    audience: int
    eligible: int
    skipped: dict[str, int]
    missing: list[MissingTag]
    missing_total: int

    @property
    def blocked(self) -> str | None:
        if self.missing_total:
            return (
                f"{self.missing_total} people would get an empty merge tag with no fallback; "
                "add a fallback ({{field|text}}) or fill in their records."
            )
        if not self.eligible:
            return "Nobody in the audience can be emailed right now."
        return None


@dataclass
class _Person:
    id: int
    email_normalized: str | None
    reason: str | None


def _classify(session: Session, campaign: Campaign) -> tuple[list[_Person], dict[str, int]]:
    """Everyone in the audience now, each eligible (reason None) or skipped with a reason."""
    condition = _audience_condition(session, campaign)
    other_active = (
        select(Enrollment.candidate_id)
        .join(Campaign, Campaign.id == Enrollment.campaign_id)
        .where(
            Enrollment.status == "active",
            Campaign.status.in_(("active", "paused")),
            Campaign.id != campaign.id,
        )
    )
    rows = session.execute(
        select(
            Candidate.id,
            Candidate.email_normalized,
            Candidate.unsubscribed_at.is_not(None),
            Candidate.consent_status,
            Candidate.id.in_(other_active),
        )
        .where(condition)
        .order_by(Candidate.id)
    ).all()
    suppressed = _suppressed_hashes(session, [row[1] for row in rows if row[1]])
    people: list[_Person] = []
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    for cid, email_key, unsubscribed, consent, busy in rows:
        if not email_key:
            reason = "no_email"
        elif unsubscribed:
            reason = "unsubscribed"
        elif address_hash(email_key) in suppressed:
            reason = "suppressed"
        elif consent == "do_not_contact":
            reason = "do_not_contact"
        elif busy:
            reason = "in_other_sequence"
        else:
            reason = None
        if reason:
            skipped[reason] += 1
        people.append(_Person(cid, email_key, reason))
    return people, skipped


def _suppressed_hashes(session: Session, email_keys: list[str]) -> set[str]:
    hashes = [address_hash(key) for key in email_keys]
    found: set[str] = set()
    for start in range(0, len(hashes), 5000):
        found.update(
            session.scalars(
                select(Suppression.address_hash).where(
                    Suppression.address_hash.in_(hashes[start : start + 5000])
                )
            )
        )
    return found


def _missing_tags(
    session: Session, campaign: Campaign, eligible: list[int], *, limit: int = 50
) -> tuple[list[MissingTag], int]:
    """Eligible people for whom some tag has no value and no fallback (launch blocks)."""
    allowed = allowed_tags(session)
    needed: set[str] = set()
    for step in campaign.steps:
        for text in (step.subject, step.body_markdown):
            template = merge_tags.parse(text, allowed=allowed)
            needed.update(template.missing({}))
    needed -= set(merge_tags.SENDER_FIELDS)
    if not needed or not eligible:
        return [], 0
    templates = [
        merge_tags.parse(text, allowed=allowed)
        for step in campaign.steps
        for text in (step.subject, step.body_markdown)
    ]
    found: list[MissingTag] = []
    total = 0
    for start in range(0, len(eligible), 2000):
        chunk = eligible[start : start + 2000]
        for candidate in session.scalars(select(Candidate).where(Candidate.id.in_(chunk))):
            values = merge_tags.values_for(candidate, custom_fields=candidate.custom_fields)
            fields: list[str] = []
            for template in templates:
                for name in template.missing(values):
                    if name in needed and name not in fields:
                        fields.append(name)
            if fields:
                total += 1
                if len(found) < limit:
                    found.append(MissingTag(candidate.id, candidate.full_name, fields))
        session.expunge_all()
    return found, total


def launch_check(engine: Engine, campaign_id: int) -> LaunchCheck:
    with read_session(engine) as session:
        campaign = _campaign(session, campaign_id)
        people, skipped = _classify(session, campaign)
        eligible = [p.id for p in people if p.reason is None]
        missing, missing_total = _missing_tags(session, campaign, eligible)
        return LaunchCheck(len(people), len(eligible), skipped, missing, missing_total)


# --- launch, pause, resume, cancel --------------------------------------------------------


@dataclass(frozen=True)
class LaunchResult:
    enrolled: int
    skipped: dict[str, int]
    messages: int


def launch(
    engine: Engine, *, actor: User, campaign_id: int, now: dt.datetime | None = None
) -> LaunchResult:
    """Enroll the audience as it is now and queue every message, all in one transaction.

    The draft -> active switch is a conditional UPDATE in the same transaction, so a
    double-click (or two recruiters at once) launches exactly once.
    """
    require_writer(engine, actor)
    settings = load_settings()
    if not settings.smtp_configured:
        raise ValidationError(
            "Sending is not set up (CRM_SMTP_HOST is empty), so a campaign cannot be launched."
        )
    now = now or clock.now()
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        if not sender_of(campaign, settings)[1]:
            raise ValidationError("Give the campaign a sender address (or set CRM_FROM).")
        switched = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "draft")
            .values(status="active", launched_at=now, consecutive_failures=0, pause_reason=None)
        ).rowcount
        if switched != 1:
            raise ValidationError("This campaign has already been launched.")
        steps = list(campaign.steps)
        if not steps:
            raise ValidationError("A campaign needs at least one step.")
        people, skipped = _classify(session, campaign)
        eligible = [p.id for p in people if p.reason is None]
        if not eligible:
            raise ValidationError("Nobody in the audience can be emailed right now.")
        _, missing_total = _missing_tags(session, campaign, eligible, limit=0)
        if missing_total:
            raise ValidationError(
                f"{missing_total} people would get an empty merge tag with no fallback; "
                "see the launch check."
            )
        addresses = dict(
            session.execute(
                select(Candidate.id, Candidate.email).where(Candidate.id.in_(eligible))
            ).all()
            if len(eligible) <= 30_000
            else _chunked_addresses(session, eligible)
        )
        for start in range(0, len(eligible), 5000):
            session.execute(
                insert(Enrollment),
                [
                    {"campaign_id": campaign_id, "candidate_id": cid, "enrolled_at": now}
                    for cid in eligible[start : start + 5000]
                ],
            )
        enrollments = session.execute(
            select(Enrollment.id, Enrollment.candidate_id).where(
                Enrollment.campaign_id == campaign_id
            )
        ).all()
        first = steps[0]
        first_due = send_window.next_send_time(
            send_window.parse_window(first.send_window), now + dt.timedelta(days=first.delay_days)
        )
        rows: list[dict[str, Any]] = []
        for enrollment_id, cid in enrollments:
            for step in steps:
                rows.append(
                    {
                        "unique_key": f"{campaign_id}:{step.position}:{cid}",
                        "campaign_id": campaign_id,
                        "step_id": step.id,
                        "enrollment_id": enrollment_id,
                        "candidate_id": cid,
                        "to_address": addresses.get(cid),
                        "status": "queued" if step.position == 1 else "waiting",
                        "due_at": first_due if step.position == 1 else now,
                        "created_at": now,
                    }
                )
            if len(rows) >= 10_000:
                session.execute(insert(OutboxMessage), rows)
                rows = []
        if rows:
            session.execute(insert(OutboxMessage), rows)
        summary = {
            "audience": len(people),
            "enrolled": len(eligible),
            "skipped": {k: v for k, v in skipped.items() if v},
        }
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(launch_summary=summary)
        )
        audit.record(
            session,
            actor=actor,
            action="campaign.launch",
            entity="campaign",
            entity_id=campaign_id,
            detail=summary,
        )
        return LaunchResult(len(eligible), summary["skipped"], len(eligible) * len(steps))


def _chunked_addresses(session: Session, ids: list[int]) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for start in range(0, len(ids), 10_000):
        found.extend(
            session.execute(
                select(Candidate.id, Candidate.email).where(
                    Candidate.id.in_(ids[start : start + 10_000])
                )
            ).all()
        )
    return found


def _set_status(
    engine: Engine, *, actor: User, campaign_id: int, allowed_from: tuple[str, ...], to: str
) -> Campaign:
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        changed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status.in_(allowed_from))
            .values(
                status=to,
                pause_reason=None if to != "paused" else "Paused by " + actor.display_name,
            )
        ).rowcount
        if changed != 1:
            raise ValidationError(f"A {campaign.status} campaign cannot be {_PAST[to]}.")
        audit.record(
            session, actor=actor, action=f"campaign.{to}", entity="campaign", entity_id=campaign_id
        )
        return campaign


_PAST = {"paused": "paused", "active": "resumed", "cancelled": "cancelled"}


def pause(engine: Engine, *, actor: User, campaign_id: int) -> None:
    _set_status(engine, actor=actor, campaign_id=campaign_id, allowed_from=("active",), to="paused")


def resume(engine: Engine, *, actor: User, campaign_id: int, now: dt.datetime | None = None) -> int:
    """Resume a paused campaign; overdue messages are re-spaced from now, not fired at once.

    Returns how many overdue messages were re-spaced (at the send rate, inside each step's
    send window).
    """
    require_writer(engine, actor)
    now = now or clock.now()
    rate = load_settings().send_rate
    with write_session(engine, actor=actor) as session:
        campaign = _campaign(session, campaign_id)
        changed = session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.status == "paused")
            .values(status="active", pause_reason=None, consecutive_failures=0)
        ).rowcount
        if changed != 1:
            raise ValidationError(f"A {campaign.status} campaign cannot be resumed.")
        windows = {step.id: send_window.parse_window(step.send_window) for step in campaign.steps}
        overdue = session.execute(
            select(OutboxMessage.id, OutboxMessage.step_id)
            .where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status == "queued",
                OutboxMessage.due_at < now,
            )
            .order_by(OutboxMessage.due_at, OutboxMessage.id)
        ).all()
        spacing = 1.0 / rate
        updates = [
            {
                "row_id": row_id,
                "due": send_window.next_send_time(
                    windows.get(step_id), now + dt.timedelta(seconds=index * spacing)
                ),
            }
            for index, (row_id, step_id) in enumerate(overdue)
        ]
        if updates:
            session.execute(
                update(OutboxMessage.__table__)
                .where(OutboxMessage.__table__.c.id == bindparam("row_id"))
                .values(due_at=bindparam("due"), lease_until=None, leased_by=None),
                updates,
            )
        audit.record(
            session,
            actor=actor,
            action="campaign.resume",
            entity="campaign",
            entity_id=campaign_id,
            detail={"respaced": len(updates)},
        )
        return len(updates)


def cancel(engine: Engine, *, actor: User, campaign_id: int) -> int:
    """Cancel a campaign: nothing more is sent; returns how many messages were cancelled."""
    _set_status(
        engine,
        actor=actor,
        campaign_id=campaign_id,
        allowed_from=("active", "paused", "draft"),
        to="cancelled",
    )
    with write_session(engine) as session:
        cancelled = session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.campaign_id == campaign_id,
                OutboxMessage.status.in_(("queued", "waiting")),
            )
            .values(status="cancelled", skip_reason="campaign cancelled")
        ).rowcount
        session.execute(
            update(Enrollment)
            .where(Enrollment.campaign_id == campaign_id, Enrollment.status == "active")
            .values(status="stopped", stopped_reason="campaign cancelled")
        )
        return cancelled


# --- what happened -----------------------------------------------------------------------


@dataclass(frozen=True)
class OutboxRow:
    id: int
    step: int
    candidate_id: int | None
    name: str
    to_address: str | None
    status: str
    due_at: dt.datetime
    sent_at: dt.datetime | None
    attempts: int
    detail: str | None


def outbox(
    engine: Engine,
    campaign_id: int,
    *,
    status: str | None = None,
    step: int | None = None,
    search: str = "",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[OutboxRow], int]:
    """One page of a campaign's messages, filtered in SQL, and how many match."""
    conditions: list[ColumnElement[bool]] = [OutboxMessage.campaign_id == campaign_id]
    if status:
        conditions.append(OutboxMessage.status == status)
    term = search.strip().lower()
    if term:
        pattern = f"%{escape_like(term)}%"
        conditions.append(
            or_(
                func.lower(OutboxMessage.to_address).like(pattern, escape="\\"),
                func.lower(Candidate.first_name + " " + Candidate.last_name).like(
                    pattern, escape="\\"
                ),
            )
        )
    with read_session(engine) as session:
        # Steps are few: resolve positions here instead of joining every row to them.
        positions = dict(
            session.execute(
                select(CampaignStep.id, CampaignStep.position).where(
                    CampaignStep.campaign_id == campaign_id
                )
            ).all()
        )
        if step:
            conditions.append(
                OutboxMessage.step_id.in_(
                    [step_id for step_id, position in positions.items() if position == step]
                )
            )
        counted = select(func.count()).select_from(OutboxMessage).where(*conditions)
        if term:  # only a search needs the people
            counted = counted.outerjoin(Candidate, Candidate.id == OutboxMessage.candidate_id)
        total = session.scalar(counted) or 0
        # Only the columns shown: never the kept bodies of fifty messages.
        rows = session.execute(
            select(
                OutboxMessage.id,
                OutboxMessage.step_id,
                OutboxMessage.candidate_id,
                Candidate.first_name,
                Candidate.last_name,
                OutboxMessage.to_address,
                OutboxMessage.status,
                OutboxMessage.due_at,
                OutboxMessage.sent_at,
                OutboxMessage.attempts,
                func.coalesce(
                    OutboxMessage.skip_reason,
                    OutboxMessage.last_error,
                    OutboxMessage.note,
                    OutboxMessage.smtp_reply,
                ),
            )
            .outerjoin(Candidate, Candidate.id == OutboxMessage.candidate_id)
            .where(*conditions)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .offset(offset)
        ).all()
        return (
            [
                OutboxRow(
                    id=row_id,
                    step=positions.get(step_id, 0),
                    candidate_id=candidate_id,
                    name=f"{first or ''} {last or ''}".strip() or "(erased)",
                    to_address=address,
                    status=status,
                    due_at=due_at,
                    sent_at=sent_at,
                    attempts=attempts,
                    detail=detail,
                )
                for (
                    row_id, step_id, candidate_id, first, last, address, status, due_at,
                    sent_at, attempts, detail,
                ) in rows
            ],
            total,
        )  # fmt: skip


@dataclass(frozen=True)
class SentMessage:
    subject: str | None
    text: str | None
    html: str | None
    to_address: str | None
    sent_at: dt.datetime | None
    status: str
    message_id: str | None


def message(engine: Engine, outbox_id: int) -> SentMessage:
    """Exactly what one person got (kept when it was sent)."""
    with read_session(engine) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None:
            raise NotFound("That message no longer exists.")
        return SentMessage(
            row.subject, row.body_text, row.body_html, row.to_address, row.sent_at, row.status,
            row.message_id,
        )  # fmt: skip


def resolve_review(engine: Engine, *, actor: User, outbox_id: int, arrived: bool) -> None:
    """Settle a message whose delivery is unknown: it arrived (sent) or send it again."""
    require_writer(engine, actor)
    from crm import outbox as outbox_service  # the delivery side schedules the next step

    with write_session(engine, actor=actor) as session:
        row = session.get(OutboxMessage, outbox_id)
        if row is None or row.status != "needs_review":
            raise ValidationError("That message is no longer waiting for review.")
        if arrived:
            row.status = "sent"
            row.sent_at = row.sent_at or clock.now()
            row.note = f"Marked as arrived by {actor.display_name}"
            session.flush()
            outbox_service.schedule_next(session, row, sent_at=row.sent_at)
        else:
            row.status = "queued"
            row.due_at = clock.now()
            row.lease_until = None
            row.leased_by = None
            row.note = f"Sent again at the request of {actor.display_name}"
        audit.record(
            session,
            actor=actor,
            action="outbox.review",
            entity="outbox_message",
            entity_id=outbox_id,
            detail={"arrived": arrived},
        )


@dataclass(frozen=True)
class Attributed:
    candidate_id: int | None
    name: str
    job: str
    stage: str
    applied_at: dt.datetime | None
    hired_at: dt.datetime | None


def attributed_applications(
    engine: Engine, campaign_id: int, *, limit: int = 200
) -> list[Attributed]:
    """Applications that came from the campaign, newest first."""
    with read_session(engine) as session:
        rows = session.execute(
            select(
                Application.candidate_id,
                Candidate.first_name,
                Candidate.last_name,
                Job.title,
                Application.stage,
                Application.applied_at,
                Application.hired_at,
            )
            .join(Job, Job.id == Application.job_id)
            .outerjoin(Candidate, Candidate.id == Application.candidate_id)
            .where(Application.campaign_id == campaign_id)
            .order_by(Application.applied_at.desc().nulls_last(), Application.id.desc())
            .limit(limit)
        ).all()
    return [
        Attributed(
            cid, f"{first or ''} {last or ''}".strip() or "(erased)", title, stage, applied, hired
        )
        for cid, first, last, title, stage, applied, hired in rows
    ]


def send_test(
    engine: Engine, *, actor: User, campaign_id: int, step: int, candidate_id: int
) -> str:
    """Send one step, rendered for one person, to the signed-in user; returns the address."""
    require_writer(engine, actor)
    settings = load_settings()
    if settings.smtp is None:
        raise ValidationError("Sending is not set up (CRM_SMTP_HOST is empty).")
    if not actor.email:
        raise ValidationError("Your user has no email address; an admin can add one in Settings.")
    rendered = preview(engine, campaign_id, step=step, candidate_id=candidate_id)
    with read_session(engine) as session:
        name, address = sender_of(_campaign(session, campaign_id), settings)
    if not address:
        raise ValidationError("Give the campaign a sender address (or set CRM_FROM).")
    test = mailer.RenderedEmail(f"[Test] {rendered.subject}", rendered.text, rendered.html)
    message = mailer.build_message(
        test,
        sender=mailer.format_sender(name, address),
        to=actor.email,
        message_id=mailer.new_message_id(0, address),
        unsubscribe_url="",
    )
    connection = mailer.MailConnection(settings.smtp)
    try:
        result = connection.send(message)
    finally:
        connection.close()
    if result.outcome != mailer.SendOutcome.SENT:
        raise ValidationError(f"The test was not sent: the mail server said {result.reply}")
    with write_session(engine, actor=actor) as session:
        audit.record(
            session,
            actor=actor,
            action="campaign.send_test",
            entity="campaign",
            entity_id=campaign_id,
            detail={"step": step},  # not the person it was rendered for, nor the address
        )
    return actor.email


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
    import csv
    import io

    text = data.decode("utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    found: list[str] = []
    for row in csv.reader(io.StringIO(text), dialect):
        found.extend(cell.strip() for cell in row if "@" in cell and len(cell) <= 254)
    return found
