"""Contacts and conversations: found or created exactly once, even when two webhooks
about the same user race (unique keys: the loser's INSERT does nothing, and it reads the
winner's row).

Every inbound message passes through here, so the ingest works on plain rows
(ContactRow, ConversationRow) with Core statements built once: the ORM's loading and
unit of work cost more than the rest of a webhook. The ORM forms (upsert_contact,
open_conversation) are for the rest of the hub and share the same creation code.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.events.outbox import emit
from hub.models import Contact, Conversation, Message
from hub.shared.phones import to_e164

_contacts = Contact.__table__
_conversations = Conversation.__table__
_messages = Message.__table__


def e164(digits: str | None) -> str | None:
    """WhatsApp ids are the phone without '+'; store the E.164 form when it parses, else
    the digits with a '+' (still one contact per id)."""
    if not digits:
        return None
    return to_e164(digits) or (digits if digits.startswith("+") else "+" + digits)


@dataclass
class ContactRow:
    """The columns of a contact that the ingest reads and the event payloads show."""

    id: int
    wa_id: str | None
    user_id: str | None
    phone: str | None
    name: str
    username: str | None
    person_id: int | None = None  # the canonical contact of its person (hub.conversations.persons)
    unreachable_at: datetime | None = None  # a channel said messages no longer reach them
    name_by_operator: bool = False  # an operator named them: profile names do not replace it


@dataclass
class ConversationRow:
    """The columns of a conversation that the ingest reads, changes and shows in events."""

    id: int
    channel_id: int
    contact_id: int
    status: str
    assignee_id: int | None
    opened_at: datetime
    closed_at: datetime | None
    lead_source: dict[str, Any] | None
    last_inbound_at: datetime | None
    last_message_at: datetime | None
    ctwa_entry_at: datetime | None


class Sender(NamedTuple):
    contact: ContactRow | None
    conversation: ConversationRow | None  # open, on the channel asked about
    duplicate: bool  # the message is already stored
    # PostgreSQL: an id drawn for the message from its sequence in the same round trip,
    # so that the message and its events can be written in one statement.
    next_message_id: int | None = None


def _columns(table, row_type) -> list:
    return [table.c[f.name] for f in fields(row_type)]


CONTACT_COLUMNS = _columns(_contacts, ContactRow)
CONVERSATION_COLUMNS = _columns(_conversations, ConversationRow)

# Statements built once: building one costs about as much as running it. An UPDATE
# without values() sets the columns named by the parameters it is executed with.
_UPDATE_CONTACT = update(_contacts).where(_contacts.c.id == bindparam("row_id"))
_UPDATE_CONVERSATION = update(_conversations).where(_conversations.c.id == bindparam("row_id"))
_CONTACT_BY = {key: select(*CONTACT_COLUMNS).where(_contacts.c[key] == bindparam("key"))
               for key in ("wa_id", "user_id")}
_OPEN_CONVERSATION = select(*CONVERSATION_COLUMNS).where(
    _conversations.c.channel_id == bindparam("channel_id"), _conversations.c.contact_id == bindparam("contact_id"),
    _conversations.c.status == "open")


# What the sender query reads of the open conversation: not its channel, contact and
# status, which the query's own conditions fix (every column read costs time on each
# webhook, in the driver and in SQLAlchemy).
_KNOWN_OF_OPEN = ("channel_id", "contact_id", "status")
SENDER_CONVERSATION_FIELDS = tuple(f.name for f in fields(ConversationRow) if f.name not in _KNOWN_OF_OPEN)


def _sender_query(key: str, *, draw_id: bool = False):
    """Contact by `key`, its open conversation on the channel, and whether the message
    is stored, in one round trip; `draw_id` (PostgreSQL): and the next message id. The
    row comes back for an unknown sender too (from a one-row source, the contact and
    conversation columns NULL), so that a new customer's first message also learns in
    that round trip whether it is stored already."""
    stored = select(_messages.c.id).where(_messages.c.wa_message_id == bindparam("wa_message_id")).scalar_subquery()
    open_here = and_(_conversations.c.contact_id == _contacts.c.id,
                     _conversations.c.channel_id == bindparam("channel_id"), _conversations.c.status == "open")
    extra = [func.nextval(func.pg_get_serial_sequence("messages", "id"))] if draw_id else []
    one_row = select(literal_column("1").label("one")).subquery("one_row")
    conversation_columns = [_conversations.c[name] for name in SENDER_CONVERSATION_FIELDS]
    return (select(*CONTACT_COLUMNS, *conversation_columns, *extra, stored)
            .select_from(one_row.outerjoin(_contacts, _contacts.c[key] == bindparam("key"))
                         .outerjoin(_conversations, open_here)))


_SENDER_BY = {(key, draw): _sender_query(key, draw_id=draw) for key in ("wa_id", "user_id") for draw in (False, True)}


# INSERT ... ON CONFLICT DO NOTHING RETURNING (the syntax is the same on both databases,
# the construct is per dialect): no row back means a unique key already holds the row,
# e.g. a concurrent webhook about the same user won the race.
_INSERT_CONTACT = {
    "postgresql": postgresql.insert(_contacts).on_conflict_do_nothing().returning(*CONTACT_COLUMNS),
    "sqlite": sqlite.insert(_contacts).on_conflict_do_nothing().returning(*CONTACT_COLUMNS),
}
_INSERT_CONVERSATION = {
    "postgresql": postgresql.insert(_conversations).on_conflict_do_nothing().returning(*CONVERSATION_COLUMNS),
    "sqlite": sqlite.insert(_conversations).on_conflict_do_nothing().returning(*CONVERSATION_COLUMNS),
}


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def find_contact(session: Session, *, wa_id: str | None, user_id: str | None) -> Contact | None:
    if wa_id:
        found = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if found is not None:
            return found
    if user_id:
        return session.scalar(select(Contact).where(Contact.user_id == user_id))
    return None


def find_contact_row(session: Session, *, wa_id: str | None, user_id: str | None) -> ContactRow | None:
    for key, value in (("wa_id", wa_id), ("user_id", user_id)):
        if value:
            row = session.execute(_CONTACT_BY[key], {"key": value}).first()
            if row is not None:
                return ContactRow(*row)
    return None


def contact_changes(contact: ContactRow, *, wa_id: str | None, user_id: str | None, name: str = "",
                    username: str | None = None) -> dict[str, Any]:
    """What WhatsApp now says about the user (a new name, a revealed phone) wins, except
    over a name an operator gave."""
    changes: dict[str, Any] = {}
    if wa_id and not contact.wa_id:
        changes.update(wa_id=wa_id, phone=e164(wa_id))
    if user_id and not contact.user_id:
        changes["user_id"] = user_id
    if name and contact.name != name and not contact.name_by_operator:
        changes["name"] = name
    if username and contact.username != username:
        changes["username"] = username
    return changes


# What a CRM shows of a contact: a change to one of these emits contact.updated.
DETAILS = ("name", "phone", "username")


def detail_changes(contact: Any, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{field: {"old", "new"}} for the name, phone and username `changes` really change."""
    return {key: {"old": getattr(contact, key), "new": changes[key]} for key in DETAILS
            if key in changes and (changes[key] or None) != (getattr(contact, key) or None)}


