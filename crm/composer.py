"""The one message composer: the exact email one person gets for one campaign step.

`compose` builds it, headers included (a standard-library `EmailMessage`): merge tags
filled in, the footer (with the GDPR notice in a sourced person's first message), the
unsubscribe link and List-Unsubscribe headers, and tracked links with the open pixel.
Preview, test sends, `crm campaign preview` and delivery all call it, so what a recruiter
previews is what a candidate receives. Only the tracking tokens differ: a preview has no
outbox row to name, so its links carry PREVIEW_TOKEN and go straight to their targets.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from email.message import EmailMessage

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm import audit, engagement, mailer, merge_tags, tokens
from crm.config import Settings, load_settings
from crm.db import get_existing, read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.identity import normalize_email
from crm.merge_tags import Template
from crm.models import Campaign, CampaignStep, Candidate, CustomField, OutboxMessage, User
from crm.permissions import require_writer

FOOTER = "You are hearing from us because we keep in touch with people we would love to work with."
PREVIEW_TOKEN = "preview"  # in a preview's tracking links, where a message's signed token goes
TEST_PREFIX = "[Test] "


def allowed_tags(session: Session) -> dict[str, str]:
    """Every merge tag a template may use here: candidate, custom, sender and system fields."""
    return merge_tags.available_fields(session.scalars(select(CustomField.key)).all())


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


def sender_of(campaign: Campaign, settings: Settings | None = None) -> tuple[str, str]:
    """(name, address) the campaign sends as: its own, else CRM_FROM."""
    smtp = (settings or load_settings()).smtp
    default_name, default_address = mailer.split_sender(smtp.sender if smtp else "")
    return campaign.sender_name or default_name, campaign.sender_email or default_address


# --- the public links in a message -------------------------------------------------------


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


@dataclass(frozen=True)
class MessageLinks:
    """Where a message's unsubscribe link, open pixel and each (position, URL) link go."""

    outbox_id: int  # 0 in a preview: no outbox row yet
    unsubscribe: str
    open: str
    click: Callable[[int, str], str]


def links_for(outbox_id: int, settings: Settings) -> MessageLinks:
    """The signed links of one outbox message, as delivery sends them."""
    return MessageLinks(
        outbox_id=outbox_id,
        unsubscribe=unsubscribe_url(outbox_id, settings),
        open=open_url(outbox_id, settings),
        click=lambda position, _url: click_url(outbox_id, position, settings),
    )


def preview_links(settings: Settings) -> MessageLinks:
    """A preview's links: the same shapes with PREVIEW_TOKEN, and links to their targets
    (a click in a preview or a test must neither count nor need a stored link)."""
    base = settings.public_url
    return MessageLinks(
        outbox_id=0,
        unsubscribe=f"{base}/unsubscribe?t={PREVIEW_TOKEN}",
        open=f"{base}/o/{PREVIEW_TOKEN}.gif",
        click=lambda _position, url: url,
    )


# --- composing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Composed:
    """One message as it goes out: what the outbox keeps, and the message itself."""

    rendered: mailer.RenderedEmail  # subject, text and HTML as sent (tracked)
    message: EmailMessage
    message_id: str
    links: list[tuple[int, str]]  # (position, URL) of each tracked link

    @property
    def subject(self) -> str:
        return self.rendered.subject

    @property
    def text(self) -> str:
        return self.rendered.text

    @property
    def html(self) -> str:
        return self.rendered.html

    @property
    def headers(self) -> dict[str, str]:
        return {name: str(value) for name, value in self.message.items()}


def compose(
    campaign: Campaign,
    candidate: Candidate,
    *,
    subject: Template,
    body: Template | mailer.PreparedBody,
    contacted_before: bool,
    links: MessageLinks,
    settings: Settings,
    to: str | None = None,
    subject_prefix: str = "",
) -> Composed:
    """The exact message `candidate` gets for a step (subject and body templates).

    `to` sends it elsewhere (a test send goes to the recruiter); `subject_prefix` marks it.
    """
    name, address = sender_of(campaign, settings)
    values = merge_tags.values_for(
        candidate,
        custom_fields=candidate.custom_fields,
        sender_name=name,
        sender_email=address,
        unsubscribe_url=links.unsubscribe,
    )
    footer = footer_for(candidate, sender_name=name, contacted_before=contacted_before)
    rendered = mailer.render(subject, body, values, footer=footer)
    tracked_html, tracked = mailer.add_tracking(
        rendered.html, click_url=links.click, open_url=links.open, skip={links.unsubscribe}
    )
    rendered = mailer.RenderedEmail(subject_prefix + rendered.subject, rendered.text, tracked_html)
    message_id = mailer.new_message_id(links.outbox_id, address)
    message = mailer.build_message(
        rendered,
        sender=mailer.format_sender(name, address),
        to=(candidate.email or "") if to is None else to,
        message_id=message_id,
        unsubscribe_url=links.unsubscribe,
    )
    return Composed(rendered, message, message_id, tracked)


