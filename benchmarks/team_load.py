"""`python -m benchmarks.team_load`: a team at work on PostgreSQL, then proof nothing broke.

Setup: a fresh PostgreSQL database (`crm_load_<pid>`, dropped at the end), `crm init`,
`crm demo --candidates 3000`, 20 recruiter accounts, and an SMTP sink (aiosmtpd on a
free loopback port) that counts every Message-ID it receives. Then, all on that one
database with one CRM_SECRET_KEY: two `crm serve` processes (app A and app B, each on its
own port, CRM_WORKER=off) and two `crm send` workers sharing the outbox (on PostgreSQL
they claim with FOR UPDATE SKIP LOCKED).

The 20 users, half on each app process, work at once for a fixed time (90 s by
default; an operation under way at the deadline finishes):
- 2 browser users, one per app process, in one Chromium (a context each, signed in
  through the real form): Candidates page, "Add candidate" dialog, search and open the
  new profile, save a Title change, log a note on the Timeline tab, open another page.
- 18 service users, 9 per app process: each app process's users run as threads of one
  stand-in process with its own engine (benchmarks/team_load_users.py), calling the
  crm/ functions the pages call with the arguments the pages pass. 8 editors (save a
  title and location on one of 25 shared "hot" candidates - optimistic locking, reload
  and save again on a conflict -, log notes and calls, search, add people by hand, some
  of them people the imports are bringing in), 5 importers (CSV files of about 250 rows:
  150 new, 60 from a pool of 300 people every importer's files name in varying spelling,
  30 already in the database, 5 repeated, 3 invalid; "skip" and "update_empty"; a file
  rolled back because someone added the same person meanwhile is imported again), and
  5 senders (compose a one-step campaign to 10-25 hand-picked people, run the launch
  check, launch it; read the campaign report).
Why this split: 20 Chromiums and 20 Streamlit sessions do not fit in 2 CPUs beside the
servers, the workers and PostgreSQL; what can lose or duplicate data is the transactions
(row locks, unique keys, version checks, SKIP LOCKED), and those are the same whether a
service is called from a Streamlit script thread or from a stand-in thread. The two
browser users prove the real app processes serve pages and save through forms under
that load.

After the deadline the workers drain the outbox, every process is stopped, and it checks:
every edit saved is in the history (and each edit was based on the one before: no lost
update), every note is on its timeline once, every person added or imported is present
once (no two candidates share an email, compared in lower case), every launched
message was sent once and the SMTP sink received each Message-ID once (and nothing
else), no operation failed unexpectedly, PostgreSQL counted no deadlock, and no process
log holds "database is locked", "deadlock detected" or a traceback.

Seconds are those of the call that did the work (a retry's successful call; an op's
reads before it are not timed), and for the browser kinds from the click to the settled
page showing the outcome. Conflicts are the refusals that were answered by trying again.

Prints the figures (operations per kind, conflicts, p50/p95 seconds) and the checks,
writes benchmarks/results/team_load.json, and prints that JSON on standard error. Exit 0
when every check passes, 1 when one fails or something breaks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from email.parser import BytesHeaderParser
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, make_url, select, text
from sqlalchemy.exc import DBAPIError

from benchmarks import processes, report
from benchmarks.team_load_users import SHARED_DOMAIN, Op

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SETTLED = "[data-testid=stApp][data-test-script-state=notRunning]"
NAV = "[data-testid=stSidebarNav]"
EXCEPTION = "[data-testid=stException]"
STEP_MS = 60_000
VIEWPORT = {"width": 1400, "height": 900}
PASSWORD = "load-test-pass-1"
APPS = ("A", "B")
# The 18 service users, dealt to app A and app B in turn.
SERVICE_ROLES = ("editor",) * 8 + ("importer",) * 5 + ("sender",) * 5
# Seconds between one operation and the next: people read, type and think; composing a
# campaign takes longer than saving a field.
THINK_S = {"editor": (0.5, 2.0), "importer": (2.0, 5.0), "sender": (3.0, 8.0)}
HOT_PEOPLE = 25
SHARED_PEOPLE = 300
EXISTING_FOR_IMPORT = 400
AUDIENCE_EACH = 350
LOG_PROBLEMS = ("database is locked", "deadlock detected", "Traceback")
RESULTS_FILE = report.RESULTS_DIR / "team_load.json"
OUTBOX_IN_MESSAGE_ID = re.compile(r"\.crm(\d+)@")


def say(message: str) -> None:
    """Progress goes to standard error; the figures go to standard output."""
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.team_load", description=__doc__)
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of work (90)")
    parser.add_argument("--candidates", type=int, default=3000, help="demo size (3000)")
    parser.add_argument("--drain", type=float, default=90.0, help="max s to drain mail (90)")
    parser.add_argument("--seed", type=int, default=9, help="what users do is seeded (9)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("CRM_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="a database on the server to create the scratch database from",
    )
    parser.add_argument("--keep", action="store_true", help="keep the logs (not the database)")
    return parser.parse_args(argv)


# --- the scratch database -----------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    return make_url(base).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch_database(base: str, name: str) -> Any:
    """CREATE DATABASE name, yield its URL, always DROP it (WITH FORCE: a hung client)."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except DBAPIError as error:
        admin.dispose()
        where = make_url(base).render_as_string(hide_password=True)
        reason = (str(error.orig).strip().splitlines() or ["no answer"])[0]
        raise processes.BenchmarkError(
            f"cannot create a database through {where} ({reason}); "
            "set CRM_TEST_POSTGRES_URL or --postgres-url"
        ) from None
    try:
        yield database_url(base, name)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def deadlocks(base: str, name: str) -> int:
    """PostgreSQL's count of deadlocks it broke in this database."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT deadlocks FROM pg_stat_database WHERE datname = :name"),
                {"name": name},
            ).scalar()
        return int(found or 0)
    finally:
        admin.dispose()


# --- the SMTP sink ------------------------------------------------------------------------


class SinkHandler:
    """Accepts every message and counts its Message-ID."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        with self.lock:
            self.ids[(headers.get("Message-ID") or "").strip()] += 1
        return "250 OK"

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.ids)


