"""CSV import: files people bring, dedupe, duplicates policy, suppression, undo, the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from crm import candidates, db, identity, importer
from crm.candidate_fields import split_list
from crm.cli import app
from crm.errors import CrmError, InputUnusable, NotFound, PermissionDenied, ValidationError
from crm.importer import ImportOptions
from crm.imports import candidate_writer, parsing
from crm.models import (
    Activity,
    AuditLog,
    Candidate,
    CandidateTag,
    ImportBatch,
    ImportChange,
    SavedMapping,
    Suppression,
    User,
)
from tests.conftest import BACKEND
from tests.test_candidates import while_another_transaction_adds

runner = CliRunner()

LINKEDIN = (
    "Notes:\r\n"
    '"When exporting your connection data, you may notice that some of the email addresses are '
    "missing. You will only see email addresses for connections who have allowed their "
    "connections to see or download their email address using this setting "
    "https://www.linkedin.com/psettings/privacy/email. To learn more, visit "
    'https://www.linkedin.com/help/linkedin/answer/261"\r\n'
    "\r\n"
    "First Name,Last Name,URL,Email Address,Company,Position,Connected On\r\n"
    "Ana,Lima,https://www.linkedin.com/in/ana-lima,,Acme,Engineer,12 Mar 2024\r\n"
    "Bo,Berg,https://www.linkedin.com/in/bo-berg,bo@example.com,Beta,PM,01 Jan 2025\r\n"
    "Cy,Bad,https://www.linkedin.com/in/cy,not-an-email,Gamma,CTO,01 Jan 2025\r\n"
    "Di,Nolink,,,Delta,CEO,01 Jan 2025\r\n"
)


def csv_bytes(rows: list[list[str]], *, encoding: str = "utf-8", delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def counts(engine: Engine) -> tuple[int, int, int, int]:
    with db.read_session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(model))
            for model in (Candidate, ImportBatch, Activity, CandidateTag)
        )


def people(engine: Engine) -> dict[str, Candidate]:
    """Everyone, keyed by email (or LinkedIn key), with skills and tags loaded."""
    with db.read_session(engine) as session:
        found = session.scalars(select(Candidate)).all()
        return {(c.email_normalized or c.linkedin_normalized or ""): c for c in found}


def run(engine: Engine, actor: User, data: bytes | Path, **options: Any) -> importer.ImportResult:
    filename = options.pop("filename", "people.csv")
    return importer.run_import(
        engine, data, ImportOptions(**options), actor=actor, filename=filename
    )


def add_person(engine: Engine, **fields: Any) -> int:
    skills = fields.pop("skills", [])
    tags = fields.pop("tags", [])
    with db.write_session(engine) as session:
        candidate = Candidate(**fields)
        candidate.skills = list(skills)
        candidate.tags = [CandidateTag(tag=t) for t in tags]
        session.add(candidate)
        session.flush()
        return candidate.id


@pytest.fixture
def admin(users: dict[str, User]) -> User:
    return users["admin"]


# --- files that cannot be imported ------------------------------------------------------

BAD_FILES = {
    "empty": (b"", "empty"),
    "header only": (b"First Name,Last Name,Email\r\n", "no data rows"),
    "binary": (bytes(range(256)) * 40, "binary"),
    "xlsx renamed": (b"PK\x03\x04\x14\x00\x06\x00\x08\x00" + b"\x00" * 200, "zip"),
    "zip": (b"PK\x03\x04" + b"\x01" * 200, "zip"),
    "unterminated quote": (
        b'First Name,Email\r\nAna,ana@example.com\r\nBo,"bo@example.com\r\nCy,c@example.com\r\n',
        "never closed",
    ),
    "nothing useful": (b"Colour,Size\r\nred,XL\r\n", "None of the file's columns"),
    "no identity column": (b"First Name,Company\r\nAna,Acme\r\n", "email address or a LinkedIn"),
    "no name column": (b"Email,Company\r\nana@example.com,Acme\r\n", "No column holds a name"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_an_unusable_file_is_one_sentence_and_changes_nothing(
    engine: Engine, admin: User, tmp_path: Path, case: str
) -> None:
    data, words = BAD_FILES[case]
    add_person(
        engine, first_name="Old", email="old@example.com", email_normalized="old@example.com"
    )
    before = counts(engine)
    for source in (data, tmp_path / "file.csv"):
        if isinstance(source, Path):
            source.write_bytes(data)
        with pytest.raises(InputUnusable) as caught:
            run(engine, admin, source)
        message = str(caught.value)
        assert words in message
        assert "\n" not in message and message.endswith(".")
        with pytest.raises(InputUnusable):
            importer.preview(engine, source, ImportOptions())
    assert counts(engine) == before


def test_undecodable_bytes_in_the_chosen_encoding(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Name", "Email"], ["Zoë Lima", "zoe@example.com"]], encoding="cp1252")
    with pytest.raises(InputUnusable, match="cannot be read as UTF-8"):
        run(engine, admin, data, encoding="utf-8")
    assert counts(engine)[:2] == (0, 0)


def test_a_file_over_the_size_limit(
    engine: Engine, admin: User, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "MAX_IMPORT_BYTES", 1024 * 1024)
    path = tmp_path / "big.csv"
    path.write_bytes(b"Name,Email\r\n" + b"Ana Lima,ana@example.com\r\n" * 50_000)
    with pytest.raises(InputUnusable, match=r"at most 1 MB"):
        run(engine, admin, path)
    assert importer.MAX_IMPORT_BYTES == 1024 * 1024
    assert counts(engine)[:2] == (0, 0)


def test_a_fault_deep_in_a_file_rolls_the_whole_import_back(
    engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    rows = [["Name", "Email"]] + [[f"P {n}", f"p{n}@example.com"] for n in range(9)]
    data = csv_bytes(rows) + b'Late,"late@example.com\r\n'
    with pytest.raises(InputUnusable, match="never closed"):
        run(engine, admin, data)
    assert counts(engine)[:2] == (0, 0)


def test_a_missing_file_and_bad_options(engine: Engine, admin: User, tmp_path: Path) -> None:
    with pytest.raises(InputUnusable, match="No such file"):
        run(engine, admin, tmp_path / "nope.csv")
    data = csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]])
    with pytest.raises(ValidationError):
        run(engine, admin, data, on_duplicate="merge")
    with pytest.raises(ValidationError):
        run(engine, admin, data, consent_status="maybe")
    with pytest.raises(InputUnusable, match="not a field"):
        run(engine, admin, data, mapping={"Email": "e-mail"})


# --- encodings, delimiters, exports -----------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_encodings_and_delimiters(
    engine: Engine, admin: User, encoding: str, delimiter: str
) -> None:
    data = csv_bytes(
        [
            ["First Name", "Last Name", "Email", "Company"],
            ["Zoë", "Müller", "zoe@example.com", "€uro Straße; GmbH, Köln"],
        ],
        encoding=encoding,
        delimiter=delimiter,
    )
    result = run(engine, admin, data)
    assert (result.created, result.errors) == (1, 0)
    zoe = people(engine)["zoe@example.com"]
    assert (zoe.first_name, zoe.last_name, zoe.company) == (
        "Zoë",
        "Müller",
        "€uro Straße; GmbH, Köln",
    )


def test_linkedin_connections_with_notes_before_the_header(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    path = tmp_path / "Connections.csv"
    path.write_text(LINKEDIN, encoding="utf-8")
    shape = importer.inspect_file(path)
    assert (shape.header_line, shape.data_rows) == (3, 4)
    result = importer.run_import(
        engine, path, ImportOptions(), actor=admin, filename="Connections.csv"
    )
    assert (result.read, result.created, result.errors) == (4, 2, 2)
    assert [(p.line, p.column) for p in result.problems] == [
        (7, "Email Address"),
        (8, "Email Address"),
    ]
    assert "not a valid email address" in result.problems[0].problem
    assert "LinkedIn profile URL is required" in result.problems[1].problem
    found = people(engine)
    ana = found["linkedin.com/in/ana-lima"]
    assert (ana.email, ana.title, ana.company) == (None, "Engineer", "Acme")
    assert found["bo@example.com"].linkedin_url == "https://www.linkedin.com/in/bo-berg"
    with db.read_session(engine) as session:
        activity = session.scalars(
            select(Activity).where(Activity.candidate_id == ana.id, Activity.kind == "import")
        ).one()
    assert activity.summary == "Imported from Connections.csv (connected on 12 Mar 2024)"
    assert activity.details == {"batch_id": result.batch_id, "connected_on": "12 Mar 2024"}
    assert activity.actor_id == admin.id
    imports = [e for e in candidates.timeline(engine, ana.id) if e.kind == "import"]
    assert [e.summary for e in imports] == [activity.summary]  # not twice


def test_the_timeline_shows_the_import_of_a_person_it_created(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]])
    result = run(engine, admin, data, filename="spring fair.csv")
    ana = people(engine)["ana@example.com"]
    (entry,) = candidates.timeline(engine, ana.id)
    assert (entry.kind, entry.summary, entry.actor) == (
        "import",
        "Imported from spring fair.csv",
        admin.display_name,
    )
    with db.read_session(engine) as session:
        batch = session.get(ImportBatch, result.batch_id)
        assert batch is not None and entry.at == batch.created_at


def test_google_contacts_current_and_older_layouts(engine: Engine, admin: User) -> None:
    current = csv_bytes(
        [
            [
                "First Name",
                "Middle Name",
                "Last Name",
                "Nickname",
                "Organization Name",
                "Organization Title",
                "Notes",
                "Labels",
                "E-mail 1 - Label",
                "E-mail 1 - Value",
                "Phone 1 - Label",
                "Phone 1 - Value",
            ],
            [
                "Ana",
                "",
                "Lima",
                "",
                "Acme",
                "CTO",
                "Met at PyCon",
                "* myContacts ::: Speakers ::: Python",
                "* Work",
                "ana@example.com",
                "Mobile",
                "+44 20 7946 0000",
            ],
        ]
    )
    older = csv_bytes(
        [
            [
                "Name",
                "Given Name",
                "Family Name",
                "Group Membership",
                "E-mail 1 - Type",
                "E-mail 1 - Value",
                "Organization 1 - Name",
                "Organization 1 - Title",
            ],
            ["Bo Berg", "Bo", "Berg", "* myContacts", "* Home", "bo@example.com", "Beta", "PM"],
        ]
    )
    assert run(engine, admin, current).created == 1
    assert run(engine, admin, older).created == 1
    found = people(engine)
    ana, bo = found["ana@example.com"], found["bo@example.com"]
    assert (ana.company, ana.title, ana.phone) == ("Acme", "CTO", "+44 20 7946 0000")
    assert sorted(t.tag for t in ana.tags) == ["python", "speakers"]
    assert (bo.first_name, bo.last_name, bo.title, bo.tags) == ("Bo", "Berg", "PM", [])


def test_outlook_ats_german_and_french_files(engine: Engine, admin: User) -> None:
    outlook = csv_bytes(
        [
            ["First Name", "Last Name", "Title", "E-mail Address", "Company", "Job Title"],
            ["Cy", "Cole", "Mr.", "cy@example.com", "Gamma", "Data Engineer"],
        ]
    )
    ats = csv_bytes(
        [
            [
                "Candidate Name",
                "Email",
                "Phone",
                "Current Company",
                "Current Title",
                "Location",
                "Tags",
                "Source",
            ],
            [
                "Lima, Dana",
                "dana@example.com",
                "0151 2345678",
                "Delta",
                "SRE",
                "Berlin",
                "silver medalist; referral",
                "Greenhouse",
            ],
        ]
    )
    german = csv_bytes(
        [
            ["Vorname", "Nachname", "E-Mail-Adresse", "Unternehmen", "Berufsbezeichnung", "Ort"],
            ["Jürgen", "Groß", "juergen@example.de", "Müller AG", "Entwickler", "München"],
        ],
        encoding="cp1252",
        delimiter=";",
    )
    french = csv_bytes(
        [["Prénom", "Nom", "Courriel", "Entreprise", "Poste", "Ville", "Compétences"]]
        + [["Éloïse", "Lefèvre", "eloise@example.fr", "Société X", "Cheffe", "Lyon", "Go, SQL"]],
        encoding="utf-8-sig",
        delimiter=";",
    )
    for data in (outlook, ats, german, french):
        result = run(engine, admin, data)
        assert (result.created, result.errors) == (1, 0), result.problems
    found = people(engine)
    assert found["cy@example.com"].title == "Data Engineer"
    dana = found["dana@example.com"]
    assert (dana.first_name, dana.last_name, dana.location, dana.source) == (
        "Dana",
        "Lima",
        "Berlin",
        "Greenhouse",
    )
    assert sorted(t.tag for t in dana.tags) == ["referral", "silver medalist"]
    juergen = found["juergen@example.de"]
    assert (juergen.first_name, juergen.last_name, juergen.company) == (
        "Jürgen",
        "Groß",
        "Müller AG",
    )
    eloise = found["eloise@example.fr"]
    assert (eloise.first_name, eloise.location) == ("Éloïse", "Lyon")
    assert sorted(eloise.skills) == ["go", "sql"]


def test_our_own_export_imports_back_unchanged(engine: Engine, admin: User) -> None:
    data = csv_bytes(
        [
            ["first_name", "last_name", "email", "phone", "remote", "years_experience", "skills"],
            ["Ana", "Lima", "ana@example.com", "'+44 20 7946 0000", "yes", "7", "python; sql"],
        ]
    )
    assert run(engine, admin, data).created == 1
    ana = people(engine)["ana@example.com"]
    assert (ana.phone, ana.remote, ana.years_experience) == ("+44 20 7946 0000", True, 7)


# --- new people -------------------------------------------------------------------------


def test_new_people_get_owner_batch_source_and_consent(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Name", "Email", "Source"], ["Ana Lima", "ana@example.com", "Meetup"]])
    result = run(engine, admin, data, consent_status="consented", filename="meetup.csv")
    ana = people(engine)["ana@example.com"]
    assert ana.owner_id == admin.id and ana.import_batch_id == result.batch_id
    assert ana.source == "Meetup"  # no source for the whole import: the column's
    assert ana.consent_status == "consented"
    assert ana.consent_at is not None and ana.consent_at.tzinfo is not None
    assert ana.consent_source == "CSV import: meetup.csv"
    assert (ana.version, ana.custom_fields, ana.remote) == (1, {}, False)
    assert ana.created_at == ana.updated_at and ana.created_at.tzinfo == dt.UTC
    data = csv_bytes([["Name", "Email", "Source"], ["Bo Berg", "bo@example.com", "Meetup"]])
    run(engine, admin, data, source="LinkedIn search", consent_status="do_not_contact")
    bo = people(engine)["bo@example.com"]
    assert (bo.source, bo.consent_status, bo.consent_at) == (
        "LinkedIn search",
        "do_not_contact",
        None,
    )


def test_a_suppressed_address_is_imported_as_do_not_contact(engine: Engine, admin: User) -> None:
    with db.write_session(engine) as session:
        session.add(Suppression(address_hash=identity.address_hash("ana@example.com"), reason="x"))
    data = csv_bytes(
        [["Name", "Email"], ["Ana Lima", "Ana@Example.com"], ["Bo Berg", "bo@example.com"]]
    )
    preview = importer.preview(engine, data, ImportOptions(consent_status="consented"))
    assert "suppression list" in preview.sample[0]["problems"][0]
    run(engine, admin, data, consent_status="consented")
    found = people(engine)
    ana = found["ana@example.com"]
    assert (ana.consent_status, ana.consent_at) == ("do_not_contact", None)
    assert found["bo@example.com"].consent_status == "consented"


def test_html_and_script_are_stored_as_plain_text(engine: Engine, admin: User) -> None:
    evil = "<script>alert('x')</script><b>Boss</b>"
    data = csv_bytes(
        [
            ["Name", "Email", "Title", "Notes", "Skills"],
            ["<img src=x onerror=alert(1)>", "ana@example.com", evil, "<a href=x>hi</a>", "<i>go"],
        ]
    )
    run(engine, admin, data)
    ana = people(engine)["ana@example.com"]
    assert (ana.first_name, ana.last_name) == ("<img", "src=x onerror=alert(1)>")
    assert ana.title == evil
    assert ana.skills == ["<i>go"]
    with db.read_session(engine) as session:
        summary = session.scalar(select(Activity.summary).where(Activity.kind == "import"))
    assert summary == "Imported from people.csv: <a href=x>hi</a>"


def test_row_problems_are_reported_with_lines_and_columns(engine: Engine, admin: User) -> None:
    data = (
        b"Name,Email,Title,Company\r\n"
        b"Ana Lima,ana@example.com,Engineer,Acme\r\n"
        b"Bo Berg,not an email,PM,Beta\r\n"
        b",cy@example.com,CTO,Gamma\r\n"
        b'Di Dunn,di@example.com,"Head\nof Data",Delta\r\n'
        b"Ed Eng,ed@example.com,x,Epsilon,extra,cells\r\n"
        b"Fi Fox,fi@example.com\r\n"
        b"Gus Grey,gus@example.com," + b"T" * 200 + b",G\r\n"
    )
    result = run(engine, admin, data)
    assert (result.read, result.created, result.errors) == (7, 2, 5)
    assert [(p.line, p.column) for p in result.problems] == [
        (3, "Email"),
        (4, "Name"),
        (5, "Title"),
        (7, ""),
        (9, "Title"),
    ]
    report = list(csv.reader(io.StringIO(result.error_report_csv())))
    assert report[0] == ["row", "column", "problem"]
    assert report[3] == ["5", "Title", "The title contains a line break."]
    assert "longer than 160" in report[5][2]
    assert "6 values but the header has 4 columns" in report[4][2]
    assert importer.error_report(engine, result.batch_id) == result.error_report_csv()
    assert result.as_json() == {
        "read": 7,
        "created": 2,
        "updated": 0,
        "duplicates": 0,
        "errors": 5,
        "error_report": result.error_report_csv(),
    }
    assert set(people(engine)) == {"ana@example.com", "fi@example.com"}  # fewer cells: fine


def test_a_url_the_url_parser_chokes_on_refuses_only_its_row(engine: Engine, admin: User) -> None:
    data = csv_bytes(
        [
            ["Name", "LinkedIn"],
            ["Ana Lima", "https://[www.linkedin.com/in/ana"],
            ["Bo Berg", "https://www.linkedin.com/in/bo"],
        ]
    )
    result = run(engine, admin, data)
    assert (result.created, result.errors) == (1, 1)
    assert (result.problems[0].line, result.problems[0].column) == (2, "LinkedIn")


def test_report_cells_cannot_become_spreadsheet_formulas(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Name", "=cmd|' /C calc'!A0"], ["Ana Lima", "x"]])
    result = run(engine, admin, data, mapping={"=cmd|' /C calc'!A0": "email"})
    assert result.errors == 1
    assert "\n2,'=cmd" in result.error_report_csv()


# --- who is who -------------------------------------------------------------------------


def test_the_same_person_twice_in_a_file_is_one_record(
    engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)  # duplicates across chunks too
    data = csv_bytes(
        [
            ["Name", "Email", "LinkedIn", "Title", "Company", "Skills"],
            ["Ana Lima", "ana@example.com", "", "Engineer", "", ""],
            ["Bo Berg", "", "linkedin.com/in/bo", "", "", ""],
            ["Ana L.", "ANA@example.com", "https://uk.linkedin.com/in/ana/", "CTO", "Acme", "go"],
            ["Ana Again", "", "https://www.linkedin.com/in/ana", "", "", "rust"],
            ["Bo Berg", "bo@example.com", "linkedin.com/in/bo/", "PM", "", ""],
            ["Cy Cole", "cy@example.com", "", "", "", ""],
        ]
    )
    preview = importer.preview(engine, data, ImportOptions())
    result = run(engine, admin, data)
    assert (result.read, result.created, result.duplicates, result.errors) == (6, 3, 3, 0)
    assert (preview.new, preview.updates, preview.duplicates, preview.errors) == (3, 0, 3, 0)
    assert [row["outcome"] for row in preview.sample] == ["new", "new", "duplicate"] + [
        "duplicate",
        "duplicate",
        "new",
    ]
    found = people(engine)
    assert len(found) == 3
    ana = found["ana@example.com"]
    # The first row wins; later rows only fill what was still empty.
    assert (ana.first_name, ana.title, ana.company) == ("Ana", "Engineer", "Acme")
    assert ana.linkedin_normalized == "linkedin.com/in/ana"
    assert ana.skills == ["go"]
    assert found["bo@example.com"].linkedin_normalized == "linkedin.com/in/bo"
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ImportChange)) == 0


def test_people_already_here_are_found_by_email_or_linkedin(engine: Engine, admin: User) -> None:
    add_person(
        engine, first_name="Ana", email="ana@example.com", email_normalized="ana@example.com"
    )
    add_person(
        engine,
        first_name="Bo",
        linkedin_url="https://www.linkedin.com/in/bo",
        linkedin_normalized="linkedin.com/in/bo",
    )
    data = csv_bytes(
        [
            ["Name", "Email", "LinkedIn"],
            ["Ana Lima", "ANA@EXAMPLE.COM", ""],
            ["Bo Berg", "bo@example.com", "http://linkedin.com/in/BO?trk=x"],
            ["Cy Cole", "cy@example.com", ""],
            ["Mixed Up", "ana@example.com", "linkedin.com/in/bo"],
        ]
    )
    result = run(engine, admin, data)
    assert (result.created, result.updated, result.duplicates, result.errors) == (1, 0, 2, 1)
    assert "two people" in result.problems[0].problem and result.problems[0].line == 5
    assert len(people(engine)) == 3


# --- people already here: skip, fill in, update -----------------------------------------

CONSENT_AT = dt.datetime(2025, 1, 2, 3, 4, tzinfo=dt.UTC)
UNSUBSCRIBED_AT = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)


@pytest.fixture
def ana(engine: Engine) -> int:
    return add_person(
        engine,
        first_name="Ana",
        last_name="Lima",
        email="ana@example.com",
        email_normalized="ana@example.com",
        title="Engineer",
        company=None,
        consent_status="consented",
        consent_at=CONSENT_AT,
        consent_source="Form",
        consent_note="Said yes at the meetup",
        unsubscribed_at=UNSUBSCRIBED_AT,
        skills=["python"],
        tags=["alumni"],
    )


UPDATE_FILE = csv_bytes(
    [
        ["First Name", "Last Name", "Email", "LinkedIn", "Title", "Company", "Skills", "Tags"],
        ["Ana", "", "ana@example.com", "linkedin.com/in/ana", "CTO", "Acme", "go, rust", ""],
    ]
)


def consent_of(candidate: Candidate) -> tuple[Any, ...]:
    return (
        candidate.consent_status,
        candidate.consent_at,
        candidate.consent_source,
        candidate.consent_note,
        candidate.unsubscribed_at,
    )


CONSENT = ("consented", CONSENT_AT, "Form", "Said yes at the meetup", UNSUBSCRIBED_AT)


def test_skip_leaves_people_already_here_alone(engine: Engine, admin: User, ana: int) -> None:
    result = run(engine, admin, UPDATE_FILE, consent_status="do_not_contact")
    assert (result.created, result.updated, result.duplicates) == (0, 0, 1)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company, person.linkedin_normalized, person.version) == (
        "Engineer",
        None,
        None,
        1,
    )
    assert consent_of(person) == CONSENT


def test_update_empty_fills_only_empty_fields(engine: Engine, admin: User, ana: int) -> None:
    result = run(engine, admin, UPDATE_FILE, on_duplicate="update_empty")
    assert (result.updated, result.duplicates) == (1, 0)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company, person.last_name) == ("Engineer", "Acme", "Lima")
    assert person.linkedin_normalized == "linkedin.com/in/ana"
    assert person.skills == ["python"]  # not empty: kept
    assert (person.version, person.updated_by_id) == (2, admin.id)
    assert consent_of(person) == CONSENT


def test_update_all_never_touches_consent_or_unsubscribe(
    engine: Engine, admin: User, ana: int
) -> None:
    result = run(engine, admin, UPDATE_FILE, on_duplicate="update_all", consent_status="consented")
    assert (result.updated, result.duplicates) == (1, 0)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company) == ("CTO", "Acme")
    assert person.last_name == "Lima"  # a blank cell never erases
    assert sorted(person.skills) == ["go", "rust"]
    assert [t.tag for t in person.tags] == ["alumni"]
    assert consent_of(person) == CONSENT
    again = run(engine, admin, UPDATE_FILE, on_duplicate="update_all")
    assert (again.updated, again.duplicates) == (0, 1)  # nothing left to change


def test_undo_removes_what_was_created_and_restores_what_changed(
    engine: Engine, admin: User, ana: int
) -> None:
    data = UPDATE_FILE + csv_bytes([["Bo", "Berg", "bo@example.com", "", "PM", "", "", "x"]])
    result = run(engine, admin, data, on_duplicate="update_all")
    assert (result.created, result.updated) == (1, 1)
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ImportChange)) == 1
    removed, restored = importer.undo_import(engine, actor=admin, batch_id=result.batch_id)
    assert (removed, restored) == (1, 1)
    found = people(engine)
    assert list(found) == ["ana@example.com"]
    person = found["ana@example.com"]
    assert (person.title, person.company, person.linkedin_normalized) == ("Engineer", None, None)
    assert person.skills == ["python"]
    assert [t.tag for t in person.tags] == ["alumni"]
    assert consent_of(person) == CONSENT
    assert person.version == 3
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).where(Activity.kind == "import")) == 0
        batch = session.get(ImportBatch, result.batch_id)
        assert batch is not None and batch.undone_at is not None
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions[-2:] == ["import", "import.undo"]
    (summary,) = importer.list_batches(engine)
    assert (summary.can_undo, summary.created_by, summary.created) == (False, "Ada Admin", 1)
    with pytest.raises(ValidationError, match="already undone") as twice:
        importer.undo_import(engine, actor=admin, batch_id=result.batch_id)
    assert str(twice.value).count(".") == 1 or str(twice.value).endswith("UTC.")
    with pytest.raises(NotFound):
        importer.undo_import(engine, actor=admin, batch_id=999)


def test_undo_keeps_a_field_changed_since_the_import(engine: Engine, admin: User, ana: int) -> None:
    result = run(engine, admin, UPDATE_FILE, on_duplicate="update_all")
    with db.write_session(engine) as session:
        candidate = session.get(Candidate, ana)
        assert candidate is not None
        candidate.title = "VP Engineering"
    importer.undo_import(engine, actor=admin, batch_id=result.batch_id)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company) == ("VP Engineering", None)


def test_undo_of_updates_spread_over_chunks_and_rows(
    engine: Engine, admin: User, ana: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 1)
    data = csv_bytes(
        [
            ["First Name", "Email", "Title", "Company", "Location", "Tags"],
            ["Ana", "ana@example.com", "CTO", "", "", ""],
            ["Ana", "ana@example.com", "", "Acme", "Porto", "speaker"],
        ]
    )
    result = run(engine, admin, data, on_duplicate="update_all")
    assert (result.updated, result.duplicates) == (1, 1)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company, person.location) == ("CTO", "Acme", "Porto")
    assert [t.tag for t in person.tags] == ["alumni"]  # has tags: the later row adds none
    importer.undo_import(engine, actor=admin, batch_id=result.batch_id)
    person = people(engine)["ana@example.com"]
    assert (person.title, person.company, person.location) == ("Engineer", None, None)


def test_undo_in_either_order_when_a_later_import_updated_new_people(
    engine: Engine, admin: User
) -> None:
    first = run(engine, admin, csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]]))
    second = run(
        engine,
        admin,
        csv_bytes([["Name", "Email", "Title"], ["Ana Lima", "ana@example.com", "CTO"]]),
        on_duplicate="update_all",
    )
    assert (second.updated, people(engine)["ana@example.com"].title) == (1, "CTO")
    assert importer.undo_import(engine, actor=admin, batch_id=first.batch_id) == (1, 0)
    assert importer.undo_import(engine, actor=admin, batch_id=second.batch_id) == (0, 0)
    assert people(engine) == {}


def test_a_clash_with_a_concurrent_writer_is_one_sentence(
    engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import IntegrityError

    def clash(*_args: Any, **_kwargs: Any) -> None:
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    monkeypatch.setattr(importer, "_run", clash)
    data = csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]])
    with pytest.raises(CrmError, match="rolled back .* import the file again"):
        run(engine, admin, data)
    assert counts(engine)[:2] == (0, 0)


@pytest.mark.skipif(BACKEND != "postgres", reason="COPY, PostgreSQL's way of writing rows")
def test_an_import_racing_another_for_the_same_new_address_is_rolled_back_with_the_sentence(
    engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another transaction holds Ana uncommitted: the import cannot see her, so its COPY of
    her waits on the unique key and is refused when she is committed; the whole import,
    Bo copied in the chunk before hers included, is rolled back with the sentence."""
    monkeypatch.setattr(importer, "CHUNK_ROWS", 1)
    data = csv_bytes([["Name", "Email"], ["Bo Berg", "bo@example.com"], ["Ana", "ana@example.com"]])
    ana = {"first_name": "Ana", "email": "ana@example.com", "email_normalized": "ana@example.com"}
    with pytest.raises(
        CrmError,
        match=r"^The import was rolled back because someone added or changed one of these "
        r"people while it ran; import the file again\.$",
    ):
        while_another_transaction_adds(engine, ana, lambda: run(engine, admin, data))
    assert list(people(engine)) == ["ana@example.com"]
    assert counts(engine) == (1, 0, 0, 0)  # one person, no batch, no activity, no tag


