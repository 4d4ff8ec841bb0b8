"""An inbound message's writes, the same on every channel, in as few round trips as the
database allows: nearly every message moves its conversation, and on PostgreSQL a round
trip costs about as much as the rest of the work on it.

The message's INSERT carries its conversation's UPDATE and the webhook's raw row
(hub.events.raw_webhooks.take_pending_raw) as data-modifying CTEs; a message whose id
hub.conversations.store.find_for_message drew, as the transaction's first event, rides
with message.received too (and a new conversation's events, where the channel writes
them so), in the round trip that reads the events' subscribers. A returning customer's webhook is then three round trips
(read, write, commit), as few as keeping the raw body alone.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import Insert, bindparam, insert, update
from sqlalchemy.orm import Session

from hub.conversations.store import ContactRow, ConversationRow, Sender, update_conversation
from hub.events import payloads
from hub.events.outbox import emit_riding, is_first_event
from hub.events.raw_webhooks import RAW_COLUMNS, take_pending_raw
from hub.models import Conversation, Message, RawWebhook
from hub.platform.db import utcnow

INBOUND_COLUMNS = ("conversation_id", "wa_message_id", "direction", "type", "text", "payload", "status",
                   "sent_at", "reply_to", "error_code", "error_title", "attempts", "created_at", "updated_at")
_messages = Message.__table__
_conversations = Conversation.__table__
_raw_webhooks = RawWebhook.__table__
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id)


@dataclass(slots=True)
class NewMessage:
    """An inbound message to INSERT, with the attributes of a Message that the writes
    here, the event payloads and the keyword and attribution steps read: building an
    ORM Message on every webhook cost as much as parsing the body. `id` is set once
    the message is written."""

    conversation_id: int
    wa_message_id: str | None
    direction: str
    type: str
    text: str | None
    payload: dict[str, Any] | None
    status: str
    sent_at: datetime | None
    reply_to: str | None
    error_code: int | None
    error_title: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    template_name: str | None = None
    template_language: str | None = None
    template_category: str | None = None
    author_id: int | None = None


def can_ride(session: Session, sender: Sender) -> bool:
    """May the message be written with its message.received (insert_message_with_event)?
    PostgreSQL drew its id, and only the transaction's first event reads the subscribers."""
    return sender.next_message_id is not None and is_first_event(session)


def insert_message(session: Session, message: Message, conversation: ConversationRow,
                   changes: dict[str, Any]) -> None:
    """INSERT the message (not attached to the session; its id is set) and write its
    conversation's `changes`, in one statement on PostgreSQL, with the webhook's raw row
    when receive() still holds it.

    A concurrent delivery of the same message makes this fail on the unique key: the
    transaction rolls back, the webhook answers 500, the sender retries, and the retry
    finds the message stored."""
    postgres = session.get_bind().dialect.name == "postgresql"
    raw_row = take_pending_raw(session) if postgres else None
    if postgres and (changes or raw_row is not None):
        params = {f"message_{column}": getattr(message, column) for column in INBOUND_COLUMNS}
        if changes:
            params.update({f"touch_{column}": value for column, value in changes.items()})
            params.update(touch_id=conversation.id, touch_updated_at=utcnow())
        if raw_row is not None:
            params.update({f"raw_{column}": value for column, value in raw_row.items()})
        statement = _insert_message_touching(tuple(changes), with_raw=raw_row is not None)
        message.id = session.execute(statement, params).scalar_one()
        for column, value in changes.items():
            setattr(conversation, column, value)
    else:
        values = {column: getattr(message, column) for column in INBOUND_COLUMNS}
        message.id = session.execute(_INSERT_MESSAGE, values).scalar_one()
        update_conversation(session, conversation, changes)


