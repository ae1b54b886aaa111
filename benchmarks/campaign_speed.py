"""`python -m benchmarks.campaign_speed`: launching a campaign, and delivering it.

1. Launch: a 3-step campaign aimed at a dynamic pool of 10,000 people in a fresh migrated
   SQLite file; `crm.campaign_lifecycle.launch` end to end (the launch check's classification,
   enrollments, 30,000 outbox rows, one transaction). Target: at most 2 s.
2. Delivery: `crm.outbox.deliver_due` sending the first step to N people over loopback to
   an aiosmtpd server started here, against the floor of building N standard-library
   messages of the same shape and sending them over one raw smtplib connection to the
   same server, in the same run (interleaved round by round, medians compared). Target:
   the app's rate at least half the floor's.

Exit 0 with a report even when a target is missed; exit 1 when something breaks.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import socket
import statistics
import sys
import tempfile
import time
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import insert

LAUNCH_PEOPLE = 10_000
LAUNCH_TARGET_S = 2.0
RATE_TARGET = 0.5
BODY = (
    "Hi {{first_name|there}}, I saw your work with {{skills|your stack}} at "
    "{{company|your company}}. We are growing the platform team; would you be open to a "
    "short chat? [Our engineering blog](https://acme.example/blog)"
)


class Sink:
    """Accepts every message and keeps only a count."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        return "250 OK"


def prepare(folder: Path, people: int) -> tuple[object, object, int]:
    os.environ["CRM_DATABASE_URL"] = f"sqlite:///{folder / 'crm.db'}"
    os.environ["CRM_DATA_DIR"] = str(folder / "data")
    os.environ.setdefault("CRM_SECRET_KEY", "benchmark-secret-key-long-enough")
    from crm import auth, db, pools
    from crm.models import Candidate

    engine = db.create_engine_for(os.environ["CRM_DATABASE_URL"])
    db.upgrade(engine)
    admin = auth.create_user(
        engine, username="admin", role="admin", password="benchmark-pass-1", display_name="A"
    )
    rows = [
        {
            "first_name": f"First{n}",
            "last_name": f"Last{n}",
            "email": f"person{n}@example.com",
            "email_normalized": f"person{n}@example.com",
            "location": "London",
            "company": "Acme" if n % 3 else None,
            "skills": ["python", "aws"] if n % 2 else ["go"],
            "consent_status": "legitimate_interest",
        }
        for n in range(people)
    ]
    with db.write_session(engine) as session:
        session.execute(insert(Candidate), rows)
    pool_id = pools.save_pool(
        engine,
        actor=admin,
        name="London",
        kind="dynamic",
        filter_json={"field": "location", "op": "eq", "value": "London"},
    )
    return engine, admin, pool_id


def new_campaign(engine: object, admin: object, pool_id: int, name: str, steps: int) -> int:
    from crm import campaigns

    return campaigns.save_campaign(
        engine,  # type: ignore[arg-type]
        actor=admin,  # type: ignore[arg-type]
        draft=campaigns.CampaignDraft(
            name=name,
            audience_pool_id=pool_id,
            steps=[
                campaigns.StepDraft(subject="Hi {{first_name|there}}", body=BODY, delay_days=4 * i)
                for i in range(steps)
            ],
        ),
    )


def measure_launch() -> float:
    from crm import campaign_lifecycle

    with tempfile.TemporaryDirectory() as folder:
        engine, admin, pool_id = prepare(Path(folder), LAUNCH_PEOPLE)
        campaign_id = new_campaign(engine, admin, pool_id, "Launch benchmark", 3)
        started = time.perf_counter()
        result = campaign_lifecycle.launch(engine, actor=admin, campaign_id=campaign_id)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        if result.enrolled != LAUNCH_PEOPLE or result.messages != 3 * LAUNCH_PEOPLE:
            raise SystemExit(f"launch enrolled {result.enrolled}, queued {result.messages}")
        engine.dispose()  # type: ignore[attr-defined]
        return elapsed


def raw_send(port: int, count: int) -> float:
    """The floor: build and send `count` multipart messages over one smtplib connection."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as connection:
        for n in range(count):
            message = EmailMessage()
            message["Subject"] = f"Hi First{n}"
            message["From"] = "Acme Talent <talent@acme.example>"
            message["To"] = f"person{n}@example.com"
            message["Message-ID"] = make_msgid(domain="acme.example")
            message.set_content(BODY.replace("{{", "").replace("}}", ""))
            message.add_alternative(f"<p>{BODY}</p>", subtype="html")
            connection.send_message(message)
    return time.perf_counter() - started


def app_send(port: int, count: int) -> float:
    from crm import campaign_lifecycle, db, outbox
    from crm.config import load_settings

    with tempfile.TemporaryDirectory() as folder:
        engine, admin, pool_id = prepare(Path(folder), count)
        campaign_id = new_campaign(engine, admin, pool_id, f"Delivery {time.time()}", 2)
        campaign_lifecycle.launch(engine, actor=admin, campaign_id=campaign_id)  # type: ignore[arg-type]
        started = time.perf_counter()
        report = outbox.deliver_due(engine, settings=load_settings())  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        if report.sent != count:
            raise SystemExit(f"delivery sent {report.sent} of {count}: {report.problem}")
        engine.dispose()  # type: ignore[attr-defined]
        db.dispose_engines()
        return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.campaign_speed")
    parser.add_argument("--messages", type=int, default=1000, help="messages delivered (1000)")
    parser.add_argument("--rounds", type=int, default=3, help="floor/app rounds, medians (3)")
    args = parser.parse_args(argv)
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(
        {
            "CRM_SMTP_HOST": "127.0.0.1",
            "CRM_SMTP_PORT": str(port),
            "CRM_SMTP_SECURITY": "none",
            "CRM_FROM": "Acme Talent <talent@acme.example>",
            "CRM_SEND_RATE": "1000000",
        }
    )
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    floors: list[float] = []
    apps: list[float] = []
    try:
        launch_s = measure_launch()
        raw_send(port, 100)  # warm-up
        for _ in range(args.rounds):
            floors.append(raw_send(port, args.messages))
            apps.append(app_send(port, args.messages))
    finally:
        controller.stop()
    floor_rate = args.messages / statistics.median(floors)
    app_rate = args.messages / statistics.median(apps)
    ratio = app_rate / floor_rate
    result = {
        "launch_people": LAUNCH_PEOPLE,
        "launch_steps": 3,
        "launch_s": round(launch_s, 3),
        "launch_target_s": LAUNCH_TARGET_S,
        "launch_target_met": launch_s <= LAUNCH_TARGET_S,
        "messages": args.messages,
        "rounds": args.rounds,
        "raw_smtplib_s": [round(x, 3) for x in floors],
        "app_s": [round(x, 3) for x in apps],
        "raw_smtplib_per_s": round(floor_rate, 1),
        "app_per_s": round(app_rate, 1),
        "rate_ratio": round(ratio, 2),
        "rate_target": RATE_TARGET,
        "rate_target_met": ratio >= RATE_TARGET,
    }
    print(
        f"Launch of {LAUNCH_PEOPLE:,} people x 3 steps: {launch_s:.2f} s "
        f"(target <= {LAUNCH_TARGET_S:.0f} s)"
    )
    print(
        f"Delivery of {args.messages:,} messages: app {app_rate:,.0f}/s, raw smtplib "
        f"{floor_rate:,.0f}/s, ratio {ratio:.2f} (target >= {RATE_TARGET})"
    )
    print(json.dumps(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
