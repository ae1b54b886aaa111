"""CSV export of candidates: a search view, a selection or a pool.

Rows are streamed from SQL in batches (skills and tags fetched with one query per batch),
so a 100,000-person export never sits in memory as a table. Every cell goes through
escape_cell() (crm.imports.cells): a spreadsheet must not run a formula someone typed
into a profile.
Exports are reads, so managers may export, but each one is written to the audit log.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, select
from sqlalchemy.orm import Session

from crm import audit, field_registry
from crm.candidates import QuickFilters, search_condition
from crm.db import read_session, write_session
from crm.errors import NotFound
from crm.imports.cells import escape_cell
from crm.models import Candidate, CandidateTag, Pool, User
from crm.pool_filter import membership_condition

# Header names are the field names the importer's column mapping takes back as the same
# fields (crm.mapping), so an exported file can be imported again unchanged.
EXPORT_COLUMNS = field_registry.names(field_registry.EXPORT)
LIST_SEPARATOR = "; "
BATCH_SIZE = 1000


def _plain(value: str | None) -> str:
    return escape_cell(value) if value else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


# The columns read from SQL: the id, every exported field but the two lists (the owner is
# their user name), and the skills last; how each field's value becomes a cell, by its type.
_SCALARS = [
    field_registry.BY_NAME[name] for name in EXPORT_COLUMNS if name not in {"skills", "tags"}
]
_SELECTED = (
    Candidate.id,
    *(
        User.username.label("owner") if field.name == "owner" else getattr(Candidate, field.name)
        for field in _SCALARS
    ),
    Candidate.skills,  # last: it is not one of the _FORMATS cells
)
_BY_KIND: dict[str, Callable[[Any], str]] = {"bool": _yes_no, "int": _number, "moment": _moment}
_FORMATS = tuple(_BY_KIND.get(field.kind, _plain) for field in _SCALARS)
_LISTS_AT = EXPORT_COLUMNS.index("skills")


def _conditions(
    session: Session, text: str, filters: QuickFilters | None, pool_name: str | None
) -> list[ColumnElement[bool]]:
    conditions = search_condition(text, filters)
    if pool_name is not None:
        pool = session.scalar(select(Pool).where(Pool.name == pool_name))
        if pool is None:
            raise NotFound(f"There is no pool called '{pool_name}'.")
        conditions.append(membership_condition(session, pool))
    return conditions


def _batches(
    connection: Connection,
    conditions: list[ColumnElement[bool]],
    candidate_ids: Sequence[int] | None,
) -> Iterator[Sequence[Row[Any]]]:
    """Candidate rows in id order, BATCH_SIZE at a time.

    A whole view or pool is one query read with yield_per (a server-side cursor on
    PostgreSQL); a selection is read in chunks of ids, which also keeps every IN list
    under the databases' parameter limits. Core rows: the ORM's per-row work would
    double the time of a large export.
    """
    query = (
        select(*_SELECTED)
        .select_from(Candidate)
        .outerjoin(User, User.id == Candidate.owner_id)
        .where(*conditions)
        .order_by(Candidate.id)
    )
    if candidate_ids is None:
        result = connection.execute(query.execution_options(yield_per=BATCH_SIZE))
        yield from result.partitions()
        return
    ids = sorted(set(candidate_ids))
    for start in range(0, len(ids), BATCH_SIZE):
        chunk = ids[start : start + BATCH_SIZE]
        rows = connection.execute(query.where(Candidate.id.in_(chunk))).all()
        if rows:
            yield rows


def _lists(connection: Connection, column: Any, ids: list[int]) -> dict[int, str]:
    """Tags of a batch of people in one query, as cells in alphabetical order."""
    found: dict[int, list[str]] = {}
    owner = column.class_.candidate_id
    query = select(owner, column).where(owner.in_(ids)).order_by(owner, column)
    for candidate_id, item in connection.execute(query):
        found.setdefault(candidate_id, []).append(item)
    return {key: escape_cell(LIST_SEPARATOR.join(items)) for key, items in found.items()}


class _Sink:
    """Collects CSV text for one batch and hands it to the caller's stream in one write,
    encoded to UTF-8 when that stream takes bytes."""

    def __init__(self, out: IO[Any]) -> None:
        self.out = out
        self.binary = isinstance(out, io.RawIOBase | io.BufferedIOBase) or (
            not isinstance(out, io.TextIOBase) and "b" in getattr(out, "mode", "")
        )
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer)

    def write_text(self, text: str) -> None:
        self.out.write(text.encode("utf-8") if self.binary else text)

    def drain(self) -> None:
        self.write_text(self.buffer.getvalue())
        self.buffer.seek(0)
        self.buffer.truncate()


def _write_rows(
    connection: Connection,
    sink: _Sink,
    conditions: list[ColumnElement[bool]],
    candidate_ids: Sequence[int] | None,
) -> int:
    written = 0
    sink.writer.writerow(EXPORT_COLUMNS)
    writerow = sink.writer.writerow
    for batch in _batches(connection, conditions, candidate_ids):
        ids = [row[0] for row in batch]
        tags = _lists(connection, CandidateTag.tag, ids)
        for row in batch:
            cells = [form(value) for form, value in zip(_FORMATS, row[1:-1], strict=True)]
            skills = escape_cell(LIST_SEPARATOR.join(sorted(row[-1])))
            cells[_LISTS_AT:_LISTS_AT] = (skills, tags.get(row[0], ""))
            writerow(cells)
        written += len(batch)
        sink.drain()
    sink.drain()
    return written


@dataclass(frozen=True)
class ExportScope:
    """Which candidates an export holds (everyone by default). text and filters select like
    the Candidates page's search box and quick filters, candidate_ids is a selection and
    pool_name a pool; given together they narrow each other."""

    text: str = ""
    filters: QuickFilters | None = None
    candidate_ids: Sequence[int] | None = None
    pool_name: str | None = None

    def audit_detail(self) -> dict[str, Any]:
        """The scope as the export's audit entry records it."""
        chosen = {} if self.filters is None else dataclasses.asdict(self.filters)
        quick_filters = {k: v for k, v in chosen.items() if v is not None}
        return {
            "pool": self.pool_name,
            "filter": self.text.strip() or None,
            "quick_filters": quick_filters or None,
            "selection": None if self.candidate_ids is None else len(set(self.candidate_ids)),
        }


