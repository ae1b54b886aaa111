"""SQLAlchemy models for the whole data sketch in DESIGN.md.

Conventions:
- Every timestamp is stored as naive UTC and handed back timezone-aware (UtcDateTime).
- Choice columns are strings guarded by named CHECK constraints, so SQLite and
  PostgreSQL enforce the same rules and migrations stay portable.
- Constraint names follow NAMING_CONVENTION, which Alembic needs for batch mode on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from crm import clock

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "recruiter", "manager")
CONSENT_STATUSES = ("consented", "legitimate_interest", "do_not_contact")
POOL_KINDS = ("dynamic", "static")
JOB_STATUSES = ("open", "on_hold", "filled", "closed")
APPLICATION_SOURCES = (
    "talent_pool",
    "campaign",
    "job_board",
    "referral",
    "agency",
    "career_site",
    "direct",
)
APPLICATION_STAGES = (
    "sourced",
    "applied",
    "screen",
    "interview",
    "offer",
    "hired",
    "rejected",
    "withdrew",
)
COST_CATEGORIES = ("job_ads", "agency_fees", "tools", "recruiter_time", "events", "other")
CAMPAIGN_STATUSES = ("draft", "active", "paused", "completed", "cancelled")
ENROLLMENT_STATUSES = ("active", "completed", "stopped")
OUTBOX_STATUSES = (
    "waiting",  # a later step, scheduled once the step before it is sent
    "queued",
    "sending",
    "sent",
    "failed",
    "needs_review",
    "cancelled",
    "skipped",
)
EVENT_KINDS = ("open", "click", "unsubscribe", "reply", "bounce", "complaint", "interested")
CHANNELS = (
    "email_newsletter",
    "linkedin_post",
    "linkedin_message",
    "x",
    "instagram",
    "sms",
    "blog",
    "event",
)
CONTENT_STATUSES = ("idea", "draft", "scheduled", "published")
CONTENT_THEMES = (
    "company_news",
    "industry_insight",
    "career_advice",
    "employee_story",
    "job_alert",
)
CUSTOM_FIELD_KINDS = ("text", "number", "date", "choice")
IMPORT_KINDS = ("candidates", "jobs", "applications", "costs", "content")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Stores naive UTC, returns aware UTC; refuses naive input so no local time slips in."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; attach a timezone")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class TextList(TypeDecorator[list[str]]):
    """A short list of lower-cased words (skills) kept in the row as compact JSON text.

    One column instead of a row per item: an import of 100,000 people writes no 400,000
    extra rows and index entries, and a filter on an item is a substring test for its
    quoted JSON form ('"python"'), which cannot match "python3" (crm.sql.has_item).
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect: Any) -> str:
        return encode_items(value or [])

    def process_result_value(self, value: str | None, dialect: Any) -> list[str]:
        return json.loads(value) if value else []


def encode_items(items: list[str]) -> str:
    """The stored form of a list of items, and of one item inside it (crm.sql.has_item)."""
    plain = "".join(items)
    if '"' not in plain and "\\" not in plain and plain.isprintable():
        # What json.dumps gives for such items, ten times faster (imports call this a lot).
        return '["' + '","'.join(items) + '"]' if items else "[]"
    return json.dumps(list(items), ensure_ascii=False, separators=(",", ":"))


# none_as_null: a Python None is SQL NULL, not the JSON text 'null'.
JsonType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _choice(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    quoted = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({quoted})", name=name or f"{column}_valid")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UtcDateTime,
        dict[str, Any]: JsonType,
        list[Any]: JsonType,
        Decimal: Numeric(12, 2),
    }


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


# --- people who use the app -------------------------------------------------------------