# --- setup --------------------------------------------------------------------------------


@dataclass
class Setup:
    users: list[dict[str, Any]]
    browser_users: dict[str, str]  # app -> username
    hot: list[int]
    note_targets: list[int]
    existing_emails: list[str]


def prepare(engine: Engine, seed: int) -> Setup:
    """The load users, and which people each kind of work is aimed at."""
    from crm import auth
    from crm.models import Candidate, OutboxMessage

    rng = random.Random(seed)
    accounts = [
        auth.create_user(
            engine,
            username=f"load{n:02d}",
            role="recruiter",
            password=PASSWORD,
            display_name=f"Load user {n:02d}",
            as_operator=True,
        )
        for n in range(1, 3 + len(SERVICE_ROLES))
    ]
    with engine.connect() as connection:
        # People nobody has written to: a campaign may take them without the frequency
        # cap or another sequence getting in the way.
        never_mailed = ~Candidate.id.in_(
            select(OutboxMessage.candidate_id).where(OutboxMessage.candidate_id.is_not(None))
        )
        eligible = list(
            connection.scalars(
                select(Candidate.id)
                .where(
                    never_mailed,
                    Candidate.email_normalized.is_not(None),
                    Candidate.unsubscribed_at.is_(None),
                    Candidate.consent_status != "do_not_contact",
                )
                .order_by(Candidate.id)
            )
        )
        others = list(
            connection.execute(
                select(Candidate.id, Candidate.email_normalized)
                .where(Candidate.email_normalized.is_not(None))
                .order_by(Candidate.id)
            )
        )
    rng.shuffle(eligible)
    senders = SERVICE_ROLES.count("sender")
    if len(eligible) < HOT_PEOPLE + senders * AUDIENCE_EACH:
        raise processes.BenchmarkError(f"only {len(eligible)} people can be mailed; use more")
    # The hot people are also in campaigns: the workers touch them while editors save.
    hot = eligible[:HOT_PEOPLE]
    audiences = [eligible[n * AUDIENCE_EACH : (n + 1) * AUDIENCE_EACH] for n in range(senders)]
    in_use = set(eligible[: senders * AUDIENCE_EACH])
    spare = [email for cid, email in others if cid not in in_use]
    existing_emails = rng.sample(spare, EXISTING_FOR_IMPORT)
    users: list[dict[str, Any]] = []
    sender_number = 0
    for number, role in enumerate(SERVICE_ROLES):
        account = accounts[2 + number]
        spec: dict[str, Any] = {
            "name": account.username,
            "user_id": account.id,
            "role": role,
            "app": APPS[number % 2],
            "seed": seed * 1000 + number,
            "think_s": THINK_S[role],
        }
        if role == "sender":
            spec["audience"] = audiences[sender_number]
            sender_number += 1
        users.append(spec)
    return Setup(
        users=users,
        browser_users={APPS[0]: accounts[0].username, APPS[1]: accounts[1].username},
        hot=hot,
        note_targets=hot + eligible[-HOT_PEOPLE:],
        existing_emails=existing_emails,
    )


# --- the browser users --------------------------------------------------------------------


