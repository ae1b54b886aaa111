"""One rule for cells a spreadsheet would run as a formula (CSV injection).

A cell starting with = + - @, a tab or a carriage return is read by spreadsheets as a
formula (tab and CR can smuggle one past a naive check), so every CSV the app writes puts
a quote in front of it - unless it is just a signed number such as -3, +44 or -2.5e3,
which is harmless and stays readable. A cell that already starts with such a quote gets
another, so an import of the app's own export gives back exactly what was exported.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def needs_escape(value: str) -> bool:
    """Whether a spreadsheet would read the cell as a formula, or it starts with a quote
    that an import would take for our escape (so the quote survives a round trip)."""
    if value.startswith(FORMULA_STARTS):
        return not _PLAIN_NUMBER.fullmatch(value)
    return value.startswith("'") and needs_escape(value[1:])


def escape_cell(value: str) -> str:
    """The cell with a quote in front if a spreadsheet would take it for a formula."""
    return "'" + value if needs_escape(value) else value


def unescape_cell(value: str) -> str:
    """The cell as it was before escape_cell (what an import of our export reads back)."""
    return value[1:] if value.startswith("'") and needs_escape(value[1:]) else value
