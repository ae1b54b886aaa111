"""Campaign journey in Chromium: write, preview, launch; `crm serve` delivers it itself."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from crm.demo import DEMO_USERS
from tests.e2e.conftest import Server, crm_server, settle, sign_in
from tests.smtp_server import FaultySmtpServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mail_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, FaultySmtpServer]]:
    """The real server on demo data, sending to a real SMTP server (CRM_WORKER=on)."""
    with (
        FaultySmtpServer() as smtp,
        crm_server(
            tmp_path_factory.mktemp("e2e-mail"),
            lambda server: server.crm_ok("demo", "--candidates", "300"),
            CRM_SMTP_HOST=smtp.host,
            CRM_SMTP_PORT=str(smtp.port),
            CRM_SMTP_SECURITY="none",
            CRM_FROM="Acme Talent <talent@acme.example>",
            CRM_SEND_RATE="200",
            CRM_WORKER="on",
        ) as server,
    ):
        yield server, smtp


def test_write_preview_launch_and_the_server_sends(mail_server, browser) -> None:
    server, smtp = mail_server
    username, password = DEMO_USERS["recruiter"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, server.url, username, password)
    page.locator("[data-testid=stSidebarNav]").get_by_role("link", name="Campaigns").click()
    expect(page.locator("h1").first).to_contain_text("Campaigns", timeout=60_000)
    settle(page)
    page.get_by_role("button", name="New campaign").click()
    settle(page)
    page.get_by_label("Campaign name").fill("Browser journey")
    settle(page)
    page.get_by_label("Subject").first.fill("Hi {{first_name|there}}")
    settle(page)
    page.locator("textarea").first.fill(
        "Hello {{first_name|there}}, see [our jobs](https://acme.example/jobs)."
    )
    settle(page)
    page.get_by_role("button", name="Save draft").click()
    settle(page)
    expect(page.get_by_text("Saved 'Browser journey'.", exact=True)).to_be_visible(timeout=30_000)
    # The preview's HTML is in a frame of its own, with the person's name merged in.
    frame = page.frame_locator("iframe[title='Preview of the email\\'s HTML part']")
    expect(frame.locator("body")).to_contain_text("Hello ", timeout=30_000)
    page.get_by_role("button", name="Launch…").click()
    settle(page)
    page.get_by_role("button", name="Launch", exact=True).click()
    settle(page)
    launched = page.get_by_text(
        re.compile(r"^Launched: [\d,]+ people enrolled, [\d,]+ messages queued\.$")
    )
    expect(launched).to_be_visible(timeout=30_000)
    # The delivery loop inside `crm serve` sends it without anyone running `crm send`.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
        m.message["Subject"].startswith("Hi ") for m in smtp.received
    ):
        time.sleep(0.5)
    sent = [m for m in smtp.received if m.message["Subject"].startswith("Hi ")]
    assert sent, (server.log.read_text())[-2000:]
    assert sent[0].message["List-Unsubscribe"].strip().startswith(f"<{server.url}/unsubscribe?t=")
    assert page.locator("[data-testid=stException]").count() == 0
    page.close()
