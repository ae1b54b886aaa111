"""Importing candidates from CSV files: preview, import in one transaction, and undo.

A file is read as a stream in chunks of CHUNK_ROWS rows. Each row goes through the shared
field rules (clean_candidate); each chunk looks up the people it names with one IN query
per identity key and is written with Core bulk inserts, so neither time nor memory grows
with per-row queries or ORM objects. The whole import is one write transaction: a file
that turns out to be unusable half-way leaves the database as it was.

A big file is parsed in a helper process while this one resolves and writes the chunks
before (_ParserProcess); on SQLite, a big import into a smaller table rebuilds the plain
indexes at the end and looks up only keys the table can hold (_Import.start). Neither
changes what an import does, only how fast.

Who is who: a person is their normalized email or LinkedIn URL, either one. The first row
for a person decides what happens (create, skip, or update per `on_duplicate`); every
later row for the same person in the file counts as a duplicate and only fills in what is
still empty on that person (a field, the other identity key, skills or tags when there
are none) - unless the person was already in the database and the choice was "skip",
which leaves them untouched. A row whose email is one person's and whose LinkedIn URL is
another's is refused.

An import never changes consent (status, date, source, note) or unsubscribe state of
someone already in the database, and never erases: a blank cell leaves the field as it was.

Undo removes the people the import created (Candidate.import_batch_id) and puts back the
fields it changed (ImportChange rows with the previous values), except a field someone has
changed since, which is left as they made it.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import marshal
import os
import pickle
import select as _select
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from itertools import islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    String,
    Table,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from crm import audit, clock, csvfile, mapping
from crm.candidate_fields import clean_candidate
from crm.db import read_session, write_session
from crm.errors import CrmError, InputUnusable, NotFound, ValidationError
from crm.exporter import unescape_cell
from crm.identity import address_hash, clean_text
from crm.models import (
    CONSENT_STATUSES,
    Activity,
    Candidate,
    CandidateTag,
    ImportBatch,
    ImportChange,
    SavedMapping,
    Suppression,
    User,
)
from crm.permissions import require_writer

MAX_IMPORT_BYTES = 200 * 1024 * 1024
CHUNK_ROWS = 10_000
# A file this big is parsed in a helper process, beside the writing (see _ParserProcess).
HELPER_MIN_BYTES = 4 * 1024 * 1024
HELPER_WAIT = 0.0  # seconds to wait for the helper at a chunk boundary (tests wait)
HELPER_FORK = True  # fork the helper where that is safe, rather than start an interpreter
_HELPER_CODE = "from crm.importer import _parser_main; _parser_main()"
# On SQLite, an import of at least this many rows into a table holding fewer drops the
# table's plain indexes and makes them again at the end (see _Import.start).
REINDEX_MIN_ROWS = 10_000
ON_DUPLICATE = ("skip", "update_empty", "update_all")
SUPPRESSED_NOTE = "The address was on the suppression list when imported."

# What an import may change on someone: (field, its identity key column or None).
# Consent, unsubscribe, owner and contact history are not here, so they are never touched.
_UPDATABLE: tuple[tuple[str, str | None], ...] = (
    ("first_name", None),
    ("last_name", None),
    ("email", "email_normalized"),
    ("linkedin_url", "linkedin_normalized"),
    ("phone", "phone_normalized"),
    ("title", None),
    ("company", None),
    ("location", None),
    ("country", None),
    ("remote", None),
    ("role_family", None),
    ("years_experience", None),
    ("source", None),
)
_COLUMNS = tuple(name for pair in _UPDATABLE for name in pair if name)
# A cell our own export protected from spreadsheets ('=..., '+44...) comes back unprotected.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_GOOGLE_LIST = " ::: "  # Google contacts' separator in Labels / Group Membership
_LIST_FIELDS = frozenset({"skills", "tags"})

ProgressFn = Callable[[float], None]
_mapping_rules = mapping  # save_mapping's `mapping` parameter hides the module


# --- the API's data ---------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOptions:
    """What the person importing chose; None means "work it out from the file"."""

    on_duplicate: str = "skip"
    source: str | None = None
    consent_status: str = "legitimate_interest"
    # header -> field name or None (ignore the column). None: automatic. Headers left out
    # of a partial mapping keep the automatic choice.
    mapping: dict[str, str | None] | None = None
    encoding: str | None = None
    delimiter: str | None = None
    header_line: int | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int  # the file's line where the row starts (1-based; a spreadsheet's row number)
    column: str  # the file's header for the cell, or "" for the row as a whole
    problem: str


@dataclass
class Preview:
    shape: csvfile.FileShape
    mapping: dict[str, str | None]
    sample: list[dict[str, Any]]
    new: int
    updates: int
    duplicates: int
    errors: int
    problems: list[RowProblem]


@dataclass
class ImportResult:
    batch_id: int | None
    read: int
    created: int
    updated: int
    duplicates: int
    errors: int
    problems: list[RowProblem] = field(default_factory=list)

    def error_report_csv(self) -> str:
        """The refused rows as CSV (row, column, problem); empty when none was refused."""
        return _report_csv(self.problems)

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "duplicates": self.duplicates,
            "errors": self.errors,
            "error_report": self.error_report_csv() if self.problems else None,
        }


@dataclass(frozen=True)
class BatchSummary:
    id: int
    filename: str
    created_at: Any
    created_by: str | None
    rows_read: int
    created: int
    updated: int
    duplicates: int
    errors: int
    undone_at: Any
    can_undo: bool


def _report_csv(problems: Sequence[RowProblem]) -> str:
    if not problems:
        return ""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["row", "column", "problem"])
    for item in problems:
        writer.writerow([item.line, _inert(item.column), _inert(item.problem)])
    return out.getvalue()


def _inert(value: str) -> str:
    """A report cell a spreadsheet will not run as a formula (headers come from the file)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


# --- reading the file -------------------------------------------------------------------


def _check_size(source: csvfile.Source) -> None:
    size = csvfile.size_of(source)
    if size > MAX_IMPORT_BYTES:
        raise InputUnusable(
            f"The file is {size / 1_048_576:,.0f} MB; an import takes at most "
            f"{MAX_IMPORT_BYTES // 1_048_576} MB, so split it into smaller files."
        )


def inspect_file(
    source: bytes | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_line: int | None = None,
) -> csvfile.FileShape:
    """How to read the file (detected, or as chosen), with its headers and row count."""
    _check_size(source)
    return csvfile.inspect(
        source,
        known_headers=mapping.KNOWN_HEADER_KEYS,
        encoding=encoding,
        delimiter=delimiter,
        header_line=header_line,
    )


def suggest_mapping(engine: Engine, shape: csvfile.FileShape) -> dict[str, str | None]:
    """The mapping saved for files with these headers (newest first), else the automatic one."""
    with read_session(engine) as session:
        saved = session.execute(
            select(SavedMapping.mapping)
            .where(SavedMapping.kind == "candidates")
            .order_by(SavedMapping.created_at.desc(), SavedMapping.id.desc())
        ).scalars()
        for stored in saved:
            if isinstance(stored, dict) and mapping.same_headers(stored, shape.headers):
                by_key = {mapping.header_key(h): f for h, f in stored.items()}
                return {
                    header: _known_field(by_key.get(mapping.header_key(header)))
                    for header in dict.fromkeys(shape.headers)
                }
    return mapping.auto_mapping(shape.headers)


