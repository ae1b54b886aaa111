"""Engagement: what opens, clicks, unsubscribes, replies and bounces change, and the
rules that tell people from machines."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, update

from crm import campaign_figures, campaigns, clock, composer, db, engagement, outbox, tokens
from crm.identity import address_hash
from crm.models import Candidate, Event, Link, OutboxMessage, Suppression, User
from tests.smtp_server import FaultySmtpServer
from tests.test_outbox import TWO_STEPS, launched, statuses

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124 Safari/537.36"
LINKS = [
    campaigns.StepDraft(
        subject="Hi {{first_name}}",
        body="See [jobs](https://acme.example/jobs) and [blog](https://acme.example/blog).",
    ),
    campaigns.StepDraft(subject="Again", body="Still here.", delay_days=4, stop_on_click=True),
]


def open_pixel(
    engine: Engine, outbox_id: int, *, user_agent: str | None, now: dt.datetime | None = None
) -> bool:
    """The open pixel fetched, as the /o/ route records it (crm.tracking: one Hit)."""
    hit = engagement.Hit(outbox_id, now or clock.now(), user_agent)
    return engagement.record_hits(engine, [hit]) == 1


def clicked(engine: Engine, outbox_id: int, position: int, *, user_agent: str | None) -> str | None:
    """A click, as the /c/ route records it: the stored link it names, then the hit."""
    target = engagement.link_target(engine, outbox_id, position)
    if target is None:
        return None
    link_id, url = target
    engagement.record_hits(
        engine, [engagement.Hit(outbox_id, clock.now(), user_agent, link_id=link_id)]
    )
    return url


def sent_rows(engine: Engine) -> list[OutboxMessage]:
    with db.read_session(engine) as session:
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.status == "sent")
                .order_by(OutboxMessage.id)
            )
        )


def age_messages(engine: Engine, seconds: int = 3600) -> None:
    """Move send times back, as if the messages went out a while ago."""
    with db.write_session(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.sent_at.is_not(None))
            .values(sent_at=clock.now() - dt.timedelta(seconds=seconds))
        )


def make_due(engine: Engine) -> None:
    with db.write_session(engine) as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "queued")
            .values(due_at=clock.now() - dt.timedelta(seconds=1))
        )


def events(engine: Engine, kind: str) -> list[Event]:
    with db.read_session(engine) as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_sent_html_tracks_links_and_opens(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    launched(engine, users["admin"], 1, steps=LINKS)
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    html = smtp.received[0].message.get_body(("html",)).get_content()
    assert 'href="https://acme.example/jobs"' not in html
    assert html.count("https://crm.acme.example/c/") == 2
    assert f'src="{composer.open_url(row.id)}"' in html
    assert "https://crm.acme.example/unsubscribe?t=" in html
    text = smtp.received[0].message.get_body(("plain",)).get_content()
    assert "jobs (https://acme.example/jobs)" in text
    with db.read_session(engine) as session:
        links = session.execute(
            select(Link.position, Link.url).where(Link.outbox_message_id == row.id)
        ).all()
    assert sorted(links) == [(0, "https://acme.example/jobs"), (1, "https://acme.example/blog")]


def test_open_rules(engine: Engine, users: dict[str, User], smtp: FaultySmtpServer) -> None:
    launched(engine, users["admin"], 1, steps=LINKS)
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    # Seconds after delivery: a scanner fetched it.
    assert open_pixel(engine, row.id, user_agent=BROWSER)
    age_messages(engine)
    assert open_pixel(engine, row.id, user_agent=GMAIL_PROXY)
    assert open_pixel(engine, row.id, user_agent=BROWSER)
    assert [(e.is_machine, e.seen_via) for e in events(engine, "open")] == [
        (True, "scanner"),
        (False, "gmail_proxy"),
        (False, "person"),
    ]
    with db.read_session(engine) as session:
        assert session.get(Candidate, row.candidate_id).last_engaged_at is not None
    assert not open_pixel(engine, 999_999, user_agent=BROWSER)


# What Gmail's image proxy, Apple Mail Privacy Protection and Apple Mail itself send.
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_PRIVACY = "Mozilla/5.0"
APPLE_MAIL = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)


def one_open_an_hour_after_delivery(
    engine: Engine, users: dict[str, User], user_agent: str | None
) -> tuple[Event, dt.datetime | None, dt.datetime]:
    """The open event a fetch with this agent makes, the person's engagement date after it,
    and when the fetch came."""
    launched(engine, users["admin"], 1, steps=LINKS)
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    age_messages(engine)
    fetched = clock.now()
    assert open_pixel(engine, row.id, user_agent=user_agent, now=fetched)
    (opened,) = events(engine, "open")
    with db.read_session(engine) as session:
        return opened, session.get(Candidate, row.candidate_id).last_engaged_at, fetched


def test_a_gmail_proxy_open_is_the_persons_open(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    opened, engaged_at, fetched = one_open_an_hour_after_delivery(engine, users, GMAIL_PROXY)
    assert (opened.is_machine, opened.seen_via, opened.user_agent) == (
        False,
        "gmail_proxy",
        GMAIL_PROXY,
    )
    assert engaged_at == fetched


def test_an_apple_privacy_prefetch_is_recorded_apart_and_is_not_engagement(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    opened, engaged_at, _ = one_open_an_hour_after_delivery(engine, users, APPLE_PRIVACY)
    assert (opened.is_machine, opened.seen_via) == (True, "apple_privacy")
    assert engaged_at is None


def test_an_apple_mail_open_with_privacy_protection_off_is_the_persons(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    opened, engaged_at, fetched = one_open_an_hour_after_delivery(engine, users, APPLE_MAIL)
    assert (opened.is_machine, opened.seen_via) == (False, "person")
    assert engaged_at == fetched


def test_a_scanner_stays_a_scanner(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    opened, engaged_at, _ = one_open_an_hour_after_delivery(engine, users, "python-requests/2.31.0")
    assert (opened.is_machine, opened.seen_via) == (True, "scanner")
    assert engaged_at is None


@pytest.mark.parametrize(
    ("user_agent", "seconds", "is_click", "expected"),
    [
        (GMAIL_PROXY, 3600.0, False, (False, "gmail_proxy")),
        (GMAIL_PROXY, 9.5, False, (True, "scanner")),  # seconds after delivery
        (GMAIL_PROXY, 3600.0, True, (True, "scanner")),  # the proxy never follows links
        (APPLE_PRIVACY, 3600.0, False, (True, "apple_privacy")),
        (" Mozilla/5.0 ", 2.0, False, (True, "apple_privacy")),  # at delivery, as it often is
        (APPLE_PRIVACY, 3600.0, True, (True, "scanner")),  # Apple's relays never click
        ("Mozilla/5.0 (iPhone)", 3600.0, False, (False, "person")),  # not the bare string
        (APPLE_MAIL, 10.0, False, (False, "person")),  # ten seconds is no longer "within"
        (APPLE_MAIL, None, False, (False, "person")),  # send time unknown
        (BROWSER, 3600.0, True, (False, "person")),
        (BROWSER, 9.9, True, (True, "scanner")),
        (None, 3600.0, False, (True, "scanner")),
        ("", 3600.0, True, (True, "scanner")),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", 3600.0, False, (True, "scanner")),
        ("Go-http-client/1.1", 3600.0, True, (True, "scanner")),
    ],
)
def test_classify_hit(
    user_agent: str | None, seconds: float | None, is_click: bool, expected: tuple[bool, str]
) -> None:
    assert (
        engagement.classify_hit(
            user_agent=user_agent, seconds_after_delivery=seconds, is_click=is_click
        )
        == expected
    )


def test_every_seen_via_is_named_and_fits_its_column() -> None:
    assert set(engagement.SEEN_VIA) == {"person", "gmail_proxy", "apple_privacy", "scanner"}
    assert set(engagement.MACHINE_SEEN_VIA) == {"apple_privacy", "scanner"}
    assert max(len(key) for key in engagement.SEEN_VIA) <= Event.seen_via.type.length


def test_opens_explained() -> None:
    assert engagement.opens_explained(
        people_opened=40, apple_privacy_people=12, scanner_opens=30
    ) == (
        "Opens count people: 40 people opened (Gmail's image proxy counts as the person "
        "opening, and a click counts as an open); not counted: Apple Mail Privacy Protection "
        "prefetches for 12 more people (made whether or not anyone reads) and 30 scanner "
        "opens."
    )
    assert engagement.opens_explained(people_opened=1, apple_privacy_people=1, scanner_opens=0) == (
        "Opens count people: 1 person opened (Gmail's image proxy counts as the person "
        "opening, and a click counts as an open); not counted: Apple Mail Privacy Protection "
        "prefetches for 1 more person (made whether or not anyone reads)."
    )
    assert engagement.opens_explained(
        people_opened=0, apple_privacy_people=0, scanner_opens=1_200
    ) == (
        "Opens count people: 0 people opened (Gmail's image proxy counts as the person "
        "opening, and a click counts as an open); not counted: 1,200 scanner opens."
    )
    assert engagement.opens_explained(
        people_opened=3, apple_privacy_people=0, scanner_opens=0
    ).endswith("counts as an open).")
    with pytest.raises(ValueError):
        engagement.opens_explained(people_opened=-1, apple_privacy_people=0, scanner_opens=0)


def test_clicking_every_link_at_once_is_a_scanner(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 1, steps=LINKS)
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    age_messages(engine)
    first = clicked(engine, row.id, 0, user_agent=BROWSER)
    second = clicked(engine, row.id, 1, user_agent=BROWSER)
    assert (first, second) == ("https://acme.example/jobs", "https://acme.example/blog")
    assert [(e.is_machine, e.seen_via) for e in events(engine, "click")] == [
        (True, "scanner"),
        (True, "scanner"),
    ]
    # Scanner clicks stop nothing: the next step still goes out.
    make_due(engine)
    assert outbox.deliver_due(engine).sent == 1
    assert statuses(engine, campaign_id) == {"sent": 2}
    assert clicked(engine, row.id, 7, user_agent=BROWSER) is None


def test_a_human_click_stops_a_step_that_says_so(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 1, steps=LINKS)
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    age_messages(engine)
    clicked(engine, row.id, 0, user_agent=BROWSER)
    assert [(e.is_machine, e.seen_via) for e in events(engine, "click")] == [(False, "person")]
    make_due(engine)
    outbox.deliver_due(engine)
    assert statuses(engine, campaign_id) == {"sent": 1, "cancelled": 1}
    assert campaign_figures.step_counts(engine, campaign_id)[1].cancelled_reasons == {"clicked": 1}


def test_unsubscribe_stops_every_campaign_at_once_and_is_idempotent(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    first = launched(engine, users["admin"], 1, steps=TWO_STEPS, name="A")
    outbox.deliver_due(engine)
    (row,) = sent_rows(engine)
    assert engagement.unsubscribe(engine, row.id, how="one-click")
    assert engagement.unsubscribe(engine, row.id, how="page")
    assert len(events(engine, "unsubscribe")) == 1
    assert statuses(engine, first) == {"sent": 1, "cancelled": 1}
    with db.read_session(engine) as session:
        person = session.get(Candidate, row.candidate_id)
        assert person.unsubscribed_at is not None
        assert (
            session.scalar(
                select(Suppression.reason).where(
                    Suppression.address_hash == address_hash(person.email_normalized)
                )
            )
            == "unsubscribe"
        )
    assert not engagement.unsubscribe(engine, 424242, how="page")


def test_reply_by_hand_stops_the_sequence_and_counts_interest(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 2, steps=TWO_STEPS)
    outbox.deliver_due(engine)
    result = engagement.mark_replies_from_addresses(
        engine,
        actor=users["recruiter"],
        addresses=[" P0@Example.com ", "nobody@example.com", "not an address"],
        answer="interested",
    )
    assert result.marked == 1
    assert sorted(result.unknown) == ["nobody@example.com", "not an address"]
    assert statuses(engine, campaign_id) == {"sent": 2, "queued": 1, "cancelled": 1}
    report = campaign_figures.report(engine, campaign_id)
    assert (report["totals"]["people_replied"], report["totals"]["people_interested"]) == (1, 1)
    with pytest.raises(Exception, match="read-only|permission|cannot"):
        engagement.record_reply(engine, candidate_id=1, actor=users["manager"])


def test_hard_bounce_suppresses_and_soft_does_not(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    campaign_id = launched(engine, users["admin"], 2, steps=TWO_STEPS)
    outbox.deliver_due(engine)
    soft, hard = sent_rows(engine)
    assert engagement.record_bounce(engine, outbox_id=soft.id, hard=False, reason="4.2.2 full")
    assert engagement.record_bounce(
        engine, address=hard.to_address, hard=True, reason="5.1.1 unknown"
    )
    with db.read_session(engine) as session:
        reasons = dict(session.execute(select(Suppression.address_hash, Suppression.reason)).all())
    assert reasons == {address_hash(hard.to_address): "hard_bounce"}
    assert statuses(engine, campaign_id) == {"sent": 2, "queued": 1, "cancelled": 1}
    assert [e.detail["hard"] for e in events(engine, "bounce")] == [False, True]


def test_every_link_of_a_message_with_over_a_thousand_has_its_own_click(
    engine: Engine, users: dict[str, User], smtp: FaultySmtpServer
) -> None:
    """Click tokens named outbox_id * 1000 + position: link 1,001 of one message was link 1
    of the next, so the click went to another person's URL and was recorded for them."""
    body = " ".join(f"<http://a.io/{n}>" for n in range(1005))
    launched(engine, users["admin"], 2, steps=[campaigns.StepDraft(subject="Hi", body=body)])
    assert outbox.deliver_due(engine).sent == 2
    first, second = sent_rows(engine)
    age_messages(engine)

    def click_tokens(row: OutboxMessage) -> list[str]:
        (message,) = [m.message for m in smtp.received if row.to_address in m.rcpt_tos]
        html = message.get_body(("html",)).get_content()
        links = html.split('<a href="https://crm.acme.example/c/')[1:]
        return [link.split('"')[0] for link in links]

    tokens_of = {row.id: click_tokens(row) for row in (first, second)}
    assert [len(found) for found in tokens_of.values()] == [1005, 1005]
    assert len({token for found in tokens_of.values() for token in found}) == 2010
    token = tokens_of[first.id][1000]  # the 1,001st link of the first message
    assert engagement.read_click_token(token) == (first.id, 1000, False)
    url = clicked(engine, first.id, 1000, user_agent=BROWSER)
    assert url == "http://a.io/1000"
    (click,) = events(engine, "click")
    with db.read_session(engine) as session:
        link = session.get(Link, click.link_id)
    assert (click.outbox_message_id, click.candidate_id) == (first.id, first.candidate_id)
    assert (link.outbox_message_id, link.position, link.url) == (first.id, 1000, url)
    # Tokens already in mailboxes (the old scheme) still lead where they did below 1,000,
    # but the number that meant link 1,001 of the first message and link 1 of the next
    # (both exist) leads nowhere rather than to someone else's link.
    old = engagement.read_click_token(tokens.sign("click", first.id * 1000 + 7))
    assert old == (first.id, 7, True)
    assert engagement.link_target(engine, *old[:2], legacy=True)[1] == "http://a.io/7"
    both = engagement.read_click_token(tokens.sign("click", first.id * 1000 + 1000))
    assert both == (first.id + 1, 0, True)
    assert engagement.link_target(engine, first.id + 1, 0, legacy=True) is None
    # A token of the new scheme is no old one, and an altered one is nobody's.
    assert tokens.verify("click", token) is None
    assert engagement.read_click_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
