"""The Bot API over HTTP (https://core.telegram.org/bots/api#making-requests).

Every method is POST https://api.telegram.org/bot<token>/<method> with a JSON body, and
every answer is {"ok": true, "result": ...} or {"ok": false, "error_code",
"description", "parameters": {"retry_after", "migrate_to_chat_id"}}. The token is part
of the URL, so URLs are never logged or put into errors: only the method name is.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

DEFAULT_API = "https://api.telegram.org"


class TelegramError(Exception):
    """A refused or failed Bot API call: error_code (HTTP-like; 0 when the network
    failed), Telegram's description, and retry_after seconds for 429."""

    def __init__(self, method: str, code: int, description: str, retry_after: float | None = None):
        super().__init__(f"{method}: {code} {description}")
        self.method = method
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass(frozen=True)
class BotInfo:
    id: int
    username: str
    first_name: str


class TelegramClient:
    def __init__(self, token: str, session: requests.Session, base_url: str = DEFAULT_API):
        self._token = token
        self.session = session
        self.base_url = (base_url or DEFAULT_API).rstrip("/")

    def __repr__(self) -> str:  # never the token
        return f"TelegramClient({self.base_url!r})"

    def call(self, method: str, body: dict[str, Any] | None = None) -> Any:
        try:
            resp = self.session.post(f"{self.base_url}/bot{self._token}/{method}", json=body or {})
        except requests.RequestException as exc:
            raise TelegramError(method, 0, f"network error ({type(exc).__name__})") from None
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TelegramError(method, resp.status_code, f"unexpected answer (HTTP {resp.status_code})")
        if data.get("ok") is True:
            return data.get("result")
        params = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
        retry_after = params.get("retry_after")
        raise TelegramError(method, int(data.get("error_code") or resp.status_code),
                            str(data.get("description") or "no description"),
                            float(retry_after) if isinstance(retry_after, (int, float)) else None)

    def get_me(self) -> BotInfo:
        me = self.call("getMe")
        return BotInfo(int(me["id"]), me.get("username") or "", me.get("first_name") or "")

    def set_webhook(self, url: str, secret_token: str, *, allowed_updates: list[str] | None = None) -> None:
        self.call("setWebhook", {"url": url, "secret_token": secret_token,
                                 "allowed_updates": allowed_updates or ALLOWED_UPDATES})

    def delete_webhook(self) -> None:
        self.call("deleteWebhook", {"drop_pending_updates": False})

    def webhook_info(self) -> dict[str, Any]:
        return self.call("getWebhookInfo")

    def send(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """sendMessage, sendPhoto, ...: the sent Message."""
        return self.call(method, body)

    def get_file(self, file_id: str) -> dict[str, Any]:
        return self.call("getFile", {"file_id": file_id})

    def download(self, file_path: str, *, max_bytes: int) -> bytes:
        """GET <base>/file/bot<token>/<file_path> (valid for an hour after getFile)."""
        try:
            resp = self.session.get(f"{self.base_url}/file/bot{self._token}/{file_path}", stream=True)
        except requests.RequestException as exc:
            raise TelegramError("download", 0, f"network error ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise TelegramError("download", resp.status_code, "the file could not be downloaded")
        data = bytearray()
        for chunk in resp.iter_content(65536):
            data += chunk
            if len(data) > max_bytes:
                raise TelegramError("download", 413, f"the file is larger than {max_bytes} bytes")
        return bytes(data)


# What the hub asks Telegram to send to its webhook.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
