"""Public tracking endpoints: GET /l/<slug> (visit -> wa.me redirect) and /t.js.

Both are hit by anonymous visitors, so nothing they send is trusted or echoed raw:
values are capped and cleaned before storage (hub.tracking.visits) and pages are Jinja
templates with autoescape.

/l/<slug> is the hub's busiest public route (every ad click), and its visitors need
nothing of the admin: a visit is answered in front of Flask (VisitLane), and whatever
reaches Flask under /l/ gets no cookie session (SessionlessPaths); its pages are
rendered without the admin's template context (login state, locale, navigation),
which would cost more than the visit itself.
"""
from __future__ import annotations

import inspect
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, Flask, Request, Response, current_app, make_response, request
from flask.sessions import SessionInterface
from markupsafe import escape
from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Request as WerkzeugRequest

from hub.platform.db import utcnow
from hub.tracking.visits import (
    CodesExhausted, LinkNotFound, find_link, is_preview_bot, load_ip_salt, record_visit, visit_fields,
)

log = logging.getLogger(__name__)
bp = Blueprint("tracking", __name__)

SLUG_SHAPE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SCRIPT = Path(__file__).resolve().parent / "static" / "t.js"
SALT_KEY = "hub.tracking.ip_salt"


class SessionlessPaths(SessionInterface):
    """The app's own session interface, except that requests under `prefix` get none
    (Flask then uses a NullSession and sets no cookie): a visitor following a tracked
    link keeps no state with the hub, and opening the signed cookie costs every click."""

    def __init__(self, inner: SessionInterface, prefix: str):
        self.inner = inner
        self.prefix = prefix

    def open_session(self, app: Flask, request: Request):  # type: ignore[override]
        if request.path.startswith(self.prefix):
            return None
        return self.inner.open_session(app, request)

    def save_session(self, app, session, response) -> None:  # type: ignore[override]
        self.inner.save_session(app, session, response)

    def make_null_session(self, app):  # type: ignore[override]
        return self.inner.make_null_session(app)

    def is_null_session(self, obj) -> bool:
        return self.inner.is_null_session(obj)

    def __getattr__(self, name: str):  # cookie settings, serializer, ...: the app's own
        return getattr(self.inner, name)


class VisitLane:
    """WSGI, just in front of Flask: answers a visitor's GET /l/<slug> on its own.

    A click needs its query string, cookies and address, one INSERT and a redirect;
    Flask's request machinery (contexts, routing, the app-wide hooks of the admin and
    the API) costs more than all of that. Anything that is not a plain visit (HEAD,
    link previews, a malformed slug, other paths) goes on to Flask untouched, and the
    lane sits inside any middleware the app already has (ProxyFix), so the visitor's
    address is read the same way."""

    def __init__(self, app: Flask, inner):
        self.app = app
        self.inner = inner

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if (environ.get("REQUEST_METHOD") == "GET" and path.startswith("/l/") and SLUG_SHAPE.match(path[3:])
                and not is_preview_bot(environ.get("HTTP_USER_AGENT"))):
            try:
                response = answer_visit(self.app, path[3:], WerkzeugRequest(environ))
            except Exception:  # what Flask would do for the route: log it, answer 500
                log.exception("Exception on %s [GET]", path)
                return InternalServerError()(environ, start_response)
            return response(environ, start_response)
        return self.inner(environ, start_response)


def _insert_lane(app: Flask) -> None:
    """Wrap Flask's own wsgi_app, under the middlewares already wrapped around it."""
    holder, attr = app, "wsgi_app"
    while not (inspect.ismethod(getattr(holder, attr)) and getattr(holder, attr).__self__ is app):
        holder, attr = getattr(holder, attr), "app"  # werkzeug middlewares keep the next app as .app
        if not hasattr(holder, attr):
            log.warning("/l/<slug> served by Flask: cannot see inside %r", holder)
            return
    setattr(holder, attr, VisitLane(app, getattr(holder, attr)))


