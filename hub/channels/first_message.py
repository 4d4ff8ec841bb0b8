"""The events a conversation's first message starts, the same on every channel:
conversation.started, then lead.attributed with the lead source and the contact's
marketing consent (`opted_out`), so no ad or analytics destination hears of a customer
who said no, whichever channel they come back on; and, for channels that store a
message with plain INSERTs, the stored message's events and routing."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.conversations import reactions as conversation_reactions
from hub.events import payloads
from hub.broadcasts import consent
from hub.events.outbox import emit


def emit_started(session: Session, conversation: Any, contact: Any, *, channel: Any, now: datetime,
                 says: str | None = None) -> None:
    """`says`: the first message's own opt-out/opt-in keyword verdict, if the channel reads them."""
    key = payloads.ordering_key(conversation)
    data = {"conversation": payloads.conversation(session, conversation, known_channel=channel),
            "contact": payloads.contact(contact)}
    emit(session, "conversation.started", data, now=now, ordering_key=key)
    emit(session, "lead.attributed", {**data, "contact": consent.marketing_contact(session, contact, says=says),
                                      "lead_source": conversation.lead_source}, now=now, ordering_key=key)


def emit_stored(session: Session, conversation: Any, contact: Any, message: Any, *, channel: Any, started: bool,
                first_text: str, now: datetime, media_link: Any = None) -> None:
    """A stored inbound message's events (the first message's too) and, for a new
    conversation, routing."""
    if started:
        emit_started(session, conversation, contact, channel=channel, now=now)
    emit(session, "message.received", {
        "conversation": payloads.conversation(session, conversation, known_channel=channel),
        "contact": payloads.contact(contact),
        "message": payloads.message(session, message, media_link=media_link),
    }, now=now, ordering_key=payloads.ordering_key(conversation))
    if started:
        conversation_reactions.started(session, conversation.id, first_text=first_text, now=now)
