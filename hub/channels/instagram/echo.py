"""The account's own messages as Meta echoes them (`is_echo`): a reply someone typed in
the Instagram app lands on the customer's conversation as an outbound message, so the
timeline is whole.

An echo of a message the hub sent itself is the same mid the sender recorded
(`ig:<mid>`) and changes nothing; should the echo arrive before the sender has recorded
the mid, the sender drops the echo's row when it does (sender.py), so a hub send is
never shown twice. An echo is marked `payload.instagram.sent_from` "instagram_app", has
no author and emits no message.sent: it is not a hub send, and it neither opens nor
refreshes a window (only the customer's messages do).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.channels.instagram.types import InstagramEvent
from hub.conversations.store import find_contact_row
from hub.models import Conversation, Message

log = logging.getLogger(__name__)
SENT_FROM_APP = "instagram_app"


def store_echo(session: Session, channel: Any, event: InstagramEvent, *, key: str, payload: dict[str, Any],
               now: datetime) -> Message | None:
    """The echo as an outbound message of the customer's latest conversation on the
    account; None when its mid is known (a hub send, or stored before) or the hub has
    no conversation with that customer (kept in the raw webhook only)."""
    if session.scalar(select(Message.id).where(Message.wa_message_id == key)) is not None:
        return None
    contact = find_contact_row(session, wa_id=None, user_id=event.contact_key)
    conversation = None if contact is None else session.scalar(
        select(Conversation).where(Conversation.channel_id == channel.id, Conversation.contact_id == contact.id)
        .order_by(Conversation.opened_at.desc(), Conversation.id.desc()).limit(1))
    if conversation is None:
        log.info("instagram echo %s is for a customer the hub has no conversation with", event.mid)
        return None
    at = event.timestamp
    message = Message(conversation_id=conversation.id, wa_message_id=key, direction="out", type=event.type,
                      text=event.text, payload={**payload, "instagram": {**payload.get("instagram", {}),
                                                                        "sent_from": SENT_FROM_APP}},
                      status="sent", sent_at=at, accepted_at=at, attempts=0, created_at=now, updated_at=now,
                      reply_to=f"ig:{event.reply_to_mid}" if event.reply_to_mid else None)
    session.add(message)
    if conversation.last_message_at is None or at > conversation.last_message_at:
        conversation.last_message_at = at
    session.flush()
    return message


def drop_echo_of(session: Session, key: str, sent_id: int) -> None:
    """The sender learnt `key` for message `sent_id`: an echo already stored under that
    key was this very send, arrived first, and goes."""
    echo = session.scalar(select(Message).where(Message.wa_message_id == key, Message.id != sent_id))
    if echo is not None and is_echo(echo):
        session.execute(delete(Message).where(Message.id == echo.id))
        session.flush()


def is_echo(message: Message) -> bool:
    return message.direction == "out" and ((message.payload or {}).get("instagram") or {}).get("sent_from") \
        == SENT_FROM_APP
