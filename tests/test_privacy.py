"""Privacy: consent, access export, erasure, retention review and the audit log view."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, func, select, update
from sqlalchemy import types as sa_types

from crm import (
    audit_log,
    campaign_figures,
    campaign_lifecycle,
    campaigns,
    candidates,
    clock,
    custom_fields,
    db,
    engagement,
    identity,
    importer,
    metrics,
    outbox,
    pool_yield,
    pools,
    privacy,
    privacy_review,
    touchpoints,
)
from crm.errors import NotFound, PermissionDenied, ValidationError
from crm.importer import ImportOptions
from crm.models import (
    Activity,
    Application,
    AuditLog,
    Candidate,
    CandidateTag,
    Cost,
    Enrollment,
    Event,
    ImportChange,
    Job,
    Link,
    OutboxMessage,
    PoolMember,
    Suppression,
    User,
)
from tests.smtp_server import FaultySmtpServer
from tests.test_engagement import clicked

BROWSER = "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1.15"
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
FORMULA = '=HYPERLINK("http://evil.example","click")'


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def import_people(engine: Engine, actor: User, rows: list[list[str]]) -> importer.ImportResult:
    return importer.run_import(
        engine, csv_bytes(rows), ImportOptions(), actor=actor, filename="people.csv"
    )


def add_person(engine: Engine, **fields: Any) -> int:
    fields.setdefault("first_name", "Pat")
    fields.setdefault("last_name", "Quiet")
    if fields.get("email"):
        fields.setdefault("email_normalized", str(fields["email"]).lower())
    with db.write_session(engine) as session:
        person = Candidate(**fields)
        session.add(person)
        session.flush()
        return person.id


def person_id(engine: Engine, email: str) -> int:
    found = privacy.find_by_email(engine, email)
    assert found is not None
    return found


@pytest.fixture
def ana(engine: Engine, users: dict[str, User], smtp: FaultySmtpServer) -> dict[str, Any]:
    """Ana, with something in every section an export covers: imported, a custom field,
    tags, skills, a note and a call, a pool, a campaign she was sent and clicked and
    answered (its second step still waiting), and a hire that the metrics count."""
    admin, recruiter = users["admin"], users["recruiter"]
    custom_fields.create_field(engine, actor=admin, label="Notice period", kind="text")
    import_people(
        engine,
        recruiter,
        [
            ["First Name", "Last Name", "Email", "Title", "Skills", "Tags", "Notes"],
            ["Ana", "Lima", "Ana.Lima@Example.com", "Engineer", "python; go", "alumni"]
            + ["Met at PyCon"],
        ],
    )
    cid = person_id(engine, "ana.lima@example.com")
    with db.write_session(engine) as session:
        session.execute(
            update(Candidate)
            .where(Candidate.id == cid)
            .values(company=FORMULA, custom_fields={"notice_period": "3 months"})
        )
    touchpoints.log_touchpoint(
        engine,
        actor=recruiter,
        candidate_id=cid,
        channel="call",
        occurred_at=clock.now() - dt.timedelta(days=1),
        note="Called Ana about Berlin",
    )
    pool_id = pools.save_pool(engine, actor=recruiter, name="Berlin backend", kind="static")
    candidates.bulk_add_to_pool(engine, actor=recruiter, candidate_ids=[cid], pool_id=pool_id)

    steps = [
        campaigns.StepDraft(subject="Hello {{first_name}}", body="Hi {{first_name}}, a role."),
        campaigns.StepDraft(
            subject="Following up", body="Still keen?", delay_days=4, stop_on_reply=False
        ),
    ]
    campaign_id = campaigns.save_campaign(
        engine,
        actor=recruiter,
        draft=campaigns.CampaignDraft(name="Berlin hello", steps=steps, candidate_ids=[cid]),
    )
    campaign_lifecycle.launch(engine, actor=recruiter, campaign_id=campaign_id)
    assert outbox.deliver_due(engine).sent == 1
    with db.write_session(engine) as session:
        sent = session.scalar(select(OutboxMessage).where(OutboxMessage.status == "sent"))
        assert sent is not None
        sent.sent_at = clock.now() - dt.timedelta(hours=2)
        session.add(Link(outbox_message_id=sent.id, url="https://acme.example/ana", position=0))
        sent_id = sent.id
    assert clicked(engine, sent_id, 0, user_agent=BROWSER)
    assert engagement.record_reply(
        engine, outbox_id=sent_id, detail={"subject": "Re: Hello Ana (ana.lima@example.com)"}
    )

    with db.write_session(engine) as session:
        job = Job(
            title="Backend engineer",
            opened_at=dt.date(2026, 1, 5),
            filled_at=dt.date(2026, 3, 1),
            status="filled",
        )
        session.add(job)
        session.flush()
        session.add(
            Application(
                candidate_id=cid,
                job_id=job.id,
                source="campaign",
                campaign_id=campaign_id,
                stage="hired",
                applied_at=dt.datetime(2026, 1, 20, tzinfo=dt.UTC),
                offer_decided_at=dt.datetime(2026, 2, 20, tzinfo=dt.UTC),
                offer_accepted=True,
                hired_at=dt.datetime(2026, 2, 25, tzinfo=dt.UTC),
            )
        )
        session.add(
            Cost(
                job_id=job.id,
                incurred_on=dt.date(2026, 2, 1),
                category="job_ads",
                amount=900,
            )
        )
    return {"id": cid, "campaign_id": campaign_id, "pool_id": pool_id, "sent_id": sent_id}


# --- finding and exporting ----------------------------------------------------------------


def test_find_by_email_normalizes_and_refuses_a_non_address(
    engine: Engine, users: dict[str, User]
) -> None:
    cid = add_person(engine, email="bo@example.com")
    assert privacy.find_by_email(engine, "  BO@Example.COM ") == cid
    assert privacy.find_by_email(engine, "mailto:bo@example.com") == cid
    assert privacy.find_by_email(engine, "nobody@example.com") is None
    for bad in ("not an address", ""):
        with pytest.raises(ValidationError):
            privacy.find_by_email(engine, bad)


def test_export_data_holds_everything_about_the_person(
    engine: Engine, users: dict[str, User], ana: dict[str, Any]
) -> None:
    document = privacy.export_data(engine, actor=users["recruiter"], candidate_id=ana["id"])
    json.dumps(document)  # JSON-able as it is
    person = document["candidate"]
    assert (person["first_name"], person["email"], person["company"]) == (
        "Ana",
        "Ana.Lima@example.com",
        FORMULA,
    )
    assert person["title"] == "Engineer"
    assert document["custom_fields"] == [
        {"key": "notice_period", "label": "Notice period", "value": "3 months"}
    ]
    assert document["tags"] == ["alumni"]
    assert sorted(document["skills"]) == ["go", "python"]
    assert [p["pool"] for p in document["pools"]] == ["Berlin backend"]
    (message_1, message_2) = document["messages"]
    assert (message_1["status"], message_1["subject"], message_1["to_address"]) == (
        "sent",
        "Hello Ana",
        "Ana.Lima@example.com",
    )
    assert "Hi Ana" in message_1["body_text"]
    assert message_2["status"] in {"waiting", "queued"}
    kinds = sorted(event["kind"] for event in document["events"])
    assert kinds == ["click", "reply"]
    reply = next(event for event in document["events"] if event["kind"] == "reply")
    assert "Re: Hello Ana" in reply["detail"]["subject"]
    assert [(a["job"], a["stage"]) for a in document["applications"]] == [
        ("Backend engineer", "hired")
    ]
    assert [i["filename"] for i in document["imports"]] == ["people.csv"]
    assert [e["campaign"] for e in document["enrollments"]] == ["Berlin hello"]
    assert document["campaign_recipient_of"] == ["Berlin hello"]
    assert any(a["summary"] == "Called Ana about Berlin" for a in document["activities"])

    # Everything the timeline shows is in the export.
    shown = candidates.timeline(engine, ana["id"])
    exported = {(entry["kind"], entry["summary"]) for entry in document["timeline"]}
    assert len(shown) >= 6
    assert {(entry.kind, entry.summary) for entry in shown} <= exported
    assert any("Met at PyCon" in summary for _kind, summary in exported)
    assert any(kind == "email_sent" for kind, _summary in exported)

    with db.read_session(engine) as session:
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "candidate.export_data")
        ).one()
    assert (entry.username, entry.entity_id, entry.detail) == (
        "recruiter",
        str(ana["id"]),
        {"format": "json"},
    )


def test_export_csv_escapes_formulas_and_starts_with_a_bom(
    engine: Engine, users: dict[str, User], ana: dict[str, Any]
) -> None:
    data = privacy.export_data_csv(engine, actor=users["admin"], candidate_id=ana["id"])
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["section", "item", "field", "value"]
    cells = {(section, field): value for section, _item, field, value in rows[1:]}
    assert cells[("candidate", "company")] == "'" + FORMULA
    assert cells[("candidate", "email")] == "Ana.Lima@example.com"
    assert cells[("custom_fields", "value")] == "3 months"
    assert ("timeline", "summary") in cells and ("messages", "body_text") in cells
    assert not any(value.startswith("=") for row in rows for value in row)


def test_export_of_a_missing_person_and_by_a_manager(
    engine: Engine, users: dict[str, User]
) -> None:
    cid = add_person(engine, email="cy@example.com")
    for export in (privacy.export_data, privacy.export_data_csv):
        with pytest.raises(NotFound):
            export(engine, actor=users["admin"], candidate_id=cid + 100)
        with pytest.raises(PermissionDenied):
            export(engine, actor=users["manager"], candidate_id=cid)
    with db.read_session(engine) as session:
        assert (
            session.scalar(select(func.count()).where(AuditLog.action == "candidate.export_data"))
            == 0
        )


# --- erasure ----------------------------------------------------------------------------


# The ROI metrics, counted from applications, jobs and costs, which erasure keeps. (Rates
# over people, such as a pool's members now, count the living by definition.)
ROI_METRICS = (
    "hires",
    "time_to_fill_days",
    "time_to_hire_days",
    "cost_per_hire",
    "offer_acceptance_rate",
    "hires_from_talent_pools_share",
    "source_of_hire",
    "total_cost",
)


def _metrics(engine: Engine) -> dict[str, Any]:
    report = metrics.compute(engine, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31))
    found = report.as_json()
    return {
        **{name: found[name] for name in ROI_METRICS},
        "by_pool": pool_yield.hires_by_pool(
            engine, start=dt.date(2026, 1, 1), end=dt.date(2026, 12, 31)
        ),
    }


def _counts(engine: Engine) -> dict[str, int]:
    with db.read_session(engine) as session:
        return {
            "sent": session.scalar(select(func.count()).where(OutboxMessage.status == "sent")),
            "messages": session.scalar(select(func.count()).select_from(OutboxMessage)),
            "events": session.scalar(select(func.count()).select_from(Event)),
            "enrollments": session.scalar(select(func.count()).select_from(Enrollment)),
            "applications": session.scalar(select(func.count()).select_from(Application)),
        }


def test_erase_removes_the_person_and_keeps_anonymous_counts(
    engine: Engine, users: dict[str, User], ana: dict[str, Any]
) -> None:
    before_metrics = _metrics(engine)
    assert before_metrics["hires"] == 1 and before_metrics["time_to_hire_days"] is not None
    before = _counts(engine)
    report_before = campaign_figures.report(engine, ana["campaign_id"])

    result = privacy.erase(engine, actor=users["recruiter"], candidate_id=ana["id"])

    assert result == privacy.Erasure(ana["id"], messages_cancelled=1, suppressed=True)
    assert _metrics(engine) == before_metrics
    assert _counts(engine) == before
    report_after = campaign_figures.report(engine, ana["campaign_id"])
    assert (report_after["totals"]["messages_sent"], report_after["hires"]) == (1, 1)
    assert report_after["applications"] == report_before["applications"]
    assert report_after["totals"]["cancelled"] == report_before["totals"]["cancelled"] + 1
    # The people counts still count her, by her enrollment.
    people = [*campaign_figures.PEOPLE_COUNTS, "scanner_opens"]
    assert {k: report_after["totals"][k] for k in people} == {
        k: report_before["totals"][k] for k in people
    }
    assert report_before["totals"]["people_delivered"] == 1

    cid = ana["id"]
    with db.read_session(engine) as session:
        assert session.get(Candidate, cid) is None
        for model in (Activity, CandidateTag, PoolMember):
            assert (
                session.scalar(
                    select(func.count()).select_from(model).where(model.candidate_id == cid)
                )
                == 0
            )
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.status for m in messages] == ["sent", "cancelled"]
        for message in messages:
            assert message.candidate_id is None
            assert (message.to_address, message.subject) == (None, None)
            assert (message.body_text, message.body_html, message.smtp_reply) == (None, None, None)
        events = session.scalars(select(Event)).all()
        assert sorted(e.kind for e in events) == ["click", "reply"]
        for event in events:
            assert event.candidate_id is None and event.user_agent is None
            assert "subject" not in (event.detail or {})
            assert event.campaign_id == ana["campaign_id"]
        assert session.scalar(select(func.count()).select_from(Link)) == 0
        application = session.scalars(select(Application)).one()
        assert (application.candidate_id, application.stage) == (None, "hired")
        assert all(e.candidate_id is None for e in session.scalars(select(Enrollment)))
        assert all(
            (c.candidate_id, c.previous) == (None, None)
            for c in session.scalars(select(ImportChange))
        )
        suppression = session.scalars(
            select(Suppression).where(
                Suppression.address_hash == identity.address_hash("ana.lima@example.com")
            )
        ).one()
        assert suppression.reason == "erasure"
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "candidate.erase")).one()
    assert (entry.username, entry.entity_id) == ("recruiter", str(cid))
    assert "ana" not in json.dumps(entry.detail).lower()
    assert entry.detail["messages_cancelled"] == 1

    with pytest.raises(NotFound):
        privacy.erase(engine, actor=users["recruiter"], candidate_id=cid)
    # Nothing more goes out to her.
    assert outbox.deliver_due(engine).sent == 0


def _text_cells_mentioning(engine: Engine, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, value) for every text or JSON cell of every table that contains one
    of the needles (case-insensitive): the whole database, not a list of known places."""
    meta = MetaData()
    meta.reflect(engine)
    found = []
    with engine.connect() as connection:
        for table in meta.sorted_tables:
            for column in table.columns:
                if not isinstance(column.type, (sa_types.String, sa_types.JSON)):
                    continue
                for (value,) in connection.execute(select(column).where(column.is_not(None))):
                    text = (value if isinstance(value, str) else json.dumps(value)).lower()
                    found += [
                        (table.name, column.name, text[:120])
                        for needle in needles
                        if needle.lower() in text
                    ]
    return found


