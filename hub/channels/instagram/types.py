"""The parts of an Instagram messaging webhook the hub acts on, as plain values (parse.py makes them)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class InstagramEvent:
    """One entry[].messaging[] event from a customer to the account.

    kind: "message" (text and/or attachments, quick-reply presses, story replies),
    "postback" (a button press), "reaction", "referral" (an ad or ig.me link opened
    an existing thread), "deleted" (the customer unsent a message), "echo" (the
    account's own message, from the Instagram app or the hub; sender_id is then the
    customer it went to)."""

    kind: str
    sender_id: str  # the customer's Instagram-scoped id (IGSID), also for an echo
    account_id: str  # the business's Instagram account id (recipient.id)
    timestamp: datetime
    mid: str | None
    type: str  # the hub's message type: text, image, video, audio, document, share, story_mention, interactive, ...
    text: str | None = None
    attachments: tuple[dict[str, Any], ...] = ()  # {"type", "url", ...} in Meta's order
    reply_to_mid: str | None = None
    story: dict[str, Any] | None = None  # a reply to the account's story: {"id", "url"}
    reaction: dict[str, Any] | None = None  # {"mid", "action": react|unreact, "reaction", "emoji"}
    button: dict[str, Any] | None = None  # a postback or quick reply: {"id": payload, "title"}
    referral: dict[str, Any] | None = None  # {"ref", "ad_id", "source", "type", "ads_context_data"}
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def contact_key(self) -> str:
        """The contact's key in the hub (contacts.user_id): 'ig:' and the IGSID."""
        return f"ig:{self.sender_id}"


@dataclass(frozen=True)
class Ignored:
    """An event the hub keeps (in the raw webhook) but does not act on, and why."""

    kind: str
    reason: str


@dataclass(frozen=True)
class ParsedWebhook:
    items: tuple[InstagramEvent | Ignored, ...]
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
