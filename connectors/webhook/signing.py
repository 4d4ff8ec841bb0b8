"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

webhook-signature: v1,<base64 HMAC-SHA256 over "<id>.<timestamp>.<body>">; the secret is
base64 after a `whsec_` prefix. Receivers verify with any Standard Webhooks library.
"""
from __future__ import annotations

import base64
import binascii
import secrets as _secrets

from hub.shared.security import constant_time_equal, hmac_sha256_b64

PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class BadSecret(ValueError):
    pass


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: base64-decoded after whsec_, else the text itself (UTF-8)."""
    if secret.startswith(PREFIX):
        try:
            key = base64.b64decode(secret[len(PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise BadSecret("the part after whsec_ is not valid base64") from None
        if not 24 <= len(key) <= 64:
            raise BadSecret("a whsec_ secret must decode to 24..64 bytes")
        return key
    if len(secret) < 16:
        raise BadSecret("use at least 16 characters, or a whsec_ secret")
    return secret.encode()


def generate_secret() -> str:
    return PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + hmac_sha256_b64(secret_bytes(secret), signed)


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def verify(secret: str, received: dict[str, str], body: bytes, *, now: int) -> bool:
    """Receiver side (used by tests and the bench receiver): any listed v1 signature."""
    lowered = {k.lower(): v for k, v in received.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(constant_time_equal(expected, s) for s in signatures if s.startswith("v1,"))
