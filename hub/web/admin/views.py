"""What every admin page shares: Jinja filters for times, JSON and statuses, and the
navigation a role sees."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app, request
from flask_babel import format_datetime, format_timedelta, get_locale, gettext, lazy_gettext as _l
from flask_login import current_user

from hub.platform.db import utcnow
from hub.web.admin.i18n import LANGUAGES

# (endpoint, label, roles that see it)
NAV = [
    ("admin.dashboard", _l("Overview"), ("admin", "operator", "viewer")),
    ("admin.inbox", _l("Inbox"), ("admin", "operator", "viewer")),
    ("admin.channels", _l("Channels"), ("admin", "operator", "viewer")),
    ("admin.connectors", _l("Connectors"), ("admin", "operator", "viewer")),
    ("admin.deliveries", _l("Deliveries"), ("admin", "operator", "viewer")),
    ("admin.templates", _l("Templates"), ("admin", "operator", "viewer")),
    ("admin.routing", _l("Routing"), ("admin", "operator", "viewer")),
    ("admin.automations", _l("Automations"), ("admin", "operator", "viewer")),
    ("admin.broadcasts", _l("Broadcasts"), ("admin", "operator", "viewer")),
    ("admin.operators", _l("Operators"), ("admin", "operator", "viewer")),
    ("admin.reports", _l("Reports"), ("admin", "operator", "viewer")),
    ("admin.users", _l("Users & tokens"), ("admin",)),
]

TONES = {
    # health, delivery, message and template statuses -> badge colour
    "ok": "good", "done": "good", "delivered": "good", "read": "good", "APPROVED": "good", "GREEN": "good",
    "HIGH": "good", "open": "good", "received": "neutral", "sent": "neutral",
    "pending": "warn", "leased": "warn", "queued": "warn", "sending": "warn", "PENDING": "warn",
    "YELLOW": "warn", "MEDIUM": "warn", "PAUSED": "warn", "IN_APPEAL": "warn",
    "dead": "bad", "failed": "bad", "unhealthy": "bad", "REJECTED": "bad", "RED": "bad", "LOW": "bad",
    "DISABLED": "bad", "DELETED": "muted", "closed": "muted", "unknown": "muted", "disabled": "muted",
}


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_datetime(value, "yyyy-MM-dd HH:mm") + " UTC"


def ago(value: datetime | None) -> str:
    if value is None:
        return "—"
    return format_timedelta(value - utcnow(), add_direction=True, granularity="second")


def duration(value: timedelta | float | None) -> str:
    if value is None:
        return "—"
    if not isinstance(value, timedelta):
        value = timedelta(seconds=value)
    return format_timedelta(value, granularity="second", threshold=1.5)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def translate(value: Any) -> str:
    """Translate a text that comes from data (a schema's label, a service's error) as
    plain text, so it is escaped like any value; the `_()` of templates would mark it safe."""
    return gettext(str(value)) if value not in (None, "") else ""


def tone(value: Any) -> str:
    return TONES.get(str(value), "neutral")


def _nav() -> list[tuple[str, Any]]:
    if not current_user.is_authenticated:
        return []
    return [(endpoint, label) for endpoint, label, allowed in NAV if current_user.role in allowed]


AREAS = {"dashboard": "admin.dashboard", "inbox": "admin.inbox", "channels": "admin.channels",
         "connectors": "admin.connectors", "connector_oauth": "admin.connectors", "deliveries": "admin.deliveries", "templates": "admin.templates",
         "accounts": "admin.users", "routing": "admin.routing", "automations": "admin.automations",
         "broadcasts": "admin.broadcasts",
         "presence": "admin.operators",
         "reports": "admin.reports"}


def _area() -> str:
    """The nav entry of the module that serves this page."""
    view = current_app.view_functions.get(request.endpoint or "")
    module = getattr(view, "__module__", "").rsplit(".", 1)[-1]
    return AREAS.get(module, "")


def _context() -> dict[str, Any]:
    return {
        "nav": _nav(),
        "languages": LANGUAGES,
        "locale": str(get_locale() or "en"),
        "active_area": _area(),
    }


def init(app: Flask) -> None:
    app.jinja_env.filters.update(when=when, ago=ago, duration=duration, pretty_json=pretty_json, tone=tone,
                                  tr=translate)
    app.context_processor(_context)
