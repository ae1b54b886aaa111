"""The database: engine, sessions, schema status and migrations.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Write work goes through
write_session(), which on SQLite opens the transaction with BEGIN IMMEDIATE: the writer
takes the lock up front and waits its turn (busy_timeout) instead of failing with
"database is locked" when it upgrades a read transaction to a write one. On PostgreSQL
(READ COMMITTED) a service that reads a row in order to change it locks it with
`with_for_update=True` (SELECT ... FOR UPDATE; SQLite ignores it, BEGIN IMMEDIATE covers it).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from crm import permissions
from crm.config import load_settings
from crm.errors import (
    ConfigError,
    DatabaseUnavailable,
    NotFound,
    SchemaNotReady,
    ValidationError,
)
from crm.models import User

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
M = TypeVar("M")  # a mapped class (get_existing)

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        # Never echo the URL or the parser's message: either may hold the password
        # (a bad port such as "[::1" gets a bare ValueError from the port's int()).
        raise ConfigError(
            "CRM_DATABASE_URL is not a database URL "
            "(expected e.g. sqlite:///data/crm.db or postgresql+psycopg://user@host/db)."
        ) from None
    if parsed.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"CRM_DATABASE_URL names {parsed.get_backend_name()!r}; "
            "Candidate CRM runs on sqlite or postgresql."
        )
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe(url: URL) -> str:
    """The URL without its password, fit for messages and logs."""
    return url.render_as_string(hide_password=True)


def _sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL names, or None for an in-memory or URI database."""
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return None
    if "\x00" in database:  # no file system takes it; os calls would raise ValueError
        raise ConfigError("CRM_DATABASE_URL names a SQLite file with a NUL character in it.")
    return Path(database)


def _prepare_sqlite_file(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    try:
        # Owner-only: the folder holds the database and the secret key (an existing
        # folder keeps the mode its owner gave it).
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise ConfigError(
            f"The data folder {folder} cannot be created ({error.strerror})."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The data folder {folder} is not writable; make it writable or point "
            "CRM_DATABASE_URL elsewhere."
        )
    try:
        # SQLite would create the file with mode 0644 (readable by every user on the
        # server); an empty file is a valid database, and SQLite gives its -wal and -shm
        # files the database file's mode.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if not os.access(path, os.R_OK | os.W_OK):
            raise ConfigError(f"The database file {path} is not readable and writable.") from None
    except OSError as error:
        raise ConfigError(
            f"The database file {path} cannot be created ({error.strerror})."
        ) from None
    else:
        os.close(fd)


@dataclass
class _SqliteFile:
    """The file an engine opened first, so that one deleted or replaced under a running
    process is noticed instead of written to (an unlinked file takes every write and
    loses it)."""

    path: Path
    shown: str  # the path as configured, for messages
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) once connected

    def problem(self) -> str | None:
        if self.identity is None:
            return None
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            return (
                f"The database file {self.shown} has gone; restore it from a backup and "
                "restart Candidate CRM."
            )
        except OSError as error:
            return f"The database file {self.shown} cannot be checked ({error.strerror})."
        if (status.st_dev, status.st_ino) != self.identity:
            return (
                f"The database file {self.shown} was replaced while Candidate CRM was "
                "running; restart Candidate CRM to use the new file."
            )
        return None

    def remember(self) -> None:
        if self.identity is None:
            status = os.stat(self.path)
            self.identity = (status.st_dev, status.st_ino)


def _refuse_a_lost_file(connection: Connection) -> None:
    """Raise DatabaseUnavailable when a SQLite connection's file is gone or replaced."""
    tracked = connection.connection.info.get("crm_sqlite_file")
    problem = tracked.problem() if tracked is not None else None
    if problem:
        raise DatabaseUnavailable(problem)


def _install_sqlite_behaviour(engine: Engine, tracked: _SqliteFile | None) -> None:
    @event.listens_for(engine, "do_connect")
    def before_connect(*_args: Any) -> None:
        # Connecting to a deleted path would create an empty database there.
        problem = tracked.problem() if tracked is not None else None
        if problem:
            raise DatabaseUnavailable(problem)

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own
        # implicit transactions start too late and never as IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        if tracked is not None:
            tracked.remember()
            record.info["crm_sqlite_file"] = tracked

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


