"""Pool filters compiled to SQL: fields, operators, validation and live membership."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from crm import db, pools
from crm.errors import ValidationError
from crm.models import Candidate, CandidateSkill, CandidateTag, Pool, PoolMember

NOW = dt.datetime.now(dt.UTC)


def person(first: str, **fields: object) -> Candidate:
    skills = fields.pop("skills", [])
    tags = fields.pop("tags", [])
    candidate = Candidate(first_name=first, last_name="Test", **fields)
    candidate.skills = [CandidateSkill(skill=s) for s in skills]
    candidate.tags = [CandidateTag(tag=t) for t in tags]
    return candidate


@pytest.fixture
def people(engine: Engine) -> Engine:
    with db.write_session(engine) as session:
        session.add_all(
            [
                person(
                    "Ana",
                    location="London",
                    years_experience=7,
                    skills=["python", "aws"],
                    last_contacted_at=NOW - dt.timedelta(days=10),
                    role_family="Software Engineering",
                ),
                person(
                    "Ben",
                    location="Berlin",
                    remote=True,
                    years_experience=3,
                    skills=["python"],
                    tags=["silver medalist"],
                    last_contacted_at=NOW - dt.timedelta(days=200),
                ),
                person(
                    "Cy",
                    location="london",
                    years_experience=12,
                    skills=["go", "aws"],
                    title="Staff 100% Engineer",
                ),
                person("Di", location="Paris", skills=[], title="O'Brien's designer"),
            ]
        )
    return engine


def names(engine: Engine, filter_json: dict) -> set[str]:
    from sqlalchemy import select

    with db.read_session(engine) as session:
        condition = pools.compile_filter(session, filter_json, now=NOW)
        return set(session.scalars(select(Candidate.first_name).where(condition)))


@pytest.mark.parametrize(
    "filter_json, expected",
    [
        ({"field": "skills", "op": "has_all", "value": ["python", "aws"]}, {"Ana"}),
        ({"field": "skills", "op": "has_any", "value": ["GO", "aws"]}, {"Ana", "Cy"}),
        ({"field": "skills", "op": "has_none", "value": ["python"]}, {"Cy", "Di"}),
        ({"field": "skills", "op": "is_empty"}, {"Di"}),
        ({"field": "tags", "op": "has_any", "value": ["silver medalist"]}, {"Ben"}),
        ({"field": "location", "op": "in", "value": ["LONDON"]}, {"Ana", "Cy"}),
        ({"field": "location", "op": "ne", "value": "london"}, {"Ben", "Di"}),
        ({"field": "title", "op": "contains", "value": "100%"}, {"Cy"}),
        ({"field": "title", "op": "contains", "value": "o'brien"}, {"Di"}),
        ({"field": "title", "op": "is_empty"}, {"Ana", "Ben"}),
        ({"field": "years_experience", "op": "gte", "value": 5}, {"Ana", "Cy"}),
        ({"field": "years_experience", "op": "between", "value": [3, 7]}, {"Ana", "Ben"}),
        ({"field": "remote", "op": "eq", "value": True}, {"Ben"}),
        ({"field": "last_contacted_at", "op": "within_days", "value": 30}, {"Ana"}),
        # never contacted counts as gone quiet
        ({"field": "last_contacted_at", "op": "older_than_days", "value": 90}, {"Ben", "Cy", "Di"}),
        (
            {
                "all": [
                    {"field": "skills", "op": "has_any", "value": ["aws"]},
                    {
                        "any": [
                            {"field": "location", "op": "in", "value": ["London"]},
                            {"field": "remote", "op": "eq", "value": True},
                        ]
                    },
                    {"field": "years_experience", "op": "gte", "value": 5},
                ]
            },
            {"Ana", "Cy"},
        ),
        ({"any": []}, set()),
        ({"all": []}, {"Ana", "Ben", "Cy", "Di"}),
    ],
)
def test_filters(people: Engine, filter_json: dict, expected: set[str]) -> None:
    assert names(people, filter_json) == expected


@pytest.mark.parametrize(
    "filter_json, message",
    [
        ({"field": "salary", "op": "gte", "value": 1}, "Unknown filter field 'salary'"),
        ({"field": "skills", "op": "gte", "value": 1}, "Unknown operator 'gte' for skills"),
        ({"field": "years_experience", "op": "gte", "value": "five"}, "must be a number"),
        ({"field": "remote", "op": "eq", "value": "yes"}, "must be true or false"),
        ({"field": "pool", "op": "in", "value": ["Gone"]}, "pool that no longer exists"),
        ({"all": "nope"}, "must hold a list"),
    ],
)
def test_bad_filters_name_the_problem(people: Engine, filter_json: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        names(people, filter_json)


def test_sql_in_values_is_just_a_value(people: Engine) -> None:
    hostile = {"field": "location", "op": "eq", "value": "x'; DROP TABLE candidates; --"}
    assert names(people, hostile) == set()
    assert len(names(people, {"all": []})) == 4


def test_dynamic_pool_includes_people_added_later_and_static_lists_do_not(
    people: Engine,
) -> None:
    with db.write_session(people) as session:
        session.add(
            Pool(
                name="AWS",
                kind="dynamic",
                filter={"field": "skills", "op": "has_any", "value": ["aws"]},
            )
        )
        static = Pool(name="Hand-picked", kind="static")
        session.add(static)
        session.flush()
        ana = session.query(Candidate).filter_by(first_name="Ana").one()
        session.add(PoolMember(pool_id=static.id, candidate_id=ana.id))
    sizes = {s.name: s.size for s in pools.list_pools(people)}
    assert sizes == {"AWS": 2, "Hand-picked": 1}
    with db.write_session(people) as session:
        session.add(person("Eve", skills=["aws"]))
    sizes = {s.name: s.size for s in pools.list_pools(people)}
    assert sizes == {"AWS": 3, "Hand-picked": 1}


def test_a_pool_with_a_broken_filter_is_reported_not_raised(people: Engine) -> None:
    with db.write_session(people) as session:
        session.add(
            Pool(
                name="Broken",
                kind="dynamic",
                filter={"field": "pool", "op": "in", "value": ["Deleted pool"]},
            )
        )
    (summary,) = pools.list_pools(people)
    assert summary.size is None
    assert "no longer exists: 'Deleted pool'" in summary.problem
