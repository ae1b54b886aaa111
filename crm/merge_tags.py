"""Merge tags: `{{field}}` or `{{field|fallback}}`, and nothing more.

A deliberately small syntax instead of a template engine: a template can only name
allow-listed fields, so a campaign body can never run code or reach data it should not.
Templates are checked when they are saved (unknown tag or broken syntax: refused with the
line), and rendering never fails: a value that is missing falls back, and the launch check
lists who would get an empty tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from crm import field_registry
from crm.errors import ValidationError

# Candidate fields a message can use, with the label the picker shows.
CANDIDATE_FIELDS = field_registry.labels(field_registry.TAG)
SENDER_FIELDS: dict[str, str] = {
    "sender_name": "Sender's name",
    "sender_first_name": "Sender's first name",
    "sender_email": "Sender's email",
}
SYSTEM_FIELDS: dict[str, str] = {"unsubscribe_url": "Unsubscribe link"}
# Always filled in by the app, so they never count as missing.
ALWAYS_PRESENT = frozenset(SYSTEM_FIELDS)

MAX_FALLBACK = 200
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}\Z")


def available_fields(custom_field_keys: Iterable[str] = ()) -> dict[str, str]:
    """Every tag a template may use, name -> label (custom fields by their key)."""
    fields = dict(CANDIDATE_FIELDS)
    for key in custom_field_keys:
        fields.setdefault(key, f"Custom field: {key}")
    fields.update(SENDER_FIELDS)
    fields.update(SYSTEM_FIELDS)
    return fields


@dataclass(frozen=True)
class Tag:
    field: str
    fallback: str | None
    start: int
    end: int


@dataclass(frozen=True)
class Template:
    text: str
    tags: tuple[Tag, ...]

    @property
    def fields(self) -> set[str]:
        return {tag.field for tag in self.tags}

    def render(
        self, values: Mapping[str, str | None], *, escape: Callable[[str], str] | None = None
    ) -> str:
        """The text with every tag replaced by its value, else its fallback, else nothing.

        `escape` applies to values and fallbacks (never to the template's own text), so an
        HTML body escapes what comes from a candidate's record.
        """
        parts: list[str] = []
        position = 0
        for tag in self.tags:
            parts.append(self.text[position : tag.start])
            value = values.get(tag.field)
            if value is None or value == "":
                value = tag.fallback or ""
            parts.append(escape(value) if escape else value)
            position = tag.end
        parts.append(self.text[position:])
        return "".join(parts)

    def missing(self, values: Mapping[str, str | None]) -> list[str]:
        """Fields used without a fallback that have no value here (each named once)."""
        missing: list[str] = []
        for tag in self.tags:
            if tag.fallback or tag.field in ALWAYS_PRESENT:
                continue
            if not values.get(tag.field) and tag.field not in missing:
                missing.append(tag.field)
        return missing


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def parse(text: str, *, allowed: Collection[str], where: str = "The template") -> Template:
    """Check a template and return it parsed; ValidationError names the line and the tag."""
    tags: list[Tag] = []
    position = 0
    for match in _TAG.finditer(text):
        line = _line_of(text, match.start())
        between = text[position : match.start()]
        if "{{" in between or "}}" in between:
            broken = match.start() - len(between) + between.find("{{" if "{{" in between else "}}")
            raise ValidationError(
                f"{where}, line {_line_of(text, broken)}: a merge tag is not closed or "
                "opened properly; write tags as {{field}} or {{field|fallback}}."
            )
        inner = match.group(1)
        if "{" in inner or "}" in inner or "\n" in inner:
            raise ValidationError(
                f"{where}, line {line}: a merge tag is not closed properly; "
                "write tags as {{field}} or {{field|fallback}}."
            )
        name, bar, fallback = inner.partition("|")
        name = name.strip()
        if not name:
            raise ValidationError(f"{where}, line {line}: an empty merge tag {{{{}}}}.")
        if not _NAME.match(name) or name not in allowed:
            shown = inner if len(inner) <= 60 else inner[:57] + "..."
            raise ValidationError(
                f"{where}, line {line}: unknown merge tag {{{{{shown}}}}}; pick a field from "
                "the list of merge tags."
            )
        fallback_text = fallback.strip() if bar else None
        if fallback_text is not None and len(fallback_text) > MAX_FALLBACK:
            raise ValidationError(
                f"{where}, line {line}: a fallback can be at most {MAX_FALLBACK} characters."
            )
        tags.append(Tag(name, fallback_text or None, match.start(), match.end()))
        position = match.end()
    rest = text[position:]
    if "{{" in rest or "}}" in rest:
        index = position + rest.find("{{" if "{{" in rest else "}}")
        raise ValidationError(
            f"{where}, line {_line_of(text, index)}: a merge tag is not closed or opened "
            "properly; write tags as {{field}} or {{field|fallback}}."
        )
    return Template(text, tuple(tags))


def tag_text(field: str, fallback: str | None = None) -> str:
    """What the picker inserts for a field."""
    return f"{{{{{field}|{fallback}}}}}" if fallback else f"{{{{{field}}}}}"


def values_for(
    candidate: object,
    *,
    custom_fields: Mapping[str, object] | None = None,
    sender_name: str = "",
    sender_email: str = "",
    unsubscribe_url: str = "",
) -> dict[str, str | None]:
    """The value of every tag for one person (a Candidate or anything with its attributes)."""

    def text(name: str) -> str | None:
        value = getattr(candidate, name, None)
        if value is None:
            return None
        return str(value).strip() or None

    first = text("first_name")
    last = text("last_name")
    skills = list(getattr(candidate, "skills", None) or [])
    values: dict[str, str | None] = {name: text(name) for name in CANDIDATE_FIELDS}
    values["full_name"] = " ".join(part for part in (first, last) if part) or None
    values["skills"] = ", ".join(skills) or None
    values["top_skill"] = skills[0] if skills else None
    for key, value in (custom_fields or {}).items():
        if key not in values and value not in (None, ""):
            values[key] = str(value)
    values["sender_name"] = sender_name or None
    values["sender_first_name"] = (sender_name.split() or [""])[0] or None
    values["sender_email"] = sender_email or None
    values["unsubscribe_url"] = unsubscribe_url
    return values
