"""`python -m benchmarks.report_page`: a big campaign's report against a hello-world page.

A demo database gets one more campaign: 10,000 people, three steps (30,000 outbox rows,
the first step sent to everyone) and 50,000 events (opens human and machine, clicks,
replies, unsubscribes, bounces). Signed in as the demo admin, the browser selects that
campaign once on the Campaigns page (the selection stays for the session); then, round
by round, it clicks between Home and Campaigns, timing how long Campaigns takes to
settle with the report drawn, interleaved with the same number of hello-world page
switches. Target: the report settles within 2x of the hello-world median.

Exit 0 with a report even when the target is missed; exit 1 when something breaks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sqlite3
import sys
import tempfile
from pathlib import Path

from benchmarks import demo_load, pages, processes, single_page

PEOPLE = 10_000
EVENTS = 50_000
TARGET_RATIO = 2.0
CAMPAIGN = "Benchmark: 10,000 people"


def add_big_campaign(path: Path) -> None:
    """Insert the campaign straight into the demo database (sqlite3, one transaction)."""
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=3)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    connection = sqlite3.connect(path)
    try:
        with connection:
            people = [
                row[0]
                for row in connection.execute(
                    "SELECT id FROM candidates WHERE email_normalized IS NOT NULL "
                    "ORDER BY id LIMIT ?",
                    (PEOPLE,),
                )
            ]
            if len(people) < PEOPLE:
                raise processes.BenchmarkError(f"only {len(people)} candidates with an email")
            admin = connection.execute("SELECT id FROM users ORDER BY id LIMIT 1").fetchone()[0]
            cursor = connection.execute(
                "INSERT INTO campaigns (name, status, created_by_id, launched_at, created_at, "
                "updated_at, consecutive_failures) VALUES (?, 'active', ?, ?, ?, ?, 0)",
                (CAMPAIGN, admin, stamp, stamp, stamp),
            )
            campaign = cursor.lastrowid
            steps = []
            for position in (1, 2, 3):
                cursor = connection.execute(
                    "INSERT INTO campaign_steps (campaign_id, position, subject, body_markdown, "
                    "delay_days, stop_on_reply, stop_on_click, stop_on_pipeline) "
                    "VALUES (?, ?, ?, 'Hello {{first_name|there}}', ?, 1, 0, 1)",
                    (campaign, position, f"Step {position}", 4 * (position - 1)),
                )
                steps.append(cursor.lastrowid)
            connection.executemany(
                "INSERT INTO enrollments (campaign_id, candidate_id, status, enrolled_at) "
                "VALUES (?, ?, 'active', ?)",
                [(campaign, person, stamp) for person in people],
            )
            enrollments = dict(
                connection.execute(
                    "SELECT candidate_id, id FROM enrollments WHERE campaign_id = ?", (campaign,)
                ).fetchall()
            )
            connection.executemany(
                "INSERT INTO outbox_messages (unique_key, campaign_id, step_id, enrollment_id, "
                "candidate_id, to_address, subject, status, due_at, attempts, sent_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (f"{campaign}:{n + 1}:{person}", campaign, step, enrollments[person], person,
                     f"p{person}@example.com", f"Step {n + 1}",
                     "sent" if n == 0 else ("queued" if n == 1 else "waiting"), stamp,
                     1 if n == 0 else 0, stamp if n == 0 else None, stamp)
                    for person in people
                    for n, step in enumerate(steps)
                ],
            )  # fmt: skip
            sent = dict(
                connection.execute(
                    "SELECT candidate_id, id FROM outbox_messages WHERE campaign_id = ? "
                    "AND status = 'sent'",
                    (campaign,),
                ).fetchall()
            )
            kinds = ["open"] * 30 + ["click"] * 10 + ["reply"] * 4 + ["unsubscribe", "bounce"]
            events = []
            for n in range(EVENTS):
                person = people[rng.randrange(len(people))]
                kind = kinds[rng.randrange(len(kinds))]
                at = (now + dt.timedelta(minutes=rng.randint(1, 4000))).strftime(
                    "%Y-%m-%d %H:%M:%S.%f"
                )
                events.append(
                    (kind, at, person, campaign, steps[0], sent[person],
                     1 if kind == "open" and n % 4 == 0 else 0)
                )  # fmt: skip
            connection.executemany(
                "INSERT INTO events (kind, occurred_at, candidate_id, campaign_id, step_id, "
                "outbox_message_id, is_machine) VALUES (?, ?, ?, ?, ?, ?, ?)",
                events,
            )
    finally:
        connection.close()


def select_campaign(page: object) -> None:
    """Open Campaigns and tick the big campaign's row (the newest: the first row); it then
    stays open for the session, in the list's place."""
    page.locator(f"{pages.NAV} a").filter(has_text="Campaigns").first.click()  # type: ignore[attr-defined]
    pages.settle(page)
    table = page.locator("[data-testid=stDataFrame]").first  # type: ignore[attr-defined]
    table.click(position={"x": 15, "y": 55})
    # The selection reruns the page once more to open the campaign in the list's place.
    try:
        page.get_by_role("heading", name=CAMPAIGN).wait_for(timeout=pages.STEP_TIMEOUT_MS)  # type: ignore[attr-defined]
    except Exception as error:  # Playwright's TimeoutError
        raise processes.BenchmarkError(
            "the big campaign did not open on the Campaigns page"
        ) from error
    pages.settle(page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_page")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"Building a {PEOPLE:,}-candidate demo database...", file=sys.stderr)
        database = demo_load.build(folder / "db", "report", PEOPLE + 2000)
        add_big_campaign(database.path)
        measured = single_page.measure(
            database.env, folder, title="Campaigns", heading="Campaigns",
            runs=args.runs, warmup=args.warmup, before=select_campaign,
        )  # fmt: skip
    result = {"people": PEOPLE, "events": EVENTS, **measured.as_json(TARGET_RATIO)}
    print(
        f"Campaign report ({PEOPLE:,} people, {EVENTS:,} events): "
        f"{measured.page.median_ms:.0f} ms vs hello-world {measured.hello.median_ms:.0f} ms, "
        f"ratio {measured.ratio:.2f} (target <= {TARGET_RATIO})"
    )
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