def _known_field(name: Any) -> str | None:
    return name if isinstance(name, str) and name in mapping.CANDIDATE_FIELDS else None


def save_mapping(
    engine: Engine,
    *,
    actor: User,
    name: str,
    headers: Sequence[str],
    mapping: dict[str, str | None],
) -> None:
    """Remember a mapping under a name (replacing one of the same name) for next time."""
    require_writer(engine, actor)
    name = " ".join(clean_text(name).split())
    if not name:
        raise ValidationError("Give the mapping a name.")
    if len(name) > 120:
        raise ValidationError("A mapping name is at most 120 characters.")
    headers = list(dict.fromkeys(headers))
    try:
        _mapping_rules.check_mapping(headers, mapping)
    except InputUnusable as error:
        raise ValidationError(str(error)) from None
    stored = {header: mapping.get(header) for header in headers}
    with write_session(engine, actor=actor) as session:
        existing = session.scalar(
            select(SavedMapping).where(SavedMapping.name == name).with_for_update()
        )
        if existing is None:
            session.add(
                SavedMapping(name=name, kind="candidates", mapping=stored, created_at=clock.now())
            )
        else:
            existing.mapping = stored
            existing.kind = "candidates"
            existing.created_at = clock.now()
        audit.record(
            session, actor=actor, action="import.mapping", entity="saved_mapping", entity_id=name
        )


def _resolve_mapping(
    engine: Engine, shape: csvfile.FileShape, options: ImportOptions
) -> dict[str, str | None]:
    base = suggest_mapping(engine, shape)
    chosen = mapping.with_overrides(shape.headers, base, options.mapping)
    problem = mapping.mapping_problem(chosen)
    if problem:
        raise InputUnusable(problem)
    return chosen


def _check_options(options: ImportOptions) -> None:
    if options.on_duplicate not in ON_DUPLICATE:
        raise ValidationError(
            f"For people already here choose one of {', '.join(ON_DUPLICATE)}, "
            f"not {options.on_duplicate!r}."
        )
    if options.consent_status not in CONSENT_STATUSES:
        raise ValidationError(
            f"The lawful basis must be one of {', '.join(CONSENT_STATUSES)}, "
            f"not {options.consent_status!r}."
        )
    source = clean_text(options.source)
    if "\n" in source or "\r" in source or len(source) > 80:
        raise ValidationError("The source is one line of at most 80 characters.")


# --- the import engine ------------------------------------------------------------------


class _Row:
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


class _Person:
    """Someone a chunk of rows names: new in this import, or found in the database.

    Made once per row for new people, so it sets only what differs from the class defaults.
    """

    skills: list[str] | tuple[()] = ()
    tags: list[str] | tuple[()] = ()
    frozen = False  # met before and skipped: later rows change nothing
    dirty = False  # column values changed
    lists_dirty = False
    previous: dict[str, Any] | None = None  # the values before this chunk changed them
    set_values: dict[str, Any] | None = None
    prev_lists: dict[str, list[str]] | None = None
    first_row: _Row | None = None
    touched_now = False

    def __init__(self, origin: str, values: dict[str, Any], person_id: int | None = None):
        self.id = person_id
        # new | batch (created earlier in this import) | db | seen (met earlier in it)
        self.origin = origin
        self.values = values

    @property
    def keys(self) -> tuple[str | None, str | None]:
        return self.values.get("email_normalized"), self.values.get("linkedin_normalized")

    @property
    def label(self) -> str:
        name = f"{self.values.get('first_name') or ''} {self.values.get('last_name') or ''}"
        return name.strip() or "someone"


class _Known:
    """What a dry run remembers of a person an earlier chunk met (nothing is written)."""

    __slots__ = ("id", "email_key", "linkedin_key", "frozen")

    def __init__(self, person: _Person) -> None:
        self.id = person.id
        self.email_key, self.linkedin_key = person.keys
        self.frozen = person.frozen

    def identity(self) -> dict[str, str | None]:
        """The identity fields as the import left them: filled or empty is what counts."""
        return {
            "email": self.email_key,
            "email_normalized": self.email_key,
            "linkedin_url": self.linkedin_key,
            "linkedin_normalized": self.linkedin_key,
        }


