"""`python -m benchmarks.calendar_speed`: the content calendar at 5,000 items.

1. The .ics export of a year holding 100 weekly series and 2,500 one-off items, timed
   end to end through `crm.content_calendar.files.export_ics` (target: under a second).
2. The Content calendar page's month view on a demo database with 5,000 content items
   (a fifth of them in the current month's weeks), against a hello-world page in Chromium
   (target: within 2x).

Exit 0 with a report even when a target is missed; exit 1 when something breaks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import demo_load, pages, single_page

ITEMS = 5_000
SERIES = 100
ICS_TARGET_S = 1.0
PAGE_TARGET = 2.0
CHANNELS = ["email_newsletter", "linkedin_post", "linkedin_message", "x", "instagram", "sms",
            "blog", "event"]  # fmt: skip


def fill(env: dict[str, str], *, items: int, series: int) -> None:
    """Add content items through the service (one-offs spread over a year, weekly series)."""
    from sqlalchemy import insert

    from crm import auth, db
    from crm.content_calendar.drafts import ItemDraft
    from crm.content_calendar.items import save_item
    from crm.models import ContentItem

    os.environ.update(env)
    engine = db.create_engine_for(env["CRM_DATABASE_URL"])
    actor = auth.find_user(engine, "admin")
    rng = random.Random(5)
    today = dt.date.today()
    start = dt.datetime.combine(today.replace(day=1), dt.time(), dt.UTC)
    for n in range(series):
        save_item(
            engine,
            actor=actor,
            draft=ItemDraft(
                title=f"Weekly series {n}", channel=CHANNELS[n % len(CHANNELS)],
                starts_at=start + dt.timedelta(days=n % 7, hours=9 + n % 8),
                recurrence={"freq": "weekly", "interval": 1, "count": 52, "timezone": "UTC"},
            ),
        )  # fmt: skip
    rows = []
    for n in range(items - series):
        # A fifth land in this month's weeks, the rest across the year.
        days = rng.randint(0, 34) if n % 5 == 0 else rng.randint(-180, 180)
        rows.append(
            {
                "title": f"Item {n}",
                "channel": CHANNELS[n % len(CHANNELS)],
                "scheduled_at": start + dt.timedelta(days=days, hours=rng.randint(8, 18)),
                "status": "scheduled",
                "recurrence_exceptions": [],
            }
        )
    with db.write_session(engine) as session:
        session.execute(insert(ContentItem), rows)
    engine.dispose()


def time_ics(env: dict[str, str]) -> tuple[float, int]:
    from crm import db
    from crm.content_calendar import files

    engine = db.create_engine_for(env["CRM_DATABASE_URL"])
    start = dt.datetime.combine(dt.date.today().replace(day=1), dt.time(), dt.UTC)
    best, events = float("inf"), 0
    for _ in range(3):
        began = time.perf_counter()
        data = files.export_ics(engine, start=start, end=start + dt.timedelta(days=365))
        best = min(best, time.perf_counter() - began)
        events = data.count(b"BEGIN:VEVENT")
    engine.dispose()
    return best, events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calendar_speed")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        database = demo_load.build(folder / "db", "calendar", 2000)
        fill(database.env, items=ITEMS, series=SERIES)
        ics_s, events = time_ics(database.env)
        measured = single_page.measure(
            database.env, folder, title="Content calendar", heading="Content calendar",
            runs=args.runs, ready=pages.READY["Content calendar"],
        )  # fmt: skip
    result = {
        "items": ITEMS,
        "ics_events": events,
        "ics_s": round(ics_s, 3),
        "ics_target_s": ICS_TARGET_S,
        "ics_target_met": ics_s < ICS_TARGET_S,
        **measured.as_json(PAGE_TARGET),
    }
    print(
        f"Calendar .ics for a year ({events:,} events from {SERIES} weekly series and "
        f"{ITEMS - SERIES:,} one-offs): {ics_s:.2f} s (target < {ICS_TARGET_S:.0f} s)"
    )
    print(
        f"Content calendar month view with {ITEMS:,} items: {measured.page.median_ms:.0f} ms vs "
        f"hello-world {measured.hello.median_ms:.0f} ms, ratio {measured.ratio:.2f} "
        f"(target <= {PAGE_TARGET})"
    )
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
