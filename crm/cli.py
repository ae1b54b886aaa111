"""The `crm` command: a thin shell over the same services the web app uses.

Exit codes: 0 done; 2 the input as a whole is unusable (nothing written); 1 anything else
that failed. Errors are one plain sentence on standard error, with a traceback only under
--debug. With --json, standard output holds only the JSON.
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import json
import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy import Engine

from crm import auth, clock, db, models
from crm.config import load_settings, secret_key
from crm.errors import CrmError, InputUnusable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Candidate CRM: keep a warm pipeline of people before the job exists.",
)
user_app = typer.Typer(no_args_is_help=True, help="Manage the people who sign in.")
pool_app = typer.Typer(no_args_is_help=True, help="Talent pools.")
app.add_typer(user_app, name="user")
app.add_typer(pool_app, name="pool")
campaign_app = typer.Typer(no_args_is_help=True, help="Email campaigns as files.")
app.add_typer(campaign_app, name="campaign")

_debug = False
F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    global _debug
    _debug = debug


def say(message: str) -> None:
    """Progress and messages go to standard error, so --json output stays clean."""
    typer.echo(message, err=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    say(f"Error: {message}")
    return typer.Exit(code)


def _unexpected(error: Exception) -> str:
    """One sentence naming only the kind of failure: an error's text can hold a whole SQL
    statement with its values (names, addresses), so it is shown only under --debug."""
    kind = type(error).__name__
    if isinstance(error, OSError) and error.strerror:
        kind = f"{kind}: {error.strerror}"  # "No space left on device" is safe and useful
    return f"unexpected failure ({kind}); rerun with --debug for details."


def handled(function: F) -> F:
    """Turn known failures into one sentence and an exit code."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except InputUnusable as error:
            raise fail(str(error), 2) from None
        except CrmError as error:
            raise fail(str(error), 1) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if _debug:
                raise
            raise fail(_unexpected(error)) from None

    return wrapper  # type: ignore[return-value]


def ready_engine() -> Any:
    """The engine for CRM_DATABASE_URL, reachable and migrated, or one sentence why not."""
    engine = db.get_engine(load_settings().database_url)
    db.check_connection(engine)
    db.require_current_schema(engine)
    return engine


@app.command()
@handled
def init() -> None:
    """Create the database schema, or upgrade it to the current version."""
    settings = load_settings()
    engine = db.get_engine(settings.database_url)
    db.check_connection(engine)
    before = db.current_revision(engine)
    db.upgrade(engine)
    secret_key()  # generate it now, where the operator sees any problem
    where = db.describe(engine.url)
    if before == db.head_revision():
        say(f"The database at {where} is up to date.")
    else:
        say(f"The database at {where} is ready (schema {db.head_revision()}).")


@app.command()
@handled
def demo(
    candidates: Annotated[
        int, typer.Option(min=1, max=2_000_000, help="How many candidates to create.")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for the generator; same seed, same data.")] = 7,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if the database already has data.")
    ] = False,
    reset: Annotated[
        bool, typer.Option("--reset", help="Delete all data (users stay) and load afresh.")
    ] = False,
) -> None:
    """Load realistic demo data and the demo users (admin, recruiter, manager)."""
    from crm import demo as demo_data

    engine = ready_engine()
    if demo_data.has_data(engine):
        if if_empty:
            say("The database already has data; demo data not loaded.")
            return
        if not reset:
            raise CrmError(
                "The database already has data; use --reset to replace it with demo data."
            )
        say("Deleting existing data (users stay)...")
        demo_data.wipe(engine)
    started = time.monotonic()
    last_shown = [-1]

    def progress(label: str, fraction: float) -> None:
        percent = int(fraction * 100)
        if percent // 10 != last_shown[0] // 10:
            last_shown[0] = percent
            say(f"  {percent:3d}% {label}")

    summary = demo_data.load_demo(engine, candidates=candidates, seed=seed, progress=progress)
    say(
        f"Loaded {summary.candidates:,} candidates, {summary.pools} pools, {summary.jobs} jobs, "
        f"{summary.applications:,} applications, {summary.campaigns} campaigns "
        f"({summary.messages:,} messages, {summary.events:,} events), "
        f"{summary.content_items} calendar items and {summary.goals} goals "
        f"in {time.monotonic() - started:.1f} s."
    )
    if summary.users_created:
        say("Demo sign-ins (set new passwords with `crm user password NAME` before real use):")
        for username, (role, _, password) in demo_data.DEMO_ACCOUNTS.items():
            if username in summary.users_created:
                say(f"  {role:<10} username {username!r:<12} password {password!r}")


