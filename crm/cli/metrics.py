"""`crm metrics`: the ROI metrics for a period, as the Goals & ROI page defines them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from crm import clock
from crm.cli.shell import AsJson, app, handled, parse_date, ready_engine
from crm.errors import InputUnusable


@app.command()
@handled
def metrics(
    from_date: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: AsJson = False,
) -> None:
    """The ROI metrics for a period (default: the last 365 days).

    "hires" counts every hire in the period (Goals' Hires card); "hired_from_talent_pools"
    the people hired from talent pools (the funnel's last step and Savings' figure).
    """
    from crm import metrics as metric_service
    from crm import pool_yield

    end = parse_date(to_date, "--to") or clock.today()
    start = parse_date(from_date, "--from") or end - dt.timedelta(days=364)
    if end < start:
        raise InputUnusable("--to comes before --from.")
    engine = ready_engine()
    report = metric_service.compute(engine, start=start, end=end).as_json()
    report["hired_from_talent_pools"] = pool_yield.hired_from_talent_pools(
        engine, start=start, end=end
    )
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key, value in report.items():
        typer.echo(f"{key:<32} {'no data' if value is None else value}")
