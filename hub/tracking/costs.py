"""What WhatsApp cost beside what the deals brought, per conversation, deal, lead source,
UTM campaign or broadcast: cost per lead, cost per won deal, ROMI.

Conversations count by when they opened, within [since, until); a conversation's cost is
what WhatsApp billed for all its messages (messages.cost, per currency). Per broadcast:
the conversations its messages sent in the period went to, and only those messages' cost.
A conversation's deals are the CRM's latest word on each (report_deals, kept by
deal.stage_changed), revenue the amounts of the won ones. Money stays per currency: ROMI
= (revenue - cost) / cost only when both are in one and the same currency (WhatsApp
bills in the account's currency, deals are in the CRM's), else null. `summarise` is
pure; `cost_report` reads the rows.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.models import Broadcast, BroadcastRecipient, Conversation, Message, ReportDeal

GROUPS = ("conversation", "deal", "lead_source", "utm_campaign", "broadcast")
CHUNK = 500


@dataclass(frozen=True)
class Deal:
    crm_connector_id: int | None
    deal_id: str
    outcome: str
    amount: Decimal | None
    currency: str | None


@dataclass
class Lead:
    conversation_id: int
    lead_source: Mapping[str, Any] | None
    cost: dict[str, Decimal] = field(default_factory=dict)  # currency -> what WhatsApp billed
    deals: list[Deal] = field(default_factory=list)
    broadcast: str | None = None  # "<id>: <name>" for the broadcast grouping


def source_name(source: Mapping[str, Any] | None) -> str:
    """The lead source as a report row names it: the UTM source, else the kind."""
    if not source:
        return "unknown"
    return str(source.get("utm_source") or source.get("kind") or "unknown")


def _keys(lead: Lead, group_by: str) -> list[str]:
    if group_by == "total":
        return ["total"]
    if group_by == "conversation":
        return [str(lead.conversation_id)]
    if group_by == "deal":
        return [f"{d.crm_connector_id}:{d.deal_id}" for d in lead.deals]
    if group_by == "broadcast":
        return [lead.broadcast] if lead.broadcast else []
    if group_by == "lead_source":
        return [source_name(lead.lead_source)]
    return [str((lead.lead_source or {}).get("utm_campaign") or "(none)")]


def _money(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {cur: f"{value.quantize(Decimal('0.000001')).normalize():f}" for cur, value in sorted(amounts.items())}


def _per(amounts: Mapping[str, Decimal], n: int) -> dict[str, str] | None:
    return _money({cur: value / n for cur, value in amounts.items()}) if n else None


def romi(cost: Mapping[str, Decimal], revenue: Mapping[str, Decimal]) -> float | None:
    """(revenue - cost) / cost when both are in one currency, else None."""
    if len(cost) != 1 or set(cost) != set(revenue):
        return None
    (currency, spent), = cost.items()
    if not spent:
        return None
    return round(float((revenue[currency] - spent) / spent), 4)


def summarise(leads: Iterable[Lead], group_by: str) -> list[dict[str, Any]]:
    """One row per group: leads, deals, won deals, revenue, cost and the ratios."""
    groups: dict[str, dict[str, Any]] = {}
    for lead in leads:
        for key in _keys(lead, group_by):
            g = groups.setdefault(key, {"key": key, "leads": set(), "costed": set(), "deals": set(), "won": set(),
                                        "cost": defaultdict(Decimal), "revenue": defaultdict(Decimal)})
            g["leads"].add(lead.conversation_id)
            if (lead.conversation_id, lead.broadcast) not in g["costed"]:  # a lead's cost once per group
                g["costed"].add((lead.conversation_id, lead.broadcast))
                for currency, value in lead.cost.items():
                    g["cost"][currency] += value
            for deal in lead.deals:
                if group_by == "deal" and key != f"{deal.crm_connector_id}:{deal.deal_id}":
                    continue
                ident = (deal.crm_connector_id, deal.deal_id)
                if ident in g["deals"]:
                    continue
                g["deals"].add(ident)
                if deal.outcome == "won":
                    g["won"].add(ident)
                    if deal.amount is not None and deal.currency:
                        g["revenue"][deal.currency] += deal.amount
    rows = []
    for g in sorted(groups.values(), key=lambda g: g["key"]):
        leads_n, won_n = len(g["leads"]), len(g["won"])
        rows.append({"key": g["key"], "leads": leads_n, "deals": len(g["deals"]), "won_deals": won_n,
                     "revenue": _money(g["revenue"]), "cost": _money(g["cost"]),
                     "cost_per_lead": _per(g["cost"], leads_n), "cost_per_won_deal": _per(g["cost"], won_n),
                     "romi": romi(g["cost"], g["revenue"])})
    return rows


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def _add_deals(session: Session, leads: dict[int, Lead]) -> None:
    """Each conversation's deals as the CRM last reported them: the reports' read model
    (report_deals, kept by deal.stage_changed in its transaction), which outlives the
    events the retention job purges."""
    for chunk in _chunks(list(leads)):
        for row in session.scalars(select(ReportDeal).where(ReportDeal.conversation_id.in_(chunk))
                                   .order_by(ReportDeal.id)):
            leads[row.conversation_id].deals.append(Deal(row.connector_id, row.deal_id, row.outcome,
                                                         row.amount, row.currency))


def load_leads(session: Session, *, since: datetime | None, until: datetime | None) -> list[Lead]:
    """The conversations opened in the period, with all their messages' cost."""
    query = select(Conversation.id, Conversation.lead_source).order_by(Conversation.id)
    if since is not None:
        query = query.where(Conversation.opened_at >= since)
    if until is not None:
        query = query.where(Conversation.opened_at < until)
    leads = {cid: Lead(cid, source) for cid, source in session.execute(query)}
    for chunk in _chunks(list(leads)):
        for cid, currency, total in session.execute(
                select(Message.conversation_id, Message.currency, func.sum(Message.cost))
                .where(Message.conversation_id.in_(chunk), Message.cost.is_not(None))
                .group_by(Message.conversation_id, Message.currency)):
            if total:
                leads[cid].cost[currency or "?"] = Decimal(str(total))
    _add_deals(session, leads)
    return list(leads.values())


