"""The channel a webhook URL names, remembered by each web process for a few seconds,
for every channel kind.

Every webhook needs its channel's secrets; reading the row and decrypting them on every
request was a large share of a webhook's cost. A copy is used for at most `ttl_seconds`
(TTL_SECONDS), so a changed secret, name or number takes effect within that time in
every process; the routes also re-read the row before refusing a signature or token, so
a new secret works at once. Unknown keys are never remembered: a new channel works at
once, and a deleted one stops within the TTL.
"""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable, Generic, TypeVar

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from hub.models import Channel

TTL_SECONDS = 5.0
_channels = Channel.__table__
_OF_KIND = select(
    _channels.c.id, _channels.c.name, _channels.c.display_number, _channels.c.phone_number_id, _channels.c.kind,
    _channels.c.secrets_enc, _channels.c.last_webhook_at,
).where(_channels.c.key == bindparam("key"), _channels.c.kind == bindparam("kind"))

T = TypeVar("T")


class WebhookCache(Generic[T]):
    """Channels by webhook URL key as `read(session, key)` gives them (a frozen
    dataclass with last_webhook_at, or None), each read at most every `ttl_seconds`.
    Shared by the threads of one process (a dict's get and set are atomic; two threads
    that both miss just both read)."""

    def __init__(self, read: Callable[[Session, str], T | None], *, ttl_seconds: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.read = read
        self.ttl_seconds = ttl_seconds
        self.clock = clock
        self._entries: dict[str, tuple[float, Any]] = {}

    def get(self, session: Session, key: str, *, fresh: bool = False) -> T | None:
        """The channel of `key`, None when there is none; `fresh` reads it in any case."""
        now = self.clock()
        entry = None if fresh else self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            return entry[1]
        channel = self.read(session, key)
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


def channel_of_kind(session: Session, key: str, kind: str) -> Row | None:
    """The row a webhook copy is made of (id, name, display_number, phone_number_id,
    kind, secrets_enc, last_webhook_at), when `key` names a channel of `kind`."""
    return session.execute(_OF_KIND, {"key": key, "kind": kind}).first()
