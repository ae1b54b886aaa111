"""Shared fixtures: a real database per test (a SQLite file, or a PostgreSQL schema).

CRM_TEST_BACKEND=postgres runs the same tests on PostgreSQL (CRM_TEST_POSTGRES_URL,
default postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets a schema of
its own, dropped afterwards. The migrations run once per session; each test's `engine`
starts from a copy of their result (a file copied on SQLite; on PostgreSQL, the
migrations' statements recorded once and sent again into the test's schema).

CRM_TEST_CLOCK=NAME moves the clock (with time-machine) to one of HARD_MOMENTS, in that
moment's timezone, when the session starts; time runs on from there.
Tests read the time only through crm.clock (or the `now` and `today` fixtures), so a
test that holds under every moment holds on any day.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import secrets
import shutil
import sys
import threading
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt
import psycopg
import pytest
import time_machine
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from crm import auth, clock, db, throttle
from crm.errors import SignInRefused
from crm.models import User
from tests.smtp_server import FaultySmtpServer

POSTGRES_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKEND = os.environ.get("CRM_TEST_BACKEND", "sqlite")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough"
PASSWORDS = {"admin": "admin-pass-1", "recruiter": "recruiter-pass-1", "manager": "manager-pass-1"}

# The moments `make test` moves the clock to, each in the timezone the machine then runs in.
HARD_MOMENTS: dict[str, dt.datetime] = {
    # New Year's Eve in UTC, already next year in Berlin or Tokyo.
    "new-years-eve": dt.datetime(2026, 12, 31, 23, 30, tzinfo=zoneinfo.ZoneInfo("UTC")),
    # A leap day: a year back or on from it does not exist.
    "leap-day": dt.datetime(2028, 2, 29, 12, 0, tzinfo=zoneinfo.ZoneInfo("UTC")),
    # One minute before Europe's clocks jump from 02:00 to 03:00: a day of 23 hours.
    "eu-dst": dt.datetime(2027, 3, 28, 1, 59, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
    # The first 01:30 of the hour New York lives twice when its clocks go back: 25 hours.
    "us-dst": dt.datetime(2026, 11, 1, 1, 30, fold=0, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
}
_MOMENT_NAME = os.environ.get("CRM_TEST_CLOCK", "")
if _MOMENT_NAME and _MOMENT_NAME not in HARD_MOMENTS:
    raise SystemExit(f"CRM_TEST_CLOCK must be one of {', '.join(HARD_MOMENTS)}.")
MOVED_TO: dt.datetime | None = HARD_MOMENTS.get(_MOMENT_NAME)


def pytest_report_header(config: pytest.Config) -> list[str]:
    moved = f"moved to {MOVED_TO.isoformat()} ({MOVED_TO.tzinfo})" if MOVED_TO else "real"
    return [f"database backend: {BACKEND}", f"clock: {moved}"]


def pytest_configure(config: pytest.Config) -> None:
    # Moved for the whole session, before any test module is imported, so module-scoped
    # servers, subprocesses and tests all share one clock that ticks on from the moment.
    if MOVED_TO is not None:
        time_machine.travel(MOVED_TO, tick=True).start()


def python_command(*args: str) -> list[str]:
    """`python ARGS` for a subprocess, on this test's moved clock when the clock is moved."""
    if MOVED_TO is None:
        return [sys.executable, *args]
    return [
        sys.executable,
        "-m",
        "tests.moved_clock",
        clock.now().isoformat(),
        str(MOVED_TO.tzinfo),
        *args,
    ]


