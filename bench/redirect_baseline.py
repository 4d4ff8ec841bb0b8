"""The baseline of bench/redirect.py: a bare WSGI app that answers every request with a
fixed 302 to wa.me, nothing else. Served by gunicorn exactly like the hub."""
from __future__ import annotations

LOCATION = "https://wa.me/15550001111?text=Hello%21%20My%20request%20number%3A%20K7Q2M4"
BODY = b""


def app(environ, start_response):
    start_response("302 Found", [("Location", LOCATION), ("Content-Length", "0"), ("Cache-Control", "no-store")])
    return [BODY]
