"""The demo's vocabulary: job families, names, companies, places and the notes people write.

Everything here is fictional or generic: names are common first and last names, the
companies are made up, phone numbers come from the ranges reserved for drama and tests,
and email domains are the reserved example.com/.org/.net, so a demo database can never
mail or call a real person.
"""

from __future__ import annotations

import functools
import random
import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
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
    Family(
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
    Family(
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
    Family(
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
    Family(
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
    Family(
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
    Family(
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
    Family(
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
    Family(
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


def _ascii(text: str) -> str:
    text = text.replace("ø", "o").replace("Ø", "O").replace("ß", "ss")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()


@functools.cache
def email_part(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", _ascii(name))


@functools.cache
def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _ascii(name)).strip("-")


def title(rng: random.Random, family: Family, years: int, level: str | None = None) -> str:
    """A job title of the family at the level its years of experience (or `level`) give."""
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
