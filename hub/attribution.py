"""Where a conversation came from (its lead source), decided on its first message."""
from __future__ import annotations

from typing import Any

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
CLICK_IDS = ("gclid", "yclid", "fbclid")
REFERRAL_FIELDS = ("source_url", "source_id", "source_type", "headline", "body", "media_type", "ctwa_clid")


def empty_source(kind: str) -> dict[str, Any]:
    return {"kind": kind, **{f: None for f in UTM_FIELDS + CLICK_IDS},
            "campaign": None, "link": None, "code": None, "landing_page": None,
            "referrer": None, "referral": None}


def from_referral(referral: dict[str, Any]) -> dict[str, Any]:
    """A Click-to-WhatsApp ad: the ad's own data, and UTM tags if its URL carried them."""
    from urllib.parse import parse_qs, urlsplit

    source = empty_source("ad_referral")
    source["referral"] = {f: referral.get(f) for f in REFERRAL_FIELDS}
    query = parse_qs(urlsplit(referral.get("source_url") or "").query)
    for name in UTM_FIELDS + CLICK_IDS:
        if query.get(name):
            source[name] = query[name][0][:255]
    return source


def attribute(*, referral: dict[str, Any] | None) -> dict[str, Any]:
    """The lead source of a new conversation from its first message."""
    if referral:
        return from_referral(referral)
    return empty_source("direct")
