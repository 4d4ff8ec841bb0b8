"""The pre-send verdict: for a whole audience, how many would be sent and how many
skipped and why, what it would cost by category and country (the hub's rate card, list
rates), and whether the portfolio's messaging limit has room. Read-only."""
from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from hub.broadcasts import audiences, compose, consent, limits
from hub.broadcasts.problems import BroadcastProblem
from hub.channels.whatsapp.templates import parameters as tpl
from hub.channels.whatsapp.billing.rate_card import MissingRate, RateCard, rate_card_for, region_of
from hub.models import Audience, Channel, Template


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
            buttons: list[dict[str, Any]] | None = None, require_marketing_opt_in: bool = False,
            audience: Audience | None = None, now: datetime) -> dict[str, Any]:
    skipped: Counter[str] = Counter(r["reason"] for r in refused)
    no_consent = consent.skip_reasons(session, [m["phone"] for m in members], subscription,
                                      require_marketing_opt_in=require_marketing_opt_in)
    missing = {r["phone"] for r in compose.rows_missing_variables(template, spec, members)}
    sendable: list[dict[str, Any]] = []
    for m in members:
        if m["phone"] in no_consent:
            skipped[no_consent[m["phone"]]] += 1
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
        "audience": audiences.definition(audience) if audience is not None else None,
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


def for_composition(session: Session, *, config: Any, channel_id: int, audience_id: int, template_name: str,
                    template_language: str, variables: Any, header: Any = None,
                    buttons: list[dict[str, Any]] | None = None, now: datetime) -> dict[str, Any]:
    """The verdict of a broadcast as the REST API and the admin wizard compose it; bad
    input raises BroadcastProblem naming the field."""
    channel = session.get(Channel, channel_id)
    if channel is None:
        raise BroadcastProblem(f"no channel with id {channel_id}", field="channel_id", status=404)
    audience = session.get(Audience, audience_id)
    if audience is None:
        raise BroadcastProblem(f"no audience with id {audience_id}", field="audience_id", status=404)
    template = tpl.find(session, channel.waba_id, template_name, template_language)
    if template is None:
        raise BroadcastProblem(f"no template {template_name!r} in {template_language!r} on this channel's account",
                               field="template_name")
    try:
        compose.check_spec(template, variables, audience.columns if audience.kind == "csv" else ["name"], header)
    except compose.CompositionProblem as exc:
        raise BroadcastProblem(str(exc), field=exc.field) from None
    members = audiences.members(session, audience, now=now, contact_fields=compose.custom_fields(variables),
                                crm=compose.crm_sources(variables))
    subscription = "utility" if (template.category or "").upper() in ("UTILITY", "AUTHENTICATION") else "marketing"
    try:
        return verdict(session, template=template, spec=variables, members=members,
                       refused=list(audience.refused or []), subscription=subscription,
                       card=rate_card_for(config), header=header, buttons=buttons,
                       require_marketing_opt_in=config.broadcasts.require_marketing_opt_in, audience=audience,
                       now=now)
    except tpl.TemplateProblem as exc:
        field = "header" if "header" in str(exc) else "buttons"
        raise BroadcastProblem(f"{field}: {exc}", field=field) from None
