"""The database layer: migrations, SQLite behaviour, and one-sentence failures."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, make_url, select

from crm import db
from crm.errors import ConfigError, DatabaseUnavailable, SchemaNotReady
from crm.models import Base, Candidate, Setting
from crm.sql import has_item
from tests.conftest import (
    BACKEND,
    PROJECT_ROOT,
    TEST_SECRET,
    at_once,
    fresh_database_url,
    python_command,
)
from tests.e2e.conftest import clean_env, free_port, wait_until_healthy


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


def _differences_from_the_models(engine: Engine) -> list:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def test_models_match_the_migrations(crm_env: str) -> None:
    """Built here by the migrations themselves, not copied from a session's template."""
    engine = db.create_engine_for(crm_env)
    db.upgrade(engine)
    assert _differences_from_the_models(engine) == []
    engine.dispose()


def test_the_engine_fixture_copies_the_migrated_database(engine: Engine) -> None:
    """The copy each test starts from (see tests/conftest.py) is the migrations' result:
    at the head revision, matching the models, and empty."""
    assert db.current_revision(engine) == db.head_revision()
    assert _differences_from_the_models(engine) == []
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            assert connection.execute(select(func.count()).select_from(table)).scalar() == 0


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
    rounds = 40

    def worker() -> None:
        for _ in range(rounds):
            with db.write_session(engine) as session:
                row = session.get(Setting, "counter", with_for_update=True)
                row.value = {"n": row.value["n"] + 1}

    assert at_once(worker, 2) == []
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
        # An unclosed IPv6 bracket or a bad port: make_url raises a bare ValueError.
        ("postgresql://crm:pa55-secret@[::1/crm", "CRM_DATABASE_URL is not a database URL"),
        ("postgresql://crm:pa55-secret@[::1:5432/crm", "CRM_DATABASE_URL is not a database URL"),
        ("postgresql://crm:pa55-secret@db:port/crm", "CRM_DATABASE_URL is not a database URL"),
        ("postgresql//crm:pa55-secret@db/crm", "CRM_DATABASE_URL is not a database URL"),
    ],
)
def test_bad_urls_get_one_sentence(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        db.create_engine_for(url)
    assert "\n" not in str(caught.value)
    assert "pa55" not in str(caught.value)


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


# --- the SQLite file: private, and never written once deleted or replaced ----------------

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="a SQLite file")


@sqlite_only
def test_a_new_sqlite_database_and_its_folder_are_private(tmp_path: Path) -> None:
    """Created 0600 in a 0700 folder whatever the umask; -wal and -shm follow the file."""
    folder = tmp_path / "data"
    old_umask = os.umask(0o022)
    try:
        engine = db.create_engine_for(f"sqlite:///{folder / 'crm.db'}")
        db.upgrade(engine)
        with db.write_session(engine) as session:
            session.add(Setting(key="a", value={"n": 1}))
        with engine.connect() as connection:  # the -wal and -shm files exist while open
            connection.exec_driver_sql("SELECT 1")
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        engine.dispose()
    finally:
        os.umask(old_umask)
    assert modes == {"crm.db": 0o600, "crm.db-wal": 0o600, "crm.db-shm": 0o600}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@sqlite_only
