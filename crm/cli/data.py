"""Commands that bring people's data in and take it out: `crm import` (candidates, or an
ATS's jobs, applications and costs), `crm export ...` (CSV) and `crm candidate ...`
(privacy requests about one person: an access export, an erasure)."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from crm.cli.shell import (
    acting_admin,
    app,
    column_maps,
    command_group,
    existing_file,
    file_written_whole,
    found,
    handled,
    ready_engine,
    say,
)
from crm.errors import InputUnusable

export_app = command_group("export", "Export candidates to CSV files.")
candidate_app = command_group("candidate", "Privacy requests about one person.")


@app.command("import")
@handled
def import_(
    file: Annotated[str, typer.Argument(help="The CSV file to import.")],
    kind: Annotated[
        str, typer.Option(help="What the file holds: candidates, jobs, applications or costs.")
    ] = "candidates",
    maps: Annotated[
        list[str] | None,
        typer.Option("--map", help='Map a column by hand: --map "Work Email=email" (repeatable).'),
    ] = None,
    on_duplicate: Annotated[
        str,
        typer.Option(help="People already here: skip, update (= update_all), update_empty."),
    ] = "skip",
    source: Annotated[str | None, typer.Option(help="Source recorded for new people.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check every row and report; write nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import candidates (LinkedIn, Google, Outlook, ATS exports and more), or with --kind
    the jobs, applications or costs of an ATS export.

    Runs as the first active admin. Exit 0 when the file was imported, even if some rows
    were refused (they are reported); 2 when the file as a whole cannot be used.
    """
    from crm import importer
    from crm.mapping import CANDIDATE_FIELDS

    kinds = ("candidates", "jobs", "applications", "costs")
    if kind not in kinds:
        raise InputUnusable(f"--kind must be one of {', '.join(kinds)}, not {kind!r}.")
    if kind != "candidates":
        _import_ats(file, kind=kind, maps=maps or [], dry_run=dry_run, as_json=as_json)
        return
    modes = {"skip": "skip", "update": "update_all"} | {m: m for m in importer.ON_DUPLICATE}
    if on_duplicate not in modes:
        raise InputUnusable(
            "--on-duplicate must be skip, update, update_empty or update_all, "
            f"not {on_duplicate!r}."
        )
    overrides = column_maps(maps or [], example="Work Email=email")
    unknown = next(
        (field for field in overrides.values() if field and field not in CANDIDATE_FIELDS), None
    )
    if unknown is not None:
        raise InputUnusable(
            f"--map names an unknown field {unknown!r}; the fields are: "
            f"{', '.join(CANDIDATE_FIELDS)}."
        )
    path = existing_file(file)
    engine = ready_engine()
    shown = [-1]

    def progress(fraction: float) -> None:
        if int(fraction * 10) > shown[0]:
            shown[0] = int(fraction * 10)
            say(f"  {int(fraction * 100):3d}% of {path.name}")

    started = time.monotonic()
    result = importer.run_import(
        engine,
        path,
        importer.ImportOptions(
            on_duplicate=modes[on_duplicate], source=source, mapping=overrides or None
        ),
        actor=acting_admin(engine, "import"),
        filename=path.name,
        progress=progress,
        dry_run=dry_run,
    )
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    verb = "Checked (dry run, nothing written)" if dry_run else "Imported"
    where = "" if dry_run else f" as import {result.batch_id}"
    say(
        f"{verb} {path.name}{where} in {time.monotonic() - started:.1f} s: {result.read:,} rows, "
        f"{result.created:,} new, {result.updated:,} updated, {result.duplicates:,} duplicates, "
        f"{result.errors:,} refused."
    )
    _say_problems([(p.line, p.column, p.problem) for p in result.problems])


def _say_problems(problems: list[tuple[int, str | None, str]], shown: int = 20) -> None:
    """The first refused rows, line by line; --json carries them all."""
    for line, column, problem in problems[:shown]:
        say(f"  line {line}{f' ({column})' if column else ''}: {problem}")
    if len(problems) > shown:
        say(f"  ... and {len(problems) - shown:,} more; --json includes the full report.")


def _import_ats(file: str, *, kind: str, maps: list[str], dry_run: bool, as_json: bool) -> None:
    """Jobs, applications or costs from an ATS export (crm.ats_import)."""
    from crm import ats_import

    mapping = column_maps(maps, example="Job Name=title")
    path = existing_file(file)
    engine = ready_engine()
    result = ats_import.import_file(
        engine,
        actor=acting_admin(engine, "import"),
        data=path.read_bytes(),
        filename=path.name,
        kind=kind,
        mapping=mapping or None,
        dry_run=dry_run,
    )
    if as_json:
        typer.echo(json.dumps(result.as_json()))
        return
    verb = "Checked (dry run, nothing written)" if dry_run else "Imported"
    say(
        f"{verb} {kind} from {path.name}: {result.read:,} rows, {result.created:,} new, "
        f"{result.updated:,} updated, {result.skipped:,} duplicates, "
        f"{len(result.errors):,} refused."
    )
    if result.candidates_created:
        say(f"  {result.candidates_created:,} people added to the CRM (source ATS import).")
    _say_problems(list(result.errors))


def _export(output: str, bom: bool, **what: Any) -> None:
    from crm import exporter

    engine = ready_engine()
    with file_written_whole(output) as out:
        scope = exporter.ExportScope(**what)
        rows = exporter.export_candidates(engine, out, actor=None, scope=scope, bom=bom)
    say(f"Exported {rows} candidates to {output}.")


_OUTPUT = typer.Option("--output", "-o", help="The CSV file to write.")


_BOM = typer.Option("--bom", help="Start with a UTF-8 byte order mark, for Excel.")


@export_app.command("candidates")
@handled
def export_candidates_to_csv(
    output: Annotated[str, _OUTPUT],
    search: Annotated[
        str, typer.Option("--search", help="Only people matching this search text.")
    ] = "",
    bom: Annotated[bool, _BOM] = False,
) -> None:
    """Export candidates (all, or those matching --search) to a CSV file."""
    _export(output, bom, text=search)


@export_app.command("pool")
@handled
def export_pool_to_csv(
    name: Annotated[str, typer.Argument(help="The pool's name.")],
    output: Annotated[str, _OUTPUT],
    bom: Annotated[bool, _BOM] = False,
) -> None:
    """Export the members of a talent pool to a CSV file."""
    _export(output, bom, pool_name=name)


def _person(engine: Engine, email: str) -> int:
    from crm import privacy

    return found(
        privacy.find_by_email(engine, email), f"Nobody with the address {email} is in the CRM."
    )


@candidate_app.command("export-data")
@handled
def candidate_export_data(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    output: Annotated[str, typer.Option("--output", "-o", help="The JSON file to write.")],
) -> None:
    """Everything held about one person, as one JSON document (an access request)."""
    from crm import privacy

    engine = ready_engine()
    actor = acting_admin(engine, "export personal data")
    data = privacy.export_data_json(engine, actor=actor, candidate_id=_person(engine, email))
    with file_written_whole(output) as out:
        out.write(data)
    say(f"Wrote everything held about {email} to {output}.")


@candidate_app.command("erase")
@handled
def candidate_erase(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
) -> None:
    """Erase one person: personal data gone, queued mail cancelled, the address suppressed."""
    from crm import privacy

    engine = ready_engine()
    actor = acting_admin(engine, "erase people")
    done = privacy.erase(engine, actor=actor, candidate_id=_person(engine, email))
    say(
        f"Erased {email}: {done.messages_cancelled} queued messages cancelled"
        + ("; the address is suppressed." if done.suppressed else ".")
    )
