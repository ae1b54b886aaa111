"""The `crm` command: exit codes, one-sentence errors, JSON on standard output."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import crm as crm_package
from crm import auth, clock, db
from crm.cli import app
from crm.models import User
from tests.conftest import PASSWORDS, PROJECT_ROOT, python_command, signs_in

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
    assert signs_in(engine, "ada", "first-admin-pass")
    refused = crm("user", "add", "bob", "--role", "boss", stdin="whatever-pass\n")
    assert refused.exit_code == 1
    assert "role must be one of admin, recruiter, manager" in refused.stderr
    short = crm("user", "add", "bob", "--role", "recruiter", stdin="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.stderr
    empty = crm("user", "add", "bob", "--role", "recruiter", stdin="")
    assert empty.exit_code == 2 and "No password" in empty.stderr


def test_user_password_and_unlock_from_the_command_line(
    users: dict[str, User], engine: Engine
) -> None:
    for _ in range(6):
        assert not signs_in(engine, "recruiter", "wrong-password")
    unlocked = crm("user", "unlock", "Recruiter")
    assert unlocked.exit_code == 0 and "can sign in again" in unlocked.stderr
    assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])
    state: dict = {}
    auth.sign_in_session(state, auth.find_user(engine, "recruiter"))
    changed = crm("user", "password", "recruiter", stdin="a-brand-new-passphrase\n")
    assert changed.exit_code == 0, changed.stderr
    assert auth.session_user(engine, state) is None  # their open sessions ended
    assert signs_in(engine, "recruiter", "a-brand-new-passphrase")
    weak = crm("user", "password", "recruiter", stdin="password1234\n")
    assert weak.exit_code == 1 and "stronger password" in weak.stderr
    unknown = crm("user", "unlock", "nobody")
    assert unknown.exit_code == 1 and "no user called 'nobody'" in unknown.stderr


def test_serve_refuses_a_public_address_while_demo_passwords_are_set(engine: Engine) -> None:
    from crm import demo

    for username, (role, name, password) in demo.DEMO_ACCOUNTS.items():
        auth.create_user(engine, username=username, role=role, password=password,
                         display_name=name, as_operator=True)  # fmt: skip
    refused = crm("serve", "--host", "0.0.0.0", "--port", "8599")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        "Error: Not serving on 0.0.0.0: the demo users admin, recruiter, manager, jordan, li "
        "still have the passwords anyone can read in the README; set new ones with "
        "`crm user password NAME` (or pass --allow-demo-passwords)."
    )
    for username in ("admin", "recruiter", "manager", "jordan"):
        changed = crm("user", "password", username, stdin=f"{username}-keeps-a-secret-now\n")
        assert changed.exit_code == 0, changed.stderr
    assert demo.accounts_with_demo_passwords(engine) == ["li"]
    auth.set_active(engine, actor=auth.find_user(engine, "admin"),
                    user_id=auth.find_user(engine, "li").id, active=False)  # fmt: skip
    assert demo.accounts_with_demo_passwords(engine) == []


@pytest.mark.parametrize(
    "host, loopback",
    [("localhost", True), ("127.0.0.1", True), ("127.8.0.2", True), ("::1", True),
     ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.0.2.10", False),
     ("crm.example.com", False)],
)  # fmt: skip
def test_only_loopback_addresses_count_as_private(host: str, loopback: bool) -> None:
    from crm.cli.admin import _is_loopback

    assert _is_loopback(host) is loopback


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

    from crm.content_calendar import drafts, items

    start = dt.datetime.combine(clock.today(), dt.time(9), dt.UTC)
    items.save_item(
        engine,
        actor=users["recruiter"],
        draft=drafts.ItemDraft(
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


def test_an_unexpected_database_failure_is_one_sentence_without_sql_or_personal_data(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver error's text holds the whole statement and, unless the engine hides them,
    its values: here a candidate's name and address (PostgreSQL even adds the failing row).
    The message is one sentence without any of it; --debug shows the statement but the
    engine never renders the values."""
    from crm import pools

    person = {"f": "Anabel-Private", "l": "Lima-Private", "e": "ana.private@example.com"}
    statement = {
        # NOT NULL columns left out: an IntegrityError on both databases.
        "insert": "INSERT INTO candidates (first_name, last_name, email) VALUES (:f, :l, :e)",
        # No such table: the values can only reach the message through the engine.
        "missing": "UPDATE no_such_table SET email = :e WHERE last_name = :l AND :f = :f",
    }
    failing = ["insert"]

    def failing_write(engine: Engine) -> list[object]:
        with db.write_connection(engine) as connection:
            connection.execute(text(statement[failing[0]]), person)
        return []

    monkeypatch.setattr(pools, "list_pools", failing_write)
    result = crm("pool", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unexpected failure (IntegrityError); rerun with --debug for details.\n"
    )
    failing[0] = "missing"
    assert crm("pool", "list").stderr.count("\n") == 1
    debug = crm("--debug", "pool", "list")
    assert debug.exit_code == 1 and debug.exception is not None
    shown = str(debug.exception)
    assert "UPDATE no_such_table" in shown  # --debug does show what failed...
    assert "[SQL parameters hidden due to hide_parameters=True]" in shown
    assert not any(value in shown for value in person.values())  # ...never the values