def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    """The operator's choice (say, 0640 for a backup group) is theirs; only new files are made
    private."""
    path = tmp_path / "crm.db"
    path.touch()
    path.chmod(0o640)
    engine = db.create_engine_for(f"sqlite:///{path}")
    db.check_connection(engine)
    engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def _swap_file(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
    else:  # a copy put in its place, as a restore from a backup would
        copy = path.with_name("copy.db")
        shutil.copyfile(path, copy)
        os.replace(copy, path)


@sqlite_only
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_writes_stop_when_the_sqlite_file_is_deleted_or_replaced(
    engine: Engine, crm_env: str, how: str
) -> None:
    """Writes would go to the unlinked file and be lost; they stop with one sentence."""
    with db.write_session(engine) as session:  # the pool now holds an open connection
        session.add(Setting(key="before", value={"n": 1}))
    path = Path(engine.url.database)
    _swap_file(path, how)
    said = {
        "deleted": f"The database file {path} has gone; restore it from a backup and "
        "restart Candidate CRM.",
        "replaced": f"The database file {path} was replaced while Candidate CRM was running; "
        "restart Candidate CRM to use the new file.",
    }[how]
    with pytest.raises(DatabaseUnavailable) as caught, db.write_session(engine) as session:
        session.add(Setting(key="after", value={"n": 2}))
    assert str(caught.value) == said
    with (
        pytest.raises(DatabaseUnavailable, match="^The database file "),
        db.write_connection(engine) as connection,
    ):
        connection.execute(Setting.__table__.insert().values(key="core", value={"n": 3}))
    with pytest.raises(DatabaseUnavailable, match="^The database file "):
        db.check_connection(engine)
    # Neither a new connection (which would create an empty file) nor a write got through.
    if how == "deleted":
        assert not path.exists()
    else:
        check = db.create_engine_for(crm_env)
        with db.read_session(check) as session:
            assert list(session.scalars(select(Setting.key))) == ["before"]
        check.dispose()


# --- /_stcore/health follows the database ----------------------------------------------


class TcpProxy:
    """A loopback TCP forwarder to PostgreSQL that can be cut, as a server going away."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
                end.close()


def _health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_fails_while_the_database_is_unusable(tmp_path: Path) -> None:
    """`crm serve` answers /_stcore/health 503 once its SQLite file is deleted, or once its
    PostgreSQL cannot be reached (here: the connection cut), not ok as before."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(fresh_database_url(tmp_path))
        engine = db.create_engine_for(database_url)
        db.upgrade(engine)
        engine.dispose()
        proxy = None
        if BACKEND != "sqlite":
            url = make_url(database_url)
            proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
            stack.callback(proxy.cut)
            database_url = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            )
        port = free_port()
        server_url = f"http://127.0.0.1:{port}"
        env = clean_env(
            CRM_DATABASE_URL=database_url,
            CRM_SECRET_KEY=TEST_SECRET,
            CRM_DATA_DIR=str(tmp_path / "data"),
            CRM_WORKER="off",
        )
        log = tmp_path / "serve.log"
        output = stack.enter_context(log.open("wb"))
        process = subprocess.Popen(
            python_command("-m", "crm.cli", "serve", "--port", str(port), "--host", "127.0.0.1"),
            env=env,
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(server_url, process, log)
            assert _health(server_url) == (200, "ok")
            if proxy is None:
                Path(make_url(database_url).database).unlink()
                reason = "has gone; restore it from a backup"
            else:
                proxy.cut()
                reason = "Cannot connect to PostgreSQL"
            assert _health(server_url) == (503, "The database is unavailable.")
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert reason in log.read_text()  # the operator's log says why; the probe is not told


def test_text_with_a_nul_character_is_refused_before_any_database_sees_it(
    engine: Engine, users: dict
) -> None:
    """PostgreSQL cannot store NUL in text (psycopg raised a DataError deep in a page);
    one check refuses it in every write and search, on both databases, in one sentence,
    and nothing is half-written."""
    import datetime as dt

    from crm import campaigns, candidates, clock, pools, touchpoints
    from crm.errors import ValidationError
    from crm.models import Activity, Campaign, Pool

    actor = users["recruiter"]
    person = candidates.create_candidate(
        engine, actor=actor, fields={"first_name": "Ana", "last_name": "Nul", "email": "a@x.io"}
    )
    assert db.NUL_REFUSED == "Text cannot contain a NUL character (\\x00); remove it and try again."

    def refused(action, sentence: str = db.NUL_REFUSED) -> None:
        with pytest.raises(ValidationError) as error:
            action()
        assert str(error.value) == sentence

    fields = {"first_name": "B\x00en", "last_name": "Nul", "email": "b@x.io"}
    refused(lambda: candidates.create_candidate(engine, actor=actor, fields=fields))
    refused(
        lambda: candidates.update_candidate(
            engine, actor=actor, candidate_id=person.id, expected_version=person.version,
            fields={"company": "Acme\x00"},
        )
    )  # fmt: skip
    refused(
        lambda: touchpoints.log_touchpoint(
            engine, actor=actor, candidate_id=person.id, channel="note",
            occurred_at=clock.now() - dt.timedelta(minutes=1), note="called\x00 back",
        )
    )  # fmt: skip
    draft = campaigns.CampaignDraft(
        name="Hello", steps=[campaigns.StepDraft(subject="Hi", body="Body\x00text")],
        candidate_ids=[person.id],
    )  # fmt: skip
    refused(lambda: campaigns.save_campaign(engine, actor=actor, draft=draft))
    refused(
        lambda: pools.save_pool(engine, actor=actor, name="P", kind="static", description="\x00")
    )

    def json_document() -> None:  # hidden there as \u0000 once serialized
        with db.write_session(engine) as session:
            session.add(Setting(key="probe", value={"nested": [{"deep": "x\x00"}]}))

    refused(json_document)

    def lookup() -> None:
        with db.read_session(engine) as session:
            session.scalar(select(Candidate.id).where(Candidate.email == "a\x00@x.io"))

    refused(lookup)
    # The search box and pool filters say so in their own words.
    found = candidates.search(engine, text="an\x00a")
    assert (found.rows, found.problem) == ([], "A search cannot contain a NUL character.")
    refused(
        lambda: pools.preview_filter(engine, {"field": "location", "op": "in", "value": ["\x00"]}),
        "A filter value cannot contain a NUL character.",
    )
    with db.read_session(engine) as session:
        assert [c.first_name for c in session.scalars(select(Candidate))] == ["Ana"]
        assert session.get(Candidate, person.id).company is None
        assert session.scalar(select(Campaign.id)) is None
        assert session.scalar(select(Pool.id)) is None
        assert session.scalar(select(Setting.key).where(Setting.key == "probe")) is None
        assert not [a for a in session.scalars(select(Activity)) if "back" in (a.summary or "")]
