"""One set of rules for candidate fields, shared by the entry form, the profile and import.

clean_candidate() turns raw values (text from a form or a CSV cell, or Python values) into
column values plus normalized identity keys, and lists every problem as (field, sentence)
so a form can show them and an import can report them row by row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm import field_registry
from crm.errors import ValidationError
from crm.field_registry import CONSENT_LABELS as CONSENT_LABELS  # the pages' labels
from crm.identity import clean_text, normalize_email, normalize_linkedin, normalize_phone
from crm.models import CONSENT_STATUSES, Candidate

# Column -> maximum length, read from the model so the rules never drift from the schema.
MAX_LENGTHS: dict[str, int] = {
    column.name: column.type.length
    for column in Candidate.__table__.columns
    if getattr(column.type, "length", None)
}
_NAME_FIELDS = frozenset({"first_name", "last_name"})
# The one-line text fields a form edits (names, title, company...).
SINGLE_LINE = tuple(
    field.name for field in field_registry.fields(field_registry.EDIT) if field.kind == "text"
)
_SINGLE_LINE_LIMITS = tuple((name, MAX_LENGTHS[name]) for name in SINGLE_LINE)
LIST_SEPARATORS = (";", "|", "\n")  # besides the comma
TRUE_WORDS = {"yes", "y", "true", "1", "remote", "x", "ja", "oui", "si", "sí", "sim"}
FALSE_WORDS = {"no", "n", "false", "0", "", "nein", "non", "nao", "não"}
MAX_LIST_ITEMS = 50
MAX_ITEM_LENGTH = 80


@dataclass
class CleanCandidate:
    """Column values ready for Candidate, the skill and tag lists, and any problems."""

    values: dict[str, Any] = field(default_factory=dict)
    skills: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_first(self) -> None:
        if self.problems:
            raise ValidationError(self.problems[0][1])


def split_list(value: Any) -> list[str]:
    """Skills or tags from a list, or from one cell separated by , ; | or new lines."""
    if value is None:
        return []
    items: Iterable[Any] = value if isinstance(value, list | tuple | set) else [value]
    if value.__class__ is str and value.isascii():
        # One cell of plain text, as an import gives: the loop below in one pass.
        text = value.strip().lower()
        if ";" in text or "|" in text or "\n" in text:
            text = text.replace(";", ",").replace("|", ",").replace("\n", ",")
        if "  " not in text and text.isprintable():
            parts = [part.strip() for part in text.split(",")]
            return list(dict.fromkeys([part[:MAX_ITEM_LENGTH] for part in parts if part]))[
                :MAX_LIST_ITEMS
            ]
    found: dict[str, None] = {}
    for item in items:
        text = clean_text(item).lower()
        for separator in LIST_SEPARATORS:
            if separator in text:
                text = text.replace(separator, ",")
        for part in text.split(","):
            if "  " in part or not part.isascii() or not part.isprintable():
                part = " ".join(part.split())  # runs of spaces, tabs, odd Unicode spaces
            else:
                part = part.strip()
            if part:
                found[part[:MAX_ITEM_LENGTH]] = None
    return list(found)[:MAX_LIST_ITEMS]


def parse_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = clean_text(value).lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    return None


def split_full_name(full: str) -> tuple[str, str]:
    """'Ana Lima' -> ('Ana', 'Lima'); 'Lima, Ana' -> ('Ana', 'Lima'); 'Cher' -> ('Cher', '')."""
    full = " ".join(full.split())
    if "," in full:
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    first, _, last = full.partition(" ")
    return first, last


def clean_candidate(raw: Mapping[str, Any], *, partial: bool = False) -> CleanCandidate:
    """Validate and normalize candidate fields.

    partial=True checks only the fields given (an edit of some fields); otherwise the
    record must have a name and an email or a LinkedIn URL.
    """
    result = CleanCandidate()
    values = result.values
    problems = result.problems
    # Called once per row of an import, so absent fields cost no call and each present
    # one is cleaned and checked in one pass.
    first = clean_text(raw["first_name"]) if "first_name" in raw else ""
    last = clean_text(raw["last_name"]) if "last_name" in raw else ""
    if not first and not last and "full_name" in raw:
        full = clean_text(raw["full_name"])
        if full:
            first, last = split_full_name(full)
    if "first_name" in raw or "last_name" in raw or "full_name" in raw or not partial:
        values["first_name"], values["last_name"] = first, last
        if not partial and not (first or last):
            problems.append(("first_name", "A name is required."))

    for name, longest in _SINGLE_LINE_LIMITS:
        if name in _NAME_FIELDS:
            text = values.get(name)
        elif name in raw:
            text = values[name] = clean_text(raw[name]) or None
        else:
            continue
        if not text or (len(text) <= longest and "\n" not in text and "\r" not in text):
            continue
        if "\n" in text or "\r" in text:
            problems.append((name, f"The {name.replace('_', ' ')} contains a line break."))
        else:
            problems.append(
                (name, f"The {name.replace('_', ' ')} is longer than {longest} characters.")
            )

    identity_given = False
    for name, normalize, key_column in (
        ("email", normalize_email, "email_normalized"),
        ("linkedin_url", normalize_linkedin, "linkedin_normalized"),
        ("phone", normalize_phone, "phone_normalized"),
    ):
        if name not in raw:
            if partial:
                continue
            if name == "phone":
                values["phone"] = values["phone_normalized"] = None
                continue
        try:
            normalized = normalize(raw.get(name))
        except ValidationError as error:
            problems.append((name, str(error)))
            continue
        shown, key = normalized if normalized else (None, None)
        if shown and len(shown) > MAX_LENGTHS[name]:
            problems.append(
                (name, f"The {name.replace('_', ' ')} is longer than {MAX_LENGTHS[name]}.")
            )
            continue
        values[name], values[key_column] = shown, key
        identity_given = identity_given or (name != "phone" and key is not None)
    if (
        not partial
        and not identity_given
        and not any(field_name in {"email", "linkedin_url"} for field_name, _ in problems)
    ):
        problems.append(("email", "An email address or a LinkedIn profile URL is required."))

    if "remote" in raw:
        remote = parse_bool(raw.get("remote"))
        if remote is None:
            problems.append(
                ("remote", f"Remote must be yes or no, not {clean_text(raw.get('remote'))!r}.")
            )
        else:
            values["remote"] = remote

    if "years_experience" in raw:
        years = raw.get("years_experience")
        text = clean_text(years) if not isinstance(years, int | float) else str(years)
        if text in {"", "None"}:
            values["years_experience"] = None
        else:
            try:
                number = float(text.replace(",", "."))
            except ValueError:
                problems.append(
                    ("years_experience", f"Years of experience must be a number, not {text!r}.")
                )
            else:
                if not 0 <= number <= 70:
                    problems.append(
                        ("years_experience", "Years of experience must be between 0 and 70.")
                    )
                else:
                    values["years_experience"] = int(number)

    if "consent_status" in raw:
        consent = clean_text(raw.get("consent_status")).lower().replace(" ", "_")
        if consent not in CONSENT_STATUSES:
            problems.append(("consent_status", f"Unknown consent status {consent!r}."))
        else:
            values["consent_status"] = consent

    if "follow_up_on" in raw:
        follow = raw.get("follow_up_on")
        if follow in (None, ""):
            values["follow_up_on"] = None
        elif isinstance(follow, dt.date):
            values["follow_up_on"] = follow
        else:
            try:
                values["follow_up_on"] = dt.date.fromisoformat(clean_text(follow))
            except ValueError:
                problems.append(("follow_up_on", f"The follow-up date {follow!r} is not a date."))

    if "skills" in raw:
        result.skills = split_list(raw.get("skills"))
    if "tags" in raw:
        result.tags = split_list(raw.get("tags"))
    return result
