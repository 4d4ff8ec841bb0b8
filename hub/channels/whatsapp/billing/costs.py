"""The cost of each outbound message: quoted before sending, charged once WhatsApp
reports pricing, stored on the message."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.channels.whatsapp.billing import pricing
from hub.channels.whatsapp.outbound import window
from hub.channels.whatsapp.billing.rate_card import MissingRate, RateCard
from hub.models import Contact, Conversation, Message


def _month_start(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def facts_for(session: Session, message: Message, conversation: Conversation, contact: Contact,
              *, at: datetime, delivered: bool) -> pricing.MessageFacts:
    """What pricing needs, read from the message, its conversation and this month's bill."""
    is_template = message.template_name is not None
    category = (message.template_category or "UTILITY") if is_template else None
    billed_this_month = select(func.count()).select_from(Message).where(
        Message.direction == "out", Message.billable.is_(True), Message.id != message.id,
        Message.accepted_at >= _month_start(at),
    )
    same_category = session.scalar(
        billed_this_month.where(Message.pricing_category == (category or "service").lower())
    ) or 0
    csw_open = window.is_open(conversation, at)
    return pricing.MessageFacts(
        is_template=is_template,
        category=category,
        recipient=contact.phone or contact.wa_id or "",
        csw_open=csw_open,
        fep_open=window.entry_point_free(conversation, at),
        delivered=delivered,
        tier_count=same_category,
        free_used=same_category if not is_template else 0,
        open_conversations=_open_cbp_conversations(session, conversation, at),
    )


def _open_cbp_conversations(session: Session, conversation: Conversation, at: datetime):
    """CBP (before July 2025): conversations opened in the last 24 h with this user."""
    if pricing.period_at(at).model != "CBP":
        return ()
    rows = session.execute(
        select(Message.pricing_category, Message.accepted_at).where(
            Message.conversation_id == conversation.id, Message.direction == "out",
            Message.accepted_at > at - timedelta(hours=24), Message.accepted_at <= at,
            Message.pricing_category.is_not(None),
        )
    ).all()
    return tuple(pricing.OpenConversation(cat, ts + timedelta(hours=24)) for cat, ts in rows)


def apply_charge(message: Message, charge: pricing.Charge) -> None:
    message.billable = charge.billable
    message.pricing_model = charge.pricing_model
    message.pricing_type = charge.pricing_type
    message.pricing_category = charge.category
    message.cost = charge.amount
    message.currency = charge.currency


def price_sent(session: Session, message: Message, conversation: Conversation, contact: Contact,
               *, card: RateCard, webhook_pricing: dict | None, delivered: bool) -> None:
    """Charge a message WhatsApp has accepted; the webhook's pricing is the truth."""
    at = message.accepted_at or message.sent_at
    facts = facts_for(session, message, conversation, contact, at=at, delivered=delivered)
    try:
        charge = pricing.charge(facts, at, webhook_pricing, card=card)
    except MissingRate:
        return  # the card lacks this market/category: keep what WhatsApp said, no amount
    apply_charge(message, charge)


def quote(session: Session, message: Message, conversation: Conversation, contact: Contact,
          *, card: RateCard, at: datetime) -> pricing.Charge:
    """The expected charge of a message about to be sent (assuming delivery)."""
    facts = facts_for(session, message, conversation, contact, at=at, delivered=True)
    return pricing.quote(facts, at, card=card)
