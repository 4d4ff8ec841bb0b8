"""A contact's marketing word as the events of their conversations carry it.

Consent is per contact: the broadcasts room records it (hub.broadcasts.consent), while
the lower rooms that write a contact's events (a channel's ingest, a CRM's deal report)
only read it, here, so that no ad or analytics destination hears of a customer who said no.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from hub.events import payloads
from hub.models import Consent, Contact

OPTED_IN, OPTED_OUT = "opted_in", "opted_out"


def marketing_contact(session: Session, contact: Contact, *, says: str | None = None,
                      new_contact: bool = False) -> dict[str, Any]:
    """The contact's event payload with `opted_out`: whether they said no to marketing, so
    that ad and analytics destinations send nothing for them. `says`: the keyword verdict
    (OPTED_OUT / OPTED_IN) of the message being stored, whose consent is recorded only
    after its events are written. `new_contact`: created in this transaction, so nothing
    can have recorded a word of theirs yet (no query)."""
    if says is not None:
        opted_out = says == OPTED_OUT
    else:
        opted_out = False if new_contact else marketing_opted_out(session, contact.id)
    return {**payloads.contact(contact), "opted_out": opted_out}


def marketing_opted_out(session: Session, contact_id: int) -> bool:
    """Did the contact say no to marketing (a consent row, or an opt-out recorded only on
    the contact from before consents existed)? One round trip: it runs on the ingest of
    every new conversation."""
    said_no = exists().where(Consent.contact_id == contact_id, Consent.subscription == "marketing",
                             Consent.status == OPTED_OUT)
    return bool(session.scalar(select(or_(Contact.opted_out_at.is_not(None), said_no)).where(Contact.id == contact_id)))
