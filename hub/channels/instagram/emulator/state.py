"""The emulated Graph API's world for Instagram messaging: accounts, the customers who
wrote to each (and when, for the windows), sent messages, the per-account call rate
limit and injected failures (see __init__.py)."""
from __future__ import annotations

import json
import secrets as _secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

STANDARD = timedelta(hours=24)
HUMAN_AGENT = timedelta(days=7)
MAX_TEXT = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
ATTACHMENT_TYPES = ("image", "video", "audio", "file")


class GraphError(Exception):
    """Meta's error answer: {"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}."""

    def __init__(self, code: int, message: str, subcode: int | None = None, status: int = 400,
                 type_: str = "OAuthException"):
        super().__init__(message)
        self.code, self.message, self.subcode, self.status, self.type = code, message, subcode, status, type_

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code,
                                 "fbtrace_id": "A" + _secrets.token_hex(10)}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def bad_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token - Cannot parse access token", status=400)


def outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", 2018278)


def unavailable() -> GraphError:
    return GraphError(551, "This person isn't available right now.", 1545041)


def invalid(message: str, subcode: int | None = None) -> GraphError:
    return GraphError(100, f"(#100) {message}", subcode, type_="OAuthException")


def rate_limited() -> GraphError:
    return GraphError(613, "(#613) Calls to this api have exceeded the rate limit.")


@dataclass
class Account:
    id: str
    username: str
    token: str
    app_secret: str
    verify_token: str
    webhook_url: str | None = None
    pending: deque = field(default_factory=deque)  # webhook bodies waiting for flush()
    calls: deque = field(default_factory=deque)  # recent Send API call times (rate limit)


@dataclass
class Sent:
    account_id: str
    recipient_id: str
    message_id: str
    body: dict[str, Any]


@dataclass
class Failure:
    code: int
    message: str
    subcode: int | None
    status: int
    count: int


def echo_webhook(account_id: str, igsid: str, at_ms: int, message: dict[str, Any]) -> dict[str, Any]:
    """The account's own message as Meta echoes it: from the account, to the customer."""
    return {"object": "instagram", "entry": [{"time": at_ms, "id": account_id, "messaging": [
        {"sender": {"id": account_id}, "recipient": {"id": igsid}, "timestamp": at_ms,
         "message": {**message, "is_echo": True}}]}]}


def consent_required() -> GraphError:
    return GraphError(230, "User consent is required to access user profile", status=400)


def now_ms(clock: Callable[[], datetime]) -> int:
    return int(clock().timestamp() * 1000)


def dumps(body: Any) -> bytes:
    """Meta escapes non-ASCII and slashes in what it signs."""
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


