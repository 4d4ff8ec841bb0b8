"""What can go wrong talking to HubSpot, sorted by what the caller should do about it.

The client and the OAuth token keeper turn HTTP answers into these; the connector turns
them into Outcomes: Unavailable/RateLimited -> retry, ValidationFailed -> dead (property
named), AuthFailed/OAuthFailed -> wait with the connector marked unhealthy.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any


class HubSpotError(Exception):
    """An answer HubSpot will give again if asked again (4xx other than 429)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None,
                 response: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body or {}
        self.response = response
        self.category = str(self.body.get("category") or "")


class AuthFailed(HubSpotError):
    """401, or 403 for missing scopes: only the admin can fix it."""


class OAuthFailed(AuthFailed):
    """HubSpot's token endpoint refused the authorization code, the refresh token or the
    app's credentials; `message` says what the admin must do, `field` names the setting."""

    def __init__(self, *args: Any, field: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.field = field


class NotFound(HubSpotError):
    pass


class Conflict(HubSpotError):
    """409: an object with the same unique value exists; `existing_id` names it."""

    def __init__(self, *args: Any, existing_id: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.existing_id = existing_id


class ValidationFailed(HubSpotError):
    """400: HubSpot refused the body; `problems` = [(property, code, message)]."""

    def __init__(self, *args: Any, problems: list[tuple[str, str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.problems = problems or []


class Unavailable(Exception):
    """5xx, timeouts, connection errors: try again later."""

    def __init__(self, message: str, *, retry_at: datetime | None = None,
                 response: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.retry_at = retry_at
        self.response = response


class RateLimited(Unavailable):
    """Still limited after waiting in-process; `daily` when the day's budget is spent."""

    def __init__(self, message: str, *, retry_at: datetime | None = None, policy: str = "",
                 daily: bool = False, response: dict[str, Any] | None = None):
        super().__init__(message, retry_at=retry_at, response=response)
        self.policy = policy
        self.daily = daily
