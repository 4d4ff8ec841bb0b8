"""The worker side of Instagram messages: claim (the same ledger as WhatsApp's: one
message per conversation per round, leased), send under the account's limit, record.

Outcomes by Meta's error (client.verdict): rate limits (codes 4, 17, 32, 613, HTTP
429) wait Retry-After or a minute; temporary trouble (1, 2, 5xx, network) retries with
backoff; outside the window (10/2018278) fails the message with window_closed; 551
(the person is unavailable) fails it and marks the contact unreachable, so the next
send is refused before the network; 190 (the token) fails it and marks the channel
unhealthy. Instagram reports no delivery to the Send API, so a sent message stays "sent".
"""
from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update

from hub import payloads
from hub.channels.instagram.channels import KIND, account_id, client_for
from hub.channels.instagram.client import InstagramClient, InstagramError, verdict
from hub.channels.whatsapp.sender import Claimed, claim
from hub.db import utcnow
from hub.delivery.backoff import next_attempt_at
from hub.events import emit
from hub.http import TimeoutSession
from hub.models import Channel, Contact, Conversation, Message
from hub.ratelimit import TokenBucket
from hub.runtime import Runtime

log = logging.getLogger(__name__)
BATCH = 20
THROTTLED_WAIT = timedelta(seconds=60)  # Meta names no time for its rate limits
UNAVAILABLE = "not available on Instagram"


class InstagramSender:
    """Sends queued messages of every Instagram channel; `run_once` is one round."""

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

    def _send_all(self, channel: Channel, client: InstagramClient, claimed: list[Claimed]) -> None:
        bucket = TokenBucket(self.runtime.db, f"channel:{channel.id}:mps", rate=channel.mps,
                             burst=max(1, channel.mps), clock=self.clock)
        for item in claimed:
            bucket.take()
            result, error = None, None
            try:
                result = client.send(account_id(channel), item.body)
            except InstagramError as exc:
                error = exc
            with self.runtime.db.scope() as session:
                if error is None:
                    self._sent(session, item, result)
                else:
                    self._failed(session, channel, item, error)

    def _mine(self, session, item: Claimed) -> Message | None:
        message = session.get(Message, item.message_id)
        if message is None or message.lease_owner != self.owner or message.status != "sending":
            return None  # our lease lapsed and another worker took it
        return message

    def _sent(self, session, item: Claimed, result: dict) -> None:
        now = self.clock()
        message = self._mine(session, item)
        if message is None:
            return
        message.wa_message_id = f"ig:{result['message_id']}" if result.get("message_id") else None
        message.status = "sent"
        message.accepted_at = now
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code = message.error_title = None
        message.updated_at = now
        conversation = session.get(Conversation, message.conversation_id)
        conversation.last_message_at = now
        session.flush()
        emit(session, "message.sent", {
            "conversation": payloads.conversation(session, conversation),
            "contact": payloads.contact(session.get(Contact, conversation.contact_id)),
            "message": payloads.message(session, message),
        }, now=now, ordering_key=payloads.ordering_key(conversation))

    def _failed(self, session, channel: Channel, item: Claimed, error: InstagramError) -> None:
        now = self.clock()
        message = self._mine(session, item)
        if message is None:
            return
        kind = verdict(error)
        message.attempts = item.attempts + 1
        message.lease_owner = message.lease_expires_at = None
        message.error_code, message.error_title = error.code, str(error)[:2000]
        message.updated_at = now
        too_old = now - item.created_at > timedelta(seconds=self.runtime.config.delivery.max_age_seconds)
        if kind in ("throttled", "retry") and not too_old:
            message.status = "queued"
            if kind == "throttled":
                wait = timedelta(seconds=error.retry_after) if error.retry_after is not None else THROTTLED_WAIT
                message.next_attempt_at = now + wait
            else:
                cfg = self.runtime.config.delivery
                message.next_attempt_at = next_attempt_at(now, message.attempts, base=cfg.backoff_base_seconds,
                                                          cap=cfg.backoff_max_seconds, rng=self.rng)
            return
        message.status = "failed"
        message.failed_at = now
        conversation = session.get(Conversation, message.conversation_id)
        if kind in ("unreachable", "window_closed"):
            message.error_title = f"{kind}: {message.error_title}"
        if kind == "unreachable":
            session.execute(update(Contact).where(Contact.id == conversation.contact_id)
                            .values(unreachable_at=now, unreachable_reason=UNAVAILABLE, updated_at=now))
        elif kind == "token":
            fresh = session.get(Channel, channel.id)
            fresh.health = "unhealthy"
            fresh.health_message = f"Meta refused the access token ({error}); update it in the channel settings"
            log.error("instagram channel %s: access token refused", channel.id)
        emit(session, "message.status", {
            "conversation_id": conversation.id, "contact_id": conversation.contact_id,
            "message": {"id": message.id, "wa_message_id": message.wa_message_id, "status": "failed",
                        "error": {"code": error.code, "title": message.error_title, "details": None},
                        "pricing": None},
        }, now=now, ordering_key=payloads.ordering_key(conversation))
