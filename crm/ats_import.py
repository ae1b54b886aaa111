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

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm import activities, audit, clock, csvfile, money
from crm import jobs as job_rules
from crm.db import write_session
from crm.errors import CrmError, InputUnusable, ValidationError
from crm.identity import address_hash, clean_text, normalize_email, normalize_linkedin
from crm.mapping import header_key
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

KINDS = ("jobs", "applications", "costs")
MAX_BYTES = 50 * 1024 * 1024
NEW_CANDIDATE_SOURCE = "ATS import"
PREVIEW_PROBLEMS = 50
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# Fields of each kind, with their labels for the mapping editor.
FIELDS: dict[str, dict[str, str]] = {
    "jobs": {
        "external_id": "Job ID in the ATS",
        "title": "Title (required)",
        "role_family": "Role family",
        "key_role": "Key role (yes/no)",
        "hiring_manager": "Hiring manager",
        "location": "Location",
        "opened": "Opened on (required)",
        "filled": "Filled on",
        "status": "Status (open, on hold, filled, closed)",
    },
    "applications": {
        "external_id": "Application ID in the ATS",
        "job_ref": "Job (its ID in the ATS)",
        "job_title": "Job (its title)",
        "email": "Candidate email",
        "linkedin_url": "Candidate LinkedIn URL",
        "full_name": "Candidate name",
        "first_name": "Candidate first name",
        "last_name": "Candidate last name",
        "source": "Source",
        "pool": "Talent pool (name)",
        "campaign": "Campaign (name)",
        "stage": "Current stage",
        "sourced": "Sourced on",
        "applied": "Applied on",
        "screen": "Screen on",
        "interview": "Interview on",
        "offer": "Offer made on",
        "hired": "Hired on",
        "rejected": "Rejected on",
        "withdrew": "Withdrew on",
        "offer_accepted": "Offer accepted (yes/no)",
        "offer_decided": "Offer decided on",
    },
    "costs": {
        "date": "Date (required)",
        "category": "Category",
        "amount": "Amount (required)",
        "currency": "Currency",
        "job_ref": "Job (its ID in the ATS)",
        "job_title": "Job (its title)",
        "note": "Note",
    },
}

