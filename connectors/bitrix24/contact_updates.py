"""contact.updated -> the Bitrix24 contact (connectors/contact_updates.py has the rules).

crm.contact.get first; then one crm.contact.update with NAME / LAST_NAME split as the
contact was created (mapping.contact_fields), when Bitrix24 still shows the hub's name,
and the new phone as a PHONE item without an ID, which Bitrix24 adds beside the
contact's phones (an item with an ID would change that phone). Nothing to change,
nothing sent.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from connectors import contact_updates as rules
from connectors.base import HubEvent, LinkStore, Outcome
from connectors.bitrix24 import mapping
from connectors.bitrix24.errors import AuthFailed, Bitrix24Error, MethodError, Transient

WRITTEN_NAME = "bitrix24.contact_name"  # Bitrix24 contact id -> digest of the name the hub last wrote
WAIT_SECONDS = 60


def name_parts(contact: Mapping[str, Any]) -> tuple[str, str]:
    """(NAME, LAST_NAME) as mapping.contact_fields writes them for a new contact."""
    fields = mapping.contact_fields(dict(contact), mapping.Options())
    return fields["NAME"], fields.get("LAST_NAME", "")


def shown(first: Any, last: Any) -> str:
    return " ".join(p for p in (str(first or "").strip(), str(last or "").strip()) if p)


class ContactUpdates:
    def __init__(self, client: Any, links: LinkStore, clock: Callable[[], datetime]):
        self.client = client
        self.links = links
        self.clock = clock

    def deliver(self, events: list[HubEvent]) -> list[Outcome]:
        return [self._one(e) for e in events]

    def _one(self, event: HubEvent) -> Outcome:
        found = rules.target(event, self.links, self.clock(), "Bitrix24")
        if isinstance(found, Outcome):
            return found
        before, after, crm_id = found
        try:
            return self._update(event, crm_id, before, after)
        except AuthFailed as exc:
            return Outcome.wait(f"Bitrix24 refused the connector's credentials ({exc.summary()})",
                                retry_at=self.clock() + timedelta(seconds=WAIT_SECONDS))
        except Transient as exc:
            return Outcome.retry(exc.summary(), retry_at=exc.retry_at)
        except MethodError as exc:
            if "not found" in exc.description.lower():
                return Outcome.done({"skipped": f"Bitrix24 contact {crm_id} is gone", "contact_id": crm_id})
            return Outcome.dead(f"Bitrix24 refused {event.type}: {exc.summary()}")
        except Bitrix24Error as exc:
            return Outcome.retry(exc.summary())

    def _update(self, event: HubEvent, crm_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Outcome:
        crm = self.client.call("crm.contact.get", {"id": crm_id}) or {}
        now_shown = shown(crm.get("NAME"), crm.get("LAST_NAME"))
        wanted = name_parts(after)
        name = rules.name_to_write(now_shown, before=shown(*name_parts(before)), after=shown(*wanted),
                                   written=self.links.get(WRITTEN_NAME, crm_id))
        fields: dict[str, Any] = {}
        if name is not None:
            fields.update(NAME=wanted[0], LAST_NAME=wanted[1])
        phone = rules.phone_to_add(mapping.phones_of(crm), event.data)
        if phone is not None:
            fields["PHONE"] = [{"VALUE": phone, "VALUE_TYPE": "MOBILE"}]
        if fields:
            self.client.call("crm.contact.update", {"id": crm_id, "fields": fields})
        if name is not None or now_shown == shown(*wanted):
            rules.remember_name(self.links, WRITTEN_NAME, crm_id, shown(*wanted))
        kept = name is None and shown(*name_parts(before)) != shown(*wanted) and now_shown != shown(*wanted)
        return Outcome.done({"contact_id": crm_id, "updated": sorted(fields),
                             **({"kept": "the name a manager gave in Bitrix24"} if kept else {})})
