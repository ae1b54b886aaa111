"""Campaign journey in Chromium: write, preview, launch; `crm serve` delivers it itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from crm.demo import DEMO_USERS
from tests.conftest import PROJECT_ROOT, TEST_SECRET, fresh_database_url
from tests.e2e.conftest import Server, free_port, settle, sign_in, wait_until_healthy
from tests.smtp_server import FaultySmtpServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def mail_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, FaultySmtpServer]]:
    """The real server on demo data, sending to a real SMTP server (CRM_WORKER=on)."""
    folder = tmp_path_factory.mktemp("e2e-mail")
    with fresh_database_url(folder) as database_url, FaultySmtpServer() as smtp:
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CRM_") or k.startswith("CRM_TEST_")
        }
        env.update(
            CRM_DATABASE_URL=database_url,
            CRM_SECRET_KEY=TEST_SECRET,
            CRM_DATA_DIR=str(folder / "data"),
            CRM_SMTP_HOST=smtp.host,
            CRM_SMTP_PORT=str(smtp.port),
            CRM_SMTP_SECURITY="none",
            CRM_FROM="Acme Talent <talent@acme.example>",
            CRM_SEND_RATE="200",
            CRM_PUBLIC_URL=f"http://127.0.0.1:{port}",
            CRM_WORKER="on",
        )
        server = Server(url=f"http://127.0.0.1:{port}", env=env, log=folder / "serve.log")
        for args in (["init"], ["demo", "--candidates", "300"]):
            result = server.crm(*args)
            assert result.returncode == 0, result.stderr
        with server.log.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "crm.cli", "serve", "--port", str(port),
                 "--host", "127.0.0.1"],
                env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                wait_until_healthy(server.url, process, server.log)
                yield server, smtp
            finally:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


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
    expect(page.get_by_text("Saved 'Browser journey'.")).to_be_visible(timeout=30_000)
    # The preview's HTML is in a frame of its own, with the person's name merged in.
    frame = page.frame_locator("iframe[title='Preview of the email\\'s HTML part']")
    expect(frame.locator("body")).to_contain_text("Hello ", timeout=30_000)
    page.get_by_role("button", name="Launch…").click()
    settle(page)
    page.get_by_role("button", name="Launch", exact=True).click()
    settle(page)
    expect(page.get_by_text("people enrolled")).to_be_visible(timeout=30_000)
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
