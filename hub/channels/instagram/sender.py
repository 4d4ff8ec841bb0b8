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

from sqlalchemy import update

from hub.channels.instagram.channels import KIND, account_id, client_for
from hub.channels.instagram.client import InstagramError, verdict
from hub.channels.instagram.echo import drop_echo_of
from hub.channels.ledger import Claimed, record_failure, record_sent, send_round
from hub.platform.db import utcnow
from hub.shared.http import TimeoutSession
from hub.models import Channel, Contact
from hub.platform.runtime import Runtime

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
        return send_round(self.runtime, self.owner, self.clock, kind=KIND, batch=BATCH,
                          client_for=lambda channel: client_for(channel, self.runtime, self.http),
                          send=lambda client, channel, item: client.send(account_id(channel), item.body),
                          error=InstagramError, sent=self._sent, failed=self._failed)

    def _sent(self, session, channel: Channel, message, item: Claimed, result: dict) -> None:
        mid = result.get("message_id")
        if mid:  # Meta's echo of this send may have come first
            drop_echo_of(session, f"ig:{mid}", message.id)
        record_sent(session, message, item, key=f"ig:{mid}" if mid else None, now=self.clock())

    def _failed(self, session, channel: Channel, message, item: Claimed, error: InstagramError) -> None:
        kind = verdict(error)
        wait = (timedelta(seconds=error.retry_after) if error.retry_after is not None else THROTTLED_WAIT) \
            if kind == "throttled" else None
        title = f"{kind}: {error}" if kind in ("unreachable", "window_closed") else str(error)
        now = self.clock()
        conversation = record_failure(session, message, item, code=error.code, title=title,
                                      transient=kind if kind in ("throttled", "retry") else None, wait=wait,
                                      config=self.runtime.config, now=now, rng=self.rng)
        if conversation is None:
            return
        if kind == "unreachable":
            session.execute(update(Contact).where(Contact.id == conversation.contact_id)
                            .values(unreachable_at=now, unreachable_reason=UNAVAILABLE, updated_at=now))
        elif kind == "token":
            fresh = session.get(Channel, channel.id)
            fresh.health = "unhealthy"
            fresh.health_message = f"Meta refused the access token ({error}); update it in the channel settings"
            log.error("instagram channel %s: access token refused", channel.id)
