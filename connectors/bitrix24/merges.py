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

from connectors import person_fold
from connectors.base import HubEvent, LinkStore, Outcome
from connectors.bitrix24 import mapping
from connectors.bitrix24.errors import AuthFailed, Bitrix24Error, MethodError, Transient
from connectors.bitrix24.mapping import Options

MERGE = "bitrix24.merge"  # hub merge id -> the Bitrix24 contact it folded into the person's
TYPES = person_fold.TYPES
WAIT_SECONDS = 60


def merged_text(contact: dict[str, Any], person_crm: str, person: dict[str, Any], merge_id: str) -> str:
    return person_fold.merged_text(contact, person_crm, person, merge_id, label=mapping.display_name)


def unmerged_text(contact: dict[str, Any], merge_id: str) -> str:
    return person_fold.unmerged_text(contact, merge_id, label=mapping.display_name)


class PersonMerges:
    def __init__(self, client: Any, links: LinkStore, options: Options, clock: Callable[[], datetime]):
        self.client = client
        self.options = options
        self.clock = clock
        self.fold = person_fold.PersonFold(links, merge_type=MERGE, crm_type="contact", crm="Bitrix24")

    def deliver(self, events: list[HubEvent]) -> list[Outcome]:
        return [self._one(e) for e in events]

    def _one(self, event: HubEvent) -> Outcome:
        merge = person_fold.read_merge(event)
        if isinstance(merge, Outcome):
            return merge
        try:
            return self._fold(merge) if merge.linked else self._unfold(merge)
        except AuthFailed as exc:
            return Outcome.wait(f"Bitrix24 refused the connector's credentials ({exc.summary()})",
                                retry_at=self.clock() + timedelta(seconds=WAIT_SECONDS))
        except Transient as exc:
            return Outcome.retry(exc.summary(), retry_at=exc.retry_at)
        except MethodError as exc:
            return Outcome.dead(f"Bitrix24 refused {event.type}: {exc.summary()}")
        except Bitrix24Error as exc:
            return Outcome.retry(exc.summary())

    def _fold(self, merge: person_fold.Merge) -> Outcome:
        cid = str(merge.contact["id"])
        fold = self.fold.fold(cid, str(merge.person["id"]), merge.merge_id)
        if isinstance(fold, Outcome):
            return fold
        moved = self._move(fold.folded, fold.person_crm)
        self.fold.point_at_person(cid, fold)
        self._comment(fold.folded, merged_text(merge.contact, fold.person_crm, merge.person, merge.merge_id))
        return Outcome.done({"contact_id": fold.person_crm, "merged": fold.folded, "moved": moved})

    def _unfold(self, merge: person_fold.Merge) -> Outcome:
        folded = self.fold.unfold(str(merge.contact["id"]), str(merge.person["id"]), merge.merge_id)
        if isinstance(folded, Outcome):
            return folded
        self._comment(folded, unmerged_text(merge.contact, merge.merge_id))
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
