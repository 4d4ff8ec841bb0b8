"""The "Connect" button of connectors whose service grants access through an OAuth
authorization page (HubSpot's app install): the admin's browser goes there and comes back
to one callback URL of the hub, which stores what the connector makes of the redirect
(the authorization code) and runs Test connection, which exchanges it for tokens.

A connector offers the button by implementing authorize_url(redirect_uri, state) and
accept_authorization(params, redirect_uri) (connectors/base.py). The state ties the
callback to the admin's session and to the connector; it is single-use.
"""
from __future__ import annotations

import secrets
from typing import Any

from flask import flash, redirect, request, session, url_for
from flask_babel import gettext as _

from connectors.base import Connector, registry
from hub.crm.check import run_check
from hub.crm.store import InvalidConnector, build_connector, update_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from hub.shared.security import constant_time_equal, redact_text
from hub.web.admin import bp
from hub.web.admin.auth import ADMIN, roles
from hub.web.lookups import current_runtime, detached_or_404, get_or_404

_STATE = "connector_oauth"  # session key: {"state": ..., "connector_id": ...}


def callback_url() -> str:
    """The one redirect URL to register in the service's app settings."""
    return current_runtime().config.base_url.rstrip("/") + "/admin/connectors/oauth/callback"


def offers_connect(kind_cls: type[Connector] | None) -> bool:
    return kind_cls is not None and callable(getattr(kind_cls, "authorize_url", None))


def connect_offer(record: ConnectorRecord) -> str | None:
    """The redirect URL to show beside a Connect button, when this connector's settings
    use an authorization page; None otherwise."""
    kind_cls = registry.find(record.kind)
    if not offers_connect(kind_cls):
        return None
    try:
        return callback_url() if _build(record).authorize_url(callback_url(), "-") else None
    except Exception:  # settings a connector cannot start with: the page shows the rest
        return None


def _build(record: ConnectorRecord) -> Connector:
    runtime = current_runtime()
    return build_connector(runtime.db, runtime.vault, record, clock=utcnow,
                           http_timeout=runtime.config.delivery.http_timeout_seconds,
                           base_url=runtime.config.base_url)


def _connector(connector_id: int) -> tuple[ConnectorRecord, Connector]:
    record = detached_or_404(ConnectorRecord, connector_id)
    return record, _build(record)


@bp.get("/connectors/<int:connector_id>/connect")
@roles(*ADMIN)
def connector_connect(connector_id: int) -> Any:
    record, connector = _connector(connector_id)
    state = secrets.token_urlsafe(24)
    target = connector.authorize_url(callback_url(), state) if offers_connect(type(connector)) else None
    if not target:
        flash(_("This connector's settings do not use an authorization page: choose OAuth and fill in the "
                "app's client ID first."), "error")
        return redirect(url_for("admin.connector", connector_id=connector_id))
    session[_STATE] = {"state": state, "connector_id": record.id}
    return redirect(target)


@bp.get("/connectors/oauth/callback")
@roles(*ADMIN)
def connector_oauth_callback() -> Any:
    expected = session.pop(_STATE, None)
    given = request.args.get("state", "")
    if not expected or not given or not constant_time_equal(given, expected["state"]):
        flash(_("This authorization was not started from this browser session, or was already used: press "
                "Connect again."), "error")
        return redirect(url_for("admin.connectors"))
    connector_id = int(expected["connector_id"])
    record, connector = _connector(connector_id)
    params = {key: value for key, value in request.args.items()}
    runtime = current_runtime()
    try:
        changes = connector.accept_authorization(params, callback_url())
        with runtime.db.scope() as s:
            fresh = get_or_404(s, ConnectorRecord, connector_id)
            update_connector(s, runtime.vault, fresh, now=utcnow(), settings=changes)
    except (ValueError, InvalidConnector) as exc:
        flash(_("Connecting failed: %(m)s", m=redact_text(str(exc), [params.get("code", "")])), "error")
        return redirect(url_for("admin.connector", connector_id=connector_id))
    result = run_check(runtime, connector_id, now=utcnow())  # exchanges the code for tokens
    message = redact_text(result.message, [params.get("code", "")])
    flash(_("Connected: %(m)s", m=message) if result.ok else _("Connecting failed: %(m)s", m=message),
          "success" if result.ok else "error")
    return redirect(url_for("admin.connector", connector_id=connector_id))
