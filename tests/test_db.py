"""The database layer: migrations, SQLite behaviour, and one-sentence failures."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select

from crm import db
from crm.errors import ConfigError, DatabaseUnavailable, SchemaNotReady
from crm.models import Base, Candidate, Setting
from crm.sql import has_item
from tests.conftest import BACKEND


def test_upgrade_from_empty_then_downgrade_to_base(crm_env: str) -> None:
    engine = db.create_engine_for(crm_env)
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    db.downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_models_match_the_migrations(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_constraint_names_follow_the_convention(engine: Engine) -> None:
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("candidates")["name"] in {"pk_candidates", None}
    unique_names = {u["name"] for u in inspector.get_unique_constraints("candidates")}
    assert "uq_candidates_email_normalized" in unique_names
    check_names = {c["name"] for c in inspector.get_check_constraints("users")}
    assert "ck_users_role_valid" in check_names


def test_app_refuses_an_unmigrated_database(crm_env: str) -> None:
    engine = db.create_engine_for(crm_env)
    with pytest.raises(SchemaNotReady, match="run `crm init`"):
        db.require_current_schema(engine)
    engine.dispose()


def test_write_session_commits_or_rolls_back_whole(engine: Engine) -> None:
    with db.write_session(engine) as session:
        session.add(Setting(key="a", value={"n": 1}))
    with pytest.raises(RuntimeError), db.write_session(engine) as session:
        session.add(Setting(key="b", value={"n": 2}))
        session.flush()
        raise RuntimeError("boom")
    with db.read_session(engine) as session:
        assert list(session.scalars(select(Setting.key))) == ["a"]


def test_concurrent_read_modify_write_waits_instead_of_failing(engine: Engine) -> None:
    """Two writers incrementing one counter: both succeed and no update is lost.

    The pattern services follow: write_session (BEGIN IMMEDIATE on SQLite) and a row
    lock for what is read to be changed (FOR UPDATE on PostgreSQL).
    """
    with db.write_session(engine) as session:
        session.add(Setting(key="counter", value={"n": 0}))
    rounds, errors = 40, []

    def worker() -> None:
        try:
            for _ in range(rounds):
                with db.write_session(engine) as session:
                    row = session.get(Setting, "counter", with_for_update=True)
                    row.value = {"n": row.value["n"] + 1}
        except Exception as error:  # collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.read_session(engine) as session:
        assert session.get(Setting, "counter").value == {"n": 2 * rounds}


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite pragmas")
def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "CRM_DATABASE_URL is not a database URL"),
        ("mysql://localhost/crm", "runs on sqlite or postgresql"),
    ],
)
def test_bad_urls_get_one_sentence(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        db.create_engine_for(url)
    assert "\n" not in str(caught.value)


def test_unreachable_postgres_gets_one_sentence() -> None:
    engine = db.create_engine_for("postgresql://nobody@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseUnavailable, match="Cannot connect to PostgreSQL at 127.0.0.1:1"):
        db.check_connection(engine)
    engine.dispose()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_data_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            db.create_engine_for(f"sqlite:///{folder / 'crm.db'}")
    finally:
        folder.chmod(0o700)


def test_read_only_data_folder_is_refused_even_for_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.access says no (as for a non-root user on a read-only folder): one sentence."""
    folder = tmp_path / "ro"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        db.os,
        "access",
        lambda path, mode: False if Path(path) == folder else real_access(path, mode),
    )
    with pytest.raises(ConfigError, match=f"The data folder {folder} is not writable"):
        db.create_engine_for(f"sqlite:///{folder / 'crm.db'}")


def test_postgresql_url_uses_psycopg_3() -> None:
    assert db.parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"


def test_migration_0003_moves_skills_into_the_row_and_back(crm_env: str) -> None:
    engine = db.create_engine_for(crm_env)
    db.upgrade(engine, "0002")
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO candidates (id, first_name, last_name, remote, consent_status, "
            "custom_fields, version, created_at, updated_at) VALUES "
            "(1, 'Ana', 'Lima', false, 'legitimate_interest', '{}', 1, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00'), "
            "(2, 'Ben', 'Ode', false, 'legitimate_interest', '{}', 1, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
        connection.exec_driver_sql(
            "INSERT INTO candidate_skills (candidate_id, skill) VALUES "
            "(1, 'python'), (1, 'c\"quoted'), (1, 'müller tools')"
        )
    db.upgrade(engine)
    with db.read_session(engine) as session:
        skills = dict(session.execute(select(Candidate.id, Candidate.skills)).all())
    assert sorted(skills[1]) == ['c"quoted', "müller tools", "python"]
    assert skills[2] == []
    with db.read_session(engine) as session:
        assert session.scalar(select(Candidate.id).where(has_item(Candidate.skills, 'c"quoted')))
    db.downgrade(engine, "0002")
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT candidate_id, skill FROM candidate_skills ORDER BY skill"
        ).all()
    assert rows == [(1, 'c"quoted'), (1, "müller tools"), (1, "python")]
    engine.dispose()
