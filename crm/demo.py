"""Realistic demo data: candidates, pools, jobs, campaigns, a content calendar and goals.

`crm demo` calls load_demo(). Everything is generated from random.Random(seed) and the
date `today`, so the same seed and day give the same data. Candidates and their skills,
tags and timeline are written with Core bulk inserts in chunks (100,000 candidates load
in well under a minute on SQLite); the small tables use the ORM.

Email addresses use the reserved example.com/.org/.net domains, so a demo database can
never mail a real person.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Engine,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    null,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from crm import auth, clock, money
from crm.db import write_session
from crm.engagement import APPLE_PRIVACY_AGENT, classify_hit
from crm.errors import CrmError
from crm.goals import validate_goal
from crm.models import (
    Activity,
    Application,
    AuditLog,
    Base,
    Campaign,
    CampaignStep,
    Candidate,
    CandidateTag,
    ContentItem,
    ContentItemPool,
    Cost,
    Enrollment,
    Event,
    Goal,
    Job,
    OutboxMessage,
    Pool,
    PoolMember,
    Setting,
    User,
)
from crm.pools import membership_condition

# Every demo sign-in: username -> (role, display name, password). `crm demo` and the
# README list them all, and `crm serve` refuses a public address while any still has its
# password. The admin comes first (the first user must be).
DEMO_ACCOUNTS = {
    "admin": ("admin", "Morgan Lee", "admin-demo-pass"),
    "recruiter": ("recruiter", "Priya Shah", "recruiter-demo-pass"),
    "manager": ("manager", "Daniel Okafor", "manager-demo-pass"),
    "jordan": ("recruiter", "Jordan Brooks", "jordan-demo-pass"),
    "li": ("recruiter", "Li Wei", "li-demo-pass"),
}
# role -> (username, password) of the one demo account named after each role.
DEMO_USERS = {
    role: (username, password)
    for username, (role, _, password) in DEMO_ACCOUNTS.items()
    if username == role
}


def accounts_with_demo_passwords(engine: Engine) -> list[str]:
    """The demo accounts that are active and still open with their demo password."""
    still = []
    for username, (_, _, password) in DEMO_ACCOUNTS.items():
        user = auth.find_user(engine, username)
        if user is not None and user.active and auth.password_matches(password, user.password_hash):
            still.append(username)
    return still


CHUNK = 5_000
COMPANY = "Fernwood"  # the (fictional) employer doing the recruiting
SENDER_EMAIL = "talent@careers.example.com"

ProgressFn = Callable[[str, float], None]


@dataclass
class DemoSummary:
    candidates: int
    pools: int
    jobs: int
    applications: int
    campaigns: int
    messages: int
    events: int
    content_items: int
    goals: int
    users_created: list[str]


# --- vocabularies -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Family:
    name: str
    weight: int
    roles: tuple[str, ...]
    skills: tuple[tuple[str, int], ...]  # (skill, weight)
    tech: bool
    head: str  # "Head of ..." title for the most senior people outside tech


def _weighted(text: str) -> tuple[tuple[str, int], ...]:
    """'python 9, node.js 4' -> (('python', 9), ('node.js', 4))."""
    pairs = (item.rsplit(" ", 1) for item in text.split(", "))
    return tuple((name, int(weight)) for name, weight in pairs)


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


FAMILIES = (
    _Family(
        "Software Engineering",
        24,
        _names(
            "Backend Engineer, Backend Engineer, Frontend Engineer, Full Stack Engineer,"
            "Software Engineer, Mobile Engineer"
        ),
        _weighted(
            "python 9, java 6, go 5, javascript 7, typescript 7, react 6, node.js 4, sql 6, "
            "postgresql 5, docker 5, kubernetes 3, aws 4, graphql 2, kotlin 2, swift 2, c# 2, "
            "ruby 2, rust 1, microservices 3, ci/cd 3"
        ),
        True,
        "Engineering",
    ),
    _Family(
        "Data & Analytics",
        14,
        _names(
            "Data Analyst, Data Engineer, Data Scientist, Analytics Engineer,"
            "Machine Learning Engineer"
        ),
        _weighted(
            "sql 10, python 8, dbt 4, airflow 3, spark 3, snowflake 3, bigquery 3, tableau 3, "
            "looker 2, power bi 2, pandas 4, machine learning 3, statistics 3, r 2, aws 2, "
            "kafka 1, databricks 2, excel 3"
        ),
        True,
        "Data",
    ),
    _Family(
        "Product",
        10,
        _names("Product Manager, Product Manager, Product Owner, Technical Product Manager"),
        _weighted(
            "product strategy 6, roadmapping 5, user research 4, a/b testing 3, sql 3, jira 4, "
            "analytics 4, stakeholder management 5, agile 5, product discovery 3, okrs 2, figma 1"
        ),
        False,
        "Product",
    ),
    _Family(
        "Design",
        9,
        _names("Product Designer, Product Designer, UX Researcher, UI Designer, Content Designer"),
        _weighted(
            "figma 10, prototyping 6, user research 5, design systems 5, accessibility 3, "
            "interaction design 4, usability testing 3, sketch 2, illustration 1, "
            "adobe creative suite 2, html 1, css 1"
        ),
        False,
        "Design",
    ),
    _Family(
        "DevOps & Cloud",
        10,
        _names("DevOps Engineer, Site Reliability Engineer, Platform Engineer, Cloud Engineer"),
        _weighted(
            "aws 9, kubernetes 8, terraform 7, docker 6, linux 6, ci/cd 5, gcp 3, azure 3, "
            "ansible 2, prometheus 3, grafana 3, python 4, go 3, helm 2, bash 4"
        ),
        True,
        "Infrastructure",
    ),
    _Family(
        "Sales",
        13,
        _names("Account Executive, Account Executive, Account Manager, Sales Manager"),
        _weighted(
            "salesforce 8, hubspot 4, negotiation 6, saas sales 5, pipeline management 4, "
            "cold outreach 3, account management 4, enterprise sales 3, forecasting 2, "
            "linkedin sales navigator 3"
        ),
        False,
        "Sales",
    ),
    _Family(
        "Marketing",
        11,
        _names(
            "Marketing Manager, Content Marketer, Growth Marketer, Product Marketing Manager,"
            "SEO Specialist"
        ),
        _weighted(
            "seo 6, content marketing 6, google analytics 5, hubspot 4, paid social 4, "
            "copywriting 5, email marketing 4, brand strategy 3, marketing automation 3, sem 2, "
            "social media 4"
        ),
        False,
        "Marketing",
    ),
    _Family(
        "People & Talent",
        9,
        _names(
            "Recruiter, Talent Acquisition Partner, HR Business Partner,"
            "People Operations Specialist"
        ),
        _weighted(
            "recruiting 8, sourcing 6, employer branding 3, onboarding 4, employee relations 4, "
            "workday 2, greenhouse 3, compensation 2, interviewing 5, learning & development 2"
        ),
        False,
        "People",
    ),
)
# (most years of experience, level)
SENIORITY = ((2, "junior"), (5, "mid"), (10, "senior"), (15, "lead"), (99, "principal"))
TECH_FAMILIES = ("Software Engineering", "Data & Analytics", "DevOps & Cloud")

FIRST_NAMES = _names(
    "Olivia, Liam, Amara, Mateo, Sofia, Noah, Aisha, Lucas, Mei, Ethan, Priya, Omar, Chloe, "
    "Kwame, Hana, Diego, Fatima, Jonas, Leila, Arjun, Emma, Tomás, Ingrid, Kenji, Zara, Samuel, "
    "Nadia, Rafael, Anika, Felix, Yara, Daniel, Chiara, Malik, Elena, Hugo, Sana, Oscar, Ama, "
    "Lars, Freya, Ravi, Isabel, Tariq, Julia, Mohammed, Clara, Wei, Grace, Luca, Maya, Kofi, "
    "Inès, Adam, Naomi, Björn, Lucía, Theo, Alina, Yusuf, Rosa, Jamal, Eva, Sebastian, Ayesha, "
    "Marco, Ella, Dmitri, Camille, Tunde, Lena, Hiroshi, Alice, Vikram, Sara, Patrick, Zoë, "
    "Andrés, Nora, Kai, Mariam, Finn, Leticia, Emeka, Astrid, Ji-woo, Hannah, Rohan, Beatriz, "
    "Joseph, Siobhan, Mehmet, Aoife, Chidi, Ewa, Rahul"
)
LAST_NAMES = _names(
    "Smith, García, Okafor, Chen, Müller, Patel, Nguyen, Kowalski, Silva, Johansson, Khan, "
    "Rossi, Dubois, Mensah, Kim, Hernández, O'Brien, Novak, Haddad, Tanaka, Fischer, Adeyemi, "
    "Moreau, Jensen, Ahmed, Costa, Murphy, Schmidt, Wang, Ivanova, Bianchi, Owusu, Fernández, "
    "Larsen, Singh, Yilmaz, Kaur, Rahman, Lopez, Nakamura, de Vries, van Dijk, Andersson, "
    "Petrov, Santos, Walsh, Becker, Ali, Park, Lindqvist, Romano, Hughes, Adebayo, Zhang, "
    "Sørensen, Morales, Brennan, Ito, Gonzalez, Popescu, Horvath, Nowak, Oliveira, Mwangi, "
    "Reyes, Kapoor, Bauer, Collins, Lefebvre, Eriksson, Ogunleye, Suzuki, Fitzgerald, Cohen, "
    "Rivera, Shah, Lee, Taylor, Brown, Wilson, Clarke, Evans, Mendes, Hoffmann, Dimitrov, "
    "Abubakar, Virtanen, Byrne, Chowdhury, Kovač"
)
COMPANIES = _names(
    "Northwind Labs, Brightwave Analytics, Lumen Health, Quayside Fintech, Parcelly, "
    "Tandem Robotics, Copperleaf Software, Bluefin Payments, Helix Bio Data, Orbital Logistics, "
    "Pinecrest Retail, Kestrel Security, Meridian Media, Foxglove Studios, Harbourline Bank, "
    "Tessellate AI, Greenline Energy, Atlas Mobility, Nimbus Cloudworks, Saffron Foods, "
    "Cobalt Insurance, Riverstone Consulting, Wildflower Games, Ironbridge Systems, "
    "Sundial Travel, Lattice Data, Beacon EdTech, Mosaic Marketplaces, Polar Freight, "
    "Verdant Agritech, Quill Publishing, Skylark Aviation, Ember Telecom, Cinder Devices, "
    "Juniper Property, Marble Legal Tech, Halcyon Hotels, Redwood Pharma, Solace Mind, "
    "Vantage Sports, Kitefield Studio, Bramble Commerce, Granite Payroll, Otterly Pets, "
    "Prism Fashion, Fable Audio, Tidewater Shipping, Wren Robotics, Maple & Finch, "
    "Lodestar Health, Cloudberry Software, Fieldnote Research, Hollow Oak Games, "
    "Signalbox Transit, Tallow & Wick, Aperture Insights, Brassica Foods, Driftwood Analytics, "
    "Keystone Mutual, Larkspur Learning, Ravenscroft Capital"
)

# (location, country, weight); "Remote" people are remote by definition.
LOCATIONS = (
    ("London", "United Kingdom", 20),
    ("Manchester", "United Kingdom", 6),
    ("Edinburgh", "United Kingdom", 3),
    ("Berlin", "Germany", 9),
    ("Munich", "Germany", 3),
    ("Amsterdam", "Netherlands", 6),
    ("Lisbon", "Portugal", 5),
    ("Paris", "France", 6),
    ("Dublin", "Ireland", 5),
    ("Barcelona", "Spain", 4),
    ("Stockholm", "Sweden", 3),
    ("Warsaw", "Poland", 3),
    ("New York", "United States", 6),
    ("Austin", "United States", 3),
    ("Toronto", "Canada", 4),
    ("Remote", "United Kingdom", 6),
    ("Remote", "Germany", 2),
    ("Remote", "Spain", 2),
    ("Remote", "United States", 3),
)
# country -> (fictional-range prefix, digits to add)
PHONE_FORMATS = {
    "United Kingdom": ("+44 7700 900", 3),
    "United States": ("+1 512 555 01", 2),
    "Canada": ("+1 416 555 01", 2),
    "Germany": ("+49 30 5550 ", 4),
    "Netherlands": ("+31 20 555 ", 4),
    "Portugal": ("+351 21 555 ", 4),
    "France": ("+33 1 55 50 ", 4),
    "Ireland": ("+353 1 555 ", 4),
    "Spain": ("+34 91 555 ", 4),
    "Sweden": ("+46 8 555 ", 4),
    "Poland": ("+48 22 555 ", 4),
}
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
SOURCES = (
    ("LinkedIn", 34),
    ("Referral", 12),
    ("Past applicant", 15),
    ("Event", 8),
    ("Job board", 15),
    ("Career site", 11),
    ("Import", 5),
)
CONSENT_SOURCES = ("Career site form", "Event sign-up", "Email reply", "Talent community form")
FOLLOW_UP_NOTES = (
    "Check in after their promotion",
    "Ask about relocation plans",
    "Follow up after the conference",
    "Send the Staff engineer job spec when it opens",
    "Catch up after parental leave",
    "Re-engage when the notice period ends",
    "Share the new data team roadmap",
    "Check availability for Q1",
    "Invite to the next open house",
)
NOTES = (
    "Strong systems design background; interested in platform work.",
    "Prefers hybrid, two days in the office at most.",
    "Met at a meetup in {city}; keen on fintech.",
    "Salary expectation around {salary}k; open to equity.",
    "Not looking right now, happy to hear about senior roles.",
    "Great portfolio; would suit a scale-up.",
    "Referred by a former colleague on the {family} team.",
    "Silver medalist last time round; very close to an offer.",
)
CALL_NOTES = (
    "Intro call: talked through the {family} team and our growth plans.",
    "Catch-up call; currently interviewing elsewhere.",
    "Phone screen went well; follow up in a couple of months.",
    "Call about timing: wants to move after bonus season.",
)
LINKEDIN_NOTES = (
    "Sent a LinkedIn message about upcoming {family} roles.",
    "Replied on LinkedIn; open to a chat next month.",
    "Connected on LinkedIn after the webinar.",
)
EMAIL_NOTES = (
    "Emailed the latest {family} openings.",
    "Sent the team handbook and benefits overview.",
    "Emailed to ask about availability.",
)
NOTE_KINDS = ("note", "note", "call", "linkedin_message")
CHANNEL_KIND = {"email": "email_sent", "linkedin_message": "linkedin_message", "call": "call"}
CHANNEL_NOTES = {"email": EMAIL_NOTES, "linkedin_message": LINKEDIN_NOTES, "call": CALL_NOTES}
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
# What real mail programs, browsers and machines send as their user agent. The demo only
# makes up who reads what and when; crm.engagement.classify_hit then decides, as tracking
# does, what each open or click was (see _Loader.engagement).
GMAIL_PROXY_AGENT = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# (mail program's agent when it loads images, browser's agent when a link is followed)
HUMAN_AGENTS = (
    (GMAIL_PROXY_AGENT, CHROME_WINDOWS),  # Gmail on the web: images through Google's proxy
    (GMAIL_PROXY_AGENT, SAFARI_IPHONE),  # the Gmail app proxies images too
    (  # Apple Mail on a Mac, Mail Privacy Protection off
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        SAFARI_MAC,
    ),
    (  # Mail on an iPhone, Mail Privacy Protection off
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148",
        SAFARI_IPHONE,
    ),
)
# Link checkers at mail gateways: library defaults, or no user agent at all.
MACHINE_AGENTS = ("Go-http-client/1.1", "python-requests/2.31.0", None)
REPLY_SNIPPETS = (
    "Thanks for reaching out, happy to chat next week.",
    "Not looking right now, but keep me posted.",
    "Sounds interesting! What's the salary range?",
    "Could you send me the job description?",
)
POOL_STAGES = ["New", "Contacted", "Engaged", "Interested", "Not now"]
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

# The content calendar around today: day offset | channel | theme | title | pools.
# Published items (before today) only reach pools that have heard from us lately, so
# "pools gone quiet" on Home stays meaningful.
CONTENT_PLAN = """
-7 | linkedin_post | company_news | We're opening a Lisbon engineering hub | london
-6 | email_newsletter | industry_insight | Data talent newsletter: the data stack in {year} | data
-4 | blog | employee_story | Engineering blog: how we run on-call | london
-3 | linkedin_message | job_alert | Job alert: Senior account executive (London) | sales
-2 | instagram | employee_story | Day in the life of an analytics engineer | data
-1 | x | industry_insight | Thread: five SQL habits of great analysts | data
0 | linkedin_post | job_alert | Job alert: Staff data engineer | data
1 | event | career_advice | Data careers evening in London | data london
2 | email_newsletter | company_news | Sales leaders digest: what's new at {company} | sales
3 | blog | industry_insight | Engineering blog: moving 40 services to Kubernetes | aws backend
4 | sms | job_alert | SMS: a senior backend engineer role just opened | backend silver
6 | linkedin_post | career_advice | Career advice: writing a great engineering CV | london
8 | email_newsletter | industry_insight | Data talent newsletter: LLMs in analytics | data
9 | x | company_news | {company} named a top place to work in tech | london
11 | linkedin_message | job_alert | Job alert: Lead platform engineer | aws
13 | blog | employee_story | Employee story: from SDR to head of sales | sales
15 | event | industry_insight | Webinar: building a cloud cost culture | aws backend
16 | instagram | company_news | Behind the scenes at our Berlin office | london
18 | linkedin_post | job_alert | Job alert: Senior product designer | london
20 | email_newsletter | career_advice | Silver medalists: we haven't forgotten you | silver
22 | blog | career_advice | Career advice: preparing for a system design interview | backend
23 | sms | company_news | SMS: save the date for our open house | sales silver
25 | linkedin_post | employee_story | Meet the team: our data platform squad | data
27 | email_newsletter | industry_insight | Data talent newsletter: the year in review | data
28 | event | company_news | Open house at the {company} London office | london silver
"""


def _ascii(text: str) -> str:
    text = text.replace("ø", "o").replace("Ø", "O").replace("ß", "ss")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


@functools.cache
def _email_part(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", _ascii(name))


@functools.cache
def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(name)).strip("-")


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    next_month = dt.date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last_day))


def _at(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC)


def _money(value: float) -> Decimal:
    return Decimal(f"{value:.2f}")


def _cumulative(weights: Iterable[int]) -> list[int]:
    total, out = 0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _merge(template: str, first_name: str | None, skills: str = "") -> str:
    text = re.sub(r"\{\{\s*first_name\s*\|\s*([^}]*)\}\}", lambda m: first_name or m[1], template)
    text = re.sub(r"\{\{\s*first_name\s*\}\}", first_name or "", text)
    return re.sub(r"\{\{\s*skills\s*\}\}", skills or "your background", text)


def _insert(session: Session, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(table), rows[start : start + CHUNK])


def _max_id(session: Session, table: Table) -> int:
    return session.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0


def _reset_sequence(session: Session, table: Table) -> None:
    """After explicit ids on PostgreSQL, move the id sequence past them (SQLite needs nothing)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    highest = _max_id(session, table)
    if highest:
        session.execute(select(func.setval(func.pg_get_serial_sequence(table.name, "id"), highest)))