# --- preview, dry run, history ----------------------------------------------------------


def test_preview_and_dry_run_write_nothing_and_agree_with_the_import(
    engine: Engine, admin: User, ana: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    data = UPDATE_FILE + csv_bytes(
        [
            ["Bo", "Berg", "bo@example.com", "", "PM", "", "", ""],
            ["Bo", "B.", "", "linkedin.com/in/bo", "", "", "", ""],
            ["Bo", "", "", "linkedin.com/in/bo", "", "", "", ""],
            ["Cy", "", "cy@example.com", "linkedin.com/in/ana", "", "", "", ""],
            ["Di", "", "bad", "", "", "", "", ""],
        ]
    )
    options = ImportOptions(on_duplicate="update_all")
    before = counts(engine)
    preview = importer.preview(engine, data, options, limit=3)
    dry = importer.run_import(
        engine, data, options, actor=admin, filename="people.csv", dry_run=True
    )
    assert counts(engine) == before
    assert dry.batch_id is None
    assert len(preview.sample) == 3 and preview.shape.data_rows == 6
    assert preview.sample[0]["outcome"] == "update" and preview.sample[0]["title"] == "CTO"
    real = importer.run_import(engine, data, options, actor=admin, filename="people.csv")
    expected = (real.created, real.updated, real.duplicates, real.errors)
    # Cy's row names Ana's LinkedIn (which the first row gave her): Ana again, a duplicate.
    assert expected == (2, 1, 2, 1)
    assert (preview.new, preview.updates, preview.duplicates, preview.errors) == expected
    assert (dry.created, dry.updated, dry.duplicates, dry.errors) == expected
    assert [p.line for p in preview.problems] == [p.line for p in real.problems] == [7]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["", "a@x.com", "b@x.com", "c@x.com"]),
            st.sampled_from(["", "linkedin.com/in/a", "linkedin.com/in/b", "linkedin.com/in/d"]),
            st.sampled_from(["", "CTO", "PM"]),
        ),
        min_size=1,
        max_size=12,
    ),
    mode=st.sampled_from(importer.ON_DUPLICATE),
    chunk=st.integers(1, 4),
)
def test_a_dry_run_counts_what_the_import_does(
    engine: Engine, admin: User, rows: list[tuple[str, str, str]], mode: str, chunk: int
) -> None:
    """Whatever the rows, chunking and choice, the preview's counts are the import's."""
    with db.write_session(engine) as session:
        for model in (ImportChange, Activity, Candidate, ImportBatch):
            session.execute(model.__table__.delete())
    add_person(engine, first_name="A", email="a@x.com", email_normalized="a@x.com")
    add_person(engine, first_name="D", linkedin_url="x", linkedin_normalized="linkedin.com/in/d")
    data = csv_bytes([["Name", "Email", "LinkedIn", "Title"]] + [["P Q", *row] for row in rows])
    options = ImportOptions(on_duplicate=mode)
    with mock.patch.object(importer, "CHUNK_ROWS", chunk):
        preview = importer.preview(engine, data, options)
        real = importer.run_import(engine, data, options, actor=admin, filename="p.csv")
    assert (preview.new, preview.updates, preview.duplicates, preview.errors) == (
        real.created,
        real.updated,
        real.duplicates,
        real.errors,
    )
    with db.read_session(engine) as session:
        total = session.scalar(select(func.count()).select_from(Candidate))
    assert total == 2 + real.created
    importer.undo_import(engine, actor=admin, batch_id=real.batch_id)
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Candidate)) == 2


