"""Contacts and conversations: found or created exactly once, even when two webhooks
about the same user race (unique keys plus a savepoint, then read the winner)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.models import Contact, Conversation, Message
from hub.phones import to_e164


def e164(digits: str | None) -> str | None:
    """WhatsApp ids are the phone without '+'; store the E.164 form when it parses, else
    the digits with a '+' (still one contact per id)."""
    if not digits:
        return None
    return to_e164(digits) or (digits if digits.startswith("+") else "+" + digits)


def find_contact(session: Session, *, wa_id: str | None, user_id: str | None) -> Contact | None:
    if wa_id:
        found = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if found is not None:
            return found
    if user_id:
        return session.scalar(select(Contact).where(Contact.user_id == user_id))
    return None


def upsert_contact(
    session: Session,
    *,
    wa_id: str | None,
    user_id: str | None,
    name: str = "",
    username: str | None = None,
    now: datetime,
) -> Contact:
    """The one contact for this WhatsApp user; refreshes what the user changed."""
    if not wa_id and not user_id:
        raise ValueError("a contact needs a wa_id or a business-scoped user id")
    contact = find_contact(session, wa_id=wa_id, user_id=user_id)
    if contact is None:
        try:
            with session.begin_nested():
                contact = Contact(wa_id=wa_id, user_id=user_id, phone=e164(wa_id), name=name or "",
                                  username=username, created_at=now, updated_at=now)
                session.add(contact)
                session.flush()
            return contact
        except IntegrityError:
            contact = find_contact(session, wa_id=wa_id, user_id=user_id)
            if contact is None:
                raise
    refresh_contact(contact, wa_id=wa_id, user_id=user_id, name=name, username=username)
    return contact


def refresh_contact(contact: Contact, *, wa_id: str | None, user_id: str | None, name: str = "",
                    username: str | None = None) -> None:
    """What WhatsApp now says about the user (a new name, a revealed phone) wins."""
    if wa_id and not contact.wa_id:
        contact.wa_id, contact.phone = wa_id, e164(wa_id)
    if user_id and not contact.user_id:
        contact.user_id = user_id
    if name and contact.name != name:
        contact.name = name
    if username and contact.username != username:
        contact.username = username


def find_for_message(session: Session, *, channel_id: int, wa_id: str | None, user_id: str | None,
                     wa_message_id: str) -> tuple[Contact | None, Conversation | None, bool]:
    """The sender's contact, their open conversation on this number and whether the
    message is already stored, in one round trip for the usual case (a known user)."""
    stored = select(Message.id).where(Message.wa_message_id == wa_message_id).scalar_subquery()
    who = Contact.wa_id == wa_id if wa_id else Contact.user_id == user_id
    row = session.execute(
        select(Contact, Conversation, stored)
        .outerjoin(Conversation, and_(Conversation.contact_id == Contact.id, Conversation.channel_id == channel_id,
                                      Conversation.status == "open"))
        .where(who)
    ).first()
    if row is not None:
        return row[0], row[1], row[2] is not None
    duplicate = session.scalar(select(Message.id).where(Message.wa_message_id == wa_message_id)) is not None
    return None, None, duplicate


def open_conversation(
    session: Session, *, channel_id: int, contact_id: int, now: datetime
) -> tuple[Conversation, bool]:
    """The open conversation of this contact on this number, or a new one (True)."""
    query = select(Conversation).where(
        Conversation.channel_id == channel_id,
        Conversation.contact_id == contact_id,
        Conversation.status == "open",
    )
    found = session.scalar(query)
    if found is not None:
        return found, False
    try:
        with session.begin_nested():
            conv = Conversation(channel_id=channel_id, contact_id=contact_id, status="open",
                                opened_at=now, created_at=now, updated_at=now)
            session.add(conv)
            session.flush()
        return conv, True
    except IntegrityError:
        found = session.scalar(query)
        if found is None:
            raise
        return found, False
