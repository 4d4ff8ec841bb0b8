"""Meta's webhook signature: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>.
WhatsApp's and Instagram's webhooks alike are signed so.

Computed over the exact raw request bytes. Meta signs its own escaped-unicode rendering
(\\uXXXX, "\\/"), so a body parsed and re-serialised no longer matches: verify before
parsing, with the bytes as received.
"""
from __future__ import annotations

from hub.shared.security import constant_time_equal, hmac_sha256_hex

HEADER = "X-Hub-Signature-256"
_SCHEME = "sha256"


def sign_meta(app_secret: str, body: bytes) -> str:
    """The header value Meta would send for this body (emulators and tests use it)."""
    if not app_secret:
        raise ValueError("app_secret is empty; Meta never signs with an empty secret")
    return f"{_SCHEME}={hmac_sha256_hex(app_secret.encode(), bytes(body))}"


def verify_meta_signature(app_secret: str, body: bytes, header: str | None) -> bool:
    """True only for a well-formed header whose digest matches, compared in constant time.
    An empty secret never verifies (a channel without one must not accept everything)."""
    if not app_secret or not header:
        return False
    scheme, sep, digest = header.strip().partition("=")
    if not sep or scheme.strip().lower() != _SCHEME:
        return False
    expected = hmac_sha256_hex(app_secret.encode(), bytes(body))
    return constant_time_equal(expected, digest.strip().lower())
