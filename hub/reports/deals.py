"""The reports' read model of CRM deals (report_deals): one row per deal of a
conversation, brought to its latest stage whenever a CRM connector reports a move
(hub.crm.deal_outcomes, the same transaction as deal.stage_changed). Reports read deals,
won deals and revenue from here, never from a CRM."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ReportDeal


def record(session: Session, *, conversation_id: int, connector_id: int | None, deal_id: str, stage: str,
           outcome: str, amount: str | None, currency: str | None, now: datetime) -> ReportDeal:
    """Keep the deal's latest stage, outcome and amount (an amount the CRM stops sending
    is kept: a stage move often carries no budget)."""
    deal = session.scalar(select(ReportDeal).where(ReportDeal.conversation_id == conversation_id,
                                                   ReportDeal.deal_id == deal_id[:64]))
    if deal is None:
        deal = ReportDeal(conversation_id=conversation_id, deal_id=deal_id[:64])
        session.add(deal)
    deal.connector_id = connector_id if connector_id is not None else deal.connector_id
    deal.stage, deal.outcome, deal.changed_at = stage[:200], outcome, now
    if amount is not None:
        deal.amount, deal.currency = Decimal(amount), (currency or deal.currency or None)
    session.flush()
    return deal


@dataclass
class ConversationDeals:
    """What a conversation's deals add up to in a report."""

    deals: int = 0
    won: int = 0
    revenue: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))  # won amounts per currency
    latest: ReportDeal | None = None  # the deal moved last: the export's deal columns


def summed(deals: Iterable[ReportDeal]) -> ConversationDeals:
    out = ConversationDeals()
    for deal in deals:
        out.deals += 1
        if deal.outcome == "won":
            out.won += 1
            if deal.amount is not None:
                out.revenue[deal.currency or "?"] += deal.amount
        if out.latest is None or (deal.changed_at, deal.id) > (out.latest.changed_at, out.latest.id):
            out.latest = deal
    return out


def of_conversations(session: Session, conversation_ids: list[int]) -> dict[int, ConversationDeals]:
    found: dict[int, list[ReportDeal]] = defaultdict(list)
    for deal in session.scalars(select(ReportDeal).where(ReportDeal.conversation_id.in_(conversation_ids))):
        found[deal.conversation_id].append(deal)
    return {cid: summed(deals) for cid, deals in found.items()}
