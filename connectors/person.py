"""The person behind an event's contact, for the CRM connectors.

A hub contact linked to another (a Telegram user who shared a WhatsApp contact's
phone, or an operator's merge) carries `person`: the canonical contact's identity
(docs/events.md). Keying the CRM contact on it gives one CRM contact per person with
each channel's conversation on its timeline. Pure functions: no I/O.
"""
from __future__ import annotations

from typing import Any, Mapping

from marshmallow import fields

# The same Settings field in every CRM connector (its texts are extracted for the
# admin's translations: hub/translations/babel.cfg).
NEW_CHANNEL_OPENS_DEAL = "new_channel_opens_deal"


def new_channel_opens_deal_field() -> fields.Boolean:
    return fields.Boolean(
        load_default=False,
        metadata={"label": "A known person's conversation on another channel opens a new deal",
                  "help": "For a contact linked to a person (a shared phone or an operator's merge). Off: the "
                          "person's open deal gets the new channel's conversation. On: it opens a new deal."},
    )


def linked(contact: Mapping[str, Any]) -> bool:
    """Is this contact another channel's (or a merged) contact of a person?"""
    person = contact.get("person")
    return isinstance(person, Mapping) and person.get("id") is not None and person["id"] != contact.get("id")


def as_person(contact: Mapping[str, Any]) -> Mapping[str, Any]:
    """The contact as the CRM should know it: the person's id, WhatsApp id, user id,
    phone and name (the contact's own where the person has none)."""
    if not linked(contact):
        return contact
    person = contact["person"]
    merged = dict(contact)
    merged.update(id=person["id"], wa_id=person.get("wa_id"), user_id=person.get("user_id"),
                  phone=person.get("phone") or contact.get("phone"), name=person.get("name") or contact.get("name"))
    return merged


def reuses_open_deal(contact: Mapping[str, Any], *, new_channel_opens_deal: bool, usual: bool) -> bool:
    """Does this contact's new conversation go to the person's open deal? `usual`: the
    connector's own rule for a customer's next conversation; a linked contact's follows
    the connector's `new_channel_opens_deal` instead."""
    if not linked(contact):
        return usual
    return not new_channel_opens_deal