def load_broadcast_leads(session: Session, *, since: datetime | None, until: datetime | None) -> list[Lead]:
    """Per broadcast, the conversations its messages (sent in the period) went to, with
    the cost of those messages only, and those conversations' deals."""
    query = (select(Broadcast.id, Broadcast.name, Message.conversation_id, Conversation.lead_source,
                    Message.currency, Message.cost)
             .join(BroadcastRecipient, BroadcastRecipient.broadcast_id == Broadcast.id)
             .join(Message, Message.id == BroadcastRecipient.message_id)
             .join(Conversation, Conversation.id == Message.conversation_id))
    if since is not None:
        query = query.where(Message.sent_at >= since)
    if until is not None:
        query = query.where(Message.sent_at < until)
    per: dict[tuple[int, int], Lead] = {}
    for broadcast_id, name, cid, source, currency, cost in session.execute(query):
        lead = per.setdefault((broadcast_id, cid), Lead(cid, source, broadcast=f"{broadcast_id}: {name}"))
        if cost:
            lead.cost[currency or "?"] = lead.cost.get(currency or "?", Decimal(0)) + Decimal(str(cost))
    by_conversation: dict[int, Lead] = {cid: Lead(cid, None) for _, cid in per}
    _add_deals(session, by_conversation)
    for (_, cid), lead in per.items():
        lead.deals = list(by_conversation[cid].deals)
    return list(per.values())


def cost_report(session: Session, *, group_by: str, since: datetime | None = None,
                until: datetime | None = None) -> dict[str, Any]:
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    if group_by == "broadcast":
        leads = load_broadcast_leads(session, since=since, until=until)
    else:
        leads = load_leads(session, since=since, until=until)
    return {"since": payloads.iso(since), "until": payloads.iso(until), "group_by": group_by,
            "rows": summarise(leads, group_by), "total": (summarise(leads, "total") or [None])[0]}
