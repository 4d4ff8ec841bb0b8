"""The HTTP client for amoCRM's API v4: auth, the shared rate limit, retries, errors.

Every request first takes a token from the bucket all workers of this connector share
(amoCRM allows 7 requests per second per account). Answers become return values or the
exceptions in errors.py:

- 204 No Content is amoCRM's "empty list": returned as None.
- 401: the token is renewed once (oauth.py) and the request repeated.
- 429: the shared bucket is emptied for Retry-After seconds (every worker holds back) and
  the request repeated a few times before giving up as RateLimited.
- 5xx and timeouts: safe requests (GET, PATCH) are repeated with a short backoff; a POST
  is not, because amoCRM may have applied it: the caller gets Transient(ambiguous=True)
  and looks before creating again.
- 400 with validation-errors: ValidationFailed, per request_id, with the paths named.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import requests

from connectors.amocrm.errors import (
    AccountBlocked, AuthProblem, BadRequest, NotFound, RateLimited, Transient, ValidationFailed,
)
from connectors.amocrm.oauth import TokenKeeper
from connectors.base import RateLimiter
from hub.shared.http import describe_response

log = logging.getLogger(__name__)

PAGE_LIMIT = 250  # amoCRM's maximum `limit` for list methods
RATE_LIMIT_RETRIES = 3
TRANSIENT_RETRIES = 2
DEFAULT_RETRY_AFTER = 1.0
IDEMPOTENT = frozenset({"GET", "PATCH", "DELETE", "HEAD"})


def _retry_after(response: requests.Response) -> float:
    value = (response.headers.get("Retry-After") or "").strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def validation_errors(body: Any) -> dict[str, list[str]]:
    """amoCRM's `validation-errors` as {request_id: ["path: detail", ...]}."""
    out: dict[str, list[str]] = {}
    if not isinstance(body, dict):
        return out
    for item in body.get("validation-errors") or []:
        if not isinstance(item, dict):
            continue
        request_id = str(item.get("request_id", ""))
        for err in item.get("errors") or []:
            if isinstance(err, dict):
                out.setdefault(request_id, []).append(
                    f"{err.get('path', '?')}: {err.get('detail') or err.get('code') or 'invalid'}")
    return out


class AmoClient:
    def __init__(
        self,
        *,
        base_url: str,
        http: requests.Session,
        tokens: TokenKeeper,
        limiter: RateLimiter | None,
        clock: Callable[[], datetime],
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.http = http
        self.tokens = tokens
        self.limiter = limiter
        self.clock = clock
        self.timeout = timeout
        self.sleep = sleep
        self.requests_made = 0

    # -- the one place requests are sent --------------------------------------------
    def take_token(self) -> None:
        if self.limiter is not None:
            self.limiter.take()

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None) -> Any:
        """The decoded JSON body, or None for 204 No Content."""
        method = method.upper()
        safe = method in IDEMPOTENT
        renewed = False
        rate_limited = 0
        transient = 0
        while True:
            token = self.tokens.bearer()
            self.take_token()
            self.requests_made += 1
            try:
                response = self.http.request(
                    method, self.base_url + path, params=params, json=json,
                    headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    timeout=self.timeout, allow_redirects=False,
                )
            except requests.RequestException as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else f"failed ({type(exc).__name__})"
                if safe and transient < TRANSIENT_RETRIES:
                    transient += 1
                    self.sleep(0.25 * 2 ** transient)
                    continue
                raise Transient(f"{method} {path} {kind}", ambiguous=not safe) from None
            status = response.status_code
            if status == 204:
                return None
            if 200 <= status < 300:
                try:
                    return response.json() if response.content else None
                except ValueError:
                    raise Transient(f"{method} {path}: HTTP {status} with a body that is not JSON",
                                    ambiguous=not safe, status=status,
                                    response=self._describe(response)) from None
            if status == 401 and not renewed:
                renewed = True
                self.tokens.renew(rejected=token)
                continue
            if status == 429:
                wait = _retry_after(response)
                if self.limiter is not None:
                    self.limiter.penalise(wait)  # every worker of this connector holds back
                if rate_limited < RATE_LIMIT_RETRIES:
                    rate_limited += 1
                    if self.limiter is None:
                        self.sleep(wait)
                    log.info("amoCRM answered 429 to %s %s; waiting %.1f s", method, path, wait)
                    continue
                raise RateLimited(f"{method} {path}: amoCRM kept answering 429 Too Many Requests",
                                  retry_at=self.clock() + timedelta(seconds=wait), status=status,
                                  response=self._describe(response))
            if status >= 500:
                if safe and transient < TRANSIENT_RETRIES:
                    transient += 1
                    self.sleep(0.25 * 2 ** transient)
                    continue
                raise Transient(f"{method} {path}: amoCRM answered HTTP {status}",
                                ambiguous=not safe, status=status, response=self._describe(response))
            raise self._client_error(method, path, response, renewed)

    def _describe(self, response: requests.Response) -> dict[str, Any]:
        return describe_response(response, self.tokens.secrets())

    def _client_error(self, method: str, path: str, response: requests.Response,
                      renewed: bool) -> Exception:
        status = response.status_code
        described = self._describe(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        where = f"{method} {path}"
        if status == 401:
            return AuthProblem(
                f"{where}: amoCRM refuses even a freshly renewed token (HTTP 401); the integration "
                f"may have been disabled or its rights removed: re-connect it in the settings",
                status=status, response=described)
        if status == 402:
            return AccountBlocked(f"{where}: the amoCRM account is not paid (HTTP 402 Payment Required)",
                                  status=status, response=described)
        if status == 403:
            return AccountBlocked(
                f"{where}: amoCRM answered 403 Forbidden ({detail or 'access denied'}); after repeated "
                f"429s amoCRM blocks the integration for a while, otherwise the authorizing user "
                f"lacks rights", status=status, response=described)
        if status == 404:
            return NotFound(f"{where}: not found in amoCRM (deleted?)", status=status, response=described)
        if status == 400:
            errors = validation_errors(body)
            if errors:
                flat = "; ".join(f"{e}" for msgs in errors.values() for e in msgs)
                return ValidationFailed(f"{where}: amoCRM rejected the data: {flat}", errors,
                                        response=described)
        return BadRequest(f"{where}: amoCRM answered HTTP {status}: {detail or 'bad request'}",
                          status=status, response=described)

    # -- conveniences -----------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json=body)

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every page of a list: follows _links.next; a 204 ends it (no more data)."""
        params = {"limit": PAGE_LIMIT, **(params or {})}
        next_path: str | None = path
        next_params: dict[str, Any] | None = params
        seen = 0
        while next_path:
            body = self.get(next_path, next_params)
            if not body:
                return
            yield body
            seen += 1
            href = (((body.get("_links") or {}).get("next") or {}).get("href")) if isinstance(body, dict) else None
            if not href:
                return
            parts = urlsplit(href)
            # The href repeats every parameter; keep only path and query from it.
            next_path, next_params = parts.path + ("?" + parts.query if parts.query else ""), None
            if seen > 10_000:  # a server that never stops paging
                raise Transient(f"GET {path}: pagination did not end")

    def collect(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in self.pages(path, params):
            out.extend(((page.get("_embedded") or {}).get(key)) or [])
        return out
