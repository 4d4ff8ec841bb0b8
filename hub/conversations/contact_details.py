"""An operator's edit of a contact's name and phone, shared by the inbox's contact card
and PATCH /api/v1/contacts/<id>: the same checks, the same write, the same event."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.conversations.store import detail_changes, emit_contact_updated
from hub.models import Contact
from hub.shared.phones import to_e164

NAME_MAX = 256
PHONE_MAX = 32


def problems(*, name: str | None, phone: str | None) -> dict[str, str]:
    """{field: what is wrong} for the values given (None = not changed); empty when fine."""
    found: dict[str, str] = {}
    if name is None and phone is None:
        found["name"] = "give a name or a phone to change"
    if name is not None:
        if not name.strip():
            found["name"] = "the name cannot be blank"
        elif len(name) > NAME_MAX:
            found["name"] = f"at most {NAME_MAX} characters"
    if phone is not None:
        if len(phone) > PHONE_MAX:
            found["phone"] = f"at most {PHONE_MAX} characters"
        elif to_e164(phone) is None:
            found["phone"] = "not a phone number in international form (+ and the country code)"
    return found


def edit(session: Session, contact: Contact, *, name: str | None = None, phone: str | None = None,
         now: datetime) -> dict[str, dict[str, Any]]:
    """Write the checked values. A name given is the operator's from now on, so the
    channels' profile names no longer replace it; the phone is kept in E.164.
    contact.updated goes out when something really changed; returns what did."""
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = name.strip()
        contact.name_by_operator = True
    if phone is not None:
        wanted["phone"] = to_e164(phone)
    changed = detail_changes(contact, wanted)
    if changed:
        for key, value in wanted.items():
            setattr(contact, key, value)
        contact.updated_at = now
        session.flush()
        emit_contact_updated(session, contact, changed, now=now)
    return changed
