"""The public routes over real HTTP against `crm serve`: pixel, click, unsubscribe.

One server for the module, on its own database; the test process sends through a real
SMTP server and then follows the URLs in the messages it received, as a mail client would.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, func, select, update

from crm import auth, campaign_lifecycle, campaigns, clock, composer, db, outbox, pools, tokens
from crm.models import Candidate, Event, Link, OutboxMessage, User
from tests.conftest import PROJECT_ROOT, TEST_SECRET, fresh_database_url, python_command
from tests.e2e.conftest import free_port, wait_until_healthy
from tests.smtp_server import FaultySmtpServer
from tests.test_campaigns import add_people

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124 Safari/537.36"


@dataclass
class Live:
    url: str
    engine: Engine
    admin: User
    smtp: FaultySmtpServer

    def request(
        self, method: str, url: str, body: str | None = None, headers: dict | None = None
    ) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(
            method, path, body=body, headers={"User-Agent": BROWSER, **(headers or {})}
        )
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("tracking")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    saved = dict(os.environ)
    with fresh_database_url(folder) as database_url, FaultySmtpServer() as smtp:
        os.environ.update(
            CRM_DATABASE_URL=database_url,
            CRM_SECRET_KEY=TEST_SECRET,
            CRM_DATA_DIR=str(folder / "data"),
            CRM_PUBLIC_URL=url,
            CRM_SMTP_HOST=smtp.host,
            CRM_SMTP_PORT=str(smtp.port),
            CRM_SMTP_SECURITY="none",
            CRM_FROM="Acme Talent <talent@acme.example>",
            CRM_SEND_RATE="1000",
            CRM_WORKER="off",
        )
        engine = db.create_engine_for(database_url)
        db.upgrade(engine)
        admin = auth.create_user(
            engine, username="admin", role="admin", password="admin-pass-1", display_name="Ada"
        )
        log = folder / "serve.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                python_command(
                    "-m", "crm.cli", "serve", "--port", str(port), "--host", "127.0.0.1"
                ),
                env=dict(os.environ),
                cwd=PROJECT_ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_healthy(url, process, log)
                yield Live(url, engine, admin, smtp)
            finally:
                process.terminate()
                process.wait(timeout=15)
                engine.dispose()
                db.dispose_engines()
                os.environ.clear()
                os.environ.update(saved)


def send_to(
    live: Live, people: int, name: str, body: str = "See [our jobs](https://acme.example/jobs)."
) -> list[OutboxMessage]:
    """Launch a two-step campaign to new people and deliver its first step."""
    add_people(live.engine, people, location=name, email=None)  # placeholder rows replaced below
    with db.write_session(live.engine) as session:
        rows = session.scalars(select(Candidate).where(Candidate.location == name)).all()
        for n, person in enumerate(rows):
            person.email = f"{name.lower()}{n}@example.com"
            person.email_normalized = person.email
    pool_id = pools.save_pool(
        live.engine,
        actor=live.admin,
        name=name,
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": name},
    )
    campaign_id = campaigns.save_campaign(
        live.engine,
        actor=live.admin,
        draft=campaigns.CampaignDraft(
            name=name,
            audience_pool_id=pool_id,
            steps=[
                campaigns.StepDraft(subject="Hi {{first_name}}", body=body),
                campaigns.StepDraft(subject="Again", body="Still here.", delay_days=3),
            ],
        ),
    )
    campaign_lifecycle.launch(live.engine, actor=live.admin, campaign_id=campaign_id)
    assert outbox.deliver_due(live.engine).sent == people
    with db.write_session(live.engine) as session:
        # As if delivered an hour ago, so opens and clicks count as human.
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == "sent")
            .values(sent_at=clock.now() - dt.timedelta(hours=1))
        )
        return list(
            session.scalars(
                select(OutboxMessage)
                .where(OutboxMessage.campaign_id == campaign_id, OutboxMessage.status == "sent")
                .order_by(OutboxMessage.id)
            )
        )


def received_for(live: Live, address: str):
    (message,) = [m.message for m in live.smtp.received if address in m.rcpt_tos]
    return message


def kinds(live: Live, outbox_id: int, *, expect: int = 0) -> list[tuple[str, bool]]:
    """The message's events, once at least `expect` have been written (opens and clicks
    are queued by the server and written in batches every 0.1 s)."""
    deadline = time.monotonic() + 10
    while True:
        found = _kinds(live, outbox_id)
        if len(found) >= expect or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _kinds(live: Live, outbox_id: int) -> list[tuple[str, bool]]:
    with db.read_session(live.engine) as session:
        return [
            (kind, machine)
            for kind, machine in session.execute(
                select(Event.kind, Event.is_machine)
                .where(Event.outbox_message_id == outbox_id)
                .order_by(Event.id)
            )
        ]


def test_the_links_in_a_sent_message_work(live: Live) -> None:
    (row,) = send_to(live, 1, "Alpha")
    message = received_for(live, row.to_address)
    html = message.get_body(("html",)).get_content()
    pixel = html.split('<img src="')[1].split('"')[0]
    click = html.split('<a href="')[1].split('"')[0]
    assert pixel.startswith(live.url + "/o/") and click.startswith(live.url + "/c/")

    opened = live.request("GET", pixel)
    assert opened.status == 200
    assert opened.getheader("Content-Type") == "image/gif"
    assert "no-store" in opened.getheader("Cache-Control")
    assert opened.body.startswith(b"GIF89a")  # type: ignore[attr-defined]

    followed = live.request("GET", click)
    assert followed.status == 302
    assert followed.getheader("Location") == "https://acme.example/jobs"
    assert kinds(live, row.id, expect=2) == [("open", False), ("click", False)]


def test_forged_and_altered_tokens_change_nothing(live: Live) -> None:
    (row,) = send_to(live, 1, "Beta")
    click = tokens.sign("click", row.id * 1000)
    altered = click[:-1] + ("A" if click[-1] != "A" else "B")
    assert live.request("GET", f"{live.url}/c/{altered}").status == 404
    assert live.request("GET", f"{live.url}/c/{row.id * 1000}.forged").status == 404
    # A real signature for a link that does not exist is no open redirect either.
    assert (
        live.request("GET", f"{live.url}/c/{tokens.sign('click', row.id * 1000 + 5)}").status == 404
    )
    # The pixel always answers the image, and records nothing for a bad token.
    pixel = live.request("GET", f"{live.url}/o/{row.id}.notsigned.gif")
    assert pixel.status == 200 and pixel.getheader("Content-Type") == "image/gif"
    forged_unsubscribe = live.request(
        "POST",
        f"{live.url}/unsubscribe?t={row.id}.x",
        body="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert forged_unsubscribe.status == 404
    time.sleep(0.5)  # longer than a batch: anything recorded would be written by now
    assert kinds(live, row.id) == []
    with db.read_session(live.engine) as session:
        assert session.get(Candidate, row.candidate_id).unsubscribed_at is None


def test_unsubscribe_page_asks_first_then_post_unsubscribes(live: Live) -> None:
    (row,) = send_to(live, 1, "Gamma")
    message = received_for(live, row.to_address)
    link = message["List-Unsubscribe"].strip()[1:-1]
    page = live.request("GET", link)
    assert page.status == 200
    assert b'<form method="post"' in page.body  # type: ignore[attr-defined]
    with db.read_session(live.engine) as session:
        assert session.get(Candidate, row.candidate_id).unsubscribed_at is None
    done = live.request(
        "POST", link, body="", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert done.status == 200 and b"You are unsubscribed" in done.body  # type: ignore[attr-defined]
    with db.read_session(live.engine) as session:
        assert session.get(Candidate, row.candidate_id).unsubscribed_at is not None
        waiting = session.scalar(
            select(OutboxMessage.status).where(
                OutboxMessage.enrollment_id == row.enrollment_id, OutboxMessage.id != row.id
            )
        )
    assert waiting == "cancelled"


def test_one_click_unsubscribe_and_replay(live: Live) -> None:
    (row,) = send_to(live, 1, "Delta")
    link = received_for(live, row.to_address)["List-Unsubscribe"].strip()[1:-1]
    assert received_for(live, row.to_address)["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    for _ in range(2):  # mail providers may retry; the second changes nothing
        response = live.request(
            "POST",
            link,
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status == 200
        assert response.getheader("Set-Cookie") is None
    assert kinds(live, row.id) == [("unsubscribe", False)]


def test_the_unsubscribe_link_of_a_test_email_works_and_unsubscribes_no_one(live: Live) -> None:
    send_to(live, 1, "Test email")  # someone who could be unsubscribed
    with db.read_session(live.engine) as session:
        before = session.scalar(select(func.count()).where(Candidate.unsubscribed_at.is_not(None)))
    link = f"{live.url}/unsubscribe?t={composer.PREVIEW_TOKEN}"  # as a preview or test has it
    page = live.request("GET", link)
    assert page.status == 200 and b"came from a test email" in page.body  # type: ignore[attr-defined]
    for body in ("", "List-Unsubscribe=One-Click"):
        done = live.request(
            "POST", link, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert done.status == 200 and b"nobody was unsubscribed" in done.body  # type: ignore[attr-defined]
    with db.read_session(live.engine) as session:
        after = session.scalar(select(func.count()).where(Candidate.unsubscribed_at.is_not(None)))
    assert after == before


def test_pixel_for_an_erased_person_still_answers(live: Live) -> None:
    (row,) = send_to(live, 1, "Epsilon")
    with db.write_session(live.engine) as session:
        session.delete(session.get(Candidate, row.candidate_id))
    pixel = live.request("GET", composer.open_url(row.id))
    assert pixel.status == 200
    # Recorded without a person (and the server carries on).
    assert kinds(live, row.id, expect=1) == [("open", False)]


@pytest.mark.parametrize("path", ["/", "/unsubscribe?t=nothing", "/_stcore/health", "/api/version"])
def test_no_other_site_may_frame_the_app(live: Live, path: str) -> None:
    """Clickjacking: the pages, the public routes and Streamlit's own say so in headers."""
    response = live.request("GET", live.url + path)
    assert response.getheader("X-Frame-Options") == "SAMEORIGIN"
    assert response.getheader("Content-Security-Policy") == "frame-ancestors 'self'"
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_link_1001_of_a_message_goes_to_its_own_url_for_its_own_reader(live: Live) -> None:
    """Click tokens used to name outbox_id * 1000 + position: link 1,001 of one message
    redirected to the next message's first link and recorded the click for its reader."""
    body = " ".join(f"<http://a.io/{n}>" for n in range(1005))
    first, second = send_to(live, 2, "Linkful", body)
    html = received_for(live, first.to_address).get_body(("html",)).get_content()
    links = [part.split('"')[0] for part in html.split('<a href="')[1:]]
    clicks = [link for link in links if link.startswith(live.url + "/c/")]
    assert len(clicks) == 1005
    followed = live.request("GET", clicks[1000])
    assert followed.status == 302
    assert followed.getheader("Location") == "http://a.io/1000"
    assert kinds(live, first.id, expect=1) == [("click", False)]
    with db.read_session(live.engine) as session:
        click = session.scalars(select(Event).where(Event.outbox_message_id == first.id)).one()
        link = session.get(Link, click.link_id)
    assert click.candidate_id == first.candidate_id
    assert (link.outbox_message_id, link.position) == (first.id, 1000)
    assert kinds(live, second.id) == []
    # A link sent with the old scheme still works where its number means one link only;
    # the number that meant both link 1,001 here and the next message's first link (the
    # bug) leads nowhere and records nothing.
    old = live.request("GET", f"{live.url}/c/{tokens.sign('click', first.id * 1000 + 3)}")
    assert old.status == 302 and old.getheader("Location") == "http://a.io/3"
    both = live.request("GET", f"{live.url}/c/{tokens.sign('click', first.id * 1000 + 1000)}")
    assert both.status == 404
    assert kinds(live, first.id, expect=2) == [("click", False), ("click", False)]
    assert kinds(live, second.id) == []


