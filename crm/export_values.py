"""Values as exports write them: plain JSON values (timestamps and dates as ISO text,
decimals as text) and CSV cells a spreadsheet never takes for a formula."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from crm.imports.cells import escape_cell


def jsonable(value: Any) -> Any:
    """Plain JSON values: timestamps and dates as ISO text, decimals as text."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    return value


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for None, yes/no, JSON for lists and objects, formula-escaped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return escape_cell(text)


def csv_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> bytes:
    """A small table (a chart's data, a figure) as UTF-8 CSV with formula-safe cells: the
    header row, then each row's values in the columns' order."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_cell(column) for column in columns])
    for row in rows:
        writer.writerow([csv_cell(_plain(row.get(column))) for column in columns])
    return out.getvalue().encode("utf-8")


def _plain(value: Any) -> Any:
    """Missing numbers (NaN, as pandas holds them) are empty cells, not the text "nan"."""
    return None if isinstance(value, float) and math.isnan(value) else jsonable(value)
