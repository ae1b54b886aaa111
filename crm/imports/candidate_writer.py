"""Writing a candidate file: who is who, then create, update or skip, chunk by chunk.

CandidateImport takes the parsed rows (crm.imports.candidate_rows) a chunk at a time,
looks up the people they name with one query per identity key, and writes with the bulk
writer (crm.imports.bulk); a dry run only counts. The rules of who is who are crm.importer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session

from crm import clock, field_registry
from crm.identity import address_hash, clean_text
from crm.imports import bulk
from crm.imports.candidate_rows import CandidateParser, CandidateRow
from crm.imports.report import RowProblem
from crm.models import (
    Activity,
    Candidate,
    CandidateTag,
    ImportChange,
    Suppression,
    User,
)

# On SQLite, an import of at least this many rows into a table holding fewer drops the
# table's plain indexes and makes them again at the end (see CandidateImport.start).
REINDEX_MIN_ROWS = 10_000
ON_DUPLICATE = ("skip", "update_empty", "update_all")
SUPPRESSED_NOTE = "The address was on the suppression list when imported."

# What an import may change on someone: (field, its identity key column or None).
# Consent, unsubscribe, owner and contact history are not here, so they are never touched.
UPDATABLE = field_registry.with_keys(field_registry.UPDATE)
COLUMNS = tuple(name for pair in UPDATABLE for name in pair if name)


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
    first_row: CandidateRow | None = None
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


class CandidateImport:
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

        self.parser = CandidateParser(headers, column_map, sample_limit)
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
            **{name: None for name in COLUMNS},
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
        self.writers: dict[str, bulk.BulkInsert] = {}
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

    def chunk(self, rows: list[CandidateRow]) -> None:
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

    def _load(self, rows: list[CandidateRow]) -> dict[str, _Person]:
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
                *(table.c[n] for n in COLUMNS),
            )
            query = query.where(bulk.among(column, keys, postgres=self.postgres))
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
        values = {name: record._mapping[name] for name in COLUMNS}
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
            bulk.among(table.c.candidate_id, sorted(found), postgres=self.postgres)
        )
        lists: dict[int, list[str]] = {}
        for candidate_id, item in self.session.execute(query):
            lists.setdefault(candidate_id, []).append(item)
        for candidate_id, items in lists.items():
            found[candidate_id].tags = items

    def _resolve(self, row: CandidateRow, index: dict[str, _Person], persons: list[_Person]) -> str:
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

    def _apply(
        self, person: _Person, row: CandidateRow, index: dict[str, _Person], *, fill_only: bool
    ):
        """Copy the row's values onto the person (only into empty fields if fill_only)."""
        values, given = person.values, row.values
        changed = False
        for name, key_column in UPDATABLE:
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
            bulk.among(Suppression.address_hash, hashes, postgres=self.postgres)
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

    def _inserters(self) -> dict[str, bulk.BulkInsert]:
        """The chunk writers, made once per import with their constant values processed."""
        if self.writers:
            return self.writers
        session = self.session
        candidates = bulk.BulkInsert(session, Candidate.__table__, [*self.new_defaults, "id"])
        self.candidate_base = candidates.processed(
            {k: v for k, v in self.new_defaults.items() if k != "remote"}
        )
        activities = bulk.BulkInsert(
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
            "tags": bulk.BulkInsert(session, CandidateTag.__table__, ["candidate_id", "tag"]),
            "activities": activities,
            "changes": bulk.BulkInsert(
                session,
                ImportChange.__table__,
                ["batch_id", "candidate_id", "action", "previous"],
            ),
        }
        return self.writers

    def _add_activity(self, writer: bulk.BulkInsert, person: _Person) -> None:
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
        statement = update_statement()
        parameters = []
        for person in people:
            if not person.dirty and not (person.prev_lists and "skills" in person.prev_lists):
                continue
            entry = {f"b_{name}": person.values.get(name) for name in COLUMNS}
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
            held = bulk.among(tag_table.c.candidate_id, ids, postgres=self.postgres)
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


def update_statement() -> Any:
    """One executemany UPDATE of the importable columns (b_* parameters), bumping the
    version so an open edit of the same person is refused rather than overwritten."""
    table = Candidate.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"))
        .values(
            {name: bindparam(f"b_{name}") for name in COLUMNS}
            | {
                "skills": bindparam("b_skills", type_=table.c.skills.type),
                "updated_at": bindparam("b_updated_at"),
                "updated_by_id": bindparam("b_updated_by_id"),
                "version": table.c.version + 1,
            }
        )
    )


def _email_order(person: _Person) -> str:
    return person.values.get("email_normalized") or "\uffff"
