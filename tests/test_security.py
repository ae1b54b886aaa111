"""The security matrix of docs/security.md, where no other test file covers a row.

Each test here is named in docs/security.md; the last test checks that every test the
matrix names exists. xfail(strict=True) marks a real problem found and reported, not
yet fixed: the test shows it and turns red once it is fixed, so the mark comes off.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import importlib
import inspect
import io
import logging
import pkgutil
import re
import tomllib
from typing import Any

import pytest
import time_machine
from sqlalchemy import Engine, MetaData, event, func, select, text
from streamlit.testing.v1 import AppTest

import crm
from crm import (
    audit,
    audit_log,
    auth,
    campaign_figures,
    campaigns,
    candidates,
    clock,
    composer,
    custom_fields,
    db,
    exporter,
    importer,
    mailer,
    merge_tags,
    outbox,
    outbox_view,
    pools,
    privacy,
    session_cookie,
    throttle,
    tokens,
    touchpoints,
    tracking,
)
from crm.content_calendar import drafts, files, items
from crm.errors import (
    ConfigError,
    DatabaseUnavailable,
    InputUnusable,
    PermissionDenied,
    SignInRefused,
    ValidationError,
)
from crm.models import Candidate, User
from tests.conftest import BACKEND, PASSWORDS, PROJECT_ROOT, TEST_SECRET, signs_in
from tests.smtp_server import FaultySmtpServer
from tests.test_app import app_as, texts
from tests.test_outbox import launched

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(1)>[x](javascript:alert(1))"
SHORT = "<img src=x onerror=alert(1)>[x](javascript:alert(1))"  # for 60-character fields
# Markdown that would be live if user data reached st.markdown (or a label) unescaped.
LIVE_MARKUP = re.compile(r"(?<!\\)<(?:script|img)\b|\]\((?:javascript|data):", re.IGNORECASE)
UTC = dt.UTC


# --- 1. script and HTML payloads --------------------------------------------------------


def _hostile_world(engine: Engine, users: dict[str, User]) -> dict[str, int]:
    """One person whose every free-text field is PAYLOAD, and a pool, campaign and
    calendar item that carry it too."""
    recruiter = users["recruiter"]
    custom_fields.create_field(engine, actor=users["admin"], label="Portfolio", kind="text")
    person = candidates.create_candidate(
        engine,
        actor=recruiter,
        fields={
            "first_name": PAYLOAD,
            "last_name": PAYLOAD,
            "email": "xss@example.com",
            "title": PAYLOAD,
            "company": PAYLOAD,
            "location": PAYLOAD,
            "country": PAYLOAD,
            "role_family": SHORT,
            "source": SHORT,
            "skills": [PAYLOAD],
            "tags": [PAYLOAD],
        },
    )
    candidates.update_candidate(
        engine,
        actor=recruiter,
        candidate_id=person.id,
        expected_version=person.version,
        fields={"custom_fields": {"portfolio": PAYLOAD}},
    )
    now = clock.now() - dt.timedelta(minutes=1)
    touchpoints.log_touchpoint(
        engine, actor=recruiter, candidate_id=person.id, channel="note", occurred_at=now,
        note=PAYLOAD,
    )  # fmt: skip
    touchpoints.set_follow_up(
        engine, actor=recruiter, candidate_id=person.id, on=clock.today(), note=PAYLOAD
    )
    pool_id = pools.save_pool(
        engine,
        actor=recruiter,
        name=SHORT,
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": PAYLOAD},
    )
    campaign_id = campaigns.save_campaign(
        engine,
        actor=recruiter,
        draft=campaigns.CampaignDraft(
            name=SHORT,
            audience_pool_id=pool_id,
            steps=[
                campaigns.StepDraft(
                    subject="Hi {{first_name}} " + PAYLOAD,
                    body="Hello {{first_name}} at {{company}}, {{title}}.\n\n" + PAYLOAD,
                )
            ],
        ),
    )
    items.save_item(
        engine,
        actor=recruiter,
        draft=drafts.ItemDraft(
            title=PAYLOAD,
            channel="linkedin_post",
            starts_at=dt.datetime.combine(clock.today(), dt.time(10), UTC),
            pool_ids=[pool_id],
            body=PAYLOAD,
        ),
    )
    return {"candidate": person.id, "pool": pool_id, "campaign": campaign_id}


def _nodes(node: Any) -> list[Any]:
    found = [node]
    for child in getattr(node, "children", {}).values():
        found.extend(_nodes(child))
    return found


_MARKDOWN_VALUES = {"Markdown", "Caption", "Title", "Header", "Subheader", "Divider"}
_MARKDOWN_VALUES |= {"Error", "Info", "Success", "Warning", "Toast"}


def _rendered_markdown(at: AppTest) -> list[tuple[str, str]]:
    """(element type, text) for everything Streamlit renders as markdown: markdown and
    alert bodies, headings, and the labels and help of widgets, expanders and tabs."""
    found = []
    for node in _nodes(at._tree):
        kind = type(node).__name__
        proto = getattr(node, "proto", None)
        if kind in _MARKDOWN_VALUES or kind == "Metric":
            found.append((kind, str(getattr(node, "value", "") or "")))
        for attribute in ("label", "help"):
            value = getattr(node, attribute, None)
            if isinstance(value, str):
                found.append((f"{kind}.{attribute}", value))
        if kind in ("Radio", "ButtonGroup"):  # their options are markdown too
            found.extend((f"{kind}.option", str(option)) for option in node.options)
        if getattr(proto, "allow_html", False) or kind == "Html":
            found.append((f"{kind} (raw HTML)", str(proto)))
    return found


def _everything_shown(at: AppTest) -> str:
    """All text on the page, wherever it is (to prove the payload was shown at all)."""
    parts = [text for _, text in _rendered_markdown(at)]
    parts += [e.value.to_string() for e in at.dataframe]
    parts += [str(w.value) for w in at.text_input] + [str(w.value) for w in at.text_area]
    parts += [str(getattr(e, "value", "")) for e in at.text]
    parts += [str(option) for e in at.selectbox for option in e.options]
    parts += [
        str(node.proto) for node in _nodes(at._tree) if type(node).__name__ == "UnknownElement"
    ]
    return "\n".join(parts)


def _open(user: User, page: str, query: dict[str, str] | None = None) -> AppTest:
    at = app_as(user).run()
    for key, value in (query or {}).items():
        at.query_params[key] = value
    if page != "app_pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize(
    "page",
    [
        "app_pages/home.py",
        "app_pages/candidates.py",
        "app_pages/profile.py",
        "app_pages/pools.py",
        "app_pages/campaigns.py",
        "app_pages/calendar.py",
    ],
)
def test_script_payloads_are_inert_on_every_page(
    users: dict[str, User], engine: Engine, page: str
) -> None:
    ids = _hostile_world(engine, users)
    query = {"id": str(ids["candidate"])} if page == "app_pages/profile.py" else None
    at = _open(users["recruiter"], page, query)
    live = [(kind, value) for kind, value in _rendered_markdown(at) if LIVE_MARKUP.search(value)]
    assert live == []
    assert "alert" in _everything_shown(at)  # the payload is on the page, as text


def test_campaign_preview_and_email_escape_candidate_values(
    users: dict[str, User], engine: Engine
) -> None:
    ids = _hostile_world(engine, users)
    rendered = composer.preview(engine, ids["campaign"], step=1, candidate_id=ids["candidate"])
    assert "&lt;script&gt;" in rendered.html  # the candidate's values, shown as text
    assert "<script" not in rendered.html and rendered.html.count("<img") == 1  # the pixel
    assert not re.search(r"href\s*=\s*[\"']?\s*javascript:", rendered.html, re.IGNORECASE)
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    document = mailer.preview_document(rendered.rendered)
    assert "default-src 'none'" in document and "<script" not in document


# --- 2. SQL metacharacters --------------------------------------------------------------

METACHARACTERS = ["' OR 1=1 --", "%", "_", "\\", '"; DROP TABLE candidates; --', "a%b_c\\d"]


def _tables_intact(engine: Engine) -> dict[str, int]:
    with db.read_session(engine) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in _reflect(engine).sorted_tables
        }


def _reflect(engine: Engine) -> MetaData:
    meta = MetaData()
    meta.reflect(engine)
    return meta


@pytest.mark.parametrize("needle", METACHARACTERS)
def test_sql_metacharacters_in_searches_and_filters_match_literally(
    users: dict[str, User], engine: Engine, needle: str
) -> None:
    admin = users["admin"]
    literal = candidates.create_candidate(
        engine,
        actor=admin,
        fields={"first_name": "Lit", "last_name": "Eral", "email": "lit@example.com",
                "company": f"x{needle}y", "location": needle},
    )  # fmt: skip
    candidates.create_candidate(
        engine,
        actor=admin,
        fields={"first_name": "Plain", "last_name": "Person", "email": "plain@example.com",
                "company": "Acme abcd", "location": "London"},
    )  # fmt: skip
    before = {t.name for t in _reflect(engine).sorted_tables}

    found = candidates.search(engine, text=needle)
    assert [row["id"] for row in found.rows] == [literal.id]
    for op, value in (("contains", needle), ("eq", needle), ("in", [needle])):
        field = "company" if op == "contains" else "location"
        members = pools.preview_filter(engine, {"field": field, "op": op, "value": value})
        assert [m["id"] for m in _members(members)] == [literal.id], (op, value)
    audited, _ = audit_log.entries(engine, actor=admin, action=needle, username=needle)
    assert audited == []

    assert {t.name for t in _reflect(engine).sorted_tables} == before
    assert candidates.count(engine) == 2


def _members(preview: pools.FilterPreview) -> list[dict[str, Any]]:
    assert preview.count == len(preview.sample)
    return preview.sample


@pytest.mark.parametrize("needle", METACHARACTERS)
def test_sql_metacharacters_in_the_outbox_search(
    users: dict[str, User], engine: Engine, smtp: FaultySmtpServer, needle: str
) -> None:
    campaign_id = launched(engine, users["admin"], 2)
    with db.write_session(engine) as session:
        session.execute(text("UPDATE candidates SET last_name = :n WHERE id = 1"), {"n": needle})
    rows, total = outbox_view.outbox(engine, campaign_id, search=needle)
    assert total == len(rows) == 1
    rows, total = outbox_view.outbox(engine, campaign_id)
    assert total == 2


# --- 3. merge-tag injection -------------------------------------------------------------

ALLOWED = merge_tags.available_fields()


@pytest.mark.parametrize(
    "template",
    ["{{ 7*7 }}", "{{first_name.__class__.__mro__}}", "{{ first_name() }}", "{{{first_name}}}",
     "{{ config }}", "{{first_name|{{email}}}}"],
)  # fmt: skip
def test_template_expressions_are_refused_at_save(template: str) -> None:
    with pytest.raises(ValidationError):
        merge_tags.parse(template, allowed=ALLOWED)


def test_candidate_values_that_look_like_tags_stay_literal_in_the_email(
    users: dict[str, User], engine: Engine
) -> None:
    pool_id = pools.save_pool(
        engine, actor=users["admin"], name="Tags", kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "Tagville"},
    )  # fmt: skip
    person = candidates.create_candidate(
        engine,
        actor=users["admin"],
        fields={"first_name": "{{email}}", "last_name": "{% for x in y %}", "location": "Tagville",
                "email": "tag@example.com", "company": "{{ 7*7 }}"},
    )  # fmt: skip
    campaign_id = campaigns.save_campaign(
        engine,
        actor=users["admin"],
        draft=campaigns.CampaignDraft(
            name="Tags", audience_pool_id=pool_id,
            steps=[campaigns.StepDraft(subject="Hi {{first_name}}",
                                       body="{{full_name}} at {{company}}")],
        ),
    )  # fmt: skip
    rendered = composer.preview(engine, campaign_id, step=1, candidate_id=person.id)
    assert rendered.subject == "Hi {{email}}"
    assert "{{email}} {% for x in y %} at {{ 7*7 }}" in rendered.text
    assert (
        "tag@example.com" not in rendered.text.split("Unsubscribe")[0] and "49" not in rendered.text
    )


# --- 4. formula injection in every export -----------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","click")'
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _live_cells(data: bytes | str) -> list[str]:
    text_data = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    return [
        cell
        for row in csv.reader(io.StringIO(text_data))
        for cell in row
        if cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell)
    ]


def test_no_export_has_a_cell_a_spreadsheet_would_run(
    users: dict[str, User], engine: Engine
) -> None:
    admin = users["admin"]
    starts = ["=1+1", "+cmd", "-cmd", "@SUM(1)", "\t=1", "\r=1"]
    custom_fields.create_field(engine, actor=admin, label="Github", kind="text")
    person = candidates.create_candidate(
        engine,
        actor=admin,
        fields={"first_name": starts[0], "last_name": starts[1], "email": "f@example.com",
                "title": starts[2], "company": FORMULA, "location": "Formula town",
                "source": starts[3], "skills": ["=skill"], "tags": ["@tag"]},
    )  # fmt: skip
    candidates.update_candidate(
        engine, actor=admin, candidate_id=person.id, expected_version=person.version,
        fields={"custom_fields": {"github": "=IMPORTXML(1)"}},
    )  # fmt: skip
    touchpoints.log_touchpoint(
        engine, actor=admin, candidate_id=person.id, channel="note",
        occurred_at=clock.now() - dt.timedelta(minutes=1), note="-note",
    )  # fmt: skip
    pools.save_pool(
        engine, actor=admin, name="=pool", kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "Formula town"},
    )  # fmt: skip
    when = dt.datetime.combine(clock.today(), dt.time(10), UTC)
    items.save_item(
        engine, actor=admin,
        draft=drafts.ItemDraft(title="@item", channel="linkedin_post", starts_at=when,
                                 body="=body", link="https://x.example/=a"),
    )  # fmt: skip

    def export(scope: exporter.ExportScope) -> bytes:
        return exporter.export_to_bytes(engine, actor=admin, scope=scope)[0]

    exports = {
        "candidates": exporter.export_to_bytes(engine, actor=admin, bom=True)[0],
        "search": export(exporter.ExportScope(text="formula")),
        "pool": export(exporter.ExportScope(pool_name="=pool")),
        "selection": export(exporter.ExportScope(candidate_ids=[person.id])),
        "calendar": files.export_csv(
            engine, start=when - dt.timedelta(days=1), end=when + dt.timedelta(days=1)
        ),
        "person": privacy.export_data_csv(engine, actor=admin, candidate_id=person.id),
    }
    # The audit log holds the export's filter text ("=pool", "formula") as typed.
    export(exporter.ExportScope(text="=1+2"))
    exports["audit"] = audit_log.export_csv(engine, actor=admin)
    bad_rows = b"Title,Channel,Date\r\n=cmd,@nope,+1 day\r\n"
    exports["calendar import report"] = files.import_csv(
        engine, actor=admin, data=bad_rows, filename="x.csv"
    ).error_report_csv()
    for name, data in exports.items():
        assert _live_cells(data) == [], name
    assert b"'" + FORMULA.replace('"', '""').encode() in exports["candidates"]


# --- 5. forged, altered and expired tokens ----------------------------------------------


def test_tokens_are_bound_to_kind_id_and_key() -> None:
    key = TEST_SECRET
    good = tokens.sign("unsubscribe", 42, key=key)
    assert tokens.verify("unsubscribe", good, key=key) == 42
    ident, _, signature = good.partition(".")
    forged = [
        tokens.sign("click", 42, key=key),  # another kind's token
        tokens.sign("unsubscribe", 42, key="another-secret-key-of-some-length"),
        f"43.{signature}",  # the id changed, the signature kept
        f"{ident}.{signature[:-1]}",  # cut short
        f"{ident}.{signature}x",
        f"{ident}{signature}",
        f"-{ident}.{signature}",
        f" {ident}.{signature}",
        "",
        ".",
        f"{'9' * 19}.{signature}",
    ]
    assert [tokens.verify("unsubscribe", token, key=key) for token in forged] == [None] * len(
        forged
    )


@pytest.mark.parametrize(
    "token",
    [
        "².abc",  # superscript two: isdigit() but not int()
        "1.é",
        "1.abc\u00e9",
        "\u0661\u0662.abc",  # Arabic-Indic digits: int() reads them, they are not ours
        "\uff11\uff12.abc",  # full-width digits
        "\U0001d7cf.abc",  # mathematical bold one
        "1\u0663.abc",  # ASCII then a non-ASCII digit
        "1.\uff41\uff42\uff43",  # full-width letters
        "1.abc\x00",
        "\u200b1.abc",  # a zero-width space in front
    ],
)
def test_a_token_with_unicode_digits_or_letters_is_refused_not_a_crash(
    crm_env: str, token: str
) -> None:
    assert [tokens.verify(kind, token) for kind in tokens.KINDS] == [None] * len(tokens.KINDS)
    assert tokens.verify("open", tokens.sign("open", 12) + "\u00e9") is None
    scope = {"type": "http", "method": "GET", "path": f"/o/{token}.gif", "headers": [],
             "query_string": b"", "path_params": {"token": f"{token}.gif"}}  # fmt: skip
    from starlette.requests import Request

    response = asyncio.run(tracking.open_pixel(Request(scope)))
    assert response.status_code == 200 and response.media_type == "image/gif"


# --- 6. every writing service called as a manager ---------------------------------------

# Public functions with an actor that only read: managers may export candidate lists.
READS = {"crm.exporter.export_candidates", "crm.exporter.export_to_bytes"}
# Tested on its own below: it needs a whole campaign file before it gets to the check.
SEPARATE = {"crm.campaigns.import_campaign_file"}
# What every active user may do for themself, managers included.
OWN_ACCOUNT = {"crm.auth.change_own_password"}
# Valid input for functions that check their input before the permission (nothing is
# written before either check).
ARGUMENTS: dict[str, dict[str, Any]] = {
    "crm.auth.create_user": {"username": "mallory", "role": "admin", "password": "long-enough-1"},
    "crm.auth.set_role": {"role": "admin"},
}


def _writers() -> list[tuple[str, Any]]:
    found = []
    for module_info in pkgutil.iter_modules(crm.__path__):
        if module_info.name in {"permissions", "db"}:  # the checks and transactions themselves
            continue
        module = importlib.import_module(f"crm.{module_info.name}")
        for name, function in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(function):
                continue
            if function.__module__ != module.__name__:
                continue
            parameters = inspect.signature(function).parameters
            # Helpers that take the caller's session run inside a service that checked.
            if "actor" in parameters and "session" not in parameters:
                qualified = f"{module.__name__}.{name}"
                if qualified not in READS | SEPARATE:
                    found.append((qualified, function))
    return sorted(found, key=lambda pair: pair[0])


def _call_as(function: Any, qualified: str, engine: Engine, actor: User) -> None:
    arguments: list[Any] = []
    keywords: dict[str, Any] = {"actor": actor}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "actor" or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        value = engine if parameter.name == "engine" else None
        value = ARGUMENTS.get(qualified, {}).get(parameter.name, value)
        if parameter.kind == parameter.KEYWORD_ONLY:
            keywords[parameter.name] = value
        else:
            arguments.append(value)
    function(*arguments, **keywords)


def _not_refused(writers: list[tuple[str, Any]], engine: Engine, actor: User) -> list[str]:
    """Each writing service that did anything but refuse this actor, and what it did."""
    findings = []
    for qualified, function in writers:
        try:
            _call_as(function, qualified, engine, actor)
        except PermissionDenied:
            continue
        except Exception as error:  # any other outcome is the finding
            findings.append(f"{qualified}: {type(error).__name__}: {error}")
        else:
            findings.append(f"{qualified}: returned")
    return findings


def test_every_writing_service_refuses_a_manager(users: dict[str, User], engine: Engine) -> None:
    writers = [(name, function) for name, function in _writers() if name not in OWN_ACCOUNT]
    assert len(writers) > 50  # the introspection found the services
    names = {name for name, _ in writers}
    assert {"crm.engagement.record_reply", "crm.outbox.set_frequency_cap",
            "crm.custom_fields.create_field", "crm.auth.set_active"} <= names  # fmt: skip
    before = _tables_intact(engine)
    assert _not_refused(writers, engine, users["manager"]) == []
    assert _tables_intact(engine) == before


def _change_behind_its_back(engine: Engine, admin: User, stale: User, change: str) -> None:
    if change == "deactivated":
        auth.set_active(engine, actor=admin, user_id=stale.id, active=False)
    elif change == "demoted":
        auth.set_role(engine, actor=admin, user_id=stale.id, role="manager")
    else:  # signed out in another tab: every session of the user ends
        auth.sign_out(engine, {}, stale)


@pytest.mark.parametrize("change", ["deactivated", "demoted", "signed out"])
def test_every_writing_service_refuses_a_user_changed_after_the_page_loaded_them(
    users: dict[str, User], engine: Engine, change: str
) -> None:
    """A dialog or fragment reruns without app.py: the User it holds may say "active
    admin" for someone deactivated, demoted or signed out since. Services trust the row."""
    auth.create_user(
        engine, username="ada2", role="admin", password=PASSWORDS["admin"],
        display_name="Ada Two", actor=users["admin"],
    )  # fmt: skip
    state: dict[str, Any] = {}
    auth.sign_in_session(state, auth.find_user(engine, "ada2"))
    stale = auth.session_user(engine, state)  # as app.py hands it to the page
    assert stale is not None and stale.role == "admin" and stale.signed_in_at is not None
    _change_behind_its_back(engine, users["admin"], stale, change)
    assert stale.active and stale.role == "admin"  # the object still says so
    before = _tables_intact(engine)
    # A manager still changes their own password.
    writers = [w for w in _writers() if change != "demoted" or w[0] not in OWN_ACCOUNT]
    assert _not_refused(writers, engine, stale) == []
    assert _tables_intact(engine) == before