class _Parser:
    """The file's rows through the shared field rules: clean rows, or refusals with reasons.

    It needs no database, so a helper process can run it for the rows after the first
    chunks (_ParserProcess) while this process resolves and writes what came before.
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

    def parse(self, line: int, cells: list[str] | None, csv_problem: str | None) -> _Row | None:
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
        row = _Row(line, clean.values, clean.skills, clean.tags)
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


class _Import:
    """One pass over a file: parse, resolve who is who, then write (or, dry, only count)."""

    def __init__(
        self,
        session: Session,
        *,
        options: ImportOptions,
        headers: Sequence[str],
        column_map: dict[str, str | None],
        write: bool,
        actor: User | None,
        filename: str,
        sample_limit: int = 0,
    ) -> None:
        self.session = session
        self.options = options
        self.write = write
        self.actor = actor
        self.filename = filename
        self.mode = options.on_duplicate
        self.now = clock.now()
        self.batch_id: int | None = None
        # The parser counts the rows read and those it refuses; errors and problems here
        # are the rows refused when resolving who is who.
        self.created = self.updated = self.duplicates = self.errors = 0
        self.problems: list[RowProblem] = []
        self.postgres = session.get_bind().dialect.name == "postgresql"

        self.parser = _Parser(headers, column_map, sample_limit)
        self.fields = self.parser.fields
        self.lists_mapped = bool(self.fields & {"skills", "tags"})

        # Who this import has met so far, beyond what the database shows.
        self.touched: dict[int, bool] = {}  # existing id -> already has an import activity
        self.known: dict[str, _Known] = {}  # dry run: identity key -> person
        self.known_ids: dict[int, _Known] = {}
        self.next_id = 0
        self.started = False
        self.reindex: list[str] = []  # CREATE INDEX statements to run in finish()
        self.stored: set[str] | None = None  # see start()

        source = clean_text(options.source) or None
        consent = options.consent_status
        # Every NOT NULL column is set; nullable ones an import never fills are left out.
        self.new_defaults: dict[str, Any] = {
            **{name: None for name in _COLUMNS},
            "first_name": "",
            "last_name": "",
            "remote": False,
            "consent_status": consent,
            "consent_at": self.now if consent == "consented" else None,
            "consent_source": f"CSV import: {filename}"[:120],
            "consent_note": None,
            "owner_id": actor.id if actor else None,
            "custom_fields": {},
            "skills": [],
            "import_batch_id": None,
            "version": 1,
            "updated_by_id": actor.id if actor else None,
            "created_at": self.now,
            "updated_at": self.now,
        }
        self.default_source = source
        self.summary = f"Imported from {filename}"
        self.writers: dict[str, _BulkInsert] = {}
        self.candidate_base: dict[str, Any] = {}
        self.activity_base: dict[str, Any] = {}
        self.activity_tail: tuple[Any, ...] = ()

    @property
    def read(self) -> int:
        return self.parser.read

    @property
    def sample(self) -> list[dict[str, Any]]:
        return self.parser.sample

    def total_errors(self) -> int:
        return self.parser.errors + self.errors

    def all_problems(self) -> list[RowProblem]:
        """Every refusal, in the file's order."""
        return sorted(self.parser.problems + self.problems, key=lambda problem: problem.line)

    def start(self, rows: int) -> None:
        """Before the first chunk, knowing about how many rows the file holds.

        On SQLite, an import of more rows than the table holds drops the table's plain
        (non-unique) indexes and makes them again in finish(): sorting every entry once
        costs far less than inserting each row into six B-trees. DDL is part of the
        transaction in SQLite, so an import that fails leaves them as they were; the
        unique indexes (who is who) stay and keep doing their work throughout. Such an
        import also keeps the identity keys the table holds (self.stored) in memory.
        """
        self.started = True
        if not self.write or self.postgres or rows < REINDEX_MIN_ROWS:
            return
        table = Candidate.__table__
        if rows <= (self.session.scalar(select(func.count()).select_from(table)) or 0):
            return
        # The identity keys the table holds now; with those this import writes, they are
        # all it can hold until the import ends (it has the write lock), so other keys
        # need no lookup (the table holds fewer rows than the file: cheaper than lookups).
        self.stored = set()
        for column in (table.c.email_normalized, table.c.linkedin_normalized):
            self.stored.update(self.session.scalars(select(column).where(column.is_not(None))))
        connection = self.session.connection()
        quote = connection.dialect.identifier_preparer.quote
        listed = connection.exec_driver_sql(f"PRAGMA index_list({quote(table.name)})").all()
        for _seq, name, unique, origin, *_partial in listed:
            if unique or origin != "c":
                continue
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (name,)
            ).scalar()
            if sql:
                connection.exec_driver_sql(f"DROP INDEX {quote(name)}")
                self.reindex.append(sql)

    def finish(self) -> None:
        """After the last chunk: make the indexes start() dropped."""
        if self.reindex:
            connection = self.session.connection()
            for sql in self.reindex:
                connection.exec_driver_sql(sql)
            self.reindex = []

    # --- one chunk ----------------------------------------------------------------------

    def chunk(self, rows: list[_Row]) -> None:
        """Resolve a chunk's rows against the database and each other, then apply them."""
        if not rows:
            return
        index = self._load(rows)
        persons: list[_Person] = []
        for row in rows:
            outcome = self._resolve(row, index, persons)
            if row.sample is not None:
                row.sample["outcome"] = outcome
        new = [p for p in persons if p.origin == "new"]
        suppressed = self._suppressed(new)
        for person in new:
            self._new_values(person, suppressed)
            sample = person.first_row.sample if person.first_row is not None else None
            if sample is not None and person.values.get("consent_note") == SUPPRESSED_NOTE:
                sample["problems"] = sample.get("problems", []) + [
                    "On the suppression list: imported as do not contact."
                ]
        if self.write:
            self._write(persons, new)
        else:
            self._remember(persons)

    def _load(self, rows: list[_Row]) -> dict[str, _Person]:
        """The people the chunk's identity keys name, indexed by key."""
        emails = {row.email_key for row in rows if row.email_key}
        linkedins = {row.linkedin_key for row in rows if row.linkedin_key}
        table = Candidate.__table__
        found: dict[int, _Person] = {}
        for column, keys in (
            (table.c.email_normalized, emails),
            (table.c.linkedin_normalized, linkedins),
        ):
            if self.stored is not None:  # a key the table cannot hold needs no lookup
                keys = keys & self.stored
            if not keys:
                continue
            query = select(
                table.c.id,
                table.c.import_batch_id,
                table.c.skills,
                *(table.c[n] for n in _COLUMNS),
            )
            query = query.where(_among(column, keys, postgres=self.postgres))
            if self.write and self.postgres:
                query = query.with_for_update()
            for record in self.session.execute(query):
                if record.id not in found:
                    found[record.id] = self._person_from(record)
        if self.lists_mapped and found:
            self._load_lists(found)
        index: dict[str, _Person] = {}
        for person in found.values():
            for key in person.keys:
                if key:
                    index[key] = person
        if not self.write:
            # A dry run wrote nothing, so what earlier chunks did lives in memory.
            stand_ins: dict[int, _Person] = {}
            for key in emails | linkedins:
                known = self.known.get(key)
                if known is None:
                    continue
                person = found.get(known.id) if known.id is not None else None
                if person is None:
                    person = stand_ins.get(id(known))
                    if person is None:
                        values = known.identity()
                        origin = "seen" if known.id is not None else "batch"
                        person = _Person(origin, values, known.id)
                        person.frozen = known.frozen
                        stand_ins[id(known)] = person
                index[key] = person
        return index

    def _person_from(self, record: Any) -> _Person:
        values = {name: record._mapping[name] for name in _COLUMNS}
        person = _Person("db", values, record.id)
        if record.skills:
            person.skills = record.skills
        if (
            self.write
            and record.import_batch_id is not None
            and record.import_batch_id == (self.batch_id)
        ):
            person.origin = "batch"
        elif record.id in self.touched or record.id in self.known_ids:
            person.origin = "seen"
            person.frozen = self.mode == "skip"
            known = self.known_ids.get(record.id)
            if known is not None:  # a dry run: the keys as this import left them
                values.update(known.identity())
        return person

    def _load_lists(self, found: dict[int, _Person]) -> None:
        if "tags" not in self.fields:
            return  # skills came with the people themselves
        table = CandidateTag.__table__
        query = select(table.c.candidate_id, table.c.tag).where(
            _among(table.c.candidate_id, sorted(found), postgres=self.postgres)
        )
        lists: dict[int, list[str]] = {}
        for candidate_id, item in self.session.execute(query):
            lists.setdefault(candidate_id, []).append(item)
        for candidate_id, items in lists.items():
            found[candidate_id].tags = items

    def _resolve(self, row: _Row, index: dict[str, _Person], persons: list[_Person]) -> str:
        """Decide what the row does; returns its outcome for the preview."""
        first = index.get(row.email_key) if row.email_key else None
        second = index.get(row.linkedin_key) if row.linkedin_key else None
        if first is not None and second is not None and first is not second:
            self.errors += 1
            message = (
                f"The email address is {first.label}'s and the LinkedIn URL is "
                f"{second.label}'s; these are two people, so the row is not imported."
            )
            self.problems.append(RowProblem(row.line, self.parser.column("email"), message))
            if row.sample is not None:
                row.sample["problems"] = [message]
            return "error"
        person = first or second
        if person is None:
            person = _Person("new", row.values)
            person.skills, person.tags = row.skills, row.tags
            person.first_row = row
            persons.append(person)
            for key in (row.email_key, row.linkedin_key):
                if key:
                    index[key] = person
            self.created += 1
            return "new"
        if not person.touched_now:
            person.touched_now = True
            if person.origin != "new":
                persons.append(person)
        if person.origin == "db":
            person.origin = "seen"
            person.first_row = row
            if self.mode == "skip":
                person.frozen = True
                self.duplicates += 1
                return "duplicate"
            if self._apply(person, row, index, fill_only=self.mode == "update_empty"):
                self.updated += 1
                return "update"
            self.duplicates += 1
            return "duplicate"
        self.duplicates += 1
        if not person.frozen:
            self._apply(person, row, index, fill_only=True)
        return "duplicate"

    def _apply(self, person: _Person, row: _Row, index: dict[str, _Person], *, fill_only: bool):
        """Copy the row's values onto the person (only into empty fields if fill_only)."""
        values, given = person.values, row.values
        changed = False
        for name, key_column in _UPDATABLE:
            new = given.get(name)
            if new is None or new == "" or (fill_only and name == "remote"):
                continue
            old = values.get(name)
            if fill_only and old is not None and old != "":
                continue
            if not fill_only and old == new:
                continue
            if key_column is not None:
                new_key, old_key = given.get(key_column), values.get(key_column)
                if new_key != old_key:
                    holder = index.get(new_key) if key_column != "phone_normalized" else None
                    if holder is not None and holder is not person:
                        continue  # the key is someone else's: leave it
                    if key_column != "phone_normalized":
                        if old_key and index.get(old_key) is person:
                            del index[old_key]
                        index[new_key] = person
                self._change(person, key_column, new_key)
            self._change(person, name, new)
            changed = True
        for attribute, items in (("skills", row.skills), ("tags", row.tags)):
            if not items:
                continue
            current = getattr(person, attribute)
            if (fill_only and current) or sorted(current) == sorted(items):
                continue
            if person.prev_lists is None:
                person.prev_lists = {}
            if attribute not in person.prev_lists:
                person.prev_lists[attribute] = list(current)
            setattr(person, attribute, list(items))
            person.lists_dirty = True
            changed = True
        return changed

    def _change(self, person: _Person, name: str, value: Any) -> None:
        if person.previous is None:
            person.previous, person.set_values = {}, {}
        if name not in person.previous:
            person.previous[name] = person.values.get(name)
        person.values[name] = value
        person.set_values[name] = value  # type: ignore[index]
        person.dirty = True

    def _suppressed(self, new: list[_Person]) -> set[str]:
        """The new people's email keys that are on the suppression list."""
        if not new or self.session.scalar(select(Suppression.id).limit(1)) is None:
            return set()  # no list at all: no need to hash every address
        hashes = {
            address_hash(p.values["email_normalized"]): p.values["email_normalized"]
            for p in new
            if p.values.get("email_normalized")
        }
        if not hashes:
            return set()
        query = select(Suppression.address_hash).where(
            _among(Suppression.address_hash, hashes, postgres=self.postgres)
        )
        return {hashes[found] for found in self.session.scalars(query)}

    def _new_values(self, person: _Person, suppressed: set[str]) -> None:
        """What a new person gets beyond the row: the import's source, or do-not-contact."""
        values = person.values
        values["source"] = self.default_source or values.get("source")
        if values.get("email_normalized") in suppressed:
            values["consent_status"] = "do_not_contact"
            values["consent_at"] = None
            values["consent_note"] = SUPPRESSED_NOTE

    # --- applying a chunk ---------------------------------------------------------------

    def _new_ids(self, count: int) -> list[int]:
        if self.postgres:
            sequence = func.pg_get_serial_sequence("candidates", "id")
            query = select(func.nextval(sequence)).select_from(
                func.generate_series(1, count).alias("n")
            )
            return list(self.session.scalars(query))
        first = self.next_id
        self.next_id += count
        return list(range(first, first + count))

    def _inserters(self) -> dict[str, _BulkInsert]:
        """The chunk writers, made once per import with their constant values processed."""
        if self.writers:
            return self.writers
        session = self.session
        candidates = _BulkInsert(session, Candidate.__table__, [*self.new_defaults, "id"])
        self.candidate_base = candidates.processed(
            {k: v for k, v in self.new_defaults.items() if k != "remote"}
        )
        activities = _BulkInsert(
            session,
            Activity.__table__,
            ["candidate_id", "kind", "channel", "occurred_at", "actor_id", "summary", "details"],
        )
        self.activity_base = activities.processed(
            {
                "kind": "import",
                "channel": None,
                "occurred_at": self.now,
                "actor_id": self.actor.id if self.actor else None,
                "summary": self.summary,
                "details": {"batch_id": self.batch_id},
            }
        )
        # The table's column order starts with candidate_id; the rest is the same every time.
        self.activity_tail = activities.getter({**self.activity_base, "candidate_id": None})[1:]
        self.writers = {
            "candidates": candidates,
            "tags": _BulkInsert(session, CandidateTag.__table__, ["candidate_id", "tag"]),
            "activities": activities,
            "changes": _BulkInsert(
                session,
                ImportChange.__table__,
                ["batch_id", "candidate_id", "action", "previous"],
            ),
        }
        return self.writers

    def _add_activity(self, writer: _BulkInsert, person: _Person) -> None:
        note = person.first_row.note if person.first_row is not None else None
        if not note:
            writer.add_row((person.id, *self.activity_tail))
            return
        row = {**self.activity_base, "candidate_id": person.id}
        summary = self.summary
        if "connected_on" in note:
            summary += f" (connected on {note['connected_on']})"
        if "note" in note:
            summary += f": {note['note']}"
        row["summary"] = summary
        row["details"] = {"batch_id": self.batch_id, **note}
        writer.add(row, ("details",))

    def _write(self, persons: list[_Person], new: list[_Person]) -> None:
        writers = self._inserters()
        tags, activities = writers["tags"], writers["activities"]
        if new:
            candidates, base = writers["candidates"], self.candidate_base
            # Ids in email order: the email index then grows at its end, like the table,
            # instead of splitting pages all over (a third faster on SQLite).
            new = sorted(new, key=_email_order)
            ids = self._new_ids(len(new))
            for person, new_id in zip(new, ids, strict=True):
                person.id = new_id
            # Column by column: each row holds what {**base, **person.values} would give
            # (with id, remote and skills set), for a fraction of a dict per row.
            values = [person.values for person in new]
            given = set().union(*values)
            columns: dict[str, Sequence[Any] | None] = {}
            for name in candidates.names:
                if name == "id":
                    columns[name] = ids
                elif name == "remote":
                    remote = [bool(v.get(name)) for v in values] if name in given else [False]
                    remote = candidates.process(name, remote)
                    columns[name] = remote if name in given else remote * len(new)
                elif name == "skills":
                    columns[name] = candidates.process(name, [p.skills for p in new])
                elif name in given:
                    default = base[name]
                    columns[name] = [v.get(name, default) for v in values]
                elif base[name] is None:
                    columns[name] = None
                else:
                    columns[name] = [base[name]] * len(new)
            candidates.write_columns(columns)
            if self.stored is not None:
                for key in ("email_normalized", "linkedin_normalized"):
                    self.stored.update(filter(None, columns[key] or ()))
            tags.add_rows([(p.id, item) for p in new for item in p.tags])
            for person in new:
                # The timeline shows "Imported from FILE" from the person's import batch
                # (crm.candidates.timeline); only what the file said of them needs a row.
                if person.first_row is not None and person.first_row.note:
                    self._add_activity(activities, person)
        updated = [p for p in persons if p.origin != "new" and (p.dirty or p.lists_dirty)]
        if updated:
            self._update(updated)
            changes = writers["changes"]
            for person in updated:
                prev_lists = person.prev_lists or {}
                if "tags" in prev_lists:
                    tags.add_rows([(person.id, item) for item in person.tags])
                if person.origin == "batch":
                    continue  # created by this import: undo removes it whole
                previous: dict[str, Any] = {
                    "fields": person.previous or {},
                    "set": person.set_values or {},
                }
                for attribute, items in prev_lists.items():
                    previous[attribute] = items
                    previous[f"set_{attribute}"] = getattr(person, attribute)
                changes.add(
                    {
                        "batch_id": self.batch_id,
                        "candidate_id": person.id,
                        "action": "updated",
                        "previous": previous,
                    },
                    ("previous",),
                )
                if not self.touched.get(person.id):
                    self._add_activity(activities, person)
                    self.touched[person.id] = True
        for person in persons:
            if person.origin == "seen" and person.id is not None:
                self.touched.setdefault(person.id, False)
        if self.stored is not None:
            self.stored.update(key for person in updated for key in person.keys if key)
        for name in ("tags", "activities", "changes"):
            writers[name].flush()

    def _update(self, people: list[_Person]) -> None:
        statement = _update_statement()
        parameters = []
        for person in people:
            if not person.dirty and not (person.prev_lists and "skills" in person.prev_lists):
                continue
            entry = {f"b_{name}": person.values.get(name) for name in _COLUMNS}
            entry["b_skills"] = list(person.skills)
            entry["b_id"] = person.id
            entry["b_updated_at"] = self.now
            entry["b_updated_by_id"] = self.actor.id if self.actor else None
            parameters.append(entry)
        if parameters:
            self.session.execute(statement, parameters)
        tag_table = CandidateTag.__table__
        ids = [p.id for p in people if p.prev_lists and "tags" in p.prev_lists]
        if ids:  # the new tags are inserted with the chunk's other rows
            held = _among(tag_table.c.candidate_id, ids, postgres=self.postgres)
            self.session.execute(delete(tag_table).where(held))

    def _remember(self, persons: list[_Person]) -> None:
        """A dry run keeps what the chunk decided, as the database would have."""
        for person in persons:
            known = _Known(person)
            if person.id is not None:
                self.known_ids[person.id] = known
            for key in person.keys:
                if key:
                    self.known[key] = known


