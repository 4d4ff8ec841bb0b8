"""Per link and per campaign: visits, conversations started, conversion rate.

Visits are counted by when they happened, conversations by when they were attributed,
both within [since, until). The conversion rate is conversations / visits (null without
visits): a static link's printed code brings conversations that never visited /l/.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.models import LeadAttribution, TrackedLink, Visit


def _rate(conversations: int, visits: int) -> float | None:
    return round(conversations / visits, 4) if visits else None


def _row(visits: int, conversations: int) -> dict[str, Any]:
    return {"visits": visits, "conversations": conversations, "conversion_rate": _rate(conversations, visits)}


def tracking_report(session: Session, *, since: datetime | None = None, until: datetime | None = None,
                    campaign: str | None = None, link_id: int | None = None) -> dict[str, Any]:
    visits_q = select(Visit.link_id, func.count()).group_by(Visit.link_id)
    convs_q = select(LeadAttribution.link_id, func.count()).where(LeadAttribution.link_id.is_not(None)) \
        .group_by(LeadAttribution.link_id)
    if since is not None:
        visits_q = visits_q.where(Visit.visited_at >= since)
        convs_q = convs_q.where(LeadAttribution.attributed_at >= since)
    if until is not None:
        visits_q = visits_q.where(Visit.visited_at < until)
        convs_q = convs_q.where(LeadAttribution.attributed_at < until)
    links_q = select(TrackedLink).order_by(TrackedLink.campaign, TrackedLink.slug)
    if campaign is not None:
        links_q = links_q.where(TrackedLink.campaign == campaign)
    if link_id is not None:
        links_q = links_q.where(TrackedLink.id == link_id)
    visits = dict(session.execute(visits_q).all())
    conversations = dict(session.execute(convs_q).all())

    links: list[dict[str, Any]] = []
    campaigns: dict[str, dict[str, Any]] = {}
    for link in session.scalars(links_q):
        v, c = visits.get(link.id, 0), conversations.get(link.id, 0)
        links.append({"link_id": link.id, "slug": link.slug, "campaign": link.campaign,
                      "static": link.static_code is not None, **_row(v, c)})
        group = campaigns.setdefault(link.campaign, {"campaign": link.campaign, "links": 0, "visits": 0,
                                                      "conversations": 0})
        group["links"] += 1
        group["visits"] += v
        group["conversations"] += c
    for group in campaigns.values():
        group["conversion_rate"] = _rate(group["conversations"], group["visits"])
    total_v = sum(row["visits"] for row in links)
    total_c = sum(row["conversations"] for row in links)
    return {"since": payloads.iso(since), "until": payloads.iso(until), "links": links,
            "campaigns": list(campaigns.values()), "total": _row(total_v, total_c)}