def test_a_write_checks_its_actor_again_inside_its_own_transaction(
    users: dict[str, User], engine: Engine
) -> None:
    """The check before the work and the write can be a moment apart; the write session
    given the actor checks once more after BEGIN, so nothing slips in between."""
    stale = auth.find_user(engine, "recruiter")
    with db.write_session(engine, actor=stale) as session:
        assert session is not None  # an active recruiter writes
    auth.set_role(engine, actor=users["admin"], user_id=stale.id, role="manager")
    with (
        pytest.raises(PermissionDenied, match="read-only"),
        db.write_session(engine, actor=stale),
    ):
        pytest.fail("the transaction must not reach the write")
    with (
        pytest.raises(PermissionDenied, match="Only an admin"),
        db.write_session(engine, actor=users["recruiter"], need="admin"),
    ):
        pytest.fail("the transaction must not reach the write")


def test_a_campaign_file_from_a_manager_is_refused(users: dict[str, User], engine: Engine) -> None:
    """import_campaign_file reads the file first (no write), then save_campaign refuses."""
    from tests.test_campaigns import CAMPAIGN_FILE

    pools.save_pool(
        engine, actor=users["admin"], name="London", kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "London"},
    )  # fmt: skip
    with pytest.raises(PermissionDenied):
        campaigns.import_campaign_file(engine, actor=users["manager"], text=CAMPAIGN_FILE)
    assert campaign_figures.list_campaigns(engine) == []


