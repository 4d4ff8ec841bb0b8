"""Public tracking endpoints: GET /l/<slug> (visit -> wa.me redirect) and /t.js.

Both are hit by anonymous visitors, so nothing they send is trusted or echoed raw:
values are capped and cleaned before storage (hub.tracking.visits) and pages are Jinja
templates with autoescape.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Response, current_app, make_response, render_template, request

from hub.db import utcnow
from hub.tracking.visits import (
    CodesExhausted, LinkNotFound, find_link, is_preview_bot, load_ip_salt, record_visit, visit_fields,
)

log = logging.getLogger(__name__)
bp = Blueprint("tracking", __name__)

SLUG_SHAPE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SCRIPT = Path(__file__).resolve().parent / "static" / "t.js"
SALT_KEY = "hub.tracking.ip_salt"


@bp.record_once
def _load_salt(state) -> None:
    # At start-up, so production without [tracking] ip_salt refuses to start.
    state.app.extensions[SALT_KEY] = load_ip_salt(state.app.extensions["hub"].config)


def _not_found(slug: str, status: int = 404) -> Response:
    response = make_response(render_template("tracking/not_found.html", slug=slug[:200]), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.route("/l/<path:slug>", methods=["GET"])
def visit(slug: str):
    """Record the visit and send the visitor to WhatsApp with the prefilled text."""
    if not SLUG_SHAPE.match(slug):
        return _not_found(slug)
    slug = slug.lower()
    runtime = current_app.extensions["hub"]
    if request.method == "HEAD" or is_preview_bot(request.user_agent.string):  # checkers, previews: no visit
        found = find_link(runtime.db, slug)
        if found is None:
            return _not_found(slug)
        return _no_store(Response(status=302, headers={"Location": f"https://wa.me/{found[3]}"}))
    fields = visit_fields(request.args, request.cookies, referer=request.referrer,
                          user_agent=request.user_agent.string, ip=request.remote_addr,
                          salt=current_app.extensions[SALT_KEY])
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    try:
        redirect = record_visit(runtime.db, slug, fields, now=utcnow(), window=window)
    except LinkNotFound:
        return _not_found(slug)
    except CodesExhausted:
        log.error("tracked link %s: no free code could be minted", slug)
        return _not_found(slug, 503)
    response = make_response(render_template("tracking/redirect.html", url=redirect.url), 302)
    response.headers["Location"] = redirect.url
    return _no_store(response)


@bp.get("/t.js")
def script():
    """The site script that routes wa.me links through /l/<slug> with the page's tags."""
    response = make_response(_script_text())
    response.mimetype = "text/javascript"
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.add_etag()
    return response.make_conditional(request)


_cached: dict[str, str] = {}


def _script_text() -> str:
    if "t.js" not in _cached:
        _cached["t.js"] = SCRIPT.read_text(encoding="utf-8")
    return _cached["t.js"]
