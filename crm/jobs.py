"""Jobs (requisitions), applications moving through stages, offers, and hiring costs.

Rules (docs/metrics.md repeats the ones the metrics depend on):
- A job is one requisition with one opening: the first hire fills it (status "filled",
  filled_at the hire's date). Undoing the last hire of a filled job opens it again.
- One application per person and job; a second one is refused with one sentence.
- Pipeline stages run sourced < applied < screen < interview < offer < hired; rejected
  and withdrew end an application. Moving to a pipeline stage stamps it and clears the
  stamps of the stages after it (and any rejection or withdrawal): the person is back at
  that stage. A stamp may not come before the stamp of an earlier stage.
- An application holds one offer. Making it again (a re-made offer) clears the earlier
  decision, so only the last decision counts. Hiring someone records the offer as
  accepted; withdrawing with an offer out records it as declined; rejecting someone with
  an offer out (the company withdrew it) leaves the offer undecided, so it counts in no
  acceptance rate.
Every move writes a "stage" entry on the candidate's timeline and an audit entry.
Managers change nothing (require_writer).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session

from crm import activities, audit, clock, money
from crm.db import get_existing, read_session, write_session
from crm.errors import NotFound, ValidationError
from crm.models import (
    APPLICATION_SOURCES,
    APPLICATION_STAGES,
    JOB_STATUSES,
    Application,
    Campaign,
    Candidate,
    Cost,
    Job,
    Pool,
    User,
)
from crm.permissions import require_writer

PIPELINE_STAGES = ("sourced", "applied", "screen", "interview", "offer", "hired")
OUTCOME_STAGES = ("rejected", "withdrew")
STAGE_LABELS = {stage: stage.capitalize() for stage in PIPELINE_STAGES + OUTCOME_STAGES}
V = TypeVar("V")  # a view dataclass (_view_of)
COST_LABELS = money.COST_LABELS  # the categories' names live with their synonyms
# Source labels that ATS exports use, lower-cased, mapped to our sources. "Talent pool"
# and "CRM" are talent pools (DESIGN.md).
SOURCE_ALIASES = {
    "talent pool": "talent_pool",
    "talent pools": "talent_pool",
    "talent community": "talent_pool",
    "crm": "talent_pool",
    "silver medalist": "talent_pool",
    "campaign": "campaign",
    "crm campaign": "campaign",
    "email campaign": "campaign",
    "nurture campaign": "campaign",
    "job board": "job_board",
    "jobboard": "job_board",
    "linkedin jobs": "job_board",
    "indeed": "job_board",
    "glassdoor": "job_board",
    "referral": "referral",
    "employee referral": "referral",
    "agency": "agency",
    "recruitment agency": "agency",
    "career site": "career_site",
    "careers site": "career_site",
    "careers page": "career_site",
    "company website": "career_site",
    "direct": "direct",
    "sourced": "direct",
    "direct sourcing": "direct",
}
MAX_COST = Decimal("9999999999.99")


@dataclass(frozen=True)
class JobSummary:
    id: int
    title: str
    role_family: str | None
    key_role: bool
    hiring_manager: str | None
    location: str | None
    opened_at: dt.date
    filled_at: dt.date | None
    status: str
    stage_counts: dict[str, int] = field(default_factory=dict)

    @property
    def applications(self) -> int:
        return sum(self.stage_counts.values())


@dataclass(frozen=True)
class ApplicationView:
    id: int
    job_id: int
    job_title: str
    candidate_id: int | None
    candidate_name: str
    source: str
    pool_id: int | None
    campaign_id: int | None
    stage: str
    stage_at: dt.datetime | None  # when the current stage was reached
    offer_at: dt.datetime | None
    offer_accepted: bool | None
    offer_decided_at: dt.datetime | None


@dataclass(frozen=True)
class CostView:
    id: int
    job_id: int | None
    job_title: str | None
    incurred_on: dt.date
    category: str
    amount: Decimal
    currency: str
    note: str | None
    category_label: str | None = None  # the source's own name, filed under "other"

    @property
    def category_text(self) -> str:
        """The category as pages and exports show it: "Tools", "Other: Sign-on bonus"."""
        return money.category_text(self.category, self.category_label)


# --- small checks -----------------------------------------------------------------------


def normalize_source(text: str | None) -> str | None:
    """Our source for a label an ATS export uses ("Talent pool", "CRM", "Indeed"), or None."""
    if text is None:
        return None
    key = " ".join(text.replace("_", " ").replace("-", " ").lower().split())
    if not key:
        return None
    return SOURCE_ALIASES.get(key) or (
        key.replace(" ", "_") if key.replace(" ", "_") in APPLICATION_SOURCES else None
    )


def _moment(at: dt.datetime | dt.date | None) -> dt.datetime:
    if at is None:
        return clock.now()
    if not isinstance(at, dt.datetime):
        return dt.datetime.combine(at, dt.time(), dt.UTC)
    if at.tzinfo is None:
        raise ValidationError("Give the time with a timezone (UTC if unsure).")
    return at.astimezone(dt.UTC)


def _clean(text: str | None, limit: int, what: str) -> str | None:
    if text is None:
        return None
    cleaned = " ".join(str(text).split())
    if len(cleaned) > limit:
        raise ValidationError(f"The {what} is longer than {limit} characters.")
    return cleaned or None


def _check_stage(stage: str) -> None:
    if stage not in APPLICATION_STAGES:
        raise ValidationError(
            f"Unknown stage {stage!r}; use one of {', '.join(APPLICATION_STAGES)}."
        )


def _job(session: Session, job_id: int) -> Job:
    job = get_existing(session, Job, job_id, "job")
    return job


def _application(session: Session, application_id: int) -> Application:
    application = get_existing(session, Application, application_id, "application")
    return application


# --- jobs -------------------------------------------------------------------------------


def _check_job(job: Job) -> None:
    if not job.title:
        raise ValidationError("A job needs a title.")
    if job.status not in JOB_STATUSES:
        raise ValidationError(
            f"Unknown job status {job.status!r}; use one of {', '.join(JOB_STATUSES)}."
        )
    if job.filled_at is not None and job.filled_at < job.opened_at:
        raise ValidationError("A job cannot be filled before it opened.")
    if job.status == "filled" and job.filled_at is None:
        raise ValidationError("A filled job needs the date it was filled.")


def create_job(
    engine: Engine,
    *,
    actor: User,
    title: str,
    role_family: str | None = None,
    key_role: bool = False,
    hiring_manager: str | None = None,
    location: str | None = None,
    opened_at: dt.date,
    status: str = "open",
    filled_at: dt.date | None = None,
) -> int:
    require_writer(engine, actor)
    job = Job(
        title=_clean(title, 160, "title") or "",
        role_family=_clean(role_family, 60, "role family"),
        key_role=bool(key_role),
        hiring_manager=_clean(hiring_manager, 120, "hiring manager"),
        location=_clean(location, 120, "location"),
        opened_at=opened_at,
        filled_at=filled_at,
        status=status,
    )
    _check_job(job)
    with write_session(engine, actor=actor) as session:
        session.add(job)
        session.flush()
        audit.record_about(session, actor, "job.create", job.id)
        return job.id


JOB_FIELDS = (
    "title",
    "role_family",
    "key_role",
    "hiring_manager",
    "location",
    "opened_at",
    "filled_at",
    "status",
)


def update_job(engine: Engine, *, actor: User, job_id: int, **changes: Any) -> None:
    """Change a job's fields (JOB_FIELDS). Closing or holding a job keeps its fill date;
    opening it again clears it."""
    require_writer(engine, actor)
    unknown = set(changes) - set(JOB_FIELDS)
    if unknown:
        raise ValidationError(f"A job has no field {sorted(unknown)[0]!r}.")
    limits = {"title": 160, "role_family": 60, "hiring_manager": 120, "location": 120}
    with write_session(engine, actor=actor) as session:
        job = _job(session, job_id)
        for name, value in changes.items():
            if name in limits:
                value = _clean(value, limits[name], name.replace("_", " "))
            if name == "key_role":
                value = bool(value)
            setattr(job, name, value if name != "title" else (value or ""))
        if changes.get("status") == "open" and "filled_at" not in changes:
            job.filled_at = None
        _check_job(job)
        audit.record_about(session, actor, "job.update", job_id, {"fields": sorted(changes)})


def _stage_counts(session: Session, job_ids: list[int] | None) -> dict[int, dict[str, int]]:
    query = select(Application.job_id, Application.stage, func.count()).group_by(
        Application.job_id, Application.stage
    )
    if job_ids is not None:
        query = query.where(Application.job_id.in_(job_ids))
    counts: dict[int, dict[str, int]] = {}
    for job_id, stage, count in session.execute(query):
        counts.setdefault(job_id, {})[stage] = count
    return counts


def _summary(job: Job, counts: dict[str, int]) -> JobSummary:
    return JobSummary(
        id=job.id,
        title=job.title,
        role_family=job.role_family,
        key_role=job.key_role,
        hiring_manager=job.hiring_manager,
        location=job.location,
        opened_at=job.opened_at,
        filled_at=job.filled_at,
        status=job.status,
        stage_counts={stage: counts[stage] for stage in APPLICATION_STAGES if stage in counts},
    )


def list_jobs(engine: Engine, *, status: str | None = None) -> list[JobSummary]:
    """Jobs, newest first, each with how many applications sit at each stage."""
    with read_session(engine) as session:
        query = select(Job).order_by(Job.opened_at.desc(), Job.id.desc())
        if status is not None:
            query = query.where(Job.status == status)
        jobs = list(session.scalars(query))
        counts = _stage_counts(session, None if status is None else [job.id for job in jobs])
    return [_summary(job, counts.get(job.id, {})) for job in jobs]


def get_job(engine: Engine, job_id: int) -> JobSummary:
    with read_session(engine) as session:
        job = _job(session, job_id)
        counts = _stage_counts(session, [job_id]).get(job_id, {})
    return _summary(job, counts)


def delete_job(engine: Engine, *, actor: User, job_id: int) -> None:
    """Delete a job and its applications; its costs stay, no longer tied to a job."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        job = _job(session, job_id)
        session.delete(job)
        audit.record_about(session, actor, "job.delete", job_id)


