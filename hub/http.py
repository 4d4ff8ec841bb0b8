"""Outbound HTTP helpers shared by the WhatsApp client and the connectors."""
from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Sequence

import requests

from hub import __version__
from hub.security import redact_headers, redact_text

USER_AGENT = f"hub/{__version__} (+https://github.com/hub-crm/hub)"
BODY_EXCERPT = 2000


class TimeoutSession(requests.Session):
    """A session whose requests always have a timeout (requests has none by default)."""

    def __init__(self, timeout: float = 10.0):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when, now)


def describe_response(response: requests.Response, secrets: Sequence[str] = ()) -> dict[str, Any]:
    """A redacted, size-bounded record of a response for the delivery log."""
    try:
        text = response.text
    except Exception:  # undecodable body
        text = "<binary>"
    return {
        "status": response.status_code,
        "headers": redact_headers(dict(response.headers)),
        "body": redact_text(text[:BODY_EXCERPT], list(secrets)),
    }
