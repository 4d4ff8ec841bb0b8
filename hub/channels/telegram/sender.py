"""The worker side of Telegram messages: claim (the same ledger as WhatsApp's: one
message per conversation per round, leased), send under the bot's limit, record.

Outcomes by Telegram's error_code: 429 waits retry_after (the per-chat limit, about one
message a second, or the bot's, about 30 a second); 5xx and network failures retry
with backoff; 403 (the user blocked the bot, or deleted their account) fails the
message and marks the contact unreachable so the next send is refused before the
network; 400 (chat not found, bad file) fails it with Telegram's words; 401 (the token
was revoked) fails it and marks the channel unhealthy. A sent message is "sent":
Telegram reports no delivery or reading to bots, so it stays that.
"""
from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import update

from hub.channels.ledger import Claimed, record_failure, record_sent, send_round
from hub.channels.telegram.channels import KIND, client_for
from hub.channels.telegram.client import TelegramError
from hub.channels.telegram.compose import message_key
from hub.channels.telegram.ingest import BLOCKED
from hub.platform.db import utcnow
from hub.shared.http import TimeoutSession
from hub.models import Channel, Contact
from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 30


def verdict(error: TelegramError) -> str:
    if error.code == 429:
        return "throttled"
    if error.code == 0 or error.code >= 500:
        return "retry"
    if error.code == 403:
        return "unreachable"
    if error.code == 401:
        return "token"
    return "refused"


class TelegramSender:
    """Sends queued messages of every Telegram channel; `run_once` is one round."""

    def __init__(self, runtime: Runtime, owner: str, *, clock: Callable[[], datetime] = utcnow,
                 rng: random.Random | None = None):
        self.runtime = runtime
        self.owner = owner
        self.clock = clock
        self.rng = rng
        self.http = TimeoutSession(runtime.config.delivery.http_timeout_seconds)

    def run_once(self) -> int:
        return send_round(self.runtime, self.owner, self.clock, kind=KIND, batch=BATCH,
                          client_for=lambda channel: client_for(channel, self.runtime, self.http),
                          send=lambda client, channel, item: client.send(item.body["method"], item.body["body"]),
                          error=TelegramError, sent=self._sent, failed=self._failed)

    def _sent(self, session, channel: Channel, message, item: Claimed, result: dict) -> None:
        message.payload = {**(message.payload or {}), "telegram": {"message_id": result["message_id"],
                                                                   "date": result.get("date")}}
        record_sent(session, message, item, now=self.clock(),
                    key=message_key(channel.id, int(result["chat"]["id"]), int(result["message_id"])))

    def _failed(self, session, channel: Channel, message, item: Claimed, error: TelegramError) -> None:
        kind = verdict(error)
        wait = timedelta(seconds=error.retry_after or 1.0 + (self.rng or random).random()) \
            if kind == "throttled" else None
        title = f"unreachable: {error.description}" if kind == "unreachable" else error.description
        now = self.clock()
        conversation = record_failure(session, message, item, code=error.code, title=title,
                                      transient=kind if kind in ("throttled", "retry") else None, wait=wait,
                                      config=self.runtime.config, now=now, rng=self.rng)
        if conversation is None:
            return
        if kind == "unreachable":
            reason = BLOCKED if "blocked" in error.description else error.description[:200]
            session.execute(update(Contact).where(Contact.id == conversation.contact_id)
                            .values(unreachable_at=now, unreachable_reason=reason, updated_at=now))
        elif kind == "token":
            fresh = session.get(Channel, channel.id)
            fresh.health = "unhealthy"
            fresh.health_message = f"Telegram refused the bot token ({error.code} {error.description}); " \
                                   f"update it in the channel settings"
            log.error("telegram channel %s: bot token refused", channel.id)
