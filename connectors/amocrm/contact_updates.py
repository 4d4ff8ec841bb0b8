"""contact.updated -> the amoCRM contact (connectors/contact_updates.py has the rules).

The contact is read first (GET /api/v4/contacts/{id}); a PATCH /api/v4/contacts/{id}
then carries the new name (when amoCRM still shows the hub's) and the PHONE field with
every phone amoCRM has plus the new one (amoCRM replaces a field's values with the ones
sent). Nothing to change, nothing sent. The contact's link follows its new key (the
phone), so later events of the contact find the same amoCRM contact.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable, Mapping

from connectors import contact_updates as rules
from connectors.amocrm import mapping
from connectors.amocrm.client import AmoClient
from connectors.amocrm.errors import AmoError, NotFound
from connectors.base import HubEvent, LinkStore, Outcome

log = logging.getLogger(__name__)

WRITTEN_NAME = "amocrm.contact_name"  # amoCRM contact id -> digest of the name the hub last wrote


def phone_field(contact: Mapping[str, Any]) -> dict[str, Any] | None:
    for cf in contact.get("custom_fields_values") or []:
        if (cf.get("field_code") or "").upper() == "PHONE":
            return cf
    return None


def phone_values(contact: Mapping[str, Any], phone: str, enum_code: str) -> list[dict[str, Any]]:
    """The PHONE field's values as amoCRM has them, and `phone` after them."""
    kept = []
    for v in (phone_field(contact) or {}).get("values") or []:
        item: dict[str, Any] = {"value": v.get("value")}
        if v.get("enum_code"):
            item["enum_code"] = v["enum_code"]
        elif v.get("enum_id"):
            item["enum_id"] = v["enum_id"]
        kept.append(item)
    return [*kept, {"value": phone, "enum_code": enum_code}]


class ContactUpdates:
    def __init__(self, client: AmoClient, links: LinkStore, settings: Mapping[str, Any],
                 clock: Callable[[], datetime], failure: Callable[[AmoError], Outcome]):
        self.client = client
        self.links = links
        self.settings = settings
        self.clock = clock
        self.failure = failure

    def apply(self, event: HubEvent) -> Outcome:
        try:
            before, after = rules.views(event.data)
            old_key, new_key = mapping.contact_key(before), mapping.contact_key(after)
        except (rules.BadUpdate, mapping.PayloadError) as exc:
            return Outcome.dead(f"{event.type} {event.id}: {exc}")
        crm_id = self.links.get(*new_key) or self.links.get(*old_key)
        if crm_id is None:
            return rules.not_in_crm_yet(event, self.clock(), "amoCRM")
        try:
            return self._update(event, int(crm_id), before, after, new_key)
        except NotFound:
            return Outcome.done({"skipped": f"amoCRM contact {crm_id} is gone", "contact_id": int(crm_id)})
        except AmoError as exc:
            return self.failure(exc)

    def _update(self, event: HubEvent, crm_id: int, before: Mapping[str, Any], after: Mapping[str, Any],
                new_key: tuple[str, str]) -> Outcome:
        crm = self.client.get(f"/api/v4/contacts/{crm_id}") or {}
        body: dict[str, Any] = {}
        name = rules.name_to_write(crm.get("name"), before=mapping.contact_name(before),
                                   after=mapping.contact_name(after), written=self.links.get(WRITTEN_NAME, str(crm_id)))
        if name is not None:
            body["name"] = name
        phone = rules.phone_to_add(mapping.phones(crm), event.data)
        if phone is not None:
            body["custom_fields_values"] = [{"field_code": "PHONE", "values": phone_values(
                crm, phone, self.settings.get("phone_enum") or "MOB")}]
        if body:
            self.client.patch(f"/api/v4/contacts/{crm_id}", body)
        if name is not None or (crm.get("name") or "").strip() == mapping.contact_name(after).strip():
            rules.remember_name(self.links, WRITTEN_NAME, str(crm_id), mapping.contact_name(after))
        linked = int(self.links.put(new_key[0], new_key[1], "contact", str(crm_id)))
        if linked != crm_id:
            log.warning("hub contact %s: its new phone belongs to amoCRM contact %s, not %s (merge them in amoCRM "
                        "or in the inbox)", after.get("id"), linked, crm_id)
        kept = name is None and mapping.contact_name(before) != mapping.contact_name(after) and \
            (crm.get("name") or "").strip() != mapping.contact_name(after).strip()
        return Outcome.done({"contact_id": crm_id, "updated": sorted(body),
                             **({"kept": "the name a manager gave in amoCRM"} if kept else {})})
