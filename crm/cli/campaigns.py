"""`crm campaign ...` (campaigns as files: import, list, launch, report, preview) and the
workers that carry them out: `crm send` delivers due messages, `crm replies` reads the
mailbox for replies and bounces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine

from crm.cli.shell import (
    AsJson,
    acting_admin,
    app,
    command_group,
    found,
    handled,
    ready_engine,
    say,
    until_stopped,
)
from crm.config import load_settings
from crm.errors import CrmError, InputUnusable

campaign_app = command_group("campaign", "Email campaigns as files.")


@campaign_app.command("import")
@handled
def campaign_import(
    file: Annotated[str, typer.Argument(help="A campaign file in TOML (see DESIGN.md).")],
) -> None:
    """Save the campaign a TOML file describes as a draft (a draft of that name is replaced)."""
    from crm import campaigns

    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputUnusable(f"There is no file {file}.") from None
    except UnicodeDecodeError:
        raise InputUnusable(f"{file} is not UTF-8 text.") from None
    except OSError as error:
        raise InputUnusable(f"{file} cannot be read ({error.strerror}).") from None
    engine = ready_engine()
    campaign_id = campaigns.import_campaign_file(
        engine, actor=acting_admin(engine, "import campaigns"), text=text
    )
    detail = campaigns.get_campaign(engine, campaign_id)
    say(
        f"Saved the draft campaign {detail.name!r}: "
        f"{len(detail.steps)} steps for {detail.audience}."
    )


@campaign_app.command("list")
@handled
def campaign_list(
    as_json: AsJson = False,
) -> None:
    """List the campaigns: messages by status, people delivered, and rates of those people."""
    from crm import campaign_figures

    rows = [
        {
            "name": s.name,
            "status": s.status,
            "audience": s.audience,
            "steps": s.steps,
            "queued": s.queued,
            "messages_sent": s.messages_sent,
            "failed": s.failed,
            "needs_review": s.needs_review,
            "cancelled": s.cancelled,
            "skipped": s.skipped,
            "people_delivered": s.people_delivered,
            "people_replied": s.people_replied,
            "people_opened": s.people_opened,
            "people_clicked": s.people_clicked,
            "people_unsubscribed": s.people_unsubscribed,
            "reply_rate": s.reply_rate,
            "open_rate": s.open_rate,
            "click_rate": s.click_rate,
            "unsubscribe_rate": s.unsubscribe_rate,
            "launched_at": s.launched_at.isoformat() if s.launched_at else None,
        }
        for s in campaign_figures.list_campaigns(ready_engine())
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        say("No campaigns yet; write one on the Campaigns page or `crm campaign import FILE`.")

    def share(value: float | None) -> str:
        return "–" if value is None else f"{value:.0%}"

    for row in rows:
        typer.echo(
            f"{row['name']:<40} {row['status']:<10} messages sent {row['messages_sent']:>6,}  "
            f"queued {row['queued']:>6,}  failed {row['failed']:>4,}  "
            f"people delivered {row['people_delivered']:>6,}  "
            f"replied {share(row['reply_rate']):>4}"
        )


def _campaign_named(engine: Engine, name: str) -> int:
    from crm import campaigns

    return found(
        campaigns.campaign_id_by_name(engine, name),
        f"There is no campaign called {name!r}; `crm campaign list` shows them.",
    )


@campaign_app.command("launch")
@handled
def campaign_launch(name: Annotated[str, typer.Argument(help="The campaign's name.")]) -> None:
    """Enroll the audience as it is now and queue every step's messages."""
    from crm import campaign_lifecycle

    engine = ready_engine()
    campaign_id = _campaign_named(engine, name)
    check = campaign_lifecycle.launch_check(engine, campaign_id)
    if check.blocked:
        raise CrmError(check.blocked)
    result = campaign_lifecycle.launch(
        engine, actor=acting_admin(engine, "launch campaigns"), campaign_id=campaign_id
    )
    skipped = ", ".join(
        f"{count} {campaign_lifecycle.SKIP_REASONS[reason]}"
        for reason, count in result.skipped.items()
    )
    say(
        f"Launched {name!r}: {result.enrolled:,} people enrolled, {result.messages:,} messages "
        f"queued" + (f"; skipped {skipped}." if skipped else ".")
    )


