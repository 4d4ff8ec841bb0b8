"""A Telegram Update (https://core.telegram.org/bots/api#update) as the hub's values.

Pure: bytes in, a ParsedUpdate out, or PayloadError for a body that is not an Update.
Private chats and groups (group, supergroup) are conversations; a group's service
messages (members joining or leaving, a new title, the move to a supergroup) are
GroupEvents; channels and other update kinds are named as Ignored (the raw body keeps
them).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from hub.channels.telegram.types import GROUP_TYPES, GroupEvent, Ignored, MemberChange, ParsedUpdate, TelegramMessage, \
    TelegramUser
from hub.events.raw_webhooks import PayloadError

MAX_ID = 2 ** 63 - 1
# Telegram's media fields and the hub's message type for each.
MEDIA_KINDS = {"photo": "image", "document": "document", "voice": "audio", "audio": "audio", "video": "video",
               "video_note": "video", "animation": "video", "sticker": "sticker"}


def parse(body: bytes) -> ParsedUpdate:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("an update is a JSON object")
    update_id = _int(data.get("update_id"), "update_id")
    for kind, edit in (("message", False), ("edited_message", True)):
        if kind in data:
            return ParsedUpdate(update_id, _message(_object(data[kind], kind), kind, edit=edit))
    if "callback_query" in data:
        return ParsedUpdate(update_id, _callback(_object(data["callback_query"], "callback_query")))
    if "my_chat_member" in data:
        return ParsedUpdate(update_id, _member_change(_object(data["my_chat_member"], "my_chat_member")))
    kinds = [k for k in data if k != "update_id"]
    kind = kinds[0] if kinds else "(empty)"
    return ParsedUpdate(update_id, Ignored(kind, f"{kind} updates are not acted on"))


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not an object")
    return value


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_ID:
        raise PayloadError(f"{where} is not an integer")
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any, where: str) -> datetime:
    return datetime.fromtimestamp(_int(value, where), tz=timezone.utc)


def user(value: Any, where: str = "from") -> TelegramUser:
    data = _object(value, where)
    return TelegramUser(id=_int(data.get("id"), f"{where}.id"), first_name=_str(data.get("first_name")) or "",
                        last_name=_str(data.get("last_name")) or "", username=_str(data.get("username")),
                        language_code=_str(data.get("language_code")), is_bot=data.get("is_bot") is True)


# A group's service messages: Telegram's field and the GroupEvent's kind.
SERVICE_FIELDS = {"new_chat_members": "joined", "left_chat_member": "left", "new_chat_title": "title",
                  "migrate_to_chat_id": "migrated", "migrate_from_chat_id": "migrated",
                  "group_chat_created": "created", "supergroup_chat_created": "created"}
CONVERSATION_CHATS = GROUP_TYPES | {"private"}


def _message(data: dict[str, Any], where: str, *, edit: bool) -> TelegramMessage | GroupEvent | Ignored:
    chat = _object(data.get("chat"), f"{where}.chat")
    chat_type = chat.get("type")
    if chat_type not in CONVERSATION_CHATS:
        return Ignored(where, f"{chat_type} chats are not conversations (private chats and groups only)")
    if chat_type in GROUP_TYPES and not edit:
        service = next((f for f in SERVICE_FIELDS if f in data), None)
        if service is not None:
            return _group_event(data, chat, service, where)
    if "from" not in data:
        return Ignored(where, "a message without a sender")
    message_id = _int(data.get("message_id"), f"{where}.message_id")
    sender = user(data["from"], f"{where}.from")
    if isinstance(data.get("sender_chat"), dict) and chat_type in GROUP_TYPES:
        # An anonymous admin (or a linked channel) writes as a chat: its title names it.
        sender_chat = data["sender_chat"]
        sender = TelegramUser(id=sender.id, first_name=_str(sender_chat.get("title")) or sender.first_name,
                              username=_str(sender_chat.get("username")), is_bot=sender.is_bot)
    kind, text, media, content, original = _content(data)
    reply = data.get("reply_to_message")
    reply_to = _int(reply.get("message_id"), f"{where}.reply_to_message.message_id") \
        if isinstance(reply, dict) else None
    return TelegramMessage(
        message_id=message_id, chat_id=_int(chat.get("id"), f"{where}.chat.id"), sender=sender,
        date=_time(data.get("date"), f"{where}.date"), type=kind, text=text, media=media, content=content,
        reply_to_message_id=reply_to, edit=edit,
        edit_date=_time(data["edit_date"], f"{where}.edit_date") if edit and "edit_date" in data else None,
        original_type=original, raw=data, chat_type=chat_type, chat_title=_str(chat.get("title")),
        chat_username=_str(chat.get("username")))


def _group_event(data: dict[str, Any], chat: dict[str, Any], service: str, where: str) -> GroupEvent:
    chat_id = _int(chat.get("id"), f"{where}.chat.id")
    kind = SERVICE_FIELDS[service]
    value = data[service]
    members: tuple[TelegramUser, ...] = ()
    old_id = new_id = None
    if service == "new_chat_members":
        if not isinstance(value, list):
            raise PayloadError(f"{where}.new_chat_members is not a list")
        members = tuple(user(m, f"{where}.new_chat_members[{i}]") for i, m in enumerate(value))
    elif service == "left_chat_member":
        members = (user(value, f"{where}.left_chat_member"),)
    elif service == "migrate_to_chat_id":
        old_id, new_id = chat_id, _int(value, f"{where}.migrate_to_chat_id")
    elif service == "migrate_from_chat_id":
        old_id, new_id = _int(value, f"{where}.migrate_from_chat_id"), chat_id
    title = _str(value) if service == "new_chat_title" else _str(chat.get("title"))
    return GroupEvent(kind=kind, chat_id=chat_id, message_id=_int(data.get("message_id"), f"{where}.message_id"),
                      date=_time(data.get("date"), f"{where}.date"),
                      actor=user(data["from"], f"{where}.from") if isinstance(data.get("from"), dict) else None,
                      title=title, members=members, old_chat_id=old_id, new_chat_id=new_id, raw=data)


def _content(data: dict[str, Any]) -> tuple[str, str | None, dict[str, Any] | None, dict[str, Any], str | None]:
    """(hub type, text, media, content, Telegram's own type when it differs)."""
    caption = _str(data.get("caption"))
    if isinstance(data.get("text"), str):
        return "text", data["text"], None, {}, None
    for field, kind in MEDIA_KINDS.items():
        if field not in data:
            continue
        value = data[field]
        if field == "photo":  # sizes, smallest first: the largest is the photo
            sizes = [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []
            if not sizes:
                raise PayloadError("message.photo has no sizes")
            value = max(sizes, key=lambda s: (s.get("width") or 0) * (s.get("height") or 0))
        value = _object(value, f"message.{field}")
        file_id = _str(value.get("file_id"))
        if not file_id:
            raise PayloadError(f"message.{field}.file_id is missing")
        media = {"id": file_id, "unique_id": _str(value.get("file_unique_id")),
                 "mime_type": _str(value.get("mime_type")) or ("image/jpeg" if field == "photo" else None),
                 "filename": _str(value.get("file_name")), "file_size": value.get("file_size"),
                 "caption": caption}
        extra = {"voice": True} if field == "voice" else {}
        if isinstance(value.get("duration"), int):
            extra["duration"] = value["duration"]
        if field == "sticker":
            extra["emoji"] = _str(value.get("emoji"))
        return kind, caption, media, extra, None if field == kind else field
    if isinstance(data.get("location"), dict) or isinstance(data.get("venue"), dict):
        venue = data.get("venue") if isinstance(data.get("venue"), dict) else {}
        loc = _object(venue.get("location") or data.get("location"), "message.location")
        content = {"latitude": loc.get("latitude"), "longitude": loc.get("longitude")}
        if venue:
            content.update(name=_str(venue.get("title")), address=_str(venue.get("address")))
        return "location", None, None, content, "venue" if venue else None
    if isinstance(data.get("contact"), dict):
        c = data["contact"]
        content = {"phone_number": _str(c.get("phone_number")), "first_name": _str(c.get("first_name")),
                   "last_name": _str(c.get("last_name")), "user_id": c.get("user_id"),
                   "vcard": _str(c.get("vcard"))}
        name = " ".join(p for p in (content["first_name"], content["last_name"]) if p)
        return "contacts", f"{name} {content['phone_number'] or ''}".strip(), None, content, "contact"
    kinds = [k for k in data if k not in ("message_id", "from", "chat", "date", "edit_date", "reply_to_message",
                                           "entities", "caption_entities", "message_thread_id",
                                           "sender_chat", "is_topic_message", "author_signature")]
    return "unsupported", caption, None, {}, kinds[0] if kinds else None


def _callback(data: dict[str, Any]) -> TelegramMessage | Ignored:
    """A press of an inline keyboard button under one of the bot's messages: the chosen
    button (id: its callback_data, title: its text) as an "interactive" reply to it."""
    message = data.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("chat"), dict) or \
            message["chat"].get("type") not in CONVERSATION_CHATS:
        return Ignored("callback_query", "a button press outside a private chat or group (or of an inline message)")
    callback_id = _str(data.get("id"))
    if not callback_id:
        raise PayloadError("callback_query.id is missing")
    chosen = _str(data.get("data")) or ""
    title = chosen
    markup = message.get("reply_markup") if isinstance(message.get("reply_markup"), dict) else {}
    for row in markup.get("inline_keyboard") or []:
        for button in row if isinstance(row, list) else []:
            if isinstance(button, dict) and button.get("callback_data") == chosen and \
                    isinstance(button.get("text"), str):
                title = button["text"]
    return TelegramMessage(
        message_id=_int(message.get("message_id"), "callback_query.message.message_id"),
        chat_id=_int(message["chat"].get("id"), "callback_query.message.chat.id"),
        sender=user(data.get("from"), "callback_query.from"),
        date=_time(message.get("date"), "callback_query.message.date"), type="interactive", text=title,
        content={"button_reply": {"id": chosen, "title": title}}, reply_to_message_id=message.get("message_id"),
        original_type="callback_query", raw=data, callback_id=callback_id, chat_type=message["chat"]["type"],
        chat_title=_str(message["chat"].get("title")), chat_username=_str(message["chat"].get("username")))


def callback_answer(body: bytes) -> dict[str, Any] | None:
    """The answerCallbackQuery to give in the webhook's answer to a button press (it
    stops the button's progress indicator without a call of the hub's own), or None."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    query = data.get("callback_query") if isinstance(data, dict) else None
    if isinstance(query, dict) and isinstance(query.get("id"), str) and query["id"]:
        return {"method": "answerCallbackQuery", "callback_query_id": query["id"]}
    return None


def _member_change(data: dict[str, Any]) -> MemberChange | Ignored:
    chat = _object(data.get("chat"), "my_chat_member.chat")
    if chat.get("type") not in CONVERSATION_CHATS:
        return Ignored("my_chat_member", f"membership of a {chat.get('type')}")
    old = _object(data.get("old_chat_member"), "my_chat_member.old_chat_member")
    new = _object(data.get("new_chat_member"), "my_chat_member.new_chat_member")
    return MemberChange(user=user(data.get("from"), "my_chat_member.from"),
                        chat_id=_int(chat.get("id"), "my_chat_member.chat.id"),
                        old_status=_str(old.get("status")) or "", new_status=_str(new.get("status")) or "",
                        date=_time(data.get("date"), "my_chat_member.date"), chat_type=chat["type"],
                        chat_title=_str(chat.get("title")))
