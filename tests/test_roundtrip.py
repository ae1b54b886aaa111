"""Export then import gives the same people back (formula escaping aside)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from crm import db, exporter, importer
from crm.models import Candidate, CandidateTag, User

# Text people really type, including the characters that trip CSV and spreadsheets up.
free_text = st.text(
    alphabet=st.sampled_from(string.ascii_letters + string.digits + " ,;\"'=+-@&<>éüßø€" + "\t"),
    min_size=0,
    max_size=30,
).map(lambda s: " ".join(s.split()))  # values are stored trimmed and single-spaced
name = st.text(alphabet=string.ascii_letters + "éü'-", min_size=1, max_size=20).filter(
    lambda s: s.strip("'-")
)
skill = st.text(alphabet=string.ascii_lowercase + "+#", min_size=1, max_size=12)

person = st.fixed_dictionaries(
    {
        "first_name": name,
        "last_name": name,
        "title": free_text,
        "company": free_text,
        "location": free_text,
        "remote": st.booleans(),
        "years_experience": st.none() | st.integers(0, 60),
        "skills": st.lists(skill, max_size=4, unique=True),
        "tags": st.lists(skill, max_size=3, unique=True),
    }
)


def snapshot(engine: Engine) -> list[tuple]:
    with db.read_session(engine) as session:
        people = session.scalars(select(Candidate).order_by(Candidate.email_normalized)).all()
        return [
            (
                c.first_name,
                c.last_name,
                c.email_normalized,
                c.title or "",
                c.company or "",
                c.location or "",
                c.remote,
                c.years_experience,
                sorted(c.skills),
                sorted(t.tag for t in c.tags),
            )
            for c in people
        ]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=st.lists(person, min_size=1, max_size=8), bom=st.booleans())
def test_export_then_import_round_trip(
    users: dict[str, User], engine: Engine, people: list[dict], bom: bool
) -> None:
    with db.write_session(engine) as session:
        for table in (CandidateTag, Candidate):
            session.execute(delete(table))
        for index, fields in enumerate(people):
            candidate = Candidate(
                first_name=fields["first_name"],
                last_name=fields["last_name"],
                email=f"person{index}@example.com",
                email_normalized=f"person{index}@example.com",
                title=fields["title"] or None,
                company=fields["company"] or None,
                location=fields["location"] or None,
                remote=fields["remote"],
                years_experience=fields["years_experience"],
            )
            candidate.skills = list(fields["skills"])
            candidate.tags = [CandidateTag(tag=t) for t in fields["tags"]]
            session.add(candidate)
    before = snapshot(engine)
    data, rows = exporter.export_to_bytes(engine, actor=users["recruiter"], bom=bom)
    assert rows == len(people)
    with db.write_session(engine) as session:
        for table in (CandidateTag, Candidate):
            session.execute(delete(table))
    result = importer.run_import(
        engine, data, importer.ImportOptions(), actor=users["recruiter"], filename="export.csv"
    )
    assert result.errors == 0, result.problems
    assert result.created == len(people)
    assert snapshot(engine) == before