def test_progress_is_reported_per_chunk(
    engine: Engine, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "CHUNK_ROWS", 10)
    data = csv_bytes([["Name", "Email"]] + [[f"P {n}", f"p{n}@example.com"] for n in range(45)])
    seen: list[float] = []
    importer.run_import(
        engine, data, ImportOptions(), actor=admin, filename="p.csv", progress=seen.append
    )
    assert len(seen) == 5 and seen == sorted(seen) and seen[-1] == 1.0


def test_the_batch_records_who_when_what_and_how(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Name", "E-mail"], ["Ana Lima", "ana@example.com"], ["Bo", "x"]])
    result = run(engine, admin, data, filename="export (1).csv", source="Fair")
    with db.read_session(engine) as session:
        batch = session.get(ImportBatch, result.batch_id)
    assert batch is not None
    assert (batch.kind, batch.filename, batch.created_by_id) == (
        "candidates",
        "export (1).csv",
        admin.id,
    )
    assert (batch.rows_read, batch.created_count, batch.error_count) == (2, 1, 1)
    assert (batch.updated_count, batch.duplicate_count, batch.undone_at) == (0, 0, None)
    assert batch.error_report and batch.error_report.startswith("row,column,problem")
    assert batch.options is not None
    assert batch.options["mapping"] == {"Name": "full_name", "E-mail": "email"}
    assert (batch.options["source"], batch.options["encoding"]) == ("Fair", "utf-8")


def test_a_manager_is_refused_before_anything_is_read(
    engine: Engine, users: dict[str, User], tmp_path: Path
) -> None:
    missing = tmp_path / "not-even-there.csv"
    with pytest.raises(PermissionDenied, match="read-only"):
        run(engine, users["manager"], missing)
    data = csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]])
    with pytest.raises(PermissionDenied):
        importer.run_import(
            engine, data, ImportOptions(), actor=users["manager"], filename="x", dry_run=True
        )
    result = run(engine, users["recruiter"], data)
    with pytest.raises(PermissionDenied):
        importer.undo_import(engine, actor=users["manager"], batch_id=result.batch_id)
    with pytest.raises(PermissionDenied):
        importer.save_mapping(
            engine, actor=users["manager"], name="x", headers=["Name"], mapping={"Name": None}
        )


