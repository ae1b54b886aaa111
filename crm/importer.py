"""Importing candidates from CSV files: preview, import in one transaction, and undo.

A file is read as a stream in chunks of CHUNK_ROWS rows. Each row goes through the shared
field rules (clean_candidate); each chunk looks up the people it names with one IN query
per identity key and is written with Core bulk inserts, so neither time nor memory grows
with per-row queries or ORM objects. The whole import is one write transaction: a file
that turns out to be unusable half-way leaves the database as it was.

A big file is parsed in a helper process while this one resolves and writes the chunks
before (crm.imports.parsing); on SQLite, a big import into a smaller table rebuilds the plain
indexes at the end and looks up only keys the table can hold (CandidateImport.start). Neither
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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm import audit, clock, csvfile, mapping
from crm.db import read_session, write_session
from crm.errors import CrmError, InputUnusable, NotFound, ValidationError
from crm.identity import clean_text
from crm.imports import aliases, bulk, parsing
from crm.imports.candidate_writer import (
    COLUMNS,
    ON_DUPLICATE,
    UPDATABLE,
    CandidateImport,
    ImportOptions,
    update_statement,
)
from crm.imports.report import ImportSummary, RowProblem, audit_batch, check_size
from crm.models import (
    CONSENT_STATUSES,
    Activity,
    Candidate,
    CandidateTag,
    ImportBatch,
    ImportChange,
    SavedMapping,
    User,
)
from crm.permissions import require_writer

MAX_IMPORT_BYTES = 200 * 1024 * 1024
CHUNK_ROWS = 10_000
# A file this big is parsed in a helper process, beside the writing (crm.imports.parsing).
HELPER_MIN_BYTES = 4 * 1024 * 1024

ProgressFn = Callable[[float], None]
_mapping_rules = mapping  # save_mapping's `mapping` parameter hides the module


# --- the API's data ---------------------------------------------------------------------


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
class ImportResult(ImportSummary):
    batch_id: int | None
    read: int
    created: int
    updated: int
    duplicates: int
    errors: int
    problems: list[RowProblem] = field(default_factory=list)

    def refused(self) -> list[RowProblem]:
        return self.problems

    def counts(self) -> tuple[int, int]:
        return self.duplicates, self.errors


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


def inspect_file(
    source: bytes | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_line: int | None = None,
) -> csvfile.FileShape:
    """How to read the file (detected, or as chosen), with its headers and row count."""
    check_size(source, MAX_IMPORT_BYTES)
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
            if isinstance(stored, dict) and aliases.same_headers(stored, shape.headers):
                by_key = {aliases.header_key(h): f for h, f in stored.items()}
                return {
                    header: _known_field(by_key.get(aliases.header_key(header)))
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


def _job(
    session: Session,
    shape: csvfile.FileShape,
    chosen: dict[str, str | None],
    options: ImportOptions,
    actor: User | None,
    *,
    write: bool,
    filename: str = "",
    sample_limit: int = 0,
) -> CandidateImport:
    """The import engine for this file as mapped, with these options."""
    return CandidateImport(
        session,
        options=options,
        headers=shape.headers,
        column_map=chosen,
        write=write,
        actor=actor,
        filename=filename,
        sample_limit=sample_limit,
    )


def _prepare(
    engine: Engine, source: bytes | Path, options: ImportOptions
) -> tuple[csvfile.FileShape, dict[str, str | None]]:
    _check_options(options)
    if isinstance(source, Path) and not source.is_file():
        raise InputUnusable(f"No such file: {source}")
    check_size(source, MAX_IMPORT_BYTES)
    shape = csvfile.inspect(
        source,
        known_headers=mapping.KNOWN_HEADER_KEYS,
        encoding=options.encoding,
        delimiter=options.delimiter,
        header_line=options.header_line,
        count_rows=False,
    )
    return shape, _resolve_mapping(engine, shape, options)


def _run(
    job: CandidateImport,
    source: bytes | Path,
    shape: csvfile.FileShape,
    progress: ProgressFn | None,
):
    size = csvfile.size_of(source)
    helper = None
    if size >= HELPER_MIN_BYTES:
        helper = parsing.ParserProcess.start(source, shape, job.parser, CHUNK_ROWS)
    try:
        with parsing.gc_paused(), csvfile.CsvRows(source, shape) as rows:
            rows.read_header()
            chunks = parsing.parsed_chunks(job.parser, rows, CHUNK_ROWS, progress, size, helper)
            for chunk in chunks:
                if not job.started:
                    job.start(parsing.estimate_rows(job.parser.read, rows.bytes_read, size))
                job.chunk(chunk)
            job.finish()
    finally:
        if helper is not None:
            helper.close()
    if job.read == 0:
        raise InputUnusable("The file has a header row but no data rows.")


def preview(
    engine: Engine, source: bytes | Path, options: ImportOptions, *, limit: int = 50
) -> Preview:
    """What the import would do, row by row; reads the whole file and writes nothing."""
    shape, chosen = _prepare(engine, source, options)
    with read_session(engine) as session:
        job = _job(session, shape, chosen, options, None, write=False, sample_limit=limit)
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
        **_refusals(job),
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
            job = _job(session, shape, chosen, options, actor, write=False, filename=filename)
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
        job = _job(session, shape, chosen, options, actor, write=True, filename=filename)
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
        audit_batch(
            session,
            actor=actor,
            batch_id=batch.id,
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


def _refusals(job: CandidateImport) -> dict[str, Any]:
    """The duplicates and refused rows a preview and a result both give."""
    return {
        "duplicates": job.duplicates,
        "errors": job.total_errors(),
        "problems": job.all_problems(),
    }


def _result(job: CandidateImport) -> ImportResult:
    counts = {"read": job.read, "created": job.created, "updated": job.updated}
    return ImportResult(batch_id=job.batch_id, **counts, **_refusals(job))


# --- batches and undo -------------------------------------------------------------------


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
        query = select(table.c.id, table.c.skills, *(table.c[n] for n in COLUMNS)).where(
            bulk.among(table.c.id, ids, postgres=postgres)
        )
        current: dict[int, dict[str, Any]] = {}
        lists: dict[tuple[int, str], list[str]] = {}
        for r in session.execute(query.with_for_update()):
            current[r.id] = {n: r._mapping[n] for n in COLUMNS}
            lists[(r.id, "skills")] = r.skills
        tag_table = CandidateTag.__table__
        for candidate_id, item in session.execute(
            select(tag_table.c.candidate_id, tag_table.c.tag).where(
                bulk.among(tag_table.c.candidate_id, ids, postgres=postgres)
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
                        bulk.among(table.c[column], wanted_keys, postgres=postgres)
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
            for name, _key in UPDATABLE:
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
        statement = update_statement()
        session.execute(
            statement,
            [
                {f"b_{n}": current[cid][n] for n in COLUMNS}
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
            held = bulk.among(tag_table.c.candidate_id, touched, postgres=postgres)
            session.execute(delete(tag_table).where(held))
            bulk.insert_rows(
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
                bulk.among(Activity.candidate_id, part, postgres=postgres),
            )
        ).all()
        doomed = [
            activity_id
            for activity_id, details in found
            if isinstance(details, dict) and details.get("batch_id") == batch_id
        ]
        if doomed:
            session.execute(
                delete(Activity).where(bulk.among(Activity.id, doomed, postgres=postgres))
            )
