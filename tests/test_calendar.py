"""The content calendar: series and exceptions, checks, publishing, cadence, export, import."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import icalendar
import pytest
from sqlalchemy import Engine, func, select

from crm import db
from crm.content_calendar import cadence, files, items, occurrences
from crm.content_calendar.drafts import ItemDraft
from crm.errors import InputUnusable, NotFound, PermissionDenied, ValidationError
from crm.models import (
    Activity,
    AuditLog,
    Campaign,
    CampaignStep,
    Candidate,
    ContentItem,
    ContentItemPool,
    Enrollment,
    ImportBatch,
    OutboxMessage,
    Pool,
    PoolMember,
    User,
)

UTC = dt.UTC
LONDON = "Europe/London"


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


@pytest.fixture
def writer(users: dict[str, User]) -> User:
    return users["recruiter"]


def make_pool(
    engine: Engine,
    name: str,
    members: int = 0,
    *,
    cap: int | None = None,
    silence: int | None = None,
    created: dt.datetime | None = None,
) -> int:
    with db.write_session(engine) as session:
        pool = Pool(name=name, kind="static", frequency_cap_per_week=cap, silence_days=silence)
        if created is not None:
            pool.created_at = created
        session.add(pool)
        session.flush()
        for number in range(members):
            person = Candidate(first_name=f"{name}{number}", last_name="Person")
            session.add(person)
            session.flush()
            session.add(PoolMember(pool_id=pool.id, candidate_id=person.id))
        return pool.id


def pool_member_ids(engine: Engine, pool_id: int) -> list[int]:
    with db.read_session(engine) as session:
        return sorted(
            session.scalars(select(PoolMember.candidate_id).where(PoolMember.pool_id == pool_id))
        )


def draft(**fields: Any) -> ItemDraft:
    values: dict[str, Any] = {
        "title": "Weekly job alert",
        "channel": "linkedin_post",
        "starts_at": at(2027, 1, 4, 9),
    }
    values.update(fields)
    return ItemDraft(**values)


def item_count(engine: Engine) -> int:
    with db.read_session(engine) as session:
        return session.scalar(select(func.count()).select_from(ContentItem))


def starts(found: list[occurrences.Occurrence]) -> list[dt.datetime]:
    return [o.starts_at for o in found]


# --- recurrence -------------------------------------------------------------------------


def test_weekly_series_keeps_london_wall_time_across_both_clock_changes(
    engine: Engine, writer: User
) -> None:
    spring = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2027, 3, 15, 9),  # 09:00 GMT
            recurrence={"freq": "weekly", "interval": 1, "count": 4, "timezone": LONDON},
        ),
    )
    found = occurrences.occurrences_between(engine, start=at(2027, 3, 1), end=at(2027, 5, 1))
    assert starts(found) == [
        at(2027, 3, 15, 9),
        at(2027, 3, 22, 9),
        at(2027, 3, 29, 8),
        at(2027, 4, 5, 8),
    ]
    assert [o.key for o in found] == ["2027-03-15", "2027-03-22", "2027-03-29", "2027-04-05"]
    assert all(o.item_id == spring and o.recurring and not o.moved for o in found)

    autumn = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2026, 10, 19, 8),  # 09:00 BST
            ends_at=at(2026, 10, 19, 8, 30),
            recurrence={"freq": "weekly", "interval": 1, "until": "2026-11-02", "timezone": LONDON},
        ),
    )
    found = occurrences.occurrences_between(engine, start=at(2026, 10, 1), end=at(2026, 12, 1))
    assert [(o.item_id, o.starts_at, o.ends_at) for o in found] == [
        (autumn, at(2026, 10, 19, 8), at(2026, 10, 19, 8, 30)),
        (autumn, at(2026, 10, 26, 9), at(2026, 10, 26, 9, 30)),
        (autumn, at(2026, 11, 2, 9), at(2026, 11, 2, 9, 30)),
    ]
    # Expanded in UTC, the same series would keep 08:00 UTC instead.
    items.save_item(
        engine,
        actor=writer,
        item_id=autumn,
        draft=draft(
            starts_at=at(2026, 10, 19, 8),
            recurrence={"freq": "weekly", "interval": 1, "until": "2026-11-02"},
        ),
    )
    found = occurrences.occurrences_between(engine, start=at(2026, 10, 1), end=at(2026, 12, 1))
    assert starts(found) == [at(2026, 10, 19, 8), at(2026, 10, 26, 8), at(2026, 11, 2, 8)]


def test_monthly_on_the_31st_uses_the_last_day_of_shorter_months(
    engine: Engine, writer: User
) -> None:
    items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2027, 12, 31, 10),
            recurrence={"freq": "monthly", "interval": 1, "count": 5},
        ),
    )
    found = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2029, 1, 1))
    assert [o.starts_at.date() for o in found] == [
        dt.date(2027, 12, 31),
        dt.date(2028, 1, 31),
        dt.date(2028, 2, 29),
        dt.date(2028, 3, 31),
        dt.date(2028, 4, 30),
    ]
    # A window in the middle of the series finds just its own occurrences.
    middle = occurrences.occurrences_between(engine, start=at(2028, 2, 1), end=at(2028, 3, 1))
    assert [o.key for o in middle] == ["2028-02-29"]


def test_monthly_from_a_leap_day_and_from_the_30th(engine: Engine, writer: User) -> None:
    leap = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2028, 2, 29, 10),
            recurrence={"freq": "monthly", "interval": 12, "until": "2032-03-01"},
        ),
    )
    thirtieth = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2029, 1, 30, 10),
            recurrence={"freq": "monthly", "interval": 1, "count": 3},
        ),
    )
    found = occurrences.occurrences_between(engine, start=at(2028, 1, 1), end=at(2033, 1, 1))
    assert [o.key for o in found if o.item_id == leap] == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]
    assert [o.key for o in found if o.item_id == thirtieth] == [
        "2029-01-30",
        "2029-02-28",
        "2029-03-30",
    ]


def test_every_two_weeks_with_skipped_and_moved_occurrences_across_a_month_end(
    engine: Engine, writer: User
) -> None:
    item_id = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2026, 12, 10, 9),
            recurrence={"freq": "weekly", "interval": 2, "until": "2027-02-28", "timezone": LONDON},
        ),
    )
    every = occurrences.occurrences_between(engine, start=at(2026, 12, 1), end=at(2027, 3, 1))
    assert [o.key for o in every] == [
        "2026-12-10",
        "2026-12-24",
        "2027-01-07",
        "2027-01-21",
        "2027-02-04",
        "2027-02-18",
    ]
    items.skip_occurrence(engine, actor=writer, item_id=item_id, key="2026-12-24")
    items.move_occurrence(
        engine, actor=writer, item_id=item_id, key="2027-01-07", starts_at=at(2027, 1, 8, 10)
    )
    # Moved across the month end: the December slot now lives in January.
    items.move_occurrence(
        engine, actor=writer, item_id=item_id, key="2026-12-10", starts_at=at(2027, 1, 2, 12)
    )
    assert items.get_item(engine, item_id).exceptions == (
        {"key": "2026-12-10", "starts_at": "2027-01-02T12:00:00+00:00"},
        {"key": "2026-12-24", "skip": True},
        {"key": "2027-01-07", "starts_at": "2027-01-08T10:00:00+00:00"},
    )
    december = occurrences.occurrences_between(engine, start=at(2026, 12, 1), end=at(2027, 1, 1))
    assert december == []
    january = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    assert [(o.key, o.starts_at, o.moved) for o in january] == [
        ("2026-12-10", at(2027, 1, 2, 12), True),
        ("2027-01-07", at(2027, 1, 8, 10), True),
        ("2027-01-21", at(2027, 1, 21, 9), False),
    ]
    # Moving the series a week later carries the exceptions along.
    items.move_item(engine, actor=writer, item_id=item_id, starts_at=at(2026, 12, 17, 9))
    keys = [(e["key"], e.get("starts_at")) for e in items.get_item(engine, item_id).exceptions]
    assert keys == [
        ("2026-12-17", "2027-01-09T12:00:00+00:00"),
        ("2026-12-31", None),
        ("2027-01-14", "2027-01-15T10:00:00+00:00"),
    ]
    # Restoring a skipped occurrence puts it back in its slot.
    items.restore_occurrence(engine, actor=writer, item_id=item_id, key="2026-12-31")
    found = occurrences.occurrences_between(engine, start=at(2026, 12, 30), end=at(2027, 1, 1))
    assert [(o.key, o.starts_at) for o in found] == [("2026-12-31", at(2026, 12, 31, 9))]


def test_occurrence_actions_refuse_what_is_not_an_occurrence(engine: Engine, writer: User) -> None:
    single = items.save_item(engine, actor=writer, draft=draft())
    series = items.save_item(
        engine, actor=writer, draft=draft(recurrence={"freq": "weekly", "count": 3})
    )
    with pytest.raises(ValidationError, match="does not repeat"):
        items.skip_occurrence(engine, actor=writer, item_id=single, key="2027-01-04")
    with pytest.raises(ValidationError, match="no occurrence on 2027-01-05"):
        items.skip_occurrence(engine, actor=writer, item_id=series, key="2027-01-05")
    with pytest.raises(ValidationError, match="no occurrence on 2027-01-25"):
        items.skip_occurrence(engine, actor=writer, item_id=series, key="2027-01-25")
    with pytest.raises(ValidationError, match="at most a year"):
        items.move_occurrence(
            engine, actor=writer, item_id=series, key="2027-01-11", starts_at=at(2028, 6, 1)
        )
    with pytest.raises(NotFound):
        items.skip_occurrence(engine, actor=writer, item_id=series + 100, key="2027-01-11")
    assert items.get_item(engine, series).exceptions == ()


def test_filters_and_single_items_in_the_view(engine: Engine, writer: User) -> None:
    warm = make_pool(engine, "Warm")
    cold = make_pool(engine, "Cold")
    first = items.save_item(
        engine, actor=writer, draft=draft(title="A", channel="blog", pool_ids=[warm, cold])
    )
    items.save_item(engine, actor=writer, draft=draft(title="B", starts_at=at(2027, 1, 3, 9)))
    items.save_item(engine, actor=writer, draft=draft(title="C", starts_at=at(2027, 2, 1)))
    found = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    assert [o.title for o in found] == ["B", "A"]
    assert found[1].pools == ("Cold", "Warm") and set(found[1].pool_ids) == {warm, cold}
    assert found[1].key == "2027-01-04" and not found[1].recurring
    assert [
        o.item_id
        for o in occurrences.occurrences_between(
            engine, start=at(2027, 1, 1), end=at(2027, 2, 1), pool_id=cold
        )
    ] == [first]
    assert [
        o.title
        for o in occurrences.occurrences_between(
            engine, start=at(2027, 1, 1), end=at(2027, 2, 1), channel="linkedin_post"
        )
    ] == ["B"]
    entries = occurrences.items_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    assert [(e.id, e.title, e.scheduled_at) for e in entries] == [
        (found[0].item_id, "B", at(2027, 1, 3, 9)),
        (first, "A", at(2027, 1, 4, 9)),
    ]


# --- editing ----------------------------------------------------------------------------


def test_create_edit_duplicate_move_and_delete(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data")
    item_id = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            ends_at=at(2027, 1, 4, 10),
            pool_ids=[pool],
            body="Copy",
            link="careers.example.com/jobs",
            owner_id=writer.id,
            status="scheduled",
            theme="job_alert",
        ),
    )
    item = items.get_item(engine, item_id)
    assert (item.title, item.pool_ids, item.link, item.owner, item.theme) == (
        "Weekly job alert",
        (pool,),
        "https://careers.example.com/jobs",
        "Rita Recruiter",
        "job_alert",
    )
    edited = item.to_draft()
    edited.title = "  Job   alert  "
    edited.status = "published"
    items.save_item(engine, actor=writer, draft=edited, item_id=item_id)
    item = items.get_item(engine, item_id)
    assert item.title == "Job alert" and item.status == "published"
    assert item.published_at is not None and item.published_at <= at(2027, 1, 4, 9)

    copy_id = items.duplicate_item(engine, actor=writer, item_id=item_id)
    copy = items.get_item(engine, copy_id)
    assert copy_id != item_id
    assert (copy.title, copy.status, copy.pool_ids, copy.published_at) == (
        "Job alert (copy)",
        "draft",
        (pool,),
        None,
    )

    items.move_item(engine, actor=writer, item_id=copy_id, starts_at=at(2027, 2, 1, 15))
    moved = items.get_item(engine, copy_id)
    assert (moved.starts_at, moved.ends_at) == (at(2027, 2, 1, 15), at(2027, 2, 1, 16))

    items.delete_item(engine, actor=writer, item_id=copy_id)
    with pytest.raises(NotFound):
        items.get_item(engine, copy_id)
    with db.read_session(engine) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(ContentItemPool)
                .where(ContentItemPool.content_item_id == copy_id)
            )
            == 0
        )
        actions = set(session.scalars(select(AuditLog.action)))
    assert {"content.create", "content.update", "content.duplicate", "content.move"} <= actions
    assert "content.delete" in actions


BAD_DRAFTS: list[tuple[dict[str, Any], str]] = [
    ({"starts_at": None}, "Give the item a date."),
    ({"channel": ""}, "Choose a channel for the item."),
    ({"channel": "tiktok"}, "'tiktok' is not a channel of the calendar."),
    ({"title": "   "}, "Give the item a title."),
    ({"ends_at": at(2027, 1, 4, 8)}, "The end must be after the start."),
    ({"ends_at": at(2027, 1, 4, 9)}, "The end must be after the start."),
    (
        {"recurrence": {"freq": "weekly", "interval": 1}},
        "A repeating item needs an end: give an end date or a number of occurrences.",
    ),
    (
        {"recurrence": {"freq": "weekly", "count": 521}},
        "A repeating item can have at most 520 occurrences.",
    ),
    (
        {"recurrence": {"freq": "weekly", "until": "2032-02-01"}},
        "A repeating item can repeat for at most 5 years; choose an earlier end date.",
    ),
    (
        {"recurrence": {"freq": "monthly", "interval": 12, "count": 7}},
        "A repeating item can repeat for at most 5 years; choose fewer occurrences.",
    ),
    (
        {"recurrence": {"freq": "weekly", "until": "2026-12-31"}},
        "The repeat end date is before the first occurrence.",
    ),
    (
        {"recurrence": {"freq": "daily", "count": 3}},
        "A repeating item repeats weekly or monthly.",
    ),
    (
        {"recurrence": {"freq": "weekly", "interval": 0, "count": 3}},
        "The repeat interval must be a whole number from 1 to 52.",
    ),
    (
        {"recurrence": {"freq": "weekly", "count": 3, "timezone": "Mars/Olympus"}},
        "'Mars/Olympus' is not a timezone this app knows.",
    ),
    ({"status": "live"}, "'live' is not a status of the calendar."),
    ({"theme": "memes"}, "'memes' is not a content theme."),
    ({"link": "not a link"}, "The link must be a web address starting with https://."),
    ({"pool_ids": [999]}, "One of the audience pools no longer exists."),
]


@pytest.mark.parametrize(("fields", "sentence"), BAD_DRAFTS)
def test_bad_input_is_one_sentence_and_nothing_is_saved(
    engine: Engine, writer: User, fields: dict[str, Any], sentence: str
) -> None:
    with pytest.raises(ValidationError) as error:
        items.save_item(engine, actor=writer, draft=draft(**fields))
    assert str(error.value) == sentence
    assert item_count(engine) == 0


def test_a_bad_edit_leaves_the_item_as_it_was(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data")
    item_id = items.save_item(engine, actor=writer, draft=draft(pool_ids=[pool]))
    with pytest.raises(ValidationError, match="end must be after"):
        items.save_item(
            engine,
            actor=writer,
            item_id=item_id,
            draft=draft(title="Changed", pool_ids=[], ends_at=at(2026, 1, 1)),
        )
    item = items.get_item(engine, item_id)
    assert (item.title, item.pool_ids) == ("Weekly job alert", (pool,))


def test_a_series_expands_at_most_520_occurrences(engine: Engine, writer: User) -> None:
    items.save_item(
        engine,
        actor=writer,
        draft=draft(starts_at=at(2027, 1, 1, 9), recurrence={"freq": "weekly", "count": 260}),
    )
    found = occurrences.occurrences_between(engine, start=at(2020, 1, 1), end=at(2040, 1, 1))
    assert len(found) == 260
    assert found[-1].starts_at == at(2027, 1, 1, 9) + dt.timedelta(weeks=259)


def test_save_table_saves_all_rows_or_none(engine: Engine, writer: User) -> None:
    first = items.save_item(engine, actor=writer, draft=draft(title="One"))
    second = items.save_item(
        engine, actor=writer, draft=draft(title="Two", ends_at=at(2027, 1, 4, 11))
    )
    rows = [
        {"id": first, "title": "One!", "channel": "blog", "starts_at": at(2027, 1, 5, 9)},
        {"id": second, "title": "Two!", "channel": "carrier pigeon"},
        {"id": None, "title": "New", "channel": "x", "starts_at": at(2027, 1, 6, 9)},
    ]
    with pytest.raises(ValidationError) as error:
        items.save_table(engine, actor=writer, rows=rows)
    assert str(error.value) == "Row 2: 'carrier pigeon' is not a channel of the calendar."
    assert [items.get_item(engine, i).title for i in (first, second)] == ["One", "Two"]
    assert item_count(engine) == 2

    rows[1]["channel"] = "sms"
    rows[1]["starts_at"] = dt.datetime(2027, 1, 7, 9)  # naive: read in the team's zone
    rows[1]["status"] = "scheduled"
    assert items.save_table(engine, actor=writer, rows=rows, timezone=LONDON) == 3
    one, two = items.get_item(engine, first), items.get_item(engine, second)
    assert (one.title, one.channel, one.starts_at) == ("One!", "blog", at(2027, 1, 5, 9))
    assert (two.channel, two.status, two.starts_at, two.ends_at) == (
        "sms",
        "scheduled",
        at(2027, 1, 7, 9),
        at(2027, 1, 7, 11),
    )
    assert item_count(engine) == 3
    with pytest.raises(ValidationError, match=r"^Row 1: That calendar item no longer exists\.$"):
        items.save_table(engine, actor=writer, rows=[{"id": 9999, "title": "x"}])


# --- publishing and campaigns -----------------------------------------------------------


def test_mark_published_logs_a_touchpoint_for_each_pool_member(
    engine: Engine, writer: User
) -> None:
    warm = make_pool(engine, "Warm", members=3)
    other = make_pool(engine, "Other", members=2)
    with db.write_session(engine) as session:  # one person in both pools
        session.add(PoolMember(pool_id=other, candidate_id=pool_member_ids(engine, warm)[0]))
    outsider = make_pool(engine, "Outsider", members=1)
    post = items.save_item(engine, actor=writer, draft=draft(pool_ids=[warm, other]))
    message = items.save_item(
        engine,
        actor=writer,
        draft=draft(title="Hello", channel="linkedin_message", pool_ids=[warm]),
    )

    assert items.mark_published(engine, actor=writer, item_id=post, log_touchpoint=True) == 5
    item = items.get_item(engine, post)
    assert item.status == "published" and item.published_at is not None
    with db.read_session(engine) as session:
        rows = session.execute(
            select(Activity.candidate_id, Activity.kind, Activity.channel, Activity.summary)
        ).all()
        contacted = session.scalar(
            select(func.count())
            .select_from(Candidate)
            .where(Candidate.last_contacted_at.is_not(None))
        )
    members = set(pool_member_ids(engine, warm)) | set(pool_member_ids(engine, other))
    assert {row.candidate_id for row in rows} == members and len(rows) == 5
    assert not members & set(pool_member_ids(engine, outsider))
    assert {(row.kind, row.channel, row.summary) for row in rows} == {
        ("touchpoint", "linkedin_post", "LinkedIn post: Weekly job alert")
    }
    assert contacted == 0  # a post is not a personal contact

    with pytest.raises(ValidationError, match="already published"):
        items.mark_published(engine, actor=writer, item_id=post, log_touchpoint=True)

    assert items.mark_published(engine, actor=writer, item_id=message, log_touchpoint=True) == 3
    with db.read_session(engine) as session:
        channels = session.execute(
            select(Candidate.id, Candidate.last_contact_channel).where(
                Candidate.last_contacted_at.is_not(None)
            )
        ).all()
    assert {cid for cid, _ in channels} == set(pool_member_ids(engine, warm))
    assert {channel for _, channel in channels} == {"linkedin_message"}


def test_mark_published_without_touchpoints_writes_no_timeline(
    engine: Engine, writer: User
) -> None:
    pool = make_pool(engine, "Warm", members=2)
    item_id = items.save_item(engine, actor=writer, draft=draft(pool_ids=[pool]))
    assert items.mark_published(engine, actor=writer, item_id=item_id, log_touchpoint=False) == 0
    assert items.get_item(engine, item_id).status == "published"
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == 0


def test_email_items_become_campaigns(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data")
    email = items.save_item(
        engine,
        actor=writer,
        draft=draft(title="January news", channel="email_newsletter", pool_ids=[pool], body="Hi"),
    )
    post = items.save_item(engine, actor=writer, draft=draft())
    assert items.campaign_prefill(engine, email) == {
        "name": "January news",
        "pool_id": pool,
        "starts_at": at(2027, 1, 4, 9),
        "subject": "January news",
        "body": "Hi",
    }
    with db.write_session(engine) as session:
        campaign = Campaign(name="January news", audience_pool_id=pool)
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    with pytest.raises(ValidationError, match="Only an email newsletter item"):
        items.link_campaign(engine, actor=writer, item_id=post, campaign_id=campaign_id)
    with pytest.raises(NotFound):
        items.link_campaign(engine, actor=writer, item_id=email, campaign_id=campaign_id + 1)
    items.link_campaign(engine, actor=writer, item_id=email, campaign_id=campaign_id)
    assert items.get_item(engine, email).campaign_id == campaign_id
    found = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    assert {o.campaign_id for o in found} == {campaign_id, None}
    with pytest.raises(ValidationError, match="goes out as a campaign"):
        items.mark_published(engine, actor=writer, item_id=email, log_touchpoint=True)


# --- cadence ----------------------------------------------------------------------------

NOW = at(2027, 3, 10, 12)  # a Wednesday
LONG_AGO = at(2026, 1, 1)


def published_item(engine: Engine, pool_id: int, when: dt.datetime) -> None:
    with db.write_session(engine) as session:
        item = ContentItem(
            title="Old post",
            channel="blog",
            status="published",
            scheduled_at=when,
            published_at=when,
            recurrence_exceptions=[],
        )
        session.add(item)
        session.flush()
        session.add(ContentItemPool(content_item_id=item.id, pool_id=pool_id))


def sent_email(engine: Engine, pool_id: int, when: dt.datetime, status: str = "sent") -> None:
    with db.write_session(engine) as session:
        person = Candidate(first_name="Mail", last_name=str(pool_id))
        campaign = Campaign(name=f"Campaign {pool_id} {status}", audience_pool_id=pool_id)
        session.add_all([person, campaign])
        session.flush()
        step = CampaignStep(campaign_id=campaign.id, position=1, subject="Hi", body_markdown="x")
        enrollment = Enrollment(campaign_id=campaign.id, candidate_id=person.id)
        session.add_all([step, enrollment])
        session.flush()
        session.add(
            OutboxMessage(
                unique_key=f"{campaign.id}",
                campaign_id=campaign.id,
                step_id=step.id,
                enrollment_id=enrollment.id,
                candidate_id=person.id,
                status=status,
                sent_at=when if status == "sent" else None,
                due_at=when,
            )
        )


def test_cadence_warns_when_a_pool_would_hear_from_us_too_often(
    engine: Engine, writer: User
) -> None:
    capped = make_pool(engine, "Capped", cap=2, created=LONG_AGO)
    free = make_pool(engine, "Free", created=LONG_AGO)
    for day in (15, 16, 21):  # Mon 15 and Tue 16 March, Sun 21: three in one ISO week
        items.save_item(
            engine,
            actor=writer,
            draft=draft(starts_at=at(2027, 3, day, 9), pool_ids=[capped, free]),
        )
    # A weekly series adds one more in that week and one in the next.
    items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2027, 3, 17, 9),
            pool_ids=[capped],
            recurrence={"freq": "weekly", "count": 2},
        ),
    )
    items.save_item(  # the week after: two in all, within the cap
        engine, actor=writer, draft=draft(starts_at=at(2027, 3, 26, 9), pool_ids=[capped])
    )
    for pool in (capped, free):
        published_item(engine, pool, NOW - dt.timedelta(days=1))
    # The window starts mid-week: the whole ISO week is counted.
    warnings = cadence.cadence_warnings(engine, start=at(2027, 3, 18), end=at(2027, 4, 1), now=NOW)
    assert [(w.pool, w.kind, w.week_start) for w in warnings] == [
        ("Capped", "too_often", dt.date(2027, 3, 15))
    ]
    assert warnings[0].message == (
        "Capped would hear from us 4 times in the week of 15 Mar 2027, "
        "more than its cap of 2 a week."
    )
    cadence.set_pool_cadence(
        engine, actor=writer, pool_id=capped, frequency_cap_per_week=4, silence_days=None
    )
    assert (
        cadence.cadence_warnings(engine, start=at(2027, 3, 18), end=at(2027, 4, 1), now=NOW) == []
    )


def test_cadence_radio_silence_counts_published_items_and_sent_campaign_emails(
    engine: Engine, writer: User
) -> None:
    quiet = make_pool(engine, "Quiet", created=LONG_AGO)  # default: 30 days
    mailed = make_pool(engine, "Mailed", created=LONG_AGO)
    patient = make_pool(engine, "Patient", silence=60, created=LONG_AGO)
    planned = make_pool(engine, "Planned", created=LONG_AGO)
    never = make_pool(engine, "Never", created=LONG_AGO)
    young = make_pool(engine, "Young", created=NOW - dt.timedelta(days=3))
    queued = make_pool(engine, "Queued only", created=LONG_AGO)
    strict = make_pool(engine, "Strict", silence=7, created=LONG_AGO)

    published_item(engine, quiet, NOW - dt.timedelta(days=40))
    published_item(engine, mailed, NOW - dt.timedelta(days=40))
    sent_email(engine, mailed, NOW - dt.timedelta(days=5))
    published_item(engine, patient, NOW - dt.timedelta(days=40))
    published_item(engine, planned, NOW - dt.timedelta(days=40))
    items.save_item(
        engine, actor=writer, draft=draft(starts_at=NOW + dt.timedelta(days=10), pool_ids=[planned])
    )
    sent_email(engine, queued, NOW - dt.timedelta(days=5), status="queued")
    sent_email(engine, strict, NOW - dt.timedelta(days=10))
    # Planned for the strict pool, but beyond its 7 days.
    items.save_item(
        engine, actor=writer, draft=draft(starts_at=NOW + dt.timedelta(days=10), pool_ids=[strict])
    )

    warnings = cadence.cadence_warnings(engine, start=at(2027, 3, 1), end=at(2027, 4, 1), now=NOW)
    assert all(w.kind == "silence" and w.week_start is None for w in warnings)
    by_pool = {w.pool: w.message for w in warnings}
    assert set(by_pool) == {"Quiet", "Never", "Queued only", "Strict"}
    assert by_pool["Quiet"] == (
        "Quiet has heard nothing from us for 40 days and nothing is planned in the next 30 days."
    )
    assert by_pool["Strict"] == (
        "Strict has heard nothing from us for 10 days and nothing is planned in the next 7 days."
    )
    assert by_pool["Never"].startswith("Never has never heard from us")
    assert {w.pool_id for w in warnings} == {quiet, never, queued, strict}
    assert mailed not in {w.pool_id for w in warnings} and young not in {
        w.pool_id for w in warnings
    }


def test_set_pool_cadence_checks_its_numbers(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data")
    with pytest.raises(ValidationError, match="weekly cap must be a whole number from 1 to 50"):
        cadence.set_pool_cadence(
            engine, actor=writer, pool_id=pool, frequency_cap_per_week=0, silence_days=None
        )
    with pytest.raises(ValidationError, match="radio-silence days"):
        cadence.set_pool_cadence(
            engine, actor=writer, pool_id=pool, frequency_cap_per_week=None, silence_days=-3
        )
    with pytest.raises(NotFound):
        cadence.set_pool_cadence(
            engine, actor=writer, pool_id=pool + 1, frequency_cap_per_week=2, silence_days=10
        )
    cadence.set_pool_cadence(
        engine, actor=writer, pool_id=pool, frequency_cap_per_week=3, silence_days=14
    )
    with db.read_session(engine) as session:
        stored = session.get(Pool, pool)
        assert (stored.frequency_cap_per_week, stored.silence_days) == (3, 14)


# --- balance ----------------------------------------------------------------------------


def test_theme_balance_counts_occurrences_per_month(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data")
    items.save_item(
        engine,
        actor=writer,
        draft=draft(
            starts_at=at(2027, 1, 25, 9),
            theme="job_alert",
            pool_ids=[pool],
            recurrence={"freq": "weekly", "count": 3},  # 25 Jan, 1 and 8 Feb
        ),
    )
    items.save_item(
        engine, actor=writer, draft=draft(starts_at=at(2027, 1, 5), theme="career_advice")
    )
    items.save_item(engine, actor=writer, draft=draft(starts_at=at(2027, 2, 5)))
    balance = cadence.theme_balance(engine, start=at(2027, 1, 1), end=at(2027, 4, 1))
    assert list(balance) == ["2027-01", "2027-02", "2027-03"]
    assert balance["2027-01"] == {
        "company_news": 0,
        "industry_insight": 0,
        "career_advice": 1,
        "employee_story": 0,
        "job_alert": 1,
    }
    assert balance["2027-02"]["job_alert"] == 2 and balance["2027-02"]["none"] == 1
    assert sum(balance["2027-03"].values()) == 0
    only_pool = cadence.theme_balance(
        engine, start=at(2027, 1, 1), end=at(2027, 3, 1), pool_id=pool
    )
    assert only_pool["2027-01"]["career_advice"] == 0 and only_pool["2027-02"]["job_alert"] == 2


# --- export -----------------------------------------------------------------------------


def test_ics_export_has_one_event_per_occurrence(engine: Engine, writer: User) -> None:
    pool = make_pool(engine, "Data, Analytics")
    series = items.save_item(
        engine,
        actor=writer,
        draft=draft(
            title="Job alert; weekly",
            starts_at=at(2027, 3, 15, 9),
            ends_at=at(2027, 3, 15, 9, 45),
            pool_ids=[pool],
            theme="job_alert",
            status="scheduled",
            link="https://careers.example.com/jobs",
            body="Line one\nLine two",
            recurrence={"freq": "weekly", "count": 4, "timezone": LONDON},
        ),
    )
    items.skip_occurrence(engine, actor=writer, item_id=series, key="2027-03-22")
    single = items.save_item(
        engine,
        actor=writer,
        draft=draft(title="Meetup", channel="event", starts_at=at(2027, 3, 20, 18)),
    )
    data = files.export_ics(engine, start=at(2027, 3, 1), end=at(2027, 4, 1))
    parsed = icalendar.Calendar.from_ical(data)
    assert str(parsed["VERSION"]) == "2.0" and parsed.get("PRODID")
    events = list(parsed.walk("VEVENT"))
    assert len(events) == 3  # 22 March is skipped, 5 April is outside the window
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == 3
    assert uids[0] == f"content-{series}-2027-03-15@{files.ICS_DOMAIN}"
    assert [e.decoded("DTSTART") for e in events] == [
        at(2027, 3, 15, 9),
        at(2027, 3, 20, 18),
        at(2027, 3, 29, 8),  # 09:00 in London after the clocks went forward
    ]
    assert all(e.decoded("DTSTART").utcoffset() == dt.timedelta(0) for e in events)
    assert all(e.decoded("DTSTAMP") for e in events)
    first, meetup = events[0], events[1]
    assert str(first["SUMMARY"]) == "LinkedIn post: Job alert; weekly"
    assert first.decoded("DTEND") == at(2027, 3, 15, 9, 45)
    assert str(first["URL"]) == "https://careers.example.com/jobs"
    assert str(first["STATUS"]) == "CONFIRMED"
    description = str(first["DESCRIPTION"])
    assert "Channel: LinkedIn post" in description and "Pools: Data, Analytics" in description
    assert description.endswith("Line one\nLine two")
    assert [str(c) for c in first["CATEGORIES"].cats] == ["LinkedIn post", "Job alert"]
    assert str(meetup["UID"]) == f"content-{single}-2027-03-20@{files.ICS_DOMAIN}"
    assert str(meetup["STATUS"]) == "TENTATIVE" and "URL" not in meetup
    assert meetup.decoded("DTEND") - meetup.decoded("DTSTART") == files.ICS_DEFAULT_DURATION
    assert b"DTSTART:20270329T080000Z" in data


def test_ics_export_window_ends_before_april_excludes_april(engine: Engine, writer: User) -> None:
    items.save_item(
        engine,
        actor=writer,
        draft=draft(starts_at=at(2027, 3, 15, 9), recurrence={"freq": "weekly", "count": 4}),
    )
    parsed = icalendar.Calendar.from_ical(
        files.export_ics(engine, start=at(2027, 3, 1), end=at(2027, 3, 29))
    )
    assert [e.decoded("DTSTART") for e in parsed.walk("VEVENT")] == [
        at(2027, 3, 15, 9),
        at(2027, 3, 22, 9),
    ]


def snapshot(engine: Engine) -> list[tuple[Any, ...]]:
    found = occurrences.occurrences_between(engine, start=at(2026, 1, 1), end=at(2028, 1, 1))
    return [
        (
            o.title,
            o.channel,
            o.starts_at,
            o.ends_at,
            o.pools,
            o.theme,
            o.status,
            o.owner,
            o.link,
            o.body,
        )
        for o in found
    ]


def test_csv_export_then_import_gives_the_same_items(
    engine: Engine, users: dict[str, User]
) -> None:
    writer = users["recruiter"]
    data_pool = make_pool(engine, "Data")
    make_pool(engine, "Design")
    items.save_item(
        engine,
        actor=writer,
        draft=draft(
            title='=HYPERLINK("http://evil")',
            starts_at=at(2027, 3, 15, 9, 30),
            ends_at=at(2027, 3, 15, 11),
            pool_ids=[data_pool],
            theme="job_alert",
            status="scheduled",
            owner_id=users["admin"].id,
            link="https://careers.example.com/a",
            body='Two lines,\nwith "quotes"; and ü',
        ),
    )
    items.save_item(
        engine,
        actor=writer,
        draft=draft(
            title="-5 tips for interviews",
            channel="blog",
            starts_at=at(2027, 3, 31, 23),  # 1 April in London
            ends_at=at(2027, 4, 2, 8),
        ),
    )
    items.save_item(
        engine,
        actor=writer,
        draft=draft(title="Meetup", channel="event", starts_at=at(2027, 7, 1, 17)),
    )
    before = snapshot(engine)
    exported = files.export_csv(engine, start=at(2027, 1, 1), end=at(2028, 1, 1), timezone=LONDON)
    text = exported.decode("utf-8")
    assert text.splitlines()[0] == "Date,Time,End,Channel,Title,Pools,Theme,Status,Owner,Link,Notes"
    assert "'=HYPERLINK" in text and "'-5 tips" in text
    assert "2027-04-01,00:00,2027-04-02 09:00,Blog" in text

    for item_id in {
        o.item_id
        for o in occurrences.occurrences_between(engine, start=at(2026, 1, 1), end=at(2028, 1, 1))
    }:
        items.delete_item(engine, actor=writer, item_id=item_id)
    assert item_count(engine) == 0
    result = files.import_csv(
        engine, actor=writer, data=exported, filename="calendar.csv", timezone=LONDON
    )
    assert (result.created, result.errors, result.skipped) == (3, [], 0)
    assert snapshot(engine) == before
    # Importing the same file again adds nothing.
    again = files.import_csv(
        engine, actor=writer, data=exported, filename="calendar.csv", timezone=LONDON
    )
    assert (again.created, again.skipped) == (0, 3)
    assert item_count(engine) == 3


def test_csv_export_lists_each_occurrence_of_a_series(engine: Engine, writer: User) -> None:
    items.save_item(
        engine,
        actor=writer,
        draft=draft(starts_at=at(2027, 1, 4, 9), recurrence={"freq": "weekly", "count": 3}),
    )
    lines = files.export_csv(engine, start=at(2027, 1, 1), end=at(2027, 2, 1)).decode().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["2027-01-04", "2027-01-11", "2027-01-18"]


def test_csv_round_trip_keeps_cells_that_start_with_a_quote_or_a_sign(
    engine: Engine, writer: User
) -> None:
    # The one escape rule of crm.imports.cells: a quote our export added comes off again,
    # one the item itself starts with stays.
    titles = ["'-5", "''=x", "-5", "+44 20 call", "'quoted", "@team", "=SUM(A1)"]
    for day, title in enumerate(titles, start=4):
        items.save_item(
            engine, actor=writer, draft=draft(title=title, starts_at=at(2027, 1, day, 9))
        )
    before = snapshot(engine)
    exported = files.export_csv(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    for o in occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1)):
        items.delete_item(engine, actor=writer, item_id=o.item_id)
    result = files.import_csv(engine, actor=writer, data=exported, filename="calendar.csv")
    assert (result.created, result.errors) == (len(titles), [])
    assert snapshot(engine) == before


# --- import -----------------------------------------------------------------------------

MESSY = (
    "Content plan Q1 2027 - marketing team\r\n"
    "Exported from Sheets\r\n"
    "\r\n"
    "Publish Date;Time;Platform;Topic;Audience;Content Pillar;STATUS;Author;URL;Copy\r\n"
    "13/01/2027;9:30;LinkedIn;New year, new role;Data, Design;Career tips;Planned;"
    "Rita Recruiter;www.example.com/a;Draft text\r\n"
    "14/01/2027;2pm;Twitter;Hiring now;data;Jobs;posted;admin;;\r\n"
    "31/02/2027;10:00;Instagram;Bad date row;;;;;;\r\n"
    '15 Jan 2027;;Blog;Meet Sam;;Employee story;;;;"Multi\nline"\r\n'
    "16/01/2027;10:00;TikTok;Wrong channel;;;;;;\r\n"
    "17/01/2027;10:00;Blog;Unknown pool;Marketing;;;;;\r\n"
    "18/01/2027;10:00;Blog;;;;;;;\r\n"
)


def test_import_of_a_messy_spreadsheet_reports_bad_rows_and_saves_the_rest(
    engine: Engine, writer: User
) -> None:
    data_pool = make_pool(engine, "Data")
    design = make_pool(engine, "Design")
    result = files.import_csv(
        engine,
        actor=writer,
        data=MESSY.encode("cp1252"),
        filename="plan.csv",
        timezone=LONDON,
    )
    assert result.created == 3
    assert result.errors == [
        (
            7,
            "Publish Date",
            "'31/02/2027' is not a date this import can read (use e.g. 2027-01-05).",
        ),
        (
            10,
            "Platform",
            "'TikTok' is not a channel of the calendar (Email newsletter, LinkedIn post, "
            "LinkedIn message, X, Instagram, SMS, Blog, Event).",
        ),
        (11, "Audience", "There is no pool called 'Marketing'."),
        (12, "Topic", "Give the item a title."),
    ]
    report = result.error_report_csv()
    assert report.splitlines()[0] == "row,column,problem" and "31/02/2027" in report
    found = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 2, 1))
    assert [
        (o.title, o.channel, o.starts_at, o.pool_ids, o.theme, o.status, o.owner, o.link, o.body)
        for o in found
    ] == [
        (
            "New year, new role",
            "linkedin_post",
            at(2027, 1, 13, 9, 30),
            tuple(
                sorted((data_pool, design), key=lambda p: {data_pool: "Data", design: "Design"}[p])
            ),
            "career_advice",
            "scheduled",
            "Rita Recruiter",
            "https://www.example.com/a",
            "Draft text",
        ),
        (
            "Hiring now",
            "x",
            at(2027, 1, 14, 14),
            (data_pool,),
            "job_alert",
            "published",
            "Ada Admin",
            None,
            None,
        ),
        (
            "Meet Sam",
            "blog",
            at(2027, 1, 15, 9),
            (),
            "employee_story",
            "idea",
            None,
            None,
            "Multi\nline",
        ),
    ]
    with db.read_session(engine) as session:
        batch = session.scalars(select(ImportBatch)).one()
        assert (batch.kind, batch.created_count, batch.error_count) == ("content", 3, 4)
        assert batch.error_report == report


def test_import_reads_month_first_dates_when_the_file_shows_them(
    engine: Engine, writer: User
) -> None:
    data = b"Date,Channel,Title\n01/13/2027,Blog,One\n02/03/2027,Blog,Two\n"
    result = files.import_csv(engine, actor=writer, data=data, filename="us.csv")
    assert result.created == 2
    found = occurrences.occurrences_between(engine, start=at(2027, 1, 1), end=at(2027, 3, 1))
    assert [o.starts_at for o in found] == [at(2027, 1, 13, 9), at(2027, 2, 3, 9)]


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        (b"", "The file is empty."),
        (
            b"PK\x03\x04rest",
            "This file is a zip archive (an .xlsx workbook is one); save it as CSV first, "
            "not a CSV file.",
        ),
        (
            b"Title,Channel\nHello,Blog\n",
            "The file has no date column (a header such as Date); found: Title, Channel.",
        ),
        (
            b"Date,Title\n2027-01-05,Hello\n",
            "The file has no channel column (a header such as Channel or Platform); "
            "found: Date, Title.",
        ),
        (b"Date,Channel,Title\n", "The file has a header row but no data rows."),
    ],
)
def test_an_unusable_file_is_one_sentence_and_saves_nothing(
    engine: Engine, writer: User, data: bytes, sentence: str
) -> None:
    with pytest.raises(InputUnusable) as error:
        files.import_csv(engine, actor=writer, data=data, filename="x.csv")
    assert str(error.value) == sentence
    assert item_count(engine) == 0


def test_an_import_with_only_bad_rows_saves_nothing(engine: Engine, writer: User) -> None:
    data = b"Date,Channel,Title\nsoon,Blog,One\n2027-01-05,,Two\n2027-01-05,Blog,Three\n"
    result = files.import_csv(engine, actor=writer, data=data, filename="x.csv")
    assert result.created == 1
    assert [(line, column) for line, column, _ in result.errors] == [(2, "Date"), (3, "Channel")]
    assert result.errors[1][2] == "Choose a channel for the item."
    assert item_count(engine) == 1


# --- who may write ----------------------------------------------------------------------

WRITERS: list[tuple[str, Callable[..., Any]]] = [
    ("save_item", lambda e, a, i, p: items.save_item(e, actor=a, draft=draft())),
    ("edit_item", lambda e, a, i, p: items.save_item(e, actor=a, draft=draft(), item_id=i)),
    ("duplicate_item", lambda e, a, i, p: items.duplicate_item(e, actor=a, item_id=i)),
    (
        "move_item",
        lambda e, a, i, p: items.move_item(e, actor=a, item_id=i, starts_at=at(2027, 2, 1)),
    ),
    (
        "skip_occurrence",
        lambda e, a, i, p: items.skip_occurrence(e, actor=a, item_id=i, key="2027-01-11"),
    ),
    (
        "move_occurrence",
        lambda e, a, i, p: items.move_occurrence(
            e, actor=a, item_id=i, key="2027-01-11", starts_at=at(2027, 1, 12)
        ),
    ),
    (
        "restore_occurrence",
        lambda e, a, i, p: items.restore_occurrence(e, actor=a, item_id=i, key="2027-01-11"),
    ),
    ("delete_item", lambda e, a, i, p: items.delete_item(e, actor=a, item_id=i)),
    ("save_table", lambda e, a, i, p: items.save_table(e, actor=a, rows=[{"id": i, "title": "x"}])),
    (
        "mark_published",
        lambda e, a, i, p: items.mark_published(e, actor=a, item_id=i, log_touchpoint=True),
    ),
    (
        "link_campaign",
        lambda e, a, i, p: items.link_campaign(e, actor=a, item_id=i, campaign_id=None),
    ),
    (
        "set_pool_cadence",
        lambda e, a, i, p: cadence.set_pool_cadence(
            e, actor=a, pool_id=p, frequency_cap_per_week=1, silence_days=1
        ),
    ),
    (
        "import_csv",
        lambda e, a, i, p: files.import_csv(
            e, actor=a, data=b"Date,Channel,Title\n2027-01-05,Blog,x\n", filename="x.csv"
        ),
    ),
]


@pytest.mark.parametrize(("name", "call"), WRITERS, ids=[name for name, _ in WRITERS])
def test_a_manager_is_refused_on_every_writer(
    engine: Engine, users: dict[str, User], name: str, call: Callable[..., Any]
) -> None:
    pool = make_pool(engine, "Data", members=1)
    item_id = items.save_item(
        engine,
        actor=users["recruiter"],
        draft=draft(pool_ids=[pool], recurrence={"freq": "weekly", "count": 3}),
    )
    before = items.get_item(engine, item_id)
    with pytest.raises(PermissionDenied):
        call(engine, users["manager"], item_id, pool)
    assert items.get_item(engine, item_id) == before
    assert item_count(engine) == 1
    with db.read_session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Activity)) == 0
        assert session.get(Pool, pool).frequency_cap_per_week is None
    # The same call by a recruiter goes through (so the refusal is about the role).
    call(engine, users["recruiter"], item_id, pool)