def test_erasure_leaves_no_personal_data_in_any_table(
    engine: Engine, users: dict[str, User], ana: dict[str, Any]
) -> None:
    # Her LinkedIn profile, and an edit of her record (audited), on top of the fixture's
    # import, note, call, pool, campaign, click, reply and hire.
    person = candidates.get_candidate(engine, ana["id"])
    candidates.update_candidate(
        engine,
        actor=users["recruiter"],
        candidate_id=ana["id"],
        expected_version=person.version,
        fields={"linkedin_url": "https://www.linkedin.com/in/ana-lima-berlin", "title": "Lead"},
    )
    needles = ["Lima", "ana.lima@example.com", "linkedin.com/in/ana-lima-berlin"]
    assert {table for table, _, _ in _text_cells_mentioning(engine, needles)} >= {
        "candidates", "outbox_messages", "activities",
    }  # fmt: skip
    before_metrics = _metrics(engine)

    privacy.erase(engine, actor=users["admin"], candidate_id=ana["id"])

    assert _text_cells_mentioning(engine, needles) == []
    assert _metrics(engine) == before_metrics


def test_campaign_report_engagement_survives_erasure(
    engine: Engine, users: dict[str, User], ana: dict[str, Any]
) -> None:
    before = campaign_figures.report(engine, ana["campaign_id"])
    privacy.erase(engine, actor=users["admin"], candidate_id=ana["id"])
    after = campaign_figures.report(engine, ana["campaign_id"])
    for report in (before, after):
        for counters in (*report["steps"], report["totals"]):
            del counters["queued"], counters["cancelled"]  # her waiting step was cancelled
    assert after == before
    assert (after["totals"]["people_clicked"], after["totals"]["people_replied"]) == (1, 1)


