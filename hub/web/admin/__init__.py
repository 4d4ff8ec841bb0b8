"""The admin web UI under /admin: server-rendered pages (Jinja2 + htmx, vendored static
files, no build step) for setup, channels, connectors, the delivery log, the operator
inbox and templates.

One blueprint; each module adds the routes of one area. Every view is behind a login
(auth.py) and a role; every POST carries a CSRF token (checked here, for the admin only,
so the REST API and inbound webhooks keep their own authentication); every response
carries a strict Content-Security-Policy (headers.py), so pages keep no inline script.
"""
from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("admin", __name__, url_prefix="/admin")


def init_admin(app: Flask) -> None:
    from hub.web.admin import auth, i18n, views

    i18n.init(app)
    auth.init(app)
    views.init(app)
    # Route modules register on `bp` when imported.
    from hub.web.admin import (  # noqa: F401
        accounts, automation_steps, automations, broadcasts, channels, connector_oauth, connectors, contact_card, contact_merge, dashboard, deliveries, headers,
        inbox, password, instagram_channels, presence, reports, routing, telegram_channels, templates,
    )

    app.register_blueprint(bp)
