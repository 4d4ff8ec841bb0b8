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

from sqlalchemy import select, update

from hub import payloads
from hub.channels.telegram.channels import KIND, client_for
from hub.channels.telegram.client import TelegramClient, TelegramError
from hub.channels.telegram.compose import message_key
from hub.channels.telegram.ingest import BLOCKED
from hub.channels.whatsapp.sender import Claimed, claim
from hub.db import utcnow
from hub.delivery.backoff import next_attempt_at
from hub.events import emit
from hub.http import TimeoutSession
from hub.models import Channel, Contact, Conversation, Message
from hub.ratelimit import TokenBucket
from hub.runtime import Runtime

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
        db = self.runtime.db
        with db.scope() as session:
            channels = list(session.scalars(select(Channel).where(Channel.kind == KIND, Channel.health != "unhealthy")
                                            .order_by(Channel.id)))
            for channel in channels:
                session.expunge(channel)
        total = 0
        for channel in channels:
            with db.scope() as session:
                claimed = claim(session, channel.id, self.owner, now=self.clock(), limit=BATCH,
                                lease_seconds=self.runtime.config.worker.lease_seconds)
            if claimed:
                self._send_all(channel, client_for(channel, self.runtime, self.http), claimed)
                total += len(claimed)
        return total

    def _send_all(self, channel: Channel, client: TelegramClient, claimed: list[Claimed]) -> None:
        bucket = TokenBucket(self.runtime.db, f"channel:{channel.id}:mps", rate=channel.mps,
                             burst=max(1, channel.mps), clock=self.clock)
        for item in claimed:
            bucket.take()
            result, error = None, None
            try:
                result = client.send(item.body["method"], item.body["body"])
            except TelegramError as exc:
                error = exc
            with self.runtime.db.scope() as session:
                if error is None:
                    self._sent(session, channel, item, result)
                else:
                    self._failed(session, channel, item, error)

    def _mine(self, session, item: Claimed) -> Message | None:
        message = session.get(Message, item.message_id)
        if message is None or message.lease_owner != self.owner or message.status != "sending":
            return None  # our lease lapsed and another worker took it
        return message

    def _sent(self, session, channel: Channel, item: Claimed, result: dict) -> None:
        now = self.clock()
        message = self._mine(session, item)
        if message is None:
            return
        message.wa_message_id = message_key(channel.id, int(result["chat"]["id"]), int(result["message_id"]))
        message.status = "sent"
        message.accepted_at = now
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code = message.error_title = None
        message.payload = {**(message.payload or {}), "telegram": {"message_id": result["message_id"],
                                                                   "date": result.get("date")}}
        message.updated_at = now
        conversation = session.get(Conversation, message.conversation_id)
        conversation.last_message_at = now
        session.flush()
        emit(session, "message.sent", {
            "conversation": payloads.conversation(session, conversation),
            "contact": payloads.contact(session.get(Contact, conversation.contact_id)),
            "message": payloads.message(session, message),
        }, now=now, ordering_key=payloads.ordering_key(conversation))

    def _failed(self, session, channel: Channel, item: Claimed, error: TelegramError) -> None:
        now = self.clock()
        message = self._mine(session, item)
        if message is None:
            return
        kind = verdict(error)
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code, message.error_title = error.code, error.description[:2000]
        message.updated_at = now
        too_old = now - item.created_at > timedelta(seconds=self.runtime.config.delivery.max_age_seconds)
        if kind in ("throttled", "retry") and not too_old:
            message.status = "queued"
            if kind == "throttled":
                delay = error.retry_after or 1.0 + (self.rng or random).random()
                message.next_attempt_at = now + timedelta(seconds=delay)
            else:
                cfg = self.runtime.config.delivery
                message.next_attempt_at = next_attempt_at(now, message.attempts, base=cfg.backoff_base_seconds,
                                                          cap=cfg.backoff_max_seconds, rng=self.rng)
            return
        message.status = "failed"
        message.failed_at = now
        conversation = session.get(Conversation, message.conversation_id)
        if kind == "unreachable":
            message.error_title = "unreachable: " + message.error_title
            reason = BLOCKED if "blocked" in error.description else error.description[:200]
            session.execute(update(Contact).where(Contact.id == conversation.contact_id)
                            .values(unreachable_at=now, unreachable_reason=reason, updated_at=now))
        elif kind == "token":
            fresh = session.get(Channel, channel.id)
            fresh.health = "unhealthy"
            fresh.health_message = f"Telegram refused the bot token ({error.code} {error.description}); " \
                                   f"update it in the channel settings"
            log.error("telegram channel %s: bot token refused", channel.id)
        emit(session, "message.status", {
            "conversation_id": conversation.id, "contact_id": conversation.contact_id,
            "message": {"id": message.id, "wa_message_id": message.wa_message_id, "status": "failed",
                        "error": {"code": error.code, "title": message.error_title, "details": None},
                        "pricing": None},
        }, now=now, ordering_key=payloads.ordering_key(conversation))
