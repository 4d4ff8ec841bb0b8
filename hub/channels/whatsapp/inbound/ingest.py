"""Store what a WhatsApp webhook means, in the caller's transaction.

Registered as the "whatsapp" raw-webhook processor: the web route stores the raw body
and calls this in the same transaction, so a body that does not parse is kept, marked and
replayable, and everything else about it commits together with its events.

Inbound messages are every webhook's hot path: contacts, conversations and messages are
read and written with Core statements built once, on plain rows (hub.conversations.store), not
through the ORM's unit of work.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.conversations import reactions as conversation_reactions
from hub.events import payloads
from hub.channels import customer_words
from hub.channels.first_message import emit_started, started_events
from hub.channels.inbound_writes import (
    NewMessage,
    can_ride,
    insert_message,
    insert_message_with_event,
    received_data,
)
from hub.channels.whatsapp.inbound import account_events
from hub.channels.whatsapp.inbound.body_channels import ChannelRef, Channels
from hub.channels.whatsapp.inbound.statuses import record_status
from hub.channels.whatsapp.inbound.parse import parse
from hub.channels.whatsapp.inbound.types import (
    InboundMessage,
    ParsedWebhook,
    NumberEvent,
    StatusUpdate,
    TemplateEvent,
    Unhandled,
    UserPreference,
    ValueErrors,
)
from hub.conversations.store import (
    ContactRow,
    ConversationRow,
    e164,
    ensure_contact,
    find_for_message,
    insert_contact_row,
    open_conversation_row,
    refresh_contact,
    update_contact,
)
from hub.events.outbox import emit
from hub.events.raw_webhooks import Processor, register_processor
from hub.models import Channel, Contact, Message, RawWebhook
from hub.tracking.matching import DEFAULT_WINDOW, attribute_first_message

if TYPE_CHECKING:
    from hub.platform.runtime import Runtime

log = logging.getLogger(__name__)

KNOWN_TYPES = frozenset({
    "text", "image", "audio", "video", "document", "sticker", "location", "contacts",
    "interactive", "button", "reaction", "order", "system", "unsupported", "revoke", "edit",
    "request_welcome",
})


def apply(session: Session, parsed: ParsedWebhook, raw: RawWebhook, now: datetime, runtime: "Runtime",
          channel: ChannelRef | None = None) -> None:
    """`channel`: what the route has already read of raw.channel_id (None on replay)."""
    if channel is None and raw.channel_id:
        channel = session.get(Channel, raw.channel_id)
    channels = Channels(session, channel)
    window = timedelta(days=runtime.config.tracking.attribution_window_days)
    links = runtime.media_links
    for item in parsed.items:
        if isinstance(item, InboundMessage):
            says = customer_words.keyword_of(item.text, runtime.config) if item.type == "text" else None
            stored = store_inbound(session, channels, item, now, attribution_window=window, says=says,
                                   media_link=lambda message_id: links.url(message_id, now=now))
            if stored is not None and stored.type == "text":
                customer_words.customer_text(session, stored, now=now, config=runtime.config, says=says)
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
        **({"parse_errors": list(m.parse_errors)} if m.parse_errors else {}),
    }


# customer_changed_number is how older webhook versions name the same change.
NUMBER_CHANGES = frozenset({"user_changed_number", "customer_changed_number"})


def _number_change(session: Session, contact: ContactRow, m: InboundMessage, now: datetime) -> None:
    """system/user_changed_number: the contact keeps its history under the new number."""
    new_wa_id = m.content.get("wa_id") or m.content.get("new_wa_id")
    if m.content.get("type") not in NUMBER_CHANGES or not isinstance(new_wa_id, str) or \
            not new_wa_id or new_wa_id == contact.wa_id or len(new_wa_id) > 32:
        return
    if session.scalar(select(Contact.id).where(Contact.wa_id == new_wa_id)):
        log.warning("contact %s changed number to one another contact already has", contact.id)
        return
    update_contact(session, contact, {"wa_id": new_wa_id, "phone": e164(new_wa_id), "updated_at": now})


def _new_message(conversation: ConversationRow, m: InboundMessage, now: datetime) -> NewMessage:
    """The message to store, as a plain record: it is written with one INSERT
    (hub.channels.inbound_writes), and event payloads read it like any other message."""
    return NewMessage(
        conversation_id=conversation.id, wa_message_id=m.id, direction="in",
        type=m.type if m.type in KNOWN_TYPES else "unsupported", text=m.text, payload=_payload(m),
        status="received", sent_at=m.timestamp, reply_to=m.reply_to,
        error_code=m.errors[0].code if m.errors else None,
        error_title=m.errors[0].title if m.errors else None,
        attempts=0, created_at=now, updated_at=now,
    )


def store_inbound(session: Session, channels: Channels, m: InboundMessage, now: datetime, *,
                  attribution_window: timedelta = DEFAULT_WINDOW,
                  media_link: Callable[[int], str] | None = None, says: str | None = None) -> NewMessage | None:
    """Store one inbound message and emit its events. None when it is for a number that
    is not a channel here, or already stored (Meta's retry or duplicate: nothing changes).
    `says`: the message's opt-out/opt-in keyword verdict (hub.channels.customer_words.keyword_of).
    What is returned is the message as written (a NewMessage, not an ORM object)."""
    channel = channels.for_messages(m.route.phone_number_id)
    if channel is None:
        log.warning("message %s is for number %s, which is not a channel here", m.id, m.route.phone_number_id)
        return None
    sender = find_for_message(session, channel_id=channel.id, wa_id=m.from_wa_id, user_id=m.from_user_id,
                              wa_message_id=m.id)
    contact, conversation = sender.contact, sender.conversation
    if sender.duplicate:
        return None
    profile = {"name": m.contact.name if m.contact else "", "username": m.contact.username if m.contact else None}
    new_contact = False
    if contact is None and m.from_wa_id and m.from_user_id:
        # find_for_message looked by the phone only: the user id may still name a contact.
        contact = ensure_contact(session, wa_id=m.from_wa_id, user_id=m.from_user_id, now=now, **profile)
    elif contact is None:  # nobody by the one id the message has: no need to look again
        contact, new_contact = insert_contact_row(session, wa_id=m.from_wa_id, user_id=m.from_user_id, now=now,
                                                  **profile)
    if not new_contact:
        refresh_contact(session, contact, wa_id=m.from_wa_id, user_id=m.from_user_id, now=now, **profile)
    if m.type == "system":
        _number_change(session, contact, m, now)
    started = False
    if conversation is None:
        conversation, started = open_conversation_row(session, channel_id=channel.id, contact_id=contact.id,
                                                      now=m.timestamp, new_contact=new_contact)
    message = _new_message(conversation, m, now)
    changes = _conversation_changes(conversation, m)
    if started:
        # Before the INSERT, so that a matched code's note on the payload is written with it.
        changes["lead_source"] = attribute_first_message(session, conversation, message, referral=m.referral,
                                                         window=attribution_window, now=now)
    if can_ride(session, sender):
        message.id = sender.next_message_id

        def before() -> tuple[tuple[str, dict[str, Any]], ...]:
            return tuple(started_events(session, conversation, contact, channel=channel, says=says,
                                        new_contact=new_contact)) if started else ()
        insert_message_with_event(session, channel, contact, conversation, message, changes, now=now,
                                  media_link=media_link, before=before)
    else:
        insert_message(session, message, conversation, changes)
        _emit_received(session, channel, contact, conversation, message, started=started, now=now,
                       media_link=media_link, says=says, new_contact=new_contact)
    if started:
        conversation_reactions.started(session, conversation.id, first_text=m.text or "", now=now)
    if m.original_message_id:
        _annotate_original(session, m)
    return message


def _conversation_changes(conversation: ConversationRow, m: InboundMessage) -> dict[str, Any]:
    """The window and activity timestamps this message moves forward."""
    changes: dict[str, Any] = {}
    if m.opens_window and (conversation.last_inbound_at is None or m.timestamp > conversation.last_inbound_at):
        changes["last_inbound_at"] = m.timestamp
    if m.referral and (conversation.ctwa_entry_at is None or m.timestamp > conversation.ctwa_entry_at):
        changes["ctwa_entry_at"] = m.timestamp
    if conversation.last_message_at is None or m.timestamp > conversation.last_message_at:
        changes["last_message_at"] = m.timestamp
    return changes


def _emit_received(session: Session, channel: ChannelRef, contact: ContactRow, conversation: ConversationRow,
                   message: NewMessage, *, started: bool, now: datetime,
                   media_link: Callable[[int], str] | None = None, says: str | None = None,
                   new_contact: bool = False) -> None:
    key = payloads.ordering_key(conversation)
    if started:
        emit_started(session, conversation, contact, channel=channel, now=now, says=says, new_contact=new_contact)
    emit(session, "message.received", received_data(session, channel, contact, conversation, message,
                                                    media_link=media_link), now=now, ordering_key=key)


def _annotate_original(session: Session, m: InboundMessage) -> None:
    """revoke / edit: mark the message the user deleted or changed."""
    original = session.scalar(select(Message).where(Message.wa_message_id == m.original_message_id))
    if original is None:
        return
    note = {"revoked_at": payloads.iso(m.timestamp)} if m.type == "revoke" else \
        {"edited_at": payloads.iso(m.timestamp), "edited_text": m.text}
    original.payload = {**(original.payload or {}), **note}


def split(parsed: ParsedWebhook) -> list[tuple[str, ParsedWebhook]]:
    """One part per item, named by its place in the body (or its kind and position)."""
    return [(getattr(item, "where", "") or f"item {i} ({type(item).__name__})", ParsedWebhook(items=(item,)))
            for i, item in enumerate(parsed.items)]


register_processor("whatsapp", Processor(parse=parse, apply=apply, split=split))
