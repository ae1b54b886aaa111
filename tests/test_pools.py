"""Pool filters compiled to SQL: fields, operators, validation and live membership."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import Engine

from crm import clock, db, pool_filter, pools
from crm.errors import ValidationError
from crm.models import Candidate, CandidateTag, Pool, PoolMember


def person(first: str, **fields: object) -> Candidate:
    skills = fields.pop("skills", [])
    tags = fields.pop("tags", [])
    candidate = Candidate(first_name=first, last_name="Test", **fields)
    candidate.skills = list(skills)
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
                    last_contacted_at=clock.now() - dt.timedelta(days=10),
                    role_family="Software Engineering",
                ),
                person(
                    "Ben",
                    location="Berlin",
                    remote=True,
                    years_experience=3,
                    skills=["python"],
                    tags=["silver medalist"],
                    last_contacted_at=clock.now() - dt.timedelta(days=200),
                ),
                person(
                    "Cy",
                    location="london",
                    years_experience=12,
                    skills=["go", "aws"],
                    title="Staff 100% Engineer",
                ),
                person("Di", location="Paris", skills=[], title="O'Brien's designer"),
                person("Ed", location="Oslo", skills=["golang", 'c"sharp', "50%_off"]),
            ]
        )
    return engine


def names(engine: Engine, filter_json: dict) -> set[str]:
    from sqlalchemy import select

    with db.read_session(engine) as session:
        condition = pool_filter.compile_filter(session, filter_json, now=clock.now())
        return set(session.scalars(select(Candidate.first_name).where(condition)))


@pytest.mark.parametrize(
    "filter_json, expected",
    [
        ({"field": "skills", "op": "has_all", "value": ["python", "aws"]}, {"Ana"}),
        ({"field": "skills", "op": "has_any", "value": ["GO", "aws"]}, {"Ana", "Cy"}),
        ({"field": "skills", "op": "has_none", "value": ["python"]}, {"Cy", "Di", "Ed"}),
        # a skill is a whole item: "go" is not "golang", and quotes or wildcards are text
        ({"field": "skills", "op": "has_any", "value": ["go"]}, {"Cy"}),
        ({"field": "skills", "op": "has_any", "value": ["golang"]}, {"Ed"}),
        ({"field": "skills", "op": "has_any", "value": ['c"sharp']}, {"Ed"}),
        # "sharp" sits inside Ed's escaped 'c\"sharp' but is not one of his skills
        ({"field": "skills", "op": "has_any", "value": ["sharp"]}, set()),
        ({"field": "skills", "op": "has_any", "value": ["%"]}, set()),
        ({"field": "skills", "op": "has_all", "value": ["50%_off", "golang"]}, {"Ed"}),
        ({"field": "skills", "op": "is_not_empty"}, {"Ana", "Ben", "Cy", "Ed"}),
        ({"field": "skills", "op": "is_empty"}, {"Di"}),
        ({"field": "tags", "op": "has_any", "value": ["silver medalist"]}, {"Ben"}),
        ({"field": "location", "op": "in", "value": ["LONDON"]}, {"Ana", "Cy"}),
        ({"field": "location", "op": "ne", "value": "london"}, {"Ben", "Di", "Ed"}),
        ({"field": "title", "op": "contains", "value": "100%"}, {"Cy"}),
        ({"field": "title", "op": "contains", "value": "o'brien"}, {"Di"}),
        ({"field": "title", "op": "is_empty"}, {"Ana", "Ben", "Ed"}),
        ({"field": "years_experience", "op": "gte", "value": 5}, {"Ana", "Cy"}),
        ({"field": "years_experience", "op": "between", "value": [3, 7]}, {"Ana", "Ben"}),
        ({"field": "remote", "op": "eq", "value": True}, {"Ben"}),
        ({"field": "last_contacted_at", "op": "within_days", "value": 30}, {"Ana"}),
        # never contacted counts as gone quiet
        (
            {"field": "last_contacted_at", "op": "older_than_days", "value": 90},
            {"Ben", "Cy", "Di", "Ed"},
        ),
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
        ({"all": []}, {"Ana", "Ben", "Cy", "Di", "Ed"}),
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
    assert len(names(people, {"all": []})) == 5


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


# --- saving, insight, overlap, custom fields, engagement, pipeline ----------------------------


def test_save_validates_and_names_are_unique(people: Engine, users) -> None:
    actor = users["recruiter"]
    with pytest.raises(ValidationError, match="Unknown operator 'near' for location"):
        pools.save_pool(
            people,
            actor=actor,
            name="Bad",
            kind="dynamic",
            filter_json={"field": "location", "op": "near", "value": "x"},
        )
    first = pools.save_pool(
        people,
        actor=actor,
        name=" London ",
        kind="dynamic",
        filter_json={"field": "location", "op": "in", "value": ["london"]},
    )
    with pytest.raises(ValidationError, match="already a pool called 'London'"):
        pools.save_pool(people, actor=actor, name="London", kind="static")
    with pytest.raises(ValidationError, match="kind cannot change"):
        pools.save_pool(people, actor=actor, name="London", kind="static", pool_id=first)
    with pytest.raises(ValidationError, match="Give the pool a name"):
        pools.save_pool(people, actor=actor, name="  ", kind="static")


def test_list_shows_size_growth_engagement_and_last_touch(people: Engine, users) -> None:
    actor = users["recruiter"]
    pools.save_pool(people, actor=actor, name="All", kind="dynamic", filter_json={"all": []})
    (summary,) = pools.list_pools(people)
    assert (summary.size, summary.growth, summary.owner) == (5, 5, actor.display_name)
    assert summary.engaged == 0 and summary.engagement_rate == 0
    # Ana was contacted 10 days ago, but nothing was ever aimed at the pool itself.
    assert summary.last_touch is None


def test_list_and_cli_give_each_pool_its_campaign_and_content_last_touch(
    engine: Engine,
) -> None:
    from typer.testing import CliRunner

    from crm.cli import app
    from tests.test_attention import touched_pools

    made = touched_pools(engine)
    now = dt.datetime.fromtimestamp(made["now"], dt.UTC)
    expected = {
        "AWS experts": now - dt.timedelta(days=40),  # not Ana's contact yesterday
        "Senior backend engineers": now - dt.timedelta(days=3),
    }
    assert {s.name: s.last_touch for s in pools.list_pools(engine)} == expected
    result = CliRunner().invoke(app, ["pool", "list", "--json"])
    assert result.exit_code == 0, result.output
    printed = {row["name"]: row["last_touch"] for row in json.loads(result.stdout)}
    assert printed == {name: moment.isoformat() for name, moment in expected.items()}


def test_overlap_and_static_lists(people: Engine, users) -> None:
    actor = users["recruiter"]
    london = pools.save_pool(
        people,
        actor=actor,
        name="London",
        kind="dynamic",
        filter_json={"field": "location", "op": "in", "value": ["london"]},
    )
    aws = pools.save_pool(people, actor=actor, name="AWS", kind="static")
    added = pools.add_matching(
        people,
        actor=actor,
        pool_id=aws,
        filter_json={"field": "skills", "op": "has_any", "value": ["aws"]},
    )
    assert added == 2
    assert pools.overlap(people, london, aws) == pools.Overlap(2, 2, 2)
    ids = pools.member_ids(people, aws)
    assert pools.remove_members(people, actor=actor, pool_id=aws, candidate_ids=ids[:1]) == 1
    assert pools.overlap(people, london, aws) == pools.Overlap(2, 1, 1)
    with pytest.raises(ValidationError, match="dynamic pool"):
        pools.remove_members(people, actor=actor, pool_id=london, candidate_ids=ids)


def test_a_pool_used_by_another_filter_cannot_be_deleted(people: Engine, users) -> None:
    actor = users["recruiter"]
    base = pools.save_pool(people, actor=actor, name="Base", kind="static")
    pools.save_pool(
        people,
        actor=actor,
        name="Uses base",
        kind="dynamic",
        filter_json={"field": "pool", "op": "not_in", "value": ["Base"]},
    )
    with pytest.raises(ValidationError, match="used in the filter of Uses base"):
        pools.delete_pool(people, actor=actor, pool_id=base)


def test_custom_field_conditions_and_a_deleted_field(people: Engine, users) -> None:
    from crm import custom_fields
    from crm.models import CustomField

    admin = users["admin"]
    level = custom_fields.create_field(people, actor=admin, label="Level", kind="number")
    custom_fields.create_field(
        people, actor=admin, label="Visa", kind="choice", choices=["needed", "not needed"]
    )
    custom_fields.create_field(people, actor=admin, label="Available", kind="date")
    with db.write_session(people) as session:
        for candidate in session.query(Candidate):
            if candidate.first_name == "Ana":
                candidate.custom_fields = {"level": 4, "visa": "needed", "available": "2026-03-01"}
            if candidate.first_name == "Ben":
                candidate.custom_fields = {"level": 2, "visa": "not needed"}
    assert names(people, {"field": "custom.level", "op": "gte", "value": 3}) == {"Ana"}
    assert names(people, {"field": "custom.visa", "op": "in", "value": ["Not Needed"]}) == {"Ben"}
    assert names(people, {"field": "custom.level", "op": "is_empty"}) == {"Cy", "Di", "Ed"}
    assert names(people, {"field": "custom.available", "op": "before", "value": "2026-04-01"}) == {
        "Ana"
    }
    with pytest.raises(ValidationError, match="must be a date"):
        names(people, {"field": "custom.available", "op": "after", "value": "soon"})
    with pytest.raises(ValidationError, match="Unknown operator 'has_any' for Level"):
        names(people, {"field": "custom.level", "op": "has_any", "value": [1]})
    with db.write_session(people) as session:
        session.delete(session.get(CustomField, level.id))
    # A saved pool that names the field is reported by list_pools, not raised.
    with db.write_session(people) as session:
        session.add(
            Pool(
                name="Levels",
                kind="dynamic",
                stages=[],
                filter={"field": "custom.level", "op": "gte", "value": 3},
            )
        )
    (summary,) = [p for p in pools.list_pools(people) if p.name == "Levels"]
    assert summary.size is None
    assert "custom field that no longer exists: 'level'" in (summary.problem or "")


def test_engagement_and_pipeline_stage(people: Engine, users) -> None:
    from crm.models import Application, Event, Job

    with db.write_session(people) as session:
        ids = {c.first_name: c.id for c in session.query(Candidate)}
        session.add_all(
            [
                Event(
                    kind="open",
                    candidate_id=ids["Ana"],
                    occurred_at=clock.now() - dt.timedelta(days=3),
                ),
                Event(
                    kind="click",
                    candidate_id=ids["Ben"],
                    occurred_at=clock.now() - dt.timedelta(days=40),
                ),
                # a scanner's automatic open is not engagement
                Event(
                    kind="open", candidate_id=ids["Cy"], occurred_at=clock.now(), is_machine=True
                ),
                Event(kind="unsubscribe", candidate_id=None, occurred_at=clock.now()),
            ]
        )
        job = Job(title="Backend engineer", opened_at=clock.now())
        session.add(job)
        session.flush()
        session.add(
            Application(
                candidate_id=ids["Ben"], job_id=job.id, source="talent_pool", stage="interview"
            )
        )
    assert names(people, {"field": "engagement", "op": "opened_within_days", "value": 7}) == {"Ana"}
    assert names(people, {"field": "engagement", "op": "engaged_within_days", "value": 60}) == {
        "Ana",
        "Ben",
    }
    assert names(people, {"field": "engagement", "op": "never_engaged"}) == {"Cy", "Di", "Ed"}
    assert names(people, {"field": "pipeline_stage", "op": "in", "value": ["interview"]}) == {"Ben"}
    assert len(names(people, {"field": "pipeline_stage", "op": "not_in", "value": ["hired"]})) == 5
    with pytest.raises(ValidationError, match="Unknown pipeline stage 'won'"):
        names(people, {"field": "pipeline_stage", "op": "in", "value": ["won"]})


def test_a_saved_dynamic_pool_includes_someone_imported_afterwards(people: Engine, users) -> None:
    from crm import importer

    pool_id = pools.save_pool(
        people,
        actor=users["recruiter"],
        name="Rust",
        kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["rust"]},
    )
    assert pools.member_ids(people, pool_id) == []
    data = b'Name,Email,Skills\r\nFay Test,fay@x.io,"Rust, Go"\r\n'
    importer.run_import(
        people, data, importer.ImportOptions(), actor=users["recruiter"], filename="new.csv"
    )
    (fay,) = pools.member_ids(people, pool_id)
    assert (
        pools.preview_filter(people, {"field": "pool", "op": "in", "value": ["Rust"]}).sample[0][
            "first_name"
        ]
        == "Fay"
    )


def test_not_in_a_pool_includes_people_its_filter_cannot_judge(people: Engine) -> None:
    # Di and Ed have no years of experience: they are not seniors, so they are "not in" it.
    with db.write_session(people) as session:
        session.add(
            Pool(
                name="Seniors",
                kind="dynamic",
                filter={"field": "years_experience", "op": "gte", "value": 10},
            )
        )
    assert names(people, {"field": "pool", "op": "in", "value": ["Seniors"]}) == {"Cy"}
    assert names(people, {"field": "pool", "op": "not_in", "value": ["Seniors"]}) == {
        "Ana",
        "Ben",
        "Di",
        "Ed",
    }


def test_days_are_bounded_with_a_sentence(people: Engine) -> None:
    with pytest.raises(ValidationError, match="between 0 and 36,500"):
        names(people, {"field": "last_contacted_at", "op": "older_than_days", "value": 10**6})


# --- limits: one saved pool must never break the pages for everyone -------------------------


def nested(levels: int) -> dict:
    """A filter with `levels` groups one inside another (built without recursion)."""
    node: dict = {"field": "remote", "op": "eq", "value": True}
    for _ in range(levels):
        node = {"all": [node]}
    return node


def skills(count: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}{n}" for n in range(count)]


@pytest.mark.parametrize(
    "filter_json, message",
    [
        # SQLite refuses a LIKE pattern over 50,000 bytes: the probe's 100,000 characters.
        pytest.param(
            {"field": "title", "op": "contains", "value": "x" * 100_000},
            "A text value in a filter can be at most 200 characters.",
            id="text-100000-characters",
        ),
        pytest.param(
            {"field": "location", "op": "in", "value": ["London", "y" * 201]},
            "A text value in a filter can be at most 200 characters.",
            id="text-in-a-list",
        ),
        pytest.param(
            {"field": "location", "op": "in", "value": skills(501)},
            "A list in a filter can hold at most 500 values.",
            id="list-501-values",
        ),
        pytest.param(
            {"any": [{"field": "remote", "op": "eq", "value": True}] * 100},
            "A filter can have at most 100 conditions and groups.",
            id="101-conditions",
        ),
        pytest.param(
            nested(11), "Filter groups can nest at most 10 levels deep.", id="nested-11-deep"
        ),
        pytest.param(
            nested(600), "Filter groups can nest at most 10 levels deep.", id="nested-600-deep"
        ),
        pytest.param(
            {"field": "years_experience", "op": "gte", "value": float("nan")},
            "A number in a filter must be a real number, not NaN or Infinity.",
            id="nan",
        ),
        pytest.param(
            {"field": "years_experience", "op": "between", "value": [1, float("inf")]},
            "A number in a filter must be a real number, not NaN or Infinity.",
            id="infinity",
        ),
        pytest.param(
            {"field": "years_experience", "op": "lte", "value": 10**30},
            "A number in a filter must be between -1,000,000,000,000 and 1,000,000,000,000.",
            id="huge-number",
        ),
        pytest.param(
            {"field": "location", "op": "eq", "value": "Lon\x00don"},
            "A filter value cannot contain a NUL character.",
            id="nul",
        ),
        pytest.param(
            {"field": "f" * 100_000, "op": "eq", "value": "x"},
            "Unknown filter field 'fffff",
            id="field-name-100000-characters",
        ),
        pytest.param(
            {"any": [{"field": "skills", "op": "has_any", "value": skills(500, p)} for p in "ab"]},
            "A filter can hold at most 1,000 conditions and values in all",
            id="1003-values-in-all",
        ),
    ],
)
def test_a_filter_over_a_limit_is_refused_naming_the_limit(
    people: Engine, users, filter_json: dict, message: str
) -> None:
    """The one check runs for a filter saved, previewed or counted; nothing is saved."""
    with pytest.raises(ValidationError) as preview:
        pools.preview_filter(people, filter_json)
    assert str(preview.value).startswith(message)
    assert len(str(preview.value)) < 200  # one sentence, never the value itself
    with pytest.raises(ValidationError, match=message[:30]):
        pools.save_pool(
            people, actor=users["recruiter"], name="Too much", kind="dynamic",
            filter_json=filter_json,
        )  # fmt: skip
    with pytest.raises(ValidationError, match=message[:30]):
        pool_filter.count_matching(people, filter_json)
    assert pools.list_pools(people) == []


def test_a_filter_a_hundred_thousand_levels_deep_is_refused_without_recursing(
    people: Engine,
) -> None:
    with pytest.raises(ValidationError, match="nest at most 10 levels deep"):
        pool_filter.check_filter(nested(100_000))  # recursion would overflow long before this
    # Pasted as JSON text, the decoder's own limit comes first: the same sentence.
    text = '{"all": [' * 600 + '{"field": "remote", "op": "eq", "value": true}' + "]}" * 600
    with pytest.raises(ValidationError, match="nest at most 10 levels deep"):
        pool_filter.parse_filter(text)
    with pytest.raises(ValidationError, match="nest at most 10 levels deep"):
        pool_filter.parse_filter('{"all": [' * 20 + "]}" * 20)


def test_nan_and_infinity_as_json_are_refused_on_every_database(people: Engine, users) -> None:
    for text in (
        '{"field": "years_experience", "op": "gte", "value": NaN}',
        '{"field": "years_experience", "op": "lte", "value": Infinity}',
        '{"field": "years_experience", "op": "between", "value": [-Infinity, 3]}',
    ):
        with pytest.raises(ValidationError, match="not NaN or Infinity"):
            pool_filter.parse_filter(text)
        with pytest.raises(ValidationError, match="not NaN or Infinity"):
            pools.save_pool(
                people, actor=users["recruiter"], name="Odd", kind="dynamic",
                filter_json=json.loads(text),
            )  # fmt: skip
    assert pools.list_pools(people) == []


def test_the_largest_filters_within_the_limits_run_on_every_database(people: Engine) -> None:
    """Within the limits the database never refuses a filter: 500 skills ANDed would be an
    expression 1,000 levels deep for SQLite written as one chain."""
    five_hundred = {"field": "skills", "op": "has_all", "value": ["aws", *skills(499)]}
    assert pools.preview_filter(people, five_hundred).count == 0
    biggest = {
        "any": [
            {"field": "skills", "op": "has_all", "value": ["python", *skills(480, "a")]},
            {"field": "skills", "op": "has_any", "value": ["go", *skills(480, "b")]},
            {"field": "tags", "op": "has_all", "value": skills(10, "t")},
            nested(9),  # ten levels with the "any" around it
        ]
    }
    assert pools.preview_filter(people, biggest).count == 2  # Cy (go) and Ben (remote)
    assert names(people, {"field": "title", "op": "contains", "value": "%" * 200}) == set()


def test_pools_built_on_pools_stay_within_the_limits(people: Engine, users) -> None:
    actor = users["recruiter"]
    pools.save_pool(
        people, actor=actor, name="P0", kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["python", *skills(98)]},
    )  # fmt: skip
    # Nine references to P0 (100 terms each) fit; twice that pool again does not.
    nine = {"any": [{"field": "pool", "op": "in", "value": ["P0"]}] * 9}
    pools.save_pool(people, actor=actor, name="P1", kind="dynamic", filter_json=nine)
    twice = {"any": [{"field": "pool", "op": "in", "value": ["P1"]}] * 2}
    with pytest.raises(ValidationError, match="at most 1,000 conditions and values in all"):
        pools.save_pool(people, actor=actor, name="P2", kind="dynamic", filter_json=twice)
    # A chain of pools, each built on the one before: five levels, not six.
    previous = "P0"
    for level in range(2, 7):
        pools.save_pool(
            people, actor=actor, name=f"Chain {level}", kind="dynamic",
            filter_json={"field": "pool", "op": "in", "value": [previous]},
        )  # fmt: skip
        previous = f"Chain {level}"
    with pytest.raises(ValidationError, match="Pools can refer to pools at most 5 levels deep"):
        pools.save_pool(
            people, actor=actor, name="Chain 7", kind="dynamic",
            filter_json={"field": "pool", "op": "in", "value": [previous]},
        )  # fmt: skip
    sizes = {s.name: (s.size, s.problem) for s in pools.list_pools(people)}
    assert sizes["Chain 6"] == (2, None) and sizes["P1"] == (2, None)


def test_a_stored_pool_over_a_limit_is_listed_as_broken_and_the_rest_are_counted(
    people: Engine, users
) -> None:
    """Pools saved before the limits: each is listed with the sentence saying why it cannot
    be counted, never an exception, and the others keep their sizes."""
    with db.write_session(people) as session:
        session.add_all(
            [
                Pool(name="Good", kind="dynamic",
                     filter={"field": "location", "op": "in", "value": ["london"]}),
                Pool(name="Huge value", kind="dynamic",
                     filter={"field": "title", "op": "contains", "value": "x" * 100_000}),
                Pool(name="Deep", kind="dynamic", filter=nested(40)),
                Pool(name="Crowded", kind="dynamic",
                     filter={"any": [{"field": "remote", "op": "eq", "value": True}] * 300}),
                Pool(name="Uses huge", kind="dynamic",
                     filter={"field": "pool", "op": "not_in", "value": ["Huge value"]}),
            ]
        )  # fmt: skip
    listed = {s.name: (s.size, s.problem) for s in pools.list_pools(people)}
    assert listed == {
        "Good": (2, None),
        "Huge value": (None, "A text value in a filter can be at most 200 characters."),
        "Deep": (None, "Filter groups can nest at most 10 levels deep."),
        "Crowded": (None, "A filter can have at most 100 conditions and groups."),
        "Uses huge": (None, "A text value in a filter can be at most 200 characters."),
    }
    huge = pools.pool_id_by_name(people, "Huge value")
    with pytest.raises(ValidationError, match="at most 200 characters"):
        pools.member_ids(people, huge)
    # It can still be deleted (the filters are searched for its name without recursion).
    with db.write_session(people) as session:
        session.delete(session.get(Pool, pools.pool_id_by_name(people, "Uses huge")))
    assert pools.delete_pool(people, actor=users["recruiter"], pool_id=huge) == "Huge value"


def test_a_pool_the_database_refuses_to_count_is_listed_as_broken(
    people: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However a filter gets past the limits, a statement the database refuses costs that
    pool its size, not the whole list: the others are counted one by one."""
    from sqlalchemy import func

    with db.write_session(people) as session:
        session.add_all(
            [
                Pool(name="Good", kind="dynamic",
                     filter={"field": "location", "op": "in", "value": ["london"]}),
                Pool(name="Refused", kind="dynamic",
                     filter={"field": "title", "op": "eq", "value": "x"}),
            ]
        )  # fmt: skip
    # A column expression no database can run, as a broken filter would compile to.
    broken = func.crm_no_such_function(Candidate.title)
    monkeypatch.setitem(pool_filter.TEXT_FIELDS, "title", broken)
    listed = {s.name: (s.size, s.problem) for s in pools.list_pools(people)}
    assert listed == {"Good": (2, None), "Refused": (None, pools.UNCOUNTABLE)}
    with pytest.raises(ValidationError, match="could not run this filter"):
        pools.preview_filter(people, {"field": "title", "op": "eq", "value": "x"})
