"""What can go wrong talking to amoCRM, sorted by what the caller should do about it.

The client turns HTTP answers into these; the connector turns them into Outcomes:
Transient/RateLimited -> retry, Validation -> dead (field named), AuthProblem and
AccountBlocked -> wait with the connector marked unhealthy.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


class AmoError(Exception):
    """Base class; `response` is a redacted record for the delivery log."""

    def __init__(self, message: str, *, status: int | None = None,
                 response: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.response = response


class Transient(AmoError):
    """5xx, timeouts, refused connections: try again later.

    `ambiguous` is True when the request may have been applied before the failure
    (a POST that timed out or got a 5xx), so a retry must look before creating.
    """

    def __init__(self, message: str, *, ambiguous: bool = False, retry_at: datetime | None = None,
                 status: int | None = None, response: dict[str, Any] | None = None):
        super().__init__(message, status=status, response=response)
        self.ambiguous = ambiguous
        self.retry_at = retry_at


class RateLimited(Transient):
    """429 after the in-process retries ran out."""


class AccountBlocked(AmoError):
    """403 (amoCRM blocks an integration or IP after repeated 429s) or 402 (account
    unpaid): nothing will work until an admin acts or the block expires."""


class AuthProblem(AmoError):
    """Credentials that no longer work: revoked refresh token, wrong client secret,
    a 401 right after a fresh token. Deliveries wait; the admin must re-authorize."""


class ValidationFailed(AmoError):
    """400 with amoCRM's validation-errors: the request itself is wrong.

    `errors` maps request_id (str, "" when absent) -> list of "path: detail" strings.
    """

    def __init__(self, message: str, errors: dict[str, list[str]], *, status: int = 400,
                 response: dict[str, Any] | None = None):
        super().__init__(message, status=status, response=response)
        self.errors = errors


class NotFound(AmoError):
    """404: the object is gone (deleted in amoCRM)."""


class BadRequest(AmoError):
    """Any other 4xx: retrying the same request cannot help."""


class ConfigurationError(AmoError):
    """The connector's settings cannot work (e.g. OAuth without client id)."""
