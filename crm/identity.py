"""Who a person is: normalized email, LinkedIn profile and phone, for dedupe and suppression.

A person is identified by a normalized email address or a normalized LinkedIn profile URL;
either one is enough. Entry, import and merge all go through these functions, so the same
person written two ways is still one person.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import unquote, urlsplit

from email_validator import EmailNotValidError, validate_email
from email_validator import rfc_constants as _email_rules

from crm.errors import ValidationError

_LINKEDIN_HOST = re.compile(r"^([a-z]{2,3}\.)?(www\.)?linkedin\.com$")
_LINKEDIN_PATH = re.compile(r"^/(in|pub)/([^/?#]+)")
_PHONE_ALLOWED = re.compile(r"^[+\d\s().\-/]*(?:(?:ext|x)\.?\s*\d+)?$", re.IGNORECASE)

# Fast paths for the common shapes, so an import of a million rows does not spend most of its
# time in the general parsers. Each gives exactly what the general path gives, or steps aside
# (None) and lets the general path decide; tests/test_importer.py checks the two agree.
_ATEXT = r"a-zA-Z0-9_!#$%&'*+\-/=?^`{|}~"
_PLAIN_ADDRESS = re.compile(rf"([{_ATEXT}]+(?:\.[{_ATEXT}]+)*)@([a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+)")
_CASE_INSENSITIVE_MAILBOXES = frozenset(
    getattr(_email_rules, "CASE_INSENSITIVE_MAILBOX_NAMES", None) or ()
)
_EMAIL_MAX_LENGTH: int = getattr(_email_rules, "EMAIL_MAX_LENGTH", 0)
_PLAIN_LINKEDIN = re.compile(
    r"(?:(?i:https?)://)?(?i:(?:[a-z]{2,3}\.)?(?:www\.)?linkedin\.com)/(in|pub)/([A-Za-z0-9_-]+)/?"
)


@functools.lru_cache(maxsize=4096)
def _plain_domain(domain: str) -> tuple[str, str] | None:
    """(domain, IDNA ASCII domain) as email_validator normalizes them, None if it refuses."""
    try:
        checked = validate_email(f"a@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return checked.domain, checked.ascii_domain or checked.domain


def _plain_email(text: str) -> str | None:
    """validate_email(text).normalized for a plain dot-atom address, or None to ask it.

    Such an address has no display name, quotes or non-ASCII local part, so email_validator
    keeps the local part as it is (bar the RFC 2142 mailbox names it lower-cases: left to
    it) and only the domain needs its checks, which depend on the domain alone: cached.
    """
    if not _EMAIL_MAX_LENGTH:
        return None
    match = _PLAIN_ADDRESS.fullmatch(text)
    if match is None:
        return None
    local, domain = match.groups()
    if local.lower() in _CASE_INSENSITIVE_MAILBOXES:
        return None
    checked = _plain_domain(domain)
    if checked is None:
        return None
    shown, ascii_domain = checked
    address = f"{local}@{shown}"
    # text and the ASCII form are ASCII (one byte a character); the shown domain may not be.
    longest = max(len(text), len(local) + 1 + len(ascii_domain), len(address.encode("utf-8")))
    if longest > _EMAIL_MAX_LENGTH:
        return None
    return address


def _plain_linkedin(text: str) -> tuple[str, str] | None:
    """normalize_linkedin's answer for a plain profile URL, or None to let it parse the URL."""
    match = _PLAIN_LINKEDIN.fullmatch(text)
    if match is None:
        return None
    kind, slug = match.group(1), match.group(2).lower()
    return f"https://www.linkedin.com/{kind}/{slug}", f"linkedin.com/{kind}/{slug}"


def clean_text(value: str | None) -> str:
    """Unicode-normalized (NFKC), trimmed text; None becomes ''."""
    if value is None:
        return ""
    if value.__class__ is str and value.isascii():
        return value.strip()  # ASCII is already NFKC: skip the normalizer (hot in imports)
    return unicodedata.normalize("NFKC", str(value)).strip()


def normalize_email(value: str | None) -> tuple[str, str] | None:
    """(address to show, dedupe key) for an email, None for blank; ValidationError if bad.

    The key is the whole address in lower case: mail providers treat the local part
    case-insensitively in practice, and two records for one inbox are one person.
    """
    text = clean_text(value)
    if not text:
        return None
    if text.lower().startswith("mailto:"):
        text = text[7:].strip()
    plain = _plain_email(text)
    if plain is not None:
        return plain, plain.lower()
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(f"{text!r} is not a valid email address ({error}).") from None
    address = checked.normalized
    return address, address.lower()


def email_key(value: str | None) -> str | None:
    """The dedupe key of an email address (normalize_email), None when it is blank or not
    an address."""
    try:
        normalized = normalize_email(value)
    except ValidationError:
        return None
    return normalized[1] if normalized else None


def normalize_linkedin(value: str | None) -> tuple[str, str] | None:
    """(URL to show, dedupe key) for a LinkedIn profile URL, None for blank.

    Scheme, www or country subdomain, trailing slash, query and fragment do not matter:
    'https://uk.linkedin.com/in/Ana-Lima/?trk=x' and 'linkedin.com/in/ana-lima' are one
    profile, keyed 'linkedin.com/in/ana-lima'.
    """
    text = clean_text(value)
    if not text:
        return None
    plain = _plain_linkedin(text)
    if plain is not None:
        return plain
    candidate = text if "://" in text else f"https://{text}"
    try:
        parts = urlsplit(candidate)
    except ValueError:  # e.g. "[" makes urlsplit expect an IPv6 host
        parts = None
    if parts is None:
        raise ValidationError(
            f"{text!r} is not a LinkedIn profile URL (like https://www.linkedin.com/in/name)."
        )
    host = (parts.hostname or "").lower()
    match = _LINKEDIN_PATH.match(parts.path)
    if parts.scheme.lower() not in {"http", "https"} or not _LINKEDIN_HOST.match(host) or not match:
        raise ValidationError(
            f"{text!r} is not a LinkedIn profile URL (like https://www.linkedin.com/in/name)."
        )
    kind, slug = match.group(1), unquote(match.group(2)).strip().lower()
    if not slug:
        raise ValidationError(f"{text!r} has no profile name after /{kind}/.")
    return f"https://www.linkedin.com/{kind}/{slug}", f"linkedin.com/{kind}/{slug}"


def normalize_phone(value: str | None) -> tuple[str, str] | None:
    """(phone to show, digits key) for a phone number, None for blank."""
    text = clean_text(value)
    if not text:
        return None
    if not _PHONE_ALLOWED.match(text):
        raise ValidationError(f"{text!r} is not a phone number.")
    main = re.split(r"(?i)\s*(?:ext|x)\.?\s*\d+$", text)[0]
    digits = re.sub(r"\D", "", main)
    if len(digits) < 6 or len(digits) > 15:
        raise ValidationError(f"{text!r} is not a phone number (6 to 15 digits).")
    key = ("+" if main.lstrip().startswith("+") else "") + digits
    return text, key


def address_hash(email_key: str) -> str:
    """The suppression list's key for an address: a hash that survives erasure."""
    return hashlib.sha256(email_key.strip().lower().encode("utf-8")).hexdigest()
