"""HTTP client for the Bitrix24 REST API: auth, the portal's leaky bucket, errors.

Every request first takes a token from a bucket shared by all workers of the connector
(ctx.limiter), sized a little under the portal's own (2/s refill, 50 burst; 5/s and 250
on Enterprise), so a backlog runs at the portal's pace without ever overflowing it.
`batch` runs up to 50 commands in one request, which is what the limit counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import requests

from connectors.bitrix24 import phpquery
from connectors.bitrix24.errors import (
    AuthFailed, Bitrix24Error, MethodBlocked, MethodError, RateLimited, Transient, classify,
)
from hub.shared.http import parse_retry_after
from hub.shared.security import redact_text
from hub.shared.ratelimit import MemoryBucket

MAX_BATCH = 50
PAGE_SIZE = 50
DEFAULT_BLOCK_SECONDS = 600.0  # "the method is blocked for 10 minutes"
RATE_LIMIT_RETRIES = 3


@dataclass
class BatchResult:
    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Bitrix24Error] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    nexts: dict[str, int] = field(default_factory=dict)


def _as_map(value: Any) -> dict[str, Any]:
    """PHP serialises an empty array as [] and a keyed one as {}."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def command_string(method: str, params: dict[str, Any]) -> str:
    query = phpquery.build_query(params)
    return f"{method}?{query}" if query else method


