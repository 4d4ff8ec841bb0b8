"""Outgoing messages as Send API bodies: pure, from the hub's API input (the same shapes
as for WhatsApp: text {"body", "quick_replies"}, image/video/audio/document {"link"},
interactive reply buttons or a list).

Instagram carries text of at most 1000 characters, one attachment by URL (image,
video, audio, file) and up to 13 quick replies (titles of at most 20 characters) under
a text; WhatsApp-shaped buttons and list rows go out as quick replies, and a press
comes back as message.quick_reply.payload (parse.py). Longer input is refused, not cut.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.channels.base import SendRefused

MAX_TEXT = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD = 1000
# hub type -> Instagram's attachment type
MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio", "document": "file"}
KINDS = frozenset({"text", "interactive", *MEDIA_TYPES})


@dataclass(frozen=True)
class Composed:
    type: str
    message: dict[str, Any]  # the Send API's `message`
    text: str  # readable rendering for timelines and CRMs


def _text(text: str) -> str:
    if not text.strip():
        raise SendRefused("a text message needs a body")
    if len(text) > MAX_TEXT:
        raise SendRefused(f"the text is {len(text)} characters; Instagram takes at most {MAX_TEXT} in one message: "
                          f"send it as several messages", limit=MAX_TEXT)
    return text


def quick_replies(choices: list[dict[str, Any]]) -> list[dict[str, str]]:
    """[{"title", "payload"}] as Instagram's text quick replies, refused by name beyond its limits."""
    if len(choices) > MAX_QUICK_REPLIES:
        raise SendRefused(f"{len(choices)} quick replies; Instagram shows at most {MAX_QUICK_REPLIES}",
                          limit=MAX_QUICK_REPLIES)
    out = []
    for choice in choices:
        title = str(choice.get("title") or "").strip()
        payload = str(choice.get("payload") or choice.get("id") or title)
        if not title or len(title) > MAX_QUICK_REPLY_TITLE:
            raise SendRefused(f"quick reply title {title!r} must be 1 to {MAX_QUICK_REPLY_TITLE} characters on "
                              f"Instagram", limit=MAX_QUICK_REPLY_TITLE)
        if len(payload) > MAX_PAYLOAD:
            raise SendRefused(f"a quick reply payload is at most {MAX_PAYLOAD} characters", limit=MAX_PAYLOAD)
        out.append({"content_type": "text", "title": title, "payload": payload})
    return out


def compose(kind: str, content: dict[str, Any]) -> Composed:
    if kind == "text":
        text = _text(content.get("body") or "")
        message: dict[str, Any] = {"text": text}
        if content.get("quick_replies"):
            message["quick_replies"] = quick_replies(list(content["quick_replies"]))
        return Composed("text", message, text)
    if kind in MEDIA_TYPES:
        link = content.get("link")
        if not link or not str(link).startswith(("https://", "http://")):
            raise SendRefused(f"a {kind} needs a link (an http(s) URL Instagram can fetch)")
        if content.get("caption"):
            raise SendRefused("Instagram attachments carry no caption: send the text as its own message")
        return Composed(kind, {"attachment": {"type": MEDIA_TYPES[kind], "payload": {"url": link}}},
                        content.get("filename") or f"[{kind}]")
    if kind == "interactive":
        return _interactive(content)
    raise SendRefused(f"Instagram channels cannot send {kind!r} messages (they send: {', '.join(sorted(KINDS))})",
                      kinds=sorted(KINDS))


def _interactive(content: dict[str, Any]) -> Composed:
    """WhatsApp-shaped reply buttons or a list as a text with quick replies (payload: the
    button's or row's id)."""
    parts = [(content.get("header") or {}).get("text"), (content.get("body") or {}).get("text"),
             (content.get("footer") or {}).get("text")]
    text = "\n\n".join(p for p in parts if p)
    action = content.get("action") or {}
    choices = [b.get("reply") or {} for b in action.get("buttons") or []]
    for section in action.get("sections") or []:
        choices += section.get("rows") or []
    if not text.strip() or not choices:
        raise SendRefused("an interactive message needs a body and buttons or rows")
    replies = quick_replies([{"title": c.get("title") or c.get("id"), "payload": c.get("id")} for c in choices])
    readable = _text(text) + "\n" + " | ".join(f"[{r['title']}]" for r in replies)
    return Composed("interactive", {"text": text, "quick_replies": replies}, readable)


def request(composed: Composed, *, recipient: str, fields: dict[str, str]) -> dict[str, Any]:
    """The whole Send API body as stored on the queued message."""
    return {"recipient": {"id": recipient}, **fields, "message": composed.message}
