"""Signed, expiring links to a message's media, for people who have no API token: the
CRM user who clicks "photo" on a deal's timeline. The link names one message and an
expiry and is signed with a key derived from the hub's secret key; the file itself is
fetched fresh from WhatsApp when the link is opened."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from hub.shared.security import constant_time_equal, hmac_sha256_hex

# Meta keeps inbound media downloadable for 7 days: a link cannot outlive that.
LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class MediaLinks:
    base_url: str
    secret_key: str
    lifetime: timedelta = LIFETIME

    @classmethod
    def from_runtime(cls, runtime) -> "MediaLinks":
        from hub.shared.security import load_secret_key

        return cls(runtime.config.base_url, load_secret_key(runtime.config))

    def _signature(self, message_id: int, expires: int) -> str:
        key = hashlib.sha256(b"hub media links\0" + self.secret_key.encode()).digest()
        return hmac_sha256_hex(key, f"{message_id}.{expires}".encode())

    def url(self, message_id: int, *, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        return (f"{self.base_url.rstrip('/')}/media/{message_id}"
                f"?expires={expires}&signature={self._signature(message_id, expires)}")

    def check(self, message_id: int, expires: str, signature: str, *, now: datetime) -> str | None:
        """Why the link may not be used, or None when it may."""
        if not (expires.isascii() and expires.isdigit()) or not signature:
            return "the link is incomplete"
        if not constant_time_equal(self._signature(message_id, int(expires)), signature):
            return "the link's signature does not match"
        if int(expires) < now.timestamp():
            return "the link has expired; open the conversation in the hub for a fresh one"
        return None
