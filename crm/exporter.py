"""CSV export of candidates: a search view, a selection or a pool.

Rows are streamed from SQL in batches (skills and tags fetched with one query per batch),
so a 100,000-person export never sits in memory as a table. Every cell goes through
escape_cell(): a spreadsheet must not run a formula someone typed into a profile.
Exports are reads, so managers may export, but each one is written to the audit log.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, select
from sqlalchemy.orm import Session

from crm import audit
from crm.candidates import QuickFilters, search_condition
from crm.db import read_session, write_session
from crm.errors import NotFound
from crm.models import Candidate, CandidateTag, Pool, User
from crm.pools import membership_condition

# Header names are the field names the importer's column mapping takes back as the same
# fields (crm.mapping), so an exported file can be imported again unchanged.
EXPORT_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "linkedin_url",
    "phone",
    "title",
    "company",
    "location",
    "country",
    "remote",
    "role_family",
    "years_experience",
    "skills",
    "tags",
    "source",
    "consent_status",
    "owner",
    "created_at",
    "last_contacted_at",
)
LIST_SEPARATOR = "; "
BATCH_SIZE = 1000

# A cell starting with one of these is read by spreadsheets as a formula (or, for tab and
# CR, can smuggle one past a naive check), so it gets a leading quote...
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ...unless it is just a signed number such as -3, +44 or -2.5e3, which is harmless.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_SELECTED = (
    Candidate.id,
    Candidate.first_name,
    Candidate.last_name,
    Candidate.email,
    Candidate.linkedin_url,
    Candidate.phone,
    Candidate.title,
    Candidate.company,
    Candidate.location,
    Candidate.country,
    Candidate.remote,
    Candidate.role_family,
    Candidate.years_experience,
    Candidate.source,
    Candidate.consent_status,
    User.username.label("owner"),
    Candidate.created_at,
    Candidate.last_contacted_at,
    Candidate.skills,  # last: it is not one of the _FORMATS cells
)


def needs_escape(value: str) -> bool:
    """Whether a spreadsheet would read the cell as a formula, or it starts with a quote
    that an import would take for our escape (so the quote survives a round trip)."""
    if value.startswith(_FORMULA_STARTS):
        return not _PLAIN_NUMBER.fullmatch(value)
    return value.startswith("'") and needs_escape(value[1:])


def escape_cell(value: str) -> str:
    """The cell with a quote in front if a spreadsheet would take it for a formula."""
    return "'" + value if needs_escape(value) else value


def unescape_cell(value: str) -> str:
    """The cell as it was before escape_cell (what an import of our export reads back)."""
    return value[1:] if value.startswith("'") and needs_escape(value[1:]) else value


def _plain(value: str | None) -> str:
    return escape_cell(value) if value else ""


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _moment(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="seconds")


# How each selected column (after the id) becomes a cell; skills and tags go in between.
_FORMATS: tuple[Callable[[Any], str], ...] = (
    *(_plain,) * 9,  # first_name ... country
    _yes_no,  # remote
    _plain,  # role_family
    _number,  # years_experience
    _plain,  # source
    _plain,  # consent_status
    _plain,  # owner
    _moment,  # created_at
    _moment,  # last_contacted_at
)
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


def _quick_filters(filters: QuickFilters | None) -> dict[str, Any] | None:
    if filters is None:
        return None
    chosen = {k: v for k, v in dataclasses.asdict(filters).items() if v is not None}
    return chosen or None


def export_candidates(
    engine: Engine,
    out: IO[str] | IO[bytes],
    *,
    actor: User | None,
    text: str = "",
    candidate_ids: Sequence[int] | None = None,
    pool_name: str | None = None,
    bom: bool = False,
    filters: QuickFilters | None = None,
) -> int:
    """Write candidates as CSV to out (a text or a binary stream); returns the rows written.

    text and filters select like the Candidates page's search box and quick filters,
    candidate_ids is a selection and pool_name a pool; given together they narrow each
    other. bom=True starts the file with a UTF-8 byte order mark so Excel opens it as
    UTF-8. A binary stream gets UTF-8; a text stream keeps its own encoding (open it with
    encoding="utf-8", newline="").
    """
    sink = _Sink(out)
    with read_session(engine) as session:
        conditions = _conditions(session, text, filters, pool_name)
        if bom:
            sink.write_text("\ufeff")
        written = _write_rows(session.connection(), sink, conditions, candidate_ids)
    out.flush()
    with write_session(engine) as session:
        audit.record(
            session,
            actor=actor,
            action="export",
            entity="candidate",
            detail={
                "rows": written,
                "pool": pool_name,
                "filter": text.strip() or None,
                "quick_filters": _quick_filters(filters),
                "selection": None if candidate_ids is None else len(set(candidate_ids)),
                "bom": bom,
            },
        )
    return written


def export_to_bytes(
    engine: Engine,
    *,
    actor: User | None,
    text: str = "",
    candidate_ids: Sequence[int] | None = None,
    pool_name: str | None = None,
    bom: bool = False,
    filters: QuickFilters | None = None,
) -> tuple[bytes, int]:
    """The CSV file as bytes and its row count, for st.download_button."""
    buffer = io.BytesIO()
    written = export_candidates(
        engine,
        buffer,
        actor=actor,
        text=text,
        candidate_ids=candidate_ids,
        pool_name=pool_name,
        bom=bom,
        filters=filters,
    )
    return buffer.getvalue(), written
