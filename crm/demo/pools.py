"""The demo's talent pools: four kept by a filter, two kept by hand, and their members."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.demo.world import World, insert_rows
from crm.models import Candidate, CandidateTag, Pool, PoolMember

POOL_STAGES = ["New", "Contacted", "Engaged", "Interested", "Not now"]


def create_pools(world: World, session: Session) -> None:
    """Four dynamic pools (by filter) and two static ones with hand-picked members."""
    rng = world.rng
    created = world.days_ago(420)
    specs = [
        (
            "backend",
            "Senior backend engineers",
            "Engineers with 5+ years and Python, Go or Java: the bench for platform hires.",
            "dynamic",
            {
                "all": [
                    {"field": "role_family", "op": "eq", "value": "Software Engineering"},
                    {"field": "years_experience", "op": "gte", "value": 5},
                    {"field": "skills", "op": "has_any", "value": ["python", "go", "java"]},
                ]
            },
            "recruiter",
        ),
        (
            "aws",
            "AWS experts",
            "Cloud people with AWS and at least four years of experience.",
            "dynamic",
            {
                "all": [
                    {"field": "skills", "op": "has_any", "value": ["aws"]},
                    {"field": "years_experience", "op": "gte", "value": 4},
                    {
                        "field": "role_family",
                        "op": "in",
                        "value": ["DevOps & Cloud", "Software Engineering", "Data & Analytics"],
                    },
                ]
            },
            "jordan",
        ),
        (
            "london",
            "London or open to remote",
            "Everyone we may contact who lives in London or works remotely.",
            "dynamic",
            {
                "all": [
                    {"field": "consent_status", "op": "ne", "value": "do_not_contact"},
                    {
                        "any": [
                            {"field": "location", "op": "in", "value": ["London"]},
                            {"field": "remote", "op": "eq", "value": True},
                        ]
                    },
                ]
            },
            "li",
        ),
        (
            "data",
            "Gone quiet: data people",
            "Data & Analytics people nobody has contacted for 90 days; the newsletter keeps "
            "them warm.",
            "dynamic",
            {
                "all": [
                    {"field": "role_family", "op": "eq", "value": "Data & Analytics"},
                    {"field": "last_contacted_at", "op": "older_than_days", "value": 90},
                ]
            },
            "recruiter",
        ),
        (
            "silver",
            f"Silver medalists {world.today.year}",
            "Finalists we nearly hired this year; first call for the next opening.",
            "static",
            None,
            "recruiter",
        ),
        (
            "sales",
            "Future sales leaders",
            "Account executives and managers with leadership potential.",
            "static",
            None,
            "li",
        ),
    ]
    for key, name, description, kind, filter_json, owner in specs:
        pool = Pool(
            name=name,
            description=description,
            kind=kind,
            stages=list(POOL_STAGES),
            owner_id=world.users[owner],
            frequency_cap_per_week=2 if key in {"data", "sales", "london"} else None,
            silence_days=14 if key in {"data", "sales"} else None,
            created_at=created + dt.timedelta(days=rng.uniform(0, 60)),
            updated_at=created + dt.timedelta(days=rng.uniform(60, 120)),
        )
        if filter_json is not None:  # left unset, a static pool's filter is SQL NULL
            pool.filter = filter_json
        session.add(pool)
        world.pools[key] = pool
    session.flush()

    silver = list(
        session.scalars(
            select(CandidateTag.candidate_id)
            .where(CandidateTag.tag == "silver medalist")
            .order_by(CandidateTag.candidate_id)
        )
    )
    sales = list(
        session.scalars(
            select(Candidate.id)
            .where(
                Candidate.role_family == "Sales",
                Candidate.years_experience.between(4, 12),
                Candidate.consent_status != "do_not_contact",
            )
            .order_by(Candidate.id)
        )
    )
    members = []
    for key, ids, size in (("silver", silver, 60), ("sales", sales, 80)):
        picked = sorted(rng.sample(ids, min(size, len(ids))))
        for cid in picked:
            members.append(
                {
                    "pool_id": world.pools[key].id,
                    "candidate_id": cid,
                    "stage": rng.choices(POOL_STAGES, (3, 4, 3, 2, 1))[0],
                    "added_at": world.days_ago(rng.uniform(40, 300)),
                    "added_by_id": world.pools[key].owner_id,
                }
            )
    insert_rows(session, PoolMember.__table__, members)