class Bitrix24Client:
    def __init__(
        self,
        settings: dict[str, Any],
        *,
        http: requests.Session,
        clock: Callable[[], datetime],
        limiter: Callable[[str, float, float], Any] | None = None,
        update_settings: Callable[[Callable[[dict[str, Any]], dict[str, Any] | None]], dict[str, Any]] | None = None,
        timeout: float = 10.0,
    ):
        self.settings = dict(settings)
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.update_settings = update_settings
        rate = float(settings.get("rate_per_second") or 2.0)
        burst = float(settings.get("burst") or 50)
        # One token under the portal's burst: absorbs the jitter between taking a token
        # here and the request reaching the portal.
        safe_burst = max(1.0, burst - 1)
        self.bucket = limiter("requests", rate, safe_burst) if limiter else MemoryBucket(rate, safe_burst)
        self.blocked_until: dict[str, datetime] = {}
        self.reset_at: dict[str, datetime] = {}
        self.requests_sent = 0

    # -- auth ------------------------------------------------------------------------
    @property
    def oauth(self) -> bool:
        return self.settings.get("auth_mode") == "oauth"

    def secrets(self) -> list[str]:
        keys = ("webhook_url", "client_secret", "access_token", "refresh_token", "application_token",
                "authorization_code")
        values = [str(self.settings.get(k) or "") for k in keys]
        hook = str(self.settings.get("webhook_url") or "").rstrip("/")
        if hook:
            values.append(hook.rsplit("/", 1)[-1])  # the webhook code alone
        return [v for v in values if v]

    def _url(self, method: str) -> str:
        if self.oauth:
            base = str(self.settings["portal_url"]).rstrip("/") + "/rest/"
        else:
            base = str(self.settings["webhook_url"]).rstrip("/") + "/"
        return f"{base}{method}.json"

    def _under_lock(self, fn: Callable[[dict[str, Any]], dict[str, Any] | None]) -> dict[str, Any]:
        """fn(freshest settings) under the connector's row lock, its changes stored; the
        settings now stored. Without the hub (tests, scripts) on this client's copy."""
        if self.update_settings is not None:
            return self.update_settings(fn)
        return {**self.settings, **(fn(self.settings) or {})}

    def _refresh(self, used_token: str) -> None:
        """Rotate the OAuth tokens under the connector's row lock: if another worker already
        rotated them, take its tokens instead of spending the refresh token twice."""

        def rotate(fresh: dict[str, Any]) -> dict[str, Any] | None:
            if fresh.get("access_token") and fresh.get("access_token") != used_token:
                return None
            return self._exchange_refresh_token(fresh)

        stored = self._under_lock(rotate)
        for key in ("access_token", "refresh_token"):
            if stored.get(key):
                self.settings[key] = stored[key]

    def _connect(self) -> None:
        """Exchange the authorization code Connect with Bitrix24 stored (valid 30 seconds)
        for the app's tokens, once, under the connector's row lock."""

        def exchange(fresh: dict[str, Any]) -> dict[str, Any] | None:
            code = fresh.get("authorization_code")
            if not code:
                return None  # another worker exchanged it a moment ago
            tokens = self._exchange_token(fresh, {"grant_type": "authorization_code", "code": code},
                                          refused="Bitrix24 refused the authorization code ({}); press Connect "
                                                  "with Bitrix24 again (codes are valid 30 seconds)")
            return {**tokens, "authorization_code": ""}

        stored = self._under_lock(exchange)
        for key in ("access_token", "refresh_token", "authorization_code"):
            self.settings[key] = stored.get(key) or ""

    def _exchange_refresh_token(self, fresh: dict[str, Any]) -> dict[str, Any]:
        return self._exchange_token(fresh, {"grant_type": "refresh_token",
                                            "refresh_token": fresh.get("refresh_token", "")},
                                    refused="Bitrix24 refused to renew the app's tokens ({}); reconnect the app "
                                            "with Connect with Bitrix24 on the connector's page")

    def _exchange_token(self, fresh: dict[str, Any], grant: dict[str, Any], *, refused: str) -> dict[str, Any]:
        server = str(fresh.get("oauth_server_url") or "https://oauth.bitrix.info").rstrip("/")
        try:
            response = self.http.get(
                f"{server}/oauth/token/",
                params={"grant_type": grant["grant_type"], "client_id": fresh.get("client_id", ""),
                        "client_secret": fresh.get("client_secret", ""),
                        **{k: v for k, v in grant.items() if k != "grant_type"}},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise Transient("oauth_unreachable", f"token refresh failed: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise Transient("oauth_error", f"token server answered HTTP {response.status_code}",
                            status=response.status_code)
        if "error" in body or not body.get("access_token"):
            code = str(body.get("error") or "invalid_grant")
            said = redact_text(str(body.get("error_description") or code), self.secrets() + [str(v) for v in grant.values()])
            raise AuthFailed(code, refused.format(said), status=response.status_code)
        return {"access_token": body["access_token"], "refresh_token": body.get("refresh_token") or fresh.get("refresh_token")}

    def _redact(self, text: str) -> str:
        return redact_text(text, self.secrets())

    # -- requests --------------------------------------------------------------------
    def is_blocked(self, method: str) -> datetime | None:
        until = self.blocked_until.get(method)
        if until is None:
            return None
        if until <= self.clock():
            del self.blocked_until[method]
            return None
        return until

    def _note_time(self, method: str, time_block: Any) -> None:
        if isinstance(time_block, dict) and time_block.get("operating_reset_at"):
            try:
                self.reset_at[method] = datetime.fromtimestamp(float(time_block["operating_reset_at"]), timezone.utc)
            except (TypeError, ValueError):
                pass

    def _block(self, method: str) -> datetime:
        now = self.clock()
        until = self.reset_at.get(method)
        if until is None or until <= now:
            until = now + timedelta(seconds=DEFAULT_BLOCK_SECONDS)
        self.blocked_until[method] = until
        return until

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """One REST call; returns the envelope ({"result", "time", "total"?, "next"?})."""
        blocked = self.is_blocked(method)
        if blocked:
            raise MethodBlocked(method, "blocked until the portal resets its operating time", retry_at=blocked)
        limited = 0
        refreshed = False
        if self.oauth and self.settings.get("authorization_code"):
            self._connect()
        if self.oauth and not self.settings.get("access_token") and not self.settings.get("refresh_token"):
            raise AuthFailed("not_connected", "not connected to Bitrix24 yet: press Connect with Bitrix24 on the "
                                              "connector's page")
        while True:
            self.bucket.take()
            body = dict(params or {})
            token = ""
            if self.oauth:
                token = str(self.settings.get("access_token") or "")
                body["auth"] = token
            self.requests_sent += 1
            try:
                response = self.http.post(self._url(method), json=body, timeout=self.timeout)
            except requests.Timeout:
                raise Transient("timeout", f"Bitrix24 did not answer {method} within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise Transient("connection_failed", f"{method}: {type(exc).__name__}") from None
            try:
                envelope = response.json()
            except ValueError:
                envelope = None
            status = response.status_code
            if isinstance(envelope, dict) and 200 <= status < 300 and "error" not in envelope:
                self._note_time(method, envelope.get("time"))
                return envelope
            if not isinstance(envelope, dict):
                raise Transient("ERROR_UNEXPECTED_ANSWER", f"{method}: HTTP {status}, not JSON", status=status)
            code = str(envelope.get("error") or "")
            description = self._redact(str(envelope.get("error_description") or ""))
            if code == "QUERY_LIMIT_EXCEEDED":
                wait = parse_retry_after(response.headers.get("Retry-After"), self.clock())
                seconds = (wait - self.clock()).total_seconds() if wait else 1.0
                self.bucket.penalise(max(seconds, 1.0))
                limited += 1
                if limited <= RATE_LIMIT_RETRIES:
                    continue
                raise RateLimited(code, description, status=status)
            if code == "expired_token" and self.oauth and not refreshed:
                self._refresh(token)
                refreshed = True
                continue
            err = classify(code, description, status, method)
            if isinstance(err, MethodBlocked):
                err.retry_at = self._block(method)
            raise err

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.request(method, params)["result"]

    def batch(self, commands: list[tuple[str, str, dict[str, Any]]], *, halt: bool = False) -> BatchResult:
        """Run up to 50 (key, method, params) commands in one request; params may hold
        "$result[key][FIELD]" strings referring to earlier commands of the same batch."""
        if not commands:
            return BatchResult()
        if len(commands) > MAX_BATCH:
            raise ValueError(f"a batch holds at most {MAX_BATCH} commands, not {len(commands)}")
        cmd = {key: command_string(method, params) for key, method, params in commands}
        envelope = self.request("batch", {"halt": 1 if halt else 0, "cmd": cmd})
        payload = envelope.get("result") or {}
        results = _as_map(payload.get("result"))
        errors_raw = _as_map(payload.get("result_error"))
        times = _as_map(payload.get("result_time"))
        methods = {key: method for key, method, _ in commands}
        out = BatchResult(results=results,
                          totals={k: int(v) for k, v in _as_map(payload.get("result_total")).items()},
                          nexts={k: int(v) for k, v in _as_map(payload.get("result_next")).items()})
        for key, t in times.items():
            if key in methods:
                self._note_time(methods[key], t)
        for key, raw in errors_raw.items():
            raw = raw if isinstance(raw, dict) else {"error": "", "error_description": str(raw)}
            err = classify(str(raw.get("error") or ""), self._redact(str(raw.get("error_description") or "")),
                           None, methods.get(key, ""))
            if isinstance(err, MethodBlocked):
                err.retry_at = self._block(methods.get(key, ""))
            out.errors[key] = err
        return out

    def list_all(self, method: str, params: dict[str, Any] | None = None, *, max_pages: int = 20) -> list[Any]:
        """Follow `next` through a list method (50 items a page)."""
        items: list[Any] = []
        params = dict(params or {})
        for _ in range(max_pages):
            envelope = self.request(method, params)
            result = envelope.get("result")
            if isinstance(result, dict):  # crm.category.list: {"categories": [...]}
                page = next((v for v in result.values() if isinstance(v, list)), [])
            else:
                page = result or []
            items.extend(page)
            if "next" not in envelope:
                break
            params["start"] = envelope["next"]
        return items


__all__ = [
    "Bitrix24Client", "BatchResult", "MAX_BATCH", "PAGE_SIZE", "command_string",
    "AuthFailed", "MethodError", "Transient",
]