def _compose_preview(
    session: Session,
    campaign: Campaign,
    step: CampaignStep,
    candidate: Candidate,
    *,
    settings: Settings,
    to: str | None = None,
    subject_prefix: str = "",
) -> Composed:
    allowed = allowed_tags(session)
    return compose(
        campaign,
        candidate,
        subject=merge_tags.parse(step.subject, allowed=allowed),
        body=merge_tags.parse(step.body_markdown, allowed=allowed),
        contacted_before=candidate.id in contacted_before(session, [candidate.id]),
        links=preview_links(settings),
        settings=settings,
        to=to,
        subject_prefix=subject_prefix,
    )


def _campaign_step(session: Session, campaign_id: int, step: int) -> tuple[Campaign, CampaignStep]:
    campaign = get_existing(session, Campaign, campaign_id, "campaign")
    if not 1 <= step <= len(campaign.steps):
        count = len(campaign.steps)
        raise NotFound(
            f"{campaign.name!r} has {count} step{'' if count == 1 else 's'}; "
            f"there is no step {step}."
        )
    return campaign, campaign.steps[step - 1]


def preview(
    engine: Engine,
    campaign_id: int,
    *,
    step: int,
    candidate_id: int | None = None,
    email: str | None = None,
    settings: Settings | None = None,
) -> Composed:
    """What one person (by id, or by email address) would get for one step, right now."""
    settings = settings or load_settings()
    with read_session(engine) as session:
        campaign, campaign_step = _campaign_step(session, campaign_id, step)
        candidate = _person(session, candidate_id=candidate_id, email=email)
        return _compose_preview(session, campaign, campaign_step, candidate, settings=settings)


def _person(session: Session, *, candidate_id: int | None, email: str | None) -> Candidate:
    if email is None:
        candidate = session.get(Candidate, candidate_id) if candidate_id is not None else None
        if candidate is None:
            raise NotFound("That person no longer exists.")
        return candidate
    try:
        normalized = normalize_email(email)
    except ValidationError:
        normalized = None
    candidate = (
        session.scalar(select(Candidate).where(Candidate.email_normalized == normalized[1]))
        if normalized
        else None
    )
    if candidate is None:
        raise NotFound(f"There is nobody with the email address {email.strip()!r}.")
    return candidate


def send_test(
    engine: Engine, *, actor: User, campaign_id: int, step: int, candidate_id: int
) -> str:
    """Send one step, composed for one person, to the signed-in user; returns the address."""
    require_writer(engine, actor)
    settings = load_settings()
    if settings.smtp is None:
        raise ValidationError("Sending is not set up (CRM_SMTP_HOST is empty).")
    if not actor.email:
        raise ValidationError("Your user has no email address; an admin can add one in Settings.")
    with read_session(engine) as session:
        campaign, campaign_step = _campaign_step(session, campaign_id, step)
        if not sender_of(campaign, settings)[1]:
            raise ValidationError("Give the campaign a sender address (or set CRM_FROM).")
        composed = _compose_preview(
            session,
            campaign,
            campaign_step,
            _person(session, candidate_id=candidate_id, email=None),
            settings=settings,
            to=actor.email,
            subject_prefix=TEST_PREFIX,
        )
    connection = mailer.MailConnection(settings.smtp)
    try:
        result = connection.send(composed.message)
    finally:
        connection.close()
    if result.outcome != mailer.SendOutcome.SENT:
        raise ValidationError(f"The test was not sent: the mail server said {result.reply}")
    with write_session(engine, actor=actor) as session:
        audit.record_about(session, actor, "campaign.send_test", campaign_id, {"step": step})
    return actor.email
