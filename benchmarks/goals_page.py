"""`python -m benchmarks.goals_page`: Goals & ROI at 100,000 candidates and 1,000,000 events.

A demo database of 100,000 candidates (twelve months of jobs, applications, costs and
goals come with the demo data) gets 1,000,000 more events (opens, clicks, replies) spread
over the year. Each metric's queries are timed on their own (metric_timings), then the
Goals & ROI page is timed in Chromium against a hello-world page (target: within 2x).

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
import time
from pathlib import Path

from sqlalchemy import Engine

from benchmarks import demo_load, single_page

CANDIDATES = 100_000
EVENTS = 1_000_000
TARGET = 2.0


def add_events(path: Path, count: int) -> None:
    rng = random.Random(3)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    connection = sqlite3.connect(path)
    try:
        with connection:
            people = [row[0] for row in connection.execute("SELECT id FROM candidates")]
            campaigns = [row[0] for row in connection.execute("SELECT id FROM campaigns")] or [None]
            kinds = ["open"] * 12 + ["click"] * 4 + ["reply"]
            batch = []
            for n in range(count):
                at = now - dt.timedelta(minutes=rng.randint(0, 365 * 24 * 60))
                batch.append(
                    (kinds[n % len(kinds)], at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                     people[rng.randrange(len(people))], campaigns[n % len(campaigns)],
                     1 if n % 9 == 0 else 0)
                )  # fmt: skip
                if len(batch) == 100_000:
                    connection.executemany(
                        "INSERT INTO events (kind, occurred_at, candidate_id, campaign_id, "
                        "is_machine) VALUES (?, ?, ?, ?, ?)",
                        batch,
                    )
                    batch = []
            if batch:
                connection.executemany(
                    "INSERT INTO events (kind, occurred_at, candidate_id, campaign_id, "
                    "is_machine) VALUES (?, ?, ?, ?, ?)",
                    batch,
                )
    finally:
        connection.close()


def metric_timings(engine: Engine, *, start: dt.date, end: dt.date) -> dict[str, float]:
    """Seconds each metric's queries take on their own (crm.metrics.value, one at a time)."""
    from crm import metrics

    found = {}
    for metric in metrics.METRICS:
        began = time.perf_counter()
        metrics.value(engine, metric=metric, start=start, end=end)
        found[metric] = time.perf_counter() - began
    return found


def time_metrics(env: dict[str, str]) -> dict[str, float]:
    import os

    from crm import db

    os.environ.update(env)
    engine = db.create_engine_for(env["CRM_DATABASE_URL"])
    today = dt.date.today()
    timings = metric_timings(engine, start=today - dt.timedelta(days=365), end=today)
    engine.dispose()
    return {name: round(seconds * 1000, 1) for name, seconds in timings.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.goals_page")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--candidates", type=int, default=CANDIDATES)
    parser.add_argument("--events", type=int, default=EVENTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        print(f"Building a {args.candidates:,}-candidate demo database...", file=sys.stderr)
        database = demo_load.build(folder / "db", "goals", args.candidates)
        print(f"Adding {args.events:,} events...", file=sys.stderr)
        add_events(database.path, args.events)
        metric_ms = time_metrics(database.env)
        measured = single_page.measure(
            database.env, folder, title="Goals & ROI", heading="Goals & ROI", runs=args.runs
        )
    for name, ms in metric_ms.items():
        print(f"  metric {name:<32} {ms:8.1f} ms")
    print(
        f"Goals & ROI ({args.candidates:,} candidates, {args.events:,} events): "
        f"{measured.page.median_ms:.0f} ms vs hello-world {measured.hello.median_ms:.0f} ms, "
        f"ratio {measured.ratio:.2f} (target <= {TARGET})"
    )
    result = {"candidates": args.candidates, "events": args.events, "metric_ms": metric_ms,
              **measured.as_json(TARGET)}  # fmt: skip
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
