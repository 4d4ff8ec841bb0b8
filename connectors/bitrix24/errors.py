"""What can go wrong talking to Bitrix24, sorted by what the hub should do about it.

Codes and statuses are those of the system error table
(https://apidocs.bitrix24.com/error-codes.html); a batch reports per-command errors in
result_error with the same codes, so one classifier serves both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Worth another try later: limits and server trouble.
TRANSIENT_CODES = frozenset({
    "QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "INTERNAL_SERVER_ERROR",
    "ERROR_UNEXPECTED_ANSWER", "ERROR_BATCH_LENGTH_EXCEEDED",
})
# The connector's own credentials or plan: nothing will pass until an admin acts.
AUTH_CODES = frozenset({
    "NO_AUTH_FOUND", "INVALID_CREDENTIALS", "invalid_token", "invalid_grant", "invalid_client",
    "insufficient_scope", "user_access_error", "OVERLOAD_LIMIT", "PORTAL_DELETED",
    "INVALID_REQUEST", "PAYMENT_REQUIRED", "ERROR_OAUTH", "wrong_client",
})
EXPIRED_TOKEN = "expired_token"


class Bitrix24Error(Exception):
    """Base: `code` and `description` as Bitrix24 sent them (never carries a secret)."""

    def __init__(self, code: str, description: str = "", *, status: int | None = None):
        self.code = code
        self.description = description
        self.status = status
        super().__init__(self.summary())

    def summary(self) -> str:
        where = f"HTTP {self.status} " if self.status else ""
        text = f"{where}{self.code or 'error'}"
        return f"{text}: {self.description}" if self.description else text


class Transient(Bitrix24Error):
    """5xx, timeouts, connection failures, limits: retry later."""

    def __init__(self, code: str, description: str = "", *, status: int | None = None,
                 retry_at: datetime | None = None):
        super().__init__(code, description, status=status)
        self.retry_at = retry_at


class RateLimited(Transient):
    """503 QUERY_LIMIT_EXCEEDED: the portal's leaky bucket overflowed."""


class MethodBlocked(Transient):
    """429 OPERATION_TIME_LIMIT: this method used up its execution time; others still work."""

    def __init__(self, method: str, description: str = "", *, status: int | None = 429,
                 retry_at: datetime | None = None):
        super().__init__("OPERATION_TIME_LIMIT", description, status=status, retry_at=retry_at)
        self.method = method


class AuthFailed(Bitrix24Error):
    """The webhook or the app's tokens no longer work: an admin must reconnect."""


class MethodError(Bitrix24Error):
    """The method refused this input (validation, not found): retrying will not help."""


def classify(code: str, description: str, status: int | None = None, method: str = "") -> Bitrix24Error:
    if code == "QUERY_LIMIT_EXCEEDED":
        return RateLimited(code, description, status=status)
    if code == "OPERATION_TIME_LIMIT":
        return MethodBlocked(method, description, status=status)
    if code in TRANSIENT_CODES or (status is not None and status >= 500):
        return Transient(code, description, status=status)
    if code in AUTH_CODES or code == EXPIRED_TOKEN or (code == "ACCESS_DENIED" and status == 401):
        return AuthFailed(code, description, status=status)
    return MethodError(code, description, status=status)


_FIELD = re.compile(r"\b(?:field|поле)\s*['\"«]?([A-Z][A-Z0-9_]+)", re.IGNORECASE)
_UPPER = re.compile(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+|TITLE|PHONE|NAME|COMMENT)\b")


def field_named(description: str) -> str | None:
    """The CRM field an error description talks about, when it names one."""
    m = _FIELD.search(description) or _UPPER.search(description)
    return m.group(1) if m else None


@dataclass(frozen=True)
class CommandError:
    """One failed command of a batch (or a command that never ran)."""

    code: str
    description: str
    kind: str  # "transient" | "auth" | "invalid" | "blocked"
    retry_at: datetime | None = None

    @classmethod
    def from_error(cls, err: Bitrix24Error) -> "CommandError":
        if isinstance(err, MethodBlocked):
            kind = "blocked"
        elif isinstance(err, Transient):
            kind = "transient"
        elif isinstance(err, AuthFailed):
            kind = "auth"
        else:
            kind = "invalid"
        return cls(err.code, err.description, kind, getattr(err, "retry_at", None))

    def text(self) -> str:
        return f"{self.code}: {self.description}" if self.description else (self.code or "error")
