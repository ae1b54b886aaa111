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
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from crm.config import load_settings
from crm.errors import ConfigError, DatabaseUnavailable, SchemaNotReady

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Never echo the URL: it may hold a password.
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


def _prepare_sqlite_file(url: URL) -> None:
    database = url.database or ""
    if database in {"", ":memory:"} or database.startswith("file:"):
        return
    path = Path(database)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"The data folder {folder} cannot be created ({error.strerror})."
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"The data folder {folder} is not writable; make it writable or point "
            "CRM_DATABASE_URL elsewhere."
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"The database file {path} is not readable and writable.")


def _install_sqlite_behaviour(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own
        # implicit transactions start too late and never as IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_engine_for(url_text: str) -> Engine:
    """A new engine for the URL; raises ConfigError for an unusable URL or data folder."""
    url = parse_url(url_text)
    if url.get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
        try:
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        except NoSuchModuleError:
            raise ConfigError(
                f"CRM_DATABASE_URL uses an unknown driver: {describe(url)}."
            ) from None
        _install_sqlite_behaviour(engine)
        return engine
    try:
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": 5},
        )
    except NoSuchModuleError:
        raise ConfigError(f"CRM_DATABASE_URL uses an unknown driver: {describe(url)}.") from None


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
    try:
        with engine.connect() as connection:
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


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A short write transaction: committed on success, rolled back on any error.

    On SQLite the transaction starts with BEGIN IMMEDIATE so concurrent writers queue
    on the busy timeout instead of failing part-way.
    """
    if engine.url.get_backend_name() == "sqlite":
        with engine.connect() as connection:
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
            with Session(bind=connection, expire_on_commit=False) as session, session.begin():
                yield session
        return
    with _factory(engine)() as session, session.begin():
        yield session


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A short Core write transaction (BEGIN IMMEDIATE on SQLite), for hot paths that do
    not need the ORM: the delivery loop commits twice per message."""
    with engine.connect() as connection:
        if engine.url.get_backend_name() == "sqlite":
            connection = connection.execution_options(sqlite_begin="IMMEDIATE")
        with connection.begin():
            yield connection
