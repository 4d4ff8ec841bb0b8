"""Open Lines mode, the pure part: hub events -> imconnector bodies, Bitrix24's BB codes ->
WhatsApp text, the notices shown in the chat. No I/O (openlines.py sends)."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from connectors.base import media_link
from connectors.person import as_person

NAME_CHARS = re.compile(r"[^\w\s'\-]", re.UNICODE)
ICON = ("data:image/svg+xml," + quote(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path fill="#fff" d="M12 2a10 10 0 0 0-8.6 '
    '15.1L2 22l5-1.3A10 10 0 1 0 12 2zm5.3 14.1c-.2.6-1.3 1.2-1.8 1.2s-1 .3-3.4-.7a11.8 11.8 0 0 1-4.6-4.1c-.5'
    '-.7-1-1.8-1-2.9s.6-1.7.8-1.9.5-.3.7-.3h.5c.2 0 .4 0 .6.5l.8 2c.1.2.1.4 0 .5l-.4.6-.4.4c-.1.1-.3.3-.1.6a8 '
    '8 0 0 0 3.9 3.4c.3.1.5.1.6-.1l.9-1c.2-.3.4-.2.6-.1l1.9.9c.3.1.5.2.5.3s0 .6-.1 1.2z"/></svg>', safe=""))


def person_name(raw: Any) -> tuple[str, str]:
    """Bitrix24 takes letters, spaces, hyphens and apostrophes, 25 characters each."""
    words = [w for w in NAME_CHARS.sub(" ", str(raw or "")).split() if not any(c.isdigit() or c == "_" for c in w)]
    if not words:
        return "WhatsApp", ""
    first = words[0][:25]
    last = " ".join(words[1:])[:25].strip()
    return first, last


def unix(stamp: Any) -> int:
    if isinstance(stamp, str) and stamp:
        try:
            return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
        except ValueError:
            pass
    return int(datetime.now(timezone.utc).timestamp())


def message_item(data: dict[str, Any]) -> dict[str, Any]:
    """One element of imconnector.send.messages' MESSAGES from a `message.received` event."""
    contact, conversation, message = data["contact"], data["conversation"], data["message"]
    # The chat's user is the person (connectors.person): Open Lines binds every channel's
    # session of a linked contact to the person's one CRM contact.
    person = as_person(contact)
    first, last = person_name(person.get("name") or person.get("username"))
    user: dict[str, Any] = {"id": str(person["id"]), "name": first}
    if last:
        user["last_name"] = last
    if person.get("phone"):
        user.update(phone=str(person["phone"]), skip_phone_validate="Y")
    body: dict[str, Any] = {"id": external_id(message), "date": unix(message.get("timestamp"))}
    link = media_link(message.get("media"))
    if link:
        body["files"] = [{"url": link, "name": (message.get("media") or {}).get("filename")
                          or f"{message.get('type') or 'file'}"}]
    text = message.get("text")
    if text:
        body["text"] = str(text)
    elif not link:
        body["text"] = f"[{message.get('type') or 'message'}]"
    return {"user": user, "message": body,
            "chat": {"id": str(conversation["id"]), "name": f"WhatsApp: {contact.get('name') or user['name']}"}}


def external_id(message: dict[str, Any]) -> str:
    return str(message.get("wa_message_id") or message["id"])


BB = [(re.compile(r"\[br\]", re.I), "\n"), (re.compile(r"\[/?b\]", re.I), "*"), (re.compile(r"\[/?i\]", re.I), "_"),
      (re.compile(r"\[/?s\]", re.I), "~"), (re.compile(r"\[url=([^\]]+)\](.*?)\[/url\]", re.I | re.S), r"\2 (\1)"),
      (re.compile(r"\[/?(?:url|u|quote|code|color[^\]]*|size[^\]]*)\]", re.I), "")]
SIGNATURE = re.compile(r"^\[b\](.+?):\[/b\]", re.I)


def whatsapp_text(bb: str) -> str:
    """Bitrix24's BB codes in WhatsApp's formatting (*bold*, _italic_, ~strike~)."""
    text = bb
    for pattern, replacement in BB:
        text = pattern.sub(replacement, text)
    return re.sub(r" *\n *", "\n", text).strip()


def window_notice(result: dict[str, Any]) -> str:
    detail = str(result.get("detail") or "")
    templates = result.get("templates")
    if detail.startswith("window_closed") or templates is not None:
        names = ", ".join(f"{t.get('name')} ({t.get('language')})" for t in templates or [])
        return ("Not sent to WhatsApp: more than 24 hours have passed since the customer last wrote, so "
                "WhatsApp only accepts an approved template now. "
                + (f"Templates that can be sent: {names}." if names else "No approved template is synced yet."))
    return f"Not sent to WhatsApp: {detail or 'the hub refused the message'}."
