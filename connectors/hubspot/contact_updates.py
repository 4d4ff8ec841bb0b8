"""contact.updated -> the HubSpot contact (connectors/contact_updates.py has the rules).

GET /crm/v3/objects/contacts/{id} (firstname, lastname, phone, mobilephone) first; then
one PATCH /crm/v3/objects/contacts/{id} with firstname / lastname split as the contact
was created (mapping.contact_properties), when HubSpot still shows the hub's name, and
the new phone in `phone` when that is empty, else in `mobilephone` when that is empty:
a phone HubSpot has is never overwritten (with both taken the new one is left out, and
the outcome says so). Nothing to change, nothing sent.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Callable, Mapping

from connectors import contact_updates as rules
from connectors.base import HubEvent, LinkStore, Outcome
from connectors.hubspot import mapping
from connectors.hubspot.errors import HubSpotError, NotFound, Unavailable

WRITTEN_NAME = "hubspot.contact_name"  # HubSpot contact id -> digest of the name the hub last wrote
READ = "firstname,lastname,phone,mobilephone"


def name_parts(contact: Mapping[str, Any]) -> tuple[str, str]:
    return mapping.split_name(contact.get("name") or contact.get("username"))


def shown(first: Any, last: Any) -> str:
    return " ".join(p for p in (str(first or "").strip(), str(last or "").strip()) if p)


class ContactUpdates:
    def __init__(self, client: Any, links: LinkStore, clock: Callable[[], datetime],
                 failure: Callable[[Exception], Outcome]):
        self.client = client
        self.links = links
        self.clock = clock
        self.failure = failure

    def apply(self, event: HubEvent) -> Outcome:
        found = rules.target(event, self.links, self.clock(), "HubSpot")
        if isinstance(found, Outcome):
            return found
        before, after, crm_id = found
        try:
            return self._update(event, crm_id, before, after)
        except NotFound:
            return Outcome.done({"skipped": f"HubSpot contact {crm_id} is gone", "contact_id": crm_id})
        except (HubSpotError, Unavailable) as exc:
            return self.failure(exc)

    def _update(self, event: HubEvent, crm_id: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Outcome:
        path = f"/crm/v3/objects/contacts/{crm_id}"
        crm = (self.client.request("GET", path, params={"properties": READ}) or {}).get("properties") or {}
        now_shown = shown(crm.get("firstname"), crm.get("lastname"))
        wanted = name_parts(after)
        name = rules.name_to_write(now_shown, before=shown(*name_parts(before)), after=shown(*wanted),
                                   written=self.links.get(WRITTEN_NAME, crm_id))
        props: dict[str, str] = {}
        if name is not None:
            props.update(firstname=wanted[0], lastname=wanted[1])
        has = [p for p in (mapping.e164(crm.get("phone")), mapping.e164(crm.get("mobilephone"))) if p]
        phone = rules.phone_to_add(has, event.data)
        no_room = False
        if phone is not None:
            slot = next((k for k in ("phone", "mobilephone") if not str(crm.get(k) or "").strip()), None)
            if slot is None:
                no_room = True
            else:
                props[slot] = phone
        if props:
            self.client.request("PATCH", path, json={"properties": props})
        if name is not None or now_shown == shown(*wanted):
            rules.remember_name(self.links, WRITTEN_NAME, crm_id, shown(*wanted))
        notes: dict[str, str] = {}
        if name is None and shown(*name_parts(before)) != shown(*wanted) and now_shown != shown(*wanted):
            notes["kept"] = "the name a manager gave in HubSpot"
        if no_room:
            notes["phone_not_added"] = f"{phone}: HubSpot's phone and mobile phone hold other numbers"
        return Outcome.done({"contact_id": crm_id, "updated": sorted(props), **notes})