class PageBroke(Exception):
    """A page showed an exception."""


@dataclass
class BrowserUser:
    """One person in Chromium on one app process; every save is recorded for the checks."""

    app: str
    url: str
    username: str
    folder: Path
    ops: list[Op] = field(default_factory=list)
    page: Any = None

    @property
    def name(self) -> str:
        return f"browser-{self.app.lower()}"

    async def settled(self) -> None:
        await self.page.wait_for_selector(SETTLED, timeout=STEP_MS)
        if await self.page.locator(EXCEPTION).count():
            raise PageBroke(await self.page.locator(EXCEPTION).first.inner_text())

    async def sign_in(self, browser: Any) -> None:
        context = await browser.new_context(viewport=VIEWPORT)
        self.page = await context.new_page()
        await self.page.goto(self.url)
        await self.page.get_by_label("Username").wait_for(timeout=STEP_MS)
        await self.page.get_by_label("Username").fill(self.username)
        await self.page.get_by_label("Password", exact=True).fill(PASSWORD)
        await self.page.get_by_role("button", name="Sign in").click()
        await self.page.wait_for_selector(NAV, timeout=STEP_MS)
        await self.settled()

    async def open_page(self, title: str, heading: str) -> float:
        started = time.perf_counter()
        await self.page.locator(NAV).get_by_role("link", name=title, exact=True).click()
        await self.page.locator("h1", has_text=heading).first.wait_for(timeout=STEP_MS)
        await self.settled()
        return time.perf_counter() - started

    async def create(self, first: str, last: str, email: str) -> float:
        page = self.page
        await page.get_by_role("button", name="Add candidate").click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("First name").fill(first)
        await dialog.get_by_label("Last name").fill(last)
        await dialog.get_by_label("Email").fill(email)
        started = time.perf_counter()
        await dialog.get_by_role("button", name="Add candidate").click()
        await page.get_by_text(f"Added {first} {last}.", exact=True).wait_for(timeout=STEP_MS)
        await self.settled()
        return time.perf_counter() - started

    async def open_profile(self, email: str, heading: str) -> float:
        """Search for one person, tick their row in the table, press Open profile."""
        page = self.page
        search = page.get_by_role("textbox", name="Search")
        started = time.perf_counter()
        await search.fill(email)
        await search.press("Enter")
        await page.get_by_text("1–1 of 1 candidates").wait_for(timeout=STEP_MS)
        await self.settled()
        # The table is a canvas: tick the first row's selection box (under the header).
        box = await page.locator("[data-testid=stDataFrame]").bounding_box()
        await page.mouse.click(box["x"] + 20, box["y"] + 35 + 17)
        opener = page.get_by_role("button", name="Open profile")
        await opener.wait_for(timeout=STEP_MS)
        await self.settled()
        await opener.click()
        await page.locator("h1", has_text=heading).first.wait_for(timeout=STEP_MS)
        await self.settled()
        return time.perf_counter() - started

    async def save_title(self, title: str) -> float:
        page = self.page
        await page.get_by_label("Title", exact=True).fill(title)
        started = time.perf_counter()
        await page.get_by_role("button", name="Save changes").click()
        await page.get_by_text("Saved.", exact=True).wait_for(timeout=STEP_MS)
        await self.settled()
        return time.perf_counter() - started

    async def log_note(self, note: str) -> float:
        page = self.page
        await page.get_by_role("tab", name="Timeline").click()
        await page.locator("textarea[aria-label='Note']").fill(note)
        started = time.perf_counter()
        await page.get_by_role("button", name="Log it").click()
        await page.get_by_text("Logged on the timeline.", exact=True).wait_for(timeout=STEP_MS)
        await self.settled()
        return time.perf_counter() - started

    async def run(self, start_at: float, deadline: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # the common start line
        cycle = 0
        while time.time() < deadline:
            cycle += 1
            first, last = f"Browser{self.app}", f"Person{cycle}"
            email = f"{self.name}-{cycle}@{SHARED_DOMAIN}"
            title = f"{self.name} title {cycle}"
            note = f"{self.name} note {cycle}"
            other = (("Home", "Good"), ("Campaigns", "Campaigns"))[cycle % 2]
            steps: list[tuple[str, Any, dict[str, Any]]] = [
                ("browser page", partial(self.open_page, "Candidates", "Candidates"), {}),
                ("browser create", partial(self.create, first, last, email), {"email": email}),
                ("browser page", partial(self.open_profile, email, f"{first} {last}"), {}),
                ("browser edit", partial(self.save_title, title), {"email": email, "title": title}),
                ("browser note", partial(self.log_note, note), {"email": email, "note": note}),
                ("browser page", partial(self.open_page, *other), {}),
            ]
            for kind, step, detail in steps:
                if time.time() >= deadline:
                    return
                op = Op(self.name, self.app, kind, "done", 0.0, detail=detail)
                try:
                    op.seconds = await step()
                except Exception as error:  # Playwright's errors, or a page's exception
                    op.outcome, op.error = "failed", f"{type(error).__name__}: {error}"[:500]
                    say(f"[{self.name}] {kind} failed: {op.error}")
                    self.ops.append(op)
                    await self.recover(cycle)
                    break
                self.ops.append(op)

    async def recover(self, cycle: int) -> None:
        """After a failure: a screenshot for the report, then a fresh load (cookie sign-in)."""
        with contextlib.suppress(Exception):
            await self.page.screenshot(path=str(self.folder / f"{self.name}-{cycle}.png"))
        with contextlib.suppress(Exception):
            await self.page.goto(self.url)
            await self.page.wait_for_selector(NAV, timeout=STEP_MS)
            await self.settled()


# --- running everyone ---------------------------------------------------------------------


async def work(
    urls: dict[str, str],
    setup: Setup,
    plan_base: dict[str, Any],
    env: dict[str, str],
    folder: Path,
    duration: float,
) -> tuple[list[Op], dict[str, Any]]:
    """Sign the browser users in, start the stand-ins, let everyone work until the deadline."""
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        raise processes.BenchmarkError(f"{CHROMIUM} is missing; `make chromium` installs it.")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            people = [BrowserUser(app, urls[app], setup.browser_users[app], folder) for app in APPS]
            await asyncio.gather(*(person.sign_in(browser) for person in people))
            start_at = time.time() + 5  # the stand-ins import crm meanwhile
            deadline = start_at + duration
            plan = {**plan_base, "start_at": start_at, "deadline": deadline}
            (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
            stand_ins = [start_stand_in(app, folder, env) for app in APPS]
            try:
                await asyncio.gather(*(person.run(start_at, deadline) for person in people))
                ops = [op for person in people for op in person.ops]
                for app, process in zip(APPS, stand_ins, strict=True):
                    ops += await asyncio.to_thread(finish_stand_in, app, process, folder, deadline)
            finally:
                for process in stand_ins:
                    processes.stop(process)
        finally:
            await browser.close()
    timing = {"started": start_at, "deadline": deadline, "ended": time.time()}
    return ops, timing


def start_stand_in(app: str, folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with (folder / f"users-{app}.log").open("wb") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.team_load_users",
                "--plan",
                str(folder / "plan.json"),
                "--app",
                app,
                "--out",
                str(folder / f"ops-{app}.json"),
            ],
            env=env,
            cwd=processes.PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish_stand_in(
    app: str, process: subprocess.Popen[bytes], folder: Path, deadline: float
) -> list[Op]:
    """Wait for a stand-in (an operation under way at the deadline finishes), read its ops."""
    try:
        process.wait(timeout=max(0.0, deadline - time.time()) + 120)
    except subprocess.TimeoutExpired as error:
        raise processes.BenchmarkError(f"the users of app {app} did not stop in time") from error
    if process.returncode != 0:
        raise processes.BenchmarkError(
            f"the users of app {app} exited {process.returncode}:\n"
            f"{processes.tail(folder / f'users-{app}.log')}"
        )
    data = json.loads((folder / f"ops-{app}.json").read_text(encoding="utf-8"))
    return [Op(**entry) for entry in data]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "crm.cli", "send"],
            env=env,
            cwd=processes.PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def drain(
    engine: Engine, campaign_ids: list[int], sink: SinkHandler, since: dt.datetime, limit: float
) -> float:
    """Wait until the launched mail is out and the sink holds every message sent since."""
    from crm.models import OutboxMessage

    started = time.monotonic()
    while time.monotonic() - started < limit:
        with engine.connect() as connection:
            waiting = connection.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.campaign_id.in_(campaign_ids or [0]),
                    OutboxMessage.status.in_(("queued", "sending")),
                )
            )
            sent = connection.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.sent_at >= since, OutboxMessage.message_id.is_not(None))
            )
        if not waiting and sum(sink.snapshot().values()) >= (sent or 0):
            break
        time.sleep(0.5)  # polling the database, not a browser
    return time.monotonic() - started