@campaign_app.command("report")
@handled
def campaign_report(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    as_json: AsJson = False,
) -> None:
    """Per step and overall: messages by status, people delivered and what they did, rates.

    Message counts count messages; people counts count each person once (per step, or
    across the steps in the total); rates are people counts over people delivered."""
    from crm import campaign_figures

    engine = ready_engine()
    result = campaign_figures.report(engine, _campaign_named(engine, name))
    if as_json:
        keys = ("name", "status", "steps", "totals", "applications", "hires")
        typer.echo(json.dumps({key: result[key] for key in keys}))
        return
    typer.echo(f"{result['name']} ({result['status']})")
    rows = [*result["steps"], {"step": "total", **result["totals"]}]
    for title, keys in (
        ("messages", campaign_figures.MESSAGE_COUNTS),
        ("people", (*campaign_figures.PEOPLE_COUNTS, *campaign_figures.EVENT_COUNTS)),
        ("rates of people delivered", tuple(campaign_figures.RATES)),
    ):
        typer.echo(f"\n{title}")
        typer.echo(f"{'step':<8}" + "".join(f"{key:>22}" for key in keys))
        for row in rows:
            cells = (
                f"{row[key]:>22,}"
                if not key.endswith("_rate")
                else f"{'–' if row[key] is None else format(row[key], '.1%'):>22}"
                for key in keys
            )
            typer.echo(f"{row['step']!s:<8}" + "".join(cells))
    typer.echo(f"\napplications {result['applications']:,}, hires {result['hires']:,}")


@campaign_app.command("preview")
@handled
def campaign_preview(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    email: Annotated[str, typer.Option("--email", help="The person's email address.")],
    step: Annotated[int, typer.Option("--step", help="The step, from 1.")] = 1,
    as_json: AsJson = False,
) -> None:
    """Exactly what one person would receive for one step (tracking tokens aside)."""
    from crm import composer

    engine = ready_engine()
    message = composer.preview(engine, _campaign_named(engine, name), step=step, email=email)
    if as_json:
        keys = ("subject", "text", "html", "headers")
        typer.echo(json.dumps({key: getattr(message, key) for key in keys}))
        return
    for header, value in message.headers.items():
        typer.echo(f"{header}: {value}")
    typer.echo(f"\n{message.text}")
    typer.echo(f"--- HTML ---\n{message.html}")


def _say_round(lines: list[str], problem: str | None) -> None:
    """What one round of a worker (--once) did; the problem that stopped it fails the
    command."""
    for line in lines:
        say(line)
    if problem:
        raise CrmError(problem)


@app.command()
@handled
def send(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
) -> None:
    """Deliver due campaign messages (a worker; `crm serve` does this too unless CRM_WORKER=off)."""
    from crm import outbox

    settings = load_settings()
    if settings.smtp is None:
        raise CrmError("Sending is not set up: set CRM_SMTP_HOST (see the README).")
    engine = ready_engine()
    if once:
        report = outbox.deliver_due(engine, settings=settings)
        done = (
            f"Sent {report.sent:,}; failed {report.failed:,}; retry later {report.retried:,}; "
            f"deferred {report.deferred:,}; needs review {report.needs_review:,}; "
            f"cancelled {report.cancelled:,}."
        )
        paused = [f"Paused {name!r}; see its page for the reason." for name in report.paused]
        _say_round([done, *paused], report.problem and f"sending stopped: {report.problem}")
        return
    until_stopped(outbox.run_forever, engine, "Delivering due messages; stop with Ctrl+C.")


@app.command()
@handled
def replies(
    once: Annotated[bool, typer.Option("--once", help="Read the mailbox once, then exit.")] = False,
) -> None:
    """Read the mailbox (CRM_IMAP_*) for replies and bounces (`crm serve` does this too)."""
    from crm import replies as mailbox

    settings = load_settings()
    if settings.imap is None:
        raise CrmError(
            "No mailbox is set up: set CRM_IMAP_HOST (see the README); without it, mark "
            "replies by hand on the profile or the campaign page."
        )
    engine = ready_engine()
    if once:
        report = mailbox.check_mailbox(engine, settings=settings)
        done = (
            f"Replies {report.replies:,}; hard bounces {report.bounces_hard:,}; soft bounces "
            f"{report.bounces_soft:,}; automatic replies {report.auto_replies:,}; matched "
            f"nobody {report.unmatched:,}; unreadable {report.unreadable:,}."
        )
        _say_round([done], report.problem)
        return
    until_stopped(
        mailbox.run_forever, engine, "Reading the mailbox every minute; stop with Ctrl+C."
    )
