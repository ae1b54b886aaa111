"""CSV export: formula escaping, BOM, pools, search, streaming, the audit entry and the CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, insert, select
from typer.testing import CliRunner

from crm import candidates, db, exporter, pool_filter
from crm.cli import app
from crm.errors import NotFound
from crm.exporter import EXPORT_COLUMNS
from crm.imports.cells import escape_cell, unescape_cell
from crm.mapping import CANDIDATE_FIELDS, auto_mapping
from crm.models import AuditLog, Candidate, CandidateTag, Pool, PoolMember, User

runner = CliRunner()
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
TEXT_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "linkedin_url",
    "phone",
    "title",
    "company",
    "location",
    "country",
    "role_family",
    "source",
)


def person(first_name: str = "", **fields: Any) -> Candidate:
    skills = fields.pop("skills", [])
    tags = fields.pop("tags", [])
    fields.setdefault("last_name", "Test")
    candidate = Candidate(first_name=first_name, **fields)
    candidate.skills = list(skills)
    candidate.tags = [CandidateTag(tag=t) for t in tags]
    return candidate


def add(engine: Engine, *people: Candidate) -> list[int]:
    with db.write_session(engine) as session:
        session.add_all(people)
        session.flush()
        return [p.id for p in people]


def parse(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    return [dict(zip(EXPORT_COLUMNS, row, strict=True)) for row in rows[1:]]


def export(engine: Engine, **options: Any) -> list[dict[str, str]]:
    data, count = exporter.export_to_bytes(
        engine, actor=None, scope=exporter.ExportScope(**options)
    )
    rows = parse(data)
    assert count == len(rows)
    return rows


# --- escaping ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", DANGEROUS)
def test_every_dangerous_first_character_is_escaped(start: str) -> None:
    assert escape_cell(f"{start}cmd|' /C calc'!A0") == f"'{start}cmd|' /C calc'!A0"
    assert escape_cell(start) == f"'{start}"


@pytest.mark.parametrize("number", ["-3", "-2.5", "+44", "+3.0", "-.5", "-1e5", "+2E-3", "7"])
def test_plain_numbers_are_left_alone(number: str) -> None:
    assert escape_cell(number) == number


@pytest.mark.parametrize(
    "value",
    ["+44 20 7946 0000", "-3 years", "--3", "+-3", "-", "+", "-3,5", "- 3", "-3\n", "-0x1F"],
)
def test_almost_numbers_are_escaped(value: str) -> None:
    assert escape_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "Ana", "'quoted", " =1+1", "a=b", "3-1"])
def test_harmless_text_is_unchanged(value: str) -> None:
    assert escape_cell(value) == value


def test_formulas_are_escaped_in_every_exported_column(engine: Engine) -> None:
    nasty = {
        "first_name": "=1+1",
        "last_name": "+cmd",
        "email": "-x@example.com",
        "linkedin_url": "@linkedin",
        "phone": "+44 20 7946 0000",
        "title": '=HYPERLINK("http://x")',
        "company": "@SUM(1)",
        "location": "\tLondon",
        "country": "\r=1",
        "role_family": "-engineering",
        "source": "=IMPORTXML(1)",
    }
    add(engine, person(**nasty, skills=["=cmd|' /C calc'!A0"], tags=["@tag", "plain"]))
    (row,) = export(engine)
    for column, value in nasty.items():
        assert row[column] == "'" + value, column
    assert row["skills"] == "'=cmd|' /C calc'!A0"
    assert row["tags"] == "'@tag; plain"


def test_plain_numbers_stay_numbers_in_export(engine: Engine) -> None:
    add(engine, person("-3", last_name="+44", title="-2.5", company="+1", location="-0"))
    (row,) = export(engine)
    assert (row["first_name"], row["last_name"], row["title"]) == ("-3", "+44", "-2.5")
    assert (row["company"], row["location"]) == ("+1", "-0")


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
_CELL = st.one_of(
    _TEXT.map(lambda text: text[:30]),
    st.builds(lambda start, rest: (start + rest)[:30], st.sampled_from(DANGEROUS), _TEXT),
    st.sampled_from(["-3", "+44 20 7946 0000", "-2.5", "'=x", "a\r\nb", '"quoted"', ","]),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=st.fixed_dictionaries({column: _CELL for column in TEXT_COLUMNS}), skill=_CELL)
def test_exported_text_parses_back_to_the_same_values(
    engine: Engine, values: dict[str, str], skill: str
) -> None:
    """Whatever people type, csv.reader gives it back once the escaping quote is removed."""
    skills = [skill] if skill else []
    (candidate_id,) = add(engine, person(**values, skills=skills))
    try:
        (row,) = export(engine, candidate_ids=[candidate_id])
    finally:
        with db.write_session(engine) as session:
            session.execute(delete(Candidate).where(Candidate.id == candidate_id))
    for column, original in [*values.items(), ("skills", skill)]:
        exported = row[column]
        if escape_cell(original) != original:
            assert exported == "'" + original, column
            exported = exported[1:]
        assert exported == original, column


# --- what is exported -------------------------------------------------------------------


def test_columns_are_the_importers_own_field_names() -> None:
    importable = [column for column in EXPORT_COLUMNS if column in CANDIDATE_FIELDS]
    mapping = auto_mapping(list(EXPORT_COLUMNS))
    assert {header: mapping[header] for header in importable} == {c: c for c in importable}
    # The rest are for reading, not fields the importer fills.
    assert set(EXPORT_COLUMNS) - set(importable) == {
        "consent_status",
        "owner",
        "created_at",
        "last_contacted_at",
    }


def test_values_are_formatted_for_people_and_for_import_again(
    engine: Engine, users: dict[str, User]
) -> None:
    created = dt.datetime(2025, 3, 4, 5, 6, 7, 890, tzinfo=dt.UTC)
    add(
        engine,
        person(
            "Ana",
            last_name="Lima",
            email="ana@example.com",
            remote=True,
            years_experience=7,
            skills=["python", "aws", "go"],
            tags=["silver medalist"],
            consent_status="consented",
            owner_id=users["recruiter"].id,
            created_at=created,
            last_contacted_at=None,
        ),
        person("Ben", remote=False, email="ben@example.com"),
    )
    ana, ben = export(engine)
    assert ana["remote"] == "yes" and ben["remote"] == "no"
    assert ana["years_experience"] == "7" and ben["years_experience"] == ""
    assert ana["skills"] == "aws; go; python" and ben["skills"] == ""
    assert ana["tags"] == "silver medalist"
    assert ana["owner"] == "recruiter" and ben["owner"] == ""
    assert ana["created_at"] == "2025-03-04T05:06:07+00:00"
    assert ana["last_contacted_at"] == ""
    assert ana["consent_status"] == "consented"
    assert ben["consent_status"] == "legitimate_interest"


def test_bom_only_when_asked(engine: Engine, tmp_path: Path) -> None:
    add(engine, person("Zoë", email="zoe@example.com"))
    plain, _ = exporter.export_to_bytes(engine, actor=None)
    with_bom, _ = exporter.export_to_bytes(engine, actor=None, bom=True)
    assert not plain.startswith(b"\xef\xbb\xbf")
    assert plain.startswith(b"first_name,")
    assert with_bom.startswith(b"\xef\xbb\xbffirst_name,")
    assert with_bom[3:] == plain
    assert "Zoë".encode() in plain
    text = io.StringIO()
    exporter.export_candidates(engine, text, actor=None, bom=True)
    assert text.getvalue().startswith("\ufefffirst_name,")
    path = tmp_path / "out.csv"
    with path.open("wb") as out:
        assert exporter.export_candidates(engine, out, actor=None, bom=True) == 1
    assert path.read_bytes() == with_bom


@pytest.fixture
def people(engine: Engine, users: dict[str, User]) -> Engine:
    add(
        engine,
        person("Ana", email="ana@example.com", skills=["python", "aws"], title="Engineer"),
        person("Ben", email="ben@example.com", skills=["python"], company="Pythonic Ltd"),
        person("Cy", email="cy@example.com", skills=["go"], title="Data engineer"),
        person("Di", email="di@example.com", skills=[], last_name="Pythonesque"),
        person("Ed", email="ed@example.com", skills=["rust"]),
    )
    with db.write_session(engine) as session:
        ids = dict(session.execute(select(Candidate.first_name, Candidate.id)).all())
        session.add(
            Pool(
                name="Python people",
                kind="dynamic",
                filter={"field": "skills", "op": "has_any", "value": ["python"]},
            )
        )
        shortlist = Pool(name="Shortlist", kind="static")
        session.add(shortlist)
        session.flush()
        session.add_all(
            [
                PoolMember(pool_id=shortlist.id, candidate_id=ids["Cy"]),
                PoolMember(pool_id=shortlist.id, candidate_id=ids["Ed"]),
            ]
        )
    return engine


def members(engine: Engine, name: str) -> set[str]:
    with db.read_session(engine) as session:
        pool = session.scalar(select(Pool).where(Pool.name == name))
        condition = pool_filter.membership_condition(session, pool)
        return set(session.scalars(select(Candidate.email).where(condition)))


@pytest.mark.parametrize("pool_name", ["Python people", "Shortlist"])
def test_pool_export_is_the_pools_members(people: Engine, pool_name: str) -> None:
    rows = export(people, pool_name=pool_name)
    assert {row["email"] for row in rows} == members(people, pool_name)
    assert len(rows) == len(members(people, pool_name)) == 2


def test_a_missing_pool_is_one_sentence(people: Engine) -> None:
    with pytest.raises(NotFound) as raised:
        exporter.export_to_bytes(people, actor=None, scope=exporter.ExportScope(pool_name="Nope"))
    assert str(raised.value) == "There is no pool called 'Nope'."


@pytest.mark.parametrize("text", ["python", "ENGINEER", "  cy  ", "nobody at all"])
def test_search_export_is_what_the_search_lists(people: Engine, text: str) -> None:
    listed = candidates.search(people, text=text, page_size=100)
    rows = export(people, text=text)
    assert {row["email"] for row in rows} == {row["email"] for row in listed.rows}
    assert len(rows) == listed.total


def test_quick_filters_export_what_the_page_lists(people: Engine, users: dict[str, User]) -> None:
    with db.write_session(people) as session:
        for name in ("Ana", "Cy"):
            session.scalars(
                select(Candidate).where(Candidate.first_name == name)
            ).one().remote = True
    filters = candidates.QuickFilters(remote=True)
    listed = candidates.search(people, text="engineer", filters=filters, page_size=100)
    rows = export(people, text="engineer", filters=filters)
    assert {row["email"] for row in rows} == {row["email"] for row in listed.rows}
    assert {row["first_name"] for row in rows} == {"Ana", "Cy"}
    with db.read_session(people) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "export")).one()
    assert entry.detail["quick_filters"] == {"remote": True}


def test_selection_and_filters_narrow_each_other(people: Engine) -> None:
    with db.read_session(people) as session:
        ids = dict(session.execute(select(Candidate.first_name, Candidate.id)).all())
    chosen = [ids["Ana"], ids["Cy"], ids["Ed"], ids["Ana"], 999_999]
    assert [r["first_name"] for r in export(people, candidate_ids=chosen)] == ["Ana", "Cy", "Ed"]
    narrowed = export(people, candidate_ids=chosen, pool_name="Shortlist", text="rust")
    assert [row["first_name"] for row in narrowed] == ["Ed"]
    assert export(people, candidate_ids=[]) == []


def test_every_export_is_audited_and_managers_may_export(
    people: Engine, users: dict[str, User]
) -> None:
    _, count = exporter.export_to_bytes(
        people,
        actor=users["manager"],
        scope=exporter.ExportScope(text="python", pool_name="Python people"),
    )
    with db.read_session(people) as session:
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "export")).one()
    assert entry.username == "manager"
    assert entry.detail["rows"] == count == 2
    assert entry.detail["pool"] == "Python people"
    assert entry.detail["filter"] == "python"


def test_a_large_export_streams_without_a_query_per_row(engine: Engine) -> None:
    total = 20_000
    rows = [
        {"first_name": f"P{i}", "last_name": "Bulk", "email": f"p{i}@example.com"}
        for i in range(total)
    ]
    with db.write_session(engine) as session:
        session.execute(insert(Candidate), [row | {"skills": ["python", "sql"]} for row in rows])
        ids = list(session.scalars(select(Candidate.id).order_by(Candidate.id)))
        session.execute(insert(CandidateTag), [{"candidate_id": i, "tag": "bulk"} for i in ids])
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        data, written = exporter.export_to_bytes(engine, actor=None)
        whole = len(statements)
        statements.clear()
        picked, picked_count = exporter.export_to_bytes(
            engine, actor=None, scope=exporter.ExportScope(candidate_ids=ids[::4])
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert written == total
    assert whole < 100, whole
    assert picked_count == total // 4 and len(statements) < 50
    exported = parse(data)
    assert exported[0]["skills"] == "python; sql" and exported[-1]["tags"] == "bulk"
    assert [row["email"] for row in exported[:3]] == [f"p{i}@example.com" for i in range(3)]


# --- the command ------------------------------------------------------------------------


def crm(*args: str):
    return runner.invoke(app, list(args))


def test_cli_exports_candidates_and_pools(people: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"  # the test database lives in tmp_path itself
    tmp_path.mkdir()
    target = tmp_path / "all.csv"
    result = crm("export", "candidates", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Exported 5 candidates to {target}.\n"
    assert len(parse(target.read_bytes())) == 5
    assert not target.read_bytes().startswith(b"\xef\xbb\xbf")

    searched = tmp_path / "python.csv"
    result = crm("export", "candidates", "--output", str(searched), "--search", "python", "--bom")
    assert result.exit_code == 0, result.output
    assert searched.read_bytes().startswith(b"\xef\xbb\xbf")
    assert {row["first_name"] for row in parse(searched.read_bytes())} == {"Ana", "Ben", "Di"}

    pool_file = tmp_path / "shortlist.csv"
    result = crm("export", "pool", "Shortlist", "-o", str(pool_file))
    assert result.exit_code == 0, result.output
    assert result.stderr == f"Exported 2 candidates to {pool_file}.\n"
    assert [row["first_name"] for row in parse(pool_file.read_bytes())] == ["Cy", "Ed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "python.csv", "shortlist.csv"]


def test_cli_export_refusals(people: Engine, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    missing = tmp_path / "no" / "such" / "folder" / "out.csv"
    result = crm("export", "candidates", "-o", str(missing))
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert "Traceback" not in result.output

    result = crm("export", "candidates", "-o", str(tmp_path))
    assert result.exit_code == 2 and "is a folder" in result.stderr

    result = crm("export", "pool", "Nope", "-o", str(tmp_path / "nope.csv"))
    assert result.exit_code == 1
    assert result.stderr == "Error: There is no pool called 'Nope'.\n"
    assert list(tmp_path.iterdir()) == []

    result = crm("export", "candidates")
    assert result.exit_code == 2  # Typer: the required -o is missing


def test_escaping_survives_a_round_trip_for_every_quote_and_sign() -> None:
    for value in ["'-", "''=x", "'-5", "-5", "=1+1", "'abc", "@home", "'", "''", "+44 20"]:
        escaped = escape_cell(value)
        assert unescape_cell(escaped) == value, value
        assert not escaped.startswith(("=", "+", "@")) or escaped == value == "-5"


def test_a_value_that_looks_escaped_is_quoted_again() -> None:
    # A spreadsheet hides one leading quote, and an import takes it for our escape: quoting
    # again shows the value as it is and brings it back unchanged.
    assert escape_cell("'=already quoted") == "''=already quoted"


def test_a_chart_table_as_csv_is_formula_safe_and_plain() -> None:
    import datetime as dt
    from decimal import Decimal

    from crm.export_values import csv_table

    data = csv_table(
        ["source", "hires", "cost", "month", "rate"],
        [
            {"source": "=HYPERLINK(1)", "hires": 3, "cost": Decimal("12.50"), "rate": 0.25},
            {"source": "Referral", "hires": -2, "month": dt.date(2026, 1, 1), "rate": float("nan")},
        ],
    )
    assert data.decode("utf-8").splitlines() == [
        "source,hires,cost,month,rate",
        "'=HYPERLINK(1),3,12.50,,0.25",
        "Referral,-2,,2026-01-01,",
    ]
