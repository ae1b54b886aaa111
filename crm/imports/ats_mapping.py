"""Which column of an ATS export holds which field, per kind (jobs, applications, costs).

The aliases are data (crm.imports.ats_tables) read by the shared engine
(crm.imports.aliases); what is particular here is what each kind needs mapped.
"""

from __future__ import annotations

from crm.errors import InputUnusable
from crm.imports import aliases
from crm.imports.ats_tables import ALIAS_RANKS, FIELDS, KINDS


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputUnusable(f"The kind must be one of {', '.join(KINDS)}, not {kind!r}.")


def auto_mapping(kind: str, headers: tuple[str, ...] | list[str]) -> dict[str, str | None]:
    """Header -> field for every header; each field goes to its most telling header."""
    check_kind(kind)
    return aliases.auto_mapping(headers, ALIAS_RANKS[kind])


def with_overrides(
    kind: str, headers: tuple[str, ...], overrides: dict[str, str | None] | None
) -> dict[str, str | None]:
    base = auto_mapping(kind, headers)
    if not overrides:
        return base
    present = set(headers)
    for header, name in overrides.items():
        if name is not None and name not in FIELDS[kind]:
            raise InputUnusable(
                f"{name!r} is not a field of {kind}; the fields are: {', '.join(FIELDS[kind])}."
            )
        if header not in present:
            raise InputUnusable(aliases.missing_column(headers, header))
    chosen = aliases.with_overrides(headers, base, overrides)
    taken: dict[str, str] = {}
    for header, name in chosen.items():
        if name is None:
            continue
        if name in taken:
            raise InputUnusable(
                f"The columns {taken[name]!r} and {header!r} both go to "
                f"{FIELDS[kind][name].lower()}; choose one."
            )
        taken[name] = header
    return chosen


def mapping_problem(kind: str, chosen: dict[str, str | None]) -> str | None:
    """One sentence when no row could be imported with this mapping, else None."""
    fields = {name for name in chosen.values() if name}
    if not fields:
        return (
            f"None of the file's columns is one an import of {kind} knows; map the columns "
            "by hand or check that the file is the right export."
        )
    if kind == "jobs":
        missing = [name for name in ("title", "opened") if name not in fields]
        if missing:
            labels = " and ".join(
                {"title": "the job title", "opened": "the opened date"}[m] for m in missing
            )
            return f"No column holds {labels}; map one by hand."
    elif kind == "applications":
        if not fields & {"job_ref", "job_title"}:
            return "No column names the job (its ATS ID or title); map one by hand."
        if not fields & {"email", "linkedin_url"}:
            return "No column holds the candidate's email or LinkedIn URL; map one by hand."
        if "source" not in fields:
            return (
                "No column holds the source of each application (LinkedIn, Referral, "
                "Talent pool...); map one by hand."
            )
    else:
        missing = [name for name in ("date", "amount") if name not in fields]
        if missing:
            labels = " and ".join({"date": "the date", "amount": "the amount"}[m] for m in missing)
            return f"No column holds {labels} of each cost; map one by hand."
    return None
