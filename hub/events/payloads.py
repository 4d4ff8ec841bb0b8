"""Event payloads (docs/events.md): self-contained JSON built from the models, so a
connector never needs the hub's database."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

from hub.models import Channel, Contact, Conversation, Message, User


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def contact(c: Contact) -> dict[str, Any]:
    return {"id": c.id, "wa_id": c.wa_id, "phone": c.phone, "name": c.name,
            "username": c.username, "user_id": c.user_id, "person_id": getattr(c, "person_id", None)}


def channel(ch: Channel) -> dict[str, Any]:
    return {"id": ch.id, "name": ch.name, "display_number": ch.display_number,
            "phone_number_id": ch.phone_number_id, "kind": getattr(ch, "kind", None) or "whatsapp"}


def user(u: User | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {"id": u.id, "email": u.email, "name": u.name}


def conversation(session: Session, conv: Conversation, *, known_channel: Any = None) -> dict[str, Any]:
    """`conv` may be a Conversation or a row with its columns (hub.conversations.store);
    `known_channel`, its channel when the caller has it at hand (any object with
    the channel payload's attributes)."""
    assignee = session.get(User, conv.assignee_id) if conv.assignee_id else None
    return {
        "id": conv.id,
        "status": conv.status,
        "opened_at": iso(conv.opened_at),
        "closed_at": iso(conv.closed_at),
        "channel": channel(known_channel or session.get(Channel, conv.channel_id)),
        "assignee": user(assignee),
        "lead_source": conv.lead_source,
    }


def _media(m: Message, download_url: str | None) -> dict[str, Any] | None:
    media = (m.payload or {}).get("media")
    if not media:
        return None
    return {
        "id": media.get("id"),
        "mime_type": media.get("mime_type"),
        "filename": media.get("filename"),
        "caption": media.get("caption"),
        "url": f"/api/v1/messages/{m.id}/media",
        "download_url": download_url,
    }


def message(session: Session, m: Message, *, media_link: Callable[[int], str] | None = None) -> dict[str, Any]:
    """`media_link(message id)`: a signed link to the media for people without an API
    token (hub.shared.media_links); events for connectors carry one."""
    template = None
    if m.template_name:
        template = {"name": m.template_name, "language": m.template_language,
                    "category": m.template_category}
    return {
        "id": m.id,
        "wa_message_id": m.wa_message_id,
        "direction": m.direction,
        "type": m.type,
        "text": m.text,
        "timestamp": iso(m.sent_at),
        "status": m.status,
        "media": _media(m, media_link(m.id) if media_link and (m.payload or {}).get("media") else None),
        "reply_to": m.reply_to,
        "template": template,
        "author": user(session.get(User, m.author_id)) if m.author_id else None,
        "member": (m.payload or {}).get("member"),
    }


def pricing(m: Message) -> dict[str, Any] | None:
    if m.billable is None and m.pricing_category is None:
        return None
    return {"billable": m.billable, "category": m.pricing_category, "type": m.pricing_type,
            "cost": str(m.cost) if m.cost is not None else None, "currency": m.currency}


def ordering_key(conv: Conversation) -> str:
    return f"conversation:{conv.id}"
