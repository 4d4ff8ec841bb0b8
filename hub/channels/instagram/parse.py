"""An Instagram messaging webhook (Messenger Platform, `object: "instagram"`) as the hub's values.

Pure: bytes in, a ParsedWebhook out, or PayloadError for a body that is not one. Every
entry[].messaging[] event becomes an InstagramEvent or is named Ignored (the raw body
keeps it): the business's own sends come back as `is_echo` (kind "echo", with the
customer as sender_id, so they land on the customer's conversation as outbound);
read receipts, edits and comment notifications are not acted on. An event
that is malformed is refused by name (problems) and the others still apply.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from hub.channels.instagram.types import Ignored, InstagramEvent, ParsedWebhook
from hub.events.raw_webhooks import PayloadError

# Meta's attachment types and the hub's message type for each.
ATTACHMENT_TYPES = {"image": "image", "video": "video", "audio": "audio", "file": "document",
                    "animated_image_share": "image", "sticker": "image", "share": "share", "ig_reel": "share",
                    "reel": "share", "ig_post": "share", "story_mention": "story_mention"}
IGNORED_EVENTS = {"read": "read receipts are not acted on", "message_edit": "edits are not acted on",
                  "optin": "opt-ins are not acted on", "message_reactions": "not a messaging event"}


class _Bad(ValueError):
    """One event is malformed (the others still apply)."""


def parse(body: bytes) -> ParsedWebhook:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError("a webhook is a JSON object")
    if data.get("object") != "instagram":
        raise PayloadError(f"object is {data.get('object')!r}, not 'instagram'")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise PayloadError("entry is not a list")
    items: list[InstagramEvent | Ignored] = []
    problems: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            problems.append(f"entry[{i}]: not an object")
            continue
        events = entry.get("messaging")
        if events is None:
            fields = ", ".join(str(c.get("field")) for c in entry.get("changes") or [] if isinstance(c, dict))
            items.append(Ignored("changes", f"entry[{i}] carries no messaging events ({fields or 'nothing'})"))
            continue
        if not isinstance(events, list):
            problems.append(f"entry[{i}].messaging: not a list")
            continue
        for j, event in enumerate(events):
            where = f"entry[{i}].messaging[{j}]"
            try:
                items.append(event_of(event, where))
            except _Bad as exc:
                problems.append(f"{where}: {exc}")
    return ParsedWebhook(tuple(items), tuple(problems))


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where} is not an object")
    return value


def _id(value: Any, where: str) -> str:
    """Meta's ids are strings of digits (some clients send numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 128:
        raise _Bad(f"{where} is not an id")
    return value.strip()


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _time(value: Any) -> datetime:
    """Messaging events carry milliseconds since the epoch."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10 ** 14:
        raise _Bad("timestamp is not a time in milliseconds")
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def event_of(event: Any, where: str = "event") -> InstagramEvent | Ignored:
    event = _object(event, where)
    head = {"sender_id": _id(_object(event.get("sender"), "sender").get("id"), "sender.id"),
            "account_id": _id(_object(event.get("recipient"), "recipient").get("id"), "recipient.id"),
            "timestamp": _time(event.get("timestamp")), "raw": event}
    if "message" in event:
        return _message(_object(event["message"], "message"), head)
    if "reaction" in event:
        reaction = _object(event["reaction"], "reaction")
        action = reaction.get("action")
        if action not in ("react", "unreact"):
            raise _Bad(f"reaction.action is {action!r}, not react or unreact")
        mid = _id(reaction.get("mid"), "reaction.mid")
        return InstagramEvent(kind="reaction", mid=mid, type="reaction", reply_to_mid=mid, reaction={
            "mid": mid, "action": action, "reaction": _str(reaction.get("reaction")),
            "emoji": _str(reaction.get("emoji")) if action == "react" else None}, **head)
    if "postback" in event:
        postback = _object(event["postback"], "postback")
        payload = _str(postback.get("payload")) or ""
        title = _str(postback.get("title")) or payload
        referral = postback.get("referral")
        return InstagramEvent(kind="postback", mid=_id(postback.get("mid"), "postback.mid"), type="interactive",
                              text=title, button={"id": payload, "title": title},
                              referral=_referral(referral) if isinstance(referral, dict) else None, **head)
    if "referral" in event:
        return InstagramEvent(kind="referral", mid=None, type="referral",
                              referral=_referral(_object(event["referral"], "referral")), **head)
    kinds = [k for k in event if k not in ("sender", "recipient", "timestamp")]
    kind = kinds[0] if kinds else "(empty)"
    return Ignored(kind, IGNORED_EVENTS.get(kind, f"{kind} events are not acted on"))


def _referral(data: dict[str, Any]) -> dict[str, Any]:
    context = data.get("ads_context_data") if isinstance(data.get("ads_context_data"), dict) else {}
    out = {"ref": _str(data.get("ref")), "source": _str(data.get("source")), "type": _str(data.get("type")),
           "ad_id": _str(data.get("ad_id")) or (str(data["ad_id"]) if isinstance(data.get("ad_id"), int) else None)}
    out["ads_context_data"] = {k: v for k, v in context.items() if isinstance(v, (str, int))} or None
    return out


def _message(message: dict[str, Any], head: dict[str, Any]) -> InstagramEvent | Ignored:
    mid = _id(message.get("mid"), "message.mid")
    echo = message.get("is_echo") is True
    if echo:  # the account wrote (sender) to the customer (recipient): keyed on the customer
        head = {**head, "sender_id": head["account_id"], "account_id": head["sender_id"]}
    elif message.get("is_deleted") is True:
        return InstagramEvent(kind="deleted", mid=mid, type="revoke", reply_to_mid=mid, **head)
    text = _str(message.get("text"))
    attachments = []
    for k, attachment in enumerate(message.get("attachments") or []):
        attachment = _object(attachment, f"message.attachments[{k}]")
        payload = attachment.get("payload") if isinstance(attachment.get("payload"), dict) else {}
        kind = _str(attachment.get("type")) or "unknown"
        attachments.append({"type": kind, "url": _str(payload.get("url")),
                            **({"title": payload["title"]} if isinstance(payload.get("title"), str) else {})})
    reply = message.get("reply_to") if isinstance(message.get("reply_to"), dict) else {}
    story = reply.get("story") if isinstance(reply.get("story"), dict) else None
    quick = message.get("quick_reply") if isinstance(message.get("quick_reply"), dict) else None
    referral = message.get("referral")
    button = None
    if quick is not None:
        payload = _str(quick.get("payload")) or ""
        button = {"id": payload, "title": text or payload}
        type_ = "interactive"
    elif message.get("is_unsupported") is True:
        type_ = "unsupported"
    elif attachments:
        type_ = ATTACHMENT_TYPES.get(attachments[0]["type"], "unsupported")
    elif story is not None:
        type_ = "story_reply"
    elif text is not None:
        type_ = "text"
    else:
        type_ = "unsupported"
    return InstagramEvent(
        kind="echo" if echo else "message", mid=mid, type=type_, text=text, attachments=tuple(attachments),
        reply_to_mid=_str(reply.get("mid")), button=button,
        story={"id": _str(story.get("id")), "url": _str(story.get("url"))} if story else None,
        referral=_referral(referral) if isinstance(referral, dict) else None, **head)