# --- applications and stages ------------------------------------------------------------


def _stamp(stage: str) -> str:
    return f"{stage}_at"


def _current_stage_at(application: Application) -> dt.datetime | None:
    return getattr(application, _stamp(application.stage), None)


def _refill_or_reopen(session: Session, job: Job) -> None:
    """After a hire or its undoing: the earliest hire fills the job, or it opens again."""
    session.flush()
    first_hire = session.scalar(
        select(func.min(Application.hired_at)).where(
            Application.job_id == job.id, Application.hired_at.is_not(None)
        )
    )
    if first_hire is None:
        if job.status == "filled":
            job.status = "open"
        job.filled_at = None
    else:
        job.status = "filled"
        job.filled_at = _aware(first_hire).date()


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _apply_stage(session: Session, application: Application, stage: str, at: dt.datetime) -> None:
    """Set the stage and its stamp by the rules in the module docstring."""
    _check_stage(stage)
    job = _job(session, application.job_id)
    was_hired = application.hired_at is not None
    if stage in PIPELINE_STAGES:
        position = PIPELINE_STAGES.index(stage)
        for earlier in PIPELINE_STAGES[:position]:
            stamp = getattr(application, _stamp(earlier))
            if stamp is not None and at < _aware(stamp):
                raise ValidationError(
                    f"The {STAGE_LABELS[stage].lower()} cannot be dated before the "
                    f"{STAGE_LABELS[earlier].lower()} ({_aware(stamp):%Y-%m-%d %H:%M} UTC)."
                )
        for later in PIPELINE_STAGES[position + 1 :]:
            setattr(application, _stamp(later), None)
        application.rejected_at = None
        application.withdrew_at = None
        if position < PIPELINE_STAGES.index("offer"):
            application.offer_accepted = None
            application.offer_decided_at = None
        if stage == "offer":
            # A (re-)made offer: any earlier decision no longer counts.
            application.offer_accepted = None
            application.offer_decided_at = None
        if stage == "hired":
            if application.offer_at is None:
                application.offer_at = at
            if application.offer_accepted is not True or application.offer_decided_at is None:
                application.offer_accepted = True
                application.offer_decided_at = at
        setattr(application, _stamp(stage), at)
    else:
        offer_out = application.offer_at is not None and application.offer_accepted is None
        if stage == "withdrew" and offer_out:
            application.offer_accepted = False
            application.offer_decided_at = at
        application.hired_at = None
        application.rejected_at = at if stage == "rejected" else None
        application.withdrew_at = at if stage == "withdrew" else None
    application.stage = stage
    if stage == "hired" or was_hired:
        _refill_or_reopen(session, job)


