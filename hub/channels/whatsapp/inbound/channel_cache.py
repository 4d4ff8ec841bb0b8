"""The channel a webhook URL names, remembered by each web process for a few seconds.

Every webhook needs its channel's secrets; reading the row and decrypting them on every
request was a large share of a webhook's cost. A copy is used for at most `ttl_seconds`
(TTL_SECONDS), so a changed secret, name or number takes effect within that time in
every process; the route also re-reads the row before refusing a signature, so a new
app secret or header token works at once. Unknown keys are never remembered: a new
channel works at once, and a deleted one stops within the TTL.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from hub.models import Channel
from hub.shared.security import Vault

TTL_SECONDS = 5.0

_channels = Channel.__table__
_BY_KEY = select(
    _channels.c.id, _channels.c.provider, _channels.c.phone_number_id, _channels.c.name, _channels.c.display_number,
    _channels.c.secrets_enc, _channels.c.last_webhook_at,
).where(_channels.c.key == bindparam("key"))


@dataclass(frozen=True)
class WebhookChannel:
    """What the webhook route and the ingest of messages need of a channel: the
    verification secrets (not the API tokens) and what event payloads show."""

    id: int
    provider: str
    phone_number_id: str
    name: str
    display_number: str
    app_secret: str
    webhook_token: str
    last_webhook_at: datetime | None


class WebhookChannels:
    """Channels by webhook URL key, each read at most every `ttl_seconds`. Shared by the
    threads of one process (a dict's get and set are atomic; two threads that both miss
    just both read)."""

    def __init__(self, vault: Vault, *, ttl_seconds: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.vault = vault
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, WebhookChannel]] = {}

    def get(self, session: Session, key: str, *, fresh: bool = False) -> WebhookChannel | None:
        """The channel of `key`, None when there is none; `fresh` reads it in any case."""
        now = self.clock()
        entry = None if fresh else self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        channel = self._read(session, key)
        if channel is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = (now, channel)
        return channel

    def webhook_seen(self, key: str, at: datetime) -> None:
        """The route wrote last_webhook_at: remember it, so that it is not written again soon."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], replace(entry[1], last_webhook_at=at))

    def _read(self, session: Session, key: str) -> WebhookChannel | None:
        row = session.execute(_BY_KEY, {"key": key}).first()
        if row is None:
            return None
        secrets = self.vault.decrypt(row.secrets_enc)
        return WebhookChannel(
            id=row.id, provider=row.provider, phone_number_id=row.phone_number_id, name=row.name,
            display_number=row.display_number, app_secret=secrets.get("app_secret", ""),
            webhook_token=secrets.get("webhook_token", ""), last_webhook_at=row.last_webhook_at)
