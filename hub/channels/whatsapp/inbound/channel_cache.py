"""The channel a WhatsApp webhook URL names, remembered by each web process for a few
seconds (hub.channels.webhook_cache): with its verification secrets (not the API
tokens) decrypted once per copy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from hub.channels.webhook_cache import TTL_SECONDS, WebhookCache
from hub.models import Channel
from hub.shared.security import Vault

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


class WebhookChannels(WebhookCache[WebhookChannel]):
    """WhatsApp channels by webhook URL key, each read at most every `ttl_seconds`."""

    def __init__(self, vault: Vault, *, ttl_seconds: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(self._read, ttl_seconds=ttl_seconds, clock=clock)
        self.vault = vault

    def _read(self, session: Session, key: str) -> WebhookChannel | None:
        row = session.execute(_BY_KEY, {"key": key}).first()
        if row is None:
            return None
        secrets = self.vault.decrypt(row.secrets_enc)
        return WebhookChannel(
            id=row.id, provider=row.provider, phone_number_id=row.phone_number_id, name=row.name,
            display_number=row.display_number, app_secret=secrets.get("app_secret", ""),
            webhook_token=secrets.get("webhook_token", ""), last_webhook_at=row.last_webhook_at)
