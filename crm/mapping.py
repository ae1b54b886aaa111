"""Column mapping: which header of an imported file feeds which candidate field.

The aliases cover the exports people bring: LinkedIn connections, Google and Outlook
contacts, common ATS exports (Greenhouse, Lever, Workable, Personio, Recruitee) and common
German, French, Spanish, Portuguese, Dutch and Italian headers. Headers are compared
by header_key(): lower case, accents removed, punctuation and spaces dropped.
"""

from __future__ import annotations

import re
import unicodedata

# Candidate fields an import can fill, with their labels in the mapping editor.
CANDIDATE_FIELDS: dict[str, str] = {
    "full_name": "Full name (split into first and last)",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "linkedin_url": "LinkedIn URL",
    "phone": "Phone",
    "title": "Title",
    "company": "Company",
    "location": "Location",
    "country": "Country",
    "remote": "Remote (yes/no)",
    "role_family": "Role family",
    "years_experience": "Years of experience",
    "skills": "Skills (list)",
    "tags": "Tags (list)",
    "source": "Source",
    "notes": "Note for the timeline",
    "connected_on": "Connected on (note for the timeline)",
}

_ALIASES: dict[str, list[str]] = {
    "full_name": [
        "name",
        "full name",
        "candidate name",
        "candidate",
        "display name",
        "contact name",
        "nom complet",
        "nombre completo",
        "nome completo",
        "vollstandiger name",
        "volledige naam",
    ],
    "first_name": [
        "first name",
        "firstname",
        "given name",
        "first",
        "forename",
        "vorname",
        "prenom",
        "nombre",
        "nome",
        "voornaam",
        "primeiro nome",
    ],
    "last_name": [
        "last name",
        "lastname",
        "surname",
        "family name",
        "last",
        "nachname",
        "nom",
        "apellido",
        "apellidos",
        "sobrenome",
        "achternaam",
        "cognome",
        "nom de famille",
    ],
    "email": [
        "email",
        "e-mail",
        "email address",
        "e-mail address",
        "e-mail 1 - value",
        "email 1 - value",
        "primary email",
        "work email",
        "personal email",
        "mail",
        "e-mail-adresse",
        "courriel",
        "adresse e-mail",
        "correo",
        "correo electronico",
        "e-mailadres",
        "indirizzo email",
        "emails",
        "email addresses",
    ],
    "linkedin_url": [
        "linkedin",
        "linkedin url",
        "linkedin profile",
        "linkedin profile url",
        "url",
        "profile url",
        "linkedin link",
        "social media - linkedin",
        "public profile url",
    ],
    "phone": [
        "phone",
        "phone number",
        "mobile",
        "mobile phone",
        "cell",
        "telephone",
        "business phone",
        "home phone",
        "phone 1 - value",
        "primary phone",
        "telefon",
        "handy",
        "telephone portable",
        "telefono",
        "telemovel",
        "telefoon",
        "mobiel",
        "phone numbers",
    ],
    "title": [
        "title",
        "position",
        "job title",
        "current title",
        "headline",
        "role",
        "organization title",
        "organization 1 - title",
        "current position",
        "job",
        "berufsbezeichnung",
        "poste",
        "titre",
        "cargo",
        "puesto",
        "functie",
        "ruolo",
    ],
    "company": [
        "company",
        "current company",
        "organization",
        "organisation",
        "employer",
        "organization name",
        "organization 1 - name",
        "company name",
        "firma",
        "unternehmen",
        "entreprise",
        "societe",
        "empresa",
        "bedrijf",
        "azienda",
    ],
    "location": [
        "location",
        "city",
        "town",
        "business city",
        "home city",
        "address 1 - city",
        "current location",
        "ort",
        "stadt",
        "ville",
        "ciudad",
        "cidade",
        "plaats",
        "citta",
        "localisation",
        "ubicacion",
        "localizacao",
        "standort",
    ],
    "country": ["country", "business country/region", "land", "pays", "pais", "paese"],
    "remote": ["remote", "open to remote", "remote ok", "remote work"],
    "role_family": ["role family", "job family", "department", "function", "team"],
    "years_experience": [
        "years of experience",
        "years experience",
        "experience years",
        "experience",
        "berufserfahrung",
        "annees d'experience",
        "anos de experiencia",
    ],
    "skills": ["skills", "skill", "competences", "kenntnisse", "habilidades", "vaardigheden"],
    "tags": ["tags", "tag", "labels", "label", "labels/tags", "schlagworte", "etiquetas"],
    "source": ["source", "origin", "lead source", "candidate source", "quelle", "fuente"],
    "notes": ["notes", "note", "comments", "comment", "notizen", "remarques", "notas"],
    "connected_on": ["connected on"],
}


def header_key(header: str) -> str:
    """A header reduced for comparison ('E-Mail Address' -> 'emailaddress')."""
    folded = unicodedata.normalize("NFKD", header).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


ALIASES: dict[str, str] = {}
for _field, _names in _ALIASES.items():
    for _name in _names:
        ALIASES.setdefault(header_key(_name), _field)

KNOWN_HEADER_KEYS = set(ALIASES)


def auto_mapping(headers: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """Header -> field for every header; each field is taken by its first matching header."""
    mapping: dict[str, str | None] = {}
    taken: set[str] = set()
    for header in headers:
        field = ALIASES.get(header_key(header))
        if field in taken:
            field = None
        mapping[header] = field
        if field:
            taken.add(field)
    # A file with first and last names needs no full-name column, and vice versa.
    if {"first_name", "last_name"} <= taken and "full_name" in taken:
        for header, field in mapping.items():
            if field == "full_name":
                mapping[header] = None
    return mapping