def _operator(engine: Any, doing: str) -> auth.User:
    """Who a command acts as: the first active admin (lowest id)."""
    admins = [u for u in auth.list_users(engine) if u.role == "admin" and u.active]
    operator = min(admins, key=lambda user: user.id, default=None)
    if operator is None:
        raise CrmError(
            f"There is no active admin to {doing} as; add one with "
            "`crm user add NAME --role admin`."
        )
    return operator


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
    from pathlib import Path

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
    overrides: dict[str, str | None] = {}
    for item in maps or []:
        header, equals, target = item.rpartition("=")
        header, target = header.strip(), target.strip()
        if not equals or not header:
            raise InputUnusable(f'--map takes HEADER=field, like "Work Email=email", not {item!r}.')
        if target.lower() in {"", "none", "ignore", "-"}:
            overrides[header] = None
        elif target in CANDIDATE_FIELDS:
            overrides[header] = target
        else:
            raise InputUnusable(
                f"--map names an unknown field {target!r}; the fields are: "
                f"{', '.join(CANDIDATE_FIELDS)}."
            )
    path = Path(file)
    if not path.is_file():
        raise InputUnusable(f"No such file: {file}")
    engine = ready_engine()
    operator = _operator(engine, "import")
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
        actor=operator,
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
    for problem in result.problems[:20]:
        column = f" ({problem.column})" if problem.column else ""
        say(f"  line {problem.line}{column}: {problem.problem}")
    if len(result.problems) > 20:
        say(f"  ... and {len(result.problems) - 20:,} more; --json includes the full report.")


