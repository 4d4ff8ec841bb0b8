"""Outbound HTTP helpers shared by the WhatsApp client and the connectors."""
from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from typing import Any, Sequence

import requests
import requests.adapters

from hub import __version__
from hub.shared.security import redact_headers, redact_text

USER_AGENT = f"hub/{__version__} (+https://github.com/hub-crm/hub)"
BODY_EXCERPT = 2000


class TimeoutSession(requests.Session):
    """A session whose requests always have a timeout (requests has none by default)."""

    def __init__(self, timeout: float = 10.0):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = USER_AGENT
        self._env_cache: dict[str, dict[str, Any]] = {}
        # Connectors send in parallel from several threads; keep a connection for each.
        adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=32)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        """requests re-reads every environment variable (proxies, CA bundle, .netrc) on
        each call, which costs more than the request itself; the environment does not
        change under a running process, so remember the answer per origin."""
        if proxies or stream or verify not in (None, True) or cert:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._env_cache.get(origin)
        if cached is None:
            cached = super().merge_environment_settings(origin + "/", proxies, stream, verify, cert)
            self._env_cache[origin] = cached
        return dict(cached)


def parse_retry_after(value: str | None, now: datetime) -> datetime | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
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