def test_a_saved_mapping_is_offered_for_the_same_headers(engine: Engine, admin: User) -> None:
    data = csv_bytes([["Who", "Mail", "Firm"], ["Ana Lima", "ana@example.com", "Acme"]])
    shape = importer.inspect_file(data)
    assert importer.suggest_mapping(engine, shape) == {"Who": None, "Mail": "email", "Firm": None}
    chosen = {"Who": "full_name", "Mail": "email", "Firm": "company"}
    importer.save_mapping(
        engine, actor=admin, name="Our ATS", headers=shape.headers, mapping=chosen
    )
    importer.save_mapping(
        engine, actor=admin, name="Our ATS", headers=shape.headers, mapping=chosen
    )
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SavedMapping)) == 1
    reordered = importer.inspect_file(csv_bytes([["firm", "who", "mail"], ["A", "B C", "d@e.fr"]]))
    assert importer.suggest_mapping(engine, reordered) == {
        "firm": "company",
        "who": "full_name",
        "mail": "email",
    }
    assert run(engine, admin, data).created == 1  # the saved mapping makes the file usable
    assert people(engine)["ana@example.com"].company == "Acme"
    with pytest.raises(ValidationError):
        importer.save_mapping(engine, actor=admin, name=" ", headers=["Who"], mapping={})
    with pytest.raises(ValidationError):
        importer.save_mapping(
            engine, actor=admin, name="x", headers=["Who"], mapping={"Who": "nonsense"}
        )