def test_the_pixel_tells_gmail_apple_privacy_and_people_apart(live: Live) -> None:
    """Over real HTTP, the route hands the user agent it got to the classifier: Gmail's
    proxy is the person opening, Apple Mail Privacy Protection's prefetch is not."""
    gmail, apple, person = send_to(live, 3, "Proxies")
    agents = {
        gmail.id: "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
        "(via ggpht.com GoogleImageProxy)",
        apple.id: "Mozilla/5.0",
        person.id: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) "
        "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    }
    for outbox_id, agent in agents.items():
        pixel = live.request("GET", composer.open_url(outbox_id), headers={"User-Agent": agent})
        assert pixel.status == 200
    for row in (gmail, apple, person):
        kinds(live, row.id, expect=1)
    with db.read_session(live.engine) as session:
        recorded = {
            outbox_id: (machine, seen_via, agent)
            for outbox_id, machine, seen_via, agent in session.execute(
                select(
                    Event.outbox_message_id, Event.is_machine, Event.seen_via, Event.user_agent
                ).where(Event.outbox_message_id.in_(agents), Event.kind == "open")
            )
        }
        engaged = {
            row.id: session.get(Candidate, row.candidate_id).last_engaged_at is not None
            for row in (gmail, apple, person)
        }
    assert recorded == {
        gmail.id: (False, "gmail_proxy", agents[gmail.id]),
        apple.id: (True, "apple_privacy", agents[apple.id]),
        person.id: (False, "person", agents[person.id]),
    }
    assert engaged == {gmail.id: True, apple.id: False, person.id: True}