# --- the checks ---------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    problems: list[str] = field(default_factory=list)


def done(ops: list[Op], *kinds: str) -> list[Op]:
    return [op for op in ops if op.kind in kinds and op.outcome == "done"]


def check_edits(engine: Engine, ops: list[Op], setup: Setup) -> list[Check]:
    """Every saved edit is in the history once, each built on the last; titles end there."""
    from crm.models import Activity, Candidate

    saved = done(ops, "edit", "browser edit")
    with engine.connect() as connection:
        emails = [op.detail["email"] for op in saved if "email" in op.detail]
        by_email = dict(
            connection.execute(
                select(Candidate.email_normalized, Candidate.id).where(
                    Candidate.email_normalized.in_(emails or [""])
                )
            ).all()
        )
        ids = set(setup.hot) | set(by_email.values())
        history = connection.execute(
            select(Activity.id, Activity.candidate_id, Activity.details)
            .where(Activity.kind == "edit", Activity.candidate_id.in_(ids))
            .order_by(Activity.candidate_id, Activity.id)
        ).all()
        titles = dict(
            connection.execute(
                select(Candidate.id, Candidate.title).where(Candidate.id.in_(ids))
            ).all()
        )
    written: Counter[str] = Counter()
    chains: dict[int, list[tuple[Any, Any]]] = defaultdict(list)
    for _id, candidate_id, details in history:
        change = ((details or {}).get("changes") or {}).get("title")
        if change:
            written[change[1]] += 1
            chains[candidate_id].append((change[0], change[1]))
    lost = [op.detail["title"] for op in saved if written[op.detail["title"]] == 0]
    twice = [op.detail["title"] for op in saved if written[op.detail["title"]] > 1]
    broken = [
        f"candidate {cid}: {before!r} then an edit from {old!r}"
        for cid, chain in chains.items()
        for (_, before), (old, _) in zip(chain, chain[1:], strict=False)
        if old != before
    ]
    stale = [
        f"candidate {cid}: title {titles.get(cid)!r}, last saved {chain[-1][1]!r}"
        for cid, chain in chains.items()
        if titles.get(cid) != chain[-1][1]
    ]
    return [
        Check(
            "edits: every save is in the history once",
            not lost and not twice,
            f"{len(saved)} saves, {len(lost)} missing, {len(twice)} twice",
            [f"missing {title!r}" for title in lost] + [f"twice {title!r}" for title in twice],
        ),
        Check(
            "edits: no lost update (each edit from the version before, last one shown)",
            not broken and not stale,
            f"{sum(len(chain) for chain in chains.values())} title changes on {len(chains)} "
            f"people, {len(broken)} out of order, {len(stale)} not showing the last",
            broken + stale,
        ),
    ]