def _import_ats(file: str, *, kind: str, maps: list[str], dry_run: bool, as_json: bool) -> None:
    """Jobs, applications or costs from an ATS export (crm.ats_import)."""
    from pathlib import Path

    from crm import ats_import

    mapping: dict[str, str | None] = {}
    for item in maps:
        header, equals, target = item.rpartition("=")
        header, target = header.strip(), target.strip()
        if not equals or not header:
            raise InputUnusable(f'--map takes HEADER=field, like "Job Name=title", not {item!r}.')
        mapping[header] = None if target.lower() in {"", "none", "ignore", "-"} else target
    path = Path(file)
    if not path.is_file():
        raise InputUnusable(f"No such file: {file}")
    engine = ready_engine()
    result = ats_import.import_file(
        engine,
        actor=_operator(engine, "import"),
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
    for line, column, problem in result.errors[:20]:
        say(f"  line {line}{f' ({column})' if column else ''}: {problem}")
    if len(result.errors) > 20:
        say(f"  ... and {len(result.errors) - 20:,} more; --json includes the full report.")


@app.command()
@handled
def serve(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "localhost",
    allow_demo_passwords: Annotated[
        bool,
        typer.Option(
            "--allow-demo-passwords",
            help="Serve on a public address even while demo users keep their passwords.",
        ),
    ] = False,
) -> None:
    """Serve the web app and its tracking routes on one port."""
    engine = ready_engine()
    secret_key()
    if not allow_demo_passwords and not _is_loopback(host):
        from crm import demo as demo_data

        open_accounts = demo_data.accounts_with_demo_passwords(engine)
        if open_accounts:
            names = ", ".join(open_accounts)
            raise CrmError(
                f"Not serving on {host}: the demo users {names} still have the passwords "
                "anyone can read in the README; set new ones with `crm user password NAME` "
                "(or pass --allow-demo-passwords)."
            )
    from crm import server

    say(f"Candidate CRM is starting on http://{host}:{port} (Ctrl+C stops it).")
    server.run(host=host, port=port)


def _is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (so demo passwords harm nobody)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != first:
            raise CrmError("The two passwords differ.")
        return first
    line = sys.stdin.readline()
    if not line:
        raise InputUnusable("No password on standard input.")
    return line.rstrip("\r\n")


@user_app.command("add")
@handled
def user_add(
    name: Annotated[str, typer.Argument(help="The username to sign in with.")],
    role: Annotated[str, typer.Option(help="admin, recruiter or manager.")],
    display_name: Annotated[str | None, typer.Option(help="Full name shown in the app.")] = None,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
) -> None:
    """Add a user; the password is read from standard input."""
    engine = ready_engine()
    password = _read_password()
    user = auth.create_user(
        engine,
        username=name,
        role=role,
        password=password,
        display_name=display_name,
        email=email,
        as_operator=True,
    )
    say(f"Added {user.role} {user.username!r}.")


def _existing_user(engine: Engine, name: str) -> models.User:
    user = auth.find_user(engine, name)
    if user is None:
        raise CrmError(f"There is no user called {name.strip().lower()!r}; see `crm user list`.")
    return user


@user_app.command("password")
@handled
def user_password(
    name: Annotated[str, typer.Argument(help="The username.")],
) -> None:
    """Set a user's password, read from standard input; their sessions end."""
    engine = ready_engine()
    user = _existing_user(engine, name)
    password = _read_password()
    auth.set_password(engine, actor=None, user_id=user.id, password=password, as_operator=True)
    say(f"Set a new password for {user.username!r}; their open sessions have ended.")


@user_app.command("unlock")
@handled
def user_unlock(
    name: Annotated[str, typer.Argument(help="The username.")],
) -> None:
    """Let a user sign in again at once after failed attempts made them wait."""
    engine = ready_engine()
    user = _existing_user(engine, name)
    auth.unlock(engine, actor=None, user_id=user.id, as_operator=True)
    say(f"{user.username!r} can sign in again now.")


@user_app.command("list")
@handled
def user_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the users and their roles."""
    users = auth.list_users(ready_engine())
    rows = [
        {"username": u.username, "name": u.display_name, "role": u.role, "active": u.active}
        for u in users
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        state = "" if row["active"] else " (deactivated)"
        typer.echo(f"{row['username']:<20} {row['role']:<10} {row['name']}{state}")


@pool_app.command("list")
@handled
def pool_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
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
    from crm import pools
    from crm.errors import ValidationError

    if static == (filter_json is not None):
        raise InputUnusable("Give either --filter-json JSON or --static.")
    parsed = None
    if filter_json is not None:
        try:
            parsed = pools.parse_filter(filter_json)  # JSON, and within the limits
        except ValidationError as error:
            raise InputUnusable(f"--filter-json: {error}") from None
    engine = ready_engine()
    operator = _operator(engine, "save pools")
    existing = pools.pool_id_by_name(engine, name.strip())
    try:
        pool_id = pools.save_pool(
            engine,
            actor=operator,
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


export_app = typer.Typer(no_args_is_help=True, help="Export candidates to CSV files.")
app.add_typer(export_app, name="export")


def _export(output: str, bom: bool, **what: Any) -> None:
    """Write the CSV next to its destination first, so a failure leaves no half file."""
    import os
    import tempfile
    from pathlib import Path

    from crm import exporter

    target = Path(output)
    folder = target.parent
    if not folder.is_dir():
        raise InputUnusable(f"The folder {folder} does not exist; create it or choose another.")
    if target.is_dir():
        raise InputUnusable(f"{target} is a folder; give a file name to write to.")
    engine = ready_engine()
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as error:
        raise CrmError(f"Cannot write to the folder {folder} ({error.strerror}).") from None
    try:
        with os.fdopen(handle, "wb") as out:
            rows = exporter.export_candidates(engine, out, actor=None, bom=bom, **what)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file would be
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
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


def _parse_date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputUnusable(f"{name} must be a date like 2026-01-31, not {text!r}.") from None


@app.command()
@handled
def metrics(
    from_date: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    to_date: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The ROI metrics for a period (default: the last 365 days).

    "hires" counts every hire in the period (Goals' Hires card); "hired_from_talent_pools"
    the people hired from talent pools (the funnel's last step and Savings' figure).
    """
    from crm import metrics as metric_service

    end = _parse_date(to_date, "--to") or clock.today()
    start = _parse_date(from_date, "--from") or end - dt.timedelta(days=364)
    if end < start:
        raise InputUnusable("--to comes before --from.")
    engine = ready_engine()
    report = metric_service.compute(engine, start=start, end=end).as_json()
    report["hired_from_talent_pools"] = metric_service.hired_from_talent_pools(
        engine, start=start, end=end
    )
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key, value in report.items():
        typer.echo(f"{key:<32} {'no data' if value is None else value}")


@campaign_app.command("import")
@handled
def campaign_import(
    file: Annotated[str, typer.Argument(help="A campaign file in TOML (see DESIGN.md).")],
) -> None:
    """Save the campaign a TOML file describes as a draft (a draft of that name is replaced)."""
    from pathlib import Path

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
        engine, actor=_operator(engine, "import campaigns"), text=text
    )
    detail = campaigns.get_campaign(engine, campaign_id)
    say(
        f"Saved the draft campaign {detail.name!r}: "
        f"{len(detail.steps)} steps for {detail.audience}."
    )


