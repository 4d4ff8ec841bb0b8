"""The Graph API calls of an Instagram channel (Messenger Platform): the Send API
(POST /{version}/{ig-user-id}/messages) and the account itself
(GET /{version}/{ig-user-id}?fields=username) and its customers' profiles
(GET /{version}/{IGSID}?fields=name,username,profile_pic). The access token goes in the
Authorization header, never in a URL, an error or a repr.

Meta's errors are {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}};
verdict() says what the hub does about each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import requests

DEFAULT_API = "https://graph.facebook.com"
DEFAULT_VERSION = "v25.0"
Verdict = Literal["retry", "throttled", "window_closed", "unreachable", "token", "final"]
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})  # app, user, page and call-rate limits
RETRY_CODES = frozenset({1, 2})  # temporary trouble on Meta's side
OUTSIDE_WINDOW = (10, 2018278)  # "This message is sent outside of allowed window."
USER_UNAVAILABLE = 551  # "This person isn't available right now."


@dataclass
class InstagramError(Exception):
    code: int | None
    message: str
    subcode: int | None = None
    http_status: int | None = None
    retry_after: float | None = None  # seconds, from Retry-After when given

    def __str__(self) -> str:
        code = f"({self.code}" + (f"/{self.subcode}" if self.subcode else "") + ") " if self.code is not None else ""
        return f"{code}{self.message}" + (f" [HTTP {self.http_status}]" if self.http_status else "")


def from_response(status: int, body: Any, retry_after: float | None = None) -> InstagramError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, subcode = error.get("code"), error.get("error_subcode")
        return InstagramError(code if isinstance(code, int) else None, str(error.get("message") or "error"),
                              subcode if isinstance(subcode, int) else None, status, retry_after)
    return InstagramError(None, f"HTTP {status}", None, status, retry_after)


def verdict(error: InstagramError) -> Verdict:
    if error.code == 190 or error.http_status == 401:
        return "token"
    if (error.code, error.subcode) == OUTSIDE_WINDOW:
        return "window_closed"
    if error.code == USER_UNAVAILABLE:
        return "unreachable"
    if error.code in RATE_LIMIT_CODES or error.http_status == 429:
        return "throttled"
    if error.code in RETRY_CODES or (error.http_status or 0) >= 500 or error.http_status is None:
        return "retry"
    return "final"  # 100 invalid parameter, 10 permission, ...


def _retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class InstagramClient:
    def __init__(self, token: str, session: requests.Session, base_url: str = DEFAULT_API,
                 version: str = DEFAULT_VERSION):
        self._token = token
        self.session = session
        self.base_url = (base_url or DEFAULT_API).rstrip("/")
        self.version = version

    def __repr__(self) -> str:  # never the token
        return f"InstagramClient({self.base_url!r})"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.session.request(method, f"{self.base_url}/{self.version}/{path}",
                                        headers={"Authorization": f"Bearer {self._token}"}, **kwargs)
        except requests.RequestException as exc:
            raise InstagramError(None, f"network error ({type(exc).__name__})") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if resp.status_code >= 400 or not isinstance(data, dict) or "error" in data:
            raise from_response(resp.status_code, data, _retry_after(resp))
        return data

    def account(self, ig_user_id: str) -> dict[str, Any]:
        """{"id", "username"} of the account (Test connection)."""
        return self._call("GET", ig_user_id, params={"fields": "username"})

    def profile(self, igsid: str) -> dict[str, Any]:
        """A customer's {"id", "name", "username", "profile_pic"} (the User Profile API;
        a field the customer has not set is absent)."""
        return self._call("GET", igsid, params={"fields": "name,username,profile_pic"})

    def send(self, ig_user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """{"recipient_id", "message_id"}."""
        return self._call("POST", f"{ig_user_id}/messages", json=body)
