"""A contact linked to a person after it had its own Bitrix24 contact: one contact again.

On `contact.linked` the channel's contact (synced before the link) is folded into the
person's Bitrix24 contact: each deal (lead) bound to its own contact gets the person's
contact as primary (crm.deal.contact.add) and loses its own (crm.deal.contact.delete);
the deal's timeline goes with the deal. The hub's link for the channel's contact names
the person's contact, and its own contact keeps a timeline comment saying where it went
(never deleted). When the person had no Bitrix24 contact yet, the channel's contact
becomes the person's. On `contact.unlinked` the link names its own contact again, for
what comes next; deals moved stay with the person.

Every step may be repeated: the contact a merge folds is recorded (`bitrix24.merge`,
merge id -> contact id) before anything changes, binding what is bound changes nothing,
and the comment is looked for on the contact's timeline before it is written.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

from connectors.base import HubEvent, LinkStore, Outcome
from connectors.bitrix24 import mapping
from connectors.bitrix24.errors import AuthFailed, Bitrix24Error, MethodError, Transient
from connectors.bitrix24.mapping import Options

MERGE = "bitrix24.merge"  # hub merge id -> the Bitrix24 contact it folded into the person's
TYPES = frozenset({"contact.linked", "contact.unlinked"})
WAIT_SECONDS = 60


def merged_text(contact: dict[str, Any], person_crm: str, person: dict[str, Any], merge_id: str) -> str:
    return (f"Merged into contact #{person_crm}: hub contact {contact.get('id')} ({mapping.display_name(contact)}) "
            f"is one person with hub contact {person.get('id')} ({mapping.display_name(person)}), merge {merge_id}. "
            "Its deals and new conversations are there.")


def unmerged_text(contact: dict[str, Any], merge_id: str) -> str:
    return (f"Merge {merge_id} undone: hub contact {contact.get('id')} ({mapping.display_name(contact)}) "
            "is its own person again; its new conversations come back here.")


class PersonMerges:
    def __init__(self, client: Any, links: LinkStore, options: Options, clock: Callable[[], datetime]):
        self.client = client
        self.links = links
        self.options = options
        self.clock = clock

    def deliver(self, events: list[HubEvent]) -> list[Outcome]:
        return [self._one(e) for e in events]

    def _one(self, event: HubEvent) -> Outcome:
        data = event.data or {}
        contact, person, merge = data.get("contact"), data.get("person"), data.get("merge")
        if not all(isinstance(x, dict) and x.get("id") is not None for x in (contact, person, merge)):
            return Outcome.dead(f"{event.type} {event.id}: contact, person and merge with their ids are required")
        try:
            if event.type == "contact.linked":
                return self._fold(contact, person, str(merge["id"]))
            return self._unfold(contact, person, str(merge["id"]))
        except AuthFailed as exc:
            return Outcome.wait(f"Bitrix24 refused the connector's credentials ({exc.summary()})",
                                retry_at=self.clock() + timedelta(seconds=WAIT_SECONDS))
        except Transient as exc:
            return Outcome.retry(exc.summary(), retry_at=exc.retry_at)
        except MethodError as exc:
            return Outcome.dead(f"Bitrix24 refused {event.type}: {exc.summary()}")
        except Bitrix24Error as exc:
            return Outcome.retry(exc.summary())

    def _fold(self, contact: dict[str, Any], person: dict[str, Any], merge_id: str) -> Outcome:
        cid, pid = str(contact["id"]), str(person["id"])
        known = self.links.get_many("contact", [cid, pid])
        person_crm = known.get(pid)
        folded = self.links.get(MERGE, merge_id)
        if folded is None:
            own = known.get(cid)
            if own is None or own == person_crm:
                return Outcome.done({"skipped": "the contact had no Bitrix24 contact of its own"})
            if person_crm is None:
                person_crm = self.links.put("contact", pid, "contact", own)
            if person_crm == own:
                return Outcome.done({"contact_id": own, "kept": "the contact's Bitrix24 contact is the person's"})
            folded = self.links.put(MERGE, merge_id, "contact", own)
        if person_crm is None or person_crm == folded:
            return Outcome.done({"contact_id": folded, "kept": "the contact's Bitrix24 contact is the person's"})
        moved = self._move(folded, person_crm)
        if self.links.get("contact", cid) == folded:
            self.links.set_many("contact", [(cid, "contact", person_crm)])
        self._comment(folded, merged_text(contact, person_crm, person, merge_id))
        return Outcome.done({"contact_id": person_crm, "merged": folded, "moved": moved})

    def _unfold(self, contact: dict[str, Any], person: dict[str, Any], merge_id: str) -> Outcome:
        folded = self.links.get(MERGE, merge_id)
        if folded is None:
            return Outcome.done({"skipped": "the merge folded no Bitrix24 contact"})
        cid, pid = str(contact["id"]), str(person["id"])
        known = self.links.get_many("contact", [cid, pid])
        if known.get(cid) in (None, known.get(pid)):
            self.links.set_many("contact", [(cid, "contact", folded)])
        self._comment(folded, unmerged_text(contact, merge_id))
        return Outcome.done({"contact_id": folded})

    def _move(self, own: str, person_crm: str) -> list[str]:
        """Every deal (lead) whose primary contact is `own` onto the person's contact."""
        kind = self.options.target
        rows = self.client.list_all(f"crm.{kind}.list", {"filter": {"CONTACT_ID": own}, "select": ["ID"]})
        ids = sorted((str(r["ID"]) for r in rows), key=int)
        for eid in ids:
            self.client.call(f"crm.{kind}.contact.add",
                             {"id": eid, "fields": {"CONTACT_ID": int(person_crm), "IS_PRIMARY": "Y"}})
            self.client.call(f"crm.{kind}.contact.delete", {"id": eid, "fields": {"CONTACT_ID": int(own)}})
        return [f"{kind}:{i}" for i in ids]

    def _comment(self, contact_crm: str, text: str) -> None:
        found = self.client.list_all("crm.timeline.comment.list", {
            "filter": {"ENTITY_ID": contact_crm, "ENTITY_TYPE": "contact"}, "select": ["ID", "COMMENT"]})
        if any(r.get("COMMENT") == text for r in found):
            return  # an earlier try wrote it
        self.client.call("crm.timeline.comment.add",
                         {"fields": {"ENTITY_ID": int(contact_crm), "ENTITY_TYPE": "contact", "COMMENT": text}})