def check_notes(engine: Engine, ops: list[Op]) -> Check:
    from crm.models import Activity

    logged = done(ops, "note", "browser note")
    markers = [op.detail["note"] for op in logged]
    with engine.connect() as connection:
        found = Counter(
            dict(
                connection.execute(
                    select(Activity.summary, func.count())
                    .where(Activity.summary.in_(markers or [""]))
                    .group_by(Activity.summary)
                ).all()
            )
        )
    problems = [f"{marker!r} {found[marker]} times" for marker in markers if found[marker] != 1]
    return Check(
        "notes: every note logged is on the timeline once",
        not problems,
        f"{len(markers)} notes, {len(problems)} missing or repeated",
        problems,
    )


def check_people(engine: Engine, ops: list[Op]) -> list[Check]:
    """Added and imported people present once; rolled-back files left nothing of their own."""
    from crm.models import Candidate, ImportBatch

    added = done(ops, "create", "browser create")
    refused = [op for op in ops if op.kind == "create" and op.outcome == "refused"]
    imports = [op for op in ops if op.kind == "import" and op.detail.get("keys")]
    with engine.connect() as connection:
        key = func.lower(func.trim(Candidate.email))
        doubled = connection.execute(
            select(key, func.count())
            .where(Candidate.email.is_not(None))
            .group_by(key)
            .having(func.count() > 1)
        ).all()
        present = Counter(dict(connection.execute(select(key, func.count()).group_by(key)).all()))
        batches = dict(
            connection.execute(
                select(ImportBatch.id, ImportBatch.created_count).where(
                    ImportBatch.filename.like("load-%")
                )
            ).all()
        )
        imported = dict(
            connection.execute(
                select(Candidate.import_batch_id, func.count())
                .where(Candidate.import_batch_id.in_(list(batches) or [0]))
                .group_by(Candidate.import_batch_id)
            ).all()
        )
    people: list[str] = []
    for op in added + refused:
        email = op.detail["email"].strip().lower()
        if present[email] != 1:
            people.append(f"{op.kind} {email}: {present[email]} records")
    rows: list[str] = []
    for op in imports:
        if op.outcome == "done":
            rows += [f"{op.detail['filename']}: {k} {present[k]}x" for k in op.detail["keys"]
                     if present[k] != 1]  # fmt: skip
            counted = sum(op.detail[n] for n in ("created", "updated", "duplicates", "errors"))
            if counted != op.detail["read"]:
                rows.append(f"{op.detail['filename']}: {counted} outcomes for {op.detail['read']}")
        else:
            rows += [f"{op.detail['filename']} (not imported): {k} present" for k in
                     op.detail["own"] if present[k]]  # fmt: skip
    imported_ok = [op for op in imports if op.outcome == "done"]
    distinct = sum(len(op.detail["keys"]) for op in imported_ok)
    batch_problems = []
    if len(batches) != len(imported_ok):
        batch_problems.append(f"{len(batches)} batches for {len(imported_ok)} imports")
    for batch_id, created in batches.items():
        if imported.get(batch_id, 0) != created:
            batch_problems.append(f"batch {batch_id}: {created} created, {imported.get(batch_id)}")
    return [
        Check(
            "no duplicate: no two candidates share an email (lower case, trimmed)",
            not doubled,
            f"{len(doubled)} emails held by more than one candidate",
            [f"{email}: {count}" for email, count in doubled],
        ),
        Check(
            "people added by hand are present once",
            not people,
            f"{len(added)} added, {len(refused)} refused as already there, {len(people)} wrong",
            people,
        ),
        Check(
            "imported rows are present once; files rolled back left nothing",
            not rows and not batch_problems,
            f"{len(imported_ok)} files imported ({distinct} distinct emails), "
            f"{len(imports) - len(imported_ok)} not, "
            f"{len(rows) + len(batch_problems)} problems",
            rows + batch_problems,
        ),
    ]


