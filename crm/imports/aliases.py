"""Header aliases as data: which column of a file holds which field.

Each kind of import declares its fields and, per field, the header names other tools use
for it, the most telling first (a table, no code). alias_ranks() turns such a table into
header key -> (field, rank); auto_mapping() gives each field its most telling column and
with_overrides() lets the person importing move some by hand. Headers are compared by
header_key(), so case, accents, spaces and punctuation never matter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

Ranks = dict[str, tuple[str, int]]  # header key -> (field, rank: lower is more telling)


def header_key(header: str) -> str:
    """A header reduced for comparison ('E-Mail Address' -> 'emailaddress')."""
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def alias_ranks(
    fields: Iterable[str], aliases: Mapping[str, Sequence[str]], *, own_names_first: bool
) -> Ranks:
    """The table as header key -> (field, rank). A field's own name is rank 0 (an export
    of ours names its columns so); own_names_first lets it win over another field's alias."""
    ranks: Ranks = {}
    own = [(header_key(name), (name, 0)) for name in fields]
    listed = [
        (header_key(alias), (name, rank))
        for name, names in aliases.items()
        for rank, alias in enumerate(names)
    ]
    for key, found in (own + listed) if own_names_first else (listed + own):
        ranks.setdefault(key, found)
    return ranks


def auto_mapping(headers: Iterable[str], ranks: Ranks) -> dict[str, str | None]:
    """Header -> field for every header; each field goes to its most telling header.

    A header that appears twice is mapped once (its first column); blank headers map to
    nothing.
    """
    unique = list(dict.fromkeys(headers))
    best: dict[str, tuple[int, int]] = {}  # field -> (rank, position)
    for position, header in enumerate(unique):
        found = ranks.get(header_key(header))
        if found is None:
            continue
        name, rank = found
        if name not in best or (rank, position) < best[name]:
            best[name] = (rank, position)
    chosen = {position: name for name, (_rank, position) in best.items()}
    return {header: chosen.get(position) for position, header in enumerate(unique)}


def with_overrides(
    headers: Iterable[str],
    base: Mapping[str, str | None],
    overrides: Mapping[str, str | None],
) -> dict[str, str | None]:
    """The base mapping with some columns mapped by hand (already checked).

    A field mapped by hand is taken from whatever column the base gave it to, so
    `--map "Work Email=email"` moves email rather than reading two columns.
    """
    claimed = {name for name in overrides.values() if name}
    chosen: dict[str, str | None] = {}
    for header in dict.fromkeys(headers):
        if header in overrides:
            chosen[header] = overrides[header]
        else:
            name = base.get(header)
            chosen[header] = None if name in claimed else name
    return chosen


def missing_column(headers: Iterable[str], header: str) -> str:
    """The sentence for a mapping that names a column the file does not have."""
    shown = ", ".join(repr(h) for h in headers if h) or "none"
    return f"The file has no column {header!r} (its columns: {shown})."


def same_headers(first: Iterable[str], second: Iterable[str]) -> bool:
    """Whether two files have the same set of headers (order and case aside)."""
    return {header_key(h) for h in first if h.strip()} == {
        header_key(h) for h in second if h.strip()
    }
