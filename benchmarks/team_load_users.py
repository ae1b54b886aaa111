"""Simulated users acting through the services, for benchmarks.team_load.

`python -m benchmarks.team_load_users --plan PLAN.json --app A --out OPS.json` runs the
plan's users assigned to app process A, each in its own thread over one engine of this
process (as a Streamlit server runs each session's script in a thread over its cached
engine), from the plan's start time to its deadline, then writes every operation it did
(kind, outcome, seconds, what it wrote) as JSON for the verification.

Each user calls the same crm/ functions the pages call, with the same arguments a page
would pass, so the database sees the same transactions, locks and conflicts. A refusal
a page shows to its user and the user answers (an edit conflict: reload and save again;
an import rolled back because someone added the same person meanwhile: import again) is
retried and counted as a conflict, not a failure. Any other exception is a failure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

# The overlap pool: every importer's files (and some hand-added people) name some of these,
# spelled differently, so dedupe works across concurrent imports and forms.
SHARED_DOMAIN = "load.example"
CITIES = ("London", "Berlin", "Lisbon", "Toronto", "Remote", "Madrid", "Dublin")
SEARCHES = ("python", "london", "engineer", "data", "", "sales")
MAX_RETRIES = 8
IMPORT_ROWS_NEW = 150  # rows only this file holds
IMPORT_ROWS_SHARED = 60  # rows from the overlap pool
IMPORT_ROWS_EXISTING = 30  # rows naming people already in the database
IMPORT_ROWS_REPEATED = 5  # rows repeating an earlier row of the same file
IMPORT_ROWS_INVALID = 3  # rows with neither email nor LinkedIn URL: refused
CAMPAIGN_PEOPLE = (10, 25)


def shared_email(number: int, spelling: int) -> str:
    """Overlap person `number`, in one of several spellings that normalize alike."""
    local, domain = f"shared.person{number}", SHARED_DOMAIN
    if spelling % 3 == 1:
        return f"{local.title()}@{domain.upper()}"
    if spelling % 3 == 2:
        return f"  {local.upper()}@{domain}  "
    return f"{local}@{domain}"


@dataclass
class Op:
    """One thing a user did, as the verification needs it."""

    user: str
    app: str
    kind: str
    outcome: str  # done, refused (a refusal the page shows, not retried), failed
    seconds: float
    conflicts: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Recorder:
    """Operations from every thread of this process."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class User:
    """One simulated person: a role, a seeded random choice of what to do next."""

    def __init__(
        self, engine: Engine, spec: dict[str, Any], plan: dict[str, Any], recorder: Recorder
    ) -> None:
        from crm import auth

        self.engine = engine
        self.spec = spec
        self.plan = plan
        self.recorder = recorder
        self.name: str = spec["name"]
        self.app: str = spec["app"]
        self.rng = random.Random(spec["seed"])
        actor = auth.get_user(engine, spec["user_id"])
        if actor is None:
            raise SystemExit(f"no user {spec['user_id']}")
        self.actor = actor
        self.count = 0
        self.audience: list[int] = list(spec.get("audience", []))
        self.campaigns: list[int] = []

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        wait = self.plan["start_at"] - time.time()
        if wait > 0:
            time.sleep(wait)
        actions = self.actions()
        names = list(actions)
        weights = [actions[name][0] for name in names]
        while time.time() < self.plan["deadline"]:
            self.count += 1
            kind = self.rng.choices(names, weights)[0]
            self.timed(kind, actions[kind][1])
            low, high = self.spec["think_s"]
            pause = min(self.rng.uniform(low, high), self.plan["deadline"] - time.time())
            if pause > 0:
                time.sleep(pause)

    def actions(self) -> dict[str, tuple[int, Callable[[Op], None]]]:
        role = self.spec["role"]
        if role == "editor":
            return {
                "edit": (4, self.edit),
                "note": (3, self.note),
                "search": (2, self.search),
                "create": (1, self.create),
            }
        if role == "importer":
            return {"import": (3, self.import_file), "search": (1, self.list_imports)}
        return {"send": (2, self.send), "search": (1, self.read_report)}

    def timed(self, kind: str, action: Callable[[Op], None]) -> None:
        """Run one action; its op records the seconds of the call that did the work."""
        op = Op(self.name, self.app, kind, "done", 0.0)
        started = time.perf_counter()
        try:
            action(op)
        except Exception as error:  # anything a page would show as an exception
            op.outcome = "failed"
            op.error = first_line(error)
            print(f"[{self.name}] {kind} failed:\n{traceback.format_exc()}", file=sys.stderr)
        if not op.seconds:
            op.seconds = time.perf_counter() - started
        self.recorder.add(op)

    def marker(self, what: str) -> str:
        return f"{self.name} {what} {self.count}"

    # --- editing ----------------------------------------------------------------------

    def edit(self, op: Op) -> None:
        """Open a profile, change fields, save; on a conflict reload and save again."""
        from crm import candidates

        candidate_id = self.rng.choice(self.plan["hot"])
        title = self.marker("title")
        op.detail = {"candidate_id": candidate_id, "title": title}
        for _ in range(MAX_RETRIES):
            current = candidates.get_candidate(self.engine, candidate_id)
            assert current is not None
            time.sleep(self.rng.uniform(0.1, 0.6))  # typing, as the form is filled in
            started = time.perf_counter()
            try:
                candidates.update_candidate(
                    self.engine,
                    actor=self.actor,
                    candidate_id=candidate_id,
                    expected_version=current.version,
                    fields={"title": title, "location": self.rng.choice(CITIES)},
                )
            except candidates.EditConflict:
                op.conflicts += 1
                continue
            op.seconds = time.perf_counter() - started
            return
        op.outcome = "refused"
        op.error = f"still conflicting after {MAX_RETRIES} saves"

    def note(self, op: Op) -> None:
        """Log a note or a call on someone's timeline."""
        from crm import touchpoints

        candidate_id = self.rng.choice(self.plan["note_targets"])
        text = self.marker("note")
        channel = self.rng.choice(("note", "call"))
        op.detail = {"candidate_id": candidate_id, "note": text}
        touchpoints.log_touchpoint(
            self.engine,
            actor=self.actor,
            candidate_id=candidate_id,
            channel=channel,
            occurred_at=dt.datetime.now(dt.UTC),
            note=text,
        )

    def search(self, op: Op) -> None:
        from crm import candidates

        candidates.search(self.engine, text=self.rng.choice(SEARCHES), page=1, page_size=50)

    def create(self, op: Op) -> None:
        """Add a person by hand; one in four is someone an import may be bringing in."""
        from crm import candidates

        if self.rng.random() < 0.25:
            number = self.rng.randrange(self.plan["shared_people"])
            email = shared_email(number, self.rng.randrange(3))
        else:
            email = f"{self.name}.created{self.count}@{SHARED_DOMAIN}"
        op.detail = {"email": email.strip().lower()}
        try:
            created = candidates.create_candidate(
                self.engine,
                actor=self.actor,
                fields={
                    "first_name": "Hand",
                    "last_name": f"Added {self.count}",
                    "email": email,
                    "title": "Engineer",
                },
            )
        except candidates.DuplicateCandidate as error:
            op.outcome = "refused"
            op.detail["existing_id"] = error.existing_id
            return
        op.detail["candidate_id"] = created.id

    # --- importing --------------------------------------------------------------------

    def csv_file(self) -> tuple[bytes, list[str], list[str]]:
        """A file: (content, every valid row's email key, the keys only this file holds)."""
        rng = self.rng
        rows: list[list[str]] = []
        own: list[str] = []
        for n in range(IMPORT_ROWS_NEW):
            email = f"{self.name}.f{self.count}.r{n}@{SHARED_DOMAIN}"
            own.append(email)
            rows.append(["New", f"Person {n}", email, "Acme", "Developer", rng.choice(CITIES)])
        for _ in range(IMPORT_ROWS_SHARED):
            number = rng.randrange(self.plan["shared_people"])
            email = shared_email(number, rng.randrange(3))
            rows.append(["Shared", f"Person {number}", email, "Globex", "Analyst", "Remote"])
        for email in rng.sample(self.plan["existing_emails"], IMPORT_ROWS_EXISTING):
            rows.append(["Known", "Person", email, "Initech", "", ""])
        for row in rng.sample(rows, IMPORT_ROWS_REPEATED):
            rows.append(list(row))
        for n in range(IMPORT_ROWS_INVALID):
            rows.append(["Nobody", f"Without address {n}", "", "", "", ""])
        rng.shuffle(rows)
        keys = sorted({row[2].strip().lower() for row in rows if row[2].strip()})
        text = io.StringIO()
        text.write("First Name,Last Name,Email,Company,Title,Location\n")
        for row in rows:
            text.write(",".join(f'"{cell}"' for cell in row) + "\n")
        return text.getvalue().encode(), keys, own

    def import_file(self, op: Op) -> None:
        """Import a CSV file; if it is rolled back by a concurrent change, import it again."""
        from crm import importer
        from crm.errors import CrmError

        content, keys, own = self.csv_file()
        mode = ("skip", "update_empty")[self.count % 2]
        filename = f"load-{self.name}-{self.count}.csv"
        op.detail = {"filename": filename, "keys": keys, "own": own, "mode": mode}
        for _ in range(MAX_RETRIES):
            started = time.perf_counter()
            try:
                result = importer.run_import(
                    self.engine,
                    content,
                    importer.ImportOptions(on_duplicate=mode, source="Load test"),
                    actor=self.actor,
                    filename=filename,
                )
            except CrmError as error:
                if "rolled back" not in str(error):
                    raise
                op.conflicts += 1
                time.sleep(self.rng.uniform(0.3, 1.0))  # reads the message, clicks again
                continue
            op.seconds = time.perf_counter() - started
            op.detail.update(
                batch_id=result.batch_id,
                read=result.read,
                created=result.created,
                updated=result.updated,
                duplicates=result.duplicates,
                errors=result.errors,
            )
            return
        op.outcome = "refused"
        op.error = f"still rolled back after {MAX_RETRIES} tries"

    def list_imports(self, op: Op) -> None:
        from crm import importer

        importer.list_batches(self.engine)

    # --- sending ----------------------------------------------------------------------

    def send(self, op: Op) -> None:
        """Compose a one-step campaign to hand-picked people, check it, launch it."""
        from crm import campaign_lifecycle, campaigns

        size = self.rng.randint(*CAMPAIGN_PEOPLE)
        if len(self.audience) < size:
            op.outcome = "refused"
            op.error = "nobody left to write to"
            return
        people = [self.audience.pop() for _ in range(size)]
        name = f"Load {self.name} {self.count}"
        op.detail = {"name": name, "people": people}
        started = time.perf_counter()
        campaign_id = campaigns.save_campaign(
            self.engine,
            actor=self.actor,
            draft=campaigns.CampaignDraft(
                name=name,
                candidate_ids=people,
                steps=[
                    campaigns.StepDraft(
                        subject="{{first_name|Hello}}, a role at Fernwood",
                        body=(
                            "Hi {{first_name|there}},\n\nWe are hiring engineers who know "
                            "{{skills|modern tooling}}. [See the role](https://jobs.load.example/1)"
                        ),
                    )
                ],
            ),
        )
        op.detail["campaign_id"] = campaign_id
        check = campaign_lifecycle.launch_check(self.engine, campaign_id)
        if check.blocked:
            raise RuntimeError(f"launch check blocked: {check.blocked}")
        result = campaign_lifecycle.launch(self.engine, actor=self.actor, campaign_id=campaign_id)
        op.seconds = time.perf_counter() - started
        op.detail.update(enrolled=result.enrolled, messages=result.messages)
        self.campaigns.append(campaign_id)

    def read_report(self, op: Op) -> None:
        from crm import campaign_figures

        if not self.campaigns:
            campaign_figures.list_campaigns(self.engine)
            return
        campaign_id = self.rng.choice(self.campaigns)
        campaign_figures.step_counts(self.engine, campaign_id)
        campaign_figures.report(self.engine, campaign_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.team_load_users")
    parser.add_argument("--plan", required=True, type=Path)
    parser.add_argument("--app", required=True, help="which app process's users to run")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text(encoding="utf-8"))

    from crm import db

    engine = db.create_engine_for(plan["database_url"])  # this process's own pool
    recorder = Recorder()
    users = [
        User(engine, spec, plan, recorder) for spec in plan["users"] if spec["app"] == args.app
    ]
    threads = [threading.Thread(target=user.run, name=user.name) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    args.out.write_text(json.dumps([asdict(op) for op in recorder.ops]), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
