"""`crm pool ...`: the talent pools, listed with their sizes, and saved from a filter."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from crm.cli.shell import AsJson, acting_admin, command_group, handled, ready_engine, say
from crm.errors import InputUnusable

pool_app = command_group("pool", "Talent pools.")


@pool_app.command("list")
@handled
def pool_list(
    as_json: AsJson = False,
) -> None:
    """List the talent pools with their current sizes.

    A pool whose filter cannot be counted is listed as broken, with the reason (JSON: a
    null size and the "problem" sentence); the others are counted as usual. "last_touch"
    is when the pool as a whole was last reached (crm.touches), null for never.
    """
    from crm import pools

    summaries = pools.list_pools(ready_engine())
    rows = [
        {
            "name": s.name,
            "kind": s.kind,
            "size": s.size,
            "growth_90_days": s.growth,
            "engagement_rate": s.engagement_rate,
            "last_touch": s.last_touch.isoformat() if s.last_touch else None,
            "owner": s.owner,
            "hires_12_months": s.hires,
            "problem": s.problem,
        }
        for s in summaries
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for summary in summaries:
        size = f"{summary.size:,}" if summary.size is not None else f"broken: {summary.problem}"
        typer.echo(f"{summary.name:<40} {summary.kind:<8} {size}")


@pool_app.command("save")
@handled
def pool_save(
    name: Annotated[str, typer.Argument(help="The pool's name (an existing one is updated).")],
    filter_json: Annotated[
        str | None,
        typer.Option(
            "--filter-json",
            help='The filter, e.g. \'{"all": [{"field": "skills", "op": "has_any", '
            '"value": ["python"]}]}\'.',
        ),
    ] = None,
    static: Annotated[
        bool, typer.Option("--static", help="A hand-kept list instead of a filter.")
    ] = False,
    description: Annotated[str | None, typer.Option(help="What the pool is for.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Save a dynamic pool (a filter that stays current) or a static list.

    The filter is checked before anything is saved: an unknown field, operator or a value
    of the wrong type is an error naming it (exit 2).
    """
    from crm import pool_filter, pools
    from crm.errors import ValidationError

    if static == (filter_json is not None):
        raise InputUnusable("Give either --filter-json JSON or --static.")
    parsed = None
    if filter_json is not None:
        try:
            parsed = pool_filter.parse_filter(filter_json)  # JSON, and within the limits
        except ValidationError as error:
            raise InputUnusable(f"--filter-json: {error}") from None
    engine = ready_engine()
    actor = acting_admin(engine, "save pools")
    existing = pools.pool_id_by_name(engine, name.strip())
    try:
        pool_id = pools.save_pool(
            engine,
            actor=actor,
            name=name,
            kind="static" if static else "dynamic",
            filter_json=parsed,
            description=description,
            pool_id=existing,
        )
    except ValidationError as error:
        raise InputUnusable(str(error)) from None
    size = next((p.size for p in pools.list_pools(engine) if p.id == pool_id), None)
    if as_json:
        typer.echo(json.dumps({"id": pool_id, "name": name.strip(), "size": size}))
        return
    say(f"{'Updated' if existing else 'Saved'} pool {name.strip()!r}: {size:,} people now.")