def _log_stage(
    session: Session, actor: User, application: Application, job: Job, summary: str
) -> None:
    if application.candidate_id is not None:
        activities.record(
            session,
            actor=actor,
            candidate_ids=[application.candidate_id],
            kind="stage",
            summary=summary,
            details={
                "application_id": application.id,
                "job_id": job.id,
                "stage": application.stage,
            },
        )
    audit.record_about(
        session, actor, "application.stage", application.id, {"stage": application.stage}
    )


def add_application(
    engine: Engine,
    *,
    actor: User,
    job_id: int,
    candidate_id: int,
    source: str,
    pool_id: int | None = None,
    campaign_id: int | None = None,
    stage: str = "applied",
    at: dt.datetime | dt.date | None = None,
    source_detail: str | None = None,
) -> int:
    """Put a person on a job's pipeline; a campaign's audience pool is the pool when none
    is given."""
    require_writer(engine, actor)
    if source not in APPLICATION_SOURCES:
        raise ValidationError(
            f"Unknown source {source!r}; use one of {', '.join(APPLICATION_SOURCES)}."
        )
    _check_stage(stage)
    moment = _moment(at)
    with write_session(engine, actor=actor) as session:
        job = _job(session, job_id)
        candidate = get_existing(session, Candidate, candidate_id, "candidate")
        if pool_id is not None and session.get(Pool, pool_id) is None:
            raise NotFound("That pool no longer exists.")
        if campaign_id is not None:
            campaign = get_existing(session, Campaign, campaign_id, "campaign")
            pool_id = pool_id if pool_id is not None else campaign.audience_pool_id
        taken = session.scalar(
            select(Application.id).where(
                Application.job_id == job_id, Application.candidate_id == candidate_id
            )
        )
        if taken is not None:
            raise ValidationError(
                f"{candidate.full_name or 'This person'} is already on the pipeline for "
                f"{job.title}."
            )
        application = Application(
            job_id=job_id,
            candidate_id=candidate_id,
            source=source,
            source_detail=_clean(source_detail, 120, "source detail"),
            pool_id=pool_id,
            campaign_id=campaign_id,
            stage=stage,
        )
        session.add(application)
        _apply_stage(session, application, stage, moment)
        session.flush()
        _log_stage(
            session,
            actor,
            application,
            job,
            f"Added to {job.title} at {STAGE_LABELS[stage].lower()}",
        )
        return application.id