# Header names per field, the most telling first (compared by mapping.header_key).
_JOB_REF = [
    "job id",
    "requisition id",
    "req id",
    "job req id",
    "job requisition id",
    "job external id",
    "job code",
    "posting id",
    "job ref",
    "requisition number",
]
_JOB_TITLE = [
    "job",
    "job name",
    "job title",
    "requisition title",
    "posting title",
    "posting",
    "position",
    "opening",
    "role",
    "requisition",
]
_ALIASES: dict[str, dict[str, list[str]]] = {
    "jobs": {
        "external_id": [
            "job id",
            "requisition id",
            "req id",
            "job req id",
            "external id",
            "job external id",
            "job code",
            "posting id",
            "requisition number",
            "requisition",
            "id",
        ],
        "title": [
            "job title",
            "job name",
            "title",
            "requisition title",
            "posting title",
            "position",
            "job",
            "role",
            "name",
        ],
        "role_family": [
            "role family",
            "job family",
            "department",
            "function",
            "team",
            "category",
        ],
        "key_role": ["key role", "critical role", "is key role", "key", "priority role"],
        "hiring_manager": [
            "hiring manager",
            "hiring manager name",
            "hiring lead",
            "manager",
            "owner",
        ],
        "location": ["location", "job location", "locations", "office", "offices", "city"],
        "opened": [
            "opened",
            "opened date",
            "opened on",
            "opened at",
            "open date",
            "date opened",
            "created date",
            "created on",
            "created at",
            "created",
            "posted date",
            "date posted",
            "posted on",
        ],
        "filled": [
            "filled",
            "filled date",
            "filled on",
            "filled at",
            "date filled",
            "fill date",
        ],
        "status": ["status", "job status", "requisition status", "opening status", "state"],
    },
    "applications": {
        "external_id": [
            "application id",
            "application external id",
            "app id",
            "opportunity id",
            "external id",
        ],
        "job_ref": _JOB_REF,
        "job_title": _JOB_TITLE,
        "email": [
            "candidate email",
            "candidate email address",
            "applicant email",
            "email",
            "email address",
            "e-mail",
            "primary email",
            "emails",
        ],
        "linkedin_url": [
            "candidate linkedin",
            "linkedin url",
            "linkedin profile url",
            "linkedin profile",
            "linkedin",
            "profile url",
        ],
        "full_name": [
            "candidate name",
            "applicant name",
            "full name",
            "name",
            "candidate",
            "applicant",
        ],
        "first_name": ["candidate first name", "first name", "firstname", "given name"],
        "last_name": [
            "candidate last name",
            "last name",
            "lastname",
            "surname",
            "family name",
        ],
        "source": [
            "source",
            "candidate source",
            "application source",
            "source name",
            "origin",
            "source type",
            "lead source",
        ],
        "pool": ["talent pool", "pool", "pool name", "talent pool name"],
        "campaign": ["campaign", "campaign name", "crm campaign"],
        "stage": [
            "current stage",
            "stage",
            "application stage",
            "pipeline stage",
            "stage name",
            "current status",
            "application status",
            "status",
            "milestone",
        ],
        "sourced": ["sourced on", "sourced date", "sourced at", "date sourced", "sourced"],
        "applied": [
            "applied on",
            "applied date",
            "applied at",
            "date applied",
            "application date",
            "applied",
        ],
        "screen": [
            "screen on",
            "screen date",
            "screened on",
            "screened at",
            "phone screen date",
            "screening date",
            "screen",
        ],
        "interview": [
            "interview on",
            "interview date",
            "interviewed on",
            "interviewed at",
            "first interview date",
            "onsite date",
            "interview",
        ],
        "offer": [
            "offer made on",
            "offer date",
            "offer sent date",
            "offer sent on",
            "offer extended date",
            "offer extended on",
            "offer created date",
            "offer made",
            "offer sent",
        ],
        "hired": ["hired on", "hired date", "hire date", "hired at", "date hired", "hired"],
        "rejected": [
            "rejected on",
            "rejected date",
            "rejected at",
            "rejection date",
            "disqualified on",
            "disqualified date",
            "disqualified at",
            "rejected",
        ],
        "withdrew": [
            "withdrew on",
            "withdrawn on",
            "withdrawn date",
            "withdrew date",
            "withdrawal date",
            "withdrawn at",
            "withdrawn",
            "withdrew",
        ],
        "offer_accepted": [
            "offer accepted",
            "offer status",
            "offer outcome",
            "offer response",
            "offer result",
            "accepted offer",
        ],
        "offer_decided": [
            "offer decided on",
            "offer decision date",
            "offer response date",
            "offer resolved date",
            "offer resolved at",
            "offer accepted date",
            "offer accepted on",
            "offer declined date",
        ],
    },
    "costs": {
        "date": [
            "date",
            "cost date",
            "incurred on",
            "incurred date",
            "spend date",
            "invoice date",
            "transaction date",
            "paid on",
            "posted date",
        ],
        "category": [
            "category",
            "cost category",
            "spend category",
            "cost type",
            "expense type",
            "type",
            "kind",
        ],
        "amount": [
            "amount",
            "spend",
            "cost",
            "amount spent",
            "total",
            "invoice amount",
            "net amount",
            "value",
            "price",
        ],
        "currency": ["currency", "currency code", "ccy"],
        "job_ref": _JOB_REF,
        "job_title": _JOB_TITLE,
        "note": [
            "note",
            "notes",
            "description",
            "vendor",
            "supplier",
            "memo",
            "details",
            "comment",
            "item",
        ],
    },
}


def _ranks(kind: str) -> dict[str, tuple[str, int]]:
    ranks: dict[str, tuple[str, int]] = {}
    for name in FIELDS[kind]:  # our own field names first
        ranks.setdefault(header_key(name), (name, 0))
    for name, aliases in _ALIASES[kind].items():
        for rank, alias in enumerate(aliases):
            ranks.setdefault(header_key(alias), (name, rank))
    return ranks


ALIAS_RANKS = {kind: _ranks(kind) for kind in KINDS}

