"""Conversions -> Roistat orders (pure): POST /project/add-orders?project=N takes a list
of orders {id, name, date_create, status, price, roistat, phone?, fields}; an order sent
again under its id is updated, so the deal is one order whose status follows it.
`roistat` is the visit number of the roistat_visit cookie the tracked link kept. The
order is the conversation (whatsapp-<id>): created by its first message, then moved by
its deal, as Roistat expects a lead to go from request to payment.
"""
from __future__ import annotations

import re
from typing import Any

from connectors.analytics import Conversion, Malformed, Skip, phone_digits, unix

VISIT = re.compile(r"^\d{1,20}$")


def visit_of(conversion: Conversion) -> str:
    source = conversion.lead_source
    if not source:
        raise Skip("the conversation has no lead source (not from a tracked link): no roistat_visit to send")
    visit = str(source.get("roistat_visit") or "").strip()
    if not visit:
        raise Skip(f"the lead source ({source.get('kind')}) carries no roistat_visit (the site's Roistat counter "
                   "cookie)")
    if not VISIT.match(visit):
        raise Malformed(f"roistat_visit {visit[:60]!r} is malformed (a visit number is digits); not sent")
    return visit


def order(conversion: Conversion, settings: dict[str, Any]) -> dict[str, Any]:
    """The order as this conversion leaves it (the last of an event's goals wins)."""
    deal = conversion.deal or {}
    source = conversion.lead_source or {}
    out: dict[str, Any] = {
        "id": f"whatsapp-{conversion.conversation_id}",
        "name": f"WhatsApp: {conversion.contact.get('name') or conversion.contact.get('phone') or conversion.conversation_id}",
        "date_create": unix(conversion.occurred_at),
        "status": conversion.goal.name,
        "roistat": visit_of(conversion),
        "fields": {k: str(v) for k, v in (("conversation_id", conversion.conversation_id), ("crm_deal_id", deal.get("id")),
                                           ("crm_stage", deal.get("stage")), ("utm_campaign", source.get("utm_campaign")))
                   if v not in (None, "")},
    }
    if conversion.value is not None:
        out["price"] = f"{conversion.value:.2f}"
    digits = phone_digits(conversion.contact.get("phone"))
    if settings.get("send_phone") and digits:
        out["phone"] = digits
    return out


def orders(conversions: list[Conversion], settings: dict[str, Any]) -> list[dict[str, Any]]:
    return [order(c, settings) for c in conversions]
