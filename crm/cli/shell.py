"""The `crm` command's shell: the root Typer app, its sub-command groups, and what every
command shares (one-sentence failures and exit codes, the ready engine, the operator a
command acts as, dates and column maps from options, files written whole or not at all).

Exit codes: 0 done; 2 the input as a whole is unusable (nothing written); 1 anything else
that failed. Errors are one plain sentence on standard error, with a traceback only under
--debug. With --json, standard output holds only the JSON.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TypeVar

import typer
from sqlalchemy import Engine

from crm import auth, db
from crm.config import load_settings
from crm.errors import CrmError, InputUnusable

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Candidate CRM: keep a warm pipeline of people before the job exists.",
)


def command_group(name: str, help_text: str) -> typer.Typer:
    """A sub-command group (`crm NAME ...`) added to the root app."""
    group = typer.Typer(no_args_is_help=True, help=help_text)
    app.add_typer(group, name=name)
    return group


_debug = False
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
JSON_OPTION = typer.Option("--json", help="Print JSON.")
AsJson = Annotated[bool, JSON_OPTION]


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


def ready_engine() -> Engine:
    """The engine for CRM_DATABASE_URL, reachable and migrated, or one sentence why not."""
    engine = db.get_engine(load_settings().database_url)
    db.check_connection(engine)
    db.require_current_schema(engine)
    return engine


def acting_admin(engine: Engine, doing: str) -> auth.User:
    """Who a command acts as: the first active admin (lowest id)."""
    admins = [u for u in auth.list_users(engine) if u.role == "admin" and u.active]
    first = min(admins, key=lambda user: user.id, default=None)
    if first is None:
        raise CrmError(
            f"There is no active admin to {doing} as; add one with "
            "`crm user add NAME --role admin`."
        )
    return first


def parse_date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputUnusable(f"{name} must be a date like 2026-01-31, not {text!r}.") from None


IGNORE_WORDS = frozenset({"", "none", "ignore", "-"})


def column_maps(maps: list[str], *, example: str) -> dict[str, str | None]:
    """--map HEADER=field options as {header: field}, None for a column to ignore."""
    mapping: dict[str, str | None] = {}
    for item in maps:
        header, equals, target = item.rpartition("=")
        header, target = header.strip(), target.strip()
        if not equals or not header:
            raise InputUnusable(f'--map takes HEADER=field, like "{example}", not {item!r}.')
        mapping[header] = None if target.lower() in IGNORE_WORDS else target
    return mapping


def existing_file(file: str) -> Path:
    path = Path(file)
    if not path.is_file():
        raise InputUnusable(f"No such file: {file}")
    return path


@contextmanager
def file_written_whole(output: str) -> Iterator[BinaryIO]:
    """Write next to the destination first and move it into place at the end, so a failure
    leaves no half-written file; the file gets the ordinary permissions of a new one."""
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
            yield out
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as an ordinary new file would be
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def found(value: T | None, missing: str) -> T:
    """The thing looked up, or the sentence saying it is not there."""
    if value is None:
        raise CrmError(missing)
    return value


def until_stopped(loop: Callable[..., None], engine: Engine, announce: str) -> None:
    """Run a worker's loop until Ctrl+C or SIGTERM asks it to stop after its current round."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    say(announce)
    loop(engine, stop=stop)
