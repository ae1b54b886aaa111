"""What every import reports the same way: the refused rows as CSV, the size limit, the
counts and the one audit entry of a batch."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from crm import audit, csvfile
from crm.errors import InputUnusable
from crm.imports.cells import escape_cell
from crm.models import User


class RowProblem(NamedTuple):
    line: int  # the file's line where the row starts (1-based; a spreadsheet's row number)
    column: str  # the file's header for the cell, or "" for the row as a whole
    problem: str


def report_csv(problems: Iterable[tuple[int, str, str]]) -> str:
    """The refused rows as CSV (row, column, problem); empty when none was refused.

    Headers and values come from the file, so the cells are escaped like any export.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line, column, problem in problems:
        if not out.tell():
            writer.writerow(["row", "column", "problem"])
        writer.writerow([line, escape_cell(column), escape_cell(problem)])
    return out.getvalue()


def check_size(source: csvfile.Source, limit: int, what: str = "an import") -> None:
    """Refuse, in one sentence, a file bigger than `limit` bytes (before reading it)."""
    size = csvfile.size_of(source)
    if size > limit:
        raise InputUnusable(
            f"The file is {size / 1_048_576:,.0f} MB; {what} takes at most "
            f"{limit // 1_048_576} MB, so split it into smaller files."
        )


class ImportSummary:
    """What every import's result says the same way: its error report and its counts as
    `crm import --json` prints them. A result names its refused rows, how many rows were
    refused and how many were duplicates (or skipped)."""

    read: int
    created: int
    updated: int

    def refused(self) -> Sequence[tuple[int, str, str]]:
        raise NotImplementedError

    def counts(self) -> tuple[int, int]:
        """(duplicates, refused rows)."""
        raise NotImplementedError

    def error_report_csv(self) -> str:
        """The refused rows as CSV (row, column, problem); empty when none was refused."""
        return report_csv(self.refused())

    def as_json(self) -> dict[str, Any]:
        duplicates, errors = self.counts()
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "duplicates": duplicates,
            "errors": errors,
            "error_report": self.error_report_csv() or None,
        }


def audit_batch(
    session: Session,
    *,
    actor: User,
    batch_id: int,
    detail: dict[str, Any],
    action: str = "import",
) -> None:
    """The one audit entry every import writes for its batch (a calendar import's action
    is content.import)."""
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="import_batch",
        entity_id=batch_id,
        detail=detail,
    )