# --- 7. login throttling ----------------------------------------------------------------


def _sign_in(at: AppTest, username: str, password: str) -> None:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()


def test_repeated_failures_make_sign_in_wait_and_never_lock_for_good(
    users: dict[str, User], engine: Engine
) -> None:
    at = app_as(None).run()
    with time_machine.travel(clock.now(), tick=False) as traveller:
        for _ in range(throttle.FREE_FAILURES):
            _sign_in(at, "recruiter", "wrong-password")
        # Now even the right password waits, and the sentence says for how long.
        _sign_in(at, "recruiter", PASSWORDS["recruiter"])
        assert at.error[0].value == "Too many failed sign-ins; wait 30 seconds and try again."
        at.run()
        assert "Good" not in texts(at)  # still at the sign-in form
        assert not signs_in(engine, "recruiter", PASSWORDS["recruiter"])
        traveller.shift(dt.timedelta(seconds=31))
        # Each failure after the free ones doubles the wait.
        assert not signs_in(engine, "recruiter", "wrong-again")
        traveller.shift(dt.timedelta(seconds=31))
        assert not signs_in(engine, "recruiter", PASSWORDS["recruiter"])
        traveller.shift(dt.timedelta(seconds=30))
        assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])
        assert auth.find_user(engine, "recruiter").failed_login_attempts == 0


