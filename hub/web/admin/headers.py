"""Response headers of the admin's pages: another site may not frame them (clickjacking),
and a browser runs only the admin's own script and styles from /static, so text that
slips into a page unescaped (a customer's name, a CRM's error) cannot run as script.

The policy is strict because the templates keep no inline script, style attribute or
event handler (behaviour lives in static/admin.js, htmx is told not to inject styles or
evaluate attributes). The OAuth Connect button is a link, not a form, so form-action
'self' does not stop its redirect to the service's authorization page.
"""
from __future__ import annotations

from flask import Response, current_app

from hub.web.admin import bp

POLICY = "; ".join([
    "default-src 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
])
HSTS_SECONDS = 365 * 24 * 3600


@bp.after_request
def _security_headers(response: Response) -> Response:
    headers = response.headers
    # setdefault: a view with a stricter policy of its own (media: sandbox) keeps it.
    headers.setdefault("Content-Security-Policy", POLICY)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")  # paths stay home; CSRF's referrer check works
    if current_app.config["SESSION_COOKIE_SECURE"]:  # base_url is https
        headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")
    return response