# Values -----------------------------------------------------------------------------------

STAGE_ALIASES = {
    "sourced": "sourced",
    "prospect": "sourced",
    "lead": "sourced",
    "new lead": "sourced",
    "applied": "applied",
    "new": "applied",
    "new applicant": "applied",
    "application": "applied",
    "application review": "applied",
    "review": "applied",
    "screen": "screen",
    "screening": "screen",
    "phone screen": "screen",
    "recruiter screen": "screen",
    "hr screen": "screen",
    "phone interview": "screen",
    "interview": "interview",
    "interviewing": "interview",
    "onsite": "interview",
    "on site": "interview",
    "technical interview": "interview",
    "final interview": "interview",
    "assessment": "interview",
    "face to face": "interview",
    "offer": "offer",
    "offer extended": "offer",
    "offer sent": "offer",
    "offered": "offer",
    "offer made": "offer",
    "hired": "hired",
    "hire": "hired",
    "placed": "hired",
    "offer accepted": "hired",
    "rejected": "rejected",
    "reject": "rejected",
    "disqualified": "rejected",
    "not selected": "rejected",
    "declined by company": "rejected",
    "withdrew": "withdrew",
    "withdrawn": "withdrew",
    "candidate withdrew": "withdrew",
    "offer declined": "withdrew",
    "declined": "withdrew",
}
JOB_STATUS_ALIASES = {
    "open": "open",
    "opened": "open",
    "active": "open",
    "live": "open",
    "published": "open",
    "posted": "open",
    "on hold": "on_hold",
    "hold": "on_hold",
    "paused": "on_hold",
    "onhold": "on_hold",
    "filled": "filled",
    "hired": "filled",
    "closed": "closed",
    "archived": "closed",
    "cancelled": "closed",
    "canceled": "closed",
    "inactive": "closed",
}
# Sources ATS exports use that crm.jobs.normalize_source does not know.
EXTRA_SOURCES = {
    "linkedin": "job_board",
    "linkedin job": "job_board",
    "stepstone": "job_board",
    "monster": "job_board",
    "ziprecruiter": "job_board",
    "job posting": "job_board",
    "linkedin (prospecting)": "direct",
    "prospecting": "direct",
    "sourcing": "direct",
    "sourced by recruiter": "direct",
    "applied": "career_site",
    "website": "career_site",
    "careers website": "career_site",
    "career page": "career_site",
    "recruiting agency": "agency",
    "referred": "referral",
    "internal referral": "referral",
}
_YES = {"yes", "y", "true", "1", "x", "accepted", "accept", "key", "ja", "oui", "si"}
_NO = {"no", "n", "false", "0", "declined", "decline", "rejected", "nein", "non"}
_UNDECIDED = {"pending", "extended", "sent", "open", "made", "draft", "approved", "-", "n/a"}
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "CHF": "CHF"}


def _key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").lower().split())


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AtsImportResult:
    kind: str
    read: int
    created: int
    updated: int
    skipped: int
    errors: list[tuple[int, str, str]]
    candidates_created: int = 0  # people added from an applications file (name and email)
    batch_id: int | None = None

    def error_report_csv(self) -> str:
        """The refused rows as CSV (row, column, problem); empty when none was refused."""
        return _report_csv(self.errors)

    def as_json(self) -> dict[str, Any]:
        """The keys `crm import --json` prints for candidates, with duplicates = skipped."""
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.skipped,
            "errors": len(self.errors),
            "error_report": self.error_report_csv() if self.errors else None,
        }


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


def _report_csv(errors: list[tuple[int, str, str]]) -> str:
    if not errors:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "column", "problem"])
    for line, column, problem in errors:
        writer.writerow([line, _inert(column), _inert(problem)])
    return out.getvalue()