def test_reimporting_an_erased_address_makes_a_do_not_contact_record(
    engine: Engine, users: dict[str, User]
) -> None:
    recruiter = users["recruiter"]
    import_people(engine, recruiter, [["Name", "Email"], ["Dee Erased", "dee@example.com"]])
    privacy.erase(engine, actor=recruiter, candidate_id=person_id(engine, "dee@example.com"))
    assert privacy.find_by_email(engine, "dee@example.com") is None
    result = importer.run_import(
        engine,
        csv_bytes([["Name", "Email"], ["Dee Back", "DEE@example.com"]]),
        ImportOptions(consent_status="consented"),
        actor=recruiter,
        filename="again.csv",
    )
    assert result.created == 1
    with db.read_session(engine) as session:
        again = session.scalars(
            select(Candidate).where(Candidate.email_normalized == "dee@example.com")
        ).one()
    assert again.consent_status == "do_not_contact"
    # And the person cannot be switched back to reachable.
    with pytest.raises(ValidationError, match="suppression list"):
        privacy.set_consent(
            engine,
            actor=recruiter,
            candidate_id=again.id,
            status="consented",
            source="Form",
            note=None,
        )


def test_erase_suppresses_an_older_address_too(engine: Engine, users: dict[str, User]) -> None:
    created = candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={"first_name": "Eve", "last_name": "Old", "email": "eve.old@example.com"},
    )
    candidates.update_candidate(
        engine,
        actor=users["recruiter"],
        candidate_id=created.id,
        expected_version=created.version,
        fields={"email": "eve.new@example.com"},
    )
    assert privacy.erase(engine, actor=users["admin"], candidate_id=created.id).suppressed
    with db.read_session(engine) as session:
        hashes = set(session.scalars(select(Suppression.address_hash)))
    for address in ("eve.old@example.com", "eve.new@example.com"):
        assert identity.address_hash(address) in hashes


