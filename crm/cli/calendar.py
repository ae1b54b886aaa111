"""`crm calendar export`: the content calendar as an iCalendar file."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from crm import clock
from crm.cli.shell import command_group, file_written_whole, handled, parse_date, ready_engine, say
from crm.errors import InputUnusable

calendar_app = command_group("calendar", "The content calendar.")


@calendar_app.command("export")
@handled
def calendar_export(
    output: Annotated[str, typer.Option("--output", "-o", help="The .ics file to write.")],
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
) -> None:
    """The content calendar as iCalendar: one event per occurrence (default: the next year)."""
    from crm.content_calendar import files

    first = parse_date(start, "--from") or (clock.today() - dt.timedelta(days=31))
    last = parse_date(end, "--to") or (first + dt.timedelta(days=396))
    if last < first:
        raise InputUnusable("--to must not be before --from.")
    engine = ready_engine()
    data = files.export_ics(
        engine,
        start=dt.datetime.combine(first, dt.time(), dt.UTC),
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC),
    )
    with file_written_whole(output) as out:
        out.write(data)
    say(f"Wrote {data.count(b'BEGIN:VEVENT'):,} events ({first} to {last}) to {output}.")