def _inert(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


# --- mapping ------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputUnusable(f"The kind must be one of {', '.join(KINDS)}, not {kind!r}.")


def auto_mapping(kind: str, headers: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Header -> field for every header; each field goes to its most telling header."""
    _check_kind(kind)
    headers = list(dict.fromkeys(headers))
    best: dict[str, tuple[int, int]] = {}
    for position, header in enumerate(headers):
        found = ALIAS_RANKS[kind].get(header_key(header))
        if found is None:
            continue
        name, rank = found
        if name not in best or (rank, position) < best[name]:
            best[name] = (rank, position)
    chosen = {position: name for name, (_rank, position) in best.items()}
    return {header: chosen.get(position) for position, header in enumerate(headers)}


def _with_overrides(
    kind: str, headers: tuple[str, ...], overrides: dict[str, str | None] | None
) -> dict[str, str | None]:
    base = auto_mapping(kind, headers)
    if not overrides:
        return base
    present = set(headers)
    for header, name in overrides.items():
        if name is not None and name not in FIELDS[kind]:
            raise InputUnusable(
                f"{name!r} is not a field of {kind}; the fields are: {', '.join(FIELDS[kind])}."
            )
        if header not in present:
            shown = ", ".join(repr(h) for h in headers if h) or "none"
            raise InputUnusable(f"The file has no column {header!r} (its columns: {shown}).")
    claimed = {name for name in overrides.values() if name}
    chosen = {
        header: overrides[header]
        if header in overrides
        else (None if base.get(header) in claimed else base.get(header))
        for header in base
    }
    taken: dict[str, str] = {}
    for header, name in chosen.items():
        if name is None:
            continue
        if name in taken:
            raise InputUnusable(
                f"The columns {taken[name]!r} and {header!r} both go to "
                f"{FIELDS[kind][name].lower()}; choose one."
            )
        taken[name] = header
    return chosen


def mapping_problem(kind: str, chosen: dict[str, str | None]) -> str | None:
    """One sentence when no row could be imported with this mapping, else None."""
    fields = {name for name in chosen.values() if name}
    if not fields:
        return (
            f"None of the file's columns is one an import of {kind} knows; map the columns "
            "by hand or check that the file is the right export."
        )
    if kind == "jobs":
        missing = [name for name in ("title", "opened") if name not in fields]
        if missing:
            labels = " and ".join(
                {"title": "the job title", "opened": "the opened date"}[m] for m in missing
            )
            return f"No column holds {labels}; map one by hand."
    elif kind == "applications":
        if not fields & {"job_ref", "job_title"}:
            return "No column names the job (its ATS ID or title); map one by hand."
        if not fields & {"email", "linkedin_url"}:
            return "No column holds the candidate's email or LinkedIn URL; map one by hand."
        if "source" not in fields:
            return (
                "No column holds the source of each application (LinkedIn, Referral, "
                "Talent pool...); map one by hand."
            )
    else:
        missing = [name for name in ("date", "amount") if name not in fields]
        if missing:
            labels = " and ".join({"date": "the date", "amount": "the amount"}[m] for m in missing)
            return f"No column holds {labels} of each cost; map one by hand."
    return None


# --- reading values -----------------------------------------------------------------------


class _RowError(Exception):
    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field_name
        self.problem = problem


_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_TIME_TAIL = re.compile(
    r"^(?P<date>\S+)(?:[ T]+(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:\.\d+)?)?"
    r"\s*(?P<ampm>[AaPp][Mm])?\s*(?P<tz>Z|UTC|[+-]\d{2}:?\d{2})?)?$"
)
_WORD_FORMATS = ("%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%d-%b-%Y", "%d-%b-%y")


def _shows_month_first(values: list[str]) -> bool:
    """Whether a file's slashed dates are month-first (one has a second part over 12)."""
    month_first = day_first = False
    for value in values:
        head = value.strip().split(" ")[0].split("T")[0]
        match = _NUMERIC.match(head)
        if match:
            first, second = int(match.group(1)), int(match.group(2))
            month_first |= second > 12 and first <= 12
            day_first |= first > 12 and second <= 12
    return month_first and not day_first


def _date_part(text: str, month_first: bool) -> dt.date:
    match = _ISO.match(text)
    if match:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _NUMERIC.match(text)
    if match:
        first, second, year = int(match.group(1)), int(match.group(2)), match.group(3)
        full_year = int(year) if len(year) == 4 else 2000 + int(year)
        day, month = (second, first) if month_first else (first, second)
        return dt.date(full_year, month, day)
    raise ValueError(text)


def parse_moment(text: str, *, month_first: bool = False) -> dt.datetime:
    """A date or date-time cell as an aware UTC datetime (a bare date: midnight UTC)."""
    value = " ".join(clean_text(text).replace(",", " ").split())
    if not value:
        raise ValueError(text)
    try:
        parsed = dt.datetime.fromisoformat(value.replace(" UTC", "Z"))
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)
    match = _TIME_TAIL.match(value)
    if match:
        day = _date_part(match.group("date"), month_first)
        hour, minute = int(match.group("h") or 0), int(match.group("m") or 0)
        second = int(match.group("s") or 0)
        ampm = (match.group("ampm") or "").lower()
        if ampm == "pm" and hour < 12:
            hour += 12
        elif ampm == "am" and hour == 12:
            hour = 0
        zone = match.group("tz")
        offset = dt.UTC
        if zone and zone not in {"Z", "UTC"}:
            digits = zone.replace(":", "")
            delta = dt.timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5]))
            offset = dt.timezone(delta if digits[0] == "+" else -delta)
        moment = dt.datetime.combine(day, dt.time(hour, minute, second), offset)
        return moment.astimezone(dt.UTC)
    for pattern in _WORD_FORMATS:
        for candidate in (value, " ".join(value.split(" ")[:3])):
            try:
                return dt.datetime.strptime(candidate, pattern).replace(tzinfo=dt.UTC)
            except ValueError:
                continue
    raise ValueError(text)