# --- the fast paths in identity.py give what the general ones give -----------------------


def pieces(*parts: str, size: int = 10) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(parts), max_size=size).map("".join)


def both_ways(normalize: Any, fast_path: str, text: str) -> tuple[Any, Any]:
    """The answer with the fast path, and with it switched off (errors by their message)."""
    answers = []
    for patch in (nullcontext(), mock.patch.object(identity, fast_path, lambda _text: None)):
        with patch:
            try:
                answers.append(normalize(text))
            except ValidationError as error:
                answers.append(str(error))
    return answers[0], answers[1]


EMAILISH = pieces(
    *"abcXYZ09._+-'!#é@ \"",
    "@",
    "@",
    "gmail.com",
    "Example.COM",
    "xn--bcher-kva.de",
    "-x.com",
    "localhost",
    "postmaster",
    "Info",
    "a" * 60,
    "mailto:",
    "<",
    ">",
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(EMAILISH, st.emails().map(str)))
def test_the_email_fast_path_agrees_with_email_validator(text: str) -> None:
    fast, general = both_ways(identity.normalize_email, "_plain_email", text)
    assert fast == general


def test_the_fast_paths_are_taken_for_plain_values() -> None:
    assert identity._plain_email("Ana.Lima+cv@Example.COM") == "Ana.Lima+cv@example.com"
    assert identity._plain_email("postmaster@example.com") is None  # lower-cased: general path
    assert identity._plain_linkedin("HTTPS://uk.LinkedIn.com/in/Ana-Lima/") == (
        "https://www.linkedin.com/in/ana-lima",
        "linkedin.com/in/ana-lima",
    )
    assert identity._plain_linkedin("https://www.linkedin.com/in/ana?trk=x") is None