def test_erase_suppresses_an_address_an_import_replaced(
    engine: Engine, users: dict[str, User]
) -> None:
    recruiter = users["recruiter"]
    header = ["Name", "Email", "LinkedIn"]
    profile = "https://www.linkedin.com/in/finn"
    import_people(engine, recruiter, [header, ["Finn Old", "finn.old@example.com", profile]])
    importer.run_import(
        engine,
        csv_bytes([header, ["Finn Old", "finn.new@example.com", profile]]),
        ImportOptions(on_duplicate="update_all"),
        actor=recruiter,
        filename="update.csv",
    )
    cid = person_id(engine, "finn.new@example.com")
    privacy.erase(engine, actor=recruiter, candidate_id=cid)
    with db.read_session(engine) as session:
        hashes = set(session.scalars(select(Suppression.address_hash)))
    assert identity.address_hash("finn.old@example.com") in hashes
    assert identity.address_hash("finn.new@example.com") in hashes


def test_a_person_without_an_address_is_erased_without_suppression(
    engine: Engine, users: dict[str, User]
) -> None:
    cid = add_person(engine, linkedin_url="https://www.linkedin.com/in/fay")
    assert privacy.erase(engine, actor=users["admin"], candidate_id=cid) == privacy.Erasure(
        cid, 0, False
    )
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_erase_many(engine: Engine, users: dict[str, User]) -> None:
    ids = [add_person(engine, email=f"m{n}@example.com") for n in range(3)]
    keep_id = add_person(engine, email="stays@example.com")
    assert privacy.erase_many(engine, actor=users["recruiter"], candidate_ids=[*ids, 9999]) == 3
    with db.read_session(engine) as session:
        assert list(session.scalars(select(Candidate.id))) == [keep_id]
        assert session.scalar(select(func.count()).select_from(Suppression)) == 3
        assert session.scalar(select(func.count()).where(AuditLog.action == "candidate.erase")) == 3
    with pytest.raises(ValidationError):
        privacy.erase_many(engine, actor=users["recruiter"], candidate_ids=[])


