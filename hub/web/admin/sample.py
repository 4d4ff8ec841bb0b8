"""A sample conversation for the mapping preview: the newest real conversation's events
when there is one, else a made-up conversation shaped exactly as docs/events.md."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import HubEvent
from hub.events import payloads
from hub.events.outbox import EVENT_VERSION, subscribes
from hub.models import Channel, Conversation, Event

MAX_EVENTS = 20


def _hub_event(type_: str, data: dict[str, Any], at: datetime, key: str | None) -> HubEvent:
    return HubEvent(id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"hub-sample:{type_}:{at.isoformat()}")),
                    type=type_, version=EVENT_VERSION, occurred_at=at, data=data, ordering_key=key)


def made_up(channel: dict[str, Any], now: datetime) -> list[HubEvent]:
    """Ana writes from an ad-tracked link, an operator answers, takes the chat and closes it."""
    start = now - timedelta(minutes=30)
    contact = {"id": 1, "wa_id": "15557654321", "phone": "+15557654321", "name": "Ana Souza",
               "username": None, "user_id": None}
    operator = {"id": 1, "email": "olga@example.com", "name": "Olga"}
    lead_source = {"kind": "tracked_link", "utm_source": "google", "utm_medium": "cpc",
                   "utm_campaign": "spring", "utm_content": "banner-1", "utm_term": "sofa",
                   "gclid": "EAIaIQobChMI", "yclid": None, "fbclid": None, "campaign": "Spring sale",
                   "link": "spring-sale", "code": "K7Q2M", "landing_page": "https://shop.example/sofas",
                   "referrer": "https://www.google.com/", "referral": None}
    conversation = {"id": 1, "status": "open", "opened_at": payloads.iso(start), "closed_at": None,
                    "channel": channel, "assignee": None, "lead_source": lead_source}
    key = "conversation:1"

    def message(n: int, direction: str, text: str, at: datetime, author: Any = None) -> dict[str, Any]:
        return {"id": n, "wa_message_id": f"wamid.SAMPLE{n}", "direction": direction, "type": "text",
                "text": text, "timestamp": payloads.iso(at), "status": "received" if direction == "in" else "sent",
                "media": None, "reply_to": None, "template": None, "author": author}

    assigned = {**conversation, "assignee": operator}
    closed = {**assigned, "status": "closed", "closed_at": payloads.iso(start + timedelta(minutes=20))}
    steps = [
        ("conversation.started", {"conversation": conversation, "contact": contact}),
        ("lead.attributed", {"conversation": conversation, "contact": {**contact, "opted_out": False},
                             "lead_source": lead_source}),
        ("message.received", {"conversation": conversation, "contact": contact,
                              "message": message(1, "in", "Hello! My request number: K7Q2M. Is the sofa "
                                                          "still available?", start)}),
        ("conversation.assigned", {"conversation": assigned, "contact": contact, "assignee": operator,
                                   "previous": None}),
        ("message.sent", {"conversation": assigned, "contact": contact,
                          "message": message(2, "out", "Hi Ana, yes, it is. Shall we deliver it on Friday?",
                                             start + timedelta(minutes=2), operator)}),
        ("conversation.closed", {"conversation": closed, "contact": contact, "reason": "sold"}),
    ]
    return [_hub_event(t, d, start + timedelta(minutes=i), key) for i, (t, d) in enumerate(steps)]


def sample_events(session: Session, now: datetime) -> tuple[list[HubEvent], int | None]:
    """Events of the newest conversation that has any (and its id), else made-up ones."""
    conversation_id = session.scalar(select(Event.ordering_key).where(Event.ordering_key.like("conversation:%"))
                                     .order_by(Event.created_at.desc()).limit(1))
    if conversation_id:
        rows = list(session.scalars(select(Event).where(Event.ordering_key == conversation_id)
                                    .order_by(Event.occurred_at, Event.created_at).limit(MAX_EVENTS)))
        number = conversation_id.split(":", 1)[1]
        if rows and session.get(Conversation, int(number)) is not None:
            return [HubEvent(id=e.id, type=e.type, version=e.version, occurred_at=e.occurred_at, data=e.data,
                             ordering_key=e.ordering_key) for e in rows], int(number)
    channel = session.scalar(select(Channel).order_by(Channel.id).limit(1))
    sample_channel = payloads.channel(channel) if channel else {
        "id": 1, "name": "Sales", "display_number": "+1 555 000 1111", "phone_number_id": "2200000000000002"}
    return made_up(sample_channel, now), None


def for_connector(events: list[HubEvent], kind: str, event_types: list[str] | None) -> list[HubEvent]:
    """Only the events this connector is subscribed to, in order."""
    return [e for e in events if subscribes(kind, event_types, e.type)]