def test_an_admin_or_the_operator_lifts_the_wait(users: dict[str, User], engine: Engine) -> None:
    with time_machine.travel(clock.now(), tick=False):
        for _ in range(throttle.FREE_FAILURES):
            assert not signs_in(engine, "recruiter", "wrong-password")
        assert not signs_in(engine, "recruiter", PASSWORDS["recruiter"])
        auth.unlock(engine, actor=users["admin"], user_id=users["recruiter"].id)
        assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])
        for _ in range(throttle.FREE_FAILURES):
            assert not signs_in(engine, "recruiter", "wrong-password")
        with pytest.raises(PermissionDenied):
            auth.unlock(engine, actor=users["recruiter"], user_id=users["recruiter"].id)
        auth.unlock(engine, actor=None, user_id=users["recruiter"].id, as_operator=True)
        assert signs_in(engine, "recruiter", PASSWORDS["recruiter"])


@pytest.mark.parametrize(
    "address, counted",
    [("203.0.113.9", None), ("8.8.4.4", "8.8.4.4"), ("2a00:1450:4001::1", "2a00:1450:4001::1"),
     ("10.0.0.7", None), ("192.168.1.20", None), ("127.0.0.1", None), (None, None),
     ("not an address", None)],
)  # fmt: skip
def test_only_public_client_addresses_are_throttled(
    address: str | None, counted: str | None
) -> None:
    """A proxy's or an office's shared address would let one guesser lock out everyone."""
    assert throttle.public_address(address) == counted