def move_stage(
    engine: Engine,
    *,
    actor: User,
    application_id: int,
    stage: str,
    at: dt.datetime | dt.date | None = None,
) -> None:
    require_writer(engine, actor)
    _check_stage(stage)
    moment = _moment(at)
    with write_session(engine, actor=actor) as session:
        application = _application(session, application_id)
        job = _job(session, application.job_id)
        _apply_stage(session, application, stage, moment)
        _log_stage(
            session, actor, application, job, f"{job.title}: moved to {STAGE_LABELS[stage].lower()}"
        )


def record_offer(
    engine: Engine,
    *,
    actor: User,
    application_id: int,
    accepted: bool | None,
    at: dt.datetime | dt.date | None = None,
) -> None:
    """accepted None: an offer is made (again); True: accepted; False: declined (the
    person withdraws). A decision without an offer on record makes the offer at the same
    moment."""
    require_writer(engine, actor)
    moment = _moment(at)
    with write_session(engine, actor=actor) as session:
        application = _application(session, application_id)
        job = _job(session, application.job_id)
        if accepted is None:
            _apply_stage(session, application, "offer", moment)
            summary = f"{job.title}: offer made"
        else:
            if application.offer_at is None or application.stage in OUTCOME_STAGES:
                _apply_stage(session, application, "offer", moment)
            offer_at = _aware(application.offer_at) if application.offer_at else moment
            if moment < offer_at:
                raise ValidationError(
                    f"The decision cannot come before the offer ({offer_at:%Y-%m-%d} UTC)."
                )
            if accepted:
                if application.stage == "hired":
                    application.offer_accepted = True
                    application.offer_decided_at = moment
                else:
                    _apply_stage(session, application, "offer", offer_at)
                    application.offer_accepted = True
                    application.offer_decided_at = moment
                summary = f"{job.title}: offer accepted"
            else:
                if application.stage == "hired":
                    _apply_stage(session, application, "offer", offer_at)
                _apply_stage(session, application, "withdrew", moment)
                application.offer_accepted = False
                application.offer_decided_at = moment
                summary = f"{job.title}: offer declined"
        _log_stage(session, actor, application, job, summary)


def _view_of(view: type[V], record: Any, **not_held: Any) -> V:
    """A view dataclass: the record's attributes of the same names, and the fields the
    record does not hold as given."""
    names = (one.name for one in fields(view))
    held = {name: getattr(record, name) for name in names if name not in not_held}
    return view(**held, **not_held)


def _views(session: Session, query: Any) -> list[ApplicationView]:
    rows = session.execute(
        query.add_columns(Job.title, Candidate.first_name, Candidate.last_name)
        .join(Job, Job.id == Application.job_id)
        .outerjoin(Candidate, Candidate.id == Application.candidate_id)
    ).all()
    views = []
    for application, title, first, last in rows:
        name = f"{first or ''} {last or ''}".strip()
        if application.candidate_id is None:
            name = "(erased)"
        views.append(
            _view_of(
                ApplicationView,
                application,
                job_title=title,
                candidate_name=name,
                stage_at=_current_stage_at(application),
            )
        )
    return views


