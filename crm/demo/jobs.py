"""The demo's hiring: a year of jobs, their applications from first touch to outcome, and
what the hiring cost.

The year is shaped for the guide's goals: key tech roles fill faster as it goes on, more
hires come from talent pools, and fewer offers are declined (spread evenly, by error
diffusion, so the trend shows in any period). Costs come in the team's currencies.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from crm import money
from crm.demo.vocabulary import FAMILIES, FIRST_NAMES, LAST_NAMES, title
from crm.demo.world import World, add_months, cumulative, insert_rows, moment, to_money
from crm.models import Application, Cost, Job, Pool, Setting

HIRING_MANAGERS = {
    "Software Engineering": ("Grace Hopkins", "Tomasz Wójcik", "Aditi Rao"),
    "Data & Analytics": ("Helena Björk", "Marcus Oyelaran"),
    "Product": ("Rachel Nakamura", "Ben Carter"),
    "Design": ("Isla Fraser",),
    "DevOps & Cloud": ("Samir Haddad", "Kate Doyle"),
    "Sales": ("Luis Ortega", "Fiona McAllister"),
    "Marketing": ("Chloé Martin",),
    "People & Talent": ("Nia Thompson",),
}
JOB_LOCATIONS = ("London", "London", "London", "Berlin", "Amsterdam", "Lisbon", "Remote (Europe)")
# A London team counting in pounds, paying its EU offices' ads in euros and its US tools in
# dollars (crm.money). Kept when the team has set its own: the demo then uses what it counts.
DEMO_MONEY = {"currency": "GBP", "rates": {"EUR": "0.85", "USD": "0.79"}}
EURO_OFFICES = ("Berlin", "Amsterdam", "Lisbon")
JOB_BOARDS = ("LinkedIn Jobs", "Indeed", "Otta", "Welcome to the Jungle", "Glassdoor")
AGENCIES = ("Northbridge Talent", "Apex Search Partners", "Clearwater Recruitment")
APPLICATION_STAMPS = (
    "sourced_at",
    "applied_at",
    "screen_at",
    "interview_at",
    "offer_at",
    "hired_at",
    "rejected_at",
    "withdrew_at",
    "offer_decided_at",
)


def create_jobs(world: World, session: Session) -> None:
    """About 3.5 jobs a month over the year, their applications and the year's costs."""
    rng = world.rng
    today = world.today
    # Twelve months of hiring, reaching back far enough to give the "by year end" goal
    # a baseline (the second half of last year).
    window_start = min(today - dt.timedelta(days=365), dt.date(today.year - 1, 5, 1))
    span = (today - window_start).days
    job_count = max(12, round(span / 30.4 * 3.5))
    family_weights = cumulative((30, 15, 9, 7, 11, 12, 9, 7))
    level_weights = (2, 4, 5, 3, 1)
    levels = ("junior", "mid", "senior", "lead", "principal")
    jobs: list[tuple[Job, float, int]] = []
    closed_slots = {round(job_count * 0.22), round(job_count * 0.55)}
    for index in range(job_count):
        opened = window_start + dt.timedelta(days=int((index + rng.random()) * span / job_count))
        progress = (opened - window_start).days / span
        family = rng.choices(FAMILIES, cum_weights=family_weights)[0]
        level = rng.choices(levels, level_weights)[0]
        key_role = family.tech and level in {"senior", "lead", "principal"}
        # Key tech roles get faster over the year (the time-to-hire goal's trend).
        days = 66 - 26 * progress + rng.uniform(-4, 4) if key_role else rng.uniform(22, 60)
        days = int(min(70, max(20, days)))
        filled_on = opened + dt.timedelta(days=days + 1)
        if index in closed_slots:
            status = "closed"
        elif filled_on < today:
            status = "filled"
        else:
            status = "on_hold" if rng.random() < 0.1 else "open"
        job = Job(
            title=title(rng, family, 0, level),
            role_family=family.name,
            key_role=key_role,
            hiring_manager=rng.choice(HIRING_MANAGERS[family.name]),
            location=rng.choice(JOB_LOCATIONS),
            opened_at=opened,
            filled_at=filled_on if status == "filled" else None,
            status=status,
            created_at=moment(opened, 8, rng.randint(0, 59)),
            updated_at=moment(filled_on if status == "filled" else opened, 17),
        )
        session.add(job)
        jobs.append((job, progress, days))
    session.flush()

    hiring = _Hiring(world, _demo_money(session))
    for job, progress, days in jobs:
        hiring.job_applications(job, progress, days)
    hiring.monthly_costs(window_start)
    hiring.hire_costs([job for job, _, _ in jobs])
    applications, costs = hiring.applications, hiring.costs
    for cost in costs:  # one insert for all rows: every row names every column
        cost.setdefault("category_label", None)
    insert_rows(session, Application.__table__, applications)
    insert_rows(session, Cost.__table__, costs)
    world.counts["jobs"] = len(jobs)
    world.counts["applications"] = len(applications)


