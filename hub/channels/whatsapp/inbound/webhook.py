"""GET and POST /webhooks/whatsapp/<channel key>: Meta's subscription handshake, and
the webhooks of one number from Meta (signed with the app secret) or from a 360dialog
relay (its header token).

The raw body is stored and processed in ONE transaction; 200 is answered only after it
committed. A body that does not parse is kept (failed, replayable) and still answered
200 so Meta stops resending it; a database failure raises (500) so Meta retries.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import bindparam, select, update

from hub.channels.base import ChannelKind, Inbound, WebhookAnswer
from hub.channels.settings import secrets_of
from hub.channels.whatsapp.inbound.channel_cache import WebhookChannel, WebhookChannels
from hub.events.raw_webhooks import describe, is_bad_data, receive
from hub.models import Channel
from hub.shared.security import constant_time_equal

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
# Kept with the raw body; named as werkzeug spells them, so the stored keys stay the same.
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Hub-Signature-256", "X-Forwarded-For")
# Coarse on purpose: writing the channel row on every webhook would serialise all of a
# number's concurrent webhooks on that row's lock.
LAST_WEBHOOK_EVERY = timedelta(seconds=30)
_NOTE_LAST_WEBHOOK = update(Channel.__table__).where(Channel.__table__.c.id == bindparam("channel_id"))
NO_CHANNEL = WebhookAnswer(404, "no such channel")


def verify(runtime: "Runtime", key: str, args: Mapping[str, str]) -> WebhookAnswer:
    """Meta's subscription handshake: echo hub.challenge when the verify token matches."""
    with runtime.db.scope() as session:
        channel = session.scalar(select(Channel).where(Channel.key == key))
        if channel is None:
            return NO_CHANNEL
        secrets = secrets_of(channel, runtime.vault)
    token = args.get("hub.verify_token", "")
    if args.get("hub.mode") != "subscribe" or not secrets.get("verify_token") or \
            not constant_time_equal(token, secrets["verify_token"]):
        return WebhookAnswer(403, "verify token does not match this channel")
    return WebhookAnswer(200, args.get("hub.challenge", ""))


def receive_webhook(runtime: "Runtime", kind: ChannelKind, key: str, request: Inbound, now: datetime,
                    channels: WebhookChannels | None = None) -> WebhookAnswer:
    """Keep and apply one webhook; `channels`: the process's copies of its numbers (else
    the row is read)."""
    channels = channels or WebhookChannels(runtime.vault)
    kept = {name: value for name in KEPT_HEADERS if (value := request.headers.get(name)) is not None}
    channel = None
    try:
        with runtime.db.scope() as session:
            channel = channels.get(session, key)
            if channel is not None and not kind.authentic(channel, request):
                channel = channels.get(session, key, fresh=True)  # the secret may have just changed
                if channel is not None and not kind.authentic(channel, request):
                    log.warning("rejected a webhook for channel %s: bad signature or token", channel.id)
                    return WebhookAnswer(401, "signature does not match")
            if channel is None:
                return NO_CHANNEL
            noted = _store(session, runtime, channel, kept, request.body, now)
    except Exception as exc:
        if channel is None or not is_bad_data(exc):
            raise
        # The body as a whole did not store because of what it holds: store it again part
        # by part, so that only the parts at fault are refused (and named), and answer
        # 200 so that Meta does not resend the batch for days.
        log.warning("webhook for channel %s did not store whole (%s); storing it part by part",
                    channel.id, describe(exc))
        with runtime.db.scope() as session:
            noted = _store(session, runtime, channel, kept, request.body, now, isolate=True)
    if noted:
        channels.webhook_seen(key, now)
    return WebhookAnswer(200, "ok")


def _store(session, runtime: "Runtime", channel: WebhookChannel, headers: dict[str, str], body: bytes,
           now: datetime, *, isolate: bool = False) -> bool:
    """Keep and apply the body; True when the channel's last-webhook time was written."""
    receive(session, source="whatsapp", channel_id=channel.id, channel=channel, body=body, now=now,
            runtime=runtime, headers=headers, isolate=isolate)
    noted = channel.last_webhook_at is None or now - channel.last_webhook_at > LAST_WEBHOOK_EVERY
    if noted:
        session.execute(_NOTE_LAST_WEBHOOK, {"channel_id": channel.id, "last_webhook_at": now})
    return noted
