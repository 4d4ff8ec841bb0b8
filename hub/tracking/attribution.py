"""Where a conversation came from (its lead source), decided on its first message.

Pure functions building the `lead_source` JSON (docs/events.md); hub/tracking/matching.py
finds the tracked-link visit, this module only shapes what is known about it."""
from __future__ import annotations

from typing import Any, Mapping

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
CLICK_IDS = ("gclid", "yclid", "fbclid")
REFERRAL_FIELDS = ("source_url", "source_id", "source_type", "headline", "body", "media_type", "ctwa_clid")
# Added for tracked links; null for the other kinds.
TRACKING_FIELDS = ("link_id", "visit_id", "visited_at", "ga_client_id", "ym_uid", "roistat_visit", "clean_text")


def empty_source(kind: str) -> dict[str, Any]:
    return {"kind": kind, **{f: None for f in UTM_FIELDS + CLICK_IDS},
            "campaign": None, "link": None, "code": None, "landing_page": None,
            "referrer": None, "referral": None, **{f: None for f in TRACKING_FIELDS}}


def _referral_data(referral: Mapping[str, Any]) -> dict[str, Any]:
    return {f: referral.get(f) for f in REFERRAL_FIELDS}


def from_referral(referral: dict[str, Any]) -> dict[str, Any]:
    """A Click-to-WhatsApp ad: the ad's own data, and UTM tags if its URL carried them."""
    from urllib.parse import parse_qs, urlsplit

    source = empty_source("ad_referral")
    source["referral"] = _referral_data(referral)
    query = parse_qs(urlsplit(referral.get("source_url") or "").query)
    for name in UTM_FIELDS + CLICK_IDS:
        if query.get(name):
            source[name] = query[name][0][:255]
    return source


def from_tracked_link(link: Mapping[str, Any], visit: Mapping[str, Any] | None, *, code: str,
                      clean_text: str, referral: dict[str, Any] | None = None) -> dict[str, Any]:
    """A tracked link's code was in the first message: the visit's tags, the link's
    defaults where the visit had none. `visit` is None for a link's static code."""
    visit = visit or {}
    source = empty_source("tracked_link")
    for name in UTM_FIELDS:
        source[name] = visit.get(name) or link.get(name) or None
    for name in CLICK_IDS + ("landing_page", "referrer", "ga_client_id", "ym_uid", "roistat_visit", "visited_at"):
        source[name] = visit.get(name) or None
    source.update(campaign=link.get("campaign") or None, link=link["slug"], link_id=link["id"],
                  code=code, visit_id=visit.get("id"), clean_text=clean_text,
                  referral=_referral_data(referral) if referral else None)
    return source


def attribute(*, referral: dict[str, Any] | None) -> dict[str, Any]:
    """The lead source of a new conversation that quoted no tracking code."""
    if referral:
        return from_referral(referral)
    return empty_source("direct")
