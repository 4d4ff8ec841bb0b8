"""contact.updated for the CRM connectors: the rules every CRM applies, as pure functions.

The hub learned a contact's new name, phone or username (docs/events.md). The CRM
contact follows with two rules that keep a manager's work:
- the name is overwritten only while the CRM still shows the name the hub last wrote
  (remembered per CRM contact as a digest in the links store, else the name the hub had
  before the change, which is what the contact was created with);
- a new phone is added beside the CRM's phones, never in place of one.
Both are decided from what the CRM shows when the update is delivered, so a repeat of
the delivery finds the work done and writes nothing.

A contact the CRM does not have yet (its conversation.started is still on its way, or
retrying) is retried until it is there: the update is never lost. After GIVE_UP the
delivery ends as skipped (a contact no conversation ever brought to the CRM).
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Mapping

from connectors.base import HubEvent, LinkStore, Outcome
from connectors.person import as_person
from hub.shared.phones import to_e164

TYPE = "contact.updated"
GIVE_UP = timedelta(days=1)


class BadUpdate(ValueError):
    """An event that does not match docs/events.md (a hub bug)."""


def views(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """(the contact before the change, the contact now), each as the CRM knows it (its person)."""
    contact = data.get("contact")
    changes = data.get("changes")
    if not isinstance(contact, Mapping) or contact.get("id") is None:
        raise BadUpdate("event data lacks contact.id")
    if not isinstance(changes, Mapping) or not changes:
        raise BadUpdate("event data lacks changes")
    before = dict(contact)
    for key, change in changes.items():
        if not isinstance(change, Mapping) or "old" not in change:
            raise BadUpdate(f"event data changes.{key} lacks old")
        before[key] = change["old"]
    return as_person(before), as_person(contact)


def new_phone(data: Mapping[str, Any]) -> str | None:
    change = (data.get("changes") or {}).get("phone") or {}
    return to_e164(change.get("new")) if isinstance(change, Mapping) else None


def digest(name: str) -> str:
    """What the links store keeps of a name the hub wrote (its ids hold 64 characters)."""
    return hashlib.sha256(name.strip().encode()).hexdigest()


def name_to_write(crm_name: str | None, *, before: str, after: str, written: str | None) -> str | None:
    """`after` when the CRM still shows what the hub wrote (`written`, a digest, else
    `before`); None when the CRM shows `after` already or a manager renamed the contact."""
    shown = (crm_name or "").strip()
    if not after or shown == after.strip():
        return None
    hub_wrote = written == digest(shown) if written else shown == before.strip()
    return after if hub_wrote else None


def phone_to_add(crm_phones: list[str], data: Mapping[str, Any]) -> str | None:
    phone = new_phone(data)
    return phone if phone and phone not in crm_phones else None


def remember_name(links: LinkStore, entity_type: str, crm_id: str, name: str) -> None:
    links.set_many(entity_type, [(str(crm_id), "name", digest(name))])


def not_in_crm_yet(event: HubEvent, now: datetime, crm: str) -> Outcome:
    if now - event.occurred_at > GIVE_UP:
        return Outcome.done({"skipped": f"the contact never reached {crm}"})
    return Outcome.retry(f"the contact is not in {crm} yet (its conversation is still on its way); "
                         "the update is applied once it is")


def target(event: HubEvent, links: LinkStore, now: datetime,
           crm: str) -> tuple[Mapping[str, Any], Mapping[str, Any], str] | Outcome:
    """(before, after, the CRM contact's id) of a contact.updated whose contact is linked
    by its hub id; the Outcome instead when there is nothing to write (a malformed event,
    or a contact not in the CRM yet)."""
    try:
        before, after = views(event.data)
    except BadUpdate as exc:
        return Outcome.dead(f"{event.type} {event.id}: {exc}")
    crm_id = links.get("contact", str(after["id"]))
    if crm_id is None:
        return not_in_crm_yet(event, now, crm)
    return before, after, crm_id
