"""Applying status webhooks to outbound messages (and their cost)."""
from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.channels.whatsapp.billing import costs
from hub.channels.whatsapp.billing.rate_card import rate_card_for
from hub.channels.whatsapp.inbound.status_order import StatusRow, resolve
from hub.channels.whatsapp.inbound.types import StatusUpdate
from hub.events.outbox import emit
from hub.models import Contact, Conversation, Message, MessageStatus

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime


def record_status(session: Session, update: StatusUpdate, *, now: datetime, runtime: "Runtime") -> None:
    data = {
        "recipient_id": update.recipient_id,
        "recipient_user_id": update.recipient_user_id,
        "errors": [asdict(e) for e in update.errors],
        "pricing": asdict(update.pricing) if update.pricing else None,
        "conversation": update.conversation,
        "biz_opaque_callback_data": update.biz_opaque_callback_data,
    }
    try:
        with session.begin_nested():
            session.add(MessageStatus(wa_message_id=update.message_id, status=update.status,
                                      timestamp=update.timestamp, data=data, received_at=now))
            session.flush()
    except IntegrityError:
        return  # this status of this message was already recorded
    message = session.scalar(select(Message).where(Message.wa_message_id == update.message_id))
    if message is None:
        message = adopt_orphan(session, update, now=now)
    if message is not None:
        refresh(session, message, now=now, runtime=runtime)
    # else: kept for when the send that produced this wamid commits (refresh is called then)


def adopt_orphan(session: Session, update: StatusUpdate, *, now: datetime) -> Message | None:
    """A status of a send whose worker died between Meta's answer and its commit: the
    message still waits (status sending, lease held by the dead worker) and has no wamid,
    but the status names it in biz_opaque_callback_data (hub:<message id>, set at
    queueing). The message takes the wamid and is not sent again when the lease lapses."""
    data = update.biz_opaque_callback_data or ""
    if not data.startswith("hub:") or not data[4:].isdigit():
        return None
    message = session.get(Message, int(data[4:]))
    if message is None or message.wa_message_id is not None or message.status not in ("queued", "sending"):
        return None
    to = "".join(ch for ch in (message.recipient or "") if ch.isdigit())
    if update.recipient_id and to and update.recipient_id != to:
        return None
    message.wa_message_id = update.message_id
    message.status, message.accepted_at = "accepted", message.accepted_at or update.timestamp
    message.attempts += 1
    message.lease_owner = message.lease_expires_at = None
    message.updated_at = now
    session.flush()
    return message


def refresh(session: Session, message: Message, *, now: datetime, runtime: "Runtime") -> None:
    """Recompute a message's status and cost from every status row of its wamid."""
    rows = session.scalars(select(MessageStatus).where(MessageStatus.wa_message_id == message.wa_message_id))
    resolved = resolve(StatusRow(r.status, r.timestamp, r.data) for r in rows)
    if resolved.status is None:
        return
    before = (message.status, message.billable, message.pricing_category)
    message.status = resolved.status
    message.accepted_at = resolved.accepted_at or message.accepted_at
    message.delivered_at = resolved.delivered_at
    message.read_at = resolved.read_at
    message.failed_at = resolved.failed_at
    if resolved.error_code is not None:
        message.error_code, message.error_title = resolved.error_code, resolved.error_title
    conversation = session.get(Conversation, message.conversation_id)
    contact = session.get(Contact, conversation.contact_id)
    if resolved.pricing is not None or resolved.delivered:
        costs.price_sent(session, message, conversation, contact, card=rate_card_for(runtime.config),
                         webhook_pricing=resolved.pricing, delivered=resolved.delivered)
    message.updated_at = now
    if (message.status, message.billable, message.pricing_category) != before:
        error = None
        if message.status == "failed":
            error = {"code": message.error_code, "title": message.error_title,
                     "details": _details(session, message)}
        emit(session, "message.status", {
            "conversation_id": conversation.id,
            "contact_id": contact.id,
            "message": {"id": message.id, "wa_message_id": message.wa_message_id, "status": message.status,
                        "error": error, "pricing": payloads.pricing(message)},
        }, now=now, ordering_key=payloads.ordering_key(conversation))


def _details(session: Session, message: Message) -> str:
    row = session.scalar(select(MessageStatus).where(
        MessageStatus.wa_message_id == message.wa_message_id, MessageStatus.status == "failed"))
    errors = (row.data.get("errors") if row else None) or [{}]
    return errors[0].get("details") or ""