def applications_of(engine: Engine, candidate_id: int) -> list[ApplicationView]:
    """A person's applications, newest first (the profile shows them)."""
    with read_session(engine) as session:
        return _views(
            session,
            select(Application)
            .where(Application.candidate_id == candidate_id)
            .order_by(Application.created_at.desc(), Application.id.desc()),
        )


def pipeline(engine: Engine, job_id: int) -> dict[str, list[ApplicationView]]:
    """A job's applications by stage, every stage present, longest waiting first."""
    with read_session(engine) as session:
        _job(session, job_id)
        views = _views(
            session,
            select(Application).where(Application.job_id == job_id).order_by(Application.id),
        )
    board: dict[str, list[ApplicationView]] = {stage: [] for stage in APPLICATION_STAGES}
    for view in views:
        board[view.stage].append(view)
    far_future = dt.datetime.max.replace(tzinfo=dt.UTC)
    for cards in board.values():
        cards.sort(key=lambda view: (view.stage_at or far_future, view.id))
    return board


# --- costs ------------------------------------------------------------------------------


def _amount(amount: Decimal | str | float | int) -> Decimal:
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        raise ValidationError(f"The amount {amount!r} is not a number.") from None
    if not value.is_finite() or value <= 0:
        raise ValidationError("A cost must be more than zero.")
    if value > MAX_COST:
        raise ValidationError("A cost must be less than 10 billion.")
    return value


def add_cost(
    engine: Engine,
    *,
    actor: User,
    amount: Decimal,
    category: str,
    incurred_on: dt.date,
    job_id: int | None = None,
    note: str | None = None,
    currency: str | None = None,
) -> int:
    """A cost for a job, or for the team in a period (job_id None).

    `category` is one of COST_CATEGORIES, a synonym ("headhunter"), or the cost's own name
    ("Sign-on bonus", kept as its label under "other"). The currency defaults to the
    team's; one the team has no rate for is refused (crm.money).
    """
    require_writer(engine, actor)
    filed, label = money.file_category(category)
    value = _amount(amount)
    code = None if currency is None else money.currency_code(currency)
    cleaned_note = _clean(note, 300, "note")
    with write_session(engine, actor=actor) as session:
        code = money.require_convertible(session, code)
        if job_id is not None:
            _job(session, job_id)
        cost = Cost(
            job_id=job_id,
            incurred_on=incurred_on,
            category=filed,
            category_label=label,
            amount=value,
            currency=code,
            note=cleaned_note,
        )
        session.add(cost)
        session.flush()
        audit.record_about(
            session,
            actor,
            "cost.add",
            cost.id,
            {"amount": str(value), "currency": code, "category": filed, "label": label},
        )
        return cost.id


def delete_cost(engine: Engine, *, actor: User, cost_id: int) -> None:
    """Delete a cost; the figures no longer count it."""
    require_writer(engine, actor)
    with write_session(engine, actor=actor) as session:
        cost = get_existing(session, Cost, cost_id, "cost")
        session.delete(cost)
        audit.record_about(session, actor, "cost.delete", cost_id)


def cost_conditions(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    job_id: int | None = None,
    category: str | None = None,
) -> list[ColumnElement[bool]]:
    """The costs incurred from start to end (both days included), for one job, under one
    category; a bound left None does not narrow."""
    conditions: list[ColumnElement[bool]] = []
    if start is not None:
        conditions.append(Cost.incurred_on >= start)
    if end is not None:
        conditions.append(Cost.incurred_on <= end)
    if job_id is not None:
        conditions.append(Cost.job_id == job_id)
    if category is not None:
        conditions.append(Cost.category == category)
    return conditions


def list_costs(
    engine: Engine,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    job_id: int | None = None,
    category: str | None = None,
    limit: int = 500,
) -> list[CostView]:
    """Costs, newest first, filtered in SQL."""
    query = (
        select(Cost, Job.title)
        .outerjoin(Job, Job.id == Cost.job_id)
        .where(*cost_conditions(start=start, end=end, job_id=job_id, category=category))
        .order_by(Cost.incurred_on.desc(), Cost.id.desc())
        .limit(limit)
    )
    with read_session(engine) as session:
        return [_view_of(CostView, cost, job_title=title) for cost, title in session.execute(query)]
