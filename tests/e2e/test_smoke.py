"""Smoke journey: the demo recruiter signs in through the real form and opens every page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from crm.demo import DEMO_USERS
from tests.e2e.conftest import Server, settle, sign_in

pytestmark = pytest.mark.e2e

MENU = [
    "Home",
    "Candidates",
    "Talent pools",
    "Campaigns",
    "Content calendar",
    "Jobs",
    "Goals & ROI",
    "Import / export",
    "Privacy",
]


def test_recruiter_opens_every_page_without_an_error(demo_server: Server, browser) -> None:
    username, password = DEMO_USERS["recruiter"]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in(page, demo_server.url, username, password)
    nav = page.locator("[data-testid=stSidebarNav]")
    # Each link reads "<icon name>\n\n<title>"; the title is the last line.
    links = [text.strip().splitlines()[-1] for text in nav.locator("a").all_inner_texts()]
    assert links == MENU  # no Settings for a recruiter
    for title in MENU:
        nav.get_by_role("link", name=title, exact=True).click()
        # Wait for the new page's heading, not a fixed pause: a loaded machine can take
        # longer than any pause to start the rerun.
        expect(page.locator("h1").first).to_contain_text(
            title if title != "Home" else "Good", timeout=60_000
        )
        settle(page)
        assert page.locator("[data-testid=stException]").count() == 0, title
        assert page.locator("[data-testid=stAlertContentError]").count() == 0, title
        if title == "Candidates":
            # A table's toolbar offers no download: people leave only through the exporter.
            table = page.get_by_test_id("stDataFrame").first
            table.hover()
            expect(table.get_by_test_id("stElementToolbar")).to_be_visible()
            expect(page.get_by_role("button", name="Download as CSV")).to_have_count(0)
    page.close()


def test_wrong_password_and_no_page_without_login(demo_server: Server, browser) -> None:
    page = browser.new_page()
    page.goto(f"{demo_server.url}/candidates")
    settle(page)
    assert page.locator("[data-testid=stSidebarNav]").count() == 0
    page.get_by_label("Username").fill("recruiter")
    page.get_by_label("Password", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    settle(page)
    expect(page.get_by_text("The username or password is incorrect.", exact=True)).to_be_visible()
    assert page.locator("[data-testid=stSidebarNav]").count() == 0
    page.close()


def test_manager_lands_on_goals_and_admin_sees_settings(demo_server: Server, browser) -> None:
    for role, landing in (("manager", "Goals & ROI"), ("admin", "Good")):
        username, password = DEMO_USERS[role]
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, demo_server.url, username, password)
        expect(page.locator("h1").first).to_have_text(re.compile(f"^{re.escape(landing)}"))
        nav_text = page.locator("[data-testid=stSidebarNav]").inner_text()
        assert ("Settings" in nav_text) == (role == "admin")
        context.close()


def test_recruiter_builds_a_pool_in_the_browser(demo_server: Server, browser) -> None:
    username, password = DEMO_USERS["recruiter"]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, demo_server.url, username, password)
    page.locator("[data-testid=stSidebarNav]").get_by_role("link", name="Talent pools").click()
    expect(page.locator("h1").first).to_contain_text("Talent pools", timeout=60_000)
    settle(page)
    page.locator("[data-testid=stButtonGroup]").get_by_text("Build a pool", exact=True).click()
    settle(page)
    matching = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text("People matching now", exact=True)
    )
    count = matching.get_by_test_id("stMetricValue")
    expect(count).to_have_text(re.compile(r"^[\d,]+$"), timeout=60_000)
    everyone = count.inner_text()
    # Skills has any of: type a skill into the multiselect and pick it.
    values = page.locator("[data-testid=stMultiSelect]").first
    values.click()
    page.keyboard.type("python")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    settle(page)
    expect(count).not_to_have_text(everyone, timeout=60_000)  # the count follows the filter
    narrowed = count.inner_text()
    assert int(narrowed.replace(",", "")) < int(everyone.replace(",", ""))
    page.get_by_label("Pool name").fill("Browser Pythonistas")
    page.get_by_role("button", name="Save pool").click()
    settle(page)
    saved = page.get_by_text("Saved the pool Browser Pythonistas.", exact=True)
    expect(saved).to_be_visible(timeout=60_000)
    assert page.locator("[data-testid=stException]").count() == 0
    page.close()


def test_the_sign_in_cookie_is_the_servers_and_sign_out_takes_it_away(
    demo_server: Server, browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo_server.url}/jobs")  # a bookmarked page: sign in, then that page
    settle(page)
    page.get_by_label("Username").fill(DEMO_USERS["manager"][0])
    page.get_by_label("Password", exact=True).fill(DEMO_USERS["manager"][1])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("h1").first).to_have_text(re.compile("^Jobs"), timeout=60_000)
    cookie = next(c for c in context.cookies() if c["name"] == "crm_auth")
    assert cookie["httpOnly"] is True  # no script in the page can read it
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http here; Secure whenever CRM_PUBLIC_URL is https
    assert page.evaluate("document.cookie").find("crm_auth") == -1
    page.reload()
    expect(page.locator("[data-testid=stSidebarNav]")).to_be_visible(timeout=60_000)
    expect(page.locator("h1").first).to_have_text(re.compile("^Jobs"), timeout=60_000)
    settle(page)
    page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # The browser goes by /session/end, which clears the cookie, and back to sign-in.
    expect(page).to_have_url(re.compile(r"/\?signed_out=1$"), timeout=60_000)
    expect(page.get_by_text("You have signed out.", exact=True)).to_be_visible(timeout=60_000)
    assert not any(c["name"] == "crm_auth" for c in context.cookies())
    page.reload()
    settle(page)
    expect(page.get_by_label("Username")).to_be_visible()
    assert page.locator("[data-testid=stSidebarNav]").count() == 0
    context.close()
