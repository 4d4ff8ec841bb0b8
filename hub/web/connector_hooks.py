"""POST /webhooks/connectors/<key>: a CRM calls the hub (stage changed, reply typed).

The key is unguessable per connector (for CRMs that sign nothing); connectors that can
verify a signature do so in handle_webhook. The connector may call its CRM while
handling (no database transaction is open then); the commands it returns are carried
out in one transaction.
"""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from connectors.base import InboundRequest, WebhookRejected
from hub.crm.commands import execute
from hub.crm.store import build_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from hub.web.webhooks import possible_key

log = logging.getLogger(__name__)
bp = Blueprint("connector_hooks", __name__, url_prefix="/webhooks/connectors")


def _inbound() -> InboundRequest:
    return InboundRequest(
        method=request.method,
        url=request.url,
        path=request.path,
        headers={k: v for k, v in request.headers.items()},
        query={k: v for k, v in request.args.items()},
        body=request.get_data(cache=True),
        form={k: v for k, v in request.form.items()},
    )


@bp.route("/<key>", methods=["GET", "POST"])
@bp.route("/<key>/<path:rest>", methods=["GET", "POST"])
def receive(key: str, rest: str = ""):
    runtime = current_app.extensions["hub"]
    if not possible_key(key):
        return jsonify(error="unknown webhook"), 404
    with runtime.db.scope() as session:
        record = session.scalar(select(ConnectorRecord).where(ConnectorRecord.webhook_key == key))
        if record is None or not record.enabled:
            return jsonify(error="unknown webhook"), 404
        session.expunge(record)
    connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow,
                                http_timeout=runtime.config.delivery.http_timeout_seconds,
                                base_url=runtime.config.base_url)
    handler = getattr(connector, "handle_webhook", None)
    if handler is None:
        return jsonify(error=f"{record.kind} connectors take no webhooks"), 404
    try:
        commands = handler(_inbound())
    except WebhookRejected as exc:
        log.warning("connector %s refused a webhook: %s", record.name, exc.message)
        return jsonify(error=exc.message), exc.status
    with runtime.db.scope() as session:
        results = execute(session, commands, now=utcnow(), connector_id=record.id)
    answered = [r.as_dict() for r in results]
    done = getattr(connector, "commands_done", None)
    if done is not None and commands:
        try:  # after the commit: the service hears of refusals; a failure here loses nothing sent
            done(commands, answered)
        except Exception:  # noqa: BLE001 - the commands were carried out either way
            log.exception("connector %s could not report its commands' results", record.name)
    return jsonify(results=answered), 200
