"""Outgoing message bodies in the Cloud API's shape, from the hub's API input.

Pure functions: the API schema has checked the input's shape; this adds Meta's framing
(messaging_product, recipient, context) and a readable text for timelines and CRMs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
FREE_FORM_TYPES = frozenset({"text", *MEDIA_TYPES, "interactive", "reaction", "location", "contacts"})


@dataclass(frozen=True)
class Composed:
    type: str  # the Cloud API type ("read" for a read receipt)
    content: dict[str, Any]  # the object named after the type
    text: str  # readable rendering
    needs_window: bool


def compose(kind: str, content: dict[str, Any], *, template_text: str = "") -> Composed:
    if kind == "text":
        return Composed("text", content, content["body"], True)
    if kind in MEDIA_TYPES:
        label = content.get("caption") or content.get("filename") or f"[{kind}]"
        return Composed(kind, content, label, True)
    if kind == "interactive":
        body = (content.get("body") or {}).get("text", "")
        action = content.get("action") or {}
        choices = [b.get("reply", {}).get("title", "") for b in action.get("buttons", [])]
        for section in action.get("sections", []):
            choices += [r.get("title", "") for r in section.get("rows", [])]
        text = body + ("\n" + " | ".join(f"[{c}]" for c in choices if c) if choices else "")
        return Composed("interactive", content, text, True)
    if kind == "reaction":
        return Composed("reaction", content, content.get("emoji") or "(reaction removed)", True)
    if kind == "template":
        return Composed("template", content, template_text, False)
    if kind == "read":
        return Composed("read", content, "", False)
    raise ValueError(f"cannot send messages of type {kind!r}")


def request_body(composed: Composed, *, to: str, reply_to: str | None = None,
                 callback_data: str | None = None) -> dict[str, Any]:
    """The JSON POSTed to /{phone_number_id}/messages."""
    if composed.type == "read":
        body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read",
                                "message_id": composed.content["message_id"]}
        if composed.content.get("typing_indicator"):
            body["typing_indicator"] = {"type": "text"}
        return body
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
            "type": composed.type, composed.type: composed.content}
    if reply_to:
        body["context"] = {"message_id": reply_to}
    if callback_data:
        body["biz_opaque_callback_data"] = callback_data
    return body
