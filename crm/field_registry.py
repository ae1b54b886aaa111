"""The candidate fields, each declared once: its label, its type and where it is used.

Every list of candidate fields elsewhere (what a form may edit, what a merge picks between,
what an import fills or updates, the export's columns, what the access export holds, the
merge tags, the pool builder's filters, the labels of all of them) is read from FIELDS in
its order, so adding a field means adding one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Uses a field can have:
EDIT = "edit"  # a form or the API may change it (crm.candidates)
MERGE = "merge"  # the merge dialog picks it from one side (crm.duplicates)
IMPORT = "import"  # a column of a candidate file may fill it (crm.mapping)
UPDATE = "update"  # an import may change it on someone already here (crm.importer)
EXPORT = "export"  # a column of the CSV export (crm.exporter), named as the field
ACCESS = "access"  # part of a person's access export (crm.privacy)
TAG = "tag"  # a merge tag a message may use (crm.merge_tags)
FILTER = "filter"  # a filter of the pool builder (app_pages.pool_builder)

CONSENT_LABELS = {
    "consented": "Consented",
    "legitimate_interest": "Legitimate interest",
    "do_not_contact": "Do not contact",
}


@dataclass(frozen=True)
class Field:
    """One candidate field; _OWN_LABELS may give it another label for a use."""

    name: str
    label: str
    kind: str  # text, email, url, phone, bool, int, list, choice, user, date, moment, json, id
    uses: frozenset[str]
    key_column: str | None = None  # the normalized identity key that follows the field


def _field(name: str, label: str, kind: str, uses: str, *, key: str | None = None) -> Field:
    return Field(name, label, kind, frozenset(uses.split()), key)


_PERSON = "edit merge import update export access"
FIELDS: tuple[Field, ...] = (
    _field("id", "ID", "id", "access"),
    _field("full_name", "Full name", "text", "import tag"),
    _field("first_name", "First name", "text", f"{_PERSON} tag"),
    _field("last_name", "Last name", "text", f"{_PERSON} tag"),
    _field("email", "Email", "email", f"{_PERSON} tag", key="email_normalized"),
    _field("linkedin_url", "LinkedIn URL", "url", _PERSON, key="linkedin_normalized"),
    _field("phone", "Phone", "phone", _PERSON, key="phone_normalized"),
    _field("title", "Title", "text", f"{_PERSON} tag filter"),
    _field("company", "Company", "text", f"{_PERSON} tag filter"),
    _field("location", "Location", "text", f"{_PERSON} tag filter"),
    _field("country", "Country", "text", f"{_PERSON} tag filter"),
    _field("remote", "Remote", "bool", f"{_PERSON} filter"),
    _field("role_family", "Role family", "text", f"{_PERSON} tag filter"),
    _field("years_experience", "Years of experience", "int", f"{_PERSON} tag filter"),
    _field("skills", "Skills", "list", "edit import export tag filter"),
    _field("top_skill", "First skill", "text", "tag"),
    _field("tags", "Tags", "list", "edit import export filter"),
    _field("source", "Source", "text", f"{_PERSON} tag filter"),
    _field("notes", "Note for the timeline", "text", "import"),
    _field("connected_on", "Connected on (note for the timeline)", "text", "import"),
    _field("owner_id", "Owner", "user", "edit merge"),
    _field("consent_status", "Lawful basis", "choice", "edit merge export access filter"),
    _field("consent_at", "Consent recorded", "moment", "access"),
    _field("consent_source", "Consent source", "text", "access"),
    _field("consent_note", "Consent note", "text", "access"),
    _field("owner", "Owner", "text", "export filter"),  # the owner's name
    _field("created_at", "Added", "moment", "export access filter"),
    _field("last_contacted_at", "Last contacted", "moment", "export access filter"),
    _field("last_contact_channel", "Last contact channel", "text", "access"),
    _field("last_engaged_at", "Last engaged", "moment", "access filter"),
    _field("unsubscribed_at", "Unsubscribed", "moment", "access"),
    _field("follow_up_on", "Follow up on", "date", "access"),
    _field("follow_up_note", "Follow-up note", "text", "access"),
    _field("updated_at", "Updated", "moment", "access"),
    _field("custom_fields", "Custom fields", "json", "edit"),
)
BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
# Where a use shows a field under another label than its own: (field, use) -> that label.
_OWN_LABELS: dict[tuple[str, str], str] = {
    ("full_name", IMPORT): "Full name (split into first and last)",
    ("title", TAG): "Job title",
    ("remote", IMPORT): "Remote (yes/no)",
    ("remote", FILTER): "Open to remote",
    ("skills", IMPORT): "Skills (list)",
    ("skills", TAG): "Skills (comma-separated)",
    ("tags", IMPORT): "Tags (list)",
    ("created_at", FILTER): "Added to the database",
}


def fields(use: str) -> tuple[Field, ...]:
    """The fields with this use, in FIELDS order."""
    return tuple(field for field in FIELDS if use in field.uses)


def names(use: str) -> tuple[str, ...]:
    return tuple(field.name for field in fields(use))


def labels(use: str) -> dict[str, str]:
    """Field -> its label for this use (import, tag or filter)."""
    return {field.name: _OWN_LABELS.get((field.name, use), field.label) for field in fields(use)}


def with_keys(use: str) -> tuple[tuple[str, str | None], ...]:
    """(field, its identity key column or None) for the fields with this use."""
    return tuple((field.name, field.key_column) for field in fields(use))
