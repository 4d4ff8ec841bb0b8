"""The events a conversation's first message starts, the same on every channel:
conversation.started, then lead.attributed with the lead source and the contact's
marketing consent (`opted_out`), so no ad or analytics destination hears of a customer
who said no, whichever channel they come back on; and, for channels that store a
message with plain INSERTs, the stored message's events and routing."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.conversations import consent, reactions as conversation_reactions
from hub.events import payloads
from hub.events.outbox import emit


def started_events(session: Session, conversation: Any, contact: Any, *, channel: Any, says: str | None = None,
                   new_contact: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """conversation.started and lead.attributed as (type, data), for a caller that writes
    them in a statement of its own (hub.events.outbox.emit_riding). `says`: the first
    message's own opt-out/opt-in keyword verdict, if the channel reads them;
    `new_contact`: the contact was created in this transaction (so it has no consent to read)."""
    data = {"conversation": payloads.conversation(session, conversation, known_channel=channel),
            "contact": payloads.contact(contact)}
    marketing = consent.marketing_contact(session, contact, says=says, new_contact=new_contact)
    return [("conversation.started", data),
            ("lead.attributed", {**data, "contact": marketing, "lead_source": conversation.lead_source})]


def emit_started(session: Session, conversation: Any, contact: Any, *, channel: Any, now: datetime,
                 says: str | None = None, new_contact: bool = False) -> None:
    """started_events(), emitted."""
    key = payloads.ordering_key(conversation)
    for type_, data in started_events(session, conversation, contact, channel=channel, says=says,
                                      new_contact=new_contact):
        emit(session, type_, data, now=now, ordering_key=key)


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
