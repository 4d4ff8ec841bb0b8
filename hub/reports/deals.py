"""The reports' read model of CRM deals (report_deals): one row per deal of a
conversation, brought to its latest stage whenever a CRM connector reports a move
(hub.crm.deal_stages, the same transaction as deal.stage_changed). Reports read deals,
won deals and revenue from here, never from a CRM."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import ReportDeal


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
