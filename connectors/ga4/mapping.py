"""Conversions -> Measurement Protocol bodies (pure).

https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events:
{"client_id", "user_id"?, "timestamp_micros"?, "events": [{"name", "params"}]}; value is
a number with its currency; purchase needs transaction_id (GA4 deduplicates on it).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from connectors.analytics import Conversion, Malformed, Skip

# The _ga cookie is GA1.<n>.<random>.<seconds>: the client id is its last two numbers.
CLIENT_ID = re.compile(r"^\d{1,20}\.\d{1,20}$")
COOKIE = re.compile(r"^GA\d\.\d+\.(\d{1,20}\.\d{1,20})$")
# GA4 takes events up to 72 hours back (timestamp_micros); an older one would be dropped
# without a word, so it goes without its time and counts when it arrives.
BACKDATE_LIMIT = timedelta(hours=72) - timedelta(minutes=5)
SOURCE_PARAMS = (("utm_campaign", "campaign"), ("utm_source", "source"), ("utm_medium", "medium"),
                 ("utm_term", "term"), ("utm_content", "content"))


def client_id_of(conversion: Conversion) -> str:
    source = conversion.lead_source
    if not source:
        raise Skip("the conversation has no lead source (not from a tracked link): no GA client id to send")
    raw = str(source.get("ga_client_id") or "").strip()
    if not raw:
        raise Skip(f"the lead source ({source.get('kind')}) carries no GA client id (_ga cookie)")
    cookie = COOKIE.match(raw)
    if cookie:
        raw = cookie.group(1)
    if not CLIENT_ID.match(raw):
        raise Malformed(f"GA client id {raw[:60]!r} is malformed (expected <random>.<seconds> from the _ga "
                        "cookie, e.g. 1234567890.1700000000); not sent")
    return raw


def event_params(conversion: Conversion, settings: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if conversion.value is not None:
        params["value"] = float(conversion.value)
        params["currency"] = conversion.currency or settings.get("currency") or "USD"
    if conversion.goal.name == "purchase":
        params["transaction_id"] = conversion.order_id
    if settings.get("send_lead_source") and conversion.lead_source:
        source = conversion.lead_source
        params["lead_source"] = str(source.get("utm_source") or source.get("kind") or "")[:100]
        for key, name in SOURCE_PARAMS:
            if source.get(key):
                params[name] = str(source[key])[:100]
    return params


def body(conversions: list[Conversion], client_id: str, settings: dict[str, Any],
         now: datetime | None = None) -> dict[str, Any]:
    """One request for the conversions of one event (one client, up to 25 events)."""
    first = conversions[0]
    out: dict[str, Any] = {"client_id": client_id}
    if now is None or now - first.occurred_at < BACKDATE_LIMIT:
        out["timestamp_micros"] = int(first.occurred_at.timestamp() * 1_000_000)
    out["events"] = [{"name": c.goal.name, "params": event_params(c, settings)} for c in conversions]
    if settings.get("send_user_id") and first.contact.get("id") is not None:
        out["user_id"] = str(first.contact["id"])
    return out
