"""Column mapping: which header of an imported file feeds which candidate field.

The aliases cover the exports people bring: LinkedIn connections, Google and Outlook
contacts, common ATS exports (Greenhouse, Lever, Workable, Personio, Recruitee), our own
CSV export, and common German, French, Spanish, Portuguese, Dutch and Italian headers.
Headers are compared by header_key(): lower case, accents removed, punctuation and spaces
dropped. Each field's aliases run from the most to the least telling, and when several
headers of one file match a field the most telling wins (Outlook's "Job Title" over its
"Title", which holds Mr or Ms).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crm import field_registry
from crm.errors import InputUnusable
from crm.imports import aliases
from crm.imports.aliases import header_key

# Candidate fields an import can fill, with their labels in the mapping editor.
CANDIDATE_FIELDS = field_registry.labels(field_registry.IMPORT)
NAME_FIELDS = ("full_name", "first_name", "last_name")
IDENTITY_FIELDS = ("email", "linkedin_url")

_ALIASES: dict[str, list[str]] = {
    "full_name": [
        "full name",
        "fullname",
        "candidate name",
        "applicant name",
        "contact name",
        "display name",
        "name",
        "candidate",
        "applicant",
        "contact",
        "nom complet",
        "nom et prenom",
        "prenom et nom",
        "nombre completo",
        "nome completo",
        "vollstandiger name",
        "volledige naam",
        "naam",
        "nome e cognome",
        "kandidat",
        "bewerber",
        "candidat",
        "candidato",
    ],
    "first_name": [
        "first name",
        "firstname",
        "given name",
        "forename",
        "first",
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
        "familienname",
        "nom de famille",
        "nom",
        "apellido",
        "apellidos",
        "sobrenome",
        "achternaam",
        "cognome",
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
        "emails",
        "email addresses",
        "mail",
        "e-mail-adresse",
        "emailadresse",
        "courriel",
        "adresse e-mail",
        "adresse electronique",
        "correo",
        "correo electronico",
        "e-mailadres",
        "indirizzo email",
        "endereco de email",
    ],
    "linkedin_url": [
        "linkedin url",
        "linkedin profile url",
        "linkedin profile",
        "linkedin",
        "linkedin link",
        "social media - linkedin",
        "public profile url",
        "profile url",
        "linkedin-profil",
        "profil linkedin",
        "perfil de linkedin",
        "perfil linkedin",
        "url",
    ],
    "phone": [
        "phone",
        "phone number",
        "mobile phone",
        "mobile",
        "mobile number",
        "cell phone",
        "cell",
        "business phone",
        "phone 1 - value",
        "primary phone",
        "telephone",
        "home phone",
        "phone numbers",
        "telefon",
        "telefonnummer",
        "mobilnummer",
        "handy",
        "telephone portable",
        "portable",
        "numero de telephone",
        "telefono",
        "telemovel",
        "telefoon",
        "mobiel",
    ],
    "title": [
        "job title",
        "current title",
        "current position",
        "position",
        "headline",
        "organization title",
        "organization 1 - title",
        "role",
        "occupation",
        "jobtitel",
        "stellenbezeichnung",
        "berufsbezeichnung",
        "intitule du poste",
        "poste",
        "fonction",
        "titre",
        "cargo",
        "puesto",
        "titulo",
        "functie",
        "ruolo",
        "job",
        "title",
    ],
    "company": [
        "company",
        "current company",
        "company name",
        "organization name",
        "organization 1 - name",
        "employer",
        "current employer",
        "organization",
        "organisation",
        "firma",
        "unternehmen",
        "arbeitgeber",
        "entreprise",
        "societe",
        "employeur",
        "empresa",
        "bedrijf",
        "azienda",
    ],
    "location": [
        "location",
        "current location",
        "city",
        "town",
        "business city",
        "home city",
        "address 1 - city",
        "ort",
        "wohnort",
        "stadt",
        "standort",
        "ville",
        "localisation",
        "lieu",
        "ciudad",
        "ubicacion",
        "cidade",
        "localizacao",
        "plaats",
        "citta",
    ],
    "country": [
        "country",
        "country/region",
        "business country/region",
        "home country/region",
        "address 1 - country",
        "land",
        "pays",
        "pais",
        "paese",
    ],
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
    "skills": [
        "skills",
        "skill",
        "key skills",
        "competences",
        "kenntnisse",
        "fahigkeiten",
        "habilidades",
        "vaardigheden",
    ],
    "tags": [
        "tags",
        "tag",
        "labels",
        "label",
        "labels/tags",
        "group membership",
        "schlagworte",
        "schlagworter",
        "etiquettes",
        "etiquetas",
    ],
    "source": [
        "source",
        "candidate source",
        "lead source",
        "origin",
        "quelle",
        "herkunft",
        "origine",
        "fuente",
    ],
    "notes": [
        "notes",
        "note",
        "comments",
        "comment",
        "notizen",
        "bemerkungen",
        "remarques",
        "commentaires",
        "notas",
    ],
    "connected_on": ["connected on"],
}


# header key -> (field, rank): a lower rank is a more telling name for the field.
ALIAS_RANKS = aliases.alias_ranks(CANDIDATE_FIELDS, _ALIASES, own_names_first=False)
ALIASES: dict[str, str] = {key: field for key, (field, _rank) in ALIAS_RANKS.items()}
KNOWN_HEADER_KEYS = set(ALIASES)


def auto_mapping(headers: Iterable[str]) -> dict[str, str | None]:
    """Header -> field for every header; each field goes to its most telling header.

    A header that appears twice is mapped once (its first column); blank headers map to
    nothing.
    """
    mapping = aliases.auto_mapping(headers, ALIAS_RANKS)
    taken = set(mapping.values())
    if "full_name" in taken and {"first_name", "last_name"} <= taken:
        # A file with first and last names needs no full-name column.
        for header, field in mapping.items():
            if field == "full_name":
                mapping[header] = None
    elif "full_name" in taken and "first_name" in taken:
        # 'Vorname, Name' and the like: beside a first name, a bare "Name" is the family name.
        for header, field in mapping.items():
            if field == "full_name" and header_key(header) == "name":
                mapping[header] = "last_name"
    return mapping


def check_mapping(headers: Iterable[str], mapping: Mapping[str, str | None]) -> None:
    """Refuse, in one sentence, a mapping naming a field or a column that does not exist."""
    present = set(headers)
    for header, field in mapping.items():
        if field is not None and field not in CANDIDATE_FIELDS:
            raise InputUnusable(
                f"{field!r} is not a field an import can fill; the fields are: "
                f"{', '.join(CANDIDATE_FIELDS)}."
            )
        if header not in present:
            raise InputUnusable(aliases.missing_column(present, header))


def with_overrides(
    headers: Iterable[str],
    base: Mapping[str, str | None],
    overrides: Mapping[str, str | None] | None,
) -> dict[str, str | None]:
    """The base mapping with some columns mapped by hand.

    A field mapped by hand is taken from whatever column the base gave it to, so
    `--map "Work Email=email"` moves email rather than reading two columns.
    """
    headers = list(dict.fromkeys(headers))
    overrides = dict(overrides or {})
    check_mapping(headers, overrides)
    return aliases.with_overrides(headers, base, overrides)


def mapping_problem(mapping: Mapping[str, str | None]) -> str | None:
    """One sentence when no row could be imported with this mapping, else None."""
    fields = {field for field in mapping.values() if field}
    if not fields & set(NAME_FIELDS):
        if not fields & set(IDENTITY_FIELDS):
            return (
                "None of the file's columns is a name, an email address or a LinkedIn URL; "
                "map the columns by hand or check that the first row holds the headers."
            )
        return "No column holds a name (first, last or full name); map one by hand."
    if not fields & set(IDENTITY_FIELDS):
        return "No column holds an email address or a LinkedIn URL; map one of them by hand."
    return None
