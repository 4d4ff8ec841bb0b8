"""A contact linked to a person after it had its own amoCRM contact: one contact again.

On `contact.linked` the channel's contact (synced before the link) is folded into the
person's amoCRM contact: its deals are linked to the person's contact and unlinked from
its own (a deal's notes go with the deal), the hub's links that named its own contact
name the person's, and its own contact keeps a note saying where it went (never
deleted: a manager may have written on it). When the person had no amoCRM contact yet,
the channel's contact simply becomes the person's. On `contact.unlinked` the channel's
links name its own contact again, for what comes next; deals moved stay with the person.

Every step may be repeated (the delivery ledger retries): the contact a merge folds is
recorded (`amocrm.merge`, merge id -> contact id) before anything changes, linking what
is linked changes nothing, and the note goes through the notes' intents.
"""
from __future__ import annotations

from typing import Any, Mapping

from connectors import person_fold
from connectors.amocrm import mapping
from connectors.amocrm.client import AmoClient
from connectors.amocrm.errors import NotFound
from connectors.base import HubEvent, LinkStore

MERGE = "amocrm.merge"  # hub merge id -> the amoCRM contact it folded into the person's
TYPES = person_fold.TYPES


def own_keys(contact: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The link keys a contact had as its own person: its hub id, and its phone."""
    keys = [("wa_contact", str(mapping.require(contact, "id")))]
    phone = mapping.e164(contact.get("phone"))
    if phone:
        keys.append(("phone", phone))
    return keys


def merged_text(contact: Mapping[str, Any], person_crm: int, person: Mapping[str, Any], merge_id: str) -> str:
    return person_fold.merged_text(contact, person_crm, person, merge_id, label=mapping.contact_name)


def unmerged_text(contact: Mapping[str, Any], merge_id: str) -> str:
    return person_fold.unmerged_text(contact, merge_id, label=mapping.contact_name)


class PersonMerges:
    def __init__(self, client: AmoClient, links: LinkStore):
        self.client = client
        self.links = links

    def apply(self, event: HubEvent) -> tuple[str, Any]:
        """("note", contact note body) to add, or ("done", what happened)."""
        data = event.data
        contact, person = mapping.require(data, "contact"), mapping.require(data, "person")
        merge_id = str(mapping.require(mapping.require(data, "merge"), "id"))
        if event.type == "contact.linked":
            return self._fold(contact, person, merge_id)
        return self._unfold(contact, person, merge_id)

    def _fold(self, contact: Mapping[str, Any], person: Mapping[str, Any], merge_id: str) -> tuple[str, Any]:
        person_key = mapping.contact_key(person)
        person_crm = self.links.get(*person_key)
        folded = self.links.get(MERGE, merge_id)
        if folded is None:
            keys = [k for k in own_keys(contact) if k != person_key]
            own = self.links.get_many("wa_contact", [k[1] for k in keys if k[0] == "wa_contact"])
            own.update({f"phone:{k}": v for k, v in self.links.get_many("phone", [k[1] for k in keys
                                                                                  if k[0] == "phone"]).items()})
            candidates = [v for v in own.values() if v != person_crm]
            if not candidates:
                return ("done", {"skipped": "the contact had no amoCRM contact of its own"})
            own_crm = candidates[0]
            if person_crm is None:
                person_crm = self.links.put(person_key[0], person_key[1], "contact", own_crm)
                if person_crm == own_crm:
                    return ("done", {"contact_id": int(own_crm), "kept": "the contact's amoCRM contact is the person's"})
            folded = self.links.put(MERGE, merge_id, "contact", own_crm)
        if person_crm is None or person_crm == folded:
            return ("done", {"contact_id": int(folded), "kept": "the contact's amoCRM contact is the person's"})
        own_crm, person_crm = int(folded), int(person_crm)
        self._move_deals(own_crm, person_crm)
        self._point(own_keys(contact), person_key, from_crm=str(own_crm), to_crm=str(person_crm))
        body = mapping.contact_note_body(own_crm, merged_text(contact, person_crm, person, merge_id))
        body["request_id"] = f"merge-{merge_id}"
        return ("note", body)

    def _unfold(self, contact: Mapping[str, Any], person: Mapping[str, Any], merge_id: str) -> tuple[str, Any]:
        folded = self.links.get(MERGE, merge_id)
        if folded is None:
            return ("done", {"skipped": "the merge folded no amoCRM contact"})
        person_key = mapping.contact_key(person)
        person_crm = self.links.get(*person_key)
        self._point(own_keys(contact), person_key, from_crm=person_crm, to_crm=folded, missing=True)
        body = mapping.contact_note_body(int(folded), unmerged_text(contact, merge_id))
        body["request_id"] = f"unmerge-{merge_id}"
        return ("note", body)

    def _move_deals(self, own_crm: int, person_crm: int) -> None:
        """Every deal of the folded contact onto the person's contact (POST .../link,
        then .../unlink: amoCRM's entity links)."""
        try:
            own = self.client.get(f"/api/v4/contacts/{own_crm}", {"with": "leads"}) or {}
        except NotFound:
            return  # deleted in amoCRM meanwhile: nothing left to move
        lead_ids = sorted(int(x["id"]) for x in mapping.embedded(own, "leads"))
        for lead_id in lead_ids:
            self.client.post(f"/api/v4/leads/{lead_id}/link",
                             [{"to_entity_id": person_crm, "to_entity_type": "contacts"}])
            self.client.post(f"/api/v4/leads/{lead_id}/unlink",
                             [{"to_entity_id": own_crm, "to_entity_type": "contacts"}])

    def _point(self, keys: list[tuple[str, str]], person_key: tuple[str, str], *, from_crm: str | None,
               to_crm: str, missing: bool = False) -> None:
        """Links of `keys` (never the person's own key) that name `from_crm` (or none,
        with `missing`) name `to_crm` from now on."""
        for etype in ("wa_contact", "phone"):
            ids = [k[1] for k in keys if k[0] == etype and k != person_key]
            current = self.links.get_many(etype, ids)
            self.links.set_many(etype, [(i, "contact", to_crm) for i in ids
                                        if (current.get(i) == from_crm and from_crm is not None)
                                        or (missing and i not in current)])