def _update_statement() -> Any:
    """One executemany UPDATE of the importable columns (b_* parameters), bumping the
    version so an open edit of the same person is refused rather than overwritten."""
    table = Candidate.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            {name: bindparam(f"b_{name}") for name in _COLUMNS}
            | {
                "skills": bindparam("b_skills", type_=table.c.skills.type),
                "updated_at": bindparam("b_updated_at"),
                "updated_by_id": bindparam("b_updated_by_id"),
                "version": table.c.version + 1,
            }
        )
    )


def _among(column: Any, values: Iterable[Any], *, postgres: bool) -> ColumnElement[bool]:
    """column IN (values) with the values as one parameter, not thousands.

    A chunk looks up thousands of keys or ids; a bound parameter for each costs more than
    the lookup, and SQLite allows at most 32,766. PostgreSQL takes an array (= ANY), SQLite
    a JSON array (json_each); both use the column's index.
    """
    if postgres:
        items = sorted(set(values))
        kind = Integer if items and isinstance(items[0], int) else String
        return column == any_(bindparam(None, items, type_=postgresql.ARRAY(kind)))
    listed = json.dumps(list(set(values)))  # in any order: sorting thousands costs
    each = func.json_each(bindparam(None, listed, type_=String)).table_valued("value")
    return column.in_(select(each.c.value))