def check_mail(
    engine: Engine, ops: list[Op], sink: Counter[str], since: dt.datetime, workers: dict[int, str]
) -> tuple[list[Check], dict[str, Any]]:
    """Every launched message sent once; the sink got each Message-ID once, and no other."""
    from crm.models import OutboxMessage

    launched = done(ops, "send")
    ids = [op.detail["campaign_id"] for op in launched]
    expected = sum(op.detail["messages"] for op in launched)
    with engine.connect() as connection:
        statuses = Counter(
            dict(
                connection.execute(
                    select(OutboxMessage.status, func.count())
                    .where(OutboxMessage.campaign_id.in_(ids or [0]))
                    .group_by(OutboxMessage.status)
                ).all()
            )
        )
        ours = list(
            connection.scalars(
                select(OutboxMessage.message_id).where(
                    OutboxMessage.campaign_id.in_(ids or [0]), OutboxMessage.status == "sent"
                )
            )
        )
        # Everything any worker sent during the run (the demo's due messages too).
        sent_now = list(
            connection.scalars(
                select(OutboxMessage.message_id).where(
                    OutboxMessage.sent_at >= since, OutboxMessage.message_id.is_not(None)
                )
            )
        )
        by_worker = connection.execute(
            select(OutboxMessage.leased_by, func.count())
            .where(OutboxMessage.sent_at >= since, OutboxMessage.status == "sent")
            .group_by(OutboxMessage.leased_by)
        ).all()
    # leased_by is host:pid:thread; the pid says which `crm send` claimed the message.
    per_worker: Counter[str] = Counter()
    for holder, count in by_worker:
        pid = (holder or "").split(":")[1] if (holder or "").count(":") >= 2 else ""
        per_worker[workers.get(int(pid), holder) if pid.isdigit() else str(holder)] += count
    received = sum(sink.values())
    problems = [f"{mid} received {sink[mid]} times" for mid in sent_now if sink[mid] != 1]
    problems += [f"{mid} received but no message sent has it" for mid in set(sink) - set(sent_now)]
    problems += [f"{mid} sent twice in the outbox" for mid, n in Counter(sent_now).items() if n > 1]
    # A second send of one outbox row would carry a new Message-ID; each names its row
    # (crm.mailer.new_message_id: "...crm<outbox id>@domain"), so count rows too.
    rows: Counter[str] = Counter()
    for mid, count in sink.items():
        found = OUTBOX_IN_MESSAGE_ID.search(mid)
        rows[found.group(1) if found else mid] += count
    problems += [f"outbox row {row} received {n} times" for row, n in rows.items() if n > 1]
    unsent = [f"{status}: {count}" for status, count in statuses.items() if status != "sent"]
    figures = {
        "campaigns_launched": len(launched),
        "messages_queued": expected,
        "outbox_status": dict(statuses),
        "sent_during_run": len(sent_now),
        "sink_received": received,
        "sink_distinct_ids": len(sink),
        "sink_distinct_outbox_rows": len(rows),
        "sent_per_worker": dict(sorted(per_worker.items())),
    }
    return [
        Check(
            "sending: every launched message sent once",
            sum(statuses.values()) == expected and not unsent and len(ours) == expected,
            f"{len(launched)} campaigns, {expected} messages queued, {len(ours)} sent",
            unsent,
        ),
        Check(
            "SMTP sink: each Message-ID and outbox row received once, none unknown",
            not problems,
            f"{received} received, {len(sink)} distinct ids for {len(rows)} outbox rows, "
            f"{len(sent_now)} sent by the workers",
            problems,
        ),
    ], figures