def test_an_unknown_name_gets_the_same_answers_as_a_real_one(
    users: dict[str, User], engine: Engine
) -> None:
    answers: dict[str, list[str]] = {}
    with time_machine.travel(clock.now(), tick=False):
        for name in ("recruiter", "nobody-here"):
            answers[name] = []
            for _ in range(throttle.FREE_FAILURES + 2):
                with pytest.raises(SignInRefused) as refused:
                    auth.password_sign_in(engine, username=name, password="wrong-password")
                answers[name].append(str(refused.value))
    assert answers["recruiter"] == answers["nobody-here"]
    assert answers["recruiter"][0] == "The username or password is incorrect."
    assert answers["recruiter"][-1].startswith("Too many failed sign-ins")


def test_one_client_guessing_across_names_waits_and_others_do_not(
    users: dict[str, User], engine: Engine
) -> None:
    guesser, colleague = "203.0.113.9", "198.51.100.4"
    with time_machine.travel(clock.now(), tick=False):
        for name in ("admin", "manager", "someone", "recruiter", "ghost"):
            with pytest.raises(SignInRefused, match="incorrect"):
                auth.password_sign_in(
                    engine, username=name, password="wrong-password", client=guesser
                )
        with pytest.raises(SignInRefused, match="Too many failed sign-ins"):
            auth.password_sign_in(
                engine, username="manager", password=PASSWORDS["manager"], client=guesser
            )
        user = auth.password_sign_in(
            engine, username="manager", password=PASSWORDS["manager"], client=colleague
        )
        assert user.username == "manager"


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite's page cap stands in for a full disk")
def test_a_full_disk_during_sign_in_is_one_sentence(users: dict[str, User], engine: Engine) -> None:
    """A real SQLITE_FULL: every connection is capped at the file's current size, and the
    audit log's last pages are filled first, so the sign-in's own writes find no room."""

    def cap_at_current_size(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    db.dispose_engines()
    engine.dispose()
    event.listen(Engine, "connect", cap_at_current_size)
    try:
        for _ in range(10_000):  # fill the audit log until SQLite has no page left
            try:
                with db.write_session(engine) as session:
                    audit.record(session, actor=None, action="login", entity="user")
            except DatabaseUnavailable as error:
                assert str(error) == db.DISK_FULL
                break
        else:
            pytest.fail("the cap never filled")
        at = app_as(None).run()
        _sign_in(at, "recruiter", PASSWORDS["recruiter"])
        assert not at.exception
        assert at.error[0].value == db.DISK_FULL
    finally:
        event.remove(Engine, "connect", cap_at_current_size)
        db.dispose_engines()
        engine.dispose()
    assert auth.find_user(engine, "recruiter").last_login_at is None  # nothing half-written


def test_failed_sign_ins_are_counted_from_the_form(users: dict[str, User], engine: Engine) -> None:
    at = app_as(None).run()
    for _ in range(3):
        _sign_in(at, "recruiter", "wrong-password")
    assert not at.exception
    assert at.error[0].value == "The username or password is incorrect."
    assert auth.find_user(engine, "recruiter").failed_login_attempts == 3
    assert auth.find_user(engine, "recruiter").last_failed_login_at is not None


# --- 8. passwords over 72 bytes ---------------------------------------------------------


def test_a_long_password_is_not_truncated_into_a_match(
    users: dict[str, User], engine: Engine
) -> None:
    exact = ("seven lanterns drift over quiet harbours while gulls argue about bread " * 2)[:72]
    auth.set_password(engine, actor=users["admin"], user_id=users["recruiter"].id, password=exact)
    # bcrypt reads only 72 bytes: anything sharing them must not sign in.
    assert not signs_in(engine, "recruiter", exact + "anything")
    assert not auth.password_matches(exact + "x", auth.find_user(engine, "recruiter").password_hash)
    with pytest.raises(ValidationError, match="longer than 72 bytes"):
        auth.set_password(
            engine, actor=users["admin"], user_id=users["recruiter"].id, password="ü" * 37
        )
    assert signs_in(engine, "recruiter", exact)
    at = app_as(None).run()
    _sign_in(at, "recruiter", "x" * 500)
    assert not at.exception and at.error[0].value == "The username or password is incorrect."


# --- 9. cookies after logout and after deactivation -------------------------------------


def test_an_old_cookie_is_refused_after_sign_out_and_deactivation(
    users: dict[str, User], engine: Engine
) -> None:
    """A sign-in cookie is honoured only if issued after the user's sessions were revoked."""
    issued = clock.now() - dt.timedelta(hours=1)
    assert auth._complete_login(engine, "recruiter", issued) is not None
    auth.sign_out(engine, {}, users["recruiter"])
    assert auth._complete_login(engine, "recruiter", issued) is None
    assert auth._complete_login(engine, "recruiter", clock.now()) is not None

    fresh = clock.now()
    auth.set_active(engine, actor=users["admin"], user_id=users["manager"].id, active=False)
    assert auth._complete_login(engine, "manager", fresh + dt.timedelta(days=1)) is None
    cookie = session_cookie.cookie_value("manager", secret=TEST_SECRET, now=clock.now())
    assert auth.cookie_sign_in(engine, cookie, secret=TEST_SECRET) is None


# --- 10. secrets never in logs ----------------------------------------------------------

SECRET = "Sup3r-Secret-pa55"


def test_database_errors_never_show_the_password(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"postgresql+psycopg://crm:{SECRET}@127.0.0.1:1/crm?connect_timeout=2"
    engine = db.create_engine_for(url)
    try:
        assert SECRET not in db.describe(engine.url)
        with pytest.raises(crm.errors.DatabaseUnavailable) as error:
            db.check_connection(engine)
    finally:
        engine.dispose()
    assert SECRET not in str(error.value)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql//crm:{SECRET}@db.example/crm",  # no "://"
        f"postgresql://crm:{SECRET}@[::1/crm",  # unclosed IPv6 bracket: a bare ValueError
        f"postgresql://crm:{SECRET}@db.example:five/crm",  # a port that is not a number
    ],
)
def test_an_unparsable_database_url_is_not_echoed_with_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as error:
        db.parse_url(url)
    assert SECRET not in str(error.value)
    assert str(error.value).startswith("CRM_DATABASE_URL is not a database URL")