NUL_REFUSED = "Text cannot contain a NUL character (\\x00); remove it and try again."


def _holds_nul(values: Any) -> bool:
    """Whether any text in statement parameters (rows, JSON documents, lists) holds NUL.

    A list, not recursion: a JSON document may nest deeply.
    """
    pending = [values]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list | tuple):
            pending.extend(value)
    return False


def _rows_hold_nul(rows: Any) -> bool:
    """The same for driver-level parameters: rows of plain values (an import's bulk
    writes: a hundred thousand rows checked in a tenth of a second)."""
    values = chain.from_iterable(row.values() if isinstance(row, dict) else row for row in rows)
    return any(
        "\x00" in value
        for value in values
        if value.__class__ is str or isinstance(value, str)  # the common case first
    )


def _refuse_nul_text(engine: Engine) -> None:
    """Refuse every statement that would carry a NUL character in a text value, on both
    databases alike: PostgreSQL cannot store NUL in text (psycopg raises a DataError
    deep in a page), and SQLite would keep text that PostgreSQL, an export or a copy
    cannot take. One check covers every write (ORM and Core, names, notes, campaign
    bodies, JSON documents) and every search, before anything reaches the driver.
    """

    @event.listens_for(engine, "before_cursor_execute")
    def refuse_nul(
        _connection: Any,
        _cursor: Any,
        _statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if context is None or context.compiled is None:  # SQL written for the driver
            rows = parameters if executemany else [parameters]
            if rows and rows[0] and _rows_hold_nul(rows):
                raise ValidationError(NUL_REFUSED)
            return
        # The values as given, before JSON and list columns turn them into text where NUL
        # hides as \u0000; checked once, not once per batch of a large INSERT.
        if getattr(context, "crm_nul_checked", False):
            return
        context.crm_nul_checked = True
        if _holds_nul(context.compiled_parameters):
            raise ValidationError(NUL_REFUSED)


def create_engine_for(url_text: str) -> Engine:
    """A new engine for the URL; raises ConfigError for an unusable URL or data folder.

    Statement parameters are hidden from every error message and log line: they hold
    candidates' names and addresses.
    """
    url = parse_url(url_text)
    if url.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        tracked = None
        if path is not None:
            _prepare_sqlite_file(path)
            tracked = _SqliteFile(path=path.absolute(), shown=str(path))
        try:
            engine = create_engine(
                url,
                hide_parameters=True,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            )
        except NoSuchModuleError:
            raise ConfigError(
                f"CRM_DATABASE_URL uses an unknown driver: {describe(url)}."
            ) from None
        _install_sqlite_behaviour(engine, tracked)
        _refuse_nul_text(engine)
        return engine
    try:
        engine = create_engine(
            url,
            hide_parameters=True,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": 5},
        )
    except NoSuchModuleError:
        raise ConfigError(f"CRM_DATABASE_URL uses an unknown driver: {describe(url)}.") from None
    _refuse_nul_text(engine)
    return engine


def get_engine(url_text: str | None = None) -> Engine:
    """The process's engine for a URL (default: CRM_DATABASE_URL), created once."""
    url_text = url_text or load_settings().database_url
    with _engines_lock:
        engine = _engines.get(url_text)
        if engine is None:
            engine = create_engine_for(url_text)
            _engines[url_text] = engine
        return engine


def dispose_engines() -> None:
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__


def unavailable(engine: Engine, error: BaseException) -> DatabaseUnavailable:
    """Turn a driver error met while connecting into one sentence."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return DatabaseUnavailable(
            f"The SQLite database {url.database} cannot be opened: {_first_line(error)}."
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return DatabaseUnavailable(
        f"Cannot connect to PostgreSQL at {where} (database {url.database!r}): "
        f"{_first_line(error)}. Is the server running and CRM_DATABASE_URL right?"
    )


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless a trivial query works on the database the engine
    opened (for SQLite: the file is still the one at the configured path)."""
    try:
        with engine.connect() as connection:
            _refuse_a_lost_file(connection)
            connection.exec_driver_sql("SELECT 1")
    except DBAPIError as error:
        raise unavailable(engine, error) from None


# --- migrations -------------------------------------------------------------------------


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.attributes["engine"] = engine
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration shipped with this code (read once per process)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as error:
        raise unavailable(engine, error) from None


_current_engines: set[int] = set()


def require_current_schema(engine: Engine) -> None:
    """Refuse to run on a database that is missing or behind the code's migrations.

    Checked on every rerun until it passes, then remembered for the engine: a schema
    does not go back in time while the process runs.
    """
    if id(engine) in _current_engines:
        return
    current = current_revision(engine)
    if current is None:
        raise SchemaNotReady("The database has not been set up yet: run `crm init` first.")
    if current != head_revision():
        raise SchemaNotReady("The database schema is out of date: run `crm init` to upgrade it.")
    _current_engines.add(id(engine))


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(engine), revision)
    except DBAPIError as error:
        raise unavailable(engine, error) from None