def scan_logs(folder: Path) -> Check:
    problems = []
    for log in sorted(folder.glob("*.log")):
        content = log.read_text(errors="replace")
        problems += [f"{log.name}: {content.count(p)}x {p!r}" for p in LOG_PROBLEMS if p in content]
    return Check(
        "logs: no 'database is locked', deadlock or traceback",
        not problems,
        f"{len(list(folder.glob('*.log')))} logs scanned (2 servers, 2 workers, 2 stand-ins)",
        problems,
    )


def check_ops(ops: list[Op]) -> list[Check]:
    failed = [f"{op.user} {op.kind}: {op.error}" for op in ops if op.outcome == "failed"]
    browser = []
    for app in APPS:
        for kind in ("browser create", "browser edit", "browser note"):
            if not any(op.app == app and op.kind == kind and op.outcome == "done" for op in ops):
                browser.append(f"app {app}: no {kind}")
    return [
        Check(
            "no operation failed unexpectedly",
            not failed,
            f"{len(ops)} operations, {len(failed)} failed",
            failed,
        ),
        Check(
            "both app processes saved through their forms in the browser",
            not browser,
            "create, edit and note done in Chromium on app A and app B" if not browser else "",
            browser,
        ),
    ]


# --- figures ------------------------------------------------------------------------------


def percentile(samples: list[float], share: float) -> float | None:
    if not samples:
        return None
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[round(share * 100) - 1]


def figures(ops: list[Op]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        kinds[op.kind].append(op)
    table = {}
    for kind in sorted(kinds):
        seconds = [op.seconds for op in kinds[kind] if op.outcome == "done"]
        p50, p95 = percentile(seconds, 0.5), percentile(seconds, 0.95)
        table[kind] = {
            "done": len(seconds),
            "refused": sum(op.outcome == "refused" for op in kinds[kind]),
            "failed": sum(op.outcome == "failed" for op in kinds[kind]),
            "conflicts_retried": sum(op.conflicts for op in kinds[kind]),
            "p50_s": None if p50 is None else round(p50, 3),
            "p95_s": None if p95 is None else round(p95, 3),
        }
    return table


def print_report(table: dict[str, dict[str, Any]], checks: list[Check], results: dict) -> None:
    print(
        f"Team load: 20 users ({len(SERVICE_ROLES)} through the services, 2 in Chromium) on 2 "
        f"app processes and 2 send workers, PostgreSQL, {results['duration_s']:.0f} s of work "
        f"on {results['candidates']:,} demo candidates\n"
    )
    header = (
        f"{'kind':<16} {'done':>6} {'refused':>8} {'failed':>7} {'conflicts':>10} "
        f"{'p50 s':>7} {'p95 s':>7}"
    )
    print(header)
    print("-" * len(header))
    for kind, row in table.items():
        p50 = "-" if row["p50_s"] is None else f"{row['p50_s']:.2f}"
        p95 = "-" if row["p95_s"] is None else f"{row['p95_s']:.2f}"
        print(
            f"{kind:<16} {row['done']:>6} {row['refused']:>8} {row['failed']:>7} "
            f"{row['conflicts_retried']:>10} {p50:>7} {p95:>7}"
        )
    mail = results.get("mail", {})
    print(
        f"\nMail: {mail.get('campaigns_launched', 0)} campaigns launched, "
        f"{mail.get('messages_queued', 0)} messages, {mail.get('sink_received', 0)} received by "
        f"the sink ({mail.get('sent_during_run', 0)} sent during the run, demo mail included; "
        f"per worker {mail.get('sent_per_worker')}); "
        f"outbox empty {results.get('drain_s', 0):.1f} s after the users stopped; "
        f"PostgreSQL deadlocks: {results.get('deadlocks')}\n"
    )
    for check in checks:
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.summary}")
        for problem in check.problems[:10]:
            print(f"       {problem}")
        if len(check.problems) > 10:
            print(f"       ... and {len(check.problems) - 10} more")


