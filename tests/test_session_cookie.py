"""The sign-in cookie, set and cleared by the server: tickets, the routes, old cookies."""

from __future__ import annotations

import asyncio
import datetime as dt
import urllib.parse

import jwt
import pytest
import time_machine
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from crm import auth, clock, session_cookie
from crm.models import User
from tests.conftest import TEST_SECRET


class Client:
    """Calls the routes' handlers with real Starlette requests (no server needed)."""

    def get(self, path: str, params: dict[str, str] | None = None) -> Response:
        handler = next(route.endpoint for route in session_cookie.routes if route.path == path)
        query = urllib.parse.urlencode(params or {}).encode()
        scope = {"type": "http", "method": "GET", "path": path, "headers": [],
                 "query_string": query}  # fmt: skip
        return asyncio.run(handler(Request(scope)))


def set_cookie_headers(response: Response) -> list[str]:
    return [v.decode() for k, v in response.raw_headers if k == b"set-cookie"]


def cookie_from(response: Response) -> str:
    header = set_cookie_headers(response)[0]
    return header.split(";", 1)[0].split("=", 1)[1]


@pytest.fixture
def client(crm_env: str) -> Client:
    return Client()


def test_a_ticket_sets_an_httponly_strict_cookie_once(client: Client) -> None:
    ticket = session_cookie.ticket("rita", secret=TEST_SECRET)
    response = client.get("/session/start", params={"ticket": ticket, "next": "/jobs"})
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    set_cookie = set_cookie_headers(response)[0]
    assert set_cookie.startswith("crm_auth=")
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
    assert "Secure" not in set_cookie  # CRM_PUBLIC_URL is plain http in the tests
    value = cookie_from(response)
    username, issued_at = session_cookie.read_cookie(value, secret=TEST_SECRET)
    assert username == "rita" and abs(issued_at - clock.now()) < dt.timedelta(seconds=5)
    replayed = client.get("/session/start", params={"ticket": ticket})
    assert replayed.status_code == 303 and not set_cookie_headers(replayed)


def test_the_cookie_is_secure_when_the_app_is_served_over_https(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.acme.example")
    ticket = session_cookie.ticket("rita", secret=TEST_SECRET)
    response = client.get("/session/start", params={"ticket": ticket})
    assert "Secure" in set_cookie_headers(response)[0]


@pytest.mark.parametrize(
    "make_ticket",
    [
        lambda: "not-a-ticket",
        lambda: session_cookie.ticket("rita", secret="another-secret-that-is-long"),
        # A sign-in cookie is no ticket, nor is a ticket with its purpose changed.
        lambda: session_cookie.cookie_value("rita", secret=TEST_SECRET, now=clock.now()),
        lambda: jwt.encode(
            {**jwt.decode(session_cookie.ticket("rita", secret=TEST_SECRET), TEST_SECRET,
                          algorithms=["HS256"]), "purpose": "other"},
            TEST_SECRET, algorithm="HS256",
        ),
    ],
)  # fmt: skip
def test_a_forged_or_wrong_ticket_sets_nothing(client: Client, make_ticket) -> None:
    response = client.get("/session/start", params={"ticket": make_ticket()})
    assert response.status_code == 303 and not set_cookie_headers(response)


def test_a_ticket_lapses_after_a_minute(client: Client) -> None:
    with time_machine.travel(clock.now(), tick=False) as traveller:
        ticket = session_cookie.ticket("rita", secret=TEST_SECRET)
        traveller.shift(dt.timedelta(seconds=61))
        response = client.get("/session/start", params={"ticket": ticket})
    assert not set_cookie_headers(response)


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "jobs"]
)
def test_the_routes_only_send_the_browser_back_into_the_app(client: Client, target: str) -> None:
    for path in ("/session/start", "/session/end"):
        response = client.get(path, params={"next": target, "ticket": "x"})
        assert response.headers["location"] == "/"


def test_session_end_clears_the_cookie(client: Client) -> None:
    response = client.get("/session/end", params={"next": "/?signed_out=1"})
    assert response.status_code == 303 and response.headers["location"] == "/?signed_out=1"
    assert 'crm_auth=""' in set_cookie_headers(response)[0]
    assert "Max-Age=0" in set_cookie_headers(response)[0]


def test_a_cookie_signs_in_until_its_user_signs_out_or_it_lapses(
    users: dict[str, User], engine: Engine
) -> None:
    value = session_cookie.cookie_value("recruiter", secret=TEST_SECRET, now=clock.now())
    signed_in = auth.cookie_sign_in(engine, value, secret=TEST_SECRET)
    assert signed_in is not None and signed_in[0].username == "recruiter"
    assert auth.cookie_sign_in(engine, value, secret="another-secret-that-is-long") is None
    auth.sign_out(engine, {}, users["recruiter"])
    assert auth.cookie_sign_in(engine, value, secret=TEST_SECRET) is None
    with time_machine.travel(clock.now() + dt.timedelta(days=15), tick=False):
        later = session_cookie.cookie_value("manager", secret=TEST_SECRET, now=clock.now())
    assert auth.cookie_sign_in(engine, later, secret=TEST_SECRET) is not None
    with time_machine.travel(clock.now() + dt.timedelta(days=15), tick=False):
        old = session_cookie.cookie_value("manager", secret=TEST_SECRET, now=clock.now())
        traveller_later = clock.now() + session_cookie.LIFETIME + dt.timedelta(seconds=1)
    with time_machine.travel(traveller_later, tick=False):
        assert auth.cookie_sign_in(engine, old, secret=TEST_SECRET) is None  # lapsed
