"""A candidate file's rows through the shared field rules (crm.candidate_fields).

CandidateParser turns each row's cells into a CandidateRow (clean values, skills and tags,
identity keys, a note for the timeline) or refuses it with reasons. It needs no database,
so the helper process (crm.imports.parsing) can run it beside the one that writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crm import csvfile, field_registry, mapping
from crm.candidate_fields import clean_candidate
from crm.identity import clean_text
from crm.imports.cells import unescape_cell
from crm.imports.report import RowProblem

_GOOGLE_LIST = " ::: "  # Google contacts' separator in Labels / Group Membership
_LIST_FIELDS = frozenset(
    field.name for field in field_registry.fields(field_registry.IMPORT) if field.kind == "list"
)


class CandidateRow:
    """One accepted row: clean values, lists, identity keys and what the timeline gets."""

    __slots__ = ("line", "values", "skills", "tags", "email_key", "linkedin_key", "note", "sample")

    def __init__(
        self,
        line: int,
        values: dict[str, Any],
        skills: list[str],
        tags: list[str],
        note: dict[str, str] | None = None,
    ):
        self.line = line
        self.values = values
        self.skills = skills
        self.tags = tags
        self.email_key: str | None = values.get("email_normalized")
        self.linkedin_key: str | None = values.get("linkedin_normalized")
        self.note = note
        self.sample: dict[str, Any] | None = None


class CandidateParser:
    """The file's rows through the shared field rules: clean rows, or refusals with reasons.

    It needs no database, so a helper process can run it for the rows after the first
    chunks (crm.imports.parsing) while this process resolves and writes what came before.
    """

    def __init__(
        self, headers: Sequence[str], column_map: dict[str, str | None], sample_limit: int = 0
    ) -> None:
        self.headers = tuple(headers)
        self.column_map = dict(column_map)
        self.sample_limit = sample_limit
        self.sample: list[dict[str, Any]] = []
        self.read = self.errors = 0  # rows read; rows refused here
        self.problems: list[RowProblem] = []

        # Column index -> field, first column of a header only; several columns may feed
        # one field (the first non-empty wins).
        self.width = len(headers)
        seen_headers: set[str] = set()
        self.columns: list[tuple[int, str]] = []
        self.header_for: dict[str, str] = {}
        for index, header in enumerate(headers):
            if header in seen_headers:
                continue
            seen_headers.add(header)
            target = column_map.get(header)
            if target:
                self.columns.append((index, target))
                self.header_for.setdefault(target, header)
        self.fields = {target for _index, target in self.columns}
        self.shown_fields = [
            name
            for name in mapping.CANDIDATE_FIELDS
            if name in self.fields and name not in {"full_name"}
        ]
        if "full_name" in self.fields:
            self.shown_fields = ["first_name", "last_name"] + [
                name for name in self.shown_fields if name not in {"first_name", "last_name"}
            ]
        # (index, field, is a list field), and the width a row needs to reach every column.
        self._cells = [(index, target, target in _LIST_FIELDS) for index, target in self.columns]
        self._reach = max((index + 1 for index, _target in self.columns), default=0)

    def parse(
        self, line: int, cells: list[str] | None, csv_problem: str | None
    ) -> CandidateRow | None:
        """The row's clean values, or None after recording its problems."""
        self.read += 1
        sample = None
        if self.sample_limit and len(self.sample) < self.sample_limit:
            sample = {"line": line}
            self.sample.append(sample)
        if cells is None:
            self._refuse(line, [("", csv_problem or "The row is not valid CSV.")], sample)
            return None
        problems: list[tuple[str, str]] = []
        raw: dict[str, Any] = {}
        count = len(cells)
        if count > self.width and "".join(cells[self.width :]).strip():
            problems.append(
                (
                    "",
                    f"The row has {count} values but the header has {self.width} columns; "
                    "check for a delimiter inside an unquoted value.",
                )
            )
        short = count < self._reach
        for index, target, is_list in self._cells:
            if short and index >= count:
                continue
            value = cells[index]
            if not value or target in raw:
                continue
            if value[0] == "'":
                value = unescape_cell(value)  # our export's formula escape
            if len(value) > csvfile.MAX_FIELD_CHARS:
                problems.append(
                    (target, f"The value is longer than {csvfile.MAX_FIELD_CHARS:,} characters.")
                )
                continue
            if "\x00" in value:
                problems.append((target, "The value holds a NUL character (binary data)."))
                continue
            if is_list and (_GOOGLE_LIST in value or value.startswith("* ")):
                # Google's "* myContacts ::: Friends": its own groups start with "* ".
                raw[target] = [
                    part for part in value.split(_GOOGLE_LIST) if not part.startswith("* ")
                ]
                continue
            raw[target] = value
        if sample is not None:
            for name in self.shown_fields:
                shown = raw.get(name)
                sample[name] = ", ".join(shown) if isinstance(shown, list) else shown
        try:
            clean = clean_candidate(raw)
        except ValueError as error:
            # urlsplit raises on a stray "[" in a URL, which the shared rules let through.
            target = "linkedin_url" if "linkedin_url" in raw else ""
            self._refuse(line, [*problems, (target, f"A value cannot be read ({error}).")], sample)
            return None
        if problems or clean.problems:
            self._refuse(line, problems + clean.problems, sample)
            return None
        row = CandidateRow(line, clean.values, clean.skills, clean.tags)
        if "notes" in raw or "connected_on" in raw:
            note, connected = raw.get("notes"), raw.get("connected_on")
            if note or connected:
                row.note = {}
                if note:
                    row.note["note"] = clean_text(note)
                if connected:
                    row.note["connected_on"] = " ".join(clean_text(connected).split())
        if sample is not None:
            values = clean.values
            for name in self.shown_fields:
                if name in values:
                    sample[name] = values[name]
            if "skills" in self.fields:
                sample["skills"] = ", ".join(clean.skills)
            if "tags" in self.fields:
                sample["tags"] = ", ".join(clean.tags)
            sample["problems"] = []
            row.sample = sample
        return row

    def _refuse(
        self, line: int, problems: list[tuple[str, str]], sample: dict[str, Any] | None
    ) -> None:
        self.errors += 1
        for target, message in problems:
            self.problems.append(RowProblem(line, self.column(target), message))
        if sample is not None:
            sample["problems"] = [message for _target, message in problems]
            sample["outcome"] = "error"

    @property
    def args(self) -> tuple[Any, ...]:
        return self.headers, self.column_map

    @staticmethod
    def pack(row: CandidateRow) -> tuple[Any, ...]:
        return row.line, row.values, row.skills, row.tags, row.note

    @staticmethod
    def unpack(item: tuple[Any, ...]) -> CandidateRow:
        return CandidateRow(*item)

    def column(self, target: str) -> str:
        """The file's header for a field a problem is about."""
        if not target:
            return ""
        found = self.header_for.get(target)
        if found:
            return found
        if target in {"first_name", "last_name"}:
            for other in ("full_name", "first_name", "last_name"):
                if other in self.header_for:
                    return self.header_for[other]
        if target in {"email", "linkedin_url"}:
            for other in ("email", "linkedin_url"):
                if other in self.header_for:
                    return self.header_for[other]
        return mapping.CANDIDATE_FIELDS.get(target, target)
