"""POST /webhooks/telegram/<channel key>: one update per request, from Telegram.

Telegram signs nothing; the secret_token given to setWebhook comes back in
X-Telegram-Bot-Api-Secret-Token, and a request without the channel's is refused with
403 before anything is stored. Otherwise the raw body is stored and applied in ONE
transaction (hub.events.raw_webhooks.receive) and 200 answered after the commit: a body that does
not parse is kept (failed, replayable) and still answered 200, so Telegram does not
resend it for hours; a database failure answers 500, so Telegram retries.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Mapping

from sqlalchemy import bindparam, update

from hub.channels.base import ChannelKind, Inbound
from hub.channels.telegram.channels import KIND
from hub.channels.telegram.parse import callback_answer
from hub.channels.webhook_cache import WebhookCache, channel_of_kind
from hub.events.raw_webhooks import describe, is_bad_data, receive
from hub.models import Channel

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime
    from hub.shared.security import Vault

log = logging.getLogger(__name__)
KEPT_HEADERS = ("Content-Type", "User-Agent", "X-Forwarded-For")  # never the secret token
LAST_WEBHOOK_EVERY = timedelta(seconds=30)
TEXT = "text/plain"
_NOTE_LAST_WEBHOOK = update(Channel.__table__).where(Channel.__table__.c.id == bindparam("channel_id"))


@dataclass(frozen=True)
class WebhookBot:
    """What the route and the ingest need of a bot's channel (and event payloads show)."""

    id: int
    name: str
    display_number: str
    phone_number_id: str
    kind: str
    secret_token: str
    last_webhook_at: datetime | None


def find_bot(session, vault: "Vault", key: str) -> WebhookBot | None:
    row = channel_of_kind(session, key, KIND)
    if row is None:
        return None
    return WebhookBot(row.id, row.name, row.display_number, row.phone_number_id, row.kind,
                      vault.decrypt(row.secrets_enc).get("secret_token", ""), row.last_webhook_at)


def bot_cache(vault: "Vault") -> WebhookCache[WebhookBot]:
    """A web process's copies of its bots (hub.channels.webhook_cache)."""
    return WebhookCache(lambda session, key: find_bot(session, vault, key))


def receive_update(runtime: "Runtime", kind: ChannelKind, key: str, headers: Mapping[str, str], body: bytes,
                   now: datetime, bots: WebhookCache[WebhookBot] | None = None) -> tuple[int, str, str]:
    """(HTTP status, body, content type) for one webhook request; `bots`: the process's
    copies of its bots (else the row is read). A button press is answered with
    answerCallbackQuery in the webhook's answer (the Bot API runs a method given there),
    so the user's button stops spinning without a call of the hub's own."""
    kept = {name: value for name in KEPT_HEADERS if (value := headers.get(name)) is not None}
    bots = bots or bot_cache(runtime.vault)
    inbound = Inbound(headers=headers, body=body)
    bot = None
    try:
        with runtime.db.scope() as session:
            bot = bots.get(session, key)
            if bot is not None and not kind.authentic(bot, inbound):
                bot = bots.get(session, key, fresh=True)  # the secret token may have just changed
                if bot is not None and not kind.authentic(bot, inbound):
                    log.warning("rejected a Telegram update for channel %s: wrong secret token", bot.id)
                    return 403, "secret token does not match", TEXT
            if bot is None:
                return 404, "no such channel", TEXT
            noted = _store(session, runtime, bot, kept, body, now)
    except Exception as exc:
        if bot is None or not is_bad_data(exc):
            raise
        log.warning("telegram update for channel %s did not store (%s); keeping it as failed", bot.id,
                    describe(exc))
        with runtime.db.scope() as session:
            noted = _store(session, runtime, bot, kept, body, now, isolate=True)
    if noted:
        bots.webhook_seen(key, now)
    answer = callback_answer(body)
    if answer is not None:
        return 200, json.dumps(answer), "application/json"
    return 200, "ok", TEXT


def _store(session, runtime: "Runtime", bot: WebhookBot, headers: dict[str, str], body: bytes, now: datetime, *,
           isolate: bool = False) -> bool:
    """Keep and apply the body; True when the channel's last-webhook time was written."""
    receive(session, source="telegram", channel_id=bot.id, channel=bot, headers=headers, body=body, now=now,
            runtime=runtime, isolate=isolate)
    noted = bot.last_webhook_at is None or now - bot.last_webhook_at > LAST_WEBHOOK_EVERY
    if noted:
        session.execute(_NOTE_LAST_WEBHOOK, {"channel_id": bot.id, "last_webhook_at": now})
    return noted