@campaign_app.command("list")
@handled
def campaign_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the campaigns: messages by status, people delivered, and rates of those people."""
    from crm import campaigns

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
        for s in campaigns.list_campaigns(ready_engine())
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


def _campaign_named(engine: Any, name: str) -> int:
    from crm import campaigns

    campaign_id = campaigns.campaign_id_by_name(engine, name)
    if campaign_id is None:
        raise CrmError(f"There is no campaign called {name!r}; `crm campaign list` shows them.")
    return campaign_id


@campaign_app.command("launch")
@handled
def campaign_launch(name: Annotated[str, typer.Argument(help="The campaign's name.")]) -> None:
    """Enroll the audience as it is now and queue every step's messages."""
    from crm import campaigns

    engine = ready_engine()
    campaign_id = _campaign_named(engine, name)
    check = campaigns.launch_check(engine, campaign_id)
    if check.blocked:
        raise CrmError(check.blocked)
    result = campaigns.launch(
        engine, actor=_operator(engine, "launch campaigns"), campaign_id=campaign_id
    )
    skipped = ", ".join(
        f"{count} {campaigns.SKIP_REASONS[reason]}" for reason, count in result.skipped.items()
    )
    say(
        f"Launched {name!r}: {result.enrolled:,} people enrolled, {result.messages:,} messages "
        f"queued" + (f"; skipped {skipped}." if skipped else ".")
    )


