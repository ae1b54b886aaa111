"""Who a person is: normalized email, LinkedIn profile and phone, for dedupe and suppression.

A person is identified by a normalized email address or a normalized LinkedIn profile URL;
either one is enough. Entry, import and merge all go through these functions, so the same
person written two ways is still one person.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import unquote, urlsplit

from email_validator import EmailNotValidError, validate_email

from crm.errors import ValidationError

_LINKEDIN_HOST = re.compile(r"^([a-z]{2,3}\.)?(www\.)?linkedin\.com$")
_LINKEDIN_PATH = re.compile(r"^/(in|pub)/([^/?#]+)")
_PHONE_ALLOWED = re.compile(r"^[+\d\s().\-/]*(?:(?:ext|x)\.?\s*\d+)?$", re.IGNORECASE)


def clean_text(value: str | None) -> str:
    """Unicode-normalized (NFKC), trimmed text; None becomes ''."""
    if value is None:
        return ""
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
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(f"{text!r} is not a valid email address ({error}).") from None
    address = checked.normalized
    return address, address.lower()


def normalize_linkedin(value: str | None) -> tuple[str, str] | None:
    """(URL to show, dedupe key) for a LinkedIn profile URL, None for blank.

    Scheme, www or country subdomain, trailing slash, query and fragment do not matter:
    'https://uk.linkedin.com/in/Ana-Lima/?trk=x' and 'linkedin.com/in/ana-lima' are one
    profile, keyed 'linkedin.com/in/ana-lima'.
    """
    text = clean_text(value)
    if not text:
        return None
    candidate = text if "://" in text else f"https://{text}"
    parts = urlsplit(candidate)
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
