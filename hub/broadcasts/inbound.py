"""Customer messages that are opt-out or opt-in keywords, applied on ingest in the
webhook's own transaction, answered with a confirmation, and WhatsApp's own
marketing-preference webhook (the user pressed "Stop promotions")."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.broadcasts import consent, keywords
from hub.channels.base import Outgoing, SendRefused
from hub.models import Contact, Conversation, Message
from hub.models.broadcasts import SUBSCRIPTIONS


def keyword_of(text: str | None, config: Any) -> str | None:
    """What a customer text asks for: "opted_out" (a stop keyword), "opted_in" (a start
    keyword) or None. Pure, so the ingest knows it before the message's events are written."""
    settings = config.broadcasts
    if keywords.matches(text, settings.stop_keywords):
        return consent.OPTED_OUT
    if keywords.matches(text, settings.start_keywords):
        return consent.OPTED_IN
    return None


def customer_text(session: Session, message: Message, *, now: datetime, config: Any,
                  says: Any = ...) -> str | None:
    """Act on a stored inbound text if it is a keyword; returns "opted_out" / "opted_in".
    `says`: keyword_of(message.text), when the caller has it already."""
    settings = config.broadcasts
    word = keyword_of(message.text, config) if says is ... else says
    if word is None:
        return None
    stop = word == consent.OPTED_OUT
    conversation = session.get(Conversation, message.conversation_id)
    contact = session.get(Contact, conversation.contact_id)
    said = (message.text or "").strip()
    if stop:
        changed = consent.opt_out_everything(session, contact, source="keyword", detail=f"wrote {said!r}",
                                             at=message.sent_at, now=now)
        if changed and settings.stop_reply:
            _reply(session, conversation, settings.stop_reply, now=now, config=config)
        return "opted_out"
    for subscription in SUBSCRIPTIONS:
        consent.record(session, contact, subscription, consent.OPTED_IN, source="keyword",
                       detail=f"wrote {said!r}", at=message.sent_at, now=now)
    return "opted_in"


def _reply(session: Session, conversation: Conversation, text: str, *, now: datetime, config: Any) -> None:
    from hub.channels.sending import queue

    try:
        queue(session, Outgoing(kind="text", content={"body": text}, conversation_id=conversation.id),
              now=now, config=config)
    except SendRefused:
        pass  # e.g. a channel that cannot reach them: the opt-out itself stands


def marketing_preference(session: Session, contact: Contact, value: str, *, detail: str, at: datetime,
                         now: datetime) -> bool:
    """WhatsApp's user_preferences webhook (marketing_messages: stop / resume)."""
    if value == "stop":
        changed = consent.record(session, contact, "marketing", consent.OPTED_OUT, source="whatsapp_preference",
                                 detail=detail, at=at, now=now)
        return changed
    if value in ("resume", "signup"):
        return consent.record(session, contact, "marketing", consent.OPTED_IN, source="whatsapp_preference",
                              detail=detail, at=at, now=now)
    return False
