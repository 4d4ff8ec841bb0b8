"""Hub event payloads shaped exactly as docs/events.md, and helpers to emit them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hub.platform.db import utcnow
from hub.events.outbox import emit

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CHANNEL = {"id": 1, "name": "Sales", "display_number": "+15550001111", "phone_number_id": "2200000000000002"}
OLGA = {"id": 3, "email": "olga@example.com", "name": "Olga"}
NOBODY = {"id": 4, "email": "temp@example.com", "name": "Temp"}


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def contact(n: int) -> dict[str, Any]:
    return {"id": n, "wa_id": f"1555{n:07d}", "phone": f"+1555{n:07d}", "name": f"Customer {n}",
            "username": None, "user_id": f"US.{1349120865530274 + n}"}


def tracked_link(n: int) -> dict[str, Any]:
    return {"kind": "tracked_link", "utm_source": "google", "utm_medium": "cpc", "utm_campaign": f"spring-{n % 3}",
            "utm_content": "banner-1", "utm_term": "sofa", "gclid": f"EAIaIQ{n}", "yclid": None, "fbclid": None,
            "campaign": "Spring sale", "link": "spring-sale", "code": "K7Q2M",
            "landing_page": "https://shop.example/sofas", "referrer": "https://google.com/", "referral": None}


def ad_referral(n: int) -> dict[str, Any]:
    return {"kind": "ad_referral", "utm_source": None, "utm_medium": None, "utm_campaign": None,
            "utm_content": None, "utm_term": None, "gclid": None, "yclid": None, "fbclid": None,
            "campaign": None, "link": None, "code": None, "landing_page": None, "referrer": None,
            "referral": {"source_url": "https://fb.me/3cr4Wqqkx", "source_id": "120210000000", "source_type": "ad",
                         "headline": "Sofas -30%", "body": "Chat with us", "media_type": "image",
                         "ctwa_clid": f"ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv-_zfUQ2a{n}"}}


def conversation(n: int, *, assignee: dict | None = None, lead_source: dict | None = None,
                 status: str = "open") -> dict[str, Any]:
    return {"id": n, "status": status, "opened_at": iso(T0 + timedelta(seconds=n)),
            "closed_at": iso(T0 + timedelta(hours=1)) if status == "closed" else None,
            "channel": CHANNEL, "assignee": assignee, "lead_source": lead_source}


def message(mid: int, *, direction: str = "in", text: str | None = "Hi, is my order shipped?",
            when: datetime | None = None, author: dict | None = None, type_: str = "text",
            template: dict | None = None, media: dict | None = None) -> dict[str, Any]:
    return {"id": mid, "wa_message_id": f"wamid.HBgLMTU1NTc2NTQzMjEVAgASGBQzQTdDN0{mid:08d}",
            "direction": direction, "type": type_, "text": text,
            "timestamp": iso(when or (T0 + timedelta(seconds=mid))),
            "status": "received" if direction == "in" else "sent", "media": media, "reply_to": None,
            "template": template, "author": author if direction == "out" else None}


def emit_event(session, type_: str, data: dict[str, Any], conversation_id: int, now: datetime | None = None):
    return emit(session, type_, data, now=now or utcnow(), ordering_key=f"conversation:{conversation_id}")


def emit_conversations(runtime, count: int, messages: int = 2, *, start: int = 1, sources: bool = True) -> dict[str, int]:
    """count conversations: started, then `messages` messages each (alternating in/out),
    emitted round by round as concurrent chats arrive; lead.attributed for every 4th."""
    convs = {}
    for n in range(start, start + count):
        source = None
        if sources and n % 2 == 0:
            source = tracked_link(n) if n % 4 == 0 else ad_referral(n)
        convs[n] = conversation(n, lead_source=source)
    with runtime.db.scope() as session:
        for n, conv in convs.items():
            emit_event(session, "conversation.started", {"conversation": conv, "contact": contact(n)}, n)
        for k in range(messages):
            for n, conv in convs.items():
                direction = "in" if k % 2 == 0 else "out"
                msg = message(n * 100 + k, direction=direction, text=f"message {k} of conversation {n}",
                              author=OLGA if direction == "out" else None)
                emit_event(session, "message.received" if direction == "in" else "message.sent",
                           {"conversation": conv, "contact": contact(n), "message": msg}, n)
        for n, conv in convs.items():
            if sources and n % 4 == 1:
                emit_event(session, "lead.attributed",
                           {"conversation": conv, "contact": contact(n), "lead_source": tracked_link(n)}, n)
    return {"conversations": count, "messages": count * messages}