# --- consent ----------------------------------------------------------------------------


def test_set_consent_records_basis_date_source_and_note(
    engine: Engine, users: dict[str, User]
) -> None:
    cid = add_person(engine, email="gus@example.com")
    at = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC)
    privacy.set_consent(
        engine,
        actor=users["recruiter"],
        candidate_id=cid,
        status="consented",
        source="Careers fair sign-up sheet",
        note="  Happy to hear about data roles ",
        at=at,
    )
    with db.read_session(engine) as session:
        person = session.get(Candidate, cid)
        assert person is not None
        activity = session.scalars(select(Activity).where(Activity.kind == "consent")).one()
        entry = session.scalars(
            select(AuditLog).where(AuditLog.action == "candidate.consent")
        ).one()
    assert (person.consent_status, person.consent_at) == ("consented", at)
    assert person.consent_source == "Careers fair sign-up sheet"
    assert person.consent_note == "Happy to hear about data roles"
    assert person.version == 2
    assert "Consented" in activity.summary
    assert entry.detail == {"status": "consented", "before": "legitimate_interest"}

    with pytest.raises(ValidationError, match="consent status"):
        privacy.set_consent(
            engine, actor=users["admin"], candidate_id=cid, status="maybe", source=None, note=None
        )
    with pytest.raises(ValidationError, match="future"):
        privacy.set_consent(
            engine,
            actor=users["admin"],
            candidate_id=cid,
            status="consented",
            source=None,
            note=None,
            at=clock.now() + dt.timedelta(days=2),
        )
    with pytest.raises(NotFound):
        privacy.set_consent(
            engine,
            actor=users["admin"],
            candidate_id=cid + 1,
            status="do_not_contact",
            source=None,
            note=None,
        )