@functools.cache
def _insert_message_touching(columns: tuple[str, ...], *, with_raw: bool = False) -> Insert:
    """The message's INSERT with its conversation's UPDATE of `columns` (and the raw
    webhook's INSERT) as data-modifying CTEs (PostgreSQL), built once per shape. In such
    a statement SQLAlchemy would match a parameter named like a column to that column of
    every table, and applies no column default or onupdate: so every value is an
    explicitly named parameter (message_<column>, touch_<column>, touch_id,
    raw_<column>), updated_at included."""
    values = {column: bindparam(f"message_{column}", type_=_messages.c[column].type) for column in INBOUND_COLUMNS}
    statement = insert(_messages).values(values).returning(_messages.c.id)
    if columns:  # nothing to touch when the message moves no timestamp of its conversation
        touch = update(_conversations).where(_conversations.c.id == bindparam("touch_id")).values(
            {column: bindparam(f"touch_{column}", type_=_conversations.c[column].type)
             for column in columns + ("updated_at",)})
        statement = statement.add_cte(touch.cte("touched_conversation"))
    if with_raw:
        raw = insert(_raw_webhooks).values(
            {column: bindparam(f"raw_{column}", type_=_raw_webhooks.c[column].type) for column in RAW_COLUMNS})
        statement = statement.add_cte(raw.cte("raw_webhook"))
    return statement


def insert_message_with_event(session: Session, channel: Any, contact: ContactRow, conversation: ConversationRow,
                              message: Message, changes: dict[str, Any], *, now: Any,
                              media_link: Callable[[int], str] | None,
                              before: Callable[[], tuple[tuple[str, dict[str, Any]], ...]] | None = None) -> None:
    """PostgreSQL, when can_ride(): the message (message.id set to the drawn id), its
    conversation's changes, the raw webhook row and message.received in ONE statement.
    `before()`: events (type, data) to write ahead of message.received in it (a new
    conversation's), built once the conversation shows the message's changes."""
    params = {f"message_{column}": getattr(message, column) for column in ("id", *INBOUND_COLUMNS)}
    if changes:
        params.update({f"touch_{column}": value for column, value in changes.items()})
        params.update(touch_id=conversation.id, touch_updated_at=utcnow())
    raw_row = take_pending_raw(session)
    if raw_row is not None:
        params.update({f"raw_{column}": value for column, value in raw_row.items()})
    for column, value in changes.items():
        setattr(conversation, column, value)
    emit_riding(session, "message.received", received_data(session, channel, contact, conversation, message,
                                                            media_link=media_link),
                now=now, ordering_key=payloads.ordering_key(conversation), before=before() if before else (),
                with_ctes=_riding_writes(tuple(changes), with_raw=raw_row is not None), params=params)


@functools.cache
def _riding_writes(columns: tuple[str, ...], *, with_raw: bool) -> tuple[Any, ...]:
    """The writes of insert_message_with_event, built once per shape (explicitly named
    parameters, as in _insert_message_touching)."""
    values = {column: bindparam(f"message_{column}", type_=_messages.c[column].type)
              for column in ("id", *INBOUND_COLUMNS)}
    writes: list[Any] = [insert(_messages).values(values)]
    if columns:
        writes.append(update(_conversations).where(_conversations.c.id == bindparam("touch_id")).values(
            {column: bindparam(f"touch_{column}", type_=_conversations.c[column].type)
             for column in columns + ("updated_at",)}))
    if with_raw:
        writes.append(insert(_raw_webhooks).values(
            {column: bindparam(f"raw_{column}", type_=_raw_webhooks.c[column].type) for column in RAW_COLUMNS}))
    return tuple(writes)


def received_data(session: Session, channel: Any, contact: ContactRow, conversation: ConversationRow,
                  message: Message, *, media_link: Callable[[int], str] | None) -> dict[str, Any]:
    """message.received's data."""
    return {
        "conversation": payloads.conversation(session, conversation, known_channel=channel),
        "contact": payloads.contact(contact),
        "message": payloads.message(session, message, media_link=media_link),
    }
