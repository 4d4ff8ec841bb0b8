"""POST /webhooks/<kind>/<key> for every channel kind: one skeleton, the kind's small
differences in a Receiving.

The channel is looked up in the process's copies (hub.channels.webhook_cache) and the
request authenticated by the kind; credentials that fail are re-read once before the
request is refused, so a secret that has just changed works at once. The raw body is
then stored and applied in ONE transaction (hub.events.raw_webhooks.receive, with the
kind's processor) and 200 answered only after the commit. A body that fails on its data
is stored again part by part (the raw body always kept, the parts at fault named) and
still answered 200, so the channel does not resend it for hours or days; a database
failure raises (500), so the channel retries.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

from sqlalchemy import bindparam, update

from hub.channels.base import ChannelKind, Inbound, WebhookAnswer
from hub.events.raw_webhooks import describe, is_bad_data, receive as keep_and_apply
from hub.models import Channel
from hub.shared.security import constant_time_equal

if TYPE_CHECKING:
    from hub.channels.webhook_cache import WebhookCache
    from hub.platform.runtime import Runtime

OK = WebhookAnswer(200, "ok")
NO_CHANNEL = WebhookAnswer(404, "no such channel")
# Coarse on purpose: writing the channel row on every webhook would serialise all of a
# channel's concurrent webhooks on that row's lock.
LAST_WEBHOOK_EVERY = timedelta(seconds=30)
_NOTE_LAST_WEBHOOK = update(Channel.__table__).where(Channel.__table__.c.id == bindparam("channel_id"))


def _ok(body: bytes) -> WebhookAnswer:
    return OK


@dataclass(frozen=True)
class Receiving:
    """What one kind's webhooks differ in. `kept_headers`: kept with the raw body, named
    as werkzeug spells them (never a secret token); `refused`: the answer to a request
    that does not authenticate; `refused_note` (channel id) and `bad_data_note` (channel
    id, the fault) are logged on `log`; `answer`: the 200 answer to a stored body."""

    kept_headers: tuple[str, ...]
    refused: WebhookAnswer
    log: logging.Logger
    refused_note: str
    bad_data_note: str
    answer: Callable[[bytes], WebhookAnswer] = _ok


def receive_webhook(runtime: "Runtime", kind: ChannelKind, receiving: Receiving, key: str, request: Inbound,
                    now: datetime, cache: "WebhookCache[Any] | None" = None) -> WebhookAnswer:
    """Keep and apply one webhook; `cache`: the process's copies of the kind's channels
    (else the row is read)."""
    cache = cache or kind.webhook_cache(runtime.vault)
    kept = {name: value for name in receiving.kept_headers if (value := request.headers.get(name)) is not None}
    channel = None
    try:
        with runtime.db.scope() as session:
            channel = cache.get(session, key)
            if channel is not None and not kind.authentic(channel, request):
                channel = cache.get(session, key, fresh=True)  # the secret may have just changed
                if channel is not None and not kind.authentic(channel, request):
                    receiving.log.warning(receiving.refused_note, channel.id)
                    return receiving.refused
            if channel is None:
                return NO_CHANNEL
            noted = _store(session, runtime, kind.source, channel, kept, request.body, now)
    except Exception as exc:
        if channel is None or not is_bad_data(exc):
            raise
        receiving.log.warning(receiving.bad_data_note, channel.id, describe(exc))
        with runtime.db.scope() as session:
            noted = _store(session, runtime, kind.source, channel, kept, request.body, now, isolate=True)
    if noted:
        cache.webhook_seen(key, now)
    return receiving.answer(request.body)


def _store(session, runtime: "Runtime", source: str, channel: Any, headers: dict[str, str], body: bytes,
           now: datetime, *, isolate: bool = False) -> bool:
    """Keep and apply the body; True when the channel's last-webhook time was written."""
    keep_and_apply(session, source=source, channel_id=channel.id, channel=channel, headers=headers, body=body,
                   now=now, runtime=runtime, isolate=isolate)
    noted = channel.last_webhook_at is None or now - channel.last_webhook_at > LAST_WEBHOOK_EVERY
    if noted:
        session.execute(_NOTE_LAST_WEBHOOK, {"channel_id": channel.id, "last_webhook_at": now})
    return noted


def answer_handshake(verify_token: str | None, args: Mapping[str, str]) -> WebhookAnswer:
    """Meta's subscription handshake (GET): echo hub.challenge when hub.mode is
    "subscribe" and hub.verify_token is the channel's; `verify_token` None: no such
    channel."""
    if verify_token is None:
        return NO_CHANNEL
    token = args.get("hub.verify_token", "")
    if args.get("hub.mode") != "subscribe" or not verify_token or not constant_time_equal(token, verify_token):
        return WebhookAnswer(403, "verify token does not match this channel")
    return WebhookAnswer(200, args.get("hub.challenge", ""))