def emit_contact_updated(session: Session, contact: Any, changed: dict[str, dict[str, Any]], *,
                         now: datetime) -> None:
    """contact.updated for `contact` (already showing the new values), ordered with the
    person's contact.linked / unlinked: the CRM connectors bring the CRM contact up to date."""
    if changed:
        emit(session, "contact.updated", {"contact": payloads.contact(contact), "changes": changed},
             now=now, ordering_key=f"contact:{getattr(contact, 'person_id', None) or contact.id}")


def update_contact(session: Session, contact: ContactRow, changes: dict[str, Any], *,
                   now: datetime | None = None, announce: bool = True) -> None:
    """Write `changes` to the row and to `contact`; updated_at follows the column's
    onupdate unless `changes` names it (ContactRow does not carry it). A new name, phone
    or username emits contact.updated (at `now`, else at `changes["updated_at"]`), unless
    `announce` is False: a contact created in the same transaction, whose first events
    show it as it is now."""
    if changes:
        changed = detail_changes(contact, changes) if announce else {}
        session.execute(_UPDATE_CONTACT, {"row_id": contact.id, **changes})
        for name, value in changes.items():
            if hasattr(contact, name):
                setattr(contact, name, value)
        if changed:
            at = now or changes.get("updated_at")
            if at is None:
                raise ValueError("a change to a contact's name, phone or username needs the time it happened")
            emit_contact_updated(session, contact, changed, now=at)


def refresh_contact(session: Session, contact: ContactRow, *, wa_id: str | None, user_id: str | None,
                    name: str = "", username: str | None = None, now: datetime) -> None:
    update_contact(session, contact, contact_changes(contact, wa_id=wa_id, user_id=user_id, name=name,
                                                     username=username), now=now)


def ensure_contact(session: Session, *, wa_id: str | None, user_id: str | None, name: str = "",
                   username: str | None = None, now: datetime) -> ContactRow:
    """The one contact for this WhatsApp user, created when there is none; refreshes what
    the user changed."""
    if not wa_id and not user_id:
        raise ValueError("a contact needs a wa_id or a business-scoped user id")
    contact = find_contact_row(session, wa_id=wa_id, user_id=user_id)
    if contact is None:
        contact, created = insert_contact_row(session, wa_id=wa_id, user_id=user_id, name=name,
                                              username=username, now=now)
        if created:
            return contact
    refresh_contact(session, contact, wa_id=wa_id, user_id=user_id, name=name, username=username, now=now)
    return contact


