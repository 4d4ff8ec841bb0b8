"""Conversions -> Conversions API bodies for business messaging (pure).

POST /{dataset_id}/events {"data": [{event_name, event_time, event_id, action_source:
"business_messaging", messaging_channel: "whatsapp", user_data: {whatsapp_business_account_id,
ctwa_clid, ph?, external_id?}, custom_data: {currency, value}}], "partner_agent"?,
"test_event_code"?}. Phones are the digits with country code, SHA-256 (Meta's normal form).
"""
from __future__ import annotations

import re
from typing import Any

from connectors.analytics import Conversion, Malformed, Skip, phone_digits, sha256, unix

CTWA_CLID = re.compile(r"^[A-Za-z0-9_-]{8,512}$")


def ctwa_clid_of(conversion: Conversion) -> str:
    source = conversion.lead_source
    if not source:
        raise Skip("the conversation has no lead source: Meta attributes only Click-to-WhatsApp conversations")
    clid = str(((source.get("referral") or {}).get("ctwa_clid")) or "").strip()
    if not clid:
        raise Skip(f"the lead source ({source.get('kind')}) is not a Click-to-WhatsApp ad: no ctwa_clid to send")
    if not CTWA_CLID.match(clid):
        raise Malformed(f"ctwa_clid {clid[:60]!r} is malformed (letters, digits, - and _ from the ad's referral); "
                        "not sent")
    return clid


def user_data(conversion: Conversion, clid: str, settings: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"whatsapp_business_account_id": settings["whatsapp_business_account_id"], "ctwa_clid": clid}
    digits = phone_digits(conversion.contact.get("phone"))
    if settings.get("send_phone") and digits:
        out["ph"] = [sha256(digits)]
    if settings.get("send_external_id") and conversion.contact.get("id") is not None:
        out["external_id"] = [sha256(str(conversion.contact["id"]))]
    return out


def server_event(conversion: Conversion, clid: str, settings: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_name": conversion.goal.name,
        "event_time": unix(conversion.occurred_at),
        "event_id": f"{conversion.order_id}-{conversion.goal.name}",  # Meta deduplicates on it
        "action_source": "business_messaging",
        "messaging_channel": "whatsapp",
        "user_data": user_data(conversion, clid, settings),
    }
    if conversion.value is not None:
        event["custom_data"] = {"currency": conversion.currency or settings.get("currency") or "USD",
                                "value": float(conversion.value)}
    return event


def body(conversions: list[Conversion], settings: dict[str, Any]) -> dict[str, Any]:
    clid = ctwa_clid_of(conversions[0])
    out: dict[str, Any] = {"data": [server_event(c, clid, settings) for c in conversions]}
    if settings.get("partner_agent"):
        out["partner_agent"] = settings["partner_agent"]
    if settings.get("test_event_code"):
        out["test_event_code"] = settings["test_event_code"]
    return out
