"""Store what a WhatsApp webhook means, in the caller's transaction.

Registered as the "whatsapp" raw-webhook processor: the web route stores the raw body
and calls this inside a savepoint, so a body that does not parse is kept, marked and
replayable, and everything else about it commits together with its events.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import payloads
from hub.channels.whatsapp import account_events
from hub.channels.whatsapp.delivery_status import record_status
from hub.channels.whatsapp.parse import parse
from hub.channels.whatsapp.types import (
    InboundMessage,
    ParsedWebhook,
    NumberEvent,
    StatusUpdate,
    TemplateEvent,
    Unhandled,
    UserPreference,
    ValueErrors,
)
from hub.conversations import find_for_message, open_conversation, refresh_contact, upsert_contact
from hub.events import emit
from hub.inbound import Processor, register_processor
from hub.models import Channel, Contact, Conversation, Message, RawWebhook
from hub.tracking.matching import DEFAULT_WINDOW, attribute_first_message

if TYPE_CHECKING:
    from hub.runtime import Runtime

log = logging.getLogger(__name__)

KNOWN_TYPES = frozenset({
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported", "revoke", "edit",
    "request_welcome",
})


class Channels:
    """Channels of one webhook body, looked up once each."""

    def __init__(self, session: Session, known: Channel | None = None):
        self.session = session
        self._by_number: dict[str, Channel | None] = {}
        if known is not None:  # the channel whose URL received the webhook
            self._by_number[known.phone_number_id] = known

    def by_number(self, phone_number_id: str | None) -> Channel | None:
        if not phone_number_id:
            return None
        if phone_number_id not in self._by_number:
            self._by_number[phone_number_id] = self.session.scalar(
                select(Channel).where(Channel.phone_number_id == phone_number_id))
        return self._by_number[phone_number_id]

    def of_account(self, waba_id: str) -> list[Channel]:
        return list(self.session.scalars(select(Channel).where(Channel.waba_id == waba_id).order_by(Channel.id)))


def apply(session: Session, parsed: ParsedWebhook, raw: RawWebhook, now: datetime, runtime: "Runtime") -> None:
    channels = Channels(session, session.get(Channel, raw.channel_id) if raw.channel_id else None)
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    for item in parsed.items:
        if isinstance(item, InboundMessage):
            store_inbound(session, channels, item, now, attribution_window=window)
        elif isinstance(item, StatusUpdate):
            record_status(session, item, now=now, runtime=runtime)
        elif isinstance(item, TemplateEvent):
            account_events.template_event(session, channels, item, now)
        elif isinstance(item, NumberEvent):
            account_events.number_event(session, channels, item, now)
        elif isinstance(item, UserPreference):
            account_events.user_preference(session, item, now)
        elif isinstance(item, ValueErrors):
            account_events.value_errors(session, channels, item, now)
        elif isinstance(item, Unhandled):
            log.info("webhook field %s is not acted on (kept in the raw webhook)", item.field)


def _payload(m: InboundMessage) -> dict[str, Any]:
    return {
        "message": m.raw,
        "media": asdict(m.media) if m.media else None,
        "referral": m.referral,
        "errors": [asdict(e) for e in m.errors],
        "forwarded": m.forwarded,
        "original_type": m.type if m.type not in KNOWN_TYPES else None,
    }


def _number_change(session: Session, contact: Contact, m: InboundMessage, now: datetime) -> None:
    """system/user_changed_number: the contact keeps its history under the new number."""
    new_wa_id = m.content.get("wa_id") or m.content.get("new_wa_id")
    if m.content.get("type") != "user_changed_number" or not new_wa_id or new_wa_id == contact.wa_id:
        return
    if session.scalar(select(Contact.id).where(Contact.wa_id == new_wa_id)):
        log.warning("contact %s changed number to one another contact already has", contact.id)
        return
    from hub.conversations import e164

    contact.wa_id, contact.phone, contact.updated_at = new_wa_id, e164(new_wa_id), now


def store_inbound(session: Session, channels: Channels, m: InboundMessage, now: datetime, *,
                  attribution_window: timedelta = DEFAULT_WINDOW) -> Message | None:
    channel = channels.by_number(m.route.phone_number_id)
    if channel is None:
        log.warning("message %s is for number %s, which is not a channel here", m.id, m.route.phone_number_id)
        return None
    contact, conversation, duplicate = find_for_message(
        session, channel_id=channel.id, wa_id=m.from_wa_id, user_id=m.from_user_id, wa_message_id=m.id)
    if duplicate:
        return None  # Meta's retry or duplicate: nothing changes
    profile = {"name": m.contact.name if m.contact else "", "username": m.contact.username if m.contact else None}
    if contact is None:
        contact = upsert_contact(session, wa_id=m.from_wa_id, user_id=m.from_user_id, now=now, **profile)
    else:
        refresh_contact(contact, wa_id=m.from_wa_id, user_id=m.from_user_id, **profile)
    if m.type == "system":
        _number_change(session, contact, m, now)
    started = False
    if conversation is None:
        conversation, started = open_conversation(session, channel_id=channel.id, contact_id=contact.id,
                                                  now=m.timestamp)
    message = Message(
        conversation_id=conversation.id, wa_message_id=m.id, direction="in",
        type=m.type if m.type in KNOWN_TYPES else "unsupported", text=m.text, payload=_payload(m),
        status="received", sent_at=m.timestamp, reply_to=m.reply_to,
        error_code=m.errors[0].code if m.errors else None,
        error_title=m.errors[0].title if m.errors else None,
        created_at=now, updated_at=now,
    )
    # A concurrent delivery of the same wamid makes this transaction fail on the unique
    # key: the webhook answers 500, Meta retries, and the retry finds the message stored.
    session.add(message)
    session.flush()
    _touch_conversation(conversation, m)
    if m.original_message_id:
        _annotate_original(session, m)
    key = payloads.ordering_key(conversation)
    if started:
        conversation.lead_source = attribute_first_message(session, conversation, message, referral=m.referral,
                                                           window=attribution_window, now=now)
        data = {"conversation": payloads.conversation(session, conversation), "contact": payloads.contact(contact)}
        emit(session, "conversation.started", data, now=now, ordering_key=key)
        emit(session, "lead.attributed", {**data, "lead_source": conversation.lead_source}, now=now,
             ordering_key=key)
    emit(session, "message.received", {
        "conversation": payloads.conversation(session, conversation),
        "contact": payloads.contact(contact),
        "message": payloads.message(session, message),
    }, now=now, ordering_key=key)
    return message


def _touch_conversation(conversation: Conversation, m: InboundMessage) -> None:
    if m.opens_window and (conversation.last_inbound_at is None or m.timestamp > conversation.last_inbound_at):
        conversation.last_inbound_at = m.timestamp
    if m.referral and (conversation.ctwa_entry_at is None or m.timestamp > conversation.ctwa_entry_at):
        conversation.ctwa_entry_at = m.timestamp
    if conversation.last_message_at is None or m.timestamp > conversation.last_message_at:
        conversation.last_message_at = m.timestamp


def _annotate_original(session: Session, m: InboundMessage) -> None:
    """revoke / edit: mark the message the user deleted or changed."""
    original = session.scalar(select(Message).where(Message.wa_message_id == m.original_message_id))
    if original is None:
        return
    note = {"revoked_at": payloads.iso(m.timestamp)} if m.type == "revoke" else \
        {"edited_at": payloads.iso(m.timestamp), "edited_text": m.text}
    original.payload = {**(original.payload or {}), **note}


register_processor("whatsapp", Processor(parse=parse, apply=apply))
