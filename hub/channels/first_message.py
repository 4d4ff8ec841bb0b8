"""The events a conversation's first message starts, the same on every channel:
conversation.started, then lead.attributed with the lead source and the contact's
marketing consent (`opted_out`), so no ad or analytics destination hears of a customer
who said no, whichever channel they come back on."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub import payloads
from hub.broadcasts import consent
from hub.events import emit


def emit_started(session: Session, conversation: Any, contact: Any, *, channel: Any, now: datetime,
                 says: str | None = None) -> None:
    """`says`: the first message's own opt-out/opt-in keyword verdict, if the channel reads them."""
    key = payloads.ordering_key(conversation)
    data = {"conversation": payloads.conversation(session, conversation, known_channel=channel),
            "contact": payloads.contact(contact)}
    emit(session, "conversation.started", data, now=now, ordering_key=key)
    emit(session, "lead.attributed", {**data, "contact": consent.marketing_contact(session, contact, says=says),
                                      "lead_source": conversation.lead_source}, now=now, ordering_key=key)
