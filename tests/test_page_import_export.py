"""The Import / export page under AppTest: upload, preview, import, undo, export, bad files."""

from __future__ import annotations

from sqlalchemy import Engine

from crm import candidates, importer
from crm.models import User
from tests.test_app import app_as

LINKEDIN = (
    b"Notes:\n"
    b'"When exporting your connection data, you may notice that some of the email addresses '
    b'are missing."\n'
    b"\n"
    b"First Name,Last Name,URL,Email Address,Company,Position,Connected On\n"
    b"Ana,Lima,https://www.linkedin.com/in/ana-lima,ana@example.com,Acme,Engineer,12 Mar 2024\n"
    b"Bo,Berg,https://www.linkedin.com/in/bo-berg,,Beta,PM,01 Jan 2025\n"
    b"Cy,Bad,not-a-url,not-an-email,Gamma,CTO,01 Jan 2025\n"
)


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/import_export.py").run()
    assert not at.exception
    return at


def button(at, label: str):
    return next(b for b in at.button if b.label.startswith(label))


def test_linkedin_file_preview_import_and_undo(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    at.file_uploader[0].upload("Connections.csv", LINKEDIN, "text/csv").run()
    assert not at.exception
    assert any("3 rows" in c.value and "notes skipped" in c.value for c in at.caption)
    mapping = at.data_editor[0].value
    assert (
        dict(zip(mapping["column in the file"], mapping["goes to"], strict=True))["Email Address"]
        == "email"
    )
    at.button(key=next(b.key for b in at.button if b.label == "Preview")).click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["New people"] == "2" and metrics["Refused rows"] == "1"
    assert candidates.count(engine) == 0  # the preview writes nothing
    button(at, "Import 2 people").click().run()
    assert not at.exception
    assert "2 new" in at.success[0].value and "1 refused" in at.success[0].value
    assert candidates.count(engine) == 2
    assert any(b.label.startswith("Download the error report") for b in at.get("download_button"))
    (batch,) = importer.list_batches(engine)
    at.session_state["io_tab"] = "Import history"
    at.run()
    at.checkbox(key="io_undo_confirm").check().run()
    button(at, "Undo import").click().run()
    assert not at.exception
    assert "2 people removed" in at.success[0].value
    assert candidates.count(engine) == 0


def test_a_renamed_spreadsheet_gets_one_sentence(users: dict[str, User], engine: Engine) -> None:
    at = open_page(users["recruiter"])
    at.file_uploader[0].upload("people.csv", b"PK\x03\x04rest-of-a-zip", "text/csv").run()
    assert not at.exception
    assert "zip" in at.error[0].value
    assert candidates.count(engine) == 0


def test_manager_cannot_import(users: dict[str, User]) -> None:
    at = open_page(users["manager"])
    assert at.file_uploader[0].disabled


def test_duplicates_tab_merges_and_dismisses(users: dict[str, User], engine: Engine) -> None:
    make = candidates.create_candidate
    first = make(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": "Ana",
            "last_name": "Lima",
            "company": "Acme",
            "email": "ana@home.example",
            "title": "Engineer",
        },
    )
    second = make(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": "ana",
            "last_name": "LIMA",
            "company": "acme",
            "email": "ana@work.example",
            "title": "Staff engineer",
        },
    )
    make(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": "Bo",
            "last_name": "Berg",
            "company": "Beta",
            "email": "bo@x.io",
            "phone": "+44 20 7946 0001",
        },
    )
    make(
        engine,
        actor=users["recruiter"],
        fields={
            "first_name": "Bob",
            "last_name": "Berg",
            "company": "Other",
            "email": "bob@x.io",
            "phone": "+44 20 7946 0001",
        },
    )
    at = open_page(users["recruiter"])
    assert not any(b.label == "Merge…" for b in at.button)  # only the open tab runs
    at.session_state["io_tab"] = "Duplicates"
    at.run()
    assert sum(1 for b in at.button if b.label == "Merge…") == 2
    at.button(key=f"merge_{first.id}_{second.id}").click().run()
    titles = next(r for r in at.radio if r.label == "Title")
    titles.set_value("remove").run()
    next(b for b in at.button if b.label == "Merge").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Merged into")
    survivors = {first.id, second.id} & {
        cid for cid in (first.id, second.id) if candidates.get_candidate(engine, cid)
    }
    assert len(survivors) == 1
    assert sum(1 for b in at.button if b.label == "Merge…") == 1
    button(at, "Not a duplicate").click().run()
    assert not at.exception
    assert not any(b.label == "Merge…" for b in at.button)
