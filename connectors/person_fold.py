"""The late-link fold, decided once for every CRM: a hub contact that had its own CRM
contact is linked to a person (`contact.linked`) or unlinked again (`contact.unlinked`).

What to do is the same in each CRM; only the API calls that move records and leave a
word on the folded contact differ, and those stay in each connector's `merges.py`:

- fold: the contact a merge folds is recorded (`<crm>.merge`, merge id -> CRM contact)
  before anything changes, so a retry folds the same contact. No own contact, or the
  person's contact already: nothing to do. The person without a CRM contact yet: the
  contact's own becomes the person's, and nothing moves. Otherwise the caller moves the
  records from the folded contact to the person's, the contact's link names the person's
  contact (unless something else re-pointed it meanwhile), and the caller marks the
  folded contact.
- unfold: the contact's link names its own contact again when it names none or the
  person's; what moved stays with the person.

The texts a connector leaves on the folded contact are worded here too (`merged_text`,
`unmerged_text`), each CRM naming a contact its own way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from connectors.base import HubEvent, LinkStore, Outcome

TYPES = frozenset({"contact.linked", "contact.unlinked"})


def merged_text(contact: Mapping[str, Any], person_crm: Any, person: Mapping[str, Any], merge_id: str, *,
                label: Callable[[Any], str], moved: str = "deals") -> str:
    """The word left on the folded contact; `moved` names what went with it."""
    return (f"Merged into contact #{person_crm}: hub contact {contact.get('id')} ({label(contact)}) "
            f"is one person with hub contact {person.get('id')} ({label(person)}), merge {merge_id}. "
            f"Its {moved} and new conversations are there.")


def unmerged_text(contact: Mapping[str, Any], merge_id: str, *, label: Callable[[Any], str]) -> str:
    return (f"Merge {merge_id} undone: hub contact {contact.get('id')} ({label(contact)}) "
            "is its own person again; its new conversations come back here.")


@dataclass(frozen=True)
class Merge:
    """A `contact.linked` / `contact.unlinked` event's parts."""
    linked: bool
    contact: dict[str, Any]
    person: dict[str, Any]
    merge_id: str


def read_merge(event: HubEvent) -> Merge | Outcome:
    """The event's contact, person and merge, or a dead outcome when one lacks its id."""
    data = event.data or {}
    contact, person, merge = data.get("contact"), data.get("person"), data.get("merge")
    if not all(isinstance(x, dict) and x.get("id") is not None for x in (contact, person, merge)):
        return Outcome.dead(f"{event.type} {event.id}: contact, person and merge with their ids are required")
    return Merge(event.type == "contact.linked", contact, person, str(merge["id"]))


@dataclass(frozen=True)
class Fold:
    """Move what `folded` holds onto `person_crm`, then mark `folded`."""
    folded: str
    person_crm: str


class PersonFold:
    """The fold's decisions over the hub's `contact` links, for one CRM.

    `merge_type` is where the folded contact is recorded per merge, `crm_type` the
    CRM's name for its contact records in the links, `crm` the name in outcomes."""

    def __init__(self, links: LinkStore, *, merge_type: str, crm_type: str, crm: str):
        self.links = links
        self.merge_type = merge_type
        self.crm_type = crm_type
        self.crm = crm

    def fold(self, contact_id: str, person_id: str, merge_id: str) -> Fold | Outcome:
        """What a `contact.linked` calls for: a Fold to carry out, or the outcome when
        nothing is to move."""
        known = self.links.get_many("contact", [contact_id, person_id])
        person_crm = known.get(person_id)
        folded = self.links.get(self.merge_type, merge_id)
        if folded is None:
            own = known.get(contact_id)
            if own is None or own == person_crm:
                return Outcome.done({"skipped": f"the contact had no {self.crm} contact of its own"})
            if person_crm is None:
                person_crm = self.links.put("contact", person_id, self.crm_type, own)
            if person_crm == own:
                return self._kept(own)
            folded = self.links.put(self.merge_type, merge_id, self.crm_type, own)
        if person_crm is None or person_crm == folded:
            return self._kept(folded)
        return Fold(folded, person_crm)

    def point_at_person(self, contact_id: str, fold: Fold) -> None:
        """The contact's link names the person's contact, if it still names the folded one."""
        if self.links.get("contact", contact_id) == fold.folded:
            self.links.set_many("contact", [(contact_id, self.crm_type, fold.person_crm)])

    def unfold(self, contact_id: str, person_id: str, merge_id: str) -> str | Outcome:
        """What a `contact.unlinked` calls for: the folded contact, now named by the
        contact's link again (the caller marks it), or the outcome when the merge folded none."""
        folded = self.links.get(self.merge_type, merge_id)
        if folded is None:
            return Outcome.done({"skipped": f"the merge folded no {self.crm} contact"})
        known = self.links.get_many("contact", [contact_id, person_id])
        if known.get(contact_id) in (None, known.get(person_id)):
            self.links.set_many("contact", [(contact_id, self.crm_type, folded)])
        return folded

    def _kept(self, crm_id: str) -> Outcome:
        return Outcome.done({"contact_id": crm_id, "kept": f"the contact's {self.crm} contact is the person's"})
