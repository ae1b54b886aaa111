"""The month grid in Chromium: titles stay text, a chip opens its item, "+N more" lists a day."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from crm import auth, clock, db
from crm.content_calendar import drafts, items
from tests.e2e.conftest import Server, crm_server, settle, sign_in

pytestmark = pytest.mark.e2e

PAYLOAD = '<img src=x onerror="document.title=1">Hiring & update'
RECRUITER = ("rita", "rita-the-recruiter-1")
ITEMS_ON_THE_DAY = 7  # five chips, then "+2 more"


@pytest.fixture(scope="module")
def calendar_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The real server on a database holding only what these tests put in it."""

    def add_recruiter(server: Server) -> None:
        username, password = RECRUITER
        server.crm_ok("user", "add", "ada", "--role", "admin", stdin="ada-the-admin-pass-1\n")
        server.crm_ok("user", "add", username, "--role", "recruiter", stdin=f"{password}\n")

    with crm_server(tmp_path_factory.mktemp("e2e-calendar"), add_recruiter) as running:
        yield running


def first_of_next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def show_month(page: object, month: dt.date) -> None:
    """Step the grid with Previous / Next until it shows month (wherever it opened)."""
    heading = page.locator(".crm-bar h2")
    wanted = f"{month:%B %Y}"
    for _ in range(3):
        expect(heading).to_have_text(re.compile(r"^\w+ \d{4}$"), timeout=60_000)
        shown = dt.datetime.strptime(heading.inner_text(), "%B %Y").date()
        if shown == month:
            break
        page.locator(".crm-bar button", has_text="Next" if shown < month else "Previous").click()
        expect(heading).not_to_have_text(f"{shown:%B %Y}", timeout=60_000)
        settle(page)
    expect(heading).to_have_text(wanted)


def test_month_grid_chips_are_inert_text_and_open_their_item(
    calendar_server: Server, browser
) -> None:
    # Next month's 14th, which nothing else in this database touches: seven items on it.
    month = first_of_next_month(clock.today())
    day = month.replace(day=14)
    engine = db.create_engine_for(calendar_server.env["CRM_DATABASE_URL"])
    try:
        recruiter = auth.find_user(engine, RECRUITER[0])
        for hour in range(8, 8 + ITEMS_ON_THE_DAY):
            items.save_item(
                engine,
                actor=recruiter,
                draft=drafts.ItemDraft(
                    title=PAYLOAD if hour == 8 else f"Grid post {hour}",
                    channel="linkedin_post",
                    starts_at=dt.datetime.combine(day, dt.time(hour), dt.UTC),
                ),
            )
    finally:
        engine.dispose()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, calendar_server.url, *RECRUITER)
    page.get_by_role("link", name="Content calendar", exact=True).click()
    expect(page.locator("h1").first).to_contain_text("Content calendar", timeout=60_000)
    settle(page)
    show_month(page, month)
    cell = page.locator(f".crm-grid .day[data-date='{day.isoformat()}']")
    chip = cell.locator("button.chip").first
    expect(chip).to_have_text(f"08:00 {PAYLOAD}")  # the markup shows as text
    assert page.locator(".crm-grid img").count() == 0
    assert page.title() != "1"
    expect(cell.locator("button.chip")).to_have_count(5)
    expect(page.locator(".crm-legend")).to_contain_text(
        f"{ITEMS_ON_THE_DAY} items shown. Colours: Email newsletter"
    )
    # A chip opens its item's dialog.
    chip.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=60_000)
    expect(dialog.get_by_label("Title")).to_have_value(PAYLOAD)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    settle(page)
    # Today goes back to the current month, and the month buttons step through months.
    heading = page.locator(".crm-bar h2")
    page.locator(".crm-bar button", has_text="Today").click()
    expect(heading).not_to_have_text(f"{month:%B %Y}", timeout=60_000)
    settle(page)
    show_month(page, month)
    # "+2 more" lists the whole day under the grid.
    cell.get_by_role("button", name=f"+{ITEMS_ON_THE_DAY - 5} more", exact=True).click()
    settle(page)
    listed = page.get_by_role("radiogroup", name="Items that day").get_by_role("radio")
    expect(listed).to_have_count(ITEMS_ON_THE_DAY, timeout=60_000)
    expect(listed.last).to_have_accessible_name("14:00 Grid post 14")
    page.close()
