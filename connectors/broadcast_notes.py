"""broadcast.recipient on a CRM deal's timeline, shared by the three CRM connectors: which
broadcast reached the person and how (sent, delivered, read, replied, or failed with
Meta's reason), tagged #broadcast_<id>_<status> so the deals of a mailing can be found.
amoCRM writes it as a note on the lead, Bitrix24 as a timeline comment, HubSpot as a
WhatsApp communication: each by its own timeline code.

Pure: the event becomes a message.sent of that text, so it rides the timeline's own
batching and its exactly-once bookkeeping (links by message id). The id is negative —
no hub message has one — and unique per recipient and status.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectors.base import HubEvent

STATUSES = ("sent", "delivered", "read", "replied", "failed")
WORDS = {"sent": "sent", "delivered": "delivered", "read": "read", "replied": "replied to",
         "failed": "not delivered"}


def note_text(broadcast: dict[str, Any], recipient: dict[str, Any]) -> str:
    status = recipient.get("status")
    line = f"Broadcast «{broadcast.get('name')}» ({broadcast.get('template')}): {WORDS.get(status, status)}"
    error = recipient.get("error") or {}
    if status == "failed" and (error.get("explanation") or error.get("code")):
        line += f" — {error.get('explanation') or ''} (code {error.get('code')})"
    return f"{line}\n#broadcast_{broadcast.get('id')}_{status}"


def note_id(recipient: dict[str, Any]) -> int:
    status = recipient.get("status")
    rank = STATUSES.index(status) if status in STATUSES else len(STATUSES)
    return -(int(recipient["id"]) * 10 + rank + 1)


def as_timeline_message(event: HubEvent) -> HubEvent:
    data = event.data
    broadcast, recipient = data.get("broadcast") or {}, data.get("recipient") or {}
    message = {"id": note_id(recipient), "wa_message_id": None, "direction": "out", "type": "text",
               "text": note_text(broadcast, recipient), "timestamp": event.occurred_at.isoformat(),
               "status": "sent", "media": None,  # the outcome is in the text
               "reply_to": None, "template": None, "author": None}
    return replace(event, type="message.sent", data={"conversation": data.get("conversation"),
                                                     "contact": data.get("contact"), "message": message})


def with_broadcast_notes(batch: list[HubEvent]) -> list[HubEvent]:
    return [as_timeline_message(e) if e.type == "broadcast.recipient" else e for e in batch]