LINKEDINISH = pieces(
    "https://",
    "http://",
    "HTTPS://",
    "ftp://",
    "www.",
    "uk.",
    "LinkedIn.com",
    "linkedin.com",
    "linkedin.co",
    "/in/",
    "/pub/",
    "/IN/",
    "/company/",
    "ana",
    "Lima",
    "-",
    "_",
    ".",
    "%20",
    "%C3%A9",
    "/",
    "?trk=1",
    "#x",
    ":443",
    "é",
    "@",
    " ",
)


@settings(max_examples=500, deadline=None)
@given(LINKEDINISH)
def test_the_linkedin_fast_path_agrees_with_url_parsing(text: str) -> None:
    fast, general = both_ways(identity.normalize_linkedin, "_plain_linkedin", text)
    assert fast == general


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_the_list_fast_path_agrees_with_the_general_one(text: str) -> None:
    # A list takes the general path; one cell of ASCII text the fast one.
    assert split_list(text) == split_list([text])


# --- big imports: the same outcome whichever way the rows go -----------------------------

BULK_ROWS = [
    ["Name", "Email", "LinkedIn", "Title", "Company", "Skills", "Tags", "Notes"],
    ["Ana Lima", "ana@example.com", "", "Engineer", "", "python, go", "a", ""],
    ["Bo Berg", "", "linkedin.com/in/bo", "", "", "", "", "met at a fair"],
    ["Ana L.", "ANA@example.com", "https://uk.linkedin.com/in/ana/", "CTO", "Acme", "go", "", ""],
    ["Old Timer", "old@example.com", "", "Boss", "Gamma", "rust", "b", ""],
    ["Bad Mail", "not-an-email", "", "", "", "", "", ""],
    ["", "noname@example.com", "", "", "", "", "", ""],
    ["Mixed Up", "old@example.com", "linkedin.com/in/bo", "", "", "", "", ""],
    ["Zoë Ünicode", "zoe@example.com", "https://www.linkedin.com/in/zoë-ü", "", "", "", "", ""],
    ["Linked Only", "", "https://www.linkedin.com/in/linked-only", "Dev", "", "", "", ""],
    ["Cy Cole", "cy@example.com", "", "", "", "", "", ""],
    ["Gone Person", "gone@example.com", "", "", "", "", "", ""],
    ["Cy Again", "cy@example.com", "linkedin.com/in/cy", "Dev", "Delta", "sql", "c", ""],
    ["Linked Again", "linked@example.com", "linkedin.com/in/LINKED-ONLY", "", "Eta", "", "", ""],
] + [[f"Person {n}", f"p{n % 9}@example.com", "", f"Title {n}", "", "", "", ""] for n in range(18)]
PATHS = {
    "plain": {},
    "bulk": {"REINDEX_MIN_ROWS": 0},
    "helper": {"HELPER_MIN_BYTES": 0, "HELPER_WAIT": 60.0},
    "helper process": {"HELPER_MIN_BYTES": 0, "HELPER_WAIT": 60.0, "HELPER_FORK": False},
    "both": {"REINDEX_MIN_ROWS": 0, "HELPER_MIN_BYTES": 0, "HELPER_WAIT": 60.0},
}
# The knobs of the helper process and of the writer live in crm.imports.
_KNOBS_AT = {
    "HELPER_WAIT": parsing,
    "HELPER_FORK": parsing,
    "_HELPER_CODE": parsing,
    "REINDEX_MIN_ROWS": candidate_writer,
}