def test_consent_due_and_renewal_pool(engine: Engine, users: dict[str, User]) -> None:
    old = NOW - dt.timedelta(days=400)
    stale = add_person(
        engine, email="stale@example.com", consent_status="consented", consent_at=old
    )
    undated = add_person(engine, email="undated@example.com", created_at=old)
    fresh = add_person(
        engine,
        email="fresh@example.com",
        consent_status="consented",
        consent_at=NOW - dt.timedelta(days=10),
        created_at=old,
    )
    add_person(engine, email="dnc@example.com", consent_status="do_not_contact", created_at=old)
    add_person(
        engine, email="gone@example.com", created_at=old, unsubscribed_at=NOW - dt.timedelta(1)
    )

    rows, total = privacy_review.consent_due(engine, older_than_days=365, now=NOW)
    assert total == 2
    assert {row["id"] for row in rows} == {stale, undated}
    assert all(row["since"] is not None for row in rows)
    page, total = privacy_review.consent_due(
        engine, older_than_days=365, now=NOW, limit=1, offset=1
    )
    assert (len(page), total) == (1, 2)
    assert privacy_review.consent_due(engine, older_than_days=5, now=NOW)[1] == 3
    assert fresh not in {row["id"] for row in rows}

    pool_id = privacy_review.start_consent_renewal(
        engine, actor=users["recruiter"], candidate_ids=[stale, undated]
    ).pool_id
    today = clock.now().date().isoformat()
    pool = pools.get_pool(engine, pool_id)
    assert pool is not None
    assert (pool.name, pool.kind) == (f"Consent renewal {today}", "static")
    assert sorted(pools.member_ids(engine, pool_id)) == sorted([stale, undated])
    again = privacy_review.start_consent_renewal(
        engine, actor=users["recruiter"], candidate_ids=[stale]
    ).pool_id
    second = pools.get_pool(engine, again)
    assert second is not None and second.name == f"Consent renewal {today} (2)"

    dnc = privacy.find_by_email(engine, "dnc@example.com")
    assert dnc is not None
    with pytest.raises(ValidationError, match="renew consent"):
        privacy_review.start_consent_renewal(engine, actor=users["recruiter"], candidate_ids=[dnc])


# --- retention --------------------------------------------------------------------------


