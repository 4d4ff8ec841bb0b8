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


GROUP_TYPES = frozenset({"group", "supergroup"})


def chat_key(chat_id: int) -> str:
    """The contact key of a chat: 'tg:' and its id. A user's private chat has the user's
    (positive) id; a group's id is negative, so a group never collides with a user."""
    return f"tg:{chat_id}"


@dataclass(frozen=True)
class TelegramMessage:
    """A `message` (edit False) or `edited_message` (edit True) of a private chat or a
    group: in a group the conversation is the group's and `sender` the member who wrote."""

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
    chat_type: str = "private"
    chat_title: str | None = None  # a group's title
    chat_username: str | None = None  # a public group's @username

    @property
    def in_group(self) -> bool:
        return self.chat_type in GROUP_TYPES

    @property
    def contact_key(self) -> str:
        """The conversation's contact: the user in a private chat, the group in a group."""
        return chat_key(self.chat_id) if self.in_group else self.sender.contact_key

    @property
    def member(self) -> dict[str, Any] | None:
        """Who wrote, for a group's message (None in a private chat)."""
        if not self.in_group:
            return None
        return {"id": self.sender.contact_key, "name": self.sender.name, "username": self.sender.username}


@dataclass(frozen=True)
class GroupEvent:
    """A service message of a group: members joined or left, a new title, or the group
    became a supergroup (`new_chat_id`, from `migrate_to_chat_id` in the old group or
    `migrate_from_chat_id` in the new one)."""

    kind: str  # joined, left, title, migrated, created
    chat_id: int
    message_id: int
    date: datetime
    actor: TelegramUser | None
    title: str | None = None
    members: tuple[TelegramUser, ...] = ()
    old_chat_id: int | None = None
    new_chat_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MemberChange:
    """my_chat_member: in a private chat the user blocked ("kicked") or unblocked the
    bot; in a group the bot was removed ("left", "kicked") or added back."""

    user: TelegramUser
    chat_id: int
    old_status: str
    new_status: str
    date: datetime
    chat_type: str = "private"
    chat_title: str | None = None

    @property
    def in_group(self) -> bool:
        return self.chat_type in GROUP_TYPES

    @property
    def contact_key(self) -> str:
        return chat_key(self.chat_id) if self.in_group else self.user.contact_key

    @property
    def blocked(self) -> bool:
        return self.new_status in ("kicked", "left") if self.in_group else self.new_status == "kicked"

    @property
    def restored(self) -> bool:
        return self.new_status in ("member", "administrator", "restricted") if self.in_group \
            else self.new_status == "member"


@dataclass(frozen=True)
class Ignored:
    """An update the hub keeps (in the raw webhook) but does not act on, and why."""

    kind: str
    reason: str


@dataclass(frozen=True)
class ParsedUpdate:
    update_id: int
    item: TelegramMessage | GroupEvent | MemberChange | Ignored
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
