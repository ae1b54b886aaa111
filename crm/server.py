"""The ASGI app: the Streamlit UI (app.py) and, on the same port, the public routes.

`crm serve` runs this module through Streamlit's own launcher, which finds `app` below.
The in-process delivery loop runs here (CRM_WORKER decides whether this process also
delivers mail); the tracking and unsubscribe routes attach here too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from crm import __version__, session_cookie, tracking
from crm.config import SETTINGS, load_settings, raw_setting, secret_key, sso_settings
from crm.db import check_connection, get_engine, parse_url
from crm.errors import CrmError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_SCRIPT = PROJECT_ROOT / "app.py"


async def version(_request: Request) -> JSONResponse:
    """Which build is serving; for the operator's health checks beside /_stcore/health."""
    return JSONResponse({"app": "candidate-crm", "version": __version__})


HEALTH_PATH = "/_stcore/health"
log = logging.getLogger(__name__)
_last_database_problem: str | None = None


def database_problem() -> str | None:
    """Why the configured database cannot be used right now, or None when it can."""
    global _last_database_problem
    try:
        check_connection(get_engine(load_settings().database_url))
        problem = None
    except CrmError as error:
        problem = str(error)
    except Exception as error:  # a health check answers; it never raises
        problem = f"The database check failed ({type(error).__name__})."
    if problem != _last_database_problem:  # log changes, not every probe
        if problem:
            log.error("Health check failing: %s", problem)
        else:
            log.info("The database is usable again.")
        _last_database_problem = problem
    return problem


