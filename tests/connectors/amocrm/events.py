"""Hub events shaped exactly as docs/events.md, for the amoCRM connector tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hub.platform.db import utcnow
from hub.events.outbox import emit

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
CHANNEL = {"id": 1, "name": "Sales", "display_number": "+15550001111", "phone_number_id": "2200000000000002"}
OLGA = {"id": 3, "email": "olga@example.com", "name": "Olga"}
IVAN = {"id": 4, "email": "ivan@example.com", "name": "Ivan"}


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def contact(n: int, *, phone: bool = True) -> dict[str, Any]:
    wa_id = f"1555{7000000 + n:07d}"
    return {"id": 1000 + n, "wa_id": wa_id, "phone": f"+{wa_id}" if phone else None,
            "name": f"Customer {n}", "username": None if phone else f"user{n}",
            "user_id": f"US.{9000000 + n}"}


def lead_source(n: int) -> dict[str, Any] | None:
    """Known (tracked link) for even n, ad referral for n % 3 == 1, unknown otherwise."""
    if n % 2 == 0:
        return {"kind": "tracked_link", "utm_source": "google", "utm_medium": "cpc",
                "utm_campaign": f"spring-{n % 5}", "utm_content": "banner-1", "utm_term": "sofa",
                "gclid": f"gclid-{n}", "yclid": None, "fbclid": None, "campaign": "Spring sale",
                "link": "spring-sale", "code": "K7Q2M", "landing_page": "https://shop.example/sofas",
                "referrer": "https://google.com/", "referral": None}
    if n % 3 == 1:
        return {"kind": "ad_referral", "utm_source": None, "utm_medium": None, "utm_campaign": None,
                "utm_content": None, "utm_term": None, "gclid": None, "yclid": None, "fbclid": None,
                "campaign": None, "link": None, "code": None, "landing_page": None, "referrer": None,
                "referral": {"source_url": "https://fb.me/ad1", "source_id": "120200000001",
                             "source_type": "ad", "headline": "Sofas -30%", "body": "Only this week",
                             "media_type": "image", "ctwa_clid": f"ctwa-{n}"}}
    return None


def conversation(n: int, *, source: Any = "auto", assignee: dict[str, Any] | None = None,
                 opened: datetime | None = None) -> dict[str, Any]:
    opened = opened or T0 + timedelta(seconds=n)
    return {"id": 500 + n, "status": "open", "opened_at": iso(opened), "closed_at": None,
            "channel": dict(CHANNEL), "assignee": assignee,
            "lead_source": lead_source(n) if source == "auto" else source}


def message(n: int, k: int, *, direction: str = "in", conv: dict[str, Any] | None = None) -> dict[str, Any]:
    when = T0 + timedelta(seconds=n, milliseconds=100 * (k + 1))
    return {"id": 100_000 + n * 10 + k, "wa_message_id": f"wamid.HBgL{n:06d}{k:02d}", "direction": direction,
            "type": "text", "text": f"Message {k} of conversation {n}", "timestamp": iso(when),
            "status": "received" if direction == "in" else "sent", "media": None, "reply_to": None,
            "template": None, "author": OLGA if direction == "out" else None}


def emit_conversation(session, n: int, *, messages: int = 3, now: datetime | None = None,
                      phone: bool = True, source: Any = "auto") -> None:
    """conversation.started + `messages` messages (odd ones outbound), one ordering key."""
    now = now or utcnow()
    conv = conversation(n, source=source)
    cont = contact(n, phone=phone)
    key = f"conversation:{conv['id']}"
    emit(session, "conversation.started", {"conversation": conv, "contact": cont}, now=now, ordering_key=key)
    for k in range(messages):
        direction = "out" if k % 2 else "in"
        emit(session, "message.sent" if direction == "out" else "message.received",
             {"conversation": conv, "contact": cont, "message": message(n, k, direction=direction)},
             now=now, ordering_key=key)


def emit_event(session, type_: str, data: dict[str, Any], now: datetime | None = None) -> None:
    conv_id = (data.get("conversation") or {}).get("id")
    key = f"conversation:{conv_id}" if conv_id is not None else f"contact:{data['contact']['id']}"
    emit(session, type_, data, now=now or utcnow(), ordering_key=key)
