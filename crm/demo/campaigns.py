"""The demo's campaigns: three email sequences, their steps, and who each one reached."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.demo.accounts import DEMO_ACCOUNTS
from crm.demo.world import World, moment
from crm.models import Campaign, CampaignStep, Candidate, Pool
from crm.pool_filter import membership_condition

SENDER_EMAIL = "talent@careers.example.com"


@dataclass
class Recipient:
    id: int
    first_name: str
    email: str
    email_normalized: str | None


def _backend_launch(world: World) -> dt.datetime:
    """The spring launch of the completed campaign: this year's if 60 days past, else last."""
    spring = dt.date(world.today.year, 4, 14)
    if spring > world.today - dt.timedelta(days=60):
        spring = dt.date(world.today.year - 1, 4, 14)
    return moment(spring, 9)


def create_campaigns(world: World, session: Session) -> None:
    """Three three-step campaigns: one completed in spring, two running now."""
    specs = {
        "backend": (
            "Backend engineers, spring",
            "backend",
            "completed",
            _backend_launch(world),
            "recruiter",
            [
                (
                    0,
                    "{{first_name|there}}, backend roles at Fernwood this spring",
                    "Hi {{first_name|there}},\n\nI'm Priya from the Fernwood talent team. "
                    "We're growing our platform group this spring and your experience with "
                    "{{skills}} stood out.\n\nWe're hiring senior backend engineers to work "
                    "on payments infrastructure (Python and Go, on AWS). Fully flexible "
                    "hybrid in London, or remote within Europe.\n\nWould you be open to a "
                    "20-minute chat?\n\nPriya",
                ),
                (
                    4,
                    "Quick follow-up, {{first_name|there}}",
                    "Hi {{first_name|there}},\n\nJust bumping this in case it got buried. "
                    "Here's a [short write-up](https://careers.example.com/platform) of what "
                    "the team is building.\n\nPriya",
                ),
                (
                    7,
                    "Last note from me about our backend roles",
                    "Hi {{first_name|there}},\n\nI won't keep chasing. If the timing isn't "
                    "right, no problem at all; reply **later** and I'll check back in a few "
                    "months.\n\nPriya",
                ),
            ],
        ),
        "sales": (
            "Sales leaders re-engagement",
            "sales",
            "active",
            moment(world.today - dt.timedelta(days=11), 9),
            "li",
            [
                (
                    0,
                    "{{first_name|there}}, it's been a while",
                    "Hi {{first_name|there}},\n\nWe spoke a while back about sales roles at "
                    "Fernwood. A lot has changed: we've doubled the enterprise team and are "
                    "now building a sales leadership bench.\n\nWould you be up for a catch-up "
                    "call?\n\nLi",
                ),
                (
                    4,
                    "What our enterprise team closed this year",
                    "Hi {{first_name|there}},\n\nA quick look at what the team has been up to, "
                    "and why people with {{skills}} do well here: "
                    "https://careers.example.com/sales\n\nLi",
                ),
                (
                    7,
                    "{{first_name|there}}, a seat at our sales leadership breakfast?",
                    "Hi {{first_name|there}},\n\nWe're hosting a small breakfast for future "
                    "sales leaders next month. Reply and I'll save you a seat.\n\nLi",
                ),
            ],
        ),
        "data": (
            "Data talent newsletter",
            "data",
            "active",
            moment(world.today - dt.timedelta(days=28), 9),
            "recruiter",
            [
                (
                    0,
                    "{{first_name|there}}, this month in data at Fernwood",
                    "Hi {{first_name|there}},\n\nWelcome to our data talent newsletter. This "
                    "issue: how we moved our warehouse to a lakehouse, and what it means for "
                    "people who love {{skills}}.\n\nRead it on the blog: "
                    "https://careers.example.com/blog/lakehouse",
                ),
                (
                    14,
                    "Data at Fernwood: analytics engineering, explained",
                    "Hi {{first_name|there}},\n\nOur analytics engineers write about the "
                    "dbt project behind every dashboard we ship.\n\n"
                    "https://careers.example.com/blog/analytics-engineering",
                ),
                (
                    14,
                    "{{first_name|there}}, open data roles and a meetup invite",
                    "Hi {{first_name|there}},\n\nThree data roles just opened, and we'd love "
                    "to see you at our next data careers evening in London.\n\n"
                    "https://careers.example.com/data",
                ),
            ],
        ),
    }
    for key, (name, pool_key, status, launched, owner, steps) in specs.items():
        campaign = Campaign(
            name=name,
            audience_pool_id=world.pools[pool_key].id,
            sender_name=DEMO_ACCOUNTS[owner][1],
            sender_email=SENDER_EMAIL,
            status=status,
            created_by_id=world.users[owner],
            launched_at=launched,
            created_at=launched - dt.timedelta(days=3, hours=2),
            updated_at=launched,
        )
        campaign.steps = [
            CampaignStep(
                position=position,
                subject=subject,
                body_markdown=body,
                delay_days=delay,
                stop_on_reply=True,
                stop_on_click=False,
                stop_on_pipeline=True,
            )
            for position, (delay, subject, body) in enumerate(steps, start=1)
        ]
        session.add(campaign)
        world.campaigns[key] = campaign
    session.flush()
    for key, campaign in world.campaigns.items():
        world.steps[key] = sorted(campaign.steps, key=lambda step: step.position)


def audience(world: World, session: Session, campaign: Campaign) -> list[Recipient]:
    """Who the campaign reached: up to 300 of its pool with an address we may write to."""
    pool = session.get(Pool, campaign.audience_pool_id)
    assert pool is not None and campaign.launched_at is not None
    rows = session.execute(
        select(Candidate.id, Candidate.first_name, Candidate.email, Candidate.email_normalized)
        .where(
            membership_condition(session, pool, now=world.now),
            Candidate.email.is_not(None),
            Candidate.consent_status != "do_not_contact",
            Candidate.created_at < campaign.launched_at,
        )
        .order_by(Candidate.id)
    ).all()
    people = [Recipient(*row) for row in rows]
    if len(people) > 300:
        people = sorted(world.rng.sample(people, 300), key=lambda person: person.id)
    return people