@contextmanager
def knobs(**values: Any) -> Iterator[None]:
    """The import's knobs set for a test, in whichever module has each."""
    with ExitStack() as stack:
        for module in (importer, parsing, candidate_writer):
            mine = {k: v for k, v in values.items() if _KNOBS_AT.get(k, importer) is module}
            if mine:
                stack.enter_context(mock.patch.multiple(module, **mine))
        yield


def bulk_state(engine: Engine) -> tuple[Any, ...]:
    """Everything an import may change, without ids and times."""
    with db.read_session(engine) as session:
        found = {
            (c.email_normalized or c.linkedin_normalized): (
                c.first_name,
                c.last_name,
                c.email,
                c.linkedin_url,
                c.linkedin_normalized,
                c.title,
                c.company,
                c.skills,
                sorted(tag.tag for tag in c.tags),
                c.consent_status,
                c.consent_note,
                c.source,
                c.version,
                c.import_batch_id is not None,
            )
            for c in session.scalars(select(Candidate))
        }
        notes = sorted(session.scalars(select(Activity.summary)))
        changes = sorted(
            json.dumps(previous, sort_keys=True)
            for previous in session.scalars(select(ImportChange.previous))
        )
    return found, notes, changes


def sqlite_indexes(engine: Engine) -> list[str] | None:
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as connection:
        return sorted(row[1] for row in connection.exec_driver_sql("PRAGMA index_list(candidates)"))


def reset_bulk(engine: Engine) -> None:
    with db.write_session(engine) as session:
        for model in (ImportChange, Activity, CandidateTag, Candidate, ImportBatch, Suppression):
            session.execute(model.__table__.delete())
        session.add(Suppression(address_hash=identity.address_hash("gone@example.com"), reason="x"))
    add_person(
        engine,
        first_name="Old",
        last_name="Timer",
        email="old@example.com",
        email_normalized="old@example.com",
        title="",
        skills=["java"],
        tags=["x"],
    )


def bulk_outcome(
    engine: Engine, admin: User, source: bytes | Path, mode: str, path: str
) -> tuple[Any, ...]:
    reset_bulk(engine)
    indexes = sqlite_indexes(engine)
    with knobs(CHUNK_ROWS=4, **PATHS[path]):
        result = importer.run_import(
            engine, source, ImportOptions(on_duplicate=mode), actor=admin, filename="big.csv"
        )
    assert sqlite_indexes(engine) == indexes
    imported = bulk_state(engine)
    importer.undo_import(engine, actor=admin, batch_id=result.batch_id)
    undone = bulk_state(engine)
    return result.as_json(), result.problems, imported, undone


@pytest.mark.parametrize("mode", importer.ON_DUPLICATE)
def test_a_big_import_gives_the_same_outcome_by_every_path(
    engine: Engine, admin: User, mode: str
) -> None:
    """Helper process, dropped indexes and the key set change how, never what."""
    data = csv_bytes(BULK_ROWS)
    outcomes = {path: bulk_outcome(engine, admin, data, mode, path) for path in PATHS}
    counts, problems, imported, _undone = outcomes["plain"]
    assert (counts["created"], counts["errors"]) == (15, 3)
    assert (counts["updated"], counts["duplicates"]) == ((0, 13) if mode == "skip" else (1, 12))
    assert [p.line for p in problems] == [6, 7, 8]
    assert imported[0]["zoe@example.com"][4] == "linkedin.com/in/zoë-ü"
    assert imported[0]["gone@example.com"][9] == "do_not_contact"
    for path, outcome in outcomes.items():
        assert outcome == outcomes["plain"], path


def test_a_big_import_from_a_path_with_an_invalid_row(
    engine: Engine, admin: User, tmp_path: Path
) -> None:
    body = csv_bytes(BULK_ROWS)
    broken = body + b'Dee Dot,"dee@example.com"x,,,,,,\r\n' + csv_bytes(BULK_ROWS[1:4])
    path = tmp_path / "big.csv"
    path.write_bytes(broken)
    outcomes = {name: bulk_outcome(engine, admin, path, "update_all", name) for name in PATHS}
    assert any("not valid CSV" in p.problem for p in outcomes["plain"][1])
    for name, outcome in outcomes.items():
        assert outcome == outcomes["plain"], name