def downgrade(engine: Engine, revision: str = "base") -> None:
    _current_engines.discard(id(engine))
    command.downgrade(alembic_config(engine), revision)


# --- sessions ---------------------------------------------------------------------------

_session_factories: dict[int, sessionmaker[Session]] = {}


def _factory(engine: Engine) -> sessionmaker[Session]:
    factory = _session_factories.get(id(engine))
    if factory is None:
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        _session_factories[id(engine)] = factory
    return factory


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; nothing it does is committed.

    Closing (not rolling back) keeps loaded objects usable after the block: they are
    detached with their attributes intact rather than expired.
    """
    with _factory(engine)() as session:
        yield session


def get_existing(session: Session, model: type[M], key: object, what: str, **options: Any) -> M:
    """The row of `model` with this primary key (session.get, with its options); one
    sentence, "That <what> no longer exists.", when there is none."""
    row = session.get(model, key, **options)
    if row is None:
        raise NotFound(f"That {what} no longer exists.")
    return row


DISK_FULL = (
    "The database's disk is full, so nothing was saved; ask whoever runs Candidate CRM to "
    "free some space, then try again."
)


def _is_disk_full(error: DBAPIError) -> bool:
    """SQLite's SQLITE_FULL, or PostgreSQL's disk_full (SQLSTATE 53100)."""
    original = error.orig
    return "database or disk is full" in str(original) or (
        getattr(original, "sqlstate", None) == "53100"
    )


@contextmanager
def _disk_full_as_a_sentence() -> Iterator[None]:
    try:
        yield
    except DBAPIError as error:
        if _is_disk_full(error):
            raise DatabaseUnavailable(DISK_FULL) from None
        raise


@contextmanager
def write_session(
    engine: Engine, *, actor: User | None = None, need: permissions.Need = "writer"
) -> Iterator[Session]:
    """A short write transaction: committed on success, rolled back on any error.

    On SQLite the transaction starts with BEGIN IMMEDIATE so concurrent writers queue
    on the busy timeout instead of failing part-way. Given the acting user, it first
    checks them again inside the transaction (permissions.confirm): a user deactivated,
    demoted or signed out meanwhile writes nothing. A full disk is one sentence.
    """
    with _disk_full_as_a_sentence():
        if engine.url.get_backend_name() == "sqlite":
            with engine.connect() as connection:
                _refuse_a_lost_file(connection)
                connection = connection.execution_options(sqlite_begin="IMMEDIATE")
                with (
                    Session(bind=connection, expire_on_commit=False) as session,
                    session.begin(),
                ):
                    if actor is not None:
                        permissions.confirm(session, actor, need)
                    yield session
            return
        with _factory(engine)() as session, session.begin():
            if actor is not None:
                permissions.confirm(session, actor, need)
            yield session


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A short Core write transaction (BEGIN IMMEDIATE on SQLite), for hot paths that do
    not need the ORM: the delivery loop commits twice per message."""
    with engine.connect() as connection:
        if engine.url.get_backend_name() == "sqlite":
            _refuse_a_lost_file(connection)
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection
