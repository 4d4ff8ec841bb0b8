"""Hub events shaped exactly as docs/events.md, for the Bitrix24 tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.base import HubEvent

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CHANNEL = {"id": 1, "name": "Sales", "display_number": "+15550001111", "phone_number_id": "2200000000000002"}
OLGA = {"id": 3, "email": "olga@example.com", "name": "Olga"}


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def contact(i: int, *, phone: bool = True) -> dict[str, Any]:
    number = f"1555{7000000 + i:07d}"
    return {"id": 1000 + i, "wa_id": number if phone else None, "phone": f"+{number}" if phone else None,
            "name": f"Customer {i} Example", "username": None if phone else f"user{i}",
            "user_id": f"US.{900000 + i}"}


def lead_source(i: int) -> dict[str, Any] | None:
    if i % 2:
        return None
    return {"kind": "tracked_link", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": f"spring-{i % 5}",
            "utm_content": "banner-1", "utm_term": "sofa", "gclid": f"g{i}", "yclid": None, "fbclid": None,
            "campaign": "Spring sale", "link": "spring-sale", "code": "K7Q2M",
            "landing_page": "https://shop.example/sofas", "referrer": "https://google.com/", "referral": None}


def conversation(i: int, *, status: str = "open", assignee: dict[str, Any] | None = None,
                 source: Any = "auto") -> dict[str, Any]:
    return {"id": 5000 + i, "status": status, "opened_at": iso(T0), "closed_at": iso(T0) if status == "closed" else None,
            "channel": CHANNEL, "assignee": assignee,
            "lead_source": lead_source(i) if source == "auto" else source}


def message(i: int, n: int, *, direction: str = "in") -> dict[str, Any]:
    return {"id": 100000 + i * 10 + n, "wa_message_id": f"wamid.HBgL{i:05d}{n}", "direction": direction,
            "type": "text", "text": f"Message {n} of conversation {i}",
            "timestamp": iso(T0 + timedelta(seconds=n)), "status": "received" if direction == "in" else "sent",
            "media": None, "reply_to": None, "template": None,
            "author": OLGA if direction == "out" else None}


def data(kind: str, i: int, *, n: int = 0, phone: bool = True, **conv: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"conversation": conversation(i, **conv), "contact": contact(i, phone=phone)}
    if kind == "message.received":
        body["message"] = message(i, n)
    elif kind == "message.sent":
        body["message"] = message(i, n, direction="out")
    elif kind == "conversation.assigned":
        body["assignee"], body["previous"] = OLGA, None
        body["conversation"]["assignee"] = OLGA
    elif kind == "conversation.closed":
        body["reason"] = "resolved"
        body["conversation"]["status"] = "closed"
    elif kind == "lead.attributed":
        body["lead_source"] = body["conversation"]["lead_source"]
    elif kind == "sla.breached":
        body.update(team={"id": 1, "name": "Sales"}, target="first_response", clock_started_at=iso(T0),
                    elapsed_seconds=420, target_seconds=300, assignee=OLGA, supervisor=None, reassigned_to=None)
    return body


def hub_event(kind: str, i: int, *, attempt: int = 1, event_id: str | None = None, **kw: Any) -> HubEvent:
    return HubEvent(id=event_id or f"evt-{kind}-{i}-{kw.get('n', 0)}", type=kind, version=1, occurred_at=T0,
                    data=data(kind, i, **kw), ordering_key=f"conversation:{5000 + i}", attempt=attempt)


# The life of one conversation, in order: (type, extra kwargs). Notes = 3 messages.
SCRIPT = [
    ("conversation.started", {}),
    ("message.received", {"n": 1}),
    ("message.sent", {"n": 2}),
    ("message.received", {"n": 3}),
]
NOTES_PER_CONVERSATION = 3


def emit_conversations(runtime: Any, count: int, *, script: list[tuple[str, dict[str, Any]]] = SCRIPT,
                       now: datetime | None = None) -> int:
    """Emit `count` conversations step by step (all first events, then all second, ...),
    as many concurrent chats arrive. Returns the number of events."""
    from hub.platform.db import utcnow
    from hub.events.outbox import emit

    emitted = 0
    with runtime.db.scope() as session:
        for kind, kw in script:
            for i in range(count):
                emit(session, kind, data(kind, i, **kw), now=now or utcnow(), ordering_key=f"conversation:{5000 + i}")
                emitted += 1
    return emitted