def at_once(work: Callable[[], None], threads: int) -> list[BaseException]:
    """Run work in this many threads together; what each raised, for the test to assert."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # collected for the caller
            errors.append(error)

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


def signs_in(engine: Engine, username: str, password: str) -> bool:
    """Whether the password form would let this username and password in."""
    try:
        auth.password_sign_in(engine, username=username, password=password)
    except SignInRefused:
        return False
    return True


@pytest.fixture(autouse=True)
def fresh_sign_in_throttle() -> Iterator[None]:
    """The in-process throttles (per client, per unknown name) start empty for each test."""
    yield
    for memory in (throttle.CLIENTS, throttle.UNKNOWN_NAMES):
        memory._records.clear()


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Full-strength bcrypt (a quarter second a hash) would dominate the suite's run time;
    the hashes still verify the same way, and the product keeps its cost."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bcrypt, "gensalt", functools.partial(bcrypt.gensalt, rounds=4))
        yield


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """A URL for an empty PostgreSQL schema that lives as long as the block."""
    schema = f"t_{secrets.token_hex(6)}"
    admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


@contextmanager
def fresh_database_url(folder: Path) -> Iterator[str]:
    """A URL for an empty database that lives as long as the block."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{folder / 'crm.db'}"
        return
    with _postgres_schema() as url:
        try:
            yield url
        finally:
            db.dispose_engines()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database that exists for this test only."""
    with fresh_database_url(tmp_path) as url:
        yield url


@pytest.fixture
def crm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str) -> Iterator[str]:
    """Point the app's settings at the test database and a private data folder."""
    for name in list(os.environ):
        if name.startswith("CRM_") and not name.startswith("CRM_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path / "data"))
    yield database_url
    db.dispose_engines()


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """An empty SQLite database migrated once per session (None on PostgreSQL).

    Running the migrations takes a fifth of a second; copying their result takes a
    millisecond, and a thousand tests each start from an empty database.
    """
    if BACKEND != "sqlite":
        return None
    path = tmp_path_factory.mktemp("migrated") / "crm.db"
    engine = db.create_engine_for(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()  # the last connection closing folds the WAL back into the file
    assert not path.with_name("crm.db-wal").exists()
    return path


def _schema_of(url_text: str) -> str:
    """The schema a fresh_database_url PostgreSQL URL points at."""
    options = make_url(url_text).query.get("options")
    prefix = "-csearch_path="
    assert isinstance(options, str) and options.startswith(prefix), url_text
    return options.removeprefix(prefix)


@pytest.fixture(scope="session")
def migrated_postgres_sql() -> str | None:
    """What the migrations sent PostgreSQL to fill an empty schema, recorded once per
    session as one SQL text to send again (None on SQLite).

    Running the migrations takes half a second or more (Alembic, one round trip per
    statement); sending their statements again, all at once, takes about half that.
    Every statement went through the engine, names unqualified (the schema comes from
    search_path), values written in as psycopg binds them: the copy is built by the very
    statements that built the original, not by a description of its result. (A migration
    writing through the raw driver connection would escape the record: test_db.py's
    test_the_engine_fixture_copies_the_migrated_database would notice.)
    """
    if BACKEND != "postgres":
        return None
    with _postgres_schema() as url:
        schema = _schema_of(url)
        engine = db.create_engine_for(url)
        statements: list[str] = []

        @event.listens_for(engine, "before_cursor_execute")
        def record(
            connection: Connection,
            cursor: Any,
            statement: str,
            parameters: Any,
            context: Any,
            executemany: bool,
        ) -> None:
            if not parameters:
                statements.append(statement)
                return
            client = psycopg.ClientCursor(cursor.connection)
            for row in parameters if executemany else [parameters]:
                statements.append(client.mogrify(statement, row))

        db.upgrade(engine)
        engine.dispose()
    assert statements and not any(schema in statement for statement in statements)
    return "\n;\n".join(statements)  # a statement may end in a -- comment


@pytest.fixture
def engine(
    crm_env: str, migrated_sqlite_file: Path | None, migrated_postgres_sql: str | None
) -> Iterator[Engine]:
    """A migrated, empty database."""
    if migrated_sqlite_file is not None:
        target = make_url(crm_env).database
        assert target is not None
        shutil.copyfile(migrated_sqlite_file, target)
        os.chmod(target, 0o600)
        engine = db.create_engine_for(crm_env)
    elif migrated_postgres_sql is not None:
        # One transaction (as Alembic's), one round trip: psycopg sends SQL without
        # parameters as it is, several statements at once.
        libpq_url = make_url(crm_env).set(drivername="postgresql")
        with psycopg.connect(libpq_url.render_as_string(hide_password=False)) as connection:
            connection.execute(migrated_postgres_sql)
        engine = db.create_engine_for(crm_env)
    else:
        engine = db.create_engine_for(crm_env)
        db.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def users(engine: Engine) -> dict[str, User]:
    """One user per role: admin, recruiter, manager (passwords in PASSWORDS)."""
    created = {
        "admin": auth.create_user(
            engine,
            username="admin",
            role="admin",
            password=PASSWORDS["admin"],
            display_name="Ada Admin",
        )
    }
    for role, name in (("recruiter", "Rita Recruiter"), ("manager", "Manny Manager")):
        created[role] = auth.create_user(
            engine,
            username=role,
            role=role,
            password=PASSWORDS[role],
            display_name=name,
            actor=created["admin"],
        )
    return created


@pytest.fixture
def smtp(crm_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultySmtpServer]:
    """A real SMTP server on loopback, and the app's settings pointing at it."""
    with FaultySmtpServer() as server:
        monkeypatch.setenv("CRM_SMTP_HOST", server.host)
        monkeypatch.setenv("CRM_SMTP_PORT", str(server.port))
        monkeypatch.setenv("CRM_SMTP_SECURITY", "none")
        monkeypatch.setenv("CRM_FROM", "Acme Talent <talent@acme.example>")
        monkeypatch.setenv("CRM_SEND_RATE", "1000")
        monkeypatch.setenv("CRM_RETRY_BASE", "0")
        monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.acme.example")
        yield server
