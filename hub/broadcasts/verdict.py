"""The pre-send verdict: for a whole audience, how many would be sent and how many
skipped and why, what it would cost by category and country (the hub's rate card, list
rates), and whether the portfolio's messaging limit has room. Read-only."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from hub.broadcasts import compose, consent, limits
from hub.channels.whatsapp.rate_card import MissingRate, RateCard, region_of
from hub.models import Template


def cost_by_category_and_country(card: RateCard, category: str, phones: list[str]) -> dict[str, Any]:
    counts = Counter(region_of(p) or "??" for p in phones)
    lines, total, unpriced = [], Decimal(0), 0
    for country, count in sorted(counts.items()):
        market = card.markets[card.countries.get(country, card.default_market)]
        try:
            rate = market.rate(category)
        except MissingRate:
            unpriced += count
            lines.append({"category": category, "country": country, "market": market.name, "count": count,
                          "rate": None, "cost": None})
            continue
        cost = rate * count
        total += cost
        lines.append({"category": category, "country": country, "market": market.name, "count": count,
                      "rate": str(rate), "cost": str(cost)})
    return {"currency": card.currency, "total": str(total), "lines": lines, "unpriced": unpriced,
            "example_rates": card.example}


def verdict(session: Session, *, template: Template, spec: Any, members: list[dict[str, Any]],
            refused: list[dict[str, Any]], subscription: str, card: RateCard, header: Any = None,
            buttons: list[dict[str, Any]] | None = None, now: datetime) -> dict[str, Any]:
    skipped: Counter[str] = Counter(r["reason"] for r in refused)
    opted_out = consent.opted_out_phones(session, [m["phone"] for m in members], subscription)
    missing = {r["phone"] for r in compose.rows_missing_variables(template, spec, members)}
    sendable: list[dict[str, Any]] = []
    for m in members:
        if m["phone"] in opted_out:
            skipped["opted_out"] += 1
        elif m["phone"] in missing:
            skipped["missing_variables"] += 1
        else:
            sendable.append(m)
    phones = [m["phone"] for m in sendable]
    category = (template.category or "MARKETING").lower()
    room = limits.room(session, now=now)
    new_people = len(set(phones) - limits.reached_recently(session, phones, now=now))
    problems = []
    if template.status != "APPROVED":
        problems.append(f"template {template.name} is {template.status}, not APPROVED")
    fits = room.left is None or new_people <= room.left
    return {
        "would_send": len(sendable),
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "template": {"name": template.name, "language": template.language, "category": template.category,
                     "status": template.status},
        "cost": cost_by_category_and_country(card, category, phones),
        "messaging_limit": {"tier": room.tier, "assumed": room.assumed, "limit": room.limit,
                            "used_24h": room.used, "left": room.left, "needed": new_people, "fits": fits},
        "preview": compose.preview(template, spec, sendable, header=header, buttons=buttons),
        "problems": problems,
    }