@bp.record_once
def _set_up(state) -> None:
    # At start-up, so production without [tracking] ip_salt refuses to start.
    state.app.extensions[SALT_KEY] = load_ip_salt(state.app.extensions["hub"].config)
    state.app.session_interface = SessionlessPaths(state.app.session_interface, "/l/")
    _insert_lane(state.app)


def _page(app: Flask, name: str, **values: str) -> str:
    """A tracking page from its template alone: autoescaped, no context processors."""
    return app.jinja_env.get_template(name).render(**values)


_MARK = "\x00url\x00"


def _redirect_page(app: Flask, url: str) -> bytes:
    """The redirect page's fallback link. The template is rendered once with a marker
    where the URL goes and the escaped URL (what autoescape would write) is put in its
    place: a click should not pay for a template render."""
    cache = app.extensions.setdefault("hub.tracking.redirect_page", {})
    if "parts" not in cache:
        parts = _page(app, "tracking/redirect.html", url=_MARK).split(_MARK)
        cache["parts"] = parts if len(parts) == 2 else None  # a template that transforms url: render
    if cache["parts"] is None:
        return _page(app, "tracking/redirect.html", url=url).encode()
    before, after = cache["parts"]
    return f"{before}{escape(url)}{after}".encode()


@dataclass(frozen=True)
class Answer:
    """A response as WSGI wants it, built without werkzeug's header machinery (the
    Location is ASCII already: wa_me_url percent-encodes the text)."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes

    def __call__(self, environ, start_response):
        start_response(self.status, self.headers)
        return [self.body]

    def to_response(self) -> Response:
        return Response(self.body, int(self.status[:3]), headers=self.headers)


_NO_STORE = (("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex"), ("Referrer-Policy", "no-referrer"))
_NOSNIFF = ("X-Content-Type-Options", "nosniff")  # what the app adds to every Flask answer


def _not_found(app: Flask, slug: str, status: int = 404) -> Answer:
    body = _page(app, "tracking/not_found.html", slug=slug[:200]).encode()
    return Answer("404 NOT FOUND" if status == 404 else "503 SERVICE UNAVAILABLE",
                  [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                   ("Cache-Control", "no-store"), _NOSNIFF], body)


def answer_visit(app: Flask, slug: str, req: WerkzeugRequest) -> Answer:
    """Record a visitor's visit of `slug` (already checked against SLUG_SHAPE) and
    answer the redirect to WhatsApp with its code; the 404 page for no such link."""
    slug = slug.lower()
    runtime = app.extensions["hub"]
    # Plain dicts: a werkzeug MultiDict raises (and catches) an exception for every
    # absent key, and most of the tags looked up are absent.
    fields = visit_fields(req.args.to_dict(), req.cookies.to_dict(), referer=req.referrer,
                          user_agent=req.user_agent.string, ip=req.remote_addr, salt=app.extensions[SALT_KEY])
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    try:
        redirect = record_visit(runtime.db, slug, fields, now=utcnow(), window=window)
    except LinkNotFound:
        return _not_found(app, slug)
    except CodesExhausted:
        log.error("tracked link %s: no free code could be minted", slug)
        return _not_found(app, slug, 503)
    body = _redirect_page(app, redirect.url)
    return Answer("302 FOUND", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                                ("Location", redirect.url), *_NO_STORE, _NOSNIFF], body)


@bp.route("/l/<path:slug>", methods=["GET"])
def visit(slug: str):
    """What VisitLane hands on: HEAD, link previews and malformed slugs (no visit)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not SLUG_SHAPE.match(slug):
        return _not_found(app, slug).to_response()
    if request.method == "HEAD" or is_preview_bot(request.user_agent.string):  # checkers, previews: no visit
        found = find_link(app.extensions["hub"].db, slug.lower())
        if found is None:
            return _not_found(app, slug).to_response()
        return Response(status=302, headers=[("Location", found[3]), *_NO_STORE])
    return answer_visit(app, slug, request).to_response()


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
