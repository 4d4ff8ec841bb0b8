"""Each deal's latest stage, outcome and amount, as its CRM last reported it (the
report_deals rows): kept in the same transaction as deal.stage_changed
(hub.crm.deal_outcomes). The reports read these rows (hub.reports.deals) and never
write them, so the CRM room does not import the reports built on it."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

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
