"""Commands for the person running the CRM: `crm init`, `crm demo`, `crm serve` and
`crm user ...` (users and their passwords)."""

from __future__ import annotations

import getpass
import ipaddress
import json
import sys
import time
from typing import Annotated

import typer
from sqlalchemy import Engine

from crm import auth, db, models
from crm.cli.shell import AsJson, app, command_group, found, handled, ready_engine, say
from crm.config import load_settings, secret_key
from crm.errors import CrmError, InputUnusable

user_app = command_group("user", "Manage the people who sign in.")


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
    return found(
        auth.find_user(engine, name),
        f"There is no user called {name.strip().lower()!r}; see `crm user list`.",
    )


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
    as_json: AsJson = False,
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
