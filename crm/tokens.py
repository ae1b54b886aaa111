"""Signed tokens for the public links in messages (unsubscribe, open pixel, click).

A token names one thing (an outbox message or a link) and is signed with CRM_SECRET_KEY,
so a forged or altered token is refused and a link can never be pointed elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from crm.config import secret_key

KINDS = ("unsubscribe", "open", "click")


def _signature(kind: str, ident: int, key: str) -> str:
    digest = hmac.new(key.encode(), f"{kind}:{ident}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def sign(kind: str, ident: int, *, key: str | None = None) -> str:
    if kind not in KINDS:
        raise ValueError(kind)
    return f"{ident}.{_signature(kind, ident, key or secret_key())}"


def verify(kind: str, token: str, *, key: str | None = None) -> int | None:
    """The id the token names, or None when it is not one we signed for this kind."""
    ident_text, _, signature = (token or "").partition(".")
    # ASCII only: "²".isdigit() is true but int() refuses it, and compare_digest refuses
    # non-ASCII text; a strange token must be refused, never crash the route.
    if not (ident_text.isascii() and ident_text.isdigit()) or len(ident_text) > 18:
        return None
    if not signature or not signature.isascii():
        return None
    ident = int(ident_text)
    expected = _signature(kind, ident, key or secret_key())
    return ident if hmac.compare_digest(expected, signature) else None