class User(Timestamped, Base):
    __tablename__ = "users"
    __table_args__ = (_choice("role", ROLES), UniqueConstraint("sso_issuer", "sso_subject"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    # Failed sign-ins in a row, and the last one: each makes the next attempt wait longer.
    failed_login_attempts: Mapped[int] = mapped_column(default=0)
    last_failed_login_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    # Sessions and login cookies issued before this moment are no longer honoured.
    sessions_revoked_at: Mapped[dt.datetime | None]
    # Not stored: when the browser session acting as this user signed in (set by
    # auth.session_user), so the services refuse a write from a session signed out since.
    signed_in_at: ClassVar[dt.datetime | None] = None
    # The single sign-on identity (the provider's iss and sub) bound at the first sign-in.
    sso_issuer: Mapped[str | None] = mapped_column(String(255))
    sso_subject: Mapped[str | None] = mapped_column(String(255))


class Setting(Base):
    """Team-wide settings an admin changes on the Settings page."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]
    updated_at: Mapped[dt.datetime] = mapped_column(default=clock.now, onupdate=clock.now)


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "at"), Index(None, "action"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str | None] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any] | None]


# --- candidates -------------------------------------------------------------------------


class Candidate(Timestamped, Base):
    __tablename__ = "candidates"
    __table_args__ = (
        _choice("consent_status", CONSENT_STATUSES),
        Index(None, "last_contacted_at"),
        Index(None, "created_at"),
        Index(None, "last_name", "first_name"),
        Index(None, "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    # Normalized identities: either one identifies a person (unique, NULLs allowed).
    email_normalized: Mapped[str | None] = mapped_column(String(254), unique=True)
    linkedin_url: Mapped[str | None] = mapped_column(String(300))
    linkedin_normalized: Mapped[str | None] = mapped_column(String(300), unique=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_normalized: Mapped[str | None] = mapped_column(String(40), index=True)
    location: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str | None] = mapped_column(String(80))
    remote: Mapped[bool] = mapped_column(default=False)
    title: Mapped[str | None] = mapped_column(String(160))
    company: Mapped[str | None] = mapped_column(String(160))
    role_family: Mapped[str | None] = mapped_column(String(60))
    years_experience: Mapped[int | None]
    source: Mapped[str | None] = mapped_column(String(80))
    consent_status: Mapped[str] = mapped_column(String(24), default="legitimate_interest")
    consent_at: Mapped[dt.datetime | None]
    consent_source: Mapped[str | None] = mapped_column(String(120))
    consent_note: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Lower-cased, in the order given; see TextList.
    skills: Mapped[list[str]] = mapped_column(TextList(), default=list, server_default="[]")
    last_contacted_at: Mapped[dt.datetime | None]
    last_contacted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_contact_channel: Mapped[str | None] = mapped_column(String(40))
    last_engaged_at: Mapped[dt.datetime | None]
    unsubscribed_at: Mapped[dt.datetime | None]
    follow_up_on: Mapped[dt.date | None] = mapped_column(Date)
    follow_up_note: Mapped[str | None] = mapped_column(String(300))
    import_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("import_batches.id", ondelete="SET NULL"), index=True
    )
    # Optimistic locking: a save based on an older version is refused.
    version: Mapped[int] = mapped_column(default=1)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __mapper_args__ = {"version_id_col": version}

    tags: Mapped[list[CandidateTag]] = relationship(
        back_populates="candidate", cascade="all, delete-orphan", lazy="selectin"
    )
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class CandidateTag(Base):
    __tablename__ = "candidate_tags"
    __table_args__ = (Index(None, "tag", "candidate_id"),)

    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(80), primary_key=True)
    candidate: Mapped[Candidate] = relationship(back_populates="tags")


class CustomField(Base):
    """A field an admin adds to every candidate; values live in Candidate.custom_fields."""

    __tablename__ = "custom_fields"
    __table_args__ = (_choice("kind", CUSTOM_FIELD_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(10))
    choices: Mapped[list[Any] | None]
    position: Mapped[int] = mapped_column(default=0)


class Activity(Base):
    """One entry on a candidate's timeline: a note, a touch, an email event, an edit."""

    __tablename__ = "activities"
    __table_args__ = (Index(None, "candidate_id", "occurred_at"), Index(None, "occurred_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    channel: Mapped[str | None] = mapped_column(String(40))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any] | None]
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))


class DuplicateDismissal(Base):
    """A pair of candidates a recruiter said are not the same person (lower id first)."""

    __tablename__ = "duplicate_dismissals"
    __table_args__ = (Index(None, "candidate_b_id"),)

    candidate_a_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    candidate_b_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    dismissed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    dismissed_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


class ImportBatch(Base):
    __tablename__ = "import_batches"
    __table_args__ = (_choice("kind", IMPORT_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="candidates")
    filename: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    rows_read: Mapped[int] = mapped_column(default=0)
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    duplicate_count: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)
    error_report: Mapped[str | None] = mapped_column(Text)
    options: Mapped[dict[str, Any] | None]
    undone_at: Mapped[dt.datetime | None]


class ImportChange(Base):
    """What one import did to one candidate, so the import can be undone."""

    __tablename__ = "import_changes"
    # candidate_id indexed: deleting a candidate nulls it here (ON DELETE SET NULL).
    __table_args__ = (Index(None, "batch_id"), Index(None, "candidate_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL")
    )
    action: Mapped[str] = mapped_column(String(10))  # created | updated
    previous: Mapped[dict[str, Any] | None]


class SavedMapping(Base):
    """A column mapping remembered for a header layout, offered on the next import."""

    __tablename__ = "saved_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="candidates")
    mapping: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)


# --- talent pools -----------------------------------------------------------------------


class Pool(Timestamped, Base):
    __tablename__ = "pools"
    __table_args__ = (_choice("kind", POOL_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10))
    filter: Mapped[dict[str, Any] | None]
    stages: Mapped[list[Any]] = mapped_column(default=list)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Cadence guard: at most this many touches a week, and "radio silence" after N days.
    frequency_cap_per_week: Mapped[int | None]
    silence_days: Mapped[int | None]


class PoolMember(Base):
    """Membership of a static pool, and the stage of a person in any pool."""

    __tablename__ = "pool_members"
    __table_args__ = (Index(None, "candidate_id"),)

    pool_id: Mapped[int] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True
    )
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str | None] = mapped_column(String(60))
    added_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