class DatabaseHealth:
    """ASGI middleware: /_stcore/health fails (503) while the database is unusable.

    Streamlit's own health route only says its runtime is up, so a server whose SQLite
    file was deleted, or whose PostgreSQL went away, kept answering ok. When the database
    is fine the request goes on to Streamlit's route, which still checks the runtime.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in {"GET", "HEAD"}
            and scope["path"].endswith(HEALTH_PATH)  # also under server.baseUrlPath
            and await run_in_threadpool(database_problem)
        ):
            # The reason goes to the log, not to whoever probes (it names paths and hosts).
            response = PlainTextResponse(
                "The database is unavailable.",
                status_code=503,
                headers={"Cache-Control": "no-cache"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# Only this app may frame its pages (clickjacking). SAMEORIGIN, not DENY: Streamlit draws
# some components (the sign-in cookie's among them) in frames served from this origin.
FRAMING_HEADERS = [
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"content-security-policy", b"frame-ancestors 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class NoForeignFraming:
    """ASGI middleware: every HTTP response says that no other site may frame it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [pair for pair in FRAMING_HEADERS if pair[0] not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _freeze_startup_objects() -> None:
    """Import what every rerun uses, then move it out of the garbage collector's sight.

    Streamlit runs a full collection after each script run; with pandas, SQLAlchemy,
    Altair and the app's modules loaded that walks a few hundred thousand long-lived
    objects (well over 100 ms a rerun). gc.freeze() leaves them out of every later
    collection, so the collection only looks at what the rerun itself made.
    """
    import gc
    import importlib

    for module in (
        "pandas",
        "altair",
        "sqlalchemy.orm",
        "crm.attention",
        "crm.auth",
        "crm.campaigns",
        "crm.campaign_lifecycle",
        "crm.outbox_view",
        "crm.goals",
        "crm.pools",
        "crm.content_calendar.cadence",
        "crm.content_calendar.files",
        "crm.candidates",
        "crm.metrics",
    ):
        importlib.import_module(module)
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    """Deliver campaign mail, and read the mailbox when one is set up, in this process,
    unless CRM_WORKER=off (then `crm send` and `crm replies` run as separate workers)."""
    from crm import outbox
    from crm.db import get_engine

    stop = threading.Event()
    thread: threading.Thread | None = None
    settings = load_settings()
    if settings.worker_enabled and settings.smtp_configured:
        engine = get_engine(settings.database_url)
        thread = threading.Thread(
            target=outbox.run_forever,
            kwargs={"engine": engine, "stop": stop},
            name="crm-delivery",
            daemon=True,
        )
        thread.start()
        logging.getLogger(__name__).info("Delivering campaign mail in this process.")
    mailbox_thread: threading.Thread | None = None
    if settings.worker_enabled and settings.imap is not None:
        from crm import replies

        mailbox_thread = threading.Thread(
            target=replies.run_forever,
            kwargs={"engine": get_engine(settings.database_url), "stop": stop},
            name="crm-mailbox",
            daemon=True,
        )
        mailbox_thread.start()
    try:
        yield
    finally:
        stop.set()
        tracking.shutdown()  # write the opens and clicks still queued
        for worker in (thread, mailbox_thread):
            if worker is not None:
                worker.join(timeout=30)


def _no_delay_on_accepted_connections() -> None:
    """Answer small responses without the 40 ms Nagle/delayed-ACK stall.

    Streamlit binds its listening socket itself with protocol 0, so asyncio's own
    TCP_NODELAY (applied only to sockets whose protocol is IPPROTO_TCP) never reaches the
    accepted connections: every response written in two parts (headers, then body) waited
    for the client's delayed ACK, 40 ms each. On Linux an accepted socket inherits
    TCP_NODELAY from the listening one, so setting it there fixes every connection.
    """
    import socket

    try:
        from streamlit.web.server.starlette import starlette_server
    except ImportError:  # another server implementation: nothing to fix
        return
    original = getattr(starlette_server, "_bind_socket", None)
    if original is None or getattr(original, "crm_no_delay", False):
        return

    def bind_socket(*args: Any, **kwargs: Any) -> socket.socket:
        sock = original(*args, **kwargs)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    bind_socket.crm_no_delay = True  # type: ignore[attr-defined]
    starlette_server._bind_socket = bind_socket


def streamlit_secrets() -> dict[str, Any] | None:
    """Streamlit's [auth] section (st.login), built from the CRM_OIDC_* settings.

    The redirect URI is CRM_PUBLIC_URL/oauth2callback, and the secret that signs
    Streamlit's identity cookie is derived from CRM_SECRET_KEY, so every `crm serve`
    process behind one address accepts the same sign-in. None when single sign-on is off.
    """
    sso = sso_settings()
    if sso is None:
        return None
    cookie_secret = hmac.new(
        secret_key().encode("utf-8"), b"streamlit-auth-cookie", hashlib.sha256
    ).hexdigest()
    return {
        "auth": {
            "redirect_uri": sso.redirect_uri,
            "cookie_secret": cookie_secret,
            "client_id": sso.client_id,
            "client_secret": sso.client_secret,
            "server_metadata_url": sso.metadata_url,
        }
    }


_no_delay_on_accepted_connections()
routes = [Route("/api/version", version), *tracking.routes, *session_cookie.routes]

app = st.App(
    str(APP_SCRIPT),
    routes=routes,
    middleware=[Middleware(NoForeignFraming), Middleware(DatabaseHealth)],
    lifespan=lifespan,
    secrets=streamlit_secrets(),
)
_freeze_startup_objects()


def absolute_database_url(url_text: str) -> str:
    """The same URL with a relative SQLite path made absolute against the current folder."""
    url = parse_url(url_text)
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in {"", ":memory:"}:
        return url_text
    if database.startswith("file:") or Path(database).is_absolute():
        return url_text
    return url.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)


def run(*, host: str, port: int) -> None:
    """Serve on host:port until interrupted (used by `crm serve`)."""
    from streamlit.web import cli as streamlit_cli

    if not APP_SCRIPT.is_file():
        raise SystemExit(f"Error: {APP_SCRIPT} is missing; reinstall Candidate CRM.")
    # Streamlit reads .streamlit/config.toml from the working directory, so we move to
    # the project; paths the operator gave relative to where they stood must keep meaning.
    os.environ["CRM_DATABASE_URL"] = absolute_database_url(load_settings().database_url)
    os.environ["CRM_DATA_DIR"] = str(Path(raw_setting("CRM_DATA_DIR") or "data").resolve())
    # Settings from this folder's .streamlit/secrets.toml (single sign-on's among them)
    # must survive the move too; the environment still wins over the file.
    for name in SETTINGS:
        value = raw_setting(name)
        if value and value != SETTINGS[name] and not os.environ.get(name):
            os.environ[name] = value
    os.chdir(PROJECT_ROOT)
    sys.argv = [
        "streamlit",
        "run",
        str(Path(__file__).resolve()),
        "--server.port",
        str(port),
        "--server.address",
        host,
    ]
    streamlit_cli.main()