def test_a_wrong_smtp_password_is_never_logged_or_stored(
    users: dict[str, User], engine: Engine, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    with FaultySmtpServer(auth=("team", "right-one")) as server:
        for name, value in {
            "CRM_SMTP_HOST": server.host, "CRM_SMTP_PORT": str(server.port),
            "CRM_SMTP_SECURITY": "none", "CRM_SMTP_USER": "team", "CRM_SMTP_PASSWORD": SECRET,
            "CRM_FROM": "talent@acme.example", "CRM_SEND_RATE": "1000",
        }.items():  # fmt: skip
            monkeypatch.setenv(name, value)
        campaign_id = launched(engine, users["admin"], 1)
        report = outbox.deliver_due(engine)
    assert report.problem.startswith("535")
    assert SECRET not in report.problem and SECRET not in caplog.text
    detail = campaigns.get_campaign(engine, campaign_id)
    assert SECRET not in (detail.pause_reason or "")
    with db.read_session(engine) as session:
        for table in _reflect(engine).sorted_tables:
            for row in session.execute(select(table)):
                assert SECRET not in repr(tuple(row)), table.name
    assert TEST_SECRET not in caplog.text


# --- 11. uploads over the limit ---------------------------------------------------------


def test_upload_limits_are_set_and_consistent() -> None:
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    upload_mb = config["server"]["maxUploadSize"]
    assert 0 < upload_mb <= importer.MAX_IMPORT_BYTES // 1_048_576
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"


def test_tables_offer_no_download_that_bypasses_the_exporter() -> None:
    """Every st.dataframe has a toolbar "Download as CSV" (formulas kept, nothing audited)
    unless data export is off for the whole app (`crm serve` runs with this config; the
    browser journey checks the toolbar: tests/e2e/test_smoke.py)."""
    config = tomllib.loads((PROJECT_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


def test_a_calendar_import_over_the_limit_is_refused(
    users: dict[str, User], engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_IMPORT_BYTES", 1024)
    data = b"Title,Channel,Date\r\n" + b"Post,LinkedIn post,2027-01-05\r\n" * 100
    with pytest.raises(InputUnusable, match="at most 0 MB|at most"):
        files.import_csv(engine, actor=users["admin"], data=data, filename="big.csv")
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 0


# --- the matrix names real tests --------------------------------------------------------


def test_every_test_named_in_the_security_matrix_exists() -> None:
    doc = (PROJECT_ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert len(named) >= 11
    missing = []
    for path, function in named:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        if not inspect.isfunction(getattr(module, function, None)):
            missing.append(f"{path}::{function}")
    assert missing == []
