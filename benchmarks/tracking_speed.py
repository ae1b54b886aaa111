"""`python -m benchmarks.tracking_speed`: the public tracking routes under load.

A fresh SQLite database holds a sent campaign (N people, one message each with two
tracked links). `crm serve` runs it on a free loopback port (CRM_WORKER=off), and a load
generator in a second process (benchmarks/load_generator.py: asyncio, keep-alive
HTTP/1.1 connections) sends a fixed number of requests, half open pixels and half
clicks, each with a real signed token, as fast as the server answers. It reports the
rate and the latency percentiles. Target: at least 1,000 requests per second.

Exit 0 with a report even when the target is missed; exit 1 when something breaks (a
request answered with anything but 200 for a pixel or 302 for a click).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import insert, select

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TARGET_RPS = 1000.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(folder: Path, people: int) -> list[str]:
    """A database with `people` sent messages; returns request paths (pixel, click, ...)."""
    from crm import auth, db, engagement, tokens
    from crm.models import Campaign, CampaignStep, Candidate, Enrollment, Link, OutboxMessage

    engine = db.create_engine_for(os.environ["CRM_DATABASE_URL"])
    db.upgrade(engine)
    admin = auth.create_user(
        engine, username="admin", role="admin", password="benchmark-pass", display_name="A"
    )
    sent_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    with db.write_session(engine) as session:
        session.execute(
            insert(Candidate),
            [
                {"first_name": f"F{n}", "last_name": "L", "email": f"p{n}@example.com",
                 "email_normalized": f"p{n}@example.com"}
                for n in range(people)
            ],
        )  # fmt: skip
        campaign = Campaign(
            name="Load", status="active", created_by_id=admin.id, launched_at=sent_at
        )
        session.add(campaign)
        session.flush()
        step = CampaignStep(campaign_id=campaign.id, position=1, subject="Hi", body_markdown="x")
        session.add(step)
        session.flush()
        ids = list(session.scalars(select(Candidate.id).order_by(Candidate.id)))
        session.execute(
            insert(Enrollment),
            [
                {"campaign_id": campaign.id, "candidate_id": cid, "enrolled_at": sent_at}
                for cid in ids
            ],
        )
        enrollments = dict(session.execute(select(Enrollment.candidate_id, Enrollment.id)).all())
        session.execute(
            insert(OutboxMessage),
            [
                {"unique_key": f"{campaign.id}:1:{cid}", "campaign_id": campaign.id,
                 "step_id": step.id, "enrollment_id": enrollments[cid], "candidate_id": cid,
                 "to_address": f"p{n}@example.com", "status": "sent", "due_at": sent_at,
                 "sent_at": sent_at, "subject": "Hi"}
                for n, cid in enumerate(ids)
            ],
        )  # fmt: skip
        messages = list(session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)))
        session.execute(
            insert(Link),
            [
                {"outbox_message_id": mid, "url": f"https://acme.example/jobs/{position}",
                 "position": position}
                for mid in messages
                for position in (0, 1)
            ],
        )  # fmt: skip
    engine.dispose()
    paths = []
    for n, mid in enumerate(messages):
        paths.append(f"/o/{tokens.sign('open', mid)}.gif")
        position = n % 2
        paths.append(f"/c/{engagement.click_token(mid, position)}")
    return paths


def recorded_events() -> int:
    """Opens and clicks in the database once the server has stopped (queued ones flushed)."""
    from sqlalchemy import func

    from crm import db
    from crm.models import Event

    engine = db.create_engine_for(os.environ["CRM_DATABASE_URL"])
    with db.read_session(engine) as session:
        count = session.scalar(select(func.count()).select_from(Event)) or 0
    engine.dispose()
    return int(count)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("crm serve exited early")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("crm serve did not become healthy")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking_speed")
    parser.add_argument("--requests", type=int, default=6000, help="requests sent (6000)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            CRM_DATABASE_URL=f"sqlite:///{folder / 'crm.db'}",
            CRM_SECRET_KEY="benchmark-secret-key-long-enough",
            CRM_DATA_DIR=str(folder / "data"),
            CRM_WORKER="off",
            CRM_PUBLIC_URL=f"http://127.0.0.1:{port}",
        )
        os.environ.update(env)
        paths = prepare(folder, max(args.requests // 2, 1))
        (folder / "paths.json").write_text(json.dumps(paths))
        url = f"http://127.0.0.1:{port}"
        with (folder / "serve.log").open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "crm.cli", "serve", "--port", str(port),
                 "--host", "127.0.0.1"],
                env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                wait_healthy(url, server)
                generator = subprocess.run(
                    [
                        sys.executable, "-m", "benchmarks.load_generator",
                        "--port", str(port), "--paths", str(folder / "paths.json"),
                        "--requests", str(args.requests), "--connections", str(args.connections),
                    ],
                    cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
                )  # fmt: skip
            finally:
                server.terminate()  # SIGTERM: the lifespan writes what is still queued
                server.wait(timeout=30)
        if generator.returncode != 0:
            print(generator.stderr, file=sys.stderr)
            return 1
        result = json.loads(generator.stdout)
        result["events_recorded"] = recorded_events()
        if result["events_recorded"] != result["requests"]:
            print(
                f"Only {result['events_recorded']} of {result['requests']} hits were recorded.",
                file=sys.stderr,
            )
            return 1
    result["target_rps"] = TARGET_RPS
    result["target_met"] = result["rps"] >= TARGET_RPS
    print(
        f"Tracking routes: {result['requests']:,} requests (pixel and click) over "
        f"{args.connections} connections: {result['rps']:,.0f}/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms (target >= {TARGET_RPS:,.0f}/s)"
    )
    print(json.dumps(result), file=sys.stderr)
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
