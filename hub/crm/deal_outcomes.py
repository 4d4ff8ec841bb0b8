"""A CRM's deal moved (connectors.base.ReportDealStage) -> the `deal.stage_changed` event.

The CRM connector says what happened in its own terms; the hub joins it to the
conversation, the contact and the lead source, so analytics destinations (GA4, Meta,
Metrica, Roistat) close the loop from the ad to the money without knowing any CRM.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import ReportDealStage
from hub.conversations.consent import marketing_contact
from hub.crm import contact_stages, deal_stages
from hub.events import payloads
from hub.events.outbox import emit
from hub.models import ConnectorRecord, Contact, Conversation

OUTCOMES = ("won", "lost", "open")


class DealReportRefused(LookupError):
    """The report names nothing the hub knows, or carries a value it cannot read."""


def amount_text(value: str | None) -> str | None:
    """The amount as a plain decimal text ("22500.00"), None when absent."""
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).replace(" ", "").replace(",", "."))
    except InvalidOperation:
        raise DealReportRefused(f"amount {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise DealReportRefused(f"amount {value!r} must be a non-negative number")
    return f"{amount.quantize(Decimal('0.01'))}"


def _conversation(session: Session, report: ReportDealStage) -> Conversation | None:
    if report.conversation_id is not None:
        return session.get(Conversation, report.conversation_id)
    if not report.phone:
        return None
    contact_id = session.scalar(select(Contact.id).where(Contact.phone == report.phone).order_by(Contact.id))
    if contact_id is None:
        return None
    return session.scalar(select(Conversation).where(Conversation.contact_id == contact_id)
                          .order_by(Conversation.opened_at.desc(), Conversation.id.desc()).limit(1))


def event_data(session: Session, report: ReportDealStage, conversation: Conversation,
               record: ConnectorRecord | None, *, now: datetime) -> dict[str, Any]:
    contact = session.get(Contact, conversation.contact_id)
    return {
        "conversation": payloads.conversation(session, conversation),
        "contact": marketing_contact(session, contact),
        "deal": {
            "id": str(report.deal_id), "stage": str(report.stage), "stage_name": report.stage_name or "",
            "pipeline": None if report.pipeline is None else str(report.pipeline),
            "outcome": report.outcome, "amount": amount_text(report.amount),
            "currency": (report.currency or "").upper() or None, "changed_at": payloads.iso(now),
        },
        "crm": {"connector_id": record.id if record else None, "kind": record.kind if record else None,
                "name": record.name if record else None},
        "lead_source": conversation.lead_source,
    }


def report_stage(session: Session, report: ReportDealStage, *, now: datetime, connector_id: int | None) -> str:
    """Emit deal.stage_changed for the report; returns what was done. DealReportRefused
    when the outcome is unknown or no conversation of the hub belongs to the deal."""
    if report.outcome not in OUTCOMES:
        raise DealReportRefused(f"outcome {report.outcome!r} is not one of {', '.join(OUTCOMES)}")
    conversation = _conversation(session, report)
    if conversation is None:
        raise DealReportRefused(f"deal {report.deal_id} has no WhatsApp conversation in the hub")
    record = session.get(ConnectorRecord, connector_id) if connector_id is not None else None
    data = event_data(session, report, conversation, record, now=now)
    emit(session, "deal.stage_changed", data, now=now, ordering_key=payloads.ordering_key(conversation))
    deal = data["deal"]
    deal_stages.record(session, conversation_id=conversation.id, connector_id=record.id if record else None,
                       deal_id=deal["id"], stage=deal["stage_name"] or deal["stage"], outcome=report.outcome,
                       amount=deal["amount"], currency=deal["currency"], now=now)
    contact_stages.record(session, contact_id=conversation.contact_id, deal=deal,
                          connector_id=record.id if record else None, now=now)
    return f"deal {report.deal_id} {report.outcome} at stage {report.stage}"
