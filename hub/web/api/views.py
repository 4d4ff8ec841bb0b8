"""JSON views of hub objects shared by the API blueprints."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels import registry
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, Message


def message_out(session: Session, m: Message) -> dict[str, Any]:
    out = payloads.message(session, m)
    out.update({
        "conversation_id": m.conversation_id,
        "error": {"code": m.error_code, "title": m.error_title} if m.error_code or m.error_title else None,
        "attempts": m.attempts,
        "accepted_at": payloads.iso(m.accepted_at),
        "delivered_at": payloads.iso(m.delivered_at),
        "read_at": payloads.iso(m.read_at),
        "failed_at": payloads.iso(m.failed_at),
        "pricing": payloads.pricing(m),
    })
    return out


def conversation_out(session: Session, c: Conversation) -> dict[str, Any]:
    out = payloads.conversation(session, c)
    window = registry.of(session.get(Channel, c.channel_id)).window(c, utcnow())
    out.update({
        "contact_id": c.contact_id,
        "team_id": c.team_id,
        "last_inbound_at": payloads.iso(c.last_inbound_at),
        "last_message_at": payloads.iso(c.last_message_at),
        "window_open": window.open,
        "window_closes_at": payloads.iso(window.closes_at),
        "free_entry_point_until": payloads.iso(c.fep_expires_at),
    })
    return out