@pytest.mark.parametrize(
    "content, mode, said",
    [
        ("", 0o600, "is empty or shorter than 16 characters; delete it to have a new one"),
        ("abc\n", 0o600, "is empty or shorter than 16 characters; delete it to have a new one"),
        ("k" * 64 + "\n", 0o644, "can be read or changed by other users on this machine"),
    ],
)
def test_init_and_serve_stop_with_one_sentence_on_a_bad_secret_key_file(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    content: str,
    mode: int,
    said: str,
) -> None:
    """`make run` runs `crm init` first, so it stops there with the same sentence; the
    file is left for the operator (a new key would sign everyone out)."""
    monkeypatch.delenv("CRM_SECRET_KEY")
    path = tmp_path / "data" / "secret_key"
    path.parent.mkdir(exist_ok=True)
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    started: list[object] = []
    stub = types.ModuleType("crm.server")
    stub.run = lambda **where: started.append(where)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "crm.server", stub)
    monkeypatch.setattr(crm_package, "server", stub, raising=False)
    for command in (["init"], ["serve", "--port", "1"]):
        result = crm(*command)
        assert result.exit_code == 1, command
        assert result.stderr.startswith(f"Error: The secret key file {path} {said}")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert started == []
    assert path.read_text(encoding="utf-8") == content


