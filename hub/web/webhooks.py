"""Inbound webhooks: WhatsApp (Meta or 360dialog), Telegram bots and Instagram accounts, per channel.

The raw body is stored and processed in ONE transaction; 200 is answered only after it
committed. A body that does not parse is kept (failed, replayable) and still answered
200 so Meta stops resending it; a database failure answers 500 so Meta retries.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Response, abort, current_app, request
from sqlalchemy import bindparam, select, update

import hub.channels  # noqa: F401  (registers the processors)
from hub.channels.settings import secrets_of
from hub.channels import registry
from hub.channels.base import Inbound
from hub.channels.whatsapp.inbound.channel_cache import WebhookChannel, WebhookChannels
from hub.platform.db import utcnow
from hub.events.raw_webhooks import describe, is_bad_data, receive
from hub.models import Channel
from hub.shared.security import constant_time_equal

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")

# Kept with the raw body; named as werkzeug spells them, so the stored keys stay the same.
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For")
CHANNELS = "hub.webhook_channels"  # app.extensions key of the app's WebhookChannels
BOTS = "hub.webhook_bots"  # ... of its Telegram bots' copies
ACCOUNTS = "hub.webhook_accounts"  # ... of its Instagram accounts' copies


@bp.record_once
def _remember_channels(state) -> None:
    from hub.channels.instagram.webhook import account_cache
    from hub.channels.telegram.webhook import bot_cache

    vault = state.app.extensions["hub"].vault
    state.app.extensions[CHANNELS] = WebhookChannels(vault)
    state.app.extensions[BOTS] = bot_cache(vault)
    state.app.extensions[ACCOUNTS] = account_cache(vault)


def possible_key(key: str) -> bool:
    """Could this be a URL key the hub made (64 characters at most, no NUL)? Anything
    else is a 404 before the database sees it: PostgreSQL refuses NUL in text."""
    return len(key) <= 64 and "\x00" not in key


def _channel(session, key: str) -> Channel:
    if not possible_key(key):
        abort(404)
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


def _authentic(channel: WebhookChannel, body: bytes) -> bool:
    kind = registry.of(channel, current_app.extensions["hub"].config)
    return kind.authentic(channel, Inbound(headers=request.headers, body=body))


def _kept_headers() -> dict[str, str]:
    return {name: value for name in KEPT_HEADERS if (value := request.headers.get(name)) is not None}


# Coarse on purpose: writing the channel row on every webhook would serialise all of a
# number's concurrent webhooks on that row's lock.
LAST_WEBHOOK_EVERY = timedelta(seconds=30)
_NOTE_LAST_WEBHOOK = update(Channel.__table__).where(Channel.__table__.c.id == bindparam("channel_id"))


@bp.post("/whatsapp/<key>")
def whatsapp_receive(key: str):
    runtime = current_app.extensions["hub"]
    channels: WebhookChannels = current_app.extensions[CHANNELS]
    if not possible_key(key):
        abort(404)
    body = request.get_data(cache=False)
    now = utcnow()
    channel = None
    try:
        with runtime.db.scope() as session:
            channel = channels.get(session, key)
            if channel is not None and not _authentic(channel, body):
                channel = channels.get(session, key, fresh=True)  # the secret may have just changed
                if channel is not None and not _authentic(channel, body):
                    log.warning("rejected a webhook for channel %s: bad signature or token", channel.id)
                    return Response("signature does not match", status=401, mimetype="text/plain")
            if channel is None:
                abort(404)
            noted = _store(session, runtime, channel, body, now)
    except Exception as exc:
        if channel is None or not is_bad_data(exc):
            raise
        # The body as a whole did not store because of what it holds: store it again part
        # by part, so that only the parts at fault are refused (and named), and answer
        # 200 so that Meta does not resend the batch for days.
        log.warning("webhook for channel %s did not store whole (%s); storing it part by part",
                    channel.id, describe(exc))
        with runtime.db.scope() as session:
            noted = _store(session, runtime, channel, body, now, isolate=True)
    if noted:
        channels.webhook_seen(key, now)
    return Response("ok", status=200, mimetype="text/plain")


def _store(session, runtime, channel: WebhookChannel, body: bytes, now, *, isolate: bool = False) -> bool:
    """Keep and apply the body; True when the channel's last-webhook time was written."""
    receive(session, source="whatsapp", channel_id=channel.id, channel=channel, body=body, now=now,
            runtime=runtime, headers=_kept_headers(), isolate=isolate)
    noted = channel.last_webhook_at is None or now - channel.last_webhook_at > LAST_WEBHOOK_EVERY
    if noted:
        session.execute(_NOTE_LAST_WEBHOOK, {"channel_id": channel.id, "last_webhook_at": now})
    return noted


@bp.post("/telegram/<key>")
def telegram_receive(key: str):
    """A Telegram bot's updates (hub.channels.telegram.webhook)."""
    from hub.channels.telegram.webhook import receive_update

    if not possible_key(key):
        abort(404)
    status, body, mimetype = receive_update(current_app.extensions["hub"], key, request.headers,
                                            request.get_data(cache=False), utcnow(), current_app.extensions[BOTS])
    return Response(body, status=status, mimetype=mimetype)


@bp.get("/instagram/<key>")
def instagram_verify(key: str):
    """Meta's subscription handshake for an Instagram account (hub.channels.instagram.webhook)."""
    from hub.channels.instagram.webhook import verify

    if not possible_key(key):
        abort(404)
    status, body = verify(current_app.extensions["hub"], key, request.args)
    return Response(body, status=status, mimetype="text/plain")


@bp.post("/instagram/<key>")
def instagram_receive(key: str):
    """An Instagram account's messaging webhooks, signed with the app secret."""
    from hub.channels.instagram.webhook import receive_webhook

    if not possible_key(key):
        abort(404)
    status, body = receive_webhook(current_app.extensions["hub"], key, request.headers,
                                   request.get_data(cache=False), utcnow(), current_app.extensions[ACCOUNTS])
    return Response(body, status=status, mimetype="text/plain")


@bp.errorhandler(500)
def _server_error(exc):  # pragma: no cover - message only
    return Response("temporary failure, retry", status=500, mimetype="text/plain")
