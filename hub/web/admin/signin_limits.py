"""How many sign-in attempts the admin takes, so passwords cannot be guessed at speed.

Three allowances, each a token bucket in the database shared by every web process
([admin] settings, refilled evenly over login_window_seconds):
- per client address and e-mail (login_attempts): one address guessing one account;
- per address (login_attempts_per_address): one address spraying many accounts;
- per e-mail (login_attempts_per_account): many addresses guessing one account.
An attempt must find room in all three. Only failures count: a sign-in that succeeds
gives its tokens back, so colleagues behind one office address do not use up each
other's allowance.

An account-wide limit lets an attacker lock the owner out, so a browser that signed in
to the account before carries a signed "known browser" cookie naming it; such a browser
is held only to an allowance of its own (login_attempts per cookie) and still gets in
while strangers have used up the account's allowance or the address's (the device
cookies of OWASP's authentication guidance). The cookie holds a hash of the e-mail and
a random id, signed with the app's secret key: it cannot be made up for an account.
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.platform.ratelimit import TokenBucket

KNOWN_BROWSER = "hub_known_browser"
KNOWN_FOR_SECONDS = 30 * 24 * 3600
_SALT = "hub.admin.known-browser"


@dataclass
class Attempt:
    """One sign-in attempt: `wait` > 0 says it was refused for that many seconds."""

    wait: float
    taken: list[TokenBucket] = field(default_factory=list)

    def succeeded(self) -> None:
        """The password was right: the attempt does not count against anyone."""
        for bucket in self.taken:
            bucket.give_back()


def begin(email: str) -> Attempt:
    """Take one token from every allowance that applies, or none if one is spent."""
    taken: list[TokenBucket] = []
    for bucket in _buckets(email):
        wait = bucket.try_take()
        if wait > 0:
            for other in taken:
                other.give_back()
            return Attempt(wait)
        taken.append(bucket)
    return Attempt(0.0, taken)


def remember_browser(response: Response, email: str) -> None:
    """After a successful sign-in: this browser is known for this account (a new id, so
    a new allowance of its own)."""
    value = _serializer().dumps({"a": _account(email), "n": secrets.token_urlsafe(16)})
    response.set_cookie(KNOWN_BROWSER, value, max_age=KNOWN_FOR_SECONDS, path="/admin/", httponly=True,
                        secure=current_app.config["SESSION_COOKIE_SECURE"], samesite="Lax")


def _buckets(email: str) -> list[TokenBucket]:
    cfg = current_app.extensions["hub"].config.admin
    known = _known_browser(email)
    if known:
        return [_bucket("login-browser", known, cfg.login_attempts)]
    address = request.remote_addr or "unknown"
    return [_bucket("login", f"{address}|{email}", cfg.login_attempts),
            _bucket("login-address", address, cfg.login_attempts_per_address),
            _bucket("login-account", email, cfg.login_attempts_per_account)]


def _bucket(kind: str, key: str, attempts: int) -> TokenBucket:
    runtime = current_app.extensions["hub"]
    digest = hashlib.sha256(key.encode()).hexdigest()[:48]  # no address or e-mail in the table
    return TokenBucket(runtime.db, f"{kind}:{digest}", rate=attempts / runtime.config.admin.login_window_seconds,
                       burst=attempts)


def _known_browser(email: str) -> str | None:
    """The id of this browser's known-browser cookie when it names this account."""
    raw = request.cookies.get(KNOWN_BROWSER)
    if not raw:
        return None
    try:
        data: Any = _serializer().loads(raw, max_age=KNOWN_FOR_SECONDS)
    except BadSignature:  # also expired ones (SignatureExpired is a BadSignature)
        return None
    if not isinstance(data, dict) or data.get("a") != _account(email) or not isinstance(data.get("n"), str):
        return None
    return data["n"]


def _account(email: str) -> str:
    return hashlib.sha256(f"account|{email}".encode()).hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=_SALT)
