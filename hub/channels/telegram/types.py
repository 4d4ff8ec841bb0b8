"""The parts of a Telegram update the hub acts on, as plain values (parse.py makes them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TelegramUser:
    id: int
    first_name: str = ""
    last_name: str = ""
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)

    @property
    def contact_key(self) -> str:
        """The contact's key in the hub (contacts.user_id): 'tg:' and the user id."""
        return f"tg:{self.id}"


@dataclass(frozen=True)
class TelegramMessage:
    """A `message` (edit False) or `edited_message` (edit True) of a private chat."""

    message_id: int
    chat_id: int
    sender: TelegramUser
    date: datetime
    type: str  # the hub's message type: text, image, audio, video, document, sticker, location, contacts, unsupported
    text: str | None = None  # the text, or a media's caption
    media: dict[str, Any] | None = None  # id (file_id), unique_id, mime_type, filename, file_size, caption
    content: dict[str, Any] = field(default_factory=dict)  # location / contact / voice details
    reply_to_message_id: int | None = None
    edit: bool = False
    edit_date: datetime | None = None
    original_type: str | None = None  # Telegram's name when it is not the hub's (photo, voice, ...)
    raw: dict[str, Any] = field(default_factory=dict)
    # A press of an inline button (callback_query): its id; the message is the bot's.
    callback_id: str | None = None


@dataclass(frozen=True)
class MemberChange:
    """my_chat_member in a private chat: the user blocked ("kicked") or unblocked the bot."""

    user: TelegramUser
    chat_id: int
    old_status: str
    new_status: str
    date: datetime

    @property
    def blocked(self) -> bool:
        return self.new_status == "kicked"


@dataclass(frozen=True)
class Ignored:
    """An update the hub keeps (in the raw webhook) but does not act on, and why."""

    kind: str
    reason: str


@dataclass(frozen=True)
class ParsedUpdate:
    update_id: int
    item: TelegramMessage | MemberChange | Ignored
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
