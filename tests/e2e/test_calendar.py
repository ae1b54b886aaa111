"""The month grid in Chromium: titles stay text, a chip opens its item, "+N more" lists a day."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from playwright.sync_api import expect

from crm import auth, calendar, db
from crm.demo import DEMO_USERS
from tests.e2e.conftest import Server, settle, sign_in

pytestmark = pytest.mark.e2e

PAYLOAD = '<img src=x onerror="document.title=1">Hiring & update'


def test_month_grid_chips_are_inert_text_and_open_their_item(demo_server: Server, browser) -> None:
    engine = db.create_engine_for(demo_server.env["CRM_DATABASE_URL"])
    try:
        recruiter = auth.find_user(engine, DEMO_USERS["recruiter"][0])
        # A day of this month that the demo left empty, with seven items on it.
        zone = zoneinfo.ZoneInfo("UTC")
        today = dt.date.today()
        day = today.replace(day=14)
        for hour in range(8, 15):
            calendar.save_item(
                engine,
                actor=recruiter,
                draft=calendar.ItemDraft(
                    title=PAYLOAD if hour == 8 else f"Grid post {hour}",
                    channel="linkedin_post",
                    starts_at=dt.datetime.combine(day, dt.time(hour), zone),
                ),
            )
    finally:
        engine.dispose()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, demo_server.url, *DEMO_USERS["recruiter"])
    page.get_by_role("link", name="Content calendar", exact=True).click()
    expect(page.locator("h1").first).to_contain_text("Content calendar", timeout=60_000)
    settle(page)
    cell = page.locator(f".crm-grid .day[data-date='{day.isoformat()}']")
    chip = cell.locator("button.chip").first
    expect(chip).to_have_text(f"08:00 {PAYLOAD}")  # the markup shows as text
    assert page.locator(".crm-grid img").count() == 0
    assert page.title() != "1"
    expect(cell.locator("button.chip")).to_have_count(5)
    expect(page.locator(".crm-legend")).to_contain_text("items shown. Colours: Email newsletter")
    # A chip opens its item's dialog.
    chip.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=60_000)
    expect(dialog.get_by_label("Title")).to_have_value(PAYLOAD)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    settle(page)
    # The month's buttons above the grid move through months.
    heading = page.locator(".crm-bar h2")
    this_month = f"{today:%B %Y}"
    expect(heading).to_have_text(this_month)
    page.locator(".crm-bar button", has_text="Next").click()
    following = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    expect(heading).to_have_text(f"{following:%B %Y}", timeout=60_000)
    settle(page)
    page.locator(".crm-bar button", has_text="Today").click()
    expect(heading).to_have_text(this_month, timeout=60_000)
    settle(page)
    # "+2 more" lists the whole day under the grid.
    cell.get_by_role("button", name="+2 more").click()
    settle(page)
    expect(page.get_by_text("Grid post 14")).to_be_visible(timeout=60_000)
    page.close()
