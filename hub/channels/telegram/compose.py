"""Outgoing messages as Bot API calls: pure, from the hub's API input (the same shapes
as for WhatsApp: text {"body"}, image/video/audio/document/sticker {"link" | "id",
"caption", "filename"}, location {"latitude", "longitude", "name", "address"}).

A media `link` is an HTTP URL Telegram fetches itself; an `id` is a Telegram file_id
(e.g. of a file a user sent). Limits are Telegram's: 4096 characters of text, 1024 of
caption; longer input is refused, not cut, so that nobody's words are lost silently.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.channels.base import SendRefused

MAX_TEXT = 4096
MAX_CAPTION = 1024
# hub type -> (method, the parameter carrying the file)
MEDIA_METHODS = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video"), "audio": ("sendAudio", "audio"),
                 "document": ("sendDocument", "document"), "sticker": ("sendSticker", "sticker")}
KINDS = frozenset({"text", "location", "interactive", *MEDIA_METHODS})
CALLBACK_DATA_MAX = 64  # bytes of an inline button's callback_data


@dataclass(frozen=True)
class Composed:
    type: str
    method: str
    body: dict[str, Any]  # without chat_id and reply_parameters (request() adds them)
    text: str  # readable rendering for timelines and CRMs


def compose(kind: str, content: dict[str, Any]) -> Composed:
    if kind == "text":
        text = content.get("body") or ""
        if not text.strip():
            raise SendRefused("a text message needs a body")
        if len(text) > MAX_TEXT:
            raise SendRefused(f"the text is {len(text)} characters; Telegram takes at most {MAX_TEXT} in one "
                              f"message: send it as several messages", limit=MAX_TEXT)
        body: dict[str, Any] = {"text": text}
        if content.get("preview_url") is False:
            body["link_preview_options"] = {"is_disabled": True}
        return Composed("text", "sendMessage", body, text)
    if kind in MEDIA_METHODS:
        method, param = MEDIA_METHODS[kind]
        source = content.get("link") or content.get("id")
        if not source:
            raise SendRefused(f"a {kind} needs a link (URL) or an id (Telegram file_id)")
        body = {param: source}
        caption = content.get("caption") or ""
        if caption:
            if kind == "sticker":
                raise SendRefused("stickers have no caption")
            if len(caption) > MAX_CAPTION:
                raise SendRefused(f"the caption is {len(caption)} characters; Telegram takes at most {MAX_CAPTION}",
                                  limit=MAX_CAPTION)
            body["caption"] = caption
        return Composed(kind, method, body, caption or content.get("filename") or f"[{kind}]")
    if kind == "interactive":
        return _interactive(content)
    if kind == "location":
        try:
            lat, lon = float(content["latitude"]), float(content["longitude"])
        except (KeyError, TypeError, ValueError):
            raise SendRefused("a location needs latitude and longitude") from None
        if content.get("name") and content.get("address"):
            return Composed("location", "sendVenue", {"latitude": lat, "longitude": lon, "title": content["name"],
                                                      "address": content["address"]}, content["name"])
        return Composed("location", "sendLocation", {"latitude": lat, "longitude": lon}, f"[location {lat},{lon}]")
    raise SendRefused(f"Telegram channels cannot send {kind!r} messages (they send: {', '.join(sorted(KINDS))})",
                      kinds=sorted(KINDS))


def _interactive(content: dict[str, Any]) -> Composed:
    """WhatsApp-shaped reply buttons or a list (the API's input) as a message with an
    inline keyboard: one button per row, callback_data the button's (or row's) id; a
    press comes back as a callback_query (parse.py)."""
    parts = [(content.get("header") or {}).get("text"), (content.get("body") or {}).get("text"),
             (content.get("footer") or {}).get("text")]
    text = "\n\n".join(p for p in parts if p)
    action = content.get("action") or {}
    choices = [b.get("reply") or {} for b in action.get("buttons") or []]
    for section in action.get("sections") or []:
        choices += section.get("rows") or []
    if not text.strip() or not choices:
        raise SendRefused("an interactive message needs a body and buttons or rows")
    if len(text) > MAX_TEXT:
        raise SendRefused(f"the text is {len(text)} characters; Telegram takes at most {MAX_TEXT}", limit=MAX_TEXT)
    keyboard = []
    for choice in choices:
        data, title = str(choice.get("id") or ""), str(choice.get("title") or "")
        if not data or len(data.encode()) > CALLBACK_DATA_MAX:
            raise SendRefused(f"button id {data!r} must be 1 to {CALLBACK_DATA_MAX} bytes on Telegram "
                              f"(its callback_data)", limit=CALLBACK_DATA_MAX)
        keyboard.append([{"text": title or data, "callback_data": data}])
    readable = text + "\n" + " | ".join(f"[{row[0]['text']}]" for row in keyboard)
    return Composed("interactive", "sendMessage", {"text": text, "reply_markup": {"inline_keyboard": keyboard}},
                    readable)


def request(composed: Composed, *, chat_id: int, reply_to_message_id: int | None = None) -> dict[str, Any]:
    """The whole call: {"method", "body"} as stored on the queued message."""
    body = {"chat_id": chat_id, **composed.body}
    if reply_to_message_id is not None:
        # Sent even when the quoted message was deleted meanwhile.
        body["reply_parameters"] = {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
    return {"method": composed.method, "body": body}


def message_key(channel_id: int, chat_id: int, message_id: int) -> str:
    """messages.wa_message_id of a Telegram message: message ids are per chat."""
    return f"tg:{channel_id}:{chat_id}:{message_id}"


def message_id_of(key: str | None) -> int | None:
    """The Telegram message id in a key made by message_key (None for anything else)."""
    if not key or not key.startswith("tg:"):
        return None
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