def _email_order(person: _Person) -> str:
    return person.values.get("email_normalized") or "\uffff"


def _insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table), rows)


class _BulkInsert:
    """Many rows handed straight to the driver: executemany on SQLite, COPY on PostgreSQL.

    SQLAlchemy compiles the INSERT and supplies its own bind processors (UTC datetimes,
    JSON, booleans), so what is stored is exactly what a Core insert stores; what is skipped
    is its per-row parameter handling, which costs more than SQLite's own work (and
    psycopg's pipelined executemany more than PostgreSQL's; COPY avoids both). Values the
    same in every row (constants) are processed once.
    """

    def __init__(self, session: Session, table: Table, columns: Sequence[str]) -> None:
        self.session = session
        dialect = session.get_bind().dialect
        wanted = set(columns)
        self.names = [column.name for column in table.columns if column.name in wanted]
        self.copy = dialect.name == "postgresql"
        if self.copy:
            quote = dialect.identifier_preparer.quote
            self.sql = (
                f"COPY {dialect.identifier_preparer.format_table(table)} "
                f"({', '.join(quote(name) for name in self.names)}) FROM STDIN"
            )
        else:
            compiled = insert(table).compile(dialect=dialect, column_keys=self.names)
            if not dialect.positional or list(compiled.positiontup or ()) != self.names:
                raise RuntimeError(f"unexpected parameters for {table.name}")  # pragma: no cover
            self.sql = str(compiled)
        self.processors = {
            name: processor
            for name in self.names
            if (processor := table.columns[name].type._cached_bind_processor(dialect))
        }
        self.getter = itemgetter(*self.names)
        self.rows: list[tuple[Any, ...]] = []
        self.table, self.dialect = table, dialect
        self.statements: dict[tuple[str, ...], str] = {tuple(self.names): self.sql}
        # Columns an INSERT may leave out when they hold no value: nullable, and NULL by
        # default in the table as it is (SQLite only; COPY takes every column).
        self.omissible: set[str] = set()
        if not self.copy:
            described = session.connection().exec_driver_sql(
                f"PRAGMA table_info({dialect.identifier_preparer.format_table(table)})"
            )
            self.omissible = {
                name
                for _cid, name, _type, notnull, default, _pk in described
                if not notnull and default is None and name in wanted
            }

    def _statement(self, names: tuple[str, ...]) -> str:
        """The INSERT of these columns (given in table column order)."""
        sql = self.statements.get(names)
        if sql is None:
            compiled = insert(self.table).compile(dialect=self.dialect, column_keys=list(names))
            if list(compiled.positiontup or ()) != list(names):
                raise RuntimeError(
                    f"unexpected parameters for {self.table.name}"
                )  # pragma: no cover
            sql = self.statements[names] = str(compiled)
        return sql

    def processed(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values as the driver takes them (for constants: do it once)."""
        for name, processor in self.processors.items():
            if name in values:
                values[name] = processor(values[name])
        return values

    def add(self, values: dict[str, Any], varying: Sequence[str] = ()) -> None:
        """Queue a row; `varying` names the processed columns whose values are not constants."""
        for name in varying:
            values[name] = self.processors[name](values[name])
        self.rows.append(self.getter(values))

    def process(self, name: str, items: list[Any]) -> list[Any]:
        """A column's values as the driver takes them."""
        processor = self.processors.get(name)
        return [processor(item) for item in items] if processor else items

    def write_columns(self, columns: dict[str, Sequence[Any] | None]) -> None:
        """Write rows given column by column (processed; None: NULL in every row) now.

        On SQLite a column that is NULL in every row and NULL by default is left out of the
        INSERT: the rows stored are the same, and SQLite takes them a quarter faster.
        """
        count = max((len(column) for column in columns.values() if column is not None), default=0)
        names = tuple(
            name
            for name in self.names
            if name not in self.omissible
            or (
                (column := columns[name]) is not None and any(value is not None for value in column)
            )
        )
        self.flush()
        self.rows = list(
            zip(
                *(
                    repeat(None, count) if (column := columns[name]) is None else column
                    for name in names
                ),
                strict=True,
            )
        )
        self.flush(names)

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Queue one row given as a tuple in table column order, already processed."""
        self.rows.append(row)

    def add_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue rows given as tuples in table column order, needing no processing."""
        self.rows.extend(rows)

    def flush(self, names: tuple[str, ...] | None = None) -> None:
        """Write the queued rows in one executemany (SQLite) or COPY (PostgreSQL); `names`
        are the columns the rows hold when they are not all the writer's."""
        rows, self.rows = self.rows, []
        if not rows:
            return
        connection = self.session.connection()
        if names is not None and names != tuple(self.names):
            if self.copy:
                raise RuntimeError("COPY takes every column")  # pragma: no cover
            connection.exec_driver_sql(self._statement(names), rows)
        elif self.copy:
            cursor = connection.connection.cursor()  # the transaction's own connection
            driver_error = self.dialect.loaded_dbapi.Error
            try:
                with cursor.copy(self.sql) as copy:
                    for row in rows:
                        copy.write_row(row)
            except driver_error as error:
                # COPY bypasses SQLAlchemy, which would have wrapped the driver's error: do it
                # here, so a key someone else took meanwhile is the IntegrityError callers
                # handle ("import the file again"), not a bare psycopg UniqueViolation.
                raise DBAPIError.instance(
                    self.sql, None, error, driver_error, dialect=self.dialect
                ) from error
            finally:
                cursor.close()
        else:
            connection.exec_driver_sql(self.sql, rows)


def _chunks(
    job: _Import,
    rows: csvfile.CsvRows,
    progress: ProgressFn | None,
    size: int,
    helper: _ParserProcess | None = None,
) -> Iterator[list[_Row]]:
    """The accepted rows of the file, CHUNK_ROWS at a time, reporting progress as it goes.

    With a helper, the rows after the first chunk boundary it is ready at are parsed there
    (the same rules, the same chunks): it starts on them before this process resolves and
    writes the chunk it has just parsed, so neither waits for the other at the start.
    """
    parser = job.parser
    items = iter(rows)
    handed = False
    while True:
        if handed and helper is not None:
            start = parser.read
            yield from helper.chunks(parser, progress, size)
            if helper.finished:
                return
            # The helper quit part-way: go on here after the rows it delivered.
            helper = None
            deque(islice(items, parser.read - start), maxlen=0)
        chunk: list[_Row] = []
        count = 0
        for line, cells, problem in islice(items, CHUNK_ROWS):
            count += 1
            row = parser.parse(line, cells, problem)
            if row is not None:
                chunk.append(row)
        last = count < CHUNK_ROWS
        handed = (
            not last
            and helper is not None
            and parser.read >= parser.sample_limit
            and helper.begin(parser.read)
        )
        yield chunk
        if last:
            return
        if progress is not None and size:
            progress(min(0.99, rows.bytes_read / size))


def _prepare(
    engine: Engine, source: bytes | Path, options: ImportOptions
) -> tuple[csvfile.FileShape, dict[str, str | None]]:
    _check_options(options)
    if isinstance(source, Path) and not source.is_file():
        raise InputUnusable(f"No such file: {source}")
    _check_size(source)
    shape = csvfile.inspect(
        source,
        known_headers=mapping.KNOWN_HEADER_KEYS,
        encoding=options.encoding,
        delimiter=options.delimiter,
        header_line=options.header_line,
        count_rows=False,
    )
    return shape, _resolve_mapping(engine, shape, options)


def _run(job: _Import, source: bytes | Path, shape: csvfile.FileShape, progress: ProgressFn | None):
    size = csvfile.size_of(source)
    helper = _ParserProcess.start(source, shape, job.parser) if size >= HELPER_MIN_BYTES else None
    try:
        with _gc_paused(), csvfile.CsvRows(source, shape) as rows:
            rows.read_header()
            for chunk in _chunks(job, rows, progress, size, helper):
                if not job.started:
                    job.start(_estimate_rows(job.parser.read, rows.bytes_read, size))
                job.chunk(chunk)
            job.finish()
    finally:
        if helper is not None:
            helper.close()
    if job.read == 0:
        raise InputUnusable("The file has a header row but no data rows.")


def _estimate_rows(read: int, bytes_read: int, size: int) -> int:
    """About how many rows the whole file holds, from how far the first chunk went."""
    if read and bytes_read:
        return int(read * max(1.0, size / bytes_read))
    return size // 100


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while the rows pile up (they make no cycles).

    An import holds a chunk of rows - hundreds of thousands of small containers - and the
    collector would walk them again and again; reference counting still frees them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the helper process that parses ---------------------------------------------------


def _send(stream: IO[bytes], message: tuple[Any, ...]) -> None:
    """One framed message: kind (m: marshal, p: pickle), length, payload."""
    try:
        kind, payload = b"m", marshal.dumps(message)
    except ValueError:  # an exception or other object marshal cannot write
        kind, payload = b"p", pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(kind + len(payload).to_bytes(8, "little"))
    stream.write(payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> tuple[Any, ...] | None:
    """The next message, None at the end of the stream."""
    head = stream.read(9)
    if len(head) < 9:
        return None
    length = int.from_bytes(head[1:], "little")
    payload = stream.read(length)
    if len(payload) < length:
        return None
    # Only our own helper process writes to this stream (or reads what we wrote).
    return marshal.loads(payload) if head[:1] == b"m" else pickle.loads(payload)


class _ParserProcess:
    """A second process that parses the rows after a given one, a chunk at a time.

    Parsing (the field rules on every cell) costs about as much as resolving and writing
    the rows, so on a machine with a second core the two overlap. The process starts at
    once but needs a moment to import; until it is ready this process parses the first
    chunks itself, then hands over at a chunk boundary (the helper rereads the file up to
    there). The helper never touches the database. If it cannot start, or quits, this
    process parses the rest itself; a file fault it meets (InputUnusable) fails the import
    exactly as it would have here.
    """

    def __init__(self, process: subprocess.Popen[bytes] | _Forked, start: tuple[Any, ...]) -> None:
        self.process = process
        self.start_message = start
        self.is_ready = False
        self.broken = False  # it did not start: this process parses everything
        self.finished = False  # it sent every chunk

    @classmethod
    def start(
        cls, source: bytes | Path, shape: csvfile.FileShape, parser: _Parser
    ) -> _ParserProcess | None:
        if os.name != "posix" or not sys.executable:
            return None  # select() on pipes, below, is POSIX only
        shape_fields = (shape.encoding, shape.delimiter, shape.header_line, tuple(shape.headers))
        where = bytes(source) if isinstance(source, bytes | bytearray) else str(source)
        start = (where, shape_fields, parser.headers, parser.column_map)
        if HELPER_FORK and sys.platform.startswith("linux") and threading.active_count() == 1:
            # A copy of this process is ready at once; with other threads about (a web
            # server) a fork is not safe, so a fresh interpreter is started instead.
            try:
                return cls(_Forked(), start)
            except OSError:
                return None
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _HELPER_CODE],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd=root,
            )
        except OSError:
            return None
        return cls(process, start)

    def begin(self, start: int) -> bool:
        """Hand the rows from `start` on to the helper, if it has started (waiting at most
        HELPER_WAIT seconds for that); False leaves them to this process."""
        if self.broken:
            return False
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        if not self.is_ready:
            if not _select.select([stdout], [], [], HELPER_WAIT)[0]:
                return False
            if _receive(stdout) != ("ready",):
                self.broken = True
                return False
            self.is_ready = True
        try:
            _send(stdin, ("start", *self.start_message, start, CHUNK_ROWS))
            stdin.close()
        except OSError:
            self.broken = True
            return False
        return True

    def chunks(
        self, parser: _Parser, progress: ProgressFn | None, size: int
    ) -> Iterator[list[_Row]]:
        """The chunks from the parser's position on; counts and refusals go to `parser`.

        Stops early (finished False) if the helper quits; the caller carries on.
        """
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            message = _receive(stdout)
            if message is None or message[0] == "failed":
                return
            if message[0] == "unusable":
                raise InputUnusable(message[1])
            if message[0] == "done":
                self.finished = True
                return
            _kind, items, read, errors, problems, bytes_read = message
            parser.read += read
            parser.errors += errors
            parser.problems.extend(RowProblem(*problem) for problem in problems)
            yield [_Row(*item) for item in items]
            if read == CHUNK_ROWS and progress is not None and size:
                progress(min(0.99, bytes_read / size))

    def close(self) -> None:
        process = self.process
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        if process.poll() is None:
            process.kill()
        process.wait()