# --- public API -------------------------------------------------------------------------


def has_data(engine: Engine) -> bool:
    """True when any candidate, job or campaign exists."""
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                select(
                    or_(
                        exists(select(Candidate.id)),
                        exists(select(Job.id)),
                        exists(select(Campaign.id)),
                    )
                )
            )
        )


def wipe(engine: Engine) -> None:
    """Delete all recruiting data, children first, in one transaction.

    Users, team settings and the audit log stay: they are the team, not demo data.
    """
    kept = {User.__tablename__, Setting.__tablename__, AuditLog.__tablename__}
    with write_session(engine) as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in kept:
                session.execute(delete(table))


def load_demo(
    engine: Engine,
    *,
    candidates: int = 2000,
    seed: int = 7,
    today: dt.date | None = None,
    progress: ProgressFn | None = None,
) -> DemoSummary:
    """Create the demo users (if missing) and a realistic data set around `today`."""
    if candidates < 1:
        raise CrmError("The demo needs at least one candidate.")
    if has_data(engine):
        raise CrmError("The database already has data; wipe it before loading demo data.")
    return _Loader(engine, candidates, seed, today or clock.today(), progress).run()


# --- the generator ----------------------------------------------------------------------


@dataclass
class _Audience:
    id: int
    first_name: str
    email: str


