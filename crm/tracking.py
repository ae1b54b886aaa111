"""The public routes a message's recipient reaches: open pixel, click redirect, unsubscribe.

Thin handlers over crm.engagement (as listmonk keeps its public handlers in one file).
They need no login and set no cookies. Every token is signed (crm.tokens) and names one
message or one stored link: a forged or altered token gets a plain 404 and changes
nothing, and a click can only ever go to a URL stored when the message was sent. Database
work runs in a thread, so a slow write never blocks the server's event loop.
"""

from __future__ import annotations

import base64
import logging

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from crm import engagement, tokens
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


async def open_pixel(request: Request) -> Response:
    """Always answers the image (a broken image helps nobody); records the open if real."""
    token = request.path_params["token"].removesuffix(".gif")
    outbox_id = tokens.verify("open", token)
    if outbox_id is not None:
        agent = request.headers.get("user-agent")
        try:
            await run_in_threadpool(engagement.record_open, _engine(), outbox_id, user_agent=agent)
        except Exception:  # the pixel must answer even when the database does not
            log.exception("Could not record an open for message %s", outbox_id)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


async def click(request: Request) -> Response:
    ident = tokens.verify("click", request.path_params["token"])
    if ident is None:
        return _not_found()
    outbox_id, position = divmod(ident, engagement.LINK_POSITION_LIMIT)
    url = await run_in_threadpool(
        engagement.record_click,
        _engine(),
        outbox_id,
        position,
        user_agent=request.headers.get("user-agent"),
    )
    if url is None:
        return _not_found()
    return RedirectResponse(url, status_code=302, headers=NO_STORE)


async def unsubscribe(request: Request) -> Response:
    """GET asks (link scanners prefetch GETs); POST unsubscribes at once (RFC 8058)."""
    token = request.query_params.get("t", "")
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
