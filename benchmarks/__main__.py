"""`python -m benchmarks`: demo load time, then every page against a hello-world floor.

Exit 0 with a report even when a target is missed; exit 1 when something breaks (a
server that will not start, a failing `crm` command, an exception shown on a page).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from benchmarks import demo_load, pages, processes, report
from benchmarks.demo_load import DemoDatabase

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
APPROACH = (
    "sidebar click. Signed in once as the demo admin, the clock runs in the browser from "
    "clicking a page's sidebar link to the first frame where the script state is notRunning "
    "and the page's h1 shows; 250 ms idle between clicks. hello-world is a two-page "
    "st.navigation app measured the same way, interleaved round by round with the app "
    "pages so both see the same machine load; each ratio is against the hello-world median "
    "measured alongside it. The first round is a warm-up. Not page.goto: a fresh load "
    "signs in again from the cookie but the login gate then lands on Home, so a deep link "
    "never reaches its page, and a cold load would time the login gate, not the page."
)


def say(message: str) -> None:
    """Progress goes to standard error; the report goes to standard output."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: sample counts, the large size, diagnostics."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="timed clicks per page (7)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (1)")
    parser.add_argument(
        "--candidates", type=int, default=100_000, help="size of the large demo (100000)"
    )
    parser.add_argument(
        "--no-post-script-gc",
        action="store_true",
        help="diagnostic: run both servers with Streamlit's runner.postScriptGC off",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases and logs")
    return parser.parse_args(argv)


def launch_browser(playwright: Any) -> Any:
    """Debian's Chromium under Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        raise processes.BenchmarkError(f"{CHROMIUM} is missing; `make chromium` installs it.")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_context(browser: Any) -> Any:
    """A fresh browser context (its own cookies) at the benchmark's window size."""
    return browser.new_context(viewport=pages.VIEWPORT)


def measure_database(
    browser: Any,
    database: DemoDatabase,
    credentials: tuple[str, str],
    hello: pages.Clicker,
    *,
    runs: int,
    warmup: int,
) -> report.Measured:
    """Every page of `crm serve` on one database, signed in once as the demo admin.

    Each round clicks through the app's pages, then as many hello-world page switches,
    so both see the same machine load (other work on the machine comes and goes).
    """
    log = database.folder / "serve.log"
    with processes.serve_crm(database.env, log) as url:
        context = open_context(browser)
        try:
            page = context.new_page()
            pages.sign_in(page, url, *credentials)
            app = pages.Clicker(page, pages.APP_PAGES, ready=pages.READY)
            hello.reset()
            clicks = len(pages.APP_PAGES)
            for round_number in range(warmup + runs):
                record = round_number >= warmup
                try:
                    app.click(clicks, record=record)
                except pages.PageBroke as error:
                    raise processes.BenchmarkError(
                        f"{error}\n--- crm serve log ---\n{processes.tail(log)}"
                    ) from error
                hello.click(clicks, record=record)
            return report.Measured(database, app.results(), hello.results())
        finally:
            context.close()


def build_databases(args: argparse.Namespace, folder: Path) -> list[DemoDatabase]:
    """The default demo database and the large one, the large one timed against its target."""
    say(f"Building the {args.candidates:,}-candidate demo database (crm init + crm demo)...")
    large = demo_load.build(folder / "large", "large", args.candidates)
    say(f"  {large.load_s:.1f} s")
    say("Building the default demo database...")
    default = demo_load.build(folder / "default", "default")
    say(f"  {default.load_s:.1f} s ({default.candidates:,} candidates)")
    return [default, large]


def load_json(database: DemoDatabase) -> dict[str, Any]:
    judged = database.candidates >= report.TARGET_CANDIDATES
    return {
        "label": database.label,
        "candidates": database.candidates,
        "init_s": round(database.init_s, 2),
        "demo_s": round(database.demo_s, 2),
        "total_s": round(database.load_s, 2),
        "target_s": report.TARGET_LOAD_S if judged else None,
        "target_met": (database.load_s < report.TARGET_LOAD_S) if judged else None,
    }


def run(args: argparse.Namespace, folder: Path, results: dict[str, Any]) -> None:
    """Build the databases, measure everything, and fill results as it goes."""
    from playwright.sync_api import sync_playwright

    try:
        from crm.demo import DEMO_USERS
    except ImportError as error:
        raise processes.BenchmarkError(f"crm.demo is not importable: {error}") from error

    databases = build_databases(args, folder)
    results["demo_load"] = [load_json(database) for database in databases]

    measured: list[report.Measured] = []
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        results["environment"]["chromium"] = browser.version
        try:
            with processes.serve_hello(folder / "hello.log") as hello_url:
                context = open_context(browser)
                page = context.new_page()
                pages.open_app(page, hello_url)
                hello = pages.Clicker(page, pages.HELLO_PAGES)
                hello.click(len(pages.APP_PAGES), record=False)  # warm it up once
                for database in databases:
                    say(f"Measuring the pages at {database.candidates:,} candidates...")
                    measured.append(
                        measure_database(
                            browser,
                            database,
                            DEMO_USERS["admin"],
                            hello,
                            runs=args.runs,
                            warmup=args.warmup,
                        )
                    )
                    say(f"  hello-world median alongside: {measured[-1].floor.median_ms:.0f} ms")
                context.close()
        finally:
            browser.close()

    rows = report.page_rows(measured)
    results["hello_world"] = report.hello_json(measured)
    results["pages"] = rows
    results["environment"]["load_average_after"] = list(os.getloadavg())
    print(f"Measurement: {APPROACH}\n")
    print(report.table(measured))
    print()
    print(f"hello-world median over the whole run: {results['hello_world']['median_ms']:.0f} ms")
    print(report.load_lines(databases))
    misses = [row for row in rows if row["target_met"] is False]
    if misses:
        names = ", ".join(row["page"] for row in misses)
        print(f"\nPages over {report.TARGET_RATIO:.1f}x hello-world at scale: {names}")
    alerts = [row["page"] for row in rows if row["error_alerts"]]
    if alerts:
        print(f"Pages that showed an error message: {', '.join(sorted(set(alerts)))}")


def main(argv: list[str] | None = None) -> int:
    """Run everything; 0 when the report is complete, 1 when something broke."""
    args = parse_args(argv)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "approach": APPROACH,
        "runs": args.runs,
        "warmup_rounds": args.warmup,
        "targets": {
            "page_ratio_max": report.TARGET_RATIO,
            "judged_at_candidates": report.TARGET_CANDIDATES,
            "demo_load_max_s": report.TARGET_LOAD_S,
        },
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_before": list(os.getloadavg()),
        },
    }
    if args.no_post_script_gc:
        processes.SERVER_ENV["STREAMLIT_RUNNER_POST_SCRIPT_GC"] = "false"
    results["server_env"] = dict(processes.SERVER_ENV)
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    code = 0
    try:
        run(args, folder, results)
    except processes.BenchmarkError as error:
        say(f"\nBenchmark failed: {error}")
        results["error"] = str(error)
        code = 1
    except Exception as error:
        say(f"\nBenchmark failed unexpectedly:\n{traceback.format_exc()}")
        results["error"] = f"{type(error).__name__}: {error}"
        code = 1
    finally:
        if args.keep:
            say(f"Databases and logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    results["total_s"] = round(time.monotonic() - started, 1)
    path = report.write_json(results)
    say(f"\nTotal {results['total_s']:.0f} s; results in {path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