@campaign_app.command("report")
@handled
def campaign_report(
    name: Annotated[str, typer.Argument(help="The campaign's name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per step and overall: messages by status, people delivered and what they did, rates.

    Message counts count messages; people counts count each person once (per step, or
    across the steps in the total); rates are people counts over people delivered."""
    from crm import campaign_figures, campaigns

    engine = ready_engine()
    result = campaigns.report(engine, _campaign_named(engine, name))
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


@app.command()
@handled
def send(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit.")
    ] = False,
) -> None:
    """Deliver due campaign messages (a worker; `crm serve` does this too unless CRM_WORKER=off)."""
    import signal
    import threading

    from crm import outbox

    settings = load_settings()
    if settings.smtp is None:
        raise CrmError("Sending is not set up: set CRM_SMTP_HOST (see the README).")
    engine = ready_engine()
    if once:
        report = outbox.deliver_due(engine, settings=settings)
        say(
            f"Sent {report.sent:,}; failed {report.failed:,}; retry later {report.retried:,}; "
            f"deferred {report.deferred:,}; needs review {report.needs_review:,}; "
            f"cancelled {report.cancelled:,}."
        )
        for name in report.paused:
            say(f"Paused {name!r}; see its page for the reason.")
        if report.problem:
            raise CrmError(f"sending stopped: {report.problem}")
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say("Delivering due messages; stop with Ctrl+C.")
    outbox.run_forever(engine, stop=stop)


@app.command()
@handled
def replies(
    once: Annotated[bool, typer.Option("--once", help="Read the mailbox once, then exit.")] = False,
) -> None:
    """Read the mailbox (CRM_IMAP_*) for replies and bounces (`crm serve` does this too)."""
    import signal
    import threading

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
        say(
            f"Replies {report.replies:,}; hard bounces {report.bounces_hard:,}; soft bounces "
            f"{report.bounces_soft:,}; automatic replies {report.auto_replies:,}; matched "
            f"nobody {report.unmatched:,}; unreadable {report.unreadable:,}."
        )
        if report.problem:
            raise CrmError(report.problem)
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say("Reading the mailbox every minute; stop with Ctrl+C.")
    mailbox.run_forever(engine, stop=stop)


def _write_file(output: str, data: bytes) -> None:
    """Write next to the destination first, so a failure leaves no half-written file."""
    import os
    import tempfile
    from pathlib import Path

    target = Path(output)
    if not target.parent.is_dir():
        raise InputUnusable(
            f"The folder {target.parent} does not exist; create it or choose another."
        )
    if target.is_dir():
        raise InputUnusable(f"{target} is a folder; give a file name to write to.")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    except OSError as error:
        raise CrmError(f"Cannot write to the folder {target.parent} ({error.strerror}).") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


calendar_app = typer.Typer(no_args_is_help=True, help="The content calendar.")
app.add_typer(calendar_app, name="calendar")


@calendar_app.command("export")
@handled
def calendar_export(
    output: Annotated[str, typer.Option("--output", "-o", help="The .ics file to write.")],
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
) -> None:
    """The content calendar as iCalendar: one event per occurrence (default: the next year)."""
    from crm import calendar

    first = _parse_date(start, "--from") or (clock.today() - dt.timedelta(days=31))
    last = _parse_date(end, "--to") or (first + dt.timedelta(days=396))
    if last < first:
        raise InputUnusable("--to must not be before --from.")
    engine = ready_engine()
    data = calendar.export_ics(
        engine,
        start=dt.datetime.combine(first, dt.time(), dt.UTC),
        end=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC),
    )
    _write_file(output, data)
    say(f"Wrote {data.count(b'BEGIN:VEVENT'):,} events ({first} to {last}) to {output}.")


candidate_app = typer.Typer(no_args_is_help=True, help="Privacy requests about one person.")
app.add_typer(candidate_app, name="candidate")


def _person(engine: Any, email: str) -> int:
    from crm import privacy

    candidate_id = privacy.find_by_email(engine, email)
    if candidate_id is None:
        raise CrmError(f"Nobody with the address {email} is in the CRM.")
    return candidate_id


@candidate_app.command("export-data")
@handled
def candidate_export_data(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    output: Annotated[str, typer.Option("--output", "-o", help="The JSON file to write.")],
) -> None:
    """Everything held about one person, as one JSON document (an access request)."""
    from crm import privacy

    engine = ready_engine()
    actor = _operator(engine, "export personal data")
    _write_file(
        output, privacy.export_data_json(engine, actor=actor, candidate_id=_person(engine, email))
    )
    say(f"Wrote everything held about {email} to {output}.")


@candidate_app.command("erase")
@handled
def candidate_erase(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
) -> None:
    """Erase one person: personal data gone, queued mail cancelled, the address suppressed."""
    from crm import privacy

    engine = ready_engine()
    actor = _operator(engine, "erase people")
    done = privacy.erase(engine, actor=actor, candidate_id=_person(engine, email))
    say(
        f"Erased {email}: {done.messages_cancelled} queued messages cancelled"
        + ("; the address is suppressed." if done.suppressed else ".")
    )


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
