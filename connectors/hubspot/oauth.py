"""How the client authenticates: a private app token, or an OAuth app's tokens kept fresh.

HubSpot OAuth access tokens live 30 minutes (`expires_in`, 1800 s); the refresh token does
not change when it is used. Refreshing is still done once for all workers: every
exchange runs inside ctx.update_settings(fn), where fn sees the freshest stored tokens
under a lock on the connector row and the new ones are stored (encrypted) in the same
transaction. Inside fn, a stored access token that is neither the one HubSpot just
refused nor about to expire means another worker refreshed a moment ago: it is adopted
and HubSpot is not called. So N workers whose token expires together make one request,
and a refresh token that HubSpot *did* rotate would never be presented twice either.

No database work may happen inside fn (on SQLite the lock is the single writer), so the
rate-limit token for the exchange is taken, and health is reported, outside it.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Callable

import requests

from connectors.hubspot.errors import OAuthFailed, Unavailable
from hub.shared.http import describe_response
from hub.shared.security import redact_text

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/v1/token"
REFRESH_MARGIN_SECONDS = 300  # renew this long before HubSpot would refuse the token

# The token endpoint's error `status` values: which ones a new authorization code cures,
# and which ones name a wrong app setting (field of the form).
RECONNECT = frozenset({"BAD_REFRESH_TOKEN", "BAD_AUTH_CODE", "EXPIRED_AUTH_CODE", "BAD_HUB"})
APP_SETTING = {"BAD_CLIENT_ID": "client_id", "BAD_CLIENT_SECRET": "client_secret",
               "BAD_REDIRECT_URI": "redirect_uri"}

SettingsUpdate = Callable[[Callable[[dict[str, Any]], dict[str, Any] | None]], dict[str, Any]]


class PrivateAppToken:
    """A private app's access token: it does not expire, so there is nothing to renew."""

    renewable = False

    def __init__(self, token: str):
        self.token = token

    def bearer(self, pace: Callable[[], None] | None = None) -> str:
        return self.token

    def renew(self, rejected: str | None, pace: Callable[[], None] | None = None) -> None:  # pragma: no cover
        raise AssertionError("a private app token cannot be renewed")

    def secrets(self) -> list[str]:
        return [self.token] if self.token else []


# -- pure helpers (fixtures in tests/fixtures/hubspot/oauth_*.json) ----------------------
def tokens_from_answer(payload: Any, now: datetime, previous_refresh: str | None) -> dict[str, Any]:
    """The settings to store from a 200 of POST /oauth/v1/token. HubSpot repeats the
    refresh token it was given; if an answer ever lacks it, the one used stays."""
    if not isinstance(payload, dict) or not isinstance(payload.get("access_token"), str) \
            or not payload["access_token"]:
        raise ValueError("no access_token in the answer")
    expires_in = int(payload.get("expires_in") or 0)
    refresh = payload.get("refresh_token") or previous_refresh
    if not refresh:
        raise ValueError("no refresh_token in the answer")
    return {"oauth_access_token": payload["access_token"], "oauth_refresh_token": refresh,
            "oauth_expires_at": int(now.timestamp()) + expires_in if expires_in > 0 else None}


def refusal(payload: Any) -> dict[str, str]:
    """What the token endpoint's 4xx body says: {code, message, fix, field}."""
    body = payload if isinstance(payload, dict) else {}
    status = str(body.get("status") or "")
    code = status if status and status != "error" else str(body.get("category") or body.get("error") or "")
    message = str(body.get("message") or body.get("error_description") or "")
    if code in APP_SETTING:
        return {"code": code, "message": message, "fix": "app", "field": APP_SETTING[code]}
    return {"code": code, "message": message, "fix": "reconnect", "field": "authorization_code"}


def expired_token(payload: Any) -> bool:
    """A 401 body saying the access token expired (EXPIRED_AUTHENTICATION), as opposed to
    one HubSpot does not know (INVALID_AUTHENTICATION: revoked, uninstalled, mistyped)."""
    return isinstance(payload, dict) and payload.get("category") == "EXPIRED_AUTHENTICATION"


