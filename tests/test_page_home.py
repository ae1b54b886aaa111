"""Home under AppTest: what needs attention today, each list cut short with a count."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine

from crm import clock
from crm.content_calendar import drafts, items
from crm.models import User
from tests.test_app import app_as


def test_a_busy_week_shows_the_first_items_and_how_many_more(
    users: dict[str, User], engine: Engine
) -> None:
    today = clock.now().date()
    noon = dt.datetime.combine(today - dt.timedelta(days=today.weekday()), dt.time(12), dt.UTC)
    midweek = noon + dt.timedelta(days=3)  # inside this week, whatever the day
    for n in range(11):
        items.save_item(
            engine,
            actor=users["recruiter"],
            draft=drafts.ItemDraft(
                title=f"Post number {n:02d}", channel="linkedin_post",
                starts_at=midweek + dt.timedelta(minutes=n),
            ),
        )  # fmt: skip
    at = app_as(users["recruiter"]).run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Content this week" and at.metric[0].value == "11"
    [week] = [m.value for m in at.markdown if "Post number" in m.value]
    assert week.count("Post number") == 8
    assert week.endswith(":gray[and 3 more on the Content calendar]")


def test_pools_gone_quiet_show_each_pools_last_touch(
    users: dict[str, User], engine: Engine
) -> None:
    """A's campaign sent 40 days ago is its last touch (Ana's contact yesterday by another
    campaign is hers); B had content published 3 days ago, so it is not quiet."""
    from tests.test_attention import touched_pools

    touched_pools(engine)
    at = app_as(users["recruiter"]).run()
    assert not at.exception, at.exception
    assert at.metric[2].label == "Pools gone quiet" and at.metric[2].value == "1"
    [quiet] = [m.value for m in at.markdown if "last touch" in m.value]
    assert quiet == "**AWS experts** · last touch 40 days ago"  # B is not listed