def test_pool_list_shows_a_broken_pool_and_counts_the_rest(
    engine: Engine, users: dict[str, User]
) -> None:
    """A pool saved before the filter limits made `crm pool list` fail with SQLite's "LIKE
    or GLOB pattern too complex"; now it is listed as broken, and a filter over a limit
    is refused when saved (exit 2, one sentence)."""
    from crm import candidates, pools
    from crm.models import Pool

    candidates.create_candidate(
        engine, actor=users["recruiter"],
        fields={"first_name": "Ana", "email": "ana@x.io", "skills": "python"},
    )  # fmt: skip
    pools.save_pool(
        engine, actor=users["recruiter"], name="Python", kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["python"]},
    )  # fmt: skip
    with db.write_session(engine) as session:
        session.add(
            Pool(name="Huge", kind="dynamic",
                 filter={"field": "title", "op": "contains", "value": "x" * 100_000})
        )  # fmt: skip
    reason = "A text value in a filter can be at most 200 characters."
    listed = crm("pool", "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert lines["Huge"].endswith(f"dynamic  broken: {reason}")
    assert lines["Python"].split()[-1] == "1"
    rows = json.loads(crm("pool", "list", "--json").stdout)
    assert [(r["name"], r["size"], r["problem"]) for r in rows] == [
        ("Huge", None, reason),
        ("Python", 1, None),
    ]
    for given, sentence in (
        ('{"field": "title", "op": "contains", "value": "' + "x" * 100_000 + '"}', reason),
        ('{"field": "years_experience", "op": "gte", "value": NaN}', "not NaN or Infinity"),
        ('{"all": [' * 11 + "]}" * 11, "Filter groups can nest at most 10 levels deep."),
        # Deep enough that the JSON decoder itself runs out of stack.
        ('{"all": [' * 5_000 + "]}" * 5_000, "Filter groups can nest at most 10 levels deep."),
    ):
        refused = crm("pool", "save", "Too much", "--filter-json", given)
        assert refused.exit_code == 2 and sentence in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert pools.pool_id_by_name(engine, "Too much") is None


def test_campaign_report_and_list_count_people_and_messages_apart(engine: Engine) -> None:
    """The three-step campaign of tests/test_campaigns.py, through the command line."""
    from tests.test_campaigns import three_step_campaign

    three_step_campaign(engine)
    result = crm("campaign", "report", "Three steps", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    totals = report["totals"]
    assert (totals["messages_sent"], totals["messages_delivered"], totals["bounced"]) == (20, 19, 1)
    assert (totals["cancelled"], totals["skipped"], totals["failed"]) == (2, 1, 1)
    assert (totals["people_delivered"], totals["people_replied"]) == (10, 3)
    assert totals["reply_rate"] == 0.3 and report["steps"][2]["reply_rate"] == 0.25
    assert (totals["apple_privacy_people"], totals["scanner_opens"]) == (1, 2)

    table = crm("campaign", "report", "Three steps")
    assert table.exit_code == 0, table.output
    assert "people_delivered" in table.stdout and "30.0%" in table.stdout

    listed = crm("campaign", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert (row["messages_sent"], row["people_delivered"], row["people_replied"]) == (20, 10, 3)
    assert (row["reply_rate"], row["cancelled"], row["skipped"]) == (0.3, 2, 1)
    plain = crm("campaign", "list")
    assert "messages sent     20" in plain.stdout and "people delivered     10" in plain.stdout
    assert "replied  30%" in plain.stdout


def test_campaign_preview_prints_what_the_person_would_receive(
    engine: Engine, users: dict[str, User]
) -> None:
    from crm import campaigns, composer
    from tests.test_campaigns import add_people

    (person,) = add_people(engine, 1)
    campaign_id = campaigns.save_campaign(
        engine,
        actor=users["admin"],
        draft=campaigns.CampaignDraft(
            name="Hello",
            steps=[
                campaigns.StepDraft(
                    subject="Hi {{first_name}}",
                    body="Hello {{first_name}}, see [jobs](https://acme.example/jobs).",
                ),
                campaigns.StepDraft(subject="Again", body="Still here.", delay_days=3),
            ],
            candidate_ids=[person],
            sender_name="Rita",
            sender_email="rita@acme.example",
        ),
    )
    result = crm("campaign", "preview", "Hello", "--email", "P0@Example.com", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert set(shown) == {"subject", "text", "html", "headers"}
    # The same composer as the page's preview and delivery: the same message.
    expected = composer.preview(engine, campaign_id, step=1, candidate_id=person)
    assert (shown["subject"], shown["text"], shown["html"]) == (
        expected.subject,
        expected.text,
        expected.html,
    )
    varying = ("Date", "Message-ID")
    assert {k: v for k, v in shown["headers"].items() if k not in varying} == {
        k: v for k, v in expected.headers.items() if k not in varying
    }
    headers = shown["headers"]
    assert shown["subject"] == "Hi P0" and headers["Subject"] == "Hi P0"
    assert (headers["From"], headers["To"]) == ("Rita <rita@acme.example>", "p0@example.com")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert set(varying) <= set(headers)
    assert "Hello P0, see jobs (https://acme.example/jobs)." in shown["text"]

    second = crm("campaign", "preview", "Hello", "--email", "p0@example.com", "--step", "2")
    assert second.exit_code == 0, second.output
    assert "Subject: Again" in second.stdout and "Still here." in second.stdout

    for args, sentence in (
        (("Nope", "--email", "p0@example.com"), "There is no campaign called 'Nope'"),
        (
            ("Hello", "--email", "nobody@example.com"),
            "There is nobody with the email address 'nobody@example.com'.",
        ),
        (
            ("Hello", "--email", "p0@example.com", "--step", "3"),
            "'Hello' has 2 steps; there is no step 3.",
        ),
        (
            ("Hello", "--email", "p0@example.com", "--step", "0"),
            "'Hello' has 2 steps; there is no step 0.",
        ),
    ):
        refused = crm("campaign", "preview", *args, "--json")
        assert refused.exit_code == 1, refused.output
        assert refused.stdout == ""
        assert refused.stderr.startswith(f"Error: {sentence}")
        assert len(refused.stderr.strip().splitlines()) == 1