class OAuthTokens:
    """Hands out an OAuth access token and renews it; one per connector instance, shared by
    its clients and threads."""

    renewable = True

    def __init__(
        self,
        settings: dict[str, Any],
        *,
        base_url: str,
        http: requests.Session,
        clock: Callable[[], datetime],
        timeout: float,
        update_settings: SettingsUpdate | None,
        before_exchange: Callable[[], None] = lambda: None,
        on_connected: Callable[[str], None] = lambda _message: None,
    ):
        self.token_url = base_url.rstrip("/") + TOKEN_PATH
        self.client_id = settings.get("client_id") or ""
        self.client_secret = settings.get("client_secret") or ""
        self.redirect_uri = settings.get("redirect_uri") or ""
        self.access_token: str | None = settings.get("oauth_access_token") or None
        self.refresh_token: str | None = settings.get("oauth_refresh_token") or None
        self.expires_at: int | None = settings.get("oauth_expires_at")
        self._code: str | None = settings.get("authorization_code") or None
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.update_settings = update_settings
        self.before_exchange = before_exchange
        self.on_connected = on_connected
        self.exchanges = {"authorization_code": 0, "refresh_token": 0}  # requests this instance made
        self._lock = threading.Lock()
        self._spent: set[str] = set()  # codes and tokens seen, for redaction
        self._connected_now = False

    # -- used by the client -------------------------------------------------------------------
    @property
    def renewals(self) -> int:
        return sum(self.exchanges.values())

    def secrets(self) -> list[str]:
        values = {self.access_token, self.refresh_token, self.client_secret, self._code, *self._spent}
        return [v for v in values if v]

    def bearer(self, pace: Callable[[], None] | None = None) -> str:
        token = self.access_token
        if self._code or not token or self._expiring(self.expires_at):
            self.renew(rejected=None, pace=pace)
            token = self.access_token
        assert token
        return token

    def renew(self, rejected: str | None, pace: Callable[[], None] | None = None) -> None:
        """Get a working access token: adopt one another worker stored, else exchange the
        authorization code or the refresh token. `rejected` is a token HubSpot answered
        401 to (never adopted); `pace` takes a rate-limit token from the calling client's
        bucket (the exchange counts against the account's limit)."""
        with self._lock:
            if self._usable_now(rejected):
                return  # another thread of this instance renewed while this one waited
            if self.update_settings is None:
                raise OAuthFailed(0, "OAuth needs the hub's locked settings update to store its tokens")
            (pace or self.before_exchange)()
            self._connected_now = False
            stored = self.update_settings(lambda fresh: self._renew_locked(fresh, rejected))
            self.access_token = stored.get("oauth_access_token") or None
            self.refresh_token = stored.get("oauth_refresh_token") or None
            self.expires_at = stored.get("oauth_expires_at")
            self._code = stored.get("authorization_code") or None
            connected = self._connected_now
        if connected:  # reported only now: no database work inside the lock
            self.on_connected(f"connected to HubSpot with the new authorization code "
                              f"({self.clock():%Y-%m-%d %H:%M} UTC)")
        if not self.access_token:
            raise OAuthFailed(0, "HubSpot gave no access token; paste a new authorization code")

    def _usable_now(self, rejected: str | None) -> bool:
        return bool(self.access_token and not self._code and self.access_token != rejected
                    and not self._expiring(self.expires_at))

    # -- inside the lock ------------------------------------------------------------------------
    def _renew_locked(self, fresh: dict[str, Any], rejected: str | None) -> dict[str, Any] | None:
        code = fresh.get("authorization_code")
        if code:
            self._spent.add(code)
            tokens = self._grant({"grant_type": "authorization_code", "redirect_uri": self.redirect_uri,
                                  "code": code}, previous_refresh=None)
            self._connected_now = True
            return {**tokens, "authorization_code": None}  # a code works once
        stored = fresh.get("oauth_access_token")
        if stored and stored != rejected and not self._expiring(fresh.get("oauth_expires_at")):
            return None  # another worker renewed a moment ago: use its token
        refresh = fresh.get("oauth_refresh_token")
        if not refresh:
            raise OAuthFailed(0, "not connected to HubSpot yet: press Connect with HubSpot on the connector's "
                                 "page (or install the app and paste the authorization code from the redirect "
                                 "into the connector settings)",
                              field="authorization_code")
        self._spent.add(refresh)
        return self._grant({"grant_type": "refresh_token", "refresh_token": refresh}, previous_refresh=refresh)

    def _grant(self, grant: dict[str, str], *, previous_refresh: str | None) -> dict[str, Any]:
        body = {"grant_type": grant["grant_type"], "client_id": self.client_id,
                "client_secret": self.client_secret,
                **{k: v for k, v in grant.items() if k != "grant_type"}}
        what = "authorization code" if grant["grant_type"] == "authorization_code" else "refresh token"
        self.exchanges[grant["grant_type"]] += 1
        try:
            response = self.http.post(self.token_url, data=body, headers={"Accept": "application/json"},
                                      timeout=self.timeout)
        except requests.Timeout:
            raise Unavailable(f"HubSpot's token endpoint did not answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise Unavailable(f"HubSpot's token endpoint unreachable ({type(exc).__name__})") from None
        secrets = self.secrets() + [v for v in grant.values() if v]
        described = describe_response(response, secrets)
        status = response.status_code
        if status >= 500 or status == 429:
            raise Unavailable(f"HubSpot's token endpoint answered HTTP {status}", response=described)
        payload = _json(response)
        if status != 200:
            said = refusal(payload)
            reason = redact_text(f"{said['code'] or 'no code'}: {said['message'] or 'no reason given'}", secrets)
            if said["fix"] == "app":
                text = (f"HubSpot refused the app's credentials while exchanging the {what} (HTTP {status} "
                        f"{reason}): check {said['field']} against the app's Auth settings in HubSpot")
            else:
                text = (f"HubSpot refused the {what} (HTTP {status} {reason}); re-connect: install the app in "
                        f"HubSpot again and paste the new authorization code into the connector settings")
            raise OAuthFailed(status, text, payload if isinstance(payload, dict) else None, described,
                              field=said["field"])
        try:
            tokens = tokens_from_answer(payload, self.clock(), previous_refresh)
        except (ValueError, TypeError):
            raise Unavailable("HubSpot's token endpoint answered without usable tokens", response=described) from None
        self._spent.update(v for v in (tokens["oauth_access_token"], tokens["oauth_refresh_token"]) if v)
        log.info("HubSpot OAuth %s exchange done; access token valid %s s", grant["grant_type"],
                 payload.get("expires_in"))
        return tokens

    def _expiring(self, expires_at: Any) -> bool:
        if not expires_at:
            return False
        return self.clock().timestamp() >= float(expires_at) - REFRESH_MARGIN_SECONDS


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
