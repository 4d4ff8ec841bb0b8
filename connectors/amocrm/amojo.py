"""amoCRM's Chats API (amojo): request signing and the HTTP client.

amojo is a separate service (https://amojo.amocrm.ru, amojo.kommo.com) that takes no
OAuth token: every request is signed with the chat channel's secret —
X-Signature = lowercase hex HMAC-SHA1(secret, "METHOD\\nContent-MD5\\nContent-Type\\nDate\\npath"),
Content-MD5 the lowercase hex MD5 of the exact body bytes (of "" for GET), Date in
RFC 2822, valid 15 minutes. amoCRM's own calls to the channel's hook URL carry
X-Signature = hex HMAC-SHA1(secret, body) only. See README.md, "Chats API (amojo)".
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timezone
from typing import Any, Callable

import requests

from connectors.amocrm.errors import AmoError, BadRequest, ConfigurationError, Transient

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/json"


class NotConnected(BadRequest):
    """amojo does not know the scope (the channel was disconnected, e.g. the integration
    was reinstalled): connect again, then repeat."""


def rfc2822(when: datetime) -> str:
    """"Mon, 03 Oct 2020 15:11:21 +0000" (English names whatever the locale)."""
    when = when.astimezone(timezone.utc)
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    return (f"{days[when.weekday()]}, {when.day:02d} {months[when.month - 1]} {when.year} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} +0000")


def content_md5(body: bytes) -> str:
    return hashlib.md5(body).hexdigest()


def request_signature(secret: str, method: str, md5: str, content_type: str, date: str, path: str) -> str:
    text = "\n".join([method.upper(), md5, content_type, date, path])
    return hmac.new(secret.encode(), text.encode(), hashlib.sha1).hexdigest()


def signed_headers(secret: str, method: str, path: str, body: bytes, date: str) -> dict[str, str]:
    md5 = content_md5(body)
    return {"Date": date, "Content-Type": CONTENT_TYPE, "Content-MD5": md5,
            "X-Signature": request_signature(secret, method, md5, CONTENT_TYPE, date, path)}


def hook_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def hook_signature_ok(secret: str, body: bytes, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(hook_signature(secret, body), (given or "").strip().lower())


def encode(body: Any) -> bytes:
    """The exact bytes sent and signed (compact JSON, UTF-8)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class AmojoClient:
    """Signed calls to amojo. Errors are the connector's AmoError kinds; bodies and
    headers are never logged (they carry the signature and customers' messages)."""

    def __init__(self, *, base_url: str, channel_id: str, secret: str, http: requests.Session,
                 clock: Callable[[], datetime], timeout: float, before_request: Callable[[], None] = lambda: None):
        self.base_url = base_url.rstrip("/")
        self.channel_id = channel_id
        self.secret = secret
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.before_request = before_request
        self.requests_made = 0

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = b"" if body is None else encode(body)
        headers = signed_headers(self.secret, method, path, data, rfc2822(self.clock()))
        self.before_request()
        self.requests_made += 1
        try:
            response = self.http.request(method, self.base_url + path, data=data or None, headers=headers,
                                         timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else f"failed ({type(exc).__name__})"
            raise Transient(f"amojo {method} {_short(path)} {kind}", ambiguous=method != "GET") from None
        status = response.status_code
        if status == 204 or not response.content:
            if status < 300:
                return None
        if status < 300:
            try:
                return response.json()
            except ValueError:
                return None
        detail = _detail(response)
        described = {"status": status, "body": detail[:500]}
        if status >= 500 or status == 429:
            raise Transient(f"amojo {method} {_short(path)}: HTTP {status}", ambiguous=method != "GET",
                            status=status, response=described)
        if status == 403:
            raise ConfigurationError(
                f"amojo refused the signature of {method} {_short(path)} (HTTP 403: {detail[:200]}): check the "
                f"chat channel id and secret", status=status, response=described)
        if status == 404:
            raise NotConnected(f"amojo {method} {_short(path)}: HTTP 404 ({detail[:200]})", status=status,
                               response=described)
        raise BadRequest(f"amojo {method} {_short(path)}: HTTP {status} ({detail[:300]})", status=status,
                         response=described)

    # -- the methods used -------------------------------------------------------------------
    def connect(self, account_id: str, title: str) -> dict[str, Any]:
        """POST /v2/origin/custom/{channel_id}/connect -> {"scope_id", ...}."""
        try:
            answer = self.request("POST", f"/v2/origin/custom/{self.channel_id}/connect",
                                  {"account_id": account_id, "title": title, "hook_api_version": "v2"})
        except NotConnected as exc:
            raise ConfigurationError(f"amojo does not know chat channel {self.channel_id} ({exc.message}): "
                                     f"check the channel id", status=404, response=exc.response) from None
        if not isinstance(answer, dict) or not answer.get("scope_id"):
            raise Transient("amojo connect answered without scope_id")
        return answer

    def send(self, scope_id: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.request("POST", f"/v2/origin/custom/{scope_id}", body)
        return answer if isinstance(answer, dict) else {}

    def delivery_status(self, scope_id: str, msgid: str, status: int, error_code: int | None = None,
                        error: str | None = None) -> None:
        body: dict[str, Any] = {"msgid": msgid, "delivery_status": status}
        if status == -1:
            body.update(error_code=error_code or 905, error=(error or "not delivered")[:1000])
        self.request("POST", f"/v2/origin/custom/{scope_id}/{msgid}/delivery_status", body)


def _short(path: str) -> str:
    """Paths name the scope and message ids only; fine to log."""
    return path


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:300]
    if isinstance(body, dict):
        for key in ("error", "detail", "title", "message"):
            if body.get(key):
                return str(body[key])
    return json.dumps(body)[:300]


__all__ = ["AmoError", "AmojoClient", "NotConnected", "content_md5", "hook_signature", "hook_signature_ok",
           "request_signature", "rfc2822", "signed_headers"]