class _Loader:
    def __init__(
        self,
        engine: Engine,
        count: int,
        seed: int,
        today: dt.date,
        progress: ProgressFn | None,
    ) -> None:
        self.engine = engine
        self.count = count
        self.rng = random.Random(seed)
        self.today = today
        self.now = _at(today, 0)  # the start of today: everything "past" happens before it
        self.progress_fn = progress
        self.users: dict[str, int] = {}
        self.users_created: list[str] = []
        # Demo numbers come from small fictional ranges; a number goes to one person only,
        # so "same phone" duplicates in the demo are real suspects, not noise.
        self.phones_used: set[str] = set()
        # family -> [(candidate id, created_at)], for applications
        self.by_family: dict[str, list[tuple[int, dt.datetime]]] = {f.name: [] for f in FAMILIES}
        self.pools: dict[str, Pool] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.steps: dict[str, list[CampaignStep]] = {}
        self.counts: dict[str, int] = {}
        self.credit = {"pool": 0.5, "decline": 0.5}

    def report(self, label: str, fraction: float) -> None:
        if self.progress_fn is not None:
            self.progress_fn(label, round(min(1.0, max(0.0, fraction)), 4))

    def days_ago(self, days: float) -> dt.datetime:
        return self.now - dt.timedelta(seconds=int(days * 86_400))

    def run(self) -> DemoSummary:
        self.report("Creating users", 0.0)
        self.create_users()
        self.report("Creating candidates", 0.05)
        self.create_candidates()
        self.report("Creating pools and campaigns", 0.85)
        with write_session(self.engine) as session:
            self.create_pools(session)
            self.create_campaigns(session)
        self.report("Creating jobs and applications", 0.88)
        with write_session(self.engine) as session:
            self.create_jobs(session)
        self.report("Sending campaign emails", 0.93)
        with write_session(self.engine) as session:
            self.create_campaign_traffic(session)
        self.report("Planning the content calendar and goals", 0.97)
        with write_session(self.engine) as session:
            self.create_content(session)
            self.create_goals(session)
        self.report("Done", 1.0)
        c = self.counts
        return DemoSummary(
            candidates=self.count,
            pools=len(self.pools),
            jobs=c["jobs"],
            applications=c["applications"],
            campaigns=len(self.campaigns),
            messages=c["messages"],
            events=c["events"],
            content_items=c["content_items"],
            goals=c["goals"],
            users_created=self.users_created,
        )

    # --- users ----------------------------------------------------------------------------

    def create_users(self) -> None:
        for username, (role, name, password) in DEMO_ACCOUNTS.items():
            existing = auth.find_user(self.engine, username)
            if existing is None:
                first = _email_part(name.split()[0])
                last = _email_part(name.split()[-1])
                existing = auth.create_user(
                    self.engine,
                    username=username,
                    role=role,
                    password=password,
                    display_name=name,
                    email=f"{first}.{last}@example.com",
                    as_operator=True,
                )
                self.users_created.append(username)
            self.users[username] = existing.id
        self.owners = [self.users[name] for name in ("recruiter", "jordan", "li", "admin")]
        self.owner_weights = _cumulative((4, 3, 3, 1))
        self.recruiters = [self.users[name] for name in ("recruiter", "jordan", "li")]

    def owner(self) -> int:
        return self.rng.choices(self.owners, cum_weights=self.owner_weights)[0]

    # --- candidates -----------------------------------------------------------------------

    def create_candidates(self) -> None:
        with write_session(self.engine) as session:
            next_id = _max_id(session, Candidate.__table__) + 1
        family_weights = _cumulative(f.weight for f in FAMILIES)
        location_weights = _cumulative(weight for *_, weight in LOCATIONS)
        source_weights = _cumulative(weight for _, weight in SOURCES)
        skill_tables = {
            f.name: ([s for s, _ in f.skills], _cumulative(w for _, w in f.skills))
            for f in FAMILIES
        }
        tags = (
            "silver medalist",
            "referral",
            "alumni",
            f"conference {self.today.year}",
            "open to relocation",
            "hiring manager favourite",
        )
        done = 0
        step = max(1, min(CHUNK, -(-self.count // 20)))  # about every 5%
        while done < self.count:
            size = min(step, self.count - done)
            rows, tag_rows, activities = [], [], []
            for offset in range(size):
                self.candidate(
                    next_id + done + offset,
                    rows,
                    tag_rows,
                    activities,
                    family_weights,
                    location_weights,
                    source_weights,
                    skill_tables,
                    tags,
                )
            with write_session(self.engine) as session:
                _insert(session, Candidate.__table__, rows)
                _insert(session, CandidateTag.__table__, tag_rows)
                _insert(session, Activity.__table__, activities)
                _reset_sequence(session, Candidate.__table__)
            done += size
            self.report("Creating candidates", 0.05 + 0.8 * done / self.count)

    def candidate(
        self,
        cid: int,
        rows: list[dict[str, Any]],
        tag_rows: list[dict[str, Any]],
        activities: list[dict[str, Any]],
        family_weights: list[int],
        location_weights: list[int],
        source_weights: list[int],
        skill_tables: dict[str, tuple[list[str], list[int]]],
        tags: tuple[str, ...],
    ) -> None:
        rng = self.rng
        random_ = rng.random
        family = rng.choices(FAMILIES, cum_weights=family_weights)[0]
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        years = min(25, max(0, round(rng.lognormvariate(1.8, 0.55))))
        location, country, _ = rng.choices(LOCATIONS, cum_weights=location_weights)[0]
        remote = location == "Remote" or random_() < 0.17
        created = self.days_ago(rng.uniform(2, 1000))

        email = email_normalized = None
        if random_() < 0.96:
            domain = rng.choice(EMAIL_DOMAINS)
            email = f"{_email_part(first)}.{_email_part(last)}{cid}@{domain}"
            email_normalized = email.lower()
        linkedin_url = linkedin_normalized = None
        if email is None or random_() < 0.85:
            handle = f"{_slug(first)}-{_slug(last)}-{cid}"
            linkedin_url = f"https://www.linkedin.com/in/{handle}"
            linkedin_normalized = f"linkedin.com/in/{handle}"
        phone = phone_normalized = None
        if random_() < 0.4 and country in PHONE_FORMATS:
            prefix, digits = PHONE_FORMATS[country]
            number = f"{prefix}{rng.randrange(10**digits):0{digits}d}"
            if number not in self.phones_used:
                self.phones_used.add(number)
                phone = number
                phone_normalized = "+" + re.sub(r"\D", "", phone)

        roll = random_()
        consent_status, consent_at, consent_source, consent_note = (
            "legitimate_interest",
            None,
            None,
            None,
        )
        if roll < 0.03:
            consent_status = "do_not_contact"
            consent_at = created + dt.timedelta(days=rng.uniform(1, 30))
            consent_note = "Asked not to be contacted again."
        elif roll < 0.28:
            consent_status = "consented"
            consent_at = created + dt.timedelta(hours=rng.uniform(0.1, 72))
            consent_source = rng.choice(CONSENT_SOURCES)
        if consent_at is not None and consent_at >= self.now:
            consent_at = created

        owner = self.owner()
        contacted = channel = contacted_by = engaged = None
        if random_() < 0.8:
            contacted = self.days_ago(400 * random_() ** 1.8 + rng.uniform(0.05, 1))
            if contacted <= created:
                contacted = created + (self.now - created) * rng.uniform(0.2, 0.95)
            contacted = contacted.replace(microsecond=0)
            channel = rng.choices(("email", "linkedin_message", "call"), (5, 4, 2))[0]
            contacted_by = owner if random_() < 0.8 else rng.choice(self.recruiters)
            if random_() < 0.35:
                engaged = contacted + dt.timedelta(hours=rng.uniform(1, 96))
                if engaged >= self.now:
                    engaged = None
        follow_up_on = follow_up_note = None
        if random_() < 0.01:
            follow_up_on = self.today + dt.timedelta(days=rng.randint(-10, 21))
            follow_up_note = rng.choice(FOLLOW_UP_NOTES)

        rows.append(
            {
                "id": cid,
                "first_name": first,
                "last_name": last,
                "email": email,
                "email_normalized": email_normalized,
                "linkedin_url": linkedin_url,
                "linkedin_normalized": linkedin_normalized,
                "phone": phone,
                "phone_normalized": phone_normalized,
                "location": location,
                "country": country,
                "remote": remote,
                "title": self.title(family, years),
                "company": rng.choice(COMPANIES),
                "role_family": family.name,
                "years_experience": years,
                "source": rng.choices(SOURCES, cum_weights=source_weights)[0][0],
                "consent_status": consent_status,
                "consent_at": consent_at,
                "consent_source": consent_source,
                "consent_note": consent_note,
                "owner_id": owner,
                "custom_fields": {},
                "last_contacted_at": contacted,
                "last_contacted_by_id": contacted_by,
                "last_contact_channel": channel,
                "last_engaged_at": engaged,
                "unsubscribed_at": None,
                "follow_up_on": follow_up_on,
                "follow_up_note": follow_up_note,
                "import_batch_id": None,
                "version": 1,
                "updated_by_id": None,
                "created_at": created,
                "updated_at": max(created, contacted or created),
            }
        )
        names, weights = skill_tables[family.name]
        chosen: dict[str, None] = {}
        wanted = rng.randint(3, 8)
        while len(chosen) < wanted:
            chosen[rng.choices(names, cum_weights=weights)[0]] = None
        rows[-1]["skills"] = list(chosen)
        if random_() < 0.3:
            for tag in rng.sample(tags, rng.choice((1, 1, 2))):
                tag_rows.append({"candidate_id": cid, "tag": tag})
        self.by_family[family.name].append((cid, created))

        if random_() < 0.6:
            self.timeline(
                cid, family, location, created, contacted, channel, contacted_by, owner, activities
            )

    def timeline(
        self,
        cid: int,
        family: _Family,
        city: str,
        created: dt.datetime,
        contacted: dt.datetime | None,
        channel: str | None,
        contacted_by: int | None,
        owner: int,
        activities: list[dict[str, Any]],
    ) -> None:
        rng = self.rng
        end = contacted or self.now
        entries = rng.randint(1, 3)
        for index in range(entries):
            latest = index == entries - 1
            if latest and contacted is not None and channel is not None:
                kind, at, text = (
                    CHANNEL_KIND[channel],
                    contacted,
                    rng.choice(CHANNEL_NOTES[channel]),
                )
                actor, entry_channel = contacted_by, channel
            else:
                at = created + (end - created) * rng.uniform(0.05, 0.95)
                # Without a recorded contact, the timeline holds notes only.
                kind = "note" if contacted is None else rng.choice(NOTE_KINDS)
                pool = NOTES if kind == "note" else CHANNEL_NOTES[kind]
                text = rng.choice(pool)
                actor, entry_channel = owner, None if kind == "note" else kind
            activities.append(
                {
                    "candidate_id": cid,
                    "kind": kind,
                    "channel": entry_channel,
                    "occurred_at": at.replace(microsecond=0),
                    "actor_id": actor,
                    "summary": text.format(
                        city=city if city != "Remote" else "London",
                        salary=rng.randrange(45, 140, 5),
                        family=family.name,
                    ),
                    "campaign_id": None,
                }
            )

    def title(self, family: _Family, years: int, level: str | None = None) -> str:
        rng = self.rng
        role = rng.choice(family.roles)
        if level is None:
            level = next(name for limit, name in SENIORITY if years <= limit)
        if family.name == "Sales" and level == "junior":
            return "Sales Development Representative"
        if family.name == "Product" and level == "junior":
            return "Associate Product Manager"
        if level == "junior":
            return f"Junior {role}"
        if level == "mid":
            return role
        if level == "senior":
            return f"Senior {role}"
        if level == "lead":
            return f"{rng.choice(('Staff', 'Lead')) if family.tech else 'Lead'} {role}"
        if family.tech and rng.random() < 0.7:
            return f"Principal {role}"
        return f"Head of {family.head}"

    # --- pools ----------------------------------------------------------------------------

    def create_pools(self, session: Session) -> None:
        rng = self.rng
        created = self.days_ago(420)
        specs = [
            (
                "backend",
                "Senior backend engineers",
                "Engineers with 5+ years and Python, Go or Java: the bench for platform hires.",
                "dynamic",
                {
                    "all": [
                        {"field": "role_family", "op": "eq", "value": "Software Engineering"},
                        {"field": "years_experience", "op": "gte", "value": 5},
                        {"field": "skills", "op": "has_any", "value": ["python", "go", "java"]},
                    ]
                },
                "recruiter",
            ),
            (
                "aws",
                "AWS experts",
                "Cloud people with AWS and at least four years of experience.",
                "dynamic",
                {
                    "all": [
                        {"field": "skills", "op": "has_any", "value": ["aws"]},
                        {"field": "years_experience", "op": "gte", "value": 4},
                        {
                            "field": "role_family",
                            "op": "in",
                            "value": ["DevOps & Cloud", "Software Engineering", "Data & Analytics"],
                        },
                    ]
                },
                "jordan",
            ),
            (
                "london",
                "London or open to remote",
                "Everyone we may contact who lives in London or works remotely.",
                "dynamic",
                {
                    "all": [
                        {"field": "consent_status", "op": "ne", "value": "do_not_contact"},
                        {
                            "any": [
                                {"field": "location", "op": "in", "value": ["London"]},
                                {"field": "remote", "op": "eq", "value": True},
                            ]
                        },
                    ]
                },
                "li",
            ),
            (
                "data",
                "Gone quiet: data people",
                "Data & Analytics people nobody has contacted for 90 days; the newsletter keeps "
                "them warm.",
                "dynamic",
                {
                    "all": [
                        {"field": "role_family", "op": "eq", "value": "Data & Analytics"},
                        {"field": "last_contacted_at", "op": "older_than_days", "value": 90},
                    ]
                },
                "recruiter",
            ),
            (
                "silver",
                f"Silver medalists {self.today.year}",
                "Finalists we nearly hired this year; first call for the next opening.",
                "static",
                None,
                "recruiter",
            ),
            (
                "sales",
                "Future sales leaders",
                "Account executives and managers with leadership potential.",
                "static",
                None,
                "li",
            ),
        ]
        for key, name, description, kind, filter_json, owner in specs:
            pool = Pool(
                name=name,
                description=description,
                kind=kind,
                stages=list(POOL_STAGES),
                owner_id=self.users[owner],
                frequency_cap_per_week=2 if key in {"data", "sales", "london"} else None,
                silence_days=14 if key in {"data", "sales"} else None,
                created_at=created + dt.timedelta(days=rng.uniform(0, 60)),
                updated_at=created + dt.timedelta(days=rng.uniform(60, 120)),
            )
            if filter_json is not None:  # left unset, a static pool's filter is SQL NULL
                pool.filter = filter_json
            session.add(pool)
            self.pools[key] = pool
        session.flush()

        silver = list(
            session.scalars(
                select(CandidateTag.candidate_id)
                .where(CandidateTag.tag == "silver medalist")
                .order_by(CandidateTag.candidate_id)
            )
        )
        sales = list(
            session.scalars(
                select(Candidate.id)
                .where(
                    Candidate.role_family == "Sales",
                    Candidate.years_experience.between(4, 12),
                    Candidate.consent_status != "do_not_contact",
                )
                .order_by(Candidate.id)
            )
        )
        members = []
        for key, ids, size in (("silver", silver, 60), ("sales", sales, 80)):
            picked = sorted(rng.sample(ids, min(size, len(ids))))
            for cid in picked:
                members.append(
                    {
                        "pool_id": self.pools[key].id,
                        "candidate_id": cid,
                        "stage": rng.choices(POOL_STAGES, (3, 4, 3, 2, 1))[0],
                        "added_at": self.days_ago(rng.uniform(40, 300)),
                        "added_by_id": self.pools[key].owner_id,
                    }
                )
        _insert(session, PoolMember.__table__, members)

    # --- campaigns ------------------------------------------------------------------------

    def backend_launch(self) -> dt.datetime:
        spring = dt.date(self.today.year, 4, 14)
        if spring > self.today - dt.timedelta(days=60):
            spring = dt.date(self.today.year - 1, 4, 14)
        return _at(spring, 9)

    def create_campaigns(self, session: Session) -> None:
        specs = {
            "backend": (
                "Backend engineers, spring",
                "backend",
                "completed",
                self.backend_launch(),
                "recruiter",
                [
                    (
                        0,
                        "{{first_name|there}}, backend roles at Fernwood this spring",
                        "Hi {{first_name|there}},\n\nI'm Priya from the Fernwood talent team. "
                        "We're growing our platform group this spring and your experience with "
                        "{{skills}} stood out.\n\nWe're hiring senior backend engineers to work "
                        "on payments infrastructure (Python and Go, on AWS). Fully flexible "
                        "hybrid in London, or remote within Europe.\n\nWould you be open to a "
                        "20-minute chat?\n\nPriya",
                    ),
                    (
                        4,
                        "Quick follow-up, {{first_name|there}}",
                        "Hi {{first_name|there}},\n\nJust bumping this in case it got buried. "
                        "Here's a [short write-up](https://careers.example.com/platform) of what "
                        "the team is building.\n\nPriya",
                    ),
                    (
                        7,
                        "Last note from me about our backend roles",
                        "Hi {{first_name|there}},\n\nI won't keep chasing. If the timing isn't "
                        "right, no problem at all; reply **later** and I'll check back in a few "
                        "months.\n\nPriya",
                    ),
                ],
            ),
            "sales": (
                "Sales leaders re-engagement",
                "sales",
                "active",
                _at(self.today - dt.timedelta(days=11), 9),
                "li",
                [
                    (
                        0,
                        "{{first_name|there}}, it's been a while",
                        "Hi {{first_name|there}},\n\nWe spoke a while back about sales roles at "
                        "Fernwood. A lot has changed: we've doubled the enterprise team and are "
                        "now building a sales leadership bench.\n\nWould you be up for a catch-up "
                        "call?\n\nLi",
                    ),
                    (
                        4,
                        "What our enterprise team closed this year",
                        "Hi {{first_name|there}},\n\nA quick look at what the team has been up to, "
                        "and why people with {{skills}} do well here: "
                        "https://careers.example.com/sales\n\nLi",
                    ),
                    (
                        7,
                        "{{first_name|there}}, a seat at our sales leadership breakfast?",
                        "Hi {{first_name|there}},\n\nWe're hosting a small breakfast for future "
                        "sales leaders next month. Reply and I'll save you a seat.\n\nLi",
                    ),
                ],
            ),
            "data": (
                "Data talent newsletter",
                "data",
                "active",
                _at(self.today - dt.timedelta(days=28), 9),
                "recruiter",
                [
                    (
                        0,
                        "{{first_name|there}}, this month in data at Fernwood",
                        "Hi {{first_name|there}},\n\nWelcome to our data talent newsletter. This "
                        "issue: how we moved our warehouse to a lakehouse, and what it means for "
                        "people who love {{skills}}.\n\nRead it on the blog: "
                        "https://careers.example.com/blog/lakehouse",
                    ),
                    (
                        14,
                        "Data at Fernwood: analytics engineering, explained",
                        "Hi {{first_name|there}},\n\nOur analytics engineers write about the "
                        "dbt project behind every dashboard we ship.\n\n"
                        "https://careers.example.com/blog/analytics-engineering",
                    ),
                    (
                        14,
                        "{{first_name|there}}, open data roles and a meetup invite",
                        "Hi {{first_name|there}},\n\nThree data roles just opened, and we'd love "
                        "to see you at our next data careers evening in London.\n\n"
                        "https://careers.example.com/data",
                    ),
                ],
            ),
        }
        for key, (name, pool_key, status, launched, owner, steps) in specs.items():
            campaign = Campaign(
                name=name,
                audience_pool_id=self.pools[pool_key].id,
                sender_name=DEMO_ACCOUNTS[owner][1],
                sender_email=SENDER_EMAIL,
                status=status,
                created_by_id=self.users[owner],
                launched_at=launched,
                created_at=launched - dt.timedelta(days=3, hours=2),
                updated_at=launched,
            )
            campaign.steps = [
                CampaignStep(
                    position=position,
                    subject=subject,
                    body_markdown=body,
                    delay_days=delay,
                    stop_on_reply=True,
                    stop_on_click=False,
                    stop_on_pipeline=True,
                )
                for position, (delay, subject, body) in enumerate(steps, start=1)
            ]
            session.add(campaign)
            self.campaigns[key] = campaign
        session.flush()
        for key, campaign in self.campaigns.items():
            self.steps[key] = sorted(campaign.steps, key=lambda step: step.position)

    def audience(self, session: Session, campaign: Campaign) -> list[_Audience]:
        pool = session.get(Pool, campaign.audience_pool_id)
        assert pool is not None and campaign.launched_at is not None
        rows = session.execute(
            select(Candidate.id, Candidate.first_name, Candidate.email)
            .where(
                membership_condition(session, pool, now=self.now),
                Candidate.email.is_not(None),
                Candidate.consent_status != "do_not_contact",
                Candidate.created_at < campaign.launched_at,
            )
            .order_by(Candidate.id)
        ).all()
        people = [_Audience(cid, first, email) for cid, first, email in rows]
        if len(people) > 300:
            people = sorted(self.rng.sample(people, 300), key=lambda person: person.id)
        return people

    def create_campaign_traffic(self, session: Session) -> None:
        rng = self.rng
        enrollment_id = _max_id(session, Enrollment.__table__) + 1
        message_id = _max_id(session, OutboxMessage.__table__) + 1
        enrollments: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        engaged: dict[int, dt.datetime] = {}
        unsubscribed: dict[int, dt.datetime] = {}
        for key in ("backend", "sales", "data"):  # oldest first, so unsubscribes carry over
            campaign = self.campaigns[key]
            steps = self.steps[key]
            assert campaign.launched_at is not None
            for index, person in enumerate(self.audience(session, campaign)):
                if person.id in unsubscribed:
                    continue
                enrolled_at = campaign.launched_at - dt.timedelta(minutes=30)
                status, reason = "completed" if campaign.status == "completed" else "active", None
                due = campaign.launched_at + dt.timedelta(days=index % 3, minutes=index // 3 * 2)
                for position, step in enumerate(steps):
                    if position:
                        due = due + dt.timedelta(days=step.delay_days, minutes=rng.randint(0, 90))
                    row = {
                        "id": message_id,
                        "unique_key": f"{campaign.id}:{step.position}:{person.id}",
                        "campaign_id": campaign.id,
                        "step_id": step.id,
                        "enrollment_id": enrollment_id,
                        "candidate_id": person.id,
                        "to_address": person.email,
                        "subject": _merge(step.subject, person.first_name),
                        "status": "queued",
                        "skip_reason": None,
                        "due_at": due,
                        "attempts": 0,
                        "lease_until": None,
                        "leased_by": None,
                        "message_id": None,
                        "smtp_reply": None,
                        "last_error": None,
                        "sent_at": None,
                        "created_at": enrolled_at
                        if position == 0
                        else due - dt.timedelta(days=step.delay_days),
                    }
                    messages.append(row)
                    message_id += 1
                    if due >= self.now:
                        # Later steps wait until this one is sent (crm.outbox.schedule_next).
                        for later in steps[position + 1 :]:
                            messages.append(
                                {
                                    **row,
                                    "id": message_id,
                                    "unique_key": f"{campaign.id}:{later.position}:{person.id}",
                                    "step_id": later.id,
                                    "subject": None,
                                    "status": "waiting",
                                    "created_at": enrolled_at,
                                }
                            )
                            message_id += 1
                        break
                    row["attempts"] = 1
                    if position == 0 and rng.random() < 0.02:
                        row.update(
                            status="failed",
                            smtp_reply="550 5.1.1 User unknown",
                            last_error="550 5.1.1 User unknown",
                        )
                        events.append(
                            self.event("bounce", due + dt.timedelta(seconds=40), row, None)
                        )
                        status, reason = "stopped", "bounced"
                        break
                    sent = due + dt.timedelta(seconds=rng.randint(2, 50))
                    row.update(
                        status="sent",
                        sent_at=sent,
                        message_id=f"<demo-{campaign.id}-{step.id}-{person.id}@crm.example>",
                        smtp_reply="250 2.0.0 OK: queued",
                    )
                    stop = self.engagement(row, sent, events, engaged, unsubscribed)
                    if stop:
                        status, reason = "stopped", stop
                        break
                enrollments.append(
                    {
                        "id": enrollment_id,
                        "campaign_id": campaign.id,
                        "candidate_id": person.id,
                        "status": status,
                        "enrolled_at": enrolled_at,
                        "stopped_reason": reason,
                    }
                )
                enrollment_id += 1
        _insert(session, Enrollment.__table__, enrollments)
        _insert(session, OutboxMessage.__table__, messages)
        _insert(session, Event.__table__, events)
        _reset_sequence(session, Enrollment.__table__)
        _reset_sequence(session, OutboxMessage.__table__)
        candidates = Candidate.__table__
        if engaged:
            session.execute(
                sql_update(candidates)
                .where(
                    candidates.c.id == bindparam("cid"),
                    or_(
                        candidates.c.last_engaged_at.is_(None),
                        candidates.c.last_engaged_at < bindparam("at"),
                    ),
                )
                .values(last_engaged_at=bindparam("at")),
                [{"cid": cid, "at": at} for cid, at in sorted(engaged.items())],
            )
        if unsubscribed:
            session.execute(
                sql_update(candidates)
                .where(candidates.c.id == bindparam("cid"))
                .values(unsubscribed_at=bindparam("at")),
                [{"cid": cid, "at": at} for cid, at in sorted(unsubscribed.items())],
            )
        self.counts["messages"] = len(messages)
        self.counts["events"] = len(events)

    def event(
        self,
        kind: str,
        at: dt.datetime,
        message: dict[str, Any],
        agent: str | None,
        *,
        machine: bool = False,
        seen_via: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": kind,
            "occurred_at": at.replace(microsecond=0),
            "candidate_id": message["candidate_id"],
            "campaign_id": message["campaign_id"],
            "step_id": message["step_id"],
            "outbox_message_id": message["id"],
            "link_id": None,
            "is_machine": machine,
            "seen_via": seen_via,
            "user_agent": agent,
            # null(), not None: None would be stored as the JSON value null.
            "detail": detail if detail is not None else null(),
        }

    def engagement(
        self,
        message: dict[str, Any],
        sent: dt.datetime,
        events: list[dict[str, Any]],
        engaged: dict[int, dt.datetime],
        unsubscribed: dict[int, dt.datetime],
    ) -> str | None:
        """Opens, clicks, replies and unsubscribes for one sent message; why it stops, if so."""
        rng = self.rng
        cid = message["candidate_id"]

        def later(hours: float) -> dt.datetime | None:
            at = sent + dt.timedelta(hours=hours)
            return at if at < self.now else None

        def hit(kind: str, at: dt.datetime, agent: str | None, **detail: str) -> None:
            """An open or click as tracking records it: the real classifier, given the same
            agent and time after delivery, decides what it was and whether it engages."""
            at = at.replace(microsecond=0)  # as stored: the event must classify the same
            if at >= self.now:
                return
            machine, seen_via = classify_hit(
                user_agent=agent,
                seconds_after_delivery=(at - sent).total_seconds(),
                is_click=kind == "click",
            )
            events.append(
                self.event(
                    kind,
                    at,
                    message,
                    agent,
                    machine=machine,
                    seen_via=seen_via,
                    detail=detail or None,
                )
            )
            if not machine:
                engaged[cid] = max(engaged.get(cid, at), at)

        jobs = "https://careers.example.com/jobs"
        roll = rng.random()
        if roll < 0.2:
            # Apple Mail with Mail Privacy Protection on: Apple's relay fetches the images
            # when the device syncs, read or not; some of these people read and click.
            fetched = sent + dt.timedelta(seconds=rng.randint(60, 4 * 3600))
            hit("open", fetched, APPLE_PRIVACY_AGENT)
            if rng.random() < 0.15:
                clicked = fetched + dt.timedelta(hours=rng.expovariate(1 / 10))
                hit("click", clicked, SAFARI_IPHONE, url=jobs)
        elif roll < 0.25:
            # A gateway's link checker, seconds after delivery: the pixel, and often the link.
            agent = rng.choice(MACHINE_AGENTS)
            scanned = sent + dt.timedelta(seconds=rng.uniform(1, 8))
            hit("open", scanned, agent)
            if rng.random() < 0.5:
                hit("click", scanned + dt.timedelta(seconds=rng.uniform(0.2, 1)), agent, url=jobs)
        elif roll < 0.6:
            mail_agent, browser_agent = rng.choice(HUMAN_AGENTS)
            opened = sent + dt.timedelta(hours=rng.expovariate(1 / 10))
            hit("open", opened, mail_agent)
            if rng.random() < 0.33:
                clicked = opened + dt.timedelta(seconds=rng.randint(5, 300))
                hit("click", clicked, browser_agent, url=jobs)
        roll = rng.random()
        if roll < 0.06:
            replied = later(rng.uniform(1, 72))
            if replied is not None:
                detail = {"snippet": rng.choice(REPLY_SNIPPETS)}
                events.append(self.event("reply", replied, message, None, detail=detail))
                engaged[cid] = max(engaged.get(cid, replied), replied)
                if rng.random() < 0.5:
                    events.append(self.event("interested", replied, message, None))
                return "replied"
        elif roll < 0.07:
            left = later(rng.uniform(0.2, 48))
            if left is not None:
                events.append(self.event("unsubscribe", left, message, None))
                unsubscribed[cid] = left
                return "unsubscribed"
        return None

    # --- jobs, applications and costs -----------------------------------------------------

    def create_jobs(self, session: Session) -> None:
        rng = self.rng
        today = self.today
        # Twelve months of hiring, reaching back far enough to give the "by year end" goal
        # a baseline (the second half of last year).
        window_start = min(today - dt.timedelta(days=365), dt.date(today.year - 1, 5, 1))
        span = (today - window_start).days
        job_count = max(12, round(span / 30.4 * 3.5))
        family_weights = _cumulative((30, 15, 9, 7, 11, 12, 9, 7))
        level_weights = (2, 4, 5, 3, 1)
        levels = ("junior", "mid", "senior", "lead", "principal")
        jobs: list[tuple[Job, float, int]] = []
        closed_slots = {round(job_count * 0.22), round(job_count * 0.55)}
        for index in range(job_count):
            opened = window_start + dt.timedelta(
                days=int((index + rng.random()) * span / job_count)
            )
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
                title=self.title(family, 0, level),
                role_family=family.name,
                key_role=key_role,
                hiring_manager=rng.choice(HIRING_MANAGERS[family.name]),
                location=rng.choice(JOB_LOCATIONS),
                opened_at=opened,
                filled_at=filled_on if status == "filled" else None,
                status=status,
                created_at=_at(opened, 8, rng.randint(0, 59)),
                updated_at=_at(filled_on if status == "filled" else opened, 17),
            )
            session.add(job)
            jobs.append((job, progress, days))
        session.flush()

        applications: list[dict[str, Any]] = []
        costs: list[dict[str, Any]] = []
        self.team = self.demo_money(session)
        for job, progress, days in jobs:
            self.job_applications(job, progress, days, applications, costs)
        self.monthly_costs(window_start, costs)
        self.hire_costs([job for job, _, _ in jobs], applications, costs)
        for cost in costs:  # one insert for all rows: every row names every column
            cost.setdefault("category_label", None)
        _insert(session, Application.__table__, applications)
        _insert(session, Cost.__table__, costs)
        self.counts["jobs"] = len(jobs)
        self.counts["applications"] = len(applications)

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

    def job_applications(
        self,
        job: Job,
        progress: float,
        days: int,
        applications: list[dict[str, Any]],
        costs: list[dict[str, Any]],
    ) -> None:
        rng = self.rng
        family = job.role_family or FAMILIES[0].name
        opened = _at(job.opened_at, 9)
        taken: set[int] = set()
        filled = job.status == "filled"
        closed = job.status == "closed"
        fill_at = opened + dt.timedelta(days=days, hours=rng.randint(1, 7))
        # Close date of the process (fill or cancellation); open jobs run until now.
        end = fill_at if filled else (opened + dt.timedelta(days=days * 0.8) if closed else None)
        horizon = end or self.now

        costs.append(
            {
                "job_id": job.id,
                "incurred_on": job.opened_at,
                "category": "job_ads",
                "amount": _money(rng.uniform(250, 900)),
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
            applications.append(row)

        def enter(row: dict[str, Any], at: dt.datetime) -> None:
            if row["source"] in {"talent_pool", "campaign"}:
                row["sourced_at"] = at - dt.timedelta(days=rng.uniform(1, 6))
                row["stage"] = "sourced"
                if at >= self.now:
                    return
            row["applied_at"] = at
            row["stage"] = "applied"

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
                row["applied_at"] = applied
                gap = offer_at - applied
                row.update(
                    screen_at=applied + gap * rng.uniform(0.12, 0.3),
                    interview_at=applied + gap * rng.uniform(0.45, 0.8),
                    offer_at=offer_at,
                    offer_accepted=True,
                    offer_decided_at=fill_at,
                    hired_at=fill_at + dt.timedelta(days=1),
                    stage="hired",
                )
                finish(row)
                total -= 1
                if source == "agency":
                    costs.append(
                        {
                            "job_id": job.id,
                            "incurred_on": row["hired_at"].date(),
                            "category": "agency_fees",
                            "amount": _money(rng.uniform(9_000, 18_000)),
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
            cid = self.pick_candidate(family, applied, taken)
            if cid is None:
                continue
            source, campaign_key = self.pick_source(family, 0.2 + 0.12 * progress, applied)
            row = new_row(cid, source, campaign_key)
            enter(row, applied)
            row["applied_at"] = applied
            offer = decided - dt.timedelta(days=rng.uniform(2, 5))
            gap = offer - applied
            row.update(
                screen_at=applied + gap * rng.uniform(0.12, 0.3),
                interview_at=applied + gap * rng.uniform(0.45, 0.8),
                offer_at=offer,
                offer_accepted=False,
                offer_decided_at=decided,
                withdrew_at=decided,
                stage="withdrew",
            )
            finish(row)
            total -= 1
        # An offer still out on an open job.
        if job.status == "open" and (self.now - opened).days > 30 and rng.random() < 0.4:
            applied = opened + dt.timedelta(days=rng.uniform(2, 10))
            cid = self.pick_candidate(family, applied, taken)
            if cid is not None:
                source, campaign_key = self.pick_source(family, 0.2 + 0.12 * progress, applied)
                row = new_row(cid, source, campaign_key)
                enter(row, applied)
                row["applied_at"] = applied
                offer = self.now - dt.timedelta(days=rng.uniform(0.5, 3))
                gap = offer - applied
                row.update(
                    screen_at=applied + gap * rng.uniform(0.12, 0.3),
                    interview_at=applied + gap * rng.uniform(0.45, 0.8),
                    offer_at=offer,
                    stage="offer",
                )
                finish(row)
                total -= 1
        # Everyone else: screened out, interviewed and rejected, withdrew, or still going.
        entry_span = max(1.0, (horizon - opened).total_seconds() / 86_400 * 0.8)
        for _ in range(max(0, total)):
            entered = opened + dt.timedelta(days=rng.uniform(0, entry_span))
            if entered >= self.now:
                continue
            cid = self.pick_candidate(family, entered, taken)
            if cid is None:
                continue
            source, campaign_key = self.pick_source(family, 0.2 + 0.12 * progress, entered)
            row = new_row(cid, source, campaign_key)
            enter(row, entered)
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

    def monthly_costs(self, window_start: dt.date, costs: list[dict[str, Any]]) -> None:
        rng = self.rng
        month = window_start.replace(day=1)
        while month <= self.today:
            next_month = _add_months(month, 1)
            month_end = next_month - dt.timedelta(days=1)
            if month >= window_start and month < self.today:
                costs.append(
                    {
                        "job_id": None,
                        "incurred_on": month,
                        "category": "tools",
                        "amount": _money(1_180),
                        # Billed by US vendors, in dollars, when the team has a dollar rate.
                        "currency": "USD" if self.team.counts("USD") else self.team.currency,
                        "note": "ATS, CRM and LinkedIn Recruiter seats",
                    }
                )
            if month_end < self.today:
                costs.append(
                    {
                        "job_id": None,
                        "incurred_on": month_end,
                        "category": "recruiter_time",
                        "amount": _money(rng.uniform(4_800, 6_600)),
                        "currency": self.team.currency,
                        "note": "Recruiter time allocated to hiring",
                    }
                )
                if month.month % 3 == 0:
                    costs.append(
                        {
                            "job_id": None,
                            "incurred_on": month.replace(day=15),
                            "category": "events",
                            "amount": _money(rng.uniform(1_500, 3_200)),
                            "currency": self.team.currency,
                            "note": "Meetup sponsorship and careers evening",
                        }
                    )
            month = next_month

    def demo_money(self, session: Session) -> money.TeamMoney:
        """The team's currency and rates: DEMO_MONEY unless the team has set its own."""
        if session.get(Setting, money.MONEY_KEY) is None:
            session.add(Setting(key=money.MONEY_KEY, value=DEMO_MONEY))
            session.flush()
        return money.team_money_in(session)

    def currency_of(self, location: str | None) -> str:
        """Euros for the EU offices' bills when the team has a euro rate; else its own."""
        if location in EURO_OFFICES and self.team.counts("EUR"):
            return "EUR"
        return self.team.currency

    def hire_costs(
        self, jobs: list[Job], applications: list[dict[str, Any]], costs: list[dict[str, Any]]
    ) -> None:
        """Costs of the team's own kinds (crm.money keeps them under "other" with their
        names): a sign-on bonus for every third key-role hire, and relocation for every
        second hire into an EU office. Picked by order, not by chance, so the rest of the
        demo draws the same random numbers."""
        by_id = {job.id: job for job in jobs}
        hires = sorted(
            (row for row in applications if row.get("hired_at") is not None),
            key=lambda row: (row["hired_at"], row["job_id"]),
        )
        key_hires = relocations = 0

        def own_kind(job: Job, day: dt.date, name: str, amount: int, currency: str) -> None:
            category, label = money.file_category(name)  # filed as the product files it
            costs.append(
                {
                    "job_id": job.id,
                    "incurred_on": day,
                    "category": category,
                    "category_label": label,
                    "amount": _money(amount),
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

    # --- content calendar -----------------------------------------------------------------

    def create_content(self, session: Session) -> None:
        rng = self.rng
        newsletter = self.campaigns["data"].id
        owners = [self.users[name] for name in ("recruiter", "jordan", "li")]
        created: list[tuple[ContentItem, list[str]]] = []
        for line in CONTENT_PLAN.strip().splitlines():
            offset_text, channel, theme, title_text, pools_text = (
                p.strip() for p in line.split("|")
            )
            offset = int(offset_text)
            title = title_text.format(year=self.today.year, company=COMPANY)
            pool_keys = pools_text.split()
            hour = 18 if channel == "event" else rng.choice((8, 9, 10, 12, 14, 16))
            scheduled = _at(self.today + dt.timedelta(days=offset), hour, rng.choice((0, 15, 30)))
            published_at = None
            if scheduled < self.now:
                status = "published"
                published_at = scheduled + dt.timedelta(minutes=rng.randint(0, 20))
            elif offset <= 7:
                status = "scheduled" if rng.random() < 0.85 else "draft"
            elif offset <= 16:
                status = rng.choices(("scheduled", "draft", "idea"), (5, 4, 1))[0]
            else:
                status = rng.choices(("scheduled", "draft", "idea"), (2, 4, 4))[0]
            newsletter_issue = channel == "email_newsletter" and "data" in pool_keys
            if newsletter_issue and status == "idea":
                status = "draft"
            body = None
            if status != "idea":
                body = f"{title}.\n\nDraft copy for the {theme.replace('_', ' ')} slot."
            link = None
            if channel in {"blog", "event", "linkedin_post"}:
                link = f"https://careers.example.com/{_slug(title)[:60]}"
            ends_at = scheduled + dt.timedelta(hours=2, minutes=30) if channel == "event" else None
            item = ContentItem(
                title=title,
                channel=channel,
                scheduled_at=scheduled,
                ends_at=ends_at,
                status=status,
                theme=theme,
                body=body,
                link=link,
                owner_id=rng.choice(owners),
                campaign_id=newsletter if newsletter_issue else None,
                recurrence_exceptions=[],
                published_at=published_at,
                created_at=min(scheduled, self.now) - dt.timedelta(days=rng.uniform(3, 20)),
                updated_at=min(scheduled, self.now) - dt.timedelta(days=rng.uniform(0, 2)),
            )
            session.add(item)
            created.append((item, pool_keys))
        session.flush()
        _insert(
            session,
            ContentItemPool.__table__,
            [
                {"content_item_id": item.id, "pool_id": self.pools[key].id}
                for item, keys in created
                for key in keys
            ],
        )
        self.counts["content_items"] = len(created)

    # --- goals ----------------------------------------------------------------------------

    def create_goals(self, session: Session) -> None:
        today = self.today
        tth_start = _add_months(today, -3)
        oar_start = _add_months(today, -2)
        year_start = dt.date(today.year, 1, 1)
        goals = [
            Goal(
                title="Reduce time-to-hire by 15% for key tech roles in six months",
                metric="time_to_hire_days",
                scope={"key_roles": True, "role_families": list(TECH_FAMILIES)},
                baseline_value=None,
                baseline_from=_add_months(tth_start, -6),
                baseline_to=tth_start - dt.timedelta(days=1),
                target_kind="relative",
                target_value=-0.15,
                start_date=tth_start,
                deadline=_add_months(tth_start, 6),
                owner_id=self.users["recruiter"],
            ),
            Goal(
                title="Boost the offer acceptance rate by 10%",
                metric="offer_acceptance_rate",
                scope={},
                baseline_value=None,
                baseline_from=_add_months(oar_start, -6),
                baseline_to=oar_start - dt.timedelta(days=1),
                target_kind="relative",
                target_value=0.10,
                start_date=oar_start,
                deadline=_add_months(today, 6),
                owner_id=self.users["admin"],
            ),
            Goal(
                title="Source 25% of new hires from our talent pools by year end",
                metric="hires_from_talent_pools_share",
                scope={},
                baseline_value=None,
                baseline_from=dt.date(today.year - 1, 7, 1),
                baseline_to=dt.date(today.year - 1, 12, 31),
                target_kind="absolute",
                target_value=0.25,
                start_date=year_start,
                deadline=dt.date(today.year, 12, 31),
                owner_id=self.users["jordan"],
            ),
        ]
        for goal in goals:
            validate_goal(goal)
            created = _at(goal.start_date, 10)
            goal.created_at = created
            goal.updated_at = created
            session.add(goal)
        self.counts["goals"] = len(goals)