def test_retention_lists_only_people_quiet_for_the_period(
    engine: Engine, users: dict[str, User]
) -> None:
    long_ago = NOW - dt.timedelta(days=1000)
    lately = NOW - dt.timedelta(days=30)
    never = add_person(engine, email="never@example.com", created_at=long_ago)
    quiet = add_person(
        engine,
        email="quiet@example.com",
        created_at=long_ago,
        last_contacted_at=NOW - dt.timedelta(days=800),
    )
    add_person(engine, email="new@example.com", created_at=lately)
    add_person(engine, email="touched@example.com", created_at=long_ago, last_contacted_at=lately)
    add_person(engine, email="engaged@example.com", created_at=long_ago, last_engaged_at=lately)
    clicked = add_person(engine, email="clicked@example.com", created_at=long_ago)
    machine = add_person(engine, email="machine@example.com", created_at=long_ago)
    kept = add_person(engine, email="kept@example.com", created_at=long_ago)
    with db.write_session(engine) as session:
        session.add(Event(kind="click", candidate_id=clicked, occurred_at=lately))
        session.add(Event(kind="click", candidate_id=machine, occurred_at=lately, is_machine=True))
        session.add(
            Activity(
                candidate_id=kept,
                kind=privacy_review.KEEP_KIND,
                summary="Kept",
                occurred_at=NOW - dt.timedelta(days=100),
            )
        )

    rows, total = privacy_review.retention_due(engine, now=NOW)
    assert total == 3
    # Longest quiet first: never and machine since they were added, quiet since a call.
    assert [row["id"] for row in rows] == [never, machine, quiet]
    by_id = {row["id"]: row for row in rows}
    assert by_id[quiet]["last_touch"] == NOW - dt.timedelta(days=800)
    assert by_id[never]["last_touch"] is None
    page, total = privacy_review.retention_due(engine, now=NOW, limit=2, offset=2)
    assert (len(page), total) == (1, 3)
    # Once the period has passed again since the keep, the person is back on the list.
    later = NOW + dt.timedelta(days=700)
    assert kept in {row["id"] for row in privacy_review.retention_due(engine, now=later)[0]}


def test_keep_takes_people_off_the_list_and_erase_many_removes_them(
    engine: Engine, users: dict[str, User]
) -> None:
    old = clock.now() - dt.timedelta(days=1000)
    first, second, third = (
        add_person(engine, email=f"r{n}@example.com", created_at=old) for n in range(3)
    )
    assert privacy_review.retention_due(engine)[1] == 3
    kept = privacy_review.keep(
        engine,
        actor=users["recruiter"],
        candidate_ids=[first, 424242],
        reason="Finalist for the CTO search",
    )
    assert kept == 1
    assert {row["id"] for row in privacy_review.retention_due(engine)[0]} == {second, third}
    timeline = candidates.timeline(engine, first)
    assert any("Finalist for the CTO search" in entry.summary for entry in timeline)
    with pytest.raises(ValidationError, match="reason"):
        privacy_review.keep(engine, actor=users["recruiter"], candidate_ids=[second], reason="  ")
    assert privacy.erase_many(engine, actor=users["admin"], candidate_ids=[second, third]) == 2
    assert privacy_review.retention_due(engine)[1] == 0


def test_a_recent_application_counts_as_a_touch(engine: Engine, users: dict[str, User]) -> None:
    old = clock.now() - dt.timedelta(days=1000)
    cid = add_person(engine, email="applied@example.com", created_at=old)
    assert privacy_review.retention_due(engine)[1] == 1
    with db.write_session(engine) as session:
        job = Job(title="Data engineer", opened_at=dt.date(2026, 1, 1))
        session.add(job)
        session.flush()
        session.add(Application(candidate_id=cid, job_id=job.id, source="direct"))
    assert privacy_review.retention_due(engine)[1] == 0


def test_paging_arguments_are_checked(engine: Engine, users: dict[str, User]) -> None:
    for listing in (privacy_review.retention_due, privacy_review.consent_due):
        with pytest.raises(ValidationError):
            listing(engine, limit=0)
        with pytest.raises(ValidationError):
            listing(engine, offset=-1)


# --- permissions ------------------------------------------------------------------------