class _Forked:
    """A forked copy of this process running _parser_main, with Popen's few methods."""

    def __init__(self) -> None:
        to_child, from_parent = os.pipe()
        from_child, to_parent = os.pipe()
        pid = os.fork()
        if pid == 0:  # the copy: it never returns, and leaves all it inherited alone
            try:
                os.close(from_parent)
                os.close(from_child)
                with open(to_child, "rb") as inp, open(to_parent, "wb") as out:
                    _parser_main(inp, out)
            finally:
                os._exit(0)
        os.close(to_child)
        os.close(to_parent)
        self.pid = pid
        self.stdin: IO[bytes] | None = open(from_parent, "wb")  # noqa: SIM115
        self.stdout: IO[bytes] | None = open(from_child, "rb")  # noqa: SIM115
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int | None:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _parser_main(inp: IO[bytes] | None = None, out: IO[bytes] | None = None) -> None:
    """The helper process (see _ParserProcess): parse and send chunks until the file ends."""
    gc.disable()
    if inp is None or out is None:  # a process of its own: the messages are on stdin/out
        inp, out = sys.stdin.buffer, sys.stdout.buffer
        sys.stdout = sys.stderr  # nothing else may write to the messages' stream
    try:
        _send(out, ("ready",))
        message = _receive(inp)
        if message is None:
            return
        _kind, where, shape_fields, headers, column_map, skip, chunk_rows = message
        source = where if isinstance(where, bytes) else Path(where)
        shape = csvfile.FileShape(*shape_fields, None)
        parser = _Parser(headers, column_map)
        try:
            with csvfile.CsvRows(source, shape) as rows:
                rows.read_header()
                items = iter(rows)
                deque(islice(items, skip), maxlen=0)
                while True:
                    chunk = []
                    for line, cells, problem in islice(items, chunk_rows):
                        row = parser.parse(line, cells, problem)
                        if row is not None:
                            chunk.append((row.line, row.values, row.skills, row.tags, row.note))
                    problems = [(p.line, p.column, p.problem) for p in parser.problems]
                    message = ("chunk", chunk, parser.read, parser.errors, problems)
                    _send(out, (*message, rows.bytes_read))
                    if parser.read < chunk_rows:
                        break
                    parser.read = parser.errors = 0
                    parser.problems = []
        except InputUnusable as error:
            _send(out, ("unusable", str(error)))
            return
        except Exception as error:  # the main process parses the rest itself
            _send(out, ("failed", repr(error)))
            return
        _send(out, ("done",))
    except OSError:  # the main process went away
        return


