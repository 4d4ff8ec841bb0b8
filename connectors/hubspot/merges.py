"""A contact linked to a person after it had its own HubSpot contact: one contact again.

On `contact.linked` the channel's contact (synced before the link) is folded into the
person's HubSpot contact with associations v4: its deals and its communications (the
timeline) are associated with the person's contact and archived from its own; the hub's
link for the channel's contact names the person's contact, and its own contact keeps a
note saying where it went (never deleted). When the person had no HubSpot contact yet,
the channel's contact becomes the person's. On `contact.unlinked` the link names its own
contact again, for what comes next; what moved stays with the person.

Every step may be repeated: the contact a merge folds is recorded (`hubspot.merge`,
merge id -> contact id) before anything changes, associating what is associated changes
nothing, and a note whose try may have reached HubSpot is looked for among the
contact's notes before another is written.
"""
from __future__ import annotations

from typing import Any

from connectors import person_fold
from connectors.base import HubEvent, LinkStore, Outcome
from connectors.hubspot import mapping
from connectors.hubspot.client import HubSpotClient

MERGE = "hubspot.merge"  # hub merge id -> the HubSpot contact it folded into the person's
NOTE = "hubspot.merge_note"  # "merge-<id>" / "unmerge-<id>" -> the note written
NOTE_TRY = "hubspot.merge_note_try"  # the same key, stored before the note is written
TYPES = person_fold.TYPES
NOTE_TO_CONTACT = 202


def contact_label(contact: dict[str, Any]) -> str:
    return str(contact.get("name") or contact.get("username") or contact.get("phone") or f"contact {contact.get('id')}")


def merged_text(contact: dict[str, Any], person_crm: str, person: dict[str, Any], merge_id: str) -> str:
    return person_fold.merged_text(contact, person_crm, person, merge_id, label=contact_label,
                                   moved="deals, timeline")


def unmerged_text(contact: dict[str, Any], merge_id: str) -> str:
    return person_fold.unmerged_text(contact, merge_id, label=contact_label)


class PersonMerges:
    def __init__(self, client: HubSpotClient, links: LinkStore):
        self.client = client
        self.links = links
        self.fold = person_fold.PersonFold(links, merge_type=MERGE, crm_type="contacts", crm="HubSpot")

    def apply(self, event: HubEvent) -> Outcome:
        """The outcome; HubSpot's errors are raised for the caller to judge."""
        merge = person_fold.read_merge(event)
        if isinstance(merge, Outcome):
            return merge
        ms = int(event.occurred_at.timestamp() * 1000)
        return self._fold(merge, ms) if merge.linked else self._unfold(merge, ms)

    def _fold(self, merge: person_fold.Merge, ms: int) -> Outcome:
        cid = str(merge.contact["id"])
        fold = self.fold.fold(cid, str(merge.person["id"]), merge.merge_id)
        if isinstance(fold, Outcome):
            return fold
        moved = {kind: self._move(kind, type_id, fold.folded, fold.person_crm)
                 for kind, type_id in (("deals", mapping.DEAL_TO_CONTACT),
                                       ("communications", mapping.COMMUNICATION_TO_CONTACT))}
        self.fold.point_at_person(cid, fold)
        self._note(f"merge-{merge.merge_id}", fold.folded,
                   merged_text(merge.contact, fold.person_crm, merge.person, merge.merge_id), ms)
        return Outcome.done({"contact_id": fold.person_crm, "merged": fold.folded, "moved": moved})

    def _unfold(self, merge: person_fold.Merge, ms: int) -> Outcome:
        folded = self.fold.unfold(str(merge.contact["id"]), str(merge.person["id"]), merge.merge_id)
        if isinstance(folded, Outcome):
            return folded
        self._note(f"unmerge-{merge.merge_id}", folded, unmerged_text(merge.contact, merge.merge_id), ms)
        return Outcome.done({"contact_id": folded})

    def _move(self, kind: str, type_id: int, own: str, person_crm: str) -> list[str]:
        """Every `kind` record of the folded contact onto the person's contact."""
        ids = self.client.associated_ids("contacts", kind, [own]).get(own) or []
        if ids:
            self.client.associate(kind, "contacts", [(i, person_crm) for i in ids], type_id)
            self.client.request("POST", f"/crm/v4/associations/{kind}/contacts/batch/archive",
                                json={"inputs": [{"from": {"id": i}, "to": [{"id": own}]} for i in ids]})
        return ids

    def _note(self, key: str, contact_crm: str, text: str, ms: int) -> None:
        if self.links.get(NOTE, key) is not None:
            return
        if self.links.get(NOTE_TRY, key) is not None:  # an earlier try may have written it
            ids = self.client.associated_ids("contacts", "notes", [contact_crm]).get(contact_crm) or []
            for note in self.client.batch_read("notes", ids, ["hs_note_body"]) if ids else []:
                if (note.get("properties") or {}).get("hs_note_body") == text:
                    self.links.put(NOTE, key, "notes", str(note["id"]))
                    return
        self.links.put(NOTE_TRY, key, "try", "1")
        created = self.client.batch_create("notes", [{
            "properties": {"hs_note_body": text, "hs_timestamp": mapping.iso_ms(ms)},
            "associations": [mapping.association(contact_crm, NOTE_TO_CONTACT)]}])
        self.links.put(NOTE, key, "notes", str(created[0]["id"]))
