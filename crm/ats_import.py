"""Importing jobs, applications and costs from an ATS export (CSV).

The file is read like a candidate file (crm.csvfile: encoding, delimiter and preamble
detection, one-sentence InputUnusable refusals), its headers are matched to the fields of
the kind by name (Greenhouse-, Lever-, Workable-like headers, case and punctuation aside),
and every row goes through the rules of crm.jobs (stages, offers, one opening per job).

- The whole import is one write transaction; each row runs in a savepoint, so a refused
  row (a bad date, an unknown stage or source, a job or person not found, a negative cost,
  a cost in a currency the team has no rate for) leaves no trace and is reported as (row,
  column, problem), row being the file's line. A cost's category is never refused: one
  the app does not know is kept as its label under "other" (crm.money).
- Importing the same file again creates nothing twice. Jobs are matched by their ATS id
  when the file has one, else by title and opened date; applications by their ATS id,
  else by person and job; costs by date, category and its label, amount, currency and
  job (the n-th such row of a file matches the n-th such cost already here, so two equal
  costs in one file are both kept).
- A job or cost already here takes the file's non-blank values (a blank cell erases
  nothing). An application already here takes the file's stages and offer: the ATS is
  where the pipeline is run, so its export wins.
- An application names a person by email or LinkedIn URL. Someone not yet in the CRM is
  added (source "ATS import") when the row also gives their name and email; otherwise the
  row is refused.
- Every import is recorded as an ImportBatch of its kind with one audit entry; there is
  no undo (that is for candidate imports only).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm import activities, audit, clock, csvfile, money
from crm import jobs as job_rules
from crm.candidate_fields import clean_candidate
from crm.db import write_session
from crm.errors import CrmError, InputUnusable, ValidationError
from crm.identity import address_hash, clean_text, normalize_email, normalize_linkedin
from crm.imports.ats_mapping import auto_mapping, check_kind, mapping_problem, with_overrides
from crm.imports.ats_pipeline import (
    RowError,
    apply_stages,
    snapshot,
    stage_of,
    value_key,
    yes_no,
)
from crm.imports.ats_tables import (
    ALIAS_RANKS,
    EXTRA_SOURCES,
    JOB_STATUS_ALIASES,
    UNDECIDED,
)
from crm.imports.candidate_writer import SUPPRESSED_NOTE
from crm.imports.report import ImportSummary, audit_batch, check_size, report_csv
from crm.imports.values import day_first, parse_amount, parse_moment
from crm.models import (
    APPLICATION_STAGES,
    Application,
    Campaign,
    Candidate,
    Cost,
    ImportBatch,
    Job,
    Pool,
    Suppression,
    User,
)
from crm.permissions import require_writer

MAX_BYTES = 50 * 1024 * 1024
NEW_CANDIDATE_SOURCE = "ATS import"
PREVIEW_PROBLEMS = 50
# What an application row may say of someone the CRM does not have yet.
_PERSON_FIELDS = ("first_name", "last_name", "full_name", "email", "linkedin_url")


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtsImportResult(ImportSummary):
    kind: str
    read: int
    created: int
    updated: int
    skipped: int
    errors: list[tuple[int, str, str]]
    candidates_created: int = 0  # people added from an applications file (name and email)
    batch_id: int | None = None

    def refused(self) -> list[tuple[int, str, str]]:
        return self.errors

    def counts(self) -> tuple[int, int]:
        """`crm import --json` prints the skipped rows as duplicates."""
        return self.skipped, len(self.errors)


@dataclass(frozen=True)
class AtsPreview:
    kind: str
    shape: csvfile.FileShape
    mapping: dict[str, str | None]  # header -> field or None (ignored)
    read: int
    created: int
    updated: int
    skipped: int
    error_count: int
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # the first ones
    candidates_created: int = 0


# --- the import ---------------------------------------------------------------------------


class _DryRun(Exception):
    """Raised at the end of a dry run so the transaction rolls back."""


@dataclass
class _Counts:
    read: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    candidates_created: int = 0
    errors: list[tuple[int, str, str]] = field(default_factory=list)

    def tally(self) -> dict[str, int]:
        """The counts a preview and a result both give."""
        names = ("read", "created", "updated", "skipped", "candidates_created")
        return {name: getattr(self, name) for name in names}


class _Run:
    """One pass over the rows of a file inside one session."""

    def __init__(
        self,
        session: Session,
        kind: str,
        chosen: dict[str, str | None],
        actor: User | None,
        month_first: bool,
    ) -> None:
        self.session = session
        self.kind = kind
        self.actor = actor
        self.month_first = month_first
        self.column = {name: header for header, name in chosen.items() if name}
        self.index: dict[str, int] = {}
        self.counts = _Counts()
        self.now = clock.now()
        self.cost_seen: dict[tuple[Any, ...], int] = {}
        self.cost_existing: dict[tuple[Any, ...], int] = {}
        self.team: money.TeamMoney | None = None  # read once, on the first cost row
        self.suppressions: bool | None = None
        self.created_person = False

    # reading cells -------------------------------------------------------------------------

    def values(self, headers: list[str], cells: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        positions = {header: i for i, header in reversed(list(enumerate(headers)))}
        for name, header in self.column.items():
            position = positions.get(header)
            if position is not None and position < len(cells):
                text = clean_text(cells[position])
                if text:
                    found[name] = text
        return found

    def moment(self, values: dict[str, str], name: str) -> dt.datetime | None:
        text = values.get(name)
        if text is None:
            return None
        try:
            return parse_moment(text, month_first=self.month_first)
        except ValueError:
            raise RowError(name, f"{text!r} is not a date (use 2025-03-31).") from None

    def date(self, values: dict[str, str], name: str) -> dt.date | None:
        moment = self.moment(values, name)
        return None if moment is None else moment.date()

    def text(self, values: dict[str, str], name: str, limit: int) -> str | None:
        text = values.get(name)
        if text is not None and len(text) > limit:
            raise RowError(name, f"The {name.replace('_', ' ')} is longer than {limit} characters.")
        return text

    # the rows ---------------------------------------------------------------------------------

    def row(self, line: int, values: dict[str, str]) -> None:
        handler: Callable[[dict[str, str]], str] = getattr(self, f"_{self.kind}_row")
        try:
            with self.session.begin_nested():
                outcome = handler(values)
        except RowError as error:
            self.counts.errors.append((line, self.column.get(error.field, ""), error.problem))
            return
        except CrmError as error:
            self.counts.errors.append((line, "", str(error)))
            return
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)

    # jobs -------------------------------------------------------------------------------------

    def _jobs_row(self, values: dict[str, str]) -> str:
        title = self.text(values, "title", 160)
        if not title:
            raise RowError("title", "The job title is blank.")
        opened = self.date(values, "opened")
        if opened is None:
            raise RowError("opened", "The opened date is blank.")
        filled = self.date(values, "filled")
        status = None
        if "status" in values:
            status = JOB_STATUS_ALIASES.get(value_key(values["status"]))
            if status is None:
                raise RowError(
                    "status",
                    f"Unknown job status {values['status']!r}; use open, on hold, filled "
                    "or closed.",
                )
        key_role = None
        if "key_role" in values:
            key_role = yes_no(values["key_role"])
            if key_role is None:
                raise RowError("key_role", f"{values['key_role']!r} is not yes or no.")
        external_id = self.text(values, "external_id", 80)
        changes: dict[str, Any] = {
            "title": title,
            "role_family": self.text(values, "role_family", 60),
            "key_role": key_role,
            "hiring_manager": self.text(values, "hiring_manager", 120),
            "location": self.text(values, "location", 120),
            "opened_at": opened,
            "filled_at": filled,
            "status": status or ("filled" if filled else None),
        }
        changes = {name: value for name, value in changes.items() if value is not None}
        job = None
        if external_id:
            job = self.session.scalar(select(Job).where(Job.external_id == external_id))
        if job is None:
            job = self.session.scalars(
                select(Job)
                .where(func.lower(Job.title) == title.lower(), Job.opened_at == opened)
                .where(Job.external_id.is_(None) | (Job.external_id == (external_id or "")))
                .order_by(Job.id)
            ).first()
        if job is None:
            job = Job(external_id=external_id, **({"status": "open", "key_role": False} | changes))
            job_rules._check_job(job)
            self.session.add(job)
            self.session.flush()
            self._audit("job.create", "job", job.id)
            return "created"
        if external_id and job.external_id is None:
            changes["external_id"] = external_id
        hired = self.session.scalar(
            select(Application.id)
            .where(Application.job_id == job.id, Application.hired_at.is_not(None))
            .limit(1)
        )
        if hired is not None:
            # A hire fills the job (crm.jobs): its status and fill date stay as they are.
            changes.pop("status", None)
            changes.pop("filled_at", None)
        changed = {n: v for n, v in changes.items() if getattr(job, n) != v}
        if not changed:
            return "skipped"
        for name, value in changed.items():
            setattr(job, name, value)
        job_rules._check_job(job)
        self.session.flush()
        self._audit("job.update", "job", job.id, {"fields": sorted(changed)})
        return "updated"

    # applications -----------------------------------------------------------------------------

    def _find_job(self, values: dict[str, str]) -> Job:
        ref, title = values.get("job_ref"), values.get("job_title")
        if ref:
            job = self.session.scalar(select(Job).where(Job.external_id == ref))
            if job is not None:
                return job
            if not title:
                # Some exports put the job's name where its ID would be.
                found = list(
                    self.session.scalars(
                        select(Job).where(func.lower(Job.title) == ref.lower()).limit(2)
                    )
                )
                if len(found) == 1:
                    return found[0]
                raise RowError("job_ref", f"No job has the ATS ID {ref!r}; import the jobs first.")
        if not title:
            raise RowError(
                "job_title" if "job_title" in self.column else "job_ref", "The job is blank."
            )
        found = list(
            self.session.scalars(select(Job).where(func.lower(Job.title) == title.lower()).limit(2))
        )
        if not found:
            raise RowError("job_title", f"No job is called {title!r}; import the jobs first.")
        if len(found) > 1:
            raise RowError(
                "job_title", f"Several jobs are called {title!r}; give the job's ATS ID instead."
            )
        return found[0]

    def _find_person(self, values: dict[str, str]) -> Candidate:
        email = linkedin = None
        try:
            email = normalize_email(values.get("email"))
        except ValidationError as error:
            raise RowError("email", str(error)) from None
        try:
            linkedin = normalize_linkedin(values.get("linkedin_url"))
        except ValidationError as error:
            raise RowError("linkedin_url", str(error)) from None
        if email is None and linkedin is None:
            raise RowError(
                "email" if "email" in self.column else "linkedin_url",
                "The candidate's email and LinkedIn URL are blank.",
            )
        person = None
        if email is not None:
            person = self.session.scalar(
                select(Candidate).where(Candidate.email_normalized == email[1])
            )
        if person is None and linkedin is not None:
            person = self.session.scalar(
                select(Candidate).where(Candidate.linkedin_normalized == linkedin[1])
            )
        if person is not None:
            return person
        named = any(values.get(name) for name in ("first_name", "last_name", "full_name"))
        if email is None or not named:
            shown = email[0] if email else linkedin[0]  # type: ignore[index]
            raise RowError(
                "email" if email else "linkedin_url",
                f"No one in the CRM has {shown}; import them as candidates first, or give "
                "their name and email to add them.",
            )
        # The same field rules as every other way a candidate is created.
        given = {name: values[name] for name in _PERSON_FIELDS if name in values}
        cleaned = clean_candidate(given | {"source": NEW_CANDIDATE_SOURCE})
        if cleaned.problems:
            name, problem = cleaned.problems[0]
            if name in {"first_name", "last_name"} and name not in self.column:
                name = "full_name"  # the name came from a full-name column
            raise RowError(name, problem)
        suppressed = self._suppressed(email[1])
        person = Candidate(
            **cleaned.values,
            consent_status="do_not_contact" if suppressed else "legitimate_interest",
            owner_id=self.actor.id if self.actor else None,
            consent_note=SUPPRESSED_NOTE if suppressed else None,
            updated_by_id=self.actor.id if self.actor else None,
        )
        self.session.add(person)
        self.session.flush()
        self.created_person = True
        return person

    def _suppressed(self, email_key: str) -> bool:
        if self.suppressions is None:
            self.suppressions = self.session.scalar(select(Suppression.id).limit(1)) is not None
        if not self.suppressions:
            return False
        return (
            self.session.scalar(
                select(Suppression.id).where(Suppression.address_hash == address_hash(email_key))
            )
            is not None
        )

    def _named(self, values: dict[str, str], name: str, model: Any) -> int | None:
        text = values.get(name)
        if text is None:
            return None
        found = self.session.scalar(
            select(model.id).where(func.lower(model.name) == text.lower()).limit(1)
        )
        if found is None:
            what = "talent pool" if name == "pool" else "campaign"
            raise RowError(name, f"No {what} is called {text!r}.")
        return found

    def _applications_row(self, values: dict[str, str]) -> str:
        self.created_person = False
        external_id = self.text(values, "external_id", 80)
        job = self._find_job(values)
        raw_source = values.get("source")
        if raw_source is None:
            raise RowError("source", "The source is blank.")
        source = job_rules.normalize_source(raw_source) or EXTRA_SOURCES.get(value_key(raw_source))
        if source is None:
            raise RowError(
                "source",
                f"Unknown source {raw_source!r}; use one like Talent pool, CRM campaign, "
                "LinkedIn, Indeed, Referral, Agency, Careers page or Direct.",
            )
        pool_id = self._named(values, "pool", Pool)
        campaign_id = self._named(values, "campaign", Campaign)
        stamps = {stage: self.moment(values, stage) for stage in APPLICATION_STAGES}
        decided = self.moment(values, "offer_decided")
        final = None
        if "stage" in values:
            final = stage_of(values["stage"])
            if final is None:
                raise RowError(
                    "stage",
                    f"Unknown stage {values['stage']!r}; use one of "
                    f"{', '.join(job_rules.STAGE_LABELS.values())}.",
                )
        accepted = None
        if "offer_accepted" in values:
            accepted = yes_no(values["offer_accepted"])
            if accepted is None and value_key(values["offer_accepted"]) not in UNDECIDED:
                raise RowError(
                    "offer_accepted",
                    f"{values['offer_accepted']!r} is not yes, no or blank (accepted, declined).",
                )
        person = self._find_person(values)
        application = None
        if external_id:
            application = self.session.scalar(
                select(Application).where(Application.external_id == external_id)
            )
        if application is None:
            application = self.session.scalar(
                select(Application).where(
                    Application.job_id == job.id, Application.candidate_id == person.id
                )
            )
            if (
                application is not None
                and external_id
                and application.external_id not in (None, external_id)
            ):
                raise RowError(
                    "external_id",
                    f"{person.full_name or 'This person'} is already on the pipeline for "
                    f"{job.title} under the ATS ID {application.external_id!r}.",
                )
        before = snapshot(application) if application is not None else None
        if application is None:
            application = Application(job_id=job.id, candidate_id=person.id, stage="applied")
            self.session.add(application)
        elif application.job_id != job.id:
            raise RowError(
                "external_id",
                f"The application {external_id!r} is for another job already; it cannot move.",
            )
        previous = {stage: getattr(application, f"{stage}_at") for stage in APPLICATION_STAGES}
        application.external_id = external_id or application.external_id
        application.source = source
        detail = raw_source if value_key(raw_source) != source.replace("_", " ") else None
        application.source_detail = detail[:120] if detail else None
        application.pool_id = pool_id
        application.campaign_id = campaign_id
        if campaign_id is not None and pool_id is None:
            application.pool_id = self.session.scalar(
                select(Campaign.audience_pool_id).where(Campaign.id == campaign_id)
            )
        apply_stages(
            self.session, application, stamps, final, accepted, decided, previous, self.now
        )
        job_rules._refill_or_reopen(self.session, job)
        self.session.flush()
        if self.created_person:
            self.counts.candidates_created += 1
        if before is not None and before == snapshot(application):
            return "skipped"
        if self.actor is not None and application.candidate_id is not None:
            label = job_rules.STAGE_LABELS[application.stage].lower()
            activities.record(
                self.session,
                actor=self.actor,
                candidate_ids=[application.candidate_id],
                kind="stage",
                summary=f"{job.title}: {label} (imported from the ATS)",
                details={
                    "application_id": application.id,
                    "job_id": job.id,
                    "stage": application.stage,
                },
            )
        return "created" if before is None else "updated"

    # costs ------------------------------------------------------------------------------------

    def _costs_row(self, values: dict[str, str]) -> str:
        incurred = self.date(values, "date")
        if incurred is None:
            raise RowError("date", "The date is blank.")
        text = values.get("amount")
        if text is None:
            raise RowError("amount", "The amount is blank.")
        try:
            amount, symbol_currency = parse_amount(text)
        except (ValueError, InvalidOperation):
            raise RowError("amount", f"{text!r} is not an amount of money.") from None
        try:
            amount = job_rules._amount(amount)
        except ValidationError as error:
            raise RowError("amount", str(error)) from None
        # Never refused for its category: one of ours (or a synonym), else kept as the
        # cost's own label under "other" (crm.money).
        category, label = money.file_category(values.get("category"))
        if self.team is None:
            self.team = money.team_money_in(self.session, lock="share")
        if "currency" in values:
            try:
                currency = money.currency_code(values["currency"])
            except ValidationError as error:
                raise RowError("currency", str(error)) from None
        else:
            currency = symbol_currency or self.team.currency
        if not self.team.counts(currency):
            where = "currency" if "currency" in values else "amount"
            raise RowError(where, money.unconvertible(self.team, currency))
        job_id = None
        if "job_ref" in values or "job_title" in values:
            job_id = self._find_job(values).id
        note = self.text(values, "note", 300)
        key = (incurred, category, label, amount, currency, job_id)
        self.cost_seen[key] = self.cost_seen.get(key, 0) + 1
        if key not in self.cost_existing:
            self.cost_existing[key] = self.session.scalar(
                select(func.count())
                .select_from(Cost)
                .where(
                    Cost.incurred_on == incurred,
                    Cost.category == category,
                    Cost.category_label.is_(None)
                    if label is None
                    else Cost.category_label == label,
                    Cost.amount == amount,
                    Cost.currency == currency,
                    Cost.job_id.is_(None) if job_id is None else Cost.job_id == job_id,
                )
            )
        if self.cost_seen[key] <= self.cost_existing[key]:
            return "skipped"
        cost = Cost(
            job_id=job_id,
            incurred_on=incurred,
            category=category,
            category_label=label,
            amount=amount,
            currency=currency,
            note=note,
        )
        self.session.add(cost)
        self.session.flush()
        self._audit(
            "cost.add",
            "cost",
            cost.id,
            {"amount": str(amount), "currency": currency, "category": category, "label": label},
        )
        return "created"

    def _audit(
        self, action: str, entity: str, entity_id: int, detail: dict[str, Any] | None = None
    ) -> None:
        if self.actor is not None:
            audit.record(
                self.session,
                actor=self.actor,
                action=action,
                entity=entity,
                entity_id=entity_id,
                detail=detail,
            )


# --- the public API -----------------------------------------------------------------------


def detect(data: bytes, *, kind: str) -> tuple[csvfile.FileShape, dict[str, str | None]]:
    """How the file is read and the automatic mapping, before any mapping is checked (the
    page shows it so the person importing can change it)."""
    check_kind(kind)
    check_size(data, MAX_BYTES, f"an import of {kind}")
    shape = csvfile.inspect(data, known_headers=set(ALIAS_RANKS[kind]))
    return shape, auto_mapping(kind, shape.headers)


def _read(
    data: bytes, kind: str, mapping: dict[str, str | None] | None
) -> tuple[
    csvfile.FileShape, dict[str, str | None], list[tuple[int, list[str] | None, str | None]]
]:
    check_kind(kind)
    check_size(data, MAX_BYTES, f"an import of {kind}")
    shape = csvfile.inspect(data, known_headers=set(ALIAS_RANKS[kind]))
    chosen = with_overrides(kind, shape.headers, mapping)
    problem = mapping_problem(kind, chosen)
    if problem:
        raise InputUnusable(problem)
    with csvfile.CsvRows(data, shape) as reader:
        reader.read_header()
        rows = list(reader)
    return shape, chosen, rows


def _execute(
    session: Session,
    kind: str,
    shape: csvfile.FileShape,
    chosen: dict[str, str | None],
    rows: list[tuple[int, list[str] | None, str | None]],
    actor: User | None,
) -> _Run:
    date_fields = {
        "jobs": ("opened", "filled"),
        "applications": (*APPLICATION_STAGES, "offer_decided"),
        "costs": ("date",),
    }[kind]
    positions = [
        shape.headers.index(header) for header, name in chosen.items() if name in date_fields
    ]
    samples = [cells[p] for _line, cells, _ in rows if cells for p in positions if p < len(cells)]
    run = _Run(session, kind, chosen, actor, not day_first(samples))
    headers = list(shape.headers)
    for line, cells, problem in rows:
        run.counts.read += 1
        if cells is None:
            run.counts.errors.append((line, "", problem or "The row is not valid CSV."))
            continue
        run.row(line, run.values(headers, cells))
    return run


def preview(
    engine: Engine,
    data: bytes,
    *,
    kind: str,
    mapping: dict[str, str | None] | None = None,
) -> AtsPreview:
    """The detected mapping and what an import would do, row by row; writes nothing."""
    shape, chosen, rows = _read(data, kind, mapping)
    run: _Run | None = None
    try:
        with write_session(engine) as session:
            run = _execute(session, kind, shape, chosen, rows, None)
            raise _DryRun
    except _DryRun:
        pass
    assert run is not None
    counts = run.counts
    return AtsPreview(
        kind=kind,
        shape=shape,
        mapping=chosen,
        error_count=len(counts.errors),
        problems=counts.errors[:PREVIEW_PROBLEMS],
        **counts.tally(),
    )


def import_file(
    engine: Engine,
    *,
    actor: User,
    data: bytes,
    filename: str,
    kind: str,
    mapping: dict[str, str | None] | None = None,
    dry_run: bool = False,
) -> AtsImportResult:
    """Import the file in one transaction; refused rows are reported, not raised.

    A file unusable as a whole raises InputUnusable and writes nothing; dry_run=True does
    everything but commit.
    """
    require_writer(engine, actor)
    filename = " ".join(clean_text(filename).split())[:255] or f"{kind}.csv"
    shape, chosen, rows = _read(data, kind, mapping)
    run: _Run | None = None
    batch_id = None
    try:
        with write_session(engine, actor=actor) as session:
            run = _execute(session, kind, shape, chosen, rows, actor)
            if dry_run:
                raise _DryRun
            counts = run.counts
            batch = ImportBatch(
                kind=kind,
                filename=filename,
                created_by_id=actor.id,
                created_at=run.now,
                rows_read=counts.read,
                created_count=counts.created,
                updated_count=counts.updated,
                duplicate_count=counts.skipped,
                error_count=len(counts.errors),
                error_report=report_csv(counts.errors) or None,
                options={
                    "mapping": chosen,
                    "encoding": shape.encoding,
                    "delimiter": shape.delimiter,
                    "header_line": shape.header_line,
                    "candidates_created": counts.candidates_created,
                },
            )
            session.add(batch)
            session.flush()
            batch_id = batch.id
            audit_batch(
                session,
                actor=actor,
                batch_id=batch.id,
                detail={
                    "kind": kind,
                    "filename": filename,
                    "read": counts.read,
                    "created": counts.created,
                    "updated": counts.updated,
                    "duplicates": counts.skipped,
                    "errors": len(counts.errors),
                    "candidates_created": counts.candidates_created,
                },
            )
    except _DryRun:
        pass
    assert run is not None
    counts = run.counts
    return AtsImportResult(
        kind=kind,
        errors=list(counts.errors),
        batch_id=batch_id,
        **counts.tally(),
    )
