"""WhatsApp API errors and what the hub does about each (protocol sheet §6.5, §6.6)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Verdict = Literal["retry", "throttled", "pair_limit", "window_closed", "token", "final"]

# Codes worth another try later (temporary service trouble, rate limits).
RETRY_CODES = frozenset({1, 2, 4, 80007, 131000, 131016, 131057, 133004})
TOKEN_CODES = frozenset({0, 190})


@dataclass
class WhatsAppError(Exception):
    code: int | None
    title: str
    details: str = ""
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from Retry-After when given

    def __str__(self) -> str:
        parts = [f"({self.code})" if self.code is not None else "", self.title]
        if self.details:
            parts.append(f"- {self.details}")
        if self.http_status:
            parts.append(f"[HTTP {self.http_status}]")
        return " ".join(p for p in parts if p)


def from_response(status: int, body: Any, retry_after: float | None = None) -> WhatsAppError:
    """Graph's {"error": {...}} body (360dialog relays the same), or a bare HTTP error."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
        code = error.get("code")
        message = str(error.get("message") or "")
        title = error.get("error_user_title") or message.split(") ", 1)[-1] or "error"
        return WhatsAppError(code if isinstance(code, int) else None, title, str(data.get("details") or ""),
                             status, retry_after)
    return WhatsAppError(None, f"HTTP {status}", "", status, retry_after)


def classify(error: WhatsAppError) -> Verdict:
    code = error.code
    if code in TOKEN_CODES or error.http_status == 401:
        return "token"
    if code == 131047:
        return "window_closed"
    if code == 130429 or error.http_status == 429:
        return "throttled"
    if code == 131056:
        return "pair_limit"
    if code in RETRY_CODES or (error.http_status or 0) >= 500 or (code is None and error.http_status is None):
        return "retry"
    return "final"  # 131026 undeliverable, 132xxx template errors, 100/131008/131009 bad request, ...