def _demo_money(session: Session) -> money.TeamMoney:
    """The team's currency and rates: DEMO_MONEY unless the team has set its own."""
    if session.get(Setting, money.MONEY_KEY) is None:
        session.add(Setting(key=money.MONEY_KEY, value=DEMO_MONEY))
        session.flush()
    return money.team_money_in(session)


class _Hiring:
    """Applications and costs of every job, drawn in job order from the demo's numbers."""

    def __init__(self, world: World, team: money.TeamMoney) -> None:
        self.rng = world.rng
        self.today = world.today
        self.now = world.now
        self.by_family = world.by_family
        self.campaigns = world.campaigns
        self.pools = world.pools
        self.team = team
        self.applications: list[dict[str, Any]] = []
        self.costs: list[dict[str, Any]] = []
        # Error diffusion: shares of a hire from a pool, of a declined offer, carried over.
        self.credit = {"pool": 0.5, "decline": 0.5}

    def pick_candidate(self, family: str, before: dt.datetime, taken: set[int]) -> int | None:
        """Someone of the family (or, failing that, anyone) on file a week before `before`."""
        rng = self.rng
        before -= dt.timedelta(days=7)  # sourcing starts up to six days before applying
        pool = self.by_family[family]
        for attempt in range(40):
            source = pool if attempt < 25 and pool else self.by_family[rng.choice(FAMILIES).name]
            if not source:
                continue
            cid, created = rng.choice(source)
            if cid not in taken and created < before:
                taken.add(cid)
                return cid
        return None

    def pick_source(self, family: str, share: float, at: dt.datetime) -> tuple[str, str | None]:
        """An application source; share is the chance of a talent pool or campaign source."""
        rng = self.rng
        if rng.random() < share:
            campaign_key = {
                "Software Engineering": "backend",
                "Data & Analytics": "data",
                "Sales": "sales",
            }.get(family)
            campaign = self.campaigns.get(campaign_key or "")
            launched = campaign.launched_at if campaign else None
            if launched is not None and launched + dt.timedelta(days=2) < at and rng.random() < 0.4:
                return "campaign", campaign_key
            return "talent_pool", None
        source = rng.choices(
            ("referral", "job_board", "career_site", "agency", "direct"), (25, 27, 22, 12, 8)
        )[0]
        return source, None

    def pool_for(self, family: str) -> Pool:
        rng = self.rng
        if rng.random() < 0.2:
            return self.pools["silver"]
        key = {
            "Software Engineering": "backend",
            "Data & Analytics": "data",
            "DevOps & Cloud": "aws",
            "Sales": "sales",
        }.get(family, "london")
        return self.pools[key]

    def job_applications(self, job: Job, progress: float, days: int) -> None:
        """The job's applications: its hire (if filled), declined offers, an offer still
        out, and everyone else who applied or was sourced for it."""
        rng = self.rng
        family = job.role_family or FAMILIES[0].name
        opened = moment(job.opened_at, 9)
        taken: set[int] = set()
        filled = job.status == "filled"
        closed = job.status == "closed"
        fill_at = opened + dt.timedelta(days=days, hours=rng.randint(1, 7))
        # Close date of the process (fill or cancellation); open jobs run until now.
        end = fill_at if filled else (opened + dt.timedelta(days=days * 0.8) if closed else None)
        horizon = end or self.now

        self.costs.append(
            {
                "job_id": job.id,
                "incurred_on": job.opened_at,
                "category": "job_ads",
                "amount": to_money(rng.uniform(250, 900)),
                "currency": self.currency_of(job.location),
                "note": f"Job board ads: {job.title}",
            }
        )

        def new_row(cid: int, source: str, campaign_key: str | None) -> dict[str, Any]:
            pool_id = campaign_id = None
            detail = None
            if source == "campaign" and campaign_key:
                campaign = self.campaigns[campaign_key]
                campaign_id, pool_id = campaign.id, campaign.audience_pool_id
                detail = campaign.name
            elif source == "talent_pool":
                pool = self.pool_for(family)
                pool_id, detail = pool.id, pool.name
            elif source == "job_board":
                detail = rng.choice(JOB_BOARDS)
            elif source == "agency":
                detail = rng.choice(AGENCIES)
            elif source == "referral":
                detail = f"Referred by {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
            return {
                "external_id": None,
                "candidate_id": cid,
                "job_id": job.id,
                "source": source,
                "source_detail": detail,
                "pool_id": pool_id,
                "campaign_id": campaign_id,
                "stage": "applied",
                "sourced_at": None,
                "applied_at": None,
                "screen_at": None,
                "interview_at": None,
                "offer_at": None,
                "hired_at": None,
                "rejected_at": None,
                "withdrew_at": None,
                "offer_accepted": None,
                "offer_decided_at": None,
            }

        def finish(row: dict[str, Any]) -> None:
            stamps = [row[k] for k in APPLICATION_STAMPS if row[k] is not None]
            row["created_at"] = min(stamps)
            row["updated_at"] = max(stamps)
            self.applications.append(row)

        def offered(
            row: dict[str, Any], applied: dt.datetime, offer: dt.datetime, **outcome: Any
        ) -> None:
            """Applied, screened and interviewed on the way to an offer, then `outcome`."""
            row["applied_at"] = applied
            gap = offer - applied
            row.update(
                screen_at=applied + gap * rng.uniform(0.12, 0.3),
                interview_at=applied + gap * rng.uniform(0.45, 0.8),
                offer_at=offer,
                **outcome,
            )
            finish(row)

        def enter(row: dict[str, Any], at: dt.datetime) -> None:
            if row["source"] in {"talent_pool", "campaign"}:
                row["sourced_at"] = at - dt.timedelta(days=rng.uniform(1, 6))
                row["stage"] = "sourced"
                if at >= self.now:
                    return
            row["applied_at"] = at
            row["stage"] = "applied"

        def applicant(at: dt.datetime) -> dict[str, Any] | None:
            """Someone on file in time, entering the process at `at` from some source."""
            cid = self.pick_candidate(family, at, taken)
            if cid is None:
                return None
            source, campaign_key = self.pick_source(family, 0.2 + 0.12 * progress, at)
            row = new_row(cid, source, campaign_key)
            enter(row, at)
            return row

        total = rng.randint(8, 25)
        # The hire, and offers declined on the way to it.
        if filled:
            pool_share = 0.10 + 0.28 * progress
            if job.key_role:
                pool_share += 0.05
            offer_at = fill_at - dt.timedelta(days=rng.uniform(2, 5))
            applied = opened + dt.timedelta(days=rng.uniform(3, 9))
            # Spread pool hires evenly over time (error diffusion) so the rising share shows
            # in any period instead of drowning in the noise of a few dozen hires.
            self.credit["pool"] += pool_share
            from_pool = self.credit["pool"] >= 1
            self.credit["pool"] -= from_pool
            source, campaign_key = self.pick_source(family, float(from_pool), applied)
            cid = self.pick_candidate(family, applied, taken)
            if cid is None:  # nobody to hire (a tiny demo): the requisition was cancelled
                job.status, job.filled_at, filled, closed = "closed", None, False, True
            else:
                row = new_row(cid, source, campaign_key)
                enter(row, applied)
                offered(
                    row,
                    applied,
                    offer_at,
                    offer_accepted=True,
                    offer_decided_at=fill_at,
                    hired_at=fill_at + dt.timedelta(days=1),
                    stage="hired",
                )
                total -= 1
                if source == "agency":
                    self.costs.append(
                        {
                            "job_id": job.id,
                            "incurred_on": row["hired_at"].date(),
                            "category": "agency_fees",
                            "amount": to_money(rng.uniform(9_000, 18_000)),
                            "currency": self.team.currency,
                            "note": f"{row['source_detail']} placement fee",
                        }
                    )
        decline_chance = 0.36 - 0.22 * progress
        declines = 0
        if filled or (job.status == "open" and days > 25):
            self.credit["decline"] += decline_chance
            while declines < 2 and self.credit["decline"] >= 1:
                declines += 1
                self.credit["decline"] -= 1
        for _ in range(declines):
            latest = fill_at if filled else self.now
            decided = latest - dt.timedelta(days=rng.uniform(6, 16))
            applied = opened + dt.timedelta(days=rng.uniform(1, max(2, days * 0.25)))
            if decided >= self.now or decided <= applied + dt.timedelta(days=8):
                continue
            row = applicant(applied)
            if row is None:
                continue
            offer = decided - dt.timedelta(days=rng.uniform(2, 5))
            offered(
                row,
                applied,
                offer,
                offer_accepted=False,
                offer_decided_at=decided,
                withdrew_at=decided,
                stage="withdrew",
            )
            total -= 1
        # An offer still out on an open job.
        if job.status == "open" and (self.now - opened).days > 30 and rng.random() < 0.4:
            applied = opened + dt.timedelta(days=rng.uniform(2, 10))
            row = applicant(applied)
            if row is not None:
                offer = self.now - dt.timedelta(days=rng.uniform(0.5, 3))
                offered(row, applied, offer, stage="offer")
                total -= 1
        # Everyone else: screened out, interviewed and rejected, withdrew, or still going.
        entry_span = max(1.0, (horizon - opened).total_seconds() / 86_400 * 0.8)
        for _ in range(max(0, total)):
            entered = opened + dt.timedelta(days=rng.uniform(0, entry_span))
            if entered >= self.now:
                continue
            row = applicant(entered)
            if row is None:
                continue
            last = entered
            for stage, chance, wait in (("screen", 0.55, (2, 7)), ("interview", 0.45, (4, 12))):
                if row["applied_at"] is None or rng.random() >= chance:
                    break
                at = last + dt.timedelta(days=rng.uniform(*wait))
                if at >= self.now or (end is not None and at >= end):
                    break
                row[f"{stage}_at"] = at
                row["stage"] = stage
                last = at
            outcome_at = last + dt.timedelta(days=rng.uniform(1, 10))
            if end is not None:
                outcome_at = min(outcome_at, end + dt.timedelta(days=rng.uniform(0.5, 4)))
            if outcome_at < self.now and (end is not None or rng.random() < 0.55):
                if rng.random() < 0.1:
                    row["withdrew_at"] = outcome_at
                    row["stage"] = "withdrew"
                else:
                    row["rejected_at"] = outcome_at
                    row["stage"] = "rejected"
            finish(row)

    def monthly_costs(self, window_start: dt.date) -> None:
        rng = self.rng
        month = window_start.replace(day=1)
        while month <= self.today:
            next_month = add_months(month, 1)
            month_end = next_month - dt.timedelta(days=1)
            if month >= window_start and month < self.today:
                self.costs.append(
                    {
                        "job_id": None,
                        "incurred_on": month,
                        "category": "tools",
                        "amount": to_money(1_180),
                        # Billed by US vendors, in dollars, when the team has a dollar rate.
                        "currency": "USD" if self.team.counts("USD") else self.team.currency,
                        "note": "ATS, CRM and LinkedIn Recruiter seats",
                    }
                )
            if month_end < self.today:
                self.costs.append(
                    {
                        "job_id": None,
                        "incurred_on": month_end,
                        "category": "recruiter_time",
                        "amount": to_money(rng.uniform(4_800, 6_600)),
                        "currency": self.team.currency,
                        "note": "Recruiter time allocated to hiring",
                    }
                )
                if month.month % 3 == 0:
                    self.costs.append(
                        {
                            "job_id": None,
                            "incurred_on": month.replace(day=15),
                            "category": "events",
                            "amount": to_money(rng.uniform(1_500, 3_200)),
                            "currency": self.team.currency,
                            "note": "Meetup sponsorship and careers evening",
                        }
                    )
            month = next_month

    def currency_of(self, location: str | None) -> str:
        """Euros for the EU offices' bills when the team has a euro rate; else its own."""
        if location in EURO_OFFICES and self.team.counts("EUR"):
            return "EUR"
        return self.team.currency

    def hire_costs(self, jobs: list[Job]) -> None:
        """Costs of the team's own kinds (crm.money keeps them under "other" with their
        names): a sign-on bonus for every third key-role hire, and relocation for every
        second hire into an EU office. Picked by order, not by chance, so the rest of the
        demo draws the same random numbers."""
        by_id = {job.id: job for job in jobs}
        hires = sorted(
            (row for row in self.applications if row.get("hired_at") is not None),
            key=lambda row: (row["hired_at"], row["job_id"]),
        )
        key_hires = relocations = 0

        def own_kind(job: Job, day: dt.date, name: str, amount: int, currency: str) -> None:
            category, label = money.file_category(name)  # filed as the product files it
            self.costs.append(
                {
                    "job_id": job.id,
                    "incurred_on": day,
                    "category": category,
                    "category_label": label,
                    "amount": to_money(amount),
                    "currency": currency,
                    "note": f"{name}: {job.title}",
                }
            )

        for row in hires:
            job = by_id[row["job_id"]]
            day = row["hired_at"].date()
            if job.key_role:
                key_hires += 1
                if key_hires % 3 == 0:
                    amount = 2_500 + 500 * (key_hires // 3 % 3)
                    own_kind(job, day, "Sign-on bonus", amount, self.team.currency)
            if job.location in EURO_OFFICES:
                relocations += 1
                if relocations % 2 == 0:
                    amount = 3_000 + 400 * (relocations // 2 % 4)
                    own_kind(job, day, "Relocation", amount, self.currency_of(job.location))
