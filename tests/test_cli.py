"""The `crm` command: exit codes, one-sentence errors, JSON on standard output."""

from __future__ import annotations

import json
import subprocess

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from crm import auth, clock, db
from crm.cli import app
from crm.models import User
from tests.conftest import PROJECT_ROOT, python_command

runner = CliRunner()


def crm(*args: str, stdin: str | None = None):
    return runner.invoke(app, list(args), input=stdin)


def test_init_creates_then_reports_up_to_date(crm_env: str) -> None:
    first = crm("init")
    assert first.exit_code == 0, first.output
    assert "is ready" in first.stderr
    second = crm("init")
    assert second.exit_code == 0
    assert "up to date" in second.stderr
    engine = db.create_engine_for(crm_env)
    assert db.current_revision(engine) == db.head_revision()
    engine.dispose()


def test_commands_on_an_uninitialised_database_say_run_init(crm_env: str) -> None:
    result = crm("user", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: The database has not been set up yet: run `crm init` first."
    )


def test_bad_database_url_is_one_sentence(monkeypatch: pytest.MonkeyPatch, crm_env: str) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "definitely not a url")
    result = crm("init")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "CRM_DATABASE_URL is not a database URL" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_postgres_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, crm_env: str
) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm@127.0.0.1:1/crm")
    result = crm("init")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Cannot connect to PostgreSQL at 127.0.0.1:1")
    assert result.stderr.count("\n") == 1


def test_user_add_reads_the_password_from_stdin(engine: Engine) -> None:
    result = crm("user", "add", "Ada", "--role", "admin", stdin="first-admin-pass\n")
    assert result.exit_code == 0, result.output
    assert auth.authenticate(engine, "ada", "first-admin-pass") is not None
    refused = crm("user", "add", "bob", "--role", "boss", stdin="whatever-pass\n")
    assert refused.exit_code == 1
    assert "role must be one of admin, recruiter, manager" in refused.stderr
    short = crm("user", "add", "bob", "--role", "recruiter", stdin="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.stderr
    empty = crm("user", "add", "bob", "--role", "recruiter", stdin="")
    assert empty.exit_code == 2 and "No password" in empty.stderr


def test_user_list_json(users: dict[str, User]) -> None:
    result = crm("user", "list", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {row["username"]: row["role"] for row in rows} == {
        "admin": "admin",
        "manager": "manager",
        "recruiter": "recruiter",
    }


def test_metrics_json_and_bad_dates(engine: Engine) -> None:
    result = crm("metrics", "--from", "2026-01-01", "--to", "2026-06-30", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["from"] == "2026-01-01" and report["to"] == "2026-06-30"
    assert report["hires"] == 0 and report["cost_per_hire"] is None
    bad = crm("metrics", "--from", "January")
    assert bad.exit_code == 2
    assert "--from must be a date like 2026-01-31" in bad.stderr
    backwards = crm("metrics", "--from", "2026-02-01", "--to", "2026-01-01")
    assert backwards.exit_code == 2


def test_pool_list_json_on_empty_database(engine: Engine) -> None:
    result = crm("pool", "list", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_demo_refuses_to_mix_with_existing_data(engine: Engine) -> None:
    assert crm("demo", "--candidates", "50").exit_code == 0
    again = crm("demo", "--candidates", "50")
    assert again.exit_code == 1
    assert "--reset" in again.stderr
    quiet = crm("demo", "--if-empty")
    assert quiet.exit_code == 0 and "not loaded" in quiet.stderr
    reset = crm("demo", "--candidates", "60", "--reset")
    assert reset.exit_code == 0
    assert "Loaded 60 candidates" in reset.stderr


def test_the_installed_command_runs_as_a_process(crm_env: str) -> None:
    result = subprocess.run(
        python_command("-m", "crm.cli", "init"),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_pool_save_validates_then_lists_as_json(engine: Engine, users: dict[str, User]) -> None:
    from crm import candidates

    candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={"first_name": "Ana", "email": "ana@x.io", "skills": "python"},
    )
    bad = crm("pool", "save", "Bad", "--filter-json", '{"field": "salary", "op": "gte"}')
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "Error: Unknown filter field 'salary'."
    wrong_type = crm(
        "pool",
        "save",
        "Bad",
        "--filter-json",
        '{"field": "years_experience", "op": "gte", "value": "five"}',
    )
    assert wrong_type.exit_code == 2 and "must be a number" in wrong_type.stderr
    assert crm("pool", "save", "Bad", "--filter-json", "{oops").exit_code == 2
    assert crm("pool", "save", "Neither").exit_code == 2
    saved = crm(
        "pool",
        "save",
        "Python",
        "--filter-json",
        '{"all": [{"field": "skills", "op": "has_any", "value": ["python"]}]}',
    )
    assert saved.exit_code == 0, saved.stderr
    assert "Saved pool 'Python': 1 people now." in saved.stderr
    assert crm("pool", "save", "Shortlist", "--static").exit_code == 0
    listed = json.loads(crm("pool", "list", "--json").stdout)
    assert [(p["name"], p["kind"], p["size"]) for p in listed] == [
        ("Python", "dynamic", 1),
        ("Shortlist", "static", 0),
    ]
    # Saving under an existing name updates that pool.
    updated = crm("pool", "save", "Python", "--filter-json", '{"all": []}')
    assert updated.exit_code == 0 and "Updated pool" in updated.stderr


def test_calendar_export_writes_an_ics_file(
    engine: Engine, users: dict[str, User], tmp_path
) -> None:
    import datetime as dt

    import icalendar

    from crm import calendar

    start = dt.datetime.combine(clock.today(), dt.time(9), dt.UTC)
    calendar.save_item(
        engine,
        actor=users["recruiter"],
        draft=calendar.ItemDraft(
            title="Weekly tip", channel="linkedin_post", starts_at=start,
            recurrence={"freq": "weekly", "interval": 1, "count": 4},
        ),
    )  # fmt: skip
    target = tmp_path / "content.ics"
    result = crm("calendar", "export", "-o", str(target))
    assert result.exit_code == 0, result.output
    parsed = icalendar.Calendar.from_ical(target.read_bytes())
    events = [c for c in parsed.walk("VEVENT")]
    assert [str(e["SUMMARY"]) for e in events] == ["LinkedIn post: Weekly tip"] * 4
    assert crm("calendar", "export", "-o", str(tmp_path / "none" / "x.ics")).exit_code == 2


def test_candidate_export_data_and_erase(engine: Engine, users: dict[str, User], tmp_path) -> None:
    from crm import candidates, privacy

    candidates.create_candidate(
        engine, actor=users["recruiter"],
        fields={"first_name": "Ana", "last_name": "Lee", "email": "ana@example.com"},
    )  # fmt: skip
    target = tmp_path / "ana.json"
    result = crm("candidate", "export-data", "ana@example.com", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert "ana@example.com" in target.read_text()
    assert crm("candidate", "erase", "nobody@example.com").exit_code == 1
    erased = crm("candidate", "erase", "ana@example.com")
    assert erased.exit_code == 0, erased.output
    assert "the address is suppressed" in erased.output
    assert privacy.find_by_email(engine, "ana@example.com") is None
