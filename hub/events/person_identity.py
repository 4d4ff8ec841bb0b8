"""The person behind a linked contact, added to the events that name the contact.

A contact linked to another (contacts.person_id, hub.conversations.persons) carries `person_id`; its
events also get `contact.person`: the canonical contact's identity, so a CRM connector
keys the CRM contact on the person (one CRM contact with every channel's conversation)
without reading the hub's database. Unlinked contacts cost nothing: no query.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Contact

_IDENTITY = select(Contact.id, Contact.wa_id, Contact.user_id, Contact.phone, Contact.name)


def identity(session: Session, person_id: int) -> dict[str, Any] | None:
    row = session.execute(_IDENTITY.where(Contact.id == person_id)).first()
    if row is None:
        return None
    return {"id": row.id, "wa_id": row.wa_id, "user_id": row.user_id, "phone": row.phone, "name": row.name}


def with_person(session: Session, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with `contact.person` filled in when its contact is linked to a person."""
    contact = data.get("contact")
    if not isinstance(contact, dict) or not contact.get("person_id") or "person" in contact:
        return data
    return {**data, "contact": {**contact, "person": identity(session, contact["person_id"])}}