WRITERS: dict[str, Callable[[Engine, User, int], Any]] = {
    "erase": lambda e, u, c: privacy.erase(e, actor=u, candidate_id=c),
    "erase_many": lambda e, u, c: privacy.erase_many(e, actor=u, candidate_ids=[c]),
    "set_consent": lambda e, u, c: privacy.set_consent(
        e, actor=u, candidate_id=c, status="do_not_contact", source=None, note=None
    ),
    "start_consent_renewal": lambda e, u, c: privacy_review.start_consent_renewal(
        e, actor=u, candidate_ids=[c]
    ),
    "keep": lambda e, u, c: privacy_review.keep(e, actor=u, candidate_ids=[c], reason="why"),
    "export_data": lambda e, u, c: privacy.export_data(e, actor=u, candidate_id=c),
    "export_data_csv": lambda e, u, c: privacy.export_data_csv(e, actor=u, candidate_id=c),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_managers_are_refused_and_nothing_changes(
    engine: Engine, users: dict[str, User], name: str
) -> None:
    cid = add_person(engine, email="hal@example.com")
    with db.read_session(engine) as session:
        audit_before = session.scalar(select(func.count()).select_from(AuditLog))
    with pytest.raises(PermissionDenied, match="read-only"):
        WRITERS[name](engine, users["manager"], cid)
    with db.read_session(engine) as session:
        person = session.get(Candidate, cid)
        assert person is not None and person.consent_status == "legitimate_interest"
        assert session.scalar(select(func.count()).select_from(AuditLog)) == audit_before
        assert session.scalar(select(func.count()).select_from(Activity)) == 0
    # The same call by a recruiter goes through.
    WRITERS[name](engine, users["recruiter"], cid)


# --- the audit log ----------------------------------------------------------------------


def test_audit_entries_filter_and_page_newest_first(engine: Engine, users: dict[str, User]) -> None:
    admin = users["admin"]
    now = clock.now()
    cid = add_person(engine, email="ivy@example.com")
    privacy.set_consent(
        engine, actor=users["recruiter"], candidate_id=cid, status="consented", source="Web",
        note=None,
    )  # fmt: skip
    privacy.export_data(engine, actor=users["recruiter"], candidate_id=cid)
    with db.write_session(engine) as session:
        session.add(AuditLog(at=now - dt.timedelta(days=40), username="admin", action="login"))

    everything, total = audit_log.entries(engine, actor=admin)
    assert total == len(everything) >= 6  # three user.create, consent, export, login
    moments = [row["at"] for row in everything]
    assert moments == sorted(moments, reverse=True)

    rows, total = audit_log.entries(engine, actor=admin, action="candidate")
    assert total == 2
    assert [row["action"] for row in rows] == ["candidate.export_data", "candidate.consent"]
    rows, total = audit_log.entries(engine, actor=admin, action="candidate.consent")
    assert total == 1 and rows[0]["entity_id"] == str(cid)
    assert audit_log.entries(engine, actor=admin, action="candid")[1] == 0
    rows, total = audit_log.entries(engine, actor=admin, username="Recruiter")
    assert total == 2 and {row["username"] for row in rows} == {"recruiter"}
    old = audit_log.entries(engine, actor=admin, until=(now - dt.timedelta(days=30)).date())
    assert [row["action"] for row in old[0]] == ["login"]
    recent = audit_log.entries(engine, actor=admin, since=now - dt.timedelta(days=30))
    assert recent[1] == total_all(engine) - 1
    page, total = audit_log.entries(engine, actor=admin, limit=2, offset=1)
    assert [row["id"] for row in page] == [row["id"] for row in everything[1:3]]
    with pytest.raises(ValidationError, match="ends before"):
        audit_log.entries(engine, actor=admin, since=NOW, until=NOW - dt.timedelta(days=1))
    assert "candidate.consent" in audit_log.actions(engine, actor=admin)


def total_all(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(AuditLog)) or 0


def test_audit_csv_is_escaped_filtered_and_itself_audited(
    engine: Engine, users: dict[str, User]
) -> None:
    with db.write_session(engine) as session:
        session.add(
            AuditLog(
                username="mallory",
                action="candidate.update",
                entity="candidate",
                entity_id="=1+2",
                detail={"fields": ["title"]},
            )
        )
    data = audit_log.export_csv(engine, actor=users["admin"], username="mallory")
    assert data.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == list(audit_log.CSV_COLUMNS)
    assert len(rows) == 2
    _at, username, action, entity, entity_id, detail = rows[1]
    assert (username, action, entity, entity_id) == (
        "mallory",
        "candidate.update",
        "candidate",
        "'=1+2",
    )
    assert json.loads(detail) == {"fields": ["title"]}
    exported = audit_log.entries(engine, actor=users["admin"], action="audit.export")[0]
    assert exported[0]["detail"]["rows"] == 1 and exported[0]["username"] == "admin"


@pytest.mark.parametrize("role", ["recruiter", "manager"])
def test_only_admins_read_the_audit_log(engine: Engine, users: dict[str, User], role: str) -> None:
    with pytest.raises(PermissionDenied):
        audit_log.entries(engine, actor=users[role])
    with pytest.raises(PermissionDenied):
        audit_log.export_csv(engine, actor=users[role])
    with pytest.raises(PermissionDenied):
        audit_log.actions(engine, actor=users[role])