def parse_amount(text: str) -> tuple[Decimal, str | None]:
    """(amount, currency from its symbol or code or None) for '$1,234.50', '1.234,50 €'."""
    value = clean_text(text).replace("\u00a0", "").replace(" ", "").replace("'", "")
    currency = None
    for symbol, code in _CURRENCY_SYMBOLS.items():
        if symbol in value:
            currency, value = code, value.replace(symbol, "")
    match = re.match(r"^([A-Za-z]{3})?(.*?)([A-Za-z]{3})?$", value)
    if match and (match.group(1) or match.group(3)):
        currency = (match.group(1) or match.group(3)).upper()
        value = match.group(2)
    negative = value.startswith("(") and value.endswith(")")
    value = value.strip("()")
    if value.startswith("-"):
        negative, value = True, value[1:]
    if "," in value and "." in value:
        decimal_mark = "," if value.rfind(",") > value.rfind(".") else "."
        value = value.replace("." if decimal_mark == "," else ",", "").replace(",", ".")
    elif "," in value:
        value = value.replace(",", "") if re.match(r"^\d{1,3}(,\d{3})+$", value) else value
        value = value.replace(",", ".")
    elif re.match(r"^\d{1,3}(\.\d{3}){2,}$", value):
        value = value.replace(".", "")
    if not re.match(r"^\d+(\.\d+)?$", value):
        raise ValueError(text)
    amount = Decimal(value)
    return (-amount if negative else amount), currency


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
            raise _RowError(name, f"{text!r} is not a date (use 2025-03-31).") from None

    def date(self, values: dict[str, str], name: str) -> dt.date | None:
        moment = self.moment(values, name)
        return None if moment is None else moment.date()

    def text(self, values: dict[str, str], name: str, limit: int) -> str | None:
        text = values.get(name)
        if text is not None and len(text) > limit:
            raise _RowError(
                name, f"The {name.replace('_', ' ')} is longer than {limit} characters."
            )
        return text

    # the rows ---------------------------------------------------------------------------------

    def row(self, line: int, values: dict[str, str]) -> None:
        handler: Callable[[dict[str, str]], str] = getattr(self, f"_{self.kind}_row")
        try:
            with self.session.begin_nested():
                outcome = handler(values)
        except _RowError as error:
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
            raise _RowError("title", "The job title is blank.")
        opened = self.date(values, "opened")
        if opened is None:
            raise _RowError("opened", "The opened date is blank.")
        filled = self.date(values, "filled")
        status = None
        if "status" in values:
            status = JOB_STATUS_ALIASES.get(_key(values["status"]))
            if status is None:
                raise _RowError(
                    "status",
                    f"Unknown job status {values['status']!r}; use open, on hold, filled "
                    "or closed.",
                )
        key_role = None
        if "key_role" in values:
            key_role = _yes_no(values["key_role"])
            if key_role is None:
                raise _RowError("key_role", f"{values['key_role']!r} is not yes or no.")
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
                raise _RowError("job_ref", f"No job has the ATS ID {ref!r}; import the jobs first.")
        if not title:
            raise _RowError(
                "job_title" if "job_title" in self.column else "job_ref", "The job is blank."
            )
        found = list(
            self.session.scalars(select(Job).where(func.lower(Job.title) == title.lower()).limit(2))
        )
        if not found:
            raise _RowError("job_title", f"No job is called {title!r}; import the jobs first.")
        if len(found) > 1:
            raise _RowError(
                "job_title", f"Several jobs are called {title!r}; give the job's ATS ID instead."
            )
        return found[0]

    def _find_person(self, values: dict[str, str]) -> Candidate:
        email = linkedin = None
        try:
            email = normalize_email(values.get("email"))
        except ValidationError as error:
            raise _RowError("email", str(error)) from None
        try:
            linkedin = normalize_linkedin(values.get("linkedin_url"))
        except ValidationError as error:
            raise _RowError("linkedin_url", str(error)) from None
        if email is None and linkedin is None:
            raise _RowError(
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
        first, last = values.get("first_name", ""), values.get("last_name", "")
        if not (first or last) and values.get("full_name"):
            first, _space, last = values["full_name"].partition(" ")
        if email is None or not (first or last):
            shown = email[0] if email else linkedin[0]  # type: ignore[index]
            raise _RowError(
                "email" if email else "linkedin_url",
                f"No one in the CRM has {shown}; import them as candidates first, or give "
                "their name and email to add them.",
            )
        suppressed = self._suppressed(email[1])
        person = Candidate(
            first_name=first[:100],
            last_name=last.strip()[:100],
            email=email[0],
            email_normalized=email[1],
            linkedin_url=linkedin[0] if linkedin else None,
            linkedin_normalized=linkedin[1] if linkedin else None,
            source=NEW_CANDIDATE_SOURCE,
            consent_status="do_not_contact" if suppressed else "legitimate_interest",
            owner_id=self.actor.id if self.actor else None,
            consent_note="The address was on the suppression list when imported."
            if suppressed
            else None,
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
            raise _RowError(name, f"No {what} is called {text!r}.")
        return found

    def _applications_row(self, values: dict[str, str]) -> str:
        self.created_person = False
        external_id = self.text(values, "external_id", 80)
        job = self._find_job(values)
        raw_source = values.get("source")
        if raw_source is None:
            raise _RowError("source", "The source is blank.")
        source = job_rules.normalize_source(raw_source) or EXTRA_SOURCES.get(_key(raw_source))
        if source is None:
            raise _RowError(
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
            final = _stage(values["stage"])
            if final is None:
                raise _RowError(
                    "stage",
                    f"Unknown stage {values['stage']!r}; use one of "
                    f"{', '.join(job_rules.STAGE_LABELS.values())}.",
                )
        accepted = None
        if "offer_accepted" in values:
            accepted = _yes_no(values["offer_accepted"])
            if accepted is None and _key(values["offer_accepted"]) not in _UNDECIDED:
                raise _RowError(
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
                raise _RowError(
                    "external_id",
                    f"{person.full_name or 'This person'} is already on the pipeline for "
                    f"{job.title} under the ATS ID {application.external_id!r}.",
                )
        before = _snapshot(application) if application is not None else None
        if application is None:
            application = Application(job_id=job.id, candidate_id=person.id, stage="applied")
            self.session.add(application)
        elif application.job_id != job.id:
            raise _RowError(
                "external_id",
                f"The application {external_id!r} is for another job already; it cannot move.",
            )
        previous = {stage: getattr(application, f"{stage}_at") for stage in APPLICATION_STAGES}
        application.external_id = external_id or application.external_id
        application.source = source
        detail = raw_source if _key(raw_source) != source.replace("_", " ") else None
        application.source_detail = detail[:120] if detail else None
        application.pool_id = pool_id
        application.campaign_id = campaign_id
        if campaign_id is not None and pool_id is None:
            application.pool_id = self.session.scalar(
                select(Campaign.audience_pool_id).where(Campaign.id == campaign_id)
            )
        self._apply(application, stamps, final, accepted, decided, previous)
        job_rules._refill_or_reopen(self.session, job)
        self.session.flush()
        if self.created_person:
            self.counts.candidates_created += 1
        if before is not None and before == _snapshot(application):
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

    def _apply(
        self,
        application: Application,
        stamps: dict[str, dt.datetime | None],
        final: str | None,
        accepted: bool | None,
        decided: dt.datetime | None,
        previous: dict[str, dt.datetime | None],
    ) -> None:
        """Set the stages from the row's dates by crm.jobs' rules, from scratch."""
        pipeline = job_rules.PIPELINE_STAGES
        dated = [stage for stage in pipeline if stamps[stage] is not None]
        outcomes = [stage for stage in job_rules.OUTCOME_STAGES if stamps[stage] is not None]
        if accepted is False and final in (None, "offer"):
            final = "withdrew"
        if final is None:
            if outcomes:
                final = max(outcomes, key=lambda stage: stamps[stage])  # type: ignore[arg-type,return-value]
            elif dated:
                final = dated[-1]
            else:
                final = "applied"
        if final in pipeline:
            position = pipeline.index(final)
            later = [stage for stage in dated if pipeline.index(stage) > position]
            if later:
                raise _RowError(
                    later[0],
                    f"The stage is {job_rules.STAGE_LABELS[final]} but the row has a "
                    f"{job_rules.STAGE_LABELS[later[0]].lower()} date.",
                )
            if outcomes:
                raise _RowError(
                    outcomes[0],
                    f"The stage is {job_rules.STAGE_LABELS[final]} but the row has a "
                    f"{job_rules.STAGE_LABELS[outcomes[0]].lower()} date.",
                )
            if accepted is False and final == "hired":
                raise _RowError("offer_accepted", "The offer was declined but the row has a hire.")
        known = [moment for moment in stamps.values() if moment is not None]
        fallback = max(known) if known else None

        def at(stage: str) -> dt.datetime:
            moment = stamps.get(stage) or previous.get(stage) or fallback
            if moment is None:
                moment = self.now
            return moment

        if final == "hired" and stamps["hired"] is None and previous.get("hired") is None:
            raise _RowError("stage", "The person was hired but the hired date is blank.")
        # From scratch: the row says everything about the application.
        for stage in APPLICATION_STAGES:
            setattr(application, f"{stage}_at", None)
        application.offer_accepted = None
        application.offer_decided_at = None
        application.stage = "applied"
        steps = list(dated)
        if final in pipeline and final not in steps:
            steps.append(final)
        if accepted is not None and "offer" not in steps and final != "hired":
            steps.append("offer")
        steps.sort(key=pipeline.index)
        if not steps:
            steps = ["applied"] if final != "sourced" else ["sourced"]
        for stage in steps:
            moment = at(stage)
            if stage == "offer" and stamps["offer"] is None and decided is not None:
                moment = min(moment, decided)
            try:
                job_rules._apply_stage(self.session, application, stage, moment)
            except ValidationError as error:
                raise _RowError(stage if stamps[stage] else "stage", str(error)) from None
        offer_at = application.offer_at
        if accepted is True:
            moment = decided or (stamps["hired"] if final == "hired" else None) or offer_at
            if offer_at is not None and moment is not None and moment < offer_at:
                raise _RowError("offer_decided", "The offer was decided before it was made.")
            application.offer_accepted = True
            application.offer_decided_at = moment
        if final in job_rules.OUTCOME_STAGES:
            moment = stamps[final] or (decided if final == "withdrew" else None) or at(final)
            if accepted is False and offer_at is not None and moment < offer_at:
                raise _RowError("offer_decided", "The offer was declined before it was made.")
            job_rules._apply_stage(self.session, application, final, moment)
            if accepted is False:
                application.offer_accepted = False
                application.offer_decided_at = decided or moment

    # costs ------------------------------------------------------------------------------------

    def _costs_row(self, values: dict[str, str]) -> str:
        incurred = self.date(values, "date")
        if incurred is None:
            raise _RowError("date", "The date is blank.")
        text = values.get("amount")
        if text is None:
            raise _RowError("amount", "The amount is blank.")
        try:
            amount, symbol_currency = parse_amount(text)
        except (ValueError, InvalidOperation):
            raise _RowError("amount", f"{text!r} is not an amount of money.") from None
        try:
            amount = job_rules._amount(amount)
        except ValidationError as error:
            raise _RowError("amount", str(error)) from None
        # Never refused for its category: one of ours (or a synonym), else kept as the
        # cost's own label under "other" (crm.money).
        category, label = money.file_category(values.get("category"))
        if self.team is None:
            self.team = money.team_money_in(self.session, lock="share")
        if "currency" in values:
            try:
                currency = money.currency_code(values["currency"])
            except ValidationError as error:
                raise _RowError("currency", str(error)) from None
        else:
            currency = symbol_currency or self.team.currency
        if not self.team.counts(currency):
            where = "currency" if "currency" in values else "amount"
            raise _RowError(where, money.unconvertible(self.team, currency))
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


def _yes_no(text: str) -> bool | None:
    key = _key(text)
    if key in _YES:
        return True
    if key in _NO:
        return False
    return None


def _stage(text: str) -> str | None:
    key = _key(text)
    if key in STAGE_ALIASES:
        return STAGE_ALIASES[key]
    if key.replace(" ", "_") in APPLICATION_STAGES:
        return key.replace(" ", "_")
    for word, stage in (
        ("withdr", "withdrew"),
        ("reject", "rejected"),
        ("hired", "hired"),
        ("offer", "offer"),
        ("interview", "interview"),
        ("screen", "screen"),
    ):
        if word in key:
            return stage
    return None


def _snapshot(application: Application) -> tuple[Any, ...]:
    return (
        application.external_id,
        application.source,
        application.source_detail,
        application.pool_id,
        application.campaign_id,
        application.stage,
        application.offer_accepted,
        application.offer_decided_at,
        *(getattr(application, f"{stage}_at") for stage in APPLICATION_STAGES),
    )


# --- the public API -----------------------------------------------------------------------


def detect(data: bytes, *, kind: str) -> tuple[csvfile.FileShape, dict[str, str | None]]:
    """How the file is read and the automatic mapping, before any mapping is checked (the
    page shows it so the person importing can change it)."""
    _check_kind(kind)
    _check_size(data, kind)
    shape = csvfile.inspect(data, known_headers=set(ALIAS_RANKS[kind]))
    return shape, auto_mapping(kind, shape.headers)


def _check_size(data: bytes, kind: str) -> None:
    if len(data) > MAX_BYTES:
        raise InputUnusable(
            f"The file is {len(data) / 1_048_576:,.0f} MB; an import of {kind} takes at most "
            f"{MAX_BYTES // 1_048_576} MB, so split it into smaller files."
        )


def _read(
    data: bytes, kind: str, mapping: dict[str, str | None] | None
) -> tuple[
    csvfile.FileShape, dict[str, str | None], list[tuple[int, list[str] | None, str | None]]
]:
    _check_kind(kind)
    _check_size(data, kind)
    shape = csvfile.inspect(data, known_headers=set(ALIAS_RANKS[kind]))
    chosen = _with_overrides(kind, shape.headers, mapping)
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
    run = _Run(session, kind, chosen, actor, _shows_month_first(samples))
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
        read=counts.read,
        created=counts.created,
        updated=counts.updated,
        skipped=counts.skipped,
        error_count=len(counts.errors),
        problems=counts.errors[:PREVIEW_PROBLEMS],
        candidates_created=counts.candidates_created,
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
                error_report=_report_csv(counts.errors) or None,
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
            audit.record(
                session,
                actor=actor,
                action="import",
                entity="import_batch",
                entity_id=batch.id,
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
        read=counts.read,
        created=counts.created,
        updated=counts.updated,
        skipped=counts.skipped,
        errors=list(counts.errors),
        candidates_created=counts.candidates_created,
        batch_id=batch_id,
    )
