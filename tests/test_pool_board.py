"""Pool stages: the board by stage, moves logged on the timeline, stage edits."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crm import candidates, pool_board, pools
from crm.errors import ValidationError
from crm.models import User


@pytest.fixture
def setup(engine: Engine, users: dict[str, User]) -> tuple[int, int, dict[str, int]]:
    actor = users["recruiter"]
    ids = {
        name: candidates.create_candidate(
            engine,
            actor=actor,
            fields={"first_name": name, "email": f"{name}@x.io", "skills": skills},
        ).id
        for name, skills in (("ana", "python"), ("ben", "python"), ("cy", "go"))
    }
    dynamic = pools.save_pool(
        engine,
        actor=actor,
        name="Python",
        kind="dynamic",
        filter_json={"field": "skills", "op": "has_any", "value": ["python"]},
    )
    static = pools.save_pool(engine, actor=actor, name="Shortlist", kind="static")
    candidates.bulk_add_to_pool(
        engine, actor=actor, candidate_ids=[ids["ana"], ids["cy"]], pool_id=static
    )
    return dynamic, static, ids


def test_a_pool_without_stages_has_an_empty_board(engine: Engine, setup) -> None:
    dynamic, _static, _ids = setup
    assert pool_board.board(engine, dynamic).stages == []


def test_members_start_in_the_first_stage_and_moves_are_logged(
    engine: Engine, users: dict[str, User], setup
) -> None:
    dynamic, _static, ids = setup
    actor = users["recruiter"]
    pool_board.set_stages(engine, actor=actor, pool_id=dynamic, stages=pool_board.DEFAULT_STAGES)
    board = pool_board.board(engine, dynamic)
    assert board.counts == {"New": 2, "Contacted": 0, "Engaged": 0, "Interested": 0, "Not now": 0}
    assert [card.name for card in board.cards["New"]] == ["ana", "ben"]
    moved = pool_board.move(
        engine, actor=actor, pool_id=dynamic, candidate_ids=[ids["ana"]], stage="Engaged"
    )
    assert moved == 1
    assert pool_board.stage_of(engine, dynamic, ids["ana"]) == "Engaged"
    # Moving to where they are already records nothing.
    assert (
        pool_board.move(
            engine, actor=actor, pool_id=dynamic, candidate_ids=[ids["ana"]], stage="Engaged"
        )
        == 0
    )
    entries = [e for e in candidates.timeline(engine, ids["ana"]) if e.kind == "stage"]
    assert [e.summary for e in entries] == ["Python: moved from New to Engaged"]
    assert pool_board.board(engine, dynamic).counts["Engaged"] == 1


def test_people_outside_the_pool_and_unknown_stages_are_refused(
    engine: Engine, users: dict[str, User], setup
) -> None:
    dynamic, _static, ids = setup
    actor = users["recruiter"]
    pool_board.set_stages(engine, actor=actor, pool_id=dynamic, stages=["New", "Hot"])
    with pytest.raises(ValidationError, match="not in Python"):
        pool_board.move(
            engine, actor=actor, pool_id=dynamic, candidate_ids=[ids["cy"]], stage="Hot"
        )
    with pytest.raises(ValidationError, match="no stage called 'Cold'"):
        pool_board.move(
            engine, actor=actor, pool_id=dynamic, candidate_ids=[ids["ana"]], stage="Cold"
        )


def test_a_removed_stage_puts_its_people_back_in_the_first(
    engine: Engine, users: dict[str, User], setup
) -> None:
    _dynamic, static, ids = setup
    actor = users["recruiter"]
    pool_board.set_stages(engine, actor=actor, pool_id=static, stages=["New", "Later"])
    pool_board.move(engine, actor=actor, pool_id=static, candidate_ids=[ids["cy"]], stage="Later")
    pool_board.set_stages(engine, actor=actor, pool_id=static, stages=["Fresh", "New"])
    # cy stood in the removed "Later", ana in no stage of her own: both stand in the first.
    assert pool_board.board(engine, static).counts == {"Fresh": 2, "New": 0}


@pytest.mark.parametrize(
    "stages, message",
    [
        (["New", "new"], "listed twice"),
        (["x" * 61], "at most 60"),
        ([f"s{i}" for i in range(13)], "at most 12"),
    ],
)
def test_bad_stage_lists_are_refused(
    engine: Engine, users: dict[str, User], setup, stages: list[str], message: str
) -> None:
    dynamic, _static, _ids = setup
    with pytest.raises(ValidationError, match=message):
        pool_board.set_stages(engine, actor=users["recruiter"], pool_id=dynamic, stages=stages)


def test_managers_cannot_move_people(engine: Engine, users: dict[str, User], setup) -> None:
    from crm.errors import PermissionDenied

    dynamic, _static, ids = setup
    with pytest.raises(PermissionDenied):
        pool_board.move(
            engine, actor=users["manager"], pool_id=dynamic, candidate_ids=[ids["ana"]], stage="x"
        )