# --- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace, folder: Path, results: dict[str, Any]) -> list[Check]:
    name = f"crm_load_{os.getpid()}"
    with scratch_database(args.postgres_url, name) as url:
        sink = SinkHandler()
        from aiosmtpd.controller import Controller

        smtp_port = processes.free_port()
        controller = Controller(
            sink, hostname="127.0.0.1", port=smtp_port, server_hostname="sink.load.example"
        )
        env = processes.crm_env(url, folder / "data")
        env.update(
            CRM_WORKER="off",
            CRM_SMTP_HOST="127.0.0.1",
            CRM_SMTP_PORT=str(smtp_port),
            CRM_SMTP_SECURITY="none",
            CRM_FROM="Fernwood Talent <talent@careers.example.com>",
            CRM_SEND_RATE="1000",
            CRM_PUBLIC_URL="https://crm.load.example",
            # Code fixed for the run, as deployed: edits in the tree meanwhile (a new
            # migration, say) must not reach the running servers through the file watcher.
            STREAMLIT_SERVER_FILE_WATCHER_TYPE="none",
        )
        say(f"Database {name}: crm init, crm demo --candidates {args.candidates}...")
        processes.run_crm("init", env=env)
        processes.run_crm("demo", "--candidates", str(args.candidates), env=env)

        from crm import db

        engine = db.create_engine_for(url)
        try:
            setup = prepare(engine, args.seed)
            plan_base = {
                "database_url": url,
                "users": setup.users,
                "hot": setup.hot,
                "note_targets": setup.note_targets,
                "existing_emails": setup.existing_emails,
                "shared_people": SHARED_PEOPLE,
            }
            since = dt.datetime.now(dt.UTC)
            controller.start()
            try:
                with contextlib.ExitStack() as stack:
                    say("Starting app A, app B and two `crm send` workers...")
                    urls = {
                        app: stack.enter_context(
                            processes.serve_crm(env, folder / f"serve-{app}.log")
                        )
                        for app in APPS
                    }
                    workers: dict[int, str] = {}
                    for number in (1, 2):
                        worker = start_worker(env, folder / f"send-{number}.log")
                        stack.callback(processes.stop, worker)
                        workers[worker.pid] = f"send-{number}"
                    say(f"20 users at work for {args.duration:.0f} s...")
                    ops, timing = asyncio.run(
                        work(urls, setup, plan_base, env, folder, args.duration)
                    )
                    launched = [op.detail["campaign_id"] for op in done(ops, "send")]
                    say("Draining the outbox...")
                    results["drain_s"] = round(drain(engine, launched, sink, since, args.drain), 1)
                # Every process has stopped: their logs are complete.
            finally:
                controller.stop()
            results["work_s"] = round(timing["ended"] - timing["started"], 1)
            table = figures(ops)
            checks = check_ops(ops)
            checks += check_edits(engine, ops, setup)
            checks.append(check_notes(engine, ops))
            checks += check_people(engine, ops)
            mail_checks, results["mail"] = check_mail(engine, ops, sink.snapshot(), since, workers)
            checks += mail_checks
            checks.append(scan_logs(folder))
            results["deadlocks"] = deadlocks(args.postgres_url, name)
            checks.append(
                Check(
                    "PostgreSQL broke no deadlock",
                    results["deadlocks"] == 0,
                    f"pg_stat_database.deadlocks = {results['deadlocks']}",
                )
            )
        finally:
            engine.dispose()
    results["operations"] = table
    results["checks"] = [asdict(check) for check in checks]
    print_report(table, checks, results)
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": args.duration,
        "candidates": args.candidates,
        "users": {"browser": len(APPS), "service": dict(Counter(SERVICE_ROLES))},
        "environment": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_before": list(os.getloadavg()),
        },
    }
    folder = Path(tempfile.mkdtemp(prefix="crm-team-load-"))
    code = 0
    try:
        checks = run(args, folder, results)
        code = 0 if all(check.ok for check in checks) else 1
    except processes.BenchmarkError as error:
        say(f"\nLoad test failed: {error}")
        results["error"] = str(error)
        code = 1
    except Exception as error:
        say(f"\nLoad test failed unexpectedly:\n{traceback.format_exc()}")
        results["error"] = f"{type(error).__name__}: {error}"
        code = 1
    finally:
        if args.keep or code:
            say(f"Logs kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    results["environment"]["load_average_after"] = list(os.getloadavg())
    results["total_s"] = round(time.monotonic() - started, 1)
    results["passed"] = code == 0
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results), file=sys.stderr)
    say(f"\nTotal {results['total_s']:.0f} s; results in {RESULTS_FILE}")
    return code


if __name__ == "__main__":
    sys.exit(main())