def export_candidates(
    engine: Engine,
    out: IO[str] | IO[bytes],
    *,
    actor: User | None,
    scope: ExportScope = ExportScope(),
    bom: bool = False,
) -> int:
    """Write the candidates of `scope` as CSV to out (a text or a binary stream); returns
    the rows written.

    bom=True starts the file with a UTF-8 byte order mark so Excel opens it as UTF-8. A
    binary stream gets UTF-8; a text stream keeps its own encoding (open it with
    encoding="utf-8", newline="").
    """
    sink = _Sink(out)
    with read_session(engine) as session:
        conditions = _conditions(session, scope.text, scope.filters, scope.pool_name)
        if bom:
            sink.write_text("\ufeff")
        written = _write_rows(session.connection(), sink, conditions, scope.candidate_ids)
    out.flush()
    with write_session(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="export",
            entity="candidate",
            detail={"rows": written, **scope.audit_detail(), "bom": bom},
        )
    return written


def export_to_bytes(
    engine: Engine, *, actor: User | None, scope: ExportScope = ExportScope(), bom: bool = False
) -> tuple[bytes, int]:
    """The CSV file as bytes and its row count, for st.download_button."""
    buffer = io.BytesIO()
    written = export_candidates(engine, buffer, actor=actor, scope=scope, bom=bom)
    return buffer.getvalue(), written
