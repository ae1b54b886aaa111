"""The sign-in cookie: set and cleared by the server, so the browser's scripts never see it.

A cookie written from the page (as streamlit-authenticator's component did) cannot be
HttpOnly, so any script that got into the page could read a 14-day sign-in. Instead,
after a password sign-in the page sends the browser to /session/start with a ticket: a
one-use token, signed with CRM_SECRET_KEY, valid for a minute. That route sets the cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS) and sends the browser back.
/session/end clears it. Every app process reads the cookie from the request
(st.context.cookies), and honours it only while its user is active and has not signed
out, changed password or been deactivated since it was issued (auth.complete_cookie_login).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import urllib.parse

import jwt
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm import clock
from crm.config import load_settings, secret_key

COOKIE_NAME = "crm_auth"
LIFETIME = dt.timedelta(days=14)
TICKET_LIFETIME = dt.timedelta(seconds=60)
_TICKET = "crm-session-ticket"
_used_tickets: dict[str, float] = {}  # ticket id -> when it lapses (seconds since epoch)
_lock = threading.Lock()


def cookie_value(username: str, *, secret: str, now: dt.datetime) -> str:
    """The cookie's signed value (the format streamlit-authenticator used, so cookies it
    set earlier still sign people in until they lapse)."""
    expires = now + LIFETIME
    return jwt.encode(
        {"username": username, "exp_date": expires.timestamp()}, secret, algorithm="HS256"
    )


def read_cookie(value: str | None, *, secret: str) -> tuple[str, dt.datetime] | None:
    """(username, when the cookie was issued) from a cookie we signed that has not lapsed."""
    if not value:
        return None
    try:
        claims = jwt.decode(value, secret, algorithms=["HS256"])
        username = claims["username"]
        expires = dt.datetime.fromtimestamp(float(claims["exp_date"]), dt.UTC)
    except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError):
        return None
    if not isinstance(username, str) or expires <= clock.now():
        return None
    return username, expires - LIFETIME


def ticket(username: str, *, secret: str) -> str:
    """A one-use, one-minute permission for /session/start to set this user's cookie."""
    now = clock.now()
    claims = {
        "purpose": _TICKET,
        "username": username,
        "jti": secrets.token_urlsafe(16),
        "exp": int((now + TICKET_LIFETIME).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def redeem(value: str, *, secret: str) -> str | None:
    """The username a valid, unexpired, not yet used ticket names; None otherwise."""
    try:
        claims = jwt.decode(value, secret, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.PyJWTError:
        return None
    if claims.get("purpose") != _TICKET or not isinstance(claims.get("username"), str):
        return None
    if not isinstance(claims.get("jti"), str):
        return None
    now = clock.now().timestamp()
    with _lock:
        for used in [key for key, lapses in _used_tickets.items() if lapses < now]:
            del _used_tickets[used]
        if claims["jti"] in _used_tickets:
            return None
        _used_tickets[claims["jti"]] = float(claims["exp"])
    return claims["username"]


def _back_to(request: Request) -> str:
    """Where to send the browser after: a path of this app (never another site)."""
    target = request.query_params.get("next") or "/"
    parts = urllib.parse.urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _secure() -> bool:
    return load_settings().public_url.lower().startswith("https://")


async def start(request: Request) -> Response:
    """Set the sign-in cookie a fresh ticket allows, then go back to the app."""
    secret = secret_key()
    username = redeem(request.query_params.get("ticket", ""), secret=secret)
    response = RedirectResponse(_back_to(request), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    if username is not None:
        now = clock.now()
        response.set_cookie(
            COOKIE_NAME,
            cookie_value(username, secret=secret, now=now),
            max_age=int(LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            secure=_secure(),
            samesite="strict",
        )
    return response


async def end(request: Request) -> Response:
    """Clear the sign-in cookie (after signing out), then go back to the app."""
    response = RedirectResponse(_back_to(request), status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(
        COOKIE_NAME, path="/", httponly=True, secure=_secure(), samesite="strict"
    )
    return response


routes = [
    Route("/session/start", start, methods=["GET"]),
    Route("/session/end", end, methods=["GET"]),
]
