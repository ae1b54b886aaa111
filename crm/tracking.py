"""The public routes a message's recipient reaches: open pixel, click redirect, unsubscribe.

Thin handlers over crm.engagement (as listmonk keeps its public handlers in one file).
They need no login and set no cookies. Every token is signed (crm.tokens) and names one
message or one stored link: a forged or altered token gets a plain 404 and changes
nothing, and a click can only ever go to a URL stored when the message was sent. Opens
and clicks are queued and written in batches by one thread (crm.engagement.HitBuffer);
the other database work runs in a thread pool, so nothing blocks the event loop.
"""

from __future__ import annotations

import base64
import logging
import threading

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from crm import clock, composer, engagement, tokens
from crm.config import load_settings
from crm.db import get_engine

log = logging.getLogger(__name__)

# The smallest transparent GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f6f7f5; color: #1d2b25; }}
main {{ max-width: 32rem; margin: 12vh auto; padding: 2rem; background: #fff;
       border-radius: 12px; box-shadow: 0 1px 4px rgba(0,0,0,.08); }}
button {{ font: inherit; padding: .6rem 1.2rem; border: 0; border-radius: 8px;
          background: #2f6f5e; color: #fff; cursor: pointer; }}
</style></head>
<body><main>{body}</main></body></html>"""


def _engine() -> Engine:
    """The process-wide engine for CRM_DATABASE_URL."""
    return get_engine(load_settings().database_url)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=title, body=body), status_code=status, headers=NO_STORE)


def _not_found() -> PlainTextResponse:
    return PlainTextResponse("Not found", status_code=404, headers=NO_STORE)


_buffer: engagement.HitBuffer | None = None
_buffer_lock = threading.Lock()


def hits() -> engagement.HitBuffer:
    """The process's queue of opens and clicks, written in batches by one thread."""
    global _buffer
    with _buffer_lock:
        if _buffer is None:
            _buffer = engagement.HitBuffer(_engine())
            _buffer.start()
        return _buffer


def shutdown() -> None:
    """Write what is queued (the server's lifespan calls this when it stops)."""
    global _buffer
    with _buffer_lock:
        buffer, _buffer = _buffer, None
    if buffer is not None:
        buffer.stop()


async def open_pixel(request: Request) -> Response:
    """Always answers the image at once; the open is queued if the token is ours."""
    token = request.path_params["token"].removesuffix(".gif")
    outbox_id = tokens.verify("open", token)
    if outbox_id is not None:
        hits().add(engagement.Hit(outbox_id, clock.now(), request.headers.get("user-agent")))
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def click(request: Request) -> Response:
    named = engagement.read_click_token(request.path_params["token"])
    if named is None:
        return _not_found()
    outbox_id, position, legacy = named
    target = await run_in_threadpool(
        engagement.link_target, _engine(), outbox_id, position, legacy=legacy
    )
    if target is None:
        return _not_found()
    link_id, url = target
    hits().add(
        engagement.Hit(outbox_id, clock.now(), request.headers.get("user-agent"), link_id=link_id)
    )
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


async def unsubscribe(request: Request) -> Response:
    """GET asks (link scanners prefetch GETs); POST unsubscribes at once (RFC 8058)."""
    token = request.query_params.get("t", "")
    if token == composer.PREVIEW_TOKEN:  # the link as a preview or a test email shows it
        if request.method == "POST":
            return PlainTextResponse("A test email: nobody was unsubscribed", headers=NO_STORE)
        return _page(
            "Unsubscribe (test)",
            "<h1>This came from a test email</h1><p>In a real message this link unsubscribes "
            "the person it was sent to. From a preview or a test email it unsubscribes no "
            "one.</p>",
        )
    outbox_id = tokens.verify("unsubscribe", token)
    if outbox_id is None:
        return _page(
            "Link not recognised",
            "<h1>This link is not recognised</h1><p>It may have been cut short. "
            "Use the unsubscribe link in the email exactly as it is.</p>",
            404,
        )
    if request.method == "GET":
        return _page(
            "Unsubscribe",
            "<h1>Unsubscribe?</h1><p>You will not get any more emails from us.</p>"
            f'<form method="post" action="/unsubscribe?t={token}">'
            '<button type="submit">Unsubscribe</button></form>',
        )
    form = await request.form()
    how = "one-click" if form.get("List-Unsubscribe") == "One-Click" else "page"
    done = await run_in_threadpool(engagement.unsubscribe, _engine(), outbox_id, how=how)
    if not done:
        return _not_found()
    if how == "one-click":
        return PlainTextResponse("Unsubscribed", headers=NO_STORE)
    return _page(
        "Unsubscribed",
        "<h1>You are unsubscribed</h1><p>You will not get any more emails from us. "
        "Sorry to see you go.</p>",
    )


routes = [
    Route("/o/{token}", open_pixel, methods=["GET"]),
    Route("/c/{token}", click, methods=["GET"]),
    Route("/unsubscribe", unsubscribe, methods=["GET", "POST"]),
]