class World:
    def __init__(self, clock: Callable[[], datetime] | None = None, *, calls_per_second: int = 100):
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.calls_per_second = calls_per_second
        self.accounts: dict[str, Account] = {}
        self.last_message: dict[tuple[str, str], datetime] = {}  # (account, IGSID) -> the customer's last message
        self.unavailable: set[tuple[str, str]] = set()
        self.sent: list[Sent] = []
        self.failures: deque[Failure] = deque()
        self.requests: list[tuple[str, str, int]] = []  # (account id, what, HTTP status)
        self.lock = threading.Lock()
        self.assets: dict[str, tuple[bytes, str]] = {}  # asset id -> (bytes, content type) on the CDN
        # (account, IGSID) -> the customer's profile: name, username, profile_pic (User Profile API)
        self.profiles: dict[tuple[str, str], dict[str, Any]] = {}
        self.echo_sends = False  # Meta echoes every send of the account back as is_echo
        self._mid = 0

    def add_asset(self, data: bytes, content_type: str, base_url: str) -> str:
        """Keep an attachment on the CDN; its lookaside URL."""
        with self.lock:
            asset_id = f"1790{len(self.assets) + 1:013d}"
            self.assets[asset_id] = (data, content_type)
        return f"{base_url}/ig_messaging_cdn/?asset_id={asset_id}&signature={_secrets.token_urlsafe(8)}"

    def next_mid(self) -> str:
        with self.lock:
            self._mid += 1
            return f"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj{self._mid:012d}"

    def add_account(self, username: str, ig_id: str | None = None, *, token: str | None = None,
                    app_secret: str | None = None, verify_token: str | None = None) -> Account:
        ig_id = ig_id or f"178414{len(self.accounts) + 1:011d}"
        account = Account(ig_id, username, token or "IGAA" + _secrets.token_urlsafe(32),
                          app_secret or _secrets.token_hex(16), verify_token or _secrets.token_urlsafe(12))
        self.accounts[ig_id] = account
        return account

    def by_token(self, token: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.token == token), None)

    def fail_next(self, code: int, message: str, subcode: int | None, status: int, count: int) -> None:
        self.failures.append(Failure(code, message, subcode, status, count))

    def _injected(self) -> GraphError | None:
        if not self.failures:
            return None
        failure = self.failures[0]
        failure.count -= 1
        if failure.count <= 0:
            self.failures.popleft()
        return GraphError(failure.code, failure.message, failure.subcode, failure.status)

    def _rate(self, account: Account) -> None:
        now = self.clock().timestamp()
        while account.calls and account.calls[0] <= now - 1.0:
            account.calls.popleft()
        if len(account.calls) >= self.calls_per_second:
            raise rate_limited()
        account.calls.append(now)

    def send(self, account: Account, body: Any) -> dict[str, Any]:
        """POST /{ig-user-id}/messages, checked the way Meta checks it."""
        with self.lock:
            self._rate(account)
            injected = self._injected()
        if injected is not None:
            raise injected
        if not isinstance(body, dict):
            raise invalid("The parameter recipient is required")
        recipient = (body.get("recipient") or {}).get("id") if isinstance(body.get("recipient"), dict) else None
        if not recipient:
            raise invalid("The parameter recipient is required")
        last = self.last_message.get((account.id, str(recipient)))
        if last is None:
            raise invalid("No matching user found", 2018001)
        if (account.id, str(recipient)) in self.unavailable:
            raise unavailable()
        kind, tag = body.get("messaging_type"), body.get("tag")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            raise invalid("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
        if kind == "MESSAGE_TAG" and tag != "HUMAN_AGENT":
            raise invalid(f"param tag must be HUMAN_AGENT on Instagram (got {tag!r})")
        age = self.clock() - last
        if age >= (HUMAN_AGENT if kind == "MESSAGE_TAG" else STANDARD):
            raise outside_window()
        _check_message(body.get("message"))
        sent = Sent(account.id, str(recipient), self.next_mid(), body)
        with self.lock:
            self.sent.append(sent)
            if self.echo_sends:
                account.pending.append(echo_webhook(account.id, sent.recipient_id, now_ms(self.clock),
                                                    {"mid": sent.message_id, **body["message"]}))
        return {"recipient_id": sent.recipient_id, "message_id": sent.message_id}


def _check_message(message: Any) -> None:
    if not isinstance(message, dict):
        raise invalid("The parameter message is required")
    text, attachment = message.get("text"), message.get("attachment")
    if (text is None) == (attachment is None):
        raise invalid("Exactly one of message[text] or message[attachment] must be given")
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT):
        raise invalid(f"Length of param message[text] must be less than or equal to {MAX_TEXT}")
    if attachment is not None:
        if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES or \
                not str((attachment.get("payload") or {}).get("url") or "").startswith(("http://", "https://")):
            raise invalid("param message[attachment] must have a type (image, video, audio, file) and payload.url")
    replies = message.get("quick_replies")
    if replies is not None:
        if not isinstance(replies, list) or not 0 < len(replies) <= MAX_QUICK_REPLIES:
            raise invalid(f"param message[quick_replies] must have 1 to {MAX_QUICK_REPLIES} elements")
        for reply in replies:
            if not isinstance(reply, dict) or reply.get("content_type") != "text" or \
                    not 0 < len(str(reply.get("title") or "")) <= MAX_QUICK_REPLY_TITLE or not reply.get("payload"):
                raise invalid(f"a quick reply needs content_type text, a title of 1 to {MAX_QUICK_REPLY_TITLE} "
                              f"characters and a payload")
