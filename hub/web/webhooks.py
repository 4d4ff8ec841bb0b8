"""Inbound webhooks, per channel: /webhooks/<kind>/<channel key> for every channel kind
(WhatsApp from Meta or 360dialog, Telegram bots, Instagram accounts), each served by its
kind (ChannelKind.receive_webhook, verify_webhook).

The raw body is stored and processed in ONE transaction; 200 is answered only after it
committed. A body that does not parse is kept (failed, replayable) and still answered
200 so the channel stops resending it; a database failure answers 500 so it retries.
"""
from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

import hub.channels  # noqa: F401  (registers the kinds and their processors)
from hub.channels import registry
from hub.channels.base import ChannelKind, Inbound, WebhookAnswer
from hub.platform.db import utcnow

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

CACHES = "hub.webhook_caches"  # app.extensions key: {kind: the app's copies of its channels}
# Only the kinds there are: any other first segment is a 404 before anything is read.
KINDS = "any(" + ", ".join(registry.names()) + ")"


@bp.record_once
def _remember_channels(state) -> None:
    runtime = state.app.extensions["hub"]
    state.app.extensions[CACHES] = {kind.kind: kind.webhook_cache(runtime.vault)
                                    for kind in registry.every(runtime.config)}


def possible_key(key: str) -> bool:
    """Could this be a URL key the hub made (64 characters at most, no NUL)? Anything
    else is a 404 before the database sees it: PostgreSQL refuses NUL in text."""
    return len(key) <= 64 and "\x00" not in key


def _kind(name: str, key: str) -> ChannelKind:
    if not possible_key(key):
        abort(404)
    return registry.get(name, current_app.extensions["hub"].config)


def _answer(answer: WebhookAnswer) -> Response:
    return Response(answer.body, status=answer.status, mimetype=answer.content_type)


@bp.get(f"/<{KINDS}:kind>/<key>")
def verify(kind: str, key: str):
    """The subscription handshake (Meta's hub.challenge), for the kinds that have one."""
    channel_kind = _kind(kind, key)
    answer = channel_kind.verify_webhook(current_app.extensions["hub"], key, request.args)
    if answer is None:
        abort(405, valid_methods=["POST"])
    return _answer(answer)


@bp.post(f"/<{KINDS}:kind>/<key>")
def receive(kind: str, key: str):
    channel_kind = _kind(kind, key)
    inbound = Inbound(headers=request.headers, body=request.get_data(cache=False))
    return _answer(channel_kind.receive_webhook(current_app.extensions["hub"], key, inbound, utcnow(),
                                                current_app.extensions[CACHES][kind]))


@bp.errorhandler(500)
def _server_error(exc):  # pragma: no cover - message only
    return Response("temporary failure, retry", status=500, mimetype="text/plain")
