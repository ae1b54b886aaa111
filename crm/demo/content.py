"""The demo's content calendar around today, and the three goals the guide walks through."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from crm.demo.vocabulary import TECH_FAMILIES, slug
from crm.demo.world import COMPANY, World, add_months, insert_rows, moment
from crm.goals import validate_goal
from crm.models import ContentItem, ContentItemPool, Goal

# The content calendar around today: day offset | channel | theme | title | pools.
# Published items (before today) only reach pools that have heard from us lately, so
# "pools gone quiet" on Home stays meaningful.
CONTENT_PLAN = """
-7 | linkedin_post | company_news | We're opening a Lisbon engineering hub | london
-6 | email_newsletter | industry_insight | Data talent newsletter: the data stack in {year} | data
-4 | blog | employee_story | Engineering blog: how we run on-call | london
-3 | linkedin_message | job_alert | Job alert: Senior account executive (London) | sales
-2 | instagram | employee_story | Day in the life of an analytics engineer | data
-1 | x | industry_insight | Thread: five SQL habits of great analysts | data
0 | linkedin_post | job_alert | Job alert: Staff data engineer | data
1 | event | career_advice | Data careers evening in London | data london
2 | email_newsletter | company_news | Sales leaders digest: what's new at {company} | sales
3 | blog | industry_insight | Engineering blog: moving 40 services to Kubernetes | aws backend
4 | sms | job_alert | SMS: a senior backend engineer role just opened | backend silver
6 | linkedin_post | career_advice | Career advice: writing a great engineering CV | london
8 | email_newsletter | industry_insight | Data talent newsletter: LLMs in analytics | data
9 | x | company_news | {company} named a top place to work in tech | london
11 | linkedin_message | job_alert | Job alert: Lead platform engineer | aws
13 | blog | employee_story | Employee story: from SDR to head of sales | sales
15 | event | industry_insight | Webinar: building a cloud cost culture | aws backend
16 | instagram | company_news | Behind the scenes at our Berlin office | london
18 | linkedin_post | job_alert | Job alert: Senior product designer | london
20 | email_newsletter | career_advice | Silver medalists: we haven't forgotten you | silver
22 | blog | career_advice | Career advice: preparing for a system design interview | backend
23 | sms | company_news | SMS: save the date for our open house | sales silver
25 | linkedin_post | employee_story | Meet the team: our data platform squad | data
27 | email_newsletter | industry_insight | Data talent newsletter: the year in review | data
28 | event | company_news | Open house at the {company} London office | london silver
"""


def create_content(world: World, session: Session) -> None:
    """CONTENT_PLAN around today: published before it, scheduled, drafted or ideas after."""
    rng = world.rng
    newsletter = world.campaigns["data"].id
    owners = [world.users[name] for name in ("recruiter", "jordan", "li")]
    created: list[tuple[ContentItem, list[str]]] = []
    for line in CONTENT_PLAN.strip().splitlines():
        offset_text, channel, theme, title_text, pools_text = (p.strip() for p in line.split("|"))
        offset = int(offset_text)
        title = title_text.format(year=world.today.year, company=COMPANY)
        pool_keys = pools_text.split()
        hour = 18 if channel == "event" else rng.choice((8, 9, 10, 12, 14, 16))
        scheduled = moment(world.today + dt.timedelta(days=offset), hour, rng.choice((0, 15, 30)))
        published_at = None
        if scheduled < world.now:
            status = "published"
            published_at = scheduled + dt.timedelta(minutes=rng.randint(0, 20))
        elif offset <= 7:
            status = "scheduled" if rng.random() < 0.85 else "draft"
        elif offset <= 16:
            status = rng.choices(("scheduled", "draft", "idea"), (5, 4, 1))[0]
        else:
            status = rng.choices(("scheduled", "draft", "idea"), (2, 4, 4))[0]
        newsletter_issue = channel == "email_newsletter" and "data" in pool_keys
        if newsletter_issue and status == "idea":
            status = "draft"
        body = None
        if status != "idea":
            body = f"{title}.\n\nDraft copy for the {theme.replace('_', ' ')} slot."
        link = None
        if channel in {"blog", "event", "linkedin_post"}:
            link = f"https://careers.example.com/{slug(title)[:60]}"
        ends_at = scheduled + dt.timedelta(hours=2, minutes=30) if channel == "event" else None
        item = ContentItem(
            title=title,
            channel=channel,
            scheduled_at=scheduled,
            ends_at=ends_at,
            status=status,
            theme=theme,
            body=body,
            link=link,
            owner_id=rng.choice(owners),
            campaign_id=newsletter if newsletter_issue else None,
            recurrence_exceptions=[],
            published_at=published_at,
            created_at=min(scheduled, world.now) - dt.timedelta(days=rng.uniform(3, 20)),
            updated_at=min(scheduled, world.now) - dt.timedelta(days=rng.uniform(0, 2)),
        )
        session.add(item)
        created.append((item, pool_keys))
    session.flush()
    insert_rows(
        session,
        ContentItemPool.__table__,
        [
            {"content_item_id": item.id, "pool_id": world.pools[key].id}
            for item, keys in created
            for key in keys
        ],
    )
    world.counts["content_items"] = len(created)


def create_goals(world: World, session: Session) -> None:
    """Time to hire, offer acceptance and hires from pools, each with its baseline period."""
    today = world.today
    tth_start = add_months(today, -3)
    oar_start = add_months(today, -2)
    # title, metric, scope, baseline (from, to), target (kind, value), (start, deadline), owner
    plans = (
        (
            "Reduce time-to-hire by 15% for key tech roles in six months",
            "time_to_hire_days",
            {"key_roles": True, "role_families": list(TECH_FAMILIES)},
            (add_months(tth_start, -6), tth_start - dt.timedelta(days=1)),
            ("relative", -0.15),
            (tth_start, add_months(tth_start, 6)),
            "recruiter",
        ),
        (
            "Boost the offer acceptance rate by 10%",
            "offer_acceptance_rate",
            {},
            (add_months(oar_start, -6), oar_start - dt.timedelta(days=1)),
            ("relative", 0.10),
            (oar_start, add_months(today, 6)),
            "admin",
        ),
        (
            "Source 25% of new hires from our talent pools by year end",
            "hires_from_talent_pools_share",
            {},
            (dt.date(today.year - 1, 7, 1), dt.date(today.year - 1, 12, 31)),
            ("absolute", 0.25),
            (dt.date(today.year, 1, 1), dt.date(today.year, 12, 31)),
            "jordan",
        ),
    )
    for title, metric, scope, baseline, target, (start, deadline), owner in plans:
        created = moment(start, 10)
        goal = Goal(
            title=title,
            metric=metric,
            scope=scope,
            baseline_value=None,
            baseline_from=baseline[0],
            baseline_to=baseline[1],
            target_kind=target[0],
            target_value=target[1],
            start_date=start,
            deadline=deadline,
            owner_id=world.users[owner],
            created_at=created,
            updated_at=created,
        )
        validate_goal(goal)
        session.add(goal)
    world.counts["goals"] = len(plans)
