"""HubSpot's v3 request signature (webhooks, workflow webhooks, CRM cards).

X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret,
    method + URI + body + X-HubSpot-Request-Timestamp)), the timestamp in milliseconds;
requests older than 5 minutes are refused. Some URL-encoded characters of the URI are
decoded before signing.
https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests
"""
from __future__ import annotations

from datetime import datetime
from typing import Mapping

from hub.shared.security import constant_time_equal, hmac_sha256_b64

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE_MS = 5 * 60 * 1000

# The encodings HubSpot decodes in the request URI before signing.
_DECODE = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
    "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}


class BadSignature(Exception):
    pass


def normalise_uri(uri: str) -> str:
    for encoded, plain in _DECODE.items():
        uri = uri.replace(encoded, plain).replace(encoded.lower(), plain)
    return uri


def sign(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> str:
    source = method.upper().encode() + normalise_uri(uri).encode() + body + str(timestamp_ms).encode()
    return hmac_sha256_b64(secret.encode(), source)


def headers(secret: str, method: str, uri: str, body: bytes, timestamp_ms: int) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, method, uri, body, timestamp_ms),
            TIMESTAMP_HEADER: str(timestamp_ms)}


def _header(headers_: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers_.items():
        if key.lower() == wanted:
            return value
    return None


def verify(secret: str, method: str, uri: str, body: bytes, headers_: Mapping[str, str], now: datetime) -> None:
    """Raise BadSignature unless the request is signed with `secret` and recent."""
    if not secret:
        raise BadSignature("no client secret is configured, so no webhook can be verified")
    signature = _header(headers_, SIGNATURE_HEADER)
    stamp = _header(headers_, TIMESTAMP_HEADER)
    if not signature or not stamp:
        raise BadSignature(f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}")
    if not stamp.strip().isdigit():
        raise BadSignature(f"{TIMESTAMP_HEADER} is not a number of milliseconds")
    age = now.timestamp() * 1000 - int(stamp)
    if abs(age) > MAX_AGE_MS:
        raise BadSignature("the request timestamp is more than 5 minutes away from now")
    expected = sign(secret, method, uri, body, int(stamp))
    if not constant_time_equal(expected, signature.strip()):
        raise BadSignature("signature does not match")