def insert_contact_row(session: Session, *, wa_id: str | None, user_id: str | None, name: str = "",
                       username: str | None = None, now: datetime) -> tuple[ContactRow, bool]:
    """The contact for a user no contact was found for, INSERTed without looking again:
    (the row, True) when this transaction created it, so it has no consent and no
    conversation yet; (a concurrent webhook's row, False) when that one won the race,
    not yet refreshed with this message's profile."""
    if not wa_id and not user_id:
        raise ValueError("a contact needs a wa_id or a business-scoped user id")
    created = session.execute(_INSERT_CONTACT[_dialect(session)], {
        "wa_id": wa_id, "user_id": user_id, "phone": e164(wa_id), "name": name or "", "username": username,
        "created_at": now, "updated_at": now}).first()
    if created is not None:
        return ContactRow(*created), True
    contact = find_contact_row(session, wa_id=wa_id, user_id=user_id)  # a concurrent webhook's
    if contact is None:
        raise LookupError("a new contact conflicts on a unique key but cannot be read")
    return contact, False


def upsert_contact(session: Session, *, wa_id: str | None, user_id: str | None, name: str = "",
                   username: str | None = None, now: datetime) -> Contact:
    """ensure_contact(), as an ORM object for callers that go on working with it."""
    row = ensure_contact(session, wa_id=wa_id, user_id=user_id, name=name, username=username, now=now)
    return session.get(Contact, row.id, populate_existing=True)


def find_for_message(session: Session, *, channel_id: int, wa_id: str | None, user_id: str | None,
                     wa_message_id: str) -> Sender:
    """The sender's contact, their open conversation on this number and whether the
    message is already stored, in one round trip (on PostgreSQL with an id drawn for
    the message)."""
    key, value = ("wa_id", wa_id) if wa_id else ("user_id", user_id)
    draw = _dialect(session) == "postgresql"
    row = session.execute(_SENDER_BY[key, draw], {"key": value, "channel_id": channel_id,
                                                  "wa_message_id": wa_message_id}).first()
    split = len(CONTACT_COLUMNS)
    end = split + len(SENDER_CONVERSATION_FIELDS)
    if row[0] is None:  # no contact by that key
        return Sender(None, None, row[-1] is not None, row[end] if draw else None)
    contact = ContactRow(*row[:split])
    conversation = None
    if row[split] is not None:
        conversation = ConversationRow(channel_id=channel_id, contact_id=contact.id, status="open",
                                       **dict(zip(SENDER_CONVERSATION_FIELDS, row[split:end])))
    return Sender(contact, conversation, row[-1] is not None, row[end] if draw else None)


def update_conversation(session: Session, conversation: ConversationRow, changes: dict[str, Any]) -> None:
    """Write `changes` to the row and to `conversation`; updated_at follows the column's
    onupdate."""
    if changes:
        session.execute(_UPDATE_CONVERSATION, {"row_id": conversation.id, **changes})
        for name, value in changes.items():
            setattr(conversation, name, value)


def open_conversation_row(session: Session, *, channel_id: int, contact_id: int, now: datetime,
                          new_contact: bool = False) -> tuple[ConversationRow, bool]:
    """The open conversation of this contact on this number, or a new one (True).
    `new_contact`: the contact was created in this transaction, so there is none to
    look for (one round trip fewer on a new customer's first message)."""
    where = {"channel_id": channel_id, "contact_id": contact_id}
    found = None if new_contact else session.execute(_OPEN_CONVERSATION, where).first()
    if found is None:
        created = session.execute(_INSERT_CONVERSATION[_dialect(session)], {
            **where, "status": "open", "opened_at": now, "created_at": now, "updated_at": now}).first()
        if created is not None:
            return ConversationRow(*created), True
        found = session.execute(_OPEN_CONVERSATION, where).first()  # a concurrent webhook's
        if found is None:
            raise LookupError(f"conversation of contact {contact_id} conflicts on a unique key but cannot be read")
    return ConversationRow(*found), False


def open_conversation(
    session: Session, *, channel_id: int, contact_id: int, now: datetime
) -> tuple[Conversation, bool]:
    """open_conversation_row(), as an ORM object for callers that go on working with it."""
    row, started = open_conversation_row(session, channel_id=channel_id, contact_id=contact_id, now=now)
    return session.get(Conversation, row.id, populate_existing=True), started