# --- jobs, pipeline and costs -----------------------------------------------------------


class Job(Timestamped, Base):
    __tablename__ = "jobs"
    __table_args__ = (_choice("status", JOB_STATUSES), Index(None, "opened_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(160))
    role_family: Mapped[str | None] = mapped_column(String(60))
    key_role: Mapped[bool] = mapped_column(default=False)
    hiring_manager: Mapped[str | None] = mapped_column(String(120))
    location: Mapped[str | None] = mapped_column(String(120))
    opened_at: Mapped[dt.date] = mapped_column(Date)
    filled_at: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")


class Application(Timestamped, Base):
    __tablename__ = "applications"
    __table_args__ = (
        _choice("source", APPLICATION_SOURCES),
        _choice("stage", APPLICATION_STAGES),
        UniqueConstraint("candidate_id", "job_id"),
        Index(None, "job_id"),
        Index(None, "hired_at"),
        Index(None, "source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL")
    )
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    source_detail: Mapped[str | None] = mapped_column(String(120))
    pool_id: Mapped[int | None] = mapped_column(ForeignKey("pools.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    stage: Mapped[str] = mapped_column(String(10), default="applied")
    sourced_at: Mapped[dt.datetime | None]
    applied_at: Mapped[dt.datetime | None]
    screen_at: Mapped[dt.datetime | None]
    interview_at: Mapped[dt.datetime | None]
    offer_at: Mapped[dt.datetime | None]
    hired_at: Mapped[dt.datetime | None]
    rejected_at: Mapped[dt.datetime | None]
    withdrew_at: Mapped[dt.datetime | None]
    offer_accepted: Mapped[bool | None]
    offer_decided_at: Mapped[dt.datetime | None]


class Cost(Base):
    __tablename__ = "costs"
    __table_args__ = (_choice("category", COST_CATEGORIES), Index(None, "incurred_on"))

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    incurred_on: Mapped[dt.date] = mapped_column(Date)
    category: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    # The category as its source named it, when the app files it under another one
    # ("sign-on bonus" under other): shown and exported beside the category.
    category_label: Mapped[str | None] = mapped_column(String(80))
    note: Mapped[str | None] = mapped_column(String(300))


# --- campaigns and delivery -------------------------------------------------------------


class Campaign(Timestamped, Base):
    __tablename__ = "campaigns"
    __table_args__ = (_choice("status", CAMPAIGN_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(160), unique=True)
    audience_pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("pools.id", ondelete="SET NULL")
    )
    sender_name: Mapped[str | None] = mapped_column(String(120))
    sender_email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    launched_at: Mapped[dt.datetime | None]
    # Failed attempts in a row; the campaign pauses itself when this reaches the limit.
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default="0")
    # Who launch enrolled and who it skipped, by reason (the campaign page shows it).
    launch_summary: Mapped[dict[str, Any] | None]

    steps: Mapped[list[CampaignStep]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="CampaignStep.position"
    )


class CampaignStep(Base):
    __tablename__ = "campaign_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    position: Mapped[int]
    subject: Mapped[str] = mapped_column(String(300))
    body_markdown: Mapped[str] = mapped_column(Text)
    delay_days: Mapped[int] = mapped_column(default=0)
    send_window: Mapped[dict[str, Any] | None]
    stop_on_reply: Mapped[bool] = mapped_column(default=True)
    stop_on_click: Mapped[bool] = mapped_column(default=False)
    stop_on_pipeline: Mapped[bool] = mapped_column(default=True)

    campaign: Mapped[Campaign] = relationship(back_populates="steps")


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        _choice("status", ENROLLMENT_STATUSES),
        UniqueConstraint("campaign_id", "candidate_id"),
        Index(None, "candidate_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(10), default="active")
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    stopped_reason: Mapped[str | None] = mapped_column(String(120))


class OutboxMessage(Base):
    """One message for one enrollment and step; unique_key makes enqueueing idempotent."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        _choice("status", OUTBOX_STATUSES),
        Index(None, "status", "due_at"),
        Index(None, "campaign_id", "status"),
        Index(None, "candidate_id"),
        Index(None, "message_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    unique_key: Mapped[str] = mapped_column(String(120), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("campaign_steps.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"))
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL")
    )
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(14), default="queued")
    skip_reason: Mapped[str | None] = mapped_column(String(120))
    due_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[dt.datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(80))
    message_id: Mapped[str | None] = mapped_column(String(250))
    smtp_reply: Mapped[str | None] = mapped_column(String(500))
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    # What this person got, kept once sent ("what each person got" on the campaign page).
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # Why the row waits longer than planned (frequency cap, retry after a 4xx).
    note: Mapped[str | None] = mapped_column(String(300))


class CampaignRecipient(Base):
    """A hand-picked person in a campaign's audience (when it is not aimed at a pool)."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (Index(None, "candidate_id"),)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    candidate_id: Mapped[int] = mapped_column(
        ForeignKey("candidates.id", ondelete="CASCADE"), primary_key=True
    )


class EmailTemplate(Timestamped, Base):
    """A saved subject and body to start a campaign step from."""

    __tablename__ = "email_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    subject: Mapped[str] = mapped_column(String(300))
    body_markdown: Mapped[str] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Link(Base):
    """A link in a sent message; click tracking redirects only to these stored URLs."""

    __tablename__ = "links"
    __table_args__ = (Index(None, "outbox_message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_message_id: Mapped[int] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        _choice("kind", EVENT_KINDS),
        Index(None, "campaign_id", "kind"),
        Index(None, "candidate_id", "occurred_at"),
        Index(None, "candidate_id", "campaign_id", "kind"),  # outreach metrics
        Index(None, "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    candidate_id: Mapped[int | None] = mapped_column(
        ForeignKey("candidates.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    step_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_steps.id", ondelete="SET NULL")
    )
    outbox_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("outbox_messages.id", ondelete="SET NULL")
    )
    link_id: Mapped[int | None] = mapped_column(ForeignKey("links.id", ondelete="SET NULL"))
    is_machine: Mapped[bool] = mapped_column(default=False)
    # How an open or click was seen (engagement.SEEN_VIA): the person's mail program,
    # Gmail's image proxy, Apple Mail Privacy Protection, or a scanner; None for others.
    seen_via: Mapped[str | None] = mapped_column(String(16))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    detail: Mapped[dict[str, Any] | None]


class Suppression(Base):
    """An address that must never be mailed, kept as a hash so it survives erasure."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    address_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(default=clock.now)
    note: Mapped[str | None] = mapped_column(String(300))


# --- content calendar and goals ---------------------------------------------------------


class ContentItem(Timestamped, Base):
    __tablename__ = "content_items"
    __table_args__ = (
        _choice("channel", CHANNELS),
        _choice("status", CONTENT_STATUSES),
        _choice("theme", CONTENT_THEMES),
        Index(None, "scheduled_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(20))
    scheduled_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(10), default="idea")
    theme: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(500))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    # {"freq": "weekly"|"monthly", "interval": N, "until": "YYYY-MM-DD" | null, "count": N}
    recurrence: Mapped[dict[str, Any] | None]
    recurrence_exceptions: Mapped[list[Any]] = mapped_column(default=list)
    published_at: Mapped[dt.datetime | None]


class ContentItemPool(Base):
    __tablename__ = "content_item_pools"

    content_item_id: Mapped[int] = mapped_column(
        ForeignKey("content_items.id", ondelete="CASCADE"), primary_key=True
    )
    pool_id: Mapped[int] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), primary_key=True
    )


class Goal(Timestamped, Base):
    __tablename__ = "goals"
    __table_args__ = (
        CheckConstraint("target_kind IN ('absolute', 'relative')", name="target_kind_valid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    metric: Mapped[str] = mapped_column(String(60))
    scope: Mapped[dict[str, Any]] = mapped_column(default=dict)
    baseline_value: Mapped[float | None]
    baseline_from: Mapped[dt.date | None] = mapped_column(Date)
    baseline_to: Mapped[dt.date | None] = mapped_column(Date)
    target_kind: Mapped[str] = mapped_column(String(10))
    # absolute: the value to reach; relative: the change as a fraction (-0.15 = 15% lower)
    target_value: Mapped[float]
    start_date: Mapped[dt.date] = mapped_column(Date)
    deadline: Mapped[dt.date] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
