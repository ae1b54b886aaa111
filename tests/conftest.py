"""Shared fixtures: a real database per test (a SQLite file, or a PostgreSQL schema).

CRM_TEST_BACKEND=postgres runs the same tests on PostgreSQL (CRM_TEST_POSTGRES_URL,
default postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets a schema of
its own, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from crm import auth, db
from crm.models import User
from tests.smtp_server import FaultySmtpServer

POSTGRES_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKEND = os.environ.get("CRM_TEST_BACKEND", "sqlite")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-that-is-long-enough"
PASSWORDS = {"admin": "admin-pass-1", "recruiter": "recruiter-pass-1", "manager": "manager-pass-1"}


def pytest_report_header(config: pytest.Config) -> str:
    return f"database backend: {BACKEND}"


@contextmanager
def fresh_database_url(folder: Path) -> Iterator[str]:
    """A URL for an empty database that lives as long as the block."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{folder / 'crm.db'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        db.dispose_engines()
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


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


@pytest.fixture
def engine(crm_env: str) -> Iterator[Engine]:
    """A migrated, empty database."""
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