def preview(
    engine: Engine, source: bytes | Path, options: ImportOptions, *, limit: int = 50
) -> Preview:
    """What the import would do, row by row; reads the whole file and writes nothing."""
    shape, chosen = _prepare(engine, source, options)
    with read_session(engine) as session:
        job = _Import(
            session,
            options=options,
            headers=shape.headers,
            column_map=chosen,
            write=False,
            actor=None,
            filename="",
            sample_limit=limit,
        )
        _run(job, source, shape, None)
    counted = csvfile.FileShape(
        shape.encoding, shape.delimiter, shape.header_line, shape.headers, job.read
    )
    for row in job.sample:
        row.setdefault("problems", [])
    return Preview(
        shape=counted,
        mapping=chosen,
        sample=job.sample,
        new=job.created,
        updates=job.updated,
        duplicates=job.duplicates,
        errors=job.total_errors(),
        problems=job.all_problems(),
    )


def run_import(
    engine: Engine,
    source: bytes | Path,
    options: ImportOptions,
    *,
    actor: User,
    filename: str,
    progress: ProgressFn | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Import the file in one transaction and record it as a batch that can be undone.

    dry_run=True does everything but write (the counts and the error report are what the
    import would give). Refused rows are reported, not raised; a file that is unusable as a
    whole raises InputUnusable and leaves the database unchanged.
    """
    require_writer(engine, actor)
    filename = " ".join(clean_text(filename).split())[:255] or "import.csv"
    shape, chosen = _prepare(engine, source, options)
    if dry_run:
        with read_session(engine) as session:
            job = _Import(
                session,
                options=options,
                headers=shape.headers,
                column_map=chosen,
                write=False,
                actor=actor,
                filename=filename,
            )
            _run(job, source, shape, progress)
        if progress is not None:
            progress(1.0)
        return _result(job)
    try:
        result = _write_import(engine, source, shape, chosen, options, actor, filename, progress)
    except IntegrityError:
        # Someone saved one of these people (same email or LinkedIn URL) while the import
        # ran; the whole import was rolled back.
        raise CrmError(
            "The import was rolled back because someone added or changed one of these people "
            "while it ran; import the file again."
        ) from None
    if progress is not None:
        progress(1.0)
    return result


def _write_import(
    engine: Engine,
    source: bytes | Path,
    shape: csvfile.FileShape,
    chosen: dict[str, str | None],
    options: ImportOptions,
    actor: User,
    filename: str,
    progress: ProgressFn | None,
) -> ImportResult:
    """The import proper: one write transaction, recorded as a batch with its audit entry."""
    with write_session(engine) as session:
        job = _Import(
            session,
            options=options,
            headers=shape.headers,
            column_map=chosen,
            write=True,
            actor=actor,
            filename=filename,
        )
        recorded = {
            **asdict(options),
            "mapping": chosen,
            "encoding": shape.encoding,
            "delimiter": shape.delimiter,
            "header_line": shape.header_line,
        }
        batch = ImportBatch(
            kind="candidates",
            filename=filename,
            created_by_id=actor.id,
            created_at=job.now,
            options=recorded,
        )
        session.add(batch)
        session.flush()
        job.batch_id = batch.id
        job.new_defaults["import_batch_id"] = batch.id
        if not job.postgres:
            job.next_id = (session.scalar(select(func.max(Candidate.id))) or 0) + 1
        _run(job, source, shape, progress)
        result = _result(job)
        session.execute(
            update(ImportBatch.__table__)
            .where(ImportBatch.__table__.c.id == batch.id)
            .values(
                rows_read=result.read,
                created_count=result.created,
                updated_count=result.updated,
                duplicate_count=result.duplicates,
                error_count=result.errors,
                error_report=result.error_report_csv() or None,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="import",
            entity="import_batch",
            entity_id=batch.id,
            detail={
                "filename": filename,
                "read": result.read,
                "created": result.created,
                "updated": result.updated,
                "duplicates": result.duplicates,
                "errors": result.errors,
            },
        )
    return result


def _result(job: _Import) -> ImportResult:
    return ImportResult(
        batch_id=job.batch_id,
        read=job.read,
        created=job.created,
        updated=job.updated,
        duplicates=job.duplicates,
        errors=job.total_errors(),
        problems=job.all_problems(),
    )


# --- batches and undo -------------------------------------------------------------------


def list_batches(engine: Engine, *, limit: int = 20) -> list[BatchSummary]:
    """The latest imports, newest first."""
    table = ImportBatch.__table__
    with read_session(engine) as session:
        records = session.execute(
            select(table, User.display_name)
            .outerjoin(User, User.id == table.c.created_by_id)
            .where(table.c.kind == "candidates")
            .order_by(table.c.created_at.desc(), table.c.id.desc())
            .limit(limit)
        ).all()
    return [
        BatchSummary(
            id=r.id,
            filename=r.filename,
            created_at=r.created_at,
            created_by=r.display_name,
            rows_read=r.rows_read,
            created=r.created_count,
            updated=r.updated_count,
            duplicates=r.duplicate_count,
            errors=r.error_count,
            undone_at=r.undone_at,
            can_undo=r.undone_at is None,
        )
        for r in records
    ]


def error_report(engine: Engine, batch_id: int) -> str | None:
    """The CSV of the rows an import refused, None if it refused none."""
    with read_session(engine) as session:
        batch = session.get(ImportBatch, batch_id)
        if batch is None:
            raise NotFound(f"There is no import number {batch_id}.")
        return batch.error_report


def undo_import(engine: Engine, *, actor: User, batch_id: int) -> tuple[int, int]:
    """Remove the people an import created and restore what it changed: (removed, restored).

    A field changed again since the import (by a person or a later import) keeps its new
    value; a restored address someone else holds by now stays as it is.
    """
    require_writer(engine, actor)
    now = clock.now()
    with write_session(engine, actor=actor) as session:
        batch = session.get(ImportBatch, batch_id, with_for_update=True)
        if batch is None:
            raise NotFound(f"There is no import number {batch_id}.")
        if batch.undone_at is not None:
            raise ValidationError(
                f"This import was already undone on {batch.undone_at:%Y-%m-%d at %H:%M} UTC."
            )
        restored = _restore(session, batch_id, actor, now)
        removed = session.execute(
            delete(Candidate.__table__).where(Candidate.__table__.c.import_batch_id == batch_id)
        ).rowcount
        batch.undone_at = now
        audit.record(
            session,
            actor=actor,
            action="import.undo",
            entity="import_batch",
            entity_id=batch_id,
            detail={"filename": batch.filename, "removed": removed, "restored": restored},
        )
    return removed, restored


def _restore(session: Session, batch_id: int, actor: User, now: Any) -> int:
    """Put back the fields an import changed, newest change first; returns people restored."""
    table = Candidate.__table__
    postgres = session.get_bind().dialect.name == "postgresql"
    changes = session.execute(
        select(ImportChange.id, ImportChange.candidate_id, ImportChange.previous)
        .where(
            ImportChange.batch_id == batch_id,
            ImportChange.action == "updated",
            ImportChange.candidate_id.is_not(None),
        )
        .order_by(ImportChange.id.desc())
    ).all()
    restored: set[int] = set()
    for start in range(0, len(changes), CHUNK_ROWS):
        part = changes[start : start + CHUNK_ROWS]
        ids = sorted({candidate_id for _id, candidate_id, _previous in part})
        query = select(table.c.id, table.c.skills, *(table.c[n] for n in _COLUMNS)).where(
            _among(table.c.id, ids, postgres=postgres)
        )
        current: dict[int, dict[str, Any]] = {}
        lists: dict[tuple[int, str], list[str]] = {}
        for r in session.execute(query.with_for_update()):
            current[r.id] = {n: r._mapping[n] for n in _COLUMNS}
            lists[(r.id, "skills")] = r.skills
        tag_table = CandidateTag.__table__
        for candidate_id, item in session.execute(
            select(tag_table.c.candidate_id, tag_table.c.tag).where(
                _among(tag_table.c.candidate_id, ids, postgres=postgres)
            )
        ):
            lists.setdefault((candidate_id, "tags"), []).append(item)
        wanted_keys = {
            value
            for _id, _cid, previous in part
            for name, value in (previous or {}).get("fields", {}).items()
            if name in {"email_normalized", "linkedin_normalized"} and value
        }
        holders: dict[str, int] = {}
        for column in ("email_normalized", "linkedin_normalized"):
            if wanted_keys:
                for holder_id, key in session.execute(
                    select(table.c.id, table.c[column]).where(
                        _among(table.c[column], wanted_keys, postgres=postgres)
                    )
                ):
                    holders[key] = holder_id
        dirty: set[int] = set()
        lists_dirty: set[tuple[int, str]] = set()
        for _change_id, candidate_id, previous in part:
            values = current.get(candidate_id)
            if values is None or not previous:
                continue
            old_fields, set_fields = previous.get("fields", {}), previous.get("set", {})
            for name, _key in _UPDATABLE:
                if name not in old_fields or values.get(name) != set_fields.get(name):
                    continue
                if _key and _key in old_fields:
                    old_key = old_fields[_key]
                    if values.get(_key) != set_fields.get(_key):
                        continue
                    if old_key and holders.get(old_key, candidate_id) != candidate_id:
                        continue
                    values[_key] = old_key
                values[name] = old_fields[name]
                dirty.add(candidate_id)
            for attribute in ("skills", "tags"):
                if attribute not in previous:
                    continue
                now_items = lists.get((candidate_id, attribute), [])
                if sorted(now_items) != sorted(previous.get(f"set_{attribute}") or []):
                    continue
                lists[(candidate_id, attribute)] = list(previous[attribute])
                lists_dirty.add((candidate_id, attribute))
                dirty.add(candidate_id)
        if not dirty:
            continue
        statement = _update_statement()
        session.execute(
            statement,
            [
                {f"b_{n}": current[cid][n] for n in _COLUMNS}
                | {
                    "b_skills": list(dict.fromkeys(lists.get((cid, "skills"), []))),
                    "b_id": cid,
                    "b_updated_at": now,
                    "b_updated_by_id": actor.id,
                }
                for cid in sorted(dirty)
            ],
        )
        touched = sorted(cid for cid, name in lists_dirty if name == "tags")
        if touched:
            held = _among(tag_table.c.candidate_id, touched, postgres=postgres)
            session.execute(delete(tag_table).where(held))
            _insert(
                session,
                tag_table,
                [
                    {"candidate_id": cid, "tag": item}
                    for cid in touched
                    for item in dict.fromkeys(lists[(cid, "tags")])
                ],
            )
        restored |= dirty
    _forget_activities(session, batch_id, {cid for _id, cid, _p in changes})
    return len(restored)


def _forget_activities(session: Session, batch_id: int, candidate_ids: set[int]) -> None:
    """The timeline entries an undone import left on people it had updated."""
    if not candidate_ids:
        return
    postgres = session.get_bind().dialect.name == "postgresql"
    ids = sorted(candidate_ids)
    for start in range(0, len(ids), CHUNK_ROWS):
        part = ids[start : start + CHUNK_ROWS]
        found = session.execute(
            select(Activity.id, Activity.details).where(
                Activity.kind == "import",
                _among(Activity.candidate_id, part, postgres=postgres),
            )
        ).all()
        doomed = [
            activity_id
            for activity_id, details in found
            if isinstance(details, dict) and details.get("batch_id") == batch_id
        ]
        if doomed:
            session.execute(delete(Activity).where(_among(Activity.id, doomed, postgres=postgres)))
