"""What the CRM connectors' person-merge tests send (tests/connectors/<crm>/test_person_merges.py):
a Telegram contact synced before it was linked to a person, the `contact.linked` /
`contact.unlinked` event that folds it, and delivery one event at a time."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.base import HubEvent


def telegram_contact(contact_id: int, person: dict[str, Any], *, linked: bool) -> dict[str, Any]:
    """The Telegram contact as its events show it; linked: it shared the person's phone."""
    contact = {"id": contact_id, "wa_id": None, "phone": None, "name": "Ana on Telegram", "username": "ana_tg",
               "user_id": "tg:42", "person_id": None}
    if linked:
        contact.update(phone=person["phone"], person_id=person["id"],
                       person={k: person[k] for k in ("id", "wa_id", "user_id", "phone", "name")})
    return contact


def merge_event(type_: str, contact_id: int, person: dict[str, Any], *, reason: str, at: datetime,
                merge_id: int = 7) -> HubEvent:
    """The merge `merge_id` of the Telegram contact into `person`, made (contact.linked) or undone."""
    when = at.isoformat().replace("+00:00", "Z")
    merge = {"id": merge_id, "reason": reason, "merged_at": when,
             "undone_at": None if type_ == "contact.linked" else when}
    contact = telegram_contact(contact_id, person, linked=type_ == "contact.linked")
    return HubEvent(f"evt-{type_}-{merge_id}", type_, 1, at, {"contact": contact, "person": person, "merge": merge},
                    ordering_key=f"contact:{person['id']}")


def deliver_each(connector: Any, events: list[HubEvent]) -> None:
    """One at a time (a wave holds one event per conversation); each must be done."""
    for event in events:
        outcome, = connector.deliver([event])
        assert outcome.status == "done", (event.type, outcome)
