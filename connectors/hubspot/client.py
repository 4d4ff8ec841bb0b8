"""HTTP client for HubSpot's CRM API: auth, the shared rate limits, errors as exceptions.

Authentication comes from oauth.py: a private app token, or OAuth tokens renewed before
they expire and once more when HubSpot answers 401 (then the request is sent again).
Every request first takes a slot of the connector's shared rolling 10-second window (all
workers of one connector draw from it, hub.platform.ratelimit.SlidingWindow), searches also a
token from the lower search bucket. A 429 is answered by holding the right limit back
for the time HubSpot asks and trying again; the rate-limit
headers of ordinary answers are read too, because other apps of the same account spend
from the same budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

import requests

from connectors.hubspot.errors import (
    AuthFailed, Conflict, HubSpotError, NotFound, RateLimited, Unavailable, ValidationFailed,
)
from connectors.hubspot.oauth import PrivateAppToken
from hub.shared.http import describe_response
from hub.shared.ratelimit import MemoryBucket, MemoryWindow

REQUESTS_PER_WINDOW_BURST = 1  # tokens kept for bursts; the rest is spread over the window


def window_limit(per_window: int) -> int:
    """Requests let go per rolling window: 2% short of HubSpot's count, for requests that
    reach HubSpot a little later than they left (so two of one slot never fall inside
    one of HubSpot's windows)."""
    return max(1, int(per_window * 0.98))


def bucket_shape(per_window: int, window_seconds: float) -> tuple[float, float]:
    """(rate, burst) of a token bucket that never lets more than `per_window` requests
    into any rolling window: burst + rate * window <= per_window, with a 2% margin for
    requests that arrive a little later than they were let go."""
    burst = float(REQUESTS_PER_WINDOW_BURST)
    usable = per_window * 0.98 - burst
    return max(usable / window_seconds, 0.1), burst


@dataclass
class ClientConfig:
    base_url: str
    token: str
    per_10_seconds: int = 100
    search_per_second: int = 5
    max_429_retries: int = 4
    max_wait_in_process: float = 30.0


class HubSpotClient:
    def __init__(self, config: ClientConfig, http: requests.Session, *,
                 limiter: Callable[[str, float, float], Any] | None = None,
                 window_limiter: Callable[[str, int, float], Any] | None = None,
                 clock: Callable[[], datetime], timeout: float = 10.0, auth: Any = None):
        self.config = config
        self.auth = auth if auth is not None else PrivateAppToken(config.token)
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.base_url = config.base_url.rstrip("/")
        rate, burst = bucket_shape(config.per_10_seconds, 10.0)
        search_rate, search_burst = bucket_shape(config.search_per_second, 1.0)
        make = limiter or (lambda _name, r, b: MemoryBucket(r, b))
        if limiter is not None and window_limiter is None:
            self.general = make("api", rate, burst)
        else:
            # HubSpot counts TEN_SECONDLY_ROLLING: a window lets a client that paused
            # (reading answers, storing links) catch up, which a spread-out bucket cannot.
            window = window_limiter or (lambda _name, n, seconds: MemoryWindow(n, seconds))
            self.general = window("api-window", window_limit(config.per_10_seconds), 10.0)
        self.search_bucket = make("search", search_rate, search_burst)
        self.requests_made = 0

    # -- the one way out ---------------------------------------------------------------
    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                search: bool = False, bearer: bool = True) -> Any:
        url = f"{self.base_url}{path}"
        renewed = False
        attempt = 0  # answers of 429 so far
        while True:
            # The developer API key calls (custom channel registration) carry no token.
            token = self.auth.bearer(pace=self.general.take) if bearer else ""
            if search:
                self.search_bucket.take()
            self.general.take()
            self.requests_made += 1
            headers = {"Accept": "application/json"}
            if bearer:
                headers["Authorization"] = f"Bearer {token}"
            try:
                response = self.http.request(method, url, json=json, params=params, headers=headers,
                                             timeout=self.timeout)
            except requests.Timeout:
                raise Unavailable(f"{method} {path}: HubSpot did not answer within {self.timeout:g} s") from None
            except requests.RequestException as exc:
                raise Unavailable(f"{method} {path}: connection failed ({type(exc).__name__})") from None
            self._honour_headers(response)
            if response.status_code == 401 and bearer and self.auth.renewable and not renewed:
                # Expired (or revoked) OAuth access token: renew once and send again.
                renewed = True
                self.auth.renew(rejected=token, pace=self.general.take)
                continue
            if response.status_code != 429:
                return self._result(method, path, response)
            wait, policy, daily = rate_limit_wait(response.headers, _json(response), attempt)
            described = describe_response(response, self.auth.secrets())
            if daily or wait > self.config.max_wait_in_process or attempt == self.config.max_429_retries:
                raise RateLimited(
                    f"{method} {path}: HubSpot rate limit {policy or '(unnamed)'} reached",
                    retry_at=self.clock() + timedelta(seconds=wait), policy=policy, daily=daily,
                    response=described,
                )
            (self.search_bucket if policy == "SECONDLY" or (search and policy != "TEN_SECONDLY_ROLLING")
             else self.general).penalise(wait)
            attempt += 1

    def _honour_headers(self, response: requests.Response) -> None:
        remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
        if remaining is not None and remaining.strip().isdigit() and int(remaining) <= 0 \
                and response.status_code != 429:
            # Another app of this account has spent the window: let it free up a little.
            interval = _number(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"), 10000)
            maximum = _number(response.headers.get("X-HubSpot-RateLimit-Max"), self.config.per_10_seconds)
            self.general.penalise(interval / 1000.0 / max(maximum, 1))

    def _result(self, method: str, path: str, response: requests.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return _json(response) if response.content else None
        body = _json(response)
        described = describe_response(response, self.auth.secrets())
        message = str((body or {}).get("message") or response.reason or "")
        text = f"{method} {path}: HTTP {status}: {message}"
        if status >= 500 or status in (408, 425):
            raise Unavailable(text, response=described)
        if status == 401 or (status == 403 and (body or {}).get("category") in ("MISSING_SCOPES", "INVALID_AUTHENTICATION", None)):
            raise AuthFailed(status, text, body, described)
        if status == 404:
            raise NotFound(status, text, body, described)
        if status == 409:
            from connectors.hubspot.mapping import conflict_existing_id
            raise Conflict(status, text, body, described, existing_id=conflict_existing_id(body))
        if status == 400:
            from connectors.hubspot.mapping import validation_problems
            raise ValidationFailed(status, text, body, described, problems=validation_problems(body))
        raise HubSpotError(status, text, body, described)

    # -- objects -------------------------------------------------------------------------
    def batch_create(self, object_type: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.request("POST", f"/crm/v3/objects/{object_type}/batch/create", json={"inputs": inputs})
        return list((answer or {}).get("results") or [])

    def batch_update(self, object_type: str, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.request("POST", f"/crm/v3/objects/{object_type}/batch/update", json={"inputs": inputs})
        return list((answer or {}).get("results") or [])

    def batch_read(self, object_type: str, ids: list[str], properties: list[str],
                   id_property: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"inputs": [{"id": str(i)} for i in ids], "properties": properties}
        if id_property:
            body["idProperty"] = id_property
        answer = self.request("POST", f"/crm/v3/objects/{object_type}/batch/read", json=body)
        return list((answer or {}).get("results") or [])

    def search(self, object_type: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result of a search, following `paging.next.after`."""
        after: str | None = None
        while True:
            page_body = dict(body)
            if after is not None:
                page_body["after"] = after
            answer = self.request("POST", f"/crm/v3/objects/{object_type}/search", json=page_body, search=True) or {}
            yield from answer.get("results") or []
            after = (((answer.get("paging") or {}).get("next")) or {}).get("after")
            if not after:
                return

    # -- associations v4 --------------------------------------------------------------------
    def associated_ids(self, from_type: str, to_type: str, ids: list[str]) -> dict[str, list[str]]:
        """from id -> ids of associated `to_type` records (all pages)."""
        answer = self.request("POST", f"/crm/v4/associations/{from_type}/{to_type}/batch/read",
                              json={"inputs": [{"id": str(i)} for i in ids]}) or {}
        out: dict[str, list[str]] = {str(i): [] for i in ids}
        for result in answer.get("results") or []:
            source = str(result["from"]["id"])
            out.setdefault(source, []).extend(str(t["toObjectId"]) for t in result.get("to") or [])
            after = (((result.get("paging") or {}).get("next")) or {}).get("after")
            while after:
                page = self.request("GET", f"/crm/v4/objects/{from_type}/{source}/associations/{to_type}",
                                    params={"limit": 500, "after": after}) or {}
                out[source].extend(str(t["toObjectId"]) for t in page.get("results") or [])
                after = (((page.get("paging") or {}).get("next")) or {}).get("after")
        return out

    def associate(self, from_type: str, to_type: str, pairs: list[tuple[str, str]], type_id: int) -> None:
        inputs = [{"from": {"id": str(a)}, "to": {"id": str(b)},
                   "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
                  for a, b in pairs]
        self.request("POST", f"/crm/v4/associations/{from_type}/{to_type}/batch/create", json={"inputs": inputs})

    # -- account ------------------------------------------------------------------------------
    def account_details(self) -> dict[str, Any]:
        return self.request("GET", "/account-info/v3/details") or {}

    def pipelines(self, object_type: str = "deals") -> list[dict[str, Any]]:
        return list((self.request("GET", f"/crm/v3/pipelines/{object_type}") or {}).get("results") or [])

    def owners(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "archived": "false"}
            if after:
                params["after"] = after
            answer = self.request("GET", "/crm/v3/owners", params=params) or {}
            out.extend(answer.get("results") or [])
            after = (((answer.get("paging") or {}).get("next")) or {}).get("after")
            if not after:
                return out

    def property(self, object_type: str, name: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", f"/crm/v3/properties/{object_type}/{name}")
        except NotFound:
            return None

    def create_property(self, object_type: str, definition: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/crm/v3/properties/{object_type}", json=definition) or {}

    # -- Conversations inbox: custom channels (inbox.py; README.md for the sources) -----------
    def inboxes(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            answer = self.request("GET", "/conversations/v3/conversations/inboxes", params=params) or {}
            out.extend(answer.get("results") or [])
            after = (((answer.get("paging") or {}).get("next")) or {}).get("after")
            if not after:
                return out

    def create_custom_channel(self, body: dict[str, Any], developer_api_key: str, app_id: str) -> dict[str, Any]:
        """Registered for the app with its developer API key (hapikey), not an account token."""
        return self.request("POST", "/conversations/v3/custom-channels", json=body, bearer=False,
                            params={"hapikey": developer_api_key, "appId": app_id}) or {}

    def custom_channel(self, channel_id: str) -> dict[str, Any]:
        return self.request("GET", f"/conversations/v3/custom-channels/{channel_id}") or {}

    def channel_accounts(self, channel_id: str, phone: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": 100}
        if phone:
            params.update(deliveryIdentifierType="HS_PHONE_NUMBER", deliveryIdentifierValue=phone)
        answer = self.request("GET", f"/conversations/v3/custom-channels/{channel_id}/channel-accounts",
                              params=params) or {}
        return list(answer.get("results") or [])

    def create_channel_account(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/conversations/v3/custom-channels/{channel_id}/channel-accounts",
                            json=body) or {}

    def publish_message(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/conversations/v3/custom-channels/{channel_id}/messages", json=body) or {}

    def update_message_status(self, channel_id: str, message_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"/conversations/v3/custom-channels/{channel_id}/messages/{message_id}",
                            json=body) or {}


def rate_limit_wait(headers: Any, body: Any, attempt: int) -> tuple[float, str, bool]:
    """(seconds to wait, policyName, daily?) for a 429: Retry-After when given; the day's
    budget waits an hour; the search limit (SECONDLY) and the 10-second window back off
    from one second, doubling on each further refusal."""
    body = body if isinstance(body, dict) else {}
    policy = str(body.get("policyName") or "")
    daily = policy.upper() == "DAILY"
    retry_after = headers.get("Retry-After")
    if retry_after and str(retry_after).strip().isdigit():
        return float(retry_after), policy, daily
    if daily:
        return 3600.0, policy, daily
    interval = _number(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"), 10000) / 1000.0
    return min(interval, 1.0 * (2 ** attempt)), policy, daily


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _number(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
