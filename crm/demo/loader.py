"""Loading the demo: load_demo runs every part in order; has_data and wipe around it.

Everything is drawn from one random.Random(seed) and the date `today`, part after part
in a fixed order, so the same seed and day give the same data.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import Engine, delete, exists, or_, select

from crm import clock
from crm.db import write_session
from crm.demo.accounts import create_users
from crm.demo.campaigns import create_campaigns
from crm.demo.content import create_content, create_goals
from crm.demo.jobs import create_jobs
from crm.demo.people import create_candidates
from crm.demo.pools import create_pools
from crm.demo.traffic import create_campaign_traffic
from crm.demo.vocabulary import FAMILIES
from crm.demo.world import ProgressFn, World
from crm.errors import CrmError
from crm.models import AuditLog, Base, Campaign, Candidate, Job, Setting, User


@dataclass
class DemoSummary:
    candidates: int
    pools: int
    jobs: int
    applications: int
    campaigns: int
    messages: int
    events: int
    content_items: int
    goals: int
    users_created: list[str]


def has_data(engine: Engine) -> bool:
    """True when any candidate, job or campaign exists."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                select(
                    or_(
                        exists(select(Candidate.id)),
                        exists(select(Job.id)),
                        exists(select(Campaign.id)),
                    )
                )
            )
        )


def wipe(engine: Engine) -> None:
    """Delete all recruiting data, children first, in one transaction.

    Users, team settings and the audit log stay: they are the team, not demo data.
    """
    kept = {User.__tablename__, Setting.__tablename__, AuditLog.__tablename__}
    with write_session(engine) as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in kept:
                session.execute(delete(table))


def load_demo(
    engine: Engine,
    *,
    candidates: int = 2000,
    seed: int = 7,
    today: dt.date | None = None,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Create the demo users (if missing) and a realistic data set around `today`."""
    if candidates < 1:
        raise CrmError("The demo needs at least one candidate.")
    if has_data(engine):
        raise CrmError("The database already has data; wipe it before loading demo data.")
    world = World(engine, candidates, random.Random(seed), today or clock.today(), progress)
    world.by_family = {family.name: [] for family in FAMILIES}
    world.report("Creating users", 0.0)
    world.users, world.users_created = create_users(engine)
    world.report("Creating candidates", 0.05)
    create_candidates(world)
    world.report("Creating pools and campaigns", 0.85)
    with write_session(engine) as session:
        create_pools(world, session)
        create_campaigns(world, session)
    world.report("Creating jobs and applications", 0.88)
    with write_session(engine) as session:
        create_jobs(world, session)
    world.report("Sending campaign emails", 0.93)
    with write_session(engine) as session:
        create_campaign_traffic(world, session)
    world.report("Planning the content calendar and goals", 0.97)
    with write_session(engine) as session:
        create_content(world, session)
        create_goals(world, session)
    world.report("Done", 1.0)
    counts = world.counts
    return DemoSummary(
        candidates=candidates,
        pools=len(world.pools),
        jobs=counts["jobs"],
        applications=counts["applications"],
        campaigns=len(world.campaigns),
        messages=counts["messages"],
        events=counts["events"],
        content_items=counts["content_items"],
        goals=counts["goals"],
        users_created=world.users_created,
    )
