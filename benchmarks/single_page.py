"""One app page against hello-world in Chromium, on a database a benchmark prepared.

Signed in as the demo admin, the browser clicks between `page` and Home round by round,
timing how long `page` takes to settle, interleaved with as many hello-world page
switches (the same machine load for both). Used by report_page, calendar_speed and
goals_page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import pages, processes
from benchmarks.__main__ import launch_browser, open_context
from crm.demo import DEMO_USERS


@dataclass(frozen=True)
class PageVersusHello:
    page: pages.PageTiming
    hello: pages.PageTiming

    @property
    def ratio(self) -> float:
        return self.page.median_ms / self.hello.median_ms

    def as_json(self, target: float) -> dict[str, Any]:
        return {
            "page_median_ms": round(self.page.median_ms, 1),
            "page_p90_ms": round(self.page.p90_ms, 1),
            "hello_world_median_ms": round(self.hello.median_ms, 1),
            "ratio": round(self.ratio, 2),
            "target_ratio": target,
            "target_met": self.ratio <= target,
            "samples_ms": [round(s, 1) for s in self.page.samples_ms],
        }


def measure(
    env: dict[str, str],
    folder: Path,
    *,
    title: str,
    heading: str,
    runs: int,
    warmup: int = 1,
    before: Callable[[Any], None] | None = None,
    ready: str | None = None,
) -> PageVersusHello:
    """Serve the app on `env`'s database and time `title` (its h1 starts with `heading`;
    `ready`, a JS expression, must also hold: for what a page draws after its run)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            with processes.serve_hello(folder / "hello.log") as hello_url:
                hello_page = open_context(browser).new_page()
                pages.open_app(hello_page, hello_url)
                hello = pages.Clicker(hello_page, pages.HELLO_PAGES)
                with processes.serve_crm(env, folder / "serve.log") as url:
                    page = open_context(browser).new_page()
                    pages.sign_in(page, url, *DEMO_USERS["admin"])
                    if before is not None:
                        before(page)  # must leave the browser on `title`
                    else:
                        page.locator(f"{pages.NAV} a").filter(has_text=title).first.click()
                        pages.settle(page)
                    app = pages.Clicker(
                        page,
                        [(title, heading), ("Home", "Good ")],
                        ready={title: ready} if ready else None,
                    )
                    for round_number in range(warmup + runs):
                        record = round_number >= warmup
                        app.click(2, record=record)
                        hello.click(2, record=record)
                    timing = app.results()[0]
                    floor = pages.PageTiming(
                        "hello-world", [s for t in hello.results() for s in t.samples_ms]
                    )
        finally:
            browser.close()
    return PageVersusHello(timing, floor)
