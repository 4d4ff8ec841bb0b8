"""The emulated Bot API's world: bots, users and their private chats, groups, files, sent
messages, per-chat and per-bot rate limits, and injected failures (see __init__.py)."""
from __future__ import annotations

import itertools
import json
import re
import secrets as _secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
MAX_TEXT = 4096
MAX_CAPTION = 1024


class ApiError(Exception):
    """An error answer: {"ok": false, "error_code", "description", "parameters"}."""

    def __init__(self, code: int, description: str, retry_after: int | None = None,
                 migrate_to_chat_id: int | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        parameters = {k: v for k, v in (("retry_after", self.retry_after),
                                        ("migrate_to_chat_id", self.migrate_to_chat_id)) if v is not None}
        if parameters:
            out["parameters"] = parameters
        return out


@dataclass
class Bot:
    id: int
    token: str
    username: str
    first_name: str
    webhook_url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] = field(default_factory=list)
    next_update_id: int = 100000001
    pending: deque = field(default_factory=deque)  # updates not yet accepted by the webhook

    def me(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class File:
    file_id: str
    file_unique_id: str
    data: bytes
    path: str
    mime_type: str


@dataclass
class Sent:
    """A message the bot sent: the method, the request body, and the Message answered."""

    chat_id: int
    method: str
    body: dict[str, Any]
    message: dict[str, Any]


@dataclass
class Delivery:
    update: dict[str, Any]
    attempts: list[int] = field(default_factory=list)  # HTTP statuses (0: the transport raised)


def now_unix(clock: Callable[[], datetime]) -> int:
    return int(clock().timestamp())


class World:
    def __init__(self, clock: Callable[[], datetime] | None = None, *, chat_rate: float = 1.0, chat_burst: int = 5,
                 bot_rate: float = 30.0):
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.lock = threading.RLock()
        self.bots: dict[str, Bot] = {}
        self.files: dict[str, File] = {}
        self.sent: list[Sent] = []
        self.requests: list[tuple[str, str, int]] = []  # (bot username, method, status)
        self.deliveries: list[Delivery] = []
        self.blocked: set[tuple[int, int]] = set()  # (bot id, user id)
        self.users: dict[int, dict[str, Any]] = {}
        self.groups: dict[tuple[int, int], Any] = {}  # (bot, chat) -> emulator.Group
        self.upgraded: dict[tuple[int, int], int] = {}  # (bot, old group chat) -> its supergroup's id
        self.callbacks: set[str] = set()  # callback_query ids sent to the hub
        self.answered: list[str] = []  # ... and those answered (answerCallbackQuery)
        self.chats: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}  # (bot, chat) -> messages by id
        self._message_ids: dict[tuple[int, int], itertools.count] = {}
        self.chat_rate, self.chat_burst, self.bot_rate = chat_rate, chat_burst, bot_rate
        self._buckets: dict[Any, tuple[float, float]] = {}  # key -> (tokens, at)
        self._failures: list[tuple[str | None, ApiError]] = []
        self._bot_ids = itertools.count(7000000001)

    # -- setup ----------------------------------------------------------------------
    def add_bot(self, username: str = "hub_test_bot", first_name: str = "Hub Test", token: str | None = None) -> Bot:
        with self.lock:
            bot_id = next(self._bot_ids)
            token = token or f"{bot_id}:AA{_secrets.token_urlsafe(24)}"
            bot = Bot(id=bot_id, token=token, username=username, first_name=first_name)
            self.bots[token] = bot
            return bot

    def fail_next(self, method: str | None, code: int, description: str, retry_after: int | None = None,
                  count: int = 1) -> None:
        """The next `count` calls of `method` (None: any) answer this error."""
        with self.lock:
            self._failures += [(method, ApiError(code, description, retry_after))] * count

    def add_file(self, data: bytes, *, kind: str, mime_type: str, extension: str) -> File:
        with self.lock:
            n = len(self.files) + 1
            f = File(file_id=f"{kind[:2].upper()}ACAgIAAxkBAAI{n:06d}{_secrets.token_hex(6)}",
                     file_unique_id=f"AgAD{n:06d}", data=data, path=f"{kind}s/file_{n}.{extension}",
                     mime_type=mime_type)
            self.files[f.file_id] = f
            return f

    # -- chats ----------------------------------------------------------------------
    def next_message_id(self, bot: Bot, chat_id: int) -> int:
        with self.lock:
            counter = self._message_ids.setdefault((bot.id, chat_id), itertools.count(1))
            return next(counter)

    def remember(self, bot: Bot, chat_id: int, message: dict[str, Any]) -> None:
        self.chats.setdefault((bot.id, chat_id), {})[message["message_id"]] = message

    def new_update(self, bot: Bot, **content: Any) -> dict[str, Any]:
        with self.lock:
            update = {"update_id": bot.next_update_id, **content}
            bot.next_update_id += 1
            bot.pending.append(update)
            return update

    # -- limits ---------------------------------------------------------------------
    def take(self, key: Any, rate: float, burst: float) -> int | None:
        """A token from the bucket of `key`, or the seconds to wait for one."""
        now = self.clock().timestamp()
        tokens, at = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return max(1, int((1 - tokens) / rate + 0.999))
        self._buckets[key] = (tokens - 1, now)
        return None

    def injected(self, method: str) -> ApiError | None:
        with self.lock:
            for i, (name, error) in enumerate(self._failures):
                if name is None or name == method:
                    del self._failures[i]
                    return error
        return None


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
