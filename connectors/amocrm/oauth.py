"""amoCRM OAuth 2.0 with rotating refresh tokens, safe across workers.

amoCRM's refresh tokens are single-use: a refresh returns a new pair and revokes the old
one. If two workers refreshed with the same token, the second would be refused and, worse,
whichever pair got stored last might be the dead one. So every exchange runs inside
ctx.update_settings(fn): fn sees the freshest stored pair under a lock on the connector
row, and the new pair is stored in that same transaction before anyone can use it.
Inside fn, a pair newer than the one this instance holds means another worker already
refreshed: it is adopted and amoCRM is not called.

No database work may happen inside fn (on SQLite the lock is the single writer), so the
rate-limit token for the call is taken before entering it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

import requests

from connectors.amocrm.errors import AuthProblem, ConfigurationError, Transient
from hub.shared.http import describe_response

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth2/access_token"
REFRESH_MARGIN_SECONDS = 60  # refresh a little before amoCRM would refuse the token

SettingsUpdate = Callable[[Callable[[dict[str, Any]], dict[str, Any] | None]], dict[str, Any]]


def _hint(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("hint") or body.get("detail") or body.get("title") or "")
    return ""


class TokenKeeper:
    """Hands out a bearer token and renews it; one per connector instance."""

    def __init__(
        self,
        settings: dict[str, Any],
        *,
        http: requests.Session,
        clock: Callable[[], datetime],
        timeout: float,
        update_settings: SettingsUpdate | None,
        before_request: Callable[[], None] = lambda: None,
        on_renewed: Callable[[str], None] = lambda _message: None,
    ):
        self.base_url = settings["base_url"].rstrip("/")
        oauth = bool(settings.get("client_id") and (settings.get("authorization_code") or settings.get("refresh_token")))
        # OAuth wins when configured: the hub cannot blank a stored secret, so an admin
        # moving from a long-lived token to OAuth leaves the old token behind.
        self.long_lived = None if oauth else (settings.get("long_lived_token") or None)
        self.client_id = settings.get("client_id") or ""
        self.client_secret = settings.get("client_secret") or ""
        self.redirect_uri = settings.get("redirect_uri") or ""
        self.access_token: str | None = settings.get("access_token") or None
        self.refresh_token: str | None = settings.get("refresh_token") or None
        self.expires_at: int | None = settings.get("access_token_expires_at")
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.update_settings = update_settings
        self.before_request = before_request
        self.on_renewed = on_renewed
        self.renewals = 0  # exchanges this instance made with amoCRM (tests, metrics)
        self._renewed = False

    # -- public ------------------------------------------------------------------------
    @property
    def uses_oauth(self) -> bool:
        return self.long_lived is None

    def secrets(self) -> list[str]:
        return [s for s in (self.long_lived, self.access_token, self.refresh_token,
                            self.client_secret) if s]

    def bearer(self) -> str:
        if self.long_lived:
            return self.long_lived
        if not self.access_token or self._expiring(self.expires_at):
            self.renew(rejected=None)
        assert self.access_token
        return self.access_token

    def renew(self, rejected: str | None) -> None:
        """Get a working pair: adopt one another worker stored, else exchange with amoCRM.
        `rejected` is the access token amoCRM just answered 401 to (never adopted)."""
        if self.long_lived:
            raise AuthProblem(
                "amoCRM rejected the long-lived token (expired or revoked); create a new one in "
                "the integration's 'Keys and scopes' tab and save it in the connector settings")
        if self.update_settings is None:
            raise ConfigurationError("OAuth token rotation needs the hub's locked settings update")
        self.before_request()  # the exchange counts against the account's rate limit
        used_before = self.refresh_token
        self._renewed = False
        stored = self.update_settings(lambda fresh: self._rotate(fresh, rejected, used_before))
        if self._renewed:  # reported only now: no database work inside the lock
            self.on_renewed(f"connected to amoCRM (token renewed at "
                            f"{self.clock().strftime('%Y-%m-%d %H:%M:%S')} UTC)")
        self.access_token = stored.get("access_token")
        self.refresh_token = stored.get("refresh_token")
        self.expires_at = stored.get("access_token_expires_at")
        if not self.access_token:
            raise AuthProblem("amoCRM gave no access token; paste a new authorization code")

    # -- inside the lock -------------------------------------------------------------------
    def _rotate(self, fresh: dict[str, Any], rejected: str | None,
                used_before: str | None) -> dict[str, Any] | None:
        code = fresh.get("authorization_code")
        if code:
            tokens = self._grant({"grant_type": "authorization_code", "code": code})
            return {**tokens, "authorization_code": None}  # a code works once
        stored_access = fresh.get("access_token")
        stored_refresh = fresh.get("refresh_token")
        newer = stored_refresh and stored_refresh != used_before
        if newer and stored_access and stored_access != rejected and not self._expiring(
                fresh.get("access_token_expires_at")):
            return None  # another worker rotated a moment ago: use its pair
        if not stored_refresh:
            raise AuthProblem("not connected to amoCRM yet: press Connect with amoCRM on the connector's "
                              "page, or paste an authorization code from the integration's 'Keys and "
                              "scopes' tab in amoCRM")
        return self._grant({"grant_type": "refresh_token", "refresh_token": stored_refresh})

    def _grant(self, grant: dict[str, str]) -> dict[str, Any]:
        if not (self.client_id and self.client_secret and self.redirect_uri):
            raise ConfigurationError("OAuth needs the integration ID, secret key and redirect URI")
        body = {"client_id": self.client_id, "client_secret": self.client_secret,
                "redirect_uri": self.redirect_uri, **grant}
        secrets = [v for v in (self.client_secret, grant.get("code"), grant.get("refresh_token")) if v]
        try:
            response = self.http.post(self.base_url + TOKEN_PATH, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Transient(f"amoCRM token endpoint unreachable: {type(exc).__name__}") from None
        described = describe_response(response, secrets)
        if response.status_code >= 500 or response.status_code == 429:
            raise Transient(f"amoCRM token endpoint answered HTTP {response.status_code}",
                            status=response.status_code, response=described)
        if response.status_code != 200:
            what = "authorization code" if grant["grant_type"] == "authorization_code" else "refresh token"
            raise AuthProblem(
                f"amoCRM refused the {what} (HTTP {response.status_code}: {_hint(response) or 'no reason given'}); "
                f"re-connect: paste a new authorization code from the integration's 'Keys and scopes' "
                f"tab in the connector settings",
                status=response.status_code, response=described)
        try:
            payload = response.json()
            access, refresh = payload["access_token"], payload["refresh_token"]
            expires_in = int(payload.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            raise Transient("amoCRM token endpoint answered without a token pair",
                            status=200, response=described) from None
        now = int(self.clock().timestamp())
        self.renewals += 1
        self._renewed = True
        log.info("amoCRM %s exchange done; new token valid %d s", grant["grant_type"], expires_in)
        return {"access_token": access, "refresh_token": refresh,
                "access_token_expires_at": now + expires_in if expires_in else None}

    def _expiring(self, expires_at: int | None) -> bool:
        if not expires_at:
            return False
        return self.clock().timestamp() >= expires_at - REFRESH_MARGIN_SECONDS
