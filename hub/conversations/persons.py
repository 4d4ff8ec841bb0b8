"""One person, several channels: linking a contact to the person another contact is,
and undoing it exactly.

A person is its canonical contact; every other contact of it names that one in
`person_id` (never a chain). Conversations stay on their own contacts, so undoing a
link only puts the `person_id`s (and a phone the link stored) back as they were; the
`contact_merges` row records what to put back. Events carry the person (hub.events.person_identity),
so CRM connectors put each channel's conversation on the person's CRM contact.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.events.outbox import emit
from hub.models import Contact
from hub.models.contacts import ContactMerge
from hub.shared.phones import to_e164

SHARED_PHONE = "shared_phone"
OPERATOR = "operator"


class MergeRefused(ValueError):
    """The link asked for cannot be made (or undone); the text says why."""


def person_of(contact: Contact) -> int:
    return contact.person_id or contact.id


def link(session: Session, contact: Contact, other: Contact, *, reason: str, now: datetime,
         author_id: int | None = None, phone: str | None = None) -> ContactMerge:
    """Make `contact` (and the contacts linked to it) the person `other` is. `phone`:
    a phone to store on `contact` (a shared Telegram contact's), put back on undo."""
    person = session.get(Contact, person_of(other))
    if person_of(contact) == person.id:
        raise MergeRefused("these contacts are already one person")
    members = session.scalars(select(Contact).where(Contact.person_id == contact.id)).all()
    moved: dict[str, Any] = {"contacts": {str(c.id): c.person_id for c in [contact, *members]}}
    for c in (contact, *members):
        c.person_id = person.id
    if phone and contact.phone != phone:
        moved["phone"] = {"before": contact.phone, "after": phone}
        contact.phone = phone
    contact.updated_at = now
    merge = ContactMerge(contact_id=contact.id, person_id=person.id, reason=reason, author_id=author_id,
                         moved=moved, merged_at=now)
    session.add(merge)
    session.flush()
    emit(session, "contact.linked", {"contact": payloads.contact(contact), "person": payloads.contact(person),
                                     "merge": _merge_payload(merge)}, now=now, ordering_key=f"contact:{person.id}")
    return merge


def undo(session: Session, merge: ContactMerge, *, now: datetime, by_id: int | None = None) -> None:
    """Put back what `merge` changed. Refused when it was undone before, or when a later
    link moved its contact elsewhere (undo that one first)."""
    if merge.undone_at is not None:
        raise MergeRefused("this merge was undone before")
    contact = session.get(Contact, merge.contact_id)
    if contact is None or contact.person_id != merge.person_id:
        raise MergeRefused("the contact was linked elsewhere since; undo that merge first")
    ids = [int(i) for i in merge.moved.get("contacts", {})]
    for c in session.scalars(select(Contact).where(Contact.id.in_(ids))).all():
        if c.person_id == merge.person_id:
            c.person_id = merge.moved["contacts"][str(c.id)]
    phone = merge.moved.get("phone")
    if phone and contact.phone == phone["after"]:
        contact.phone = phone["before"]
    contact.updated_at = now
    merge.undone_at, merge.undone_by_id = now, by_id
    session.flush()
    emit(session, "contact.unlinked", {"contact": payloads.contact(contact),
                                       "person": payloads.contact(session.get(Contact, merge.person_id)),
                                       "merge": _merge_payload(merge)}, now=now, ordering_key=f"contact:{merge.person_id}")


def _merge_payload(merge: ContactMerge) -> dict[str, Any]:
    return {"id": merge.id, "reason": merge.reason, "merged_at": payloads.iso(merge.merged_at),
            "undone_at": payloads.iso(merge.undone_at)}


def shared_phone_match(session: Session, contact: Contact, phone_text: str | None) -> tuple[str, Contact] | None:
    """The phone (E.164) a customer shared as their own, and the WhatsApp contact that
    has it, when that is another person."""
    phone = to_e164(phone_text)
    if phone is None:
        return None
    other = session.scalar(select(Contact).where(Contact.phone == phone, Contact.wa_id.is_not(None),
                                                 Contact.id != contact.id).order_by(Contact.id).limit(1))
    if other is None or person_of(other) == person_of(contact):
        return None
    return phone, other


def link_shared_phone(session: Session, contact_id: int, phone_text: str | None, *, now: datetime) -> ContactMerge | None:
    """A customer shared their own phone: link them to the WhatsApp contact with it."""
    contact = session.get(Contact, contact_id)
    match = shared_phone_match(session, contact, phone_text)
    if match is None:
        return None
    phone, other = match
    return link(session, contact, other, reason=SHARED_PHONE, now=now, phone=phone)