@pytest.mark.parametrize("path", ["bulk", "helper", "helper process", "both"])
def test_a_fault_deep_in_a_big_import_rolls_everything_back(
    engine: Engine, admin: User, path: str
) -> None:
    reset_bulk(engine)
    indexes, before = sqlite_indexes(engine), bulk_state(engine)
    data = csv_bytes(BULK_ROWS) + b'Last,"last@example.com\r\n'
    with (
        knobs(CHUNK_ROWS=4, **PATHS[path]),
        pytest.raises(InputUnusable, match="line 33 is never closed"),
    ):
        run(engine, admin, data)
    assert sqlite_indexes(engine) == indexes and bulk_state(engine) == before


_DIES_AFTER_ITS_FIRST_CHUNK = """
import os
from crm.imports import candidate_writer, parsing
send, sent = parsing._send, []
def dying(stream, message):
    if message[0] == "chunk" and sent:
        os._exit(1)
    sent.append(message[0])
    send(stream, message)
parsing._send = dying
parsing.parser_main()
"""


@pytest.mark.parametrize(
    "code", ["raise SystemExit(3)", "print('hello')", _DIES_AFTER_ITS_FIRST_CHUNK]
)
def test_a_helper_that_fails_leaves_the_parsing_to_the_import(
    engine: Engine, admin: User, code: str
) -> None:
    data = csv_bytes(BULK_ROWS)
    expected = bulk_outcome(engine, admin, data, "update_empty", "plain")
    with knobs(_HELPER_CODE=code, HELPER_FORK=False):
        assert bulk_outcome(engine, admin, data, "update_empty", "both") == expected


@pytest.mark.parametrize("fork", [True, False])
def test_a_big_import_takes_the_fast_paths(engine: Engine, admin: User, fork: bool) -> None:
    seen: dict[str, Any] = {}
    close, finish = parsing.ParserProcess.close, candidate_writer.CandidateImport.finish

    def closing(helper: parsing.ParserProcess) -> None:
        seen["helper finished"] = helper.finished
        seen["forked"] = isinstance(helper.process, parsing._Forked)
        close(helper)

    def finishing(job: candidate_writer.CandidateImport) -> None:
        seen["reindexed"], seen["keys"] = len(job.reindex), job.stored
        finish(job)

    with (
        knobs(CHUNK_ROWS=4, HELPER_FORK=fork, **PATHS["both"]),
        mock.patch.object(parsing.ParserProcess, "close", closing),
        mock.patch.object(candidate_writer.CandidateImport, "finish", finishing),
        # A thread an earlier test left behind (a server's flusher winding down) would make
        # the import start a fresh interpreter instead of forking: this test is about forks.
        mock.patch.object(parsing.threading, "active_count", return_value=1),
    ):
        run(engine, admin, csv_bytes(BULK_ROWS))
    assert seen["helper finished"] is True and seen["forked"] is fork
    if engine.dialect.name == "sqlite":
        assert seen["reindexed"] == 6 and "ana@example.com" in seen["keys"]
    else:
        assert (seen["reindexed"], seen["keys"]) == (0, None)


def test_progress_with_a_helper(engine: Engine, admin: User) -> None:
    seen: list[float] = []
    with knobs(CHUNK_ROWS=4, **PATHS["helper"]):
        importer.run_import(
            engine,
            csv_bytes(BULK_ROWS),
            ImportOptions(),
            actor=admin,
            filename="p.csv",
            progress=seen.append,
        )
    assert len(seen) == 8 and seen == sorted(seen) and seen[-1] == 1.0


# --- the command line -------------------------------------------------------------------


def crm(*args: str):
    return runner.invoke(app, list(args))


def test_cli_imports_and_prints_json(engine: Engine, admin: User, tmp_path: Path) -> None:
    path = tmp_path / "Connections.csv"
    path.write_text(LINKEDIN, encoding="utf-8")
    result = crm("import", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"read", "created", "updated", "duplicates", "errors", "error_report"}
    assert (report["read"], report["created"], report["errors"]) == (4, 2, 2)
    assert report["error_report"].startswith("row,column,problem")
    (batch,) = importer.list_batches(engine)
    assert (batch.filename, batch.created_by) == ("Connections.csv", "Ada Admin")
    again = crm("import", str(path), "--on-duplicate", "update", "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["duplicates"] == 2


def test_cli_dry_run_map_and_source(engine: Engine, admin: User, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes([["Who", "Mail"], ["Ana Lima", "ana@example.com"]]))
    unusable = crm("import", str(path))
    assert unusable.exit_code == 2 and "No column holds a name" in unusable.stderr
    dry = crm("import", str(path), "--map", "Who=full_name", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.stderr and "1 new" in dry.stderr
    assert counts(engine)[:2] == (0, 0)
    done = crm("import", str(path), "--map", "Who=full_name", "--source", "Fair", "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["created"] == 1
    assert people(engine)["ana@example.com"].source == "Fair"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--kind", "jobs"], 2, "None of the file's columns is one an import of jobs knows"),
        (["--kind", "pets"], 2, "--kind must be one of"),
        (["--map", "Who=nickname"], 2, "unknown field 'nickname'"),
        (["--map", "nonsense"], 2, "HEADER=field"),
        (["--map", "Nope=email"], 2, "no column 'Nope'"),
        (["--on-duplicate", "merge"], 2, "--on-duplicate must be"),
    ],
)
def test_cli_refusals(
    engine: Engine, admin: User, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes([["Who", "Email"], ["Ana Lima", "ana@example.com"]]))
    result = crm("import", str(path), *args)
    assert result.exit_code == code, result.output
    assert words in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_cli_missing_file_bad_file_and_no_admin(
    engine: Engine, users: dict[str, User], tmp_path: Path
) -> None:
    missing = crm("import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"Error: No such file: {tmp_path / 'nope.csv'}"
    zipped = tmp_path / "people.csv"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    bad = crm("import", str(zipped), "--json")
    assert bad.exit_code == 2 and "zip" in bad.stderr and bad.stdout == ""
    with db.write_session(engine) as session:
        session.get(User, users["admin"].id).active = False  # type: ignore[union-attr]
    good = tmp_path / "good.csv"
    good.write_bytes(csv_bytes([["Name", "Email"], ["Ana Lima", "ana@example.com"]]))
    no_admin = crm("import", str(good))
    assert no_admin.exit_code == 1 and "no active admin" in no_admin.stderr
