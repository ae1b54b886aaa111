"""Jobs, applications and costs imported from ATS exports, checked against the metrics."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select

from crm import ats_import, candidates, db, metrics, money, pool_yield
from crm.errors import InputUnusable, PermissionDenied
from crm.imports import ats_tables, values
from crm.models import (
    Activity,
    Application,
    AuditLog,
    Candidate,
    Cost,
    ImportBatch,
    Job,
    User,
)
from tests.test_app import app_as

JOBS = (
    b"Exported from Greenhouse on 2025-04-01\n"
    b"Requisition ID,Job Name,Department,Key Role,Hiring Manager,Office,Opened Date,Status\n"
    b"REQ-1,Backend Engineer,Engineering,Yes,Hana,Berlin,2025-01-06,Open\n"
    b"REQ-2,Data Analyst,Data,no,Omar,Remote,06/01/2025,open\n"
    b"REQ-3,Designer,Design,,Lia,London,2025-02-01T09:30:00Z,On hold\n"
    b"REQ-4,Sales Lead,Sales,TRUE,Sam,Paris,20.01.2025,Open\n"
)
APPLICATIONS = (
    b"Application ID,Requisition ID,Candidate Name,Candidate Email,Source,Current Stage,"
    b"Applied On,Interview Date,Offer Date,Offer Status,Hired Date,Withdrawn Date\n"
    b"A-1,REQ-1,Ann Lee,ANN@example.com,Talent pool,Hired,2025-01-10,2025-01-20,2025-02-01,"
    b"Accepted,2025-02-05,\n"
    b"A-2,REQ-1,Ben Ode,ben@example.com,LinkedIn,Withdrawn,2025-01-11,2025-01-21,2025-02-02,"
    b"Declined,,2025-02-04\n"
    b"A-3,REQ-2,Cy Park,cy@example.com,CRM,Hired,2025-01-15 09:00:00,,2025-02-10,Accepted,"
    b"2025-02-16,\n"
    b"A-4,REQ-2,Di Ray,di@example.com,Referral,Withdrawn,2025-01-16,2025-01-25,,,,2025-01-30\n"
    b"A-5,REQ-3,Ed Fox,ed@example.com,Indeed,Interview,2025-02-03,2025-02-10,,,,\n"
    b"A-6,Sales Lead,Flo Gil,flo@example.com,Agency,Hired,2025-01-22,,2025-02-25,yes,"
    b"2025-03-03,\n"
)
COSTS = (
    "Date,Category,Spend,Currency,Requisition ID,Vendor\n"
    '2025-01-15,Job ads,"$1,200.00",,REQ-1,LinkedIn\n'
    '2025-02-01,Agency fees,"9.000,00 €",USD,REQ-4,Acme Search\n'
    "2025-02-20,Software,300,USD,,ATS licence\n"
    "2025-02-20,Software,300,USD,,ATS licence\n"
).encode()
Q1 = {"start": dt.date(2025, 1, 1), "end": dt.date(2025, 3, 31)}


def counts(engine: Engine) -> dict[str, int]:
    with db.read_session(engine) as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Job, Application, Cost, Candidate, ImportBatch)
        }


def run(engine: Engine, actor: User, kind: str, data: bytes, **options):
    return ats_import.import_file(
        engine, actor=actor, data=data, filename=f"{kind}.csv", kind=kind, **options
    )


def jobs_by_ref(engine: Engine) -> dict[str, Job]:
    with db.read_session(engine) as session:
        return {job.external_id: job for job in session.scalars(select(Job))}


def applications_by_ref(engine: Engine) -> dict[str, Application]:
    with db.read_session(engine) as session:
        return {a.external_id: a for a in session.scalars(select(Application))}


def day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def imported(engine: Engine, users: dict[str, User]) -> dict[str, ats_import.AtsImportResult]:
    """Ann is in the CRM already; everyone else is added from the applications file."""
    candidates.create_candidate(
        engine,
        actor=users["recruiter"],
        fields={"first_name": "Ann", "last_name": "Lee", "email": "ann@example.com"},
    )
    actor = users["recruiter"]
    return {
        kind: run(engine, actor, kind, data)
        for kind, data in (("jobs", JOBS), ("applications", APPLICATIONS), ("costs", COSTS))
    }


# --- the happy path ------------------------------------------------------------------------


def test_jobs_export_is_imported_with_its_fields(
    engine: Engine, imported: dict[str, ats_import.AtsImportResult]
) -> None:
    result = imported["jobs"]
    assert (result.read, result.created, result.updated, result.skipped) == (4, 4, 0, 0)
    assert result.errors == []
    found = jobs_by_ref(engine)
    backend, analyst, designer, sales = (found[f"REQ-{n}"] for n in range(1, 5))
    assert backend.title == "Backend Engineer" and backend.role_family == "Engineering"
    assert backend.key_role is True and analyst.key_role is False and sales.key_role is True
    assert backend.hiring_manager == "Hana" and backend.location == "Berlin"
    assert analyst.opened_at == dt.date(2025, 1, 6)  # day-first slashes
    assert designer.opened_at == dt.date(2025, 2, 1) and designer.status == "on_hold"
    assert sales.opened_at == dt.date(2025, 1, 20)
    with db.read_session(engine) as session:
        batch = session.scalars(select(ImportBatch).where(ImportBatch.kind == "jobs")).one()
        assert (batch.rows_read, batch.created_count) == (4, 4)
        assert (
            session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action == "job.create")
            )
            == 4
        )


def test_applications_export_sets_stages_offers_and_fills_jobs(
    engine: Engine, imported: dict[str, ats_import.AtsImportResult]
) -> None:
    result = imported["applications"]
    assert result.errors == []
    assert (result.read, result.created, result.candidates_created) == (6, 6, 5)
    found = applications_by_ref(engine)
    hired = found["A-1"]
    assert hired.stage == "hired" and hired.source == "talent_pool"
    assert hired.applied_at == day("2025-01-10") and hired.interview_at == day("2025-01-20")
    assert hired.offer_at == day("2025-02-01") and hired.hired_at == day("2025-02-05")
    assert hired.offer_accepted is True
    declined = found["A-2"]
    assert declined.stage == "withdrew" and declined.offer_accepted is False
    assert declined.offer_decided_at == day("2025-02-04") and declined.source == "job_board"
    assert found["A-3"].source == "talent_pool"  # "CRM" is a talent pool
    assert found["A-3"].applied_at == day("2025-01-15T09:00:00")
    withdrew = found["A-4"]
    assert withdrew.stage == "withdrew" and withdrew.offer_at is None
    assert withdrew.offer_accepted is None and withdrew.withdrew_at == day("2025-01-30")
    assert found["A-5"].stage == "interview" and found["A-5"].hired_at is None
    assert found["A-6"].source == "agency" and found["A-6"].stage == "hired"
    jobs = jobs_by_ref(engine)
    assert jobs["REQ-1"].status == "filled" and jobs["REQ-1"].filled_at == dt.date(2025, 2, 5)
    assert jobs["REQ-2"].filled_at == dt.date(2025, 2, 16)
    assert jobs["REQ-4"].filled_at == dt.date(2025, 3, 3)  # found by its title
    assert jobs["REQ-3"].status == "on_hold" and jobs["REQ-3"].filled_at is None
    with db.read_session(engine) as session:
        people = {c.email_normalized: c for c in session.scalars(select(Candidate))}
        assert people["ann@example.com"].source is None  # already here: untouched
        assert people["ben@example.com"].source == ats_import.NEW_CANDIDATE_SOURCE
        assert (people["ben@example.com"].first_name, people["ben@example.com"].last_name) == (
            "Ben",
            "Ode",
        )
        stages = session.scalar(
            select(func.count()).select_from(Activity).where(Activity.kind == "stage")
        )
        assert stages == 6


def test_metrics_from_imported_files(
    engine: Engine, imported: dict[str, ats_import.AtsImportResult]
) -> None:
    report = metrics.compute(engine, **Q1)
    assert report.hires == 3
    # Filled 30, 41 and 42 days after opening.
    assert report.time_to_fill_days == pytest.approx((30 + 41 + 42) / 3)
    # Applied to accepted offer: 26, 31.6 (09:00 on the 15th to the 16th) and 40 days.
    assert report.time_to_hire_days == pytest.approx((26 + 31 + 15 / 24 + 40) / 3, abs=0.01)
    assert report.offer_acceptance_rate == pytest.approx(3 / 4)  # Ben declined
    assert report.source_of_hire == pytest.approx({"agency": 1 / 3, "talent_pool": 2 / 3})
    assert report.hires_from_talent_pools_share == pytest.approx(2 / 3)
    costs = imported["costs"]
    assert (costs.created, costs.skipped, costs.errors) == (4, 0, [])
    assert report.total_cost == pytest.approx(1200 + 9000 + 300 + 300)
    assert report.cost_per_hire == pytest.approx(10800 / 3)


def test_costs_are_parsed_with_symbols_separators_categories_and_jobs(
    engine: Engine, imported: dict[str, ats_import.AtsImportResult]
) -> None:
    jobs = jobs_by_ref(engine)
    with db.read_session(engine) as session:
        found = sorted(
            (c.incurred_on, c.category, c.amount, c.currency, c.job_id, c.note)
            for c in session.scalars(select(Cost))
        )
    assert found == [
        (dt.date(2025, 1, 15), "job_ads", Decimal("1200.00"), "USD", jobs["REQ-1"].id, "LinkedIn"),
        (
            dt.date(2025, 2, 1),
            "agency_fees",
            Decimal("9000.00"),
            "USD",
            jobs["REQ-4"].id,
            "Acme Search",
        ),
        (dt.date(2025, 2, 20), "tools", Decimal("300.00"), "USD", None, "ATS licence"),
        (dt.date(2025, 2, 20), "tools", Decimal("300.00"), "USD", None, "ATS licence"),
    ]


COSTS_AS_THEY_COME = (
    "Date,Category,Amount,Currency,Requisition ID,Vendor\n"
    "2025-02-01,Sign-on bonus,€560,,REQ-1,\n"
    "2025-02-03,Relocation,$500,,REQ-2,Movers\n"
    '2025-02-05,Background check,"40,00",EUR,REQ-1,Checkr\n'
    "2025-02-05,Drug test,40,EUR,REQ-1,Checkr\n"
    "2025-02-10,Headhunter,USD 400,,,Acme Search\n"
    "2025-02-12,Assessment tools,£50,,,Test platform\n"
    "2025-02-13,Job board,100,gbp,,Reed\n"
).encode()
TWO_HIRES = (
    b"Application ID,Requisition ID,Candidate Name,Candidate Email,Source,Current Stage,"
    b"Applied On,Hired Date\n"
    b"H-1,REQ-1,Ann Lee,ann@example.com,Agency,Hired,2025-01-10,2025-02-05\n"
    b"H-2,REQ-2,Cy Park,cy@example.com,Talent pool,Hired,2025-01-15,2025-02-16\n"
)


def test_costs_as_they_come_in_two_currencies(engine: Engine, users: dict[str, User]) -> None:
    """Categories of their own kept as labels; EUR team, 1 USD = 0.9 EUR; GBP has no rate."""
    admin, actor = users["admin"], users["recruiter"]
    money.set_team_currency(engine, actor=admin, currency="EUR", rates={"USD": "0.9"})
    run(engine, actor, "jobs", JOBS)
    assert run(engine, actor, "applications", TWO_HIRES).created == 2
    result = run(engine, actor, "costs", COSTS_AS_THEY_COME)
    assert (result.read, result.created, result.skipped) == (7, 5, 0)
    gbp = (
        "This cost is in GBP but the team counts in EUR and has no GBP rate; an admin can "
        "enter one in Settings → Money."
    )
    assert result.errors == [(7, "Amount", gbp), (8, "Currency", gbp)]
    jobs = jobs_by_ref(engine)
    with db.read_session(engine) as session:
        found = sorted(
            (c.incurred_on.day, c.category, c.category_label, c.amount, c.currency, c.job_id)
            for c in session.scalars(select(Cost))
        )
    one, two = jobs["REQ-1"].id, jobs["REQ-2"].id
    assert found == [
        (1, "other", "Sign-on bonus", Decimal("560.00"), "EUR", one),
        (3, "other", "Relocation", Decimal("500.00"), "USD", two),
        (5, "other", "Background check", Decimal("40.00"), "EUR", one),
        (5, "other", "Drug test", Decimal("40.00"), "EUR", one),  # its label tells it apart
        (10, "agency_fees", None, Decimal("400.00"), "USD", None),
    ]
    report = metrics.compute(engine, **Q1)
    # 560 + 500 × 0.9 + 40 + 40 + 400 × 0.9 = 1450 EUR, over 2 hires.
    assert report.hires == 2
    assert report.total_cost == pytest.approx(1450)
    assert report.cost_per_hire == pytest.approx(725)
    saved = pool_yield.savings(engine, **Q1)
    # Agency fees 360 EUR / 1 agency hire, × 1 pool hire; no tools or recruiter time.
    assert (saved["external_cost_per_hire"], saved["gross_savings"]) == (
        pytest.approx(360),
        pytest.approx(360),
    )
    assert (saved["crm_costs"], saved["net_savings"]) == (0, pytest.approx(360))
    again = run(engine, actor, "costs", COSTS_AS_THEY_COME)
    assert (again.created, again.skipped, len(again.errors)) == (0, 5, 2)
    # With a GBP rate the two refused rows come in; the rest are already here.
    money.set_rate(engine, actor=admin, currency="GBP", rate="1.2")
    third = run(engine, actor, "costs", COSTS_AS_THEY_COME)
    assert (third.created, third.skipped, third.errors) == (2, 5, [])
    # + 50 × 1.2 (tools) + 100 × 1.2 (job ads) = 1630 EUR
    assert metrics.compute(engine, **Q1).total_cost == pytest.approx(1630)


def test_importing_the_same_files_again_creates_nothing(
    engine: Engine, users: dict[str, User], imported: dict[str, ats_import.AtsImportResult]
) -> None:
    before = counts(engine)
    report = metrics.compute(engine, **Q1)
    for kind, data, rows in (("jobs", JOBS, 4), ("applications", APPLICATIONS, 6)):
        again = run(engine, users["recruiter"], kind, data)
        assert (again.created, again.updated, again.skipped, again.errors) == (0, 0, rows, [])
    again = run(engine, users["recruiter"], "costs", COSTS)
    assert (again.created, again.skipped) == (0, 4)
    after = counts(engine)
    assert after == before | {"import_batches": before["import_batches"] + 3}
    assert metrics.compute(engine, **Q1) == report


def test_natural_keys_when_the_file_has_no_ids(engine: Engine, users: dict[str, User]) -> None:
    actor = users["admin"]
    jobs_file = b"Job Title,Opened\nBackend Engineer,2025-01-06\nBackend Engineer,2025-03-01\n"
    assert run(engine, actor, "jobs", jobs_file).created == 2
    assert run(engine, actor, "jobs", jobs_file).skipped == 2
    apps = (
        b"Job,Opened,Email,Name,Source,Stage\n"
        b"Data Analyst,,zoe@example.com,Zoe Z,Referral,Applied\n"
    )
    run(engine, actor, "jobs", b"Job Title,Opened\nData Analyst,2025-01-06\n")
    first = run(engine, actor, "applications", apps)
    assert (first.created, first.errors) == (1, [])
    assert run(engine, actor, "applications", apps).skipped == 1
    assert counts(engine)["jobs"] == 3 and counts(engine)["applications"] == 1


def test_a_newer_export_updates_the_application(
    engine: Engine, users: dict[str, User], imported: dict[str, ats_import.AtsImportResult]
) -> None:
    newer = APPLICATIONS.replace(
        b"A-5,REQ-3,Ed Fox,ed@example.com,Indeed,Interview,2025-02-03,2025-02-10,,,,",
        b"A-5,REQ-3,Ed Fox,ed@example.com,Indeed,Hired,2025-02-03,2025-02-10,,,2025-03-20,",
    )
    result = run(engine, users["recruiter"], "applications", newer)
    assert (result.created, result.updated, result.skipped) == (0, 1, 5)
    assert applications_by_ref(engine)["A-5"].hired_at == day("2025-03-20")
    assert jobs_by_ref(engine)["REQ-3"].filled_at == dt.date(2025, 3, 20)
    # The jobs file again does not reopen a job a hire filled.
    run(engine, users["recruiter"], "jobs", JOBS)
    assert jobs_by_ref(engine)["REQ-3"].status == "filled"


# --- bad files and bad rows ----------------------------------------------------------------

BAD_FILES = {
    "empty": b"",
    "blank": b"  \n\n",
    "header only": b"Requisition ID,Job Name,Opened Date\n",
    "binary": b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "zeros": b"\x00\x01\x02\x03" * 500,
    "nothing useful": b"Colour,Shape\nred,round\n",
}


@pytest.mark.parametrize("kind", ats_tables.KINDS)
@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_refused_with_one_sentence(
    engine: Engine, users: dict[str, User], kind: str, name: str
) -> None:
    before = counts(engine)
    with pytest.raises(InputUnusable) as error:
        run(engine, users["admin"], kind, BAD_FILES[name])
    message = str(error.value)
    assert message.endswith(".") and "\n" not in message and message[0].isupper()
    assert message.count(". ") == 0
    assert counts(engine) == before


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("jobs", b"Job ID,Department\n1,Sales\n", "No column holds the job title"),
        ("applications", b"Job,Source\nX,LinkedIn\n", "email or LinkedIn URL"),
        ("applications", b"Job,Email\nX,a@example.com\n", "source"),
        ("costs", b"Category,Vendor\nTools,Acme\n", "the date and the amount"),
    ],
)
def test_a_file_missing_a_required_column_is_refused(
    engine: Engine, users: dict[str, User], kind: str, data: bytes, expected: str
) -> None:
    with pytest.raises(InputUnusable, match=expected):
        run(engine, users["admin"], kind, data)
    assert counts(engine)["import_batches"] == 0


def test_bad_rows_are_reported_and_good_rows_saved(engine: Engine, users: dict[str, User]) -> None:
    actor = users["recruiter"]
    run(engine, actor, "jobs", JOBS)
    bad = (
        b"Application ID,Requisition ID,Candidate Email,Candidate Name,Source,Current Stage,"
        b"Applied On,Hired Date\n"
        b"B-1,REQ-1,ok@example.com,Ok Person,Referral,Applied,2025-01-10,\n"
        b"B-2,REQ-1,bad@example.com,Bad Date,Referral,Applied,31/31/2025,\n"
        b"B-3,REQ-1,stage@example.com,Bad Stage,Referral,Daydreaming,2025-01-10,\n"
        b"B-4,REQ-1,source@example.com,Bad Source,Carrier pigeon,Applied,2025-01-10,\n"
        b"B-5,REQ-99,job@example.com,No Job,Referral,Applied,2025-01-10,\n"
        b"B-6,REQ-1,nobody@example.com,,Referral,Applied,2025-01-10,\n"
        b"B-7,REQ-1,early@example.com,Early Hire,Referral,Hired,2025-01-10,2025-01-01\n"
    )
    result = run(engine, actor, "applications", bad)
    assert (result.read, result.created) == (7, 1)
    rows = {line: (column, problem) for line, column, problem in result.errors}
    assert sorted(rows) == [3, 4, 5, 6, 7, 8]
    assert rows[3][0] == "Applied On" and "is not a date" in rows[3][1]
    assert rows[4][0] == "Current Stage" and "Unknown stage" in rows[4][1]
    assert rows[5][0] == "Source" and "Unknown source" in rows[5][1]
    assert rows[6][0] == "Requisition ID" and "REQ-99" in rows[6][1]
    assert rows[7][0] == "Candidate Email" and "No one in the CRM" in rows[7][1]
    assert rows[8][0] == "Hired Date" and "before" in rows[8][1]
    report = result.error_report_csv().splitlines()
    assert report[0] == "row,column,problem" and len(report) == 7
    assert counts(engine)["applications"] == 1 and counts(engine)["candidates"] == 1
    assert jobs_by_ref(engine)["REQ-1"].status == "open"  # the refused hire left no trace
    costs = (
        b"Date,Category,Amount\n"
        b"2025-01-01,Tools,100\n"
        b"2025-01-02,Tools,-50\n"
        b"2025-01-03,Tools,(20.00)\n"
        b"2025-13-45,Tools,10\n"
        b"2025-01-04,Lunch,10\n"
        b"2025-01-05,Tools,ten\n"
        b"2025-01-06,Tools,\xc2\xa310\n"
    )
    result = run(engine, actor, "costs", costs)
    assert result.created == 2  # a category of its own ("Lunch") is kept, not refused
    assert [(line, column) for line, column, _ in result.errors] == [
        (3, "Amount"),
        (4, "Amount"),
        (5, "Date"),
        (7, "Amount"),
        (8, "Amount"),  # £10: the team counts in USD and has no GBP rate
    ]
    assert "more than zero" in result.errors[0][2]


def test_people_added_from_an_applications_file_follow_the_field_rules(
    engine: Engine, users: dict[str, User]
) -> None:
    actor = users["recruiter"]
    run(engine, actor, "jobs", JOBS)
    data = (
        b"Application ID,Requisition ID,Candidate Email,Candidate Name,Source,Applied On\n"
        b'C-1,REQ-1,  Lima@Example.COM ,"Lima, Ana",Referral,2025-01-10\n'
        b"C-2,REQ-1,long@example.com," + b"N" * 101 + b" Long,Referral,2025-01-10\n"
    )
    result = run(engine, actor, "applications", data)
    assert (result.created, result.candidates_created) == (1, 1)
    ((line, column, problem),) = result.errors
    assert (line, column) == (3, "Candidate Name") and "longer than 100" in problem
    with db.read_session(engine) as session:
        ana = session.scalars(select(Candidate).where(Candidate.source == "ATS import")).one()
    assert (ana.first_name, ana.last_name) == ("Ana", "Lima")  # "Last, First" as everywhere
    assert (ana.email, ana.email_normalized) == ("Lima@example.com", "lima@example.com")
    assert ana.phone is None and ana.consent_status == "legitimate_interest"


def test_dry_run_and_preview_write_nothing(engine: Engine, users: dict[str, User]) -> None:
    with db.read_session(engine) as session:
        audited = session.scalar(select(func.count()).select_from(AuditLog))
    result = run(engine, users["admin"], "jobs", JOBS, dry_run=True)
    assert (result.created, result.batch_id) == (4, None)
    preview = ats_import.preview(engine, JOBS, kind="jobs")
    assert preview.created == 4 and preview.shape.header_line == 1
    assert preview.mapping["Requisition ID"] == "external_id"
    assert preview.mapping["Job Name"] == "title" and preview.mapping["Opened Date"] == "opened"
    assert preview.mapping["Office"] == "location"
    assert counts(engine) == dict.fromkeys(counts(engine), 0)
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditLog)) == audited


def test_a_mapping_chosen_by_hand(engine: Engine, users: dict[str, User]) -> None:
    data = b"Ref,Name,Created,Team\nX-1,Ops Lead,2025-01-02,Ops\n"
    preview = ats_import.preview(engine, data, kind="jobs", mapping={"Ref": "external_id"})
    assert preview.mapping == {
        "Ref": "external_id",
        "Name": "title",
        "Created": "opened",
        "Team": "role_family",
    }
    run(engine, users["admin"], "jobs", data, mapping={"Ref": "external_id", "Team": None})
    job = jobs_by_ref(engine)["X-1"]
    assert job.role_family is None and job.title == "Ops Lead"
    with pytest.raises(InputUnusable, match="no column"):
        ats_import.preview(engine, data, kind="jobs", mapping={"Nope": "title"})
    with pytest.raises(InputUnusable, match="both go to"):
        ats_import.preview(engine, data, kind="jobs", mapping={"Ref": "title", "Name": "title"})


def test_a_manager_cannot_import(engine: Engine, users: dict[str, User]) -> None:
    with pytest.raises(PermissionDenied):
        run(engine, users["manager"], "jobs", JOBS)
    assert counts(engine)["jobs"] == 0


@pytest.mark.parametrize(
    ("text", "month_first", "expected"),
    [
        ("2025-03-04", False, "2025-03-04T00:00:00"),
        ("04/03/2025", False, "2025-03-04T00:00:00"),
        ("03/04/2025", True, "2025-03-04T00:00:00"),
        ("4.3.2025", False, "2025-03-04T00:00:00"),
        ("2025-03-04T10:30:00Z", False, "2025-03-04T10:30:00"),
        ("2025-03-04 12:30:00+02:00", False, "2025-03-04T10:30:00"),
        ("03/04/2025 1:05 PM", True, "2025-03-04T13:05:00"),
        ("4 Mar 2025", False, "2025-03-04T00:00:00"),
        ("March 4, 2025", False, "2025-03-04T00:00:00"),
    ],
)
def test_dates(text: str, month_first: bool, expected: str) -> None:
    assert values.parse_moment(text, month_first=month_first) == day(expected)


def test_a_file_that_shows_month_first_dates(engine: Engine, users: dict[str, User]) -> None:
    data = b"Job Title,Opened Date\nA,03/04/2025\nB,12/31/2025\n"
    run(engine, users["admin"], "jobs", data)
    with db.read_session(engine) as session:
        opened = {title: day for title, day in session.execute(select(Job.title, Job.opened_at))}
    assert opened == {"A": dt.date(2025, 3, 4), "B": dt.date(2025, 12, 31)}


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("$1,234.50", "1234.50", "USD"),
        ("1.234,50 €", "1234.50", "EUR"),
        ("£99", "99", "GBP"),
        ("EUR 1 200", "1200", "EUR"),
        ("1,5", "1.5", None),
        ("(20)", "-20", None),
    ],
)
def test_amounts(text: str, amount: str, currency: str | None) -> None:
    assert values.parse_amount(text) == (Decimal(amount), currency)


# --- the page ------------------------------------------------------------------------------


def open_page(user: User):
    at = app_as(user).run()
    at.switch_page("app_pages/import_export.py").run()
    assert not at.exception
    return at


def test_page_imports_jobs_with_a_preview(engine: Engine, users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    at.radio(key="io_ats_kind").set_value("jobs").run()
    uploader = next(u for u in at.get("file_uploader") if "ATS" in u.label)
    uploader.upload("jobs.csv", JOBS, "text/csv").run()
    assert not at.exception
    boxes = {box.label: box for box in at.selectbox if box.key and "io_ats_map" in box.key}
    assert boxes["Job Name"].value == "title" and boxes["Opened Date"].value == "opened"
    boxes["Office"].set_value("(ignore)").run()
    at.button(key="io_ats_preview").click().run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["New"] == "4" and shown["Refused rows"] == "0"
    assert counts(engine)["jobs"] == 0
    at.button(key="io_ats_import").click().run()
    assert not at.exception
    assert "4 new" in at.success[0].value
    assert counts(engine)["jobs"] == 4
    assert all(job.location is None for job in jobs_by_ref(engine).values())


def test_page_shows_row_problems_and_the_error_report(
    engine: Engine, users: dict[str, User]
) -> None:
    at = open_page(users["admin"])
    at.radio(key="io_ats_kind").set_value("costs").run()
    uploader = next(u for u in at.get("file_uploader") if "ATS" in u.label)
    uploader.upload("costs.csv", b"Date,Amount\n2025-01-01,100\n2025-01-02,-5\n", "text/csv").run()
    at.button(key="io_ats_preview").click().run()
    assert {m.label: m.value for m in at.metric}["Refused rows"] == "1"
    assert any("more than zero" in str(frame.value) for frame in at.dataframe)
    at.button(key="io_ats_import").click().run()
    assert not at.exception
    assert any(b.label.startswith("Download the error report") for b in at.get("download_button"))
    assert counts(engine)["costs"] == 1


def test_page_refuses_a_bad_file_and_managers(engine: Engine, users: dict[str, User]) -> None:
    at = open_page(users["recruiter"])
    uploader = next(u for u in at.get("file_uploader") if "ATS" in u.label)
    uploader.upload("x.csv", b"Colour,Shape\nred,round\n", "text/csv").run()
    assert not at.exception
    at.button(key="io_ats_preview").click().run()
    assert any("None of the file's columns" in e.value for e in at.error)
    at = open_page(users["manager"])
    uploader = next(u for u in at.get("file_uploader") if "ATS" in u.label)
    assert uploader.disabled
