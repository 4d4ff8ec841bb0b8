"""Inbound webhooks: WhatsApp (Meta or 360dialog) per channel.

The raw body is stored and processed in ONE transaction; 200 is answered only after it
committed. A body that does not parse is kept (failed, replayable) and still answered
200 so Meta stops resending it; a database failure answers 500 so Meta retries.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import select

import hub.channels  # noqa: F401  (registers the processors)
from hub.channels.whatsapp.channels import secrets_of
from hub.channels.whatsapp.signature import verify_meta_signature
from hub.db import utcnow
from hub.inbound import receive
from hub.models import Channel
from hub.security import constant_time_equal

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

KEPT_HEADERS = ("content-type", "user-agent", "x-hub-signature-256", "x-forwarded-for")


def _channel(session, key: str) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.key == key))
    if channel is None:
        abort(404)
    return channel


@bp.get("/whatsapp/<key>")
def whatsapp_verify(key: str):
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    runtime = current_app.extensions["hub"]
    with runtime.db.scope() as session:
        secrets = secrets_of(_channel(session, key), runtime.vault)
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    if mode != "subscribe" or not secrets.get("verify_token") or \
            not constant_time_equal(token, secrets["verify_token"]):
        return Response("verify token does not match this channel", status=403, mimetype="text/plain")
    return Response(challenge, status=200, mimetype="text/plain")


def _authentic(channel: Channel, secrets: dict, body: bytes) -> bool:
    if channel.provider == "360dialog":
        header = current_app.extensions["hub"].config.whatsapp.d360_webhook_header
        expected = secrets.get("webhook_token", "")
        return bool(expected) and constant_time_equal(request.headers.get(header, ""), expected)
    return verify_meta_signature(secrets.get("app_secret", ""), body,
                                 request.headers.get("X-Hub-Signature-256"))


@bp.post("/whatsapp/<key>")
def whatsapp_receive(key: str):
    runtime = current_app.extensions["hub"]
    body = request.get_data(cache=False)
    now = utcnow()
    with runtime.db.scope() as session:
        channel = _channel(session, key)
        if not _authentic(channel, secrets_of(channel, runtime.vault), body):
            log.warning("rejected a webhook for channel %s: bad signature or token", channel.id)
            return Response("signature does not match", status=401, mimetype="text/plain")
        receive(session, source="whatsapp", channel_id=channel.id, body=body, now=now, runtime=runtime,
                headers={k: v for k, v in request.headers.items() if k.lower() in KEPT_HEADERS})
        # Coarse on purpose: writing the channel row on every webhook would serialise
        # all of a number's concurrent webhooks on that row's lock.
        if channel.last_webhook_at is None or (now - channel.last_webhook_at).total_seconds() > 30:
            channel.last_webhook_at = now
    return Response("ok", status=200, mimetype="text/plain")


@bp.errorhandler(500)
def _server_error(exc):  # pragma: no cover - message only
    return Response("temporary failure, retry", status=500, mimetype="text/plain")
