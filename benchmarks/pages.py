"""Time page switches in Chromium: click a sidebar link, wait until Streamlit has settled.

The clock runs inside the page: from the link's click() to the first animation frame at
which the script state is notRunning and the main area's h1 is the new page's heading.
Reading the clock in the browser keeps Playwright's round trips out of the figures.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from benchmarks.processes import BenchmarkError

SETTLED = "[data-testid=stApp][data-test-script-state=notRunning]"
EXCEPTION = "[data-testid=stException]"
ERROR_ALERT = "[data-testid=stAlertContentError]"
NAV = "[data-testid=stSidebarNav]"
STEP_TIMEOUT_MS = 60_000
THINK_TIME_MS = 250  # idle between clicks, as a person would; never part of a measure
VIEWPORT = {"width": 1400, "height": 900}

# (sidebar link text, how the page's h1 starts): the app as the demo admin sees it.
APP_PAGES: list[tuple[str, str]] = [
    ("Home", "Good "),  # "Good morning, <name>"
    ("Candidates", "Candidates"),
    ("Talent pools", "Talent pools"),
    ("Campaigns", "Campaigns"),
    ("Content calendar", "Content calendar"),
    ("Jobs", "Jobs"),
    ("Goals & ROI", "Goals & ROI"),
    ("Import / export", "Import / export"),
    ("Privacy", "Privacy"),
    ("Audit log", "Audit log"),
    ("Settings", "Settings"),
]
HELLO_PAGES: list[tuple[str, str]] = [("Hello", "Hello"), ("Other", "Other")]
# What a page draws in the browser after its script run, as a JS expression that must hold
# before the clock stops: the calendar's month grid is built inside a component's shadow
# root once its script has finished.
READY: dict[str, str] = {
    "Content calendar": (
        "[...document.querySelectorAll('[data-testid=stBidiComponentIsolated], "
        "[data-testid=stBidiComponentIsolated] *')]"
        ".some(host => host.shadowRoot && host.shadowRoot.querySelectorAll('.crm-grid .day')"
        ".length >= 28)"
    ),
}

CLICK_AND_SETTLE = """
async ({index, prefix, timeoutMs, ready}) => {
  // `ready`: a JS expression that must also hold, for a page that draws part of itself
  // after the script run (a component built in the browser, say).
  const isReady = ready ? new Function(`return (${ready});`) : () => true;
  const heading = () => document.querySelector('[data-testid=stMain] h1');
  const before = heading();
  if (before && before.innerText.trim().startsWith(prefix)) {
    throw new Error(`already on the page headed ${prefix}`);
  }
  const link = document.querySelectorAll('[data-testid=stSidebarNav] a')[index];
  if (!link) throw new Error(`no sidebar link number ${index}`);
  const started = performance.now();
  link.click();
  return await new Promise((resolve, reject) => {
    const check = () => {
      const now = performance.now();
      const app = document.querySelector('[data-testid=stApp]');
      const h1 = heading();
      const settled = app && app.getAttribute('data-test-script-state') === 'notRunning';
      if (settled && h1 && h1.checkVisibility() && h1.innerText.trim().startsWith(prefix)
          && isReady()) {
        resolve(now - started);
      } else if (settled && document.querySelector('[data-testid=stException]')) {
        resolve(-1);  // the page failed: the caller reports the exception
      } else if (now - started > timeoutMs) {
        reject(new Error(`no settled page headed ${prefix} after ${timeoutMs} ms`));
      } else {
        requestAnimationFrame(check);
      }
    };
    requestAnimationFrame(check);
  });
}
"""


@dataclass
class PageTiming:
    """The measured samples of one page, in milliseconds."""

    page: str
    samples_ms: list[float] = field(default_factory=list)
    error_alerts: int = 0

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p90_ms(self) -> float:
        if len(self.samples_ms) < 2:
            return self.samples_ms[0]
        return statistics.quantiles(self.samples_ms, n=10, method="inclusive")[-1]


class PageBroke(BenchmarkError):
    """A page showed an exception, or never settled."""


def settle(page: Any) -> None:
    """Wait for Streamlit to finish what was just done (setup steps only, never timed)."""
    page.wait_for_timeout(150)  # let a rerun begin before waiting for it to end
    page.wait_for_selector(SETTLED, timeout=STEP_TIMEOUT_MS)


def open_app(page: Any, url: str) -> None:
    """Load a Streamlit app and wait for its sidebar navigation."""
    page.goto(url)
    page.wait_for_selector(NAV, timeout=STEP_TIMEOUT_MS)
    settle(page)


def sign_in(page: Any, url: str, username: str, password: str) -> None:
    """Sign in through the real login form, as a person would."""
    page.goto(url)
    settle(page)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(NAV, timeout=STEP_TIMEOUT_MS)
    settle(page)


class Clicker:
    """Clicks one app's sidebar links in a fixed cycle, timing each page switch.

    The browser must be on the first target's page; the cycle starts at the second, so
    every click switches pages. Between clicks the browser idles THINK_TIME_MS so work
    the server does after a run (Streamlit's post-run garbage collection, say) does not
    spill into the next measure.
    """

    def __init__(
        self, page: Any, targets: list[tuple[str, str]], ready: dict[str, str] | None = None
    ) -> None:
        self.page = page
        # A link's text is its material icon's name, then its title: keep the last line.
        texts = page.locator(f"{NAV} a").all_inner_texts()
        self.links = [text.strip().splitlines()[-1] for text in texts]
        missing = [title for title, _ in targets if title not in self.links]
        if missing:
            raise PageBroke(f"the sidebar lacks {missing}; it has {self.links}")
        self.targets = targets
        self.ready = ready or {}  # title -> a JS expression that must hold once settled
        self.order = targets[1:] + targets[:1]
        self.position = 0
        self.reset()

    def reset(self) -> None:
        """Forget the samples so far (the cycle goes on where it was)."""
        self.timings = {title: PageTiming(title) for title, _ in self.targets}

    def results(self) -> list[PageTiming]:
        """The samples per page, in the order of the targets."""
        return [self.timings[title] for title, _ in self.targets]

    def click(self, clicks: int, *, record: bool) -> None:
        """Click the next `clicks` pages of the cycle; keep their times if record."""
        self.page.bring_to_front()
        for _ in range(clicks):
            title, prefix = self.order[self.position % len(self.order)]
            self.position += 1
            elapsed = self._click_and_settle(title, prefix)
            timing = self.timings[title]
            timing.error_alerts = max(timing.error_alerts, self.page.locator(ERROR_ALERT).count())
            if record:
                timing.samples_ms.append(elapsed)
            self.page.wait_for_timeout(THINK_TIME_MS)

    def _click_and_settle(self, title: str, prefix: str) -> float:
        arguments = {
            "index": self.links.index(title),
            "prefix": prefix,
            "ready": self.ready.get(title),
        }
        try:
            elapsed = self.page.evaluate(
                CLICK_AND_SETTLE, {**arguments, "timeoutMs": STEP_TIMEOUT_MS}
            )
        except Exception as error:  # Playwright's Error carries the page's message
            raise PageBroke(f"{title}: {error}") from error
        exceptions = self.page.locator(EXCEPTION)
        if exceptions.count():
            raise PageBroke(f"{title} shows an exception: {exceptions.first.inner_text()[:500]}")
        return float(elapsed)
