"""The contacts and open conversations of a slice's recipients, found or made in a few
statements before the slice is queued. Queueing each message to its number looked up
(and created) the contact and the conversation in statements of its own, which was a
good part of the pump's time per recipient; queued to the conversation, the message
finds both in the session."""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.conversations.store import e164
from hub.events.outbox import emit
from hub.models import Contact, Conversation

_INSERT = {dialect.__name__.rsplit(".", 1)[-1]: {table: dialect.insert(table).on_conflict_do_nothing()
                                                 for table in (Contact.__table__, Conversation.__table__)}
           for dialect in (postgresql, sqlite)}
CHUNK = 500


def _chunks(values: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def open_conversations(session: Session, channel_id: int, phones: list[str], *,
                       now: datetime) -> dict[str, tuple[Conversation, Contact]]:
    """E.164 phone -> its contact's open conversation on the channel and the contact, for
    every phone that is a number (held by the caller while it queues: the session's
    identity map keeps unchanged objects only as long as someone does); missing contacts and conversations are created (a conflict
    with a concurrent webhook keeps the webhook's) and each new conversation emits
    conversation.started, as queueing to the number does."""
    inserts = _INSERT[session.get_bind().dialect.name]
    wa_ids = {p: p.lstrip("+") for p in phones if sum(ch.isdigit() for ch in p) >= 6 and p.lstrip("+").isdigit()}
    if not wa_ids:
        return {}
    digits = sorted(set(wa_ids.values()))
    contacts: dict[str, Contact] = {}
    for chunk in _chunks(digits):
        contacts.update((c.wa_id, c) for c in session.scalars(select(Contact).where(Contact.wa_id.in_(chunk))))
    missing = [d for d in digits if d not in contacts]
    if missing:
        session.execute(inserts[Contact.__table__], [
            {"wa_id": d, "user_id": None, "phone": e164(d), "name": "", "username": None, "created_at": now,
             "updated_at": now} for d in missing])
        for chunk in _chunks(missing):
            contacts.update((c.wa_id, c) for c in session.scalars(select(Contact).where(Contact.wa_id.in_(chunk))))
    by_contact = {c.id: c for c in contacts.values()}

    def opened() -> dict[int, Conversation]:
        found: dict[int, Conversation] = {}
        for chunk in _chunks(list(by_contact)):
            found.update((c.contact_id, c) for c in session.scalars(select(Conversation).where(
                Conversation.channel_id == channel_id, Conversation.contact_id.in_(chunk),
                Conversation.status == "open")))
        return found

    conversations = opened()
    new = [contact_id for contact_id in by_contact if contact_id not in conversations]
    if new:
        created = set(session.scalars(inserts[Conversation.__table__].returning(Conversation.__table__.c.id), [
            {"channel_id": channel_id, "contact_id": contact_id, "status": "open", "opened_at": now,
             "created_at": now, "updated_at": now} for contact_id in new]))
        conversations = opened()
        for contact_id in new:
            conversation = conversations.get(contact_id)
            if conversation is not None and conversation.id in created:  # not a concurrent webhook's
                emit(session, "conversation.started", {"conversation": payloads.conversation(session, conversation),
                                                       "contact": payloads.contact(by_contact[contact_id])},
                     now=now, ordering_key=payloads.ordering_key(conversation))
    return {phone: (conversations[contacts[d].id], contacts[d]) for phone, d in wa_ids.items()
            if contacts.get(d) is not None and contacts[d].id in conversations}
