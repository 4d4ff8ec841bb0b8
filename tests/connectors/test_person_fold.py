"""The late-link fold's decisions (connectors/person_fold.py), which every CRM connector
carries out with its own API calls: what a `contact.linked` moves where, what a retry
repeats, and what `contact.unlinked` points back."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.base import HubEvent, Outcome
from connectors.person_fold import Fold, Merge, PersonFold, merged_text, read_merge, unmerged_text
from tests.support.links import MemoryLinks

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def folding(**links: str) -> tuple[PersonFold, MemoryLinks]:
    """Contact 2 and person 1; links given as contact_<hub id>=<crm id> or merge_<id>=<crm id>."""
    store = MemoryLinks({(("contact" if k.startswith("contact") else "crm.merge"), k.split("_")[1]): v
                         for k, v in links.items()})
    return PersonFold(store, merge_type="crm.merge", crm_type="contacts", crm="Acme"), store


def test_a_contact_with_its_own_crm_contact_is_folded_into_the_persons_and_the_fold_is_recorded_first():
    fold, links = folding(contact_1="P", contact_2="OWN")
    assert fold.fold("2", "1", "7") == Fold(folded="OWN", person_crm="P")
    assert links.get("crm.merge", "7") == "OWN"
    assert links.get("contact", "2") == "OWN"  # until the caller has moved what the contact holds
    fold.point_at_person("2", Fold("OWN", "P"))
    assert links.get("contact", "2") == "P"


def test_a_retry_folds_the_recorded_contact_even_when_the_link_already_names_the_persons():
    fold, links = folding(contact_1="P", contact_2="P", merge_7="OWN")
    assert fold.fold("2", "1", "7") == Fold(folded="OWN", person_crm="P")
    fold.point_at_person("2", Fold("OWN", "P"))
    assert links.get("contact", "2") == "P"


def test_pointing_at_the_person_leaves_a_link_that_something_else_changed_meanwhile():
    fold, links = folding(contact_1="P", contact_2="ELSEWHERE")
    fold.point_at_person("2", Fold("OWN", "P"))
    assert links.get("contact", "2") == "ELSEWHERE"


@pytest.mark.parametrize("links", [{}, {"contact_1": "P"}, {"contact_1": "P", "contact_2": "P"}])
def test_a_contact_without_a_crm_contact_of_its_own_has_nothing_to_fold(links):
    fold, store = folding(**links)
    outcome = fold.fold("2", "1", "7")
    assert outcome == Outcome.done({"skipped": "the contact had no Acme contact of its own"})
    assert store.get("crm.merge", "7") is None


def test_a_person_without_a_crm_contact_takes_the_contacts_own_and_nothing_moves():
    fold, links = folding(contact_2="OWN")
    outcome = fold.fold("2", "1", "7")
    assert outcome == Outcome.done({"contact_id": "OWN", "kept": "the contact's Acme contact is the person's"})
    assert links.get("contact", "1") == "OWN" and links.get("crm.merge", "7") is None


def test_a_recorded_fold_that_is_already_the_persons_contact_is_kept():
    fold, _ = folding(contact_1="OWN", merge_7="OWN")
    assert fold.fold("2", "1", "7") == Outcome.done(
        {"contact_id": "OWN", "kept": "the contact's Acme contact is the person's"})


def test_unlinking_points_the_contact_back_at_its_own_when_it_names_the_persons_or_none():
    for before in ("P", None):
        fold, links = folding(contact_1="P", merge_7="OWN", **({"contact_2": before} if before else {}))
        assert fold.unfold("2", "1", "7") == "OWN"
        assert links.get("contact", "2") == "OWN" and links.get("contact", "1") == "P"


def test_unlinking_leaves_a_link_pointed_elsewhere_and_skips_a_merge_that_folded_nothing():
    fold, links = folding(contact_1="P", contact_2="ELSEWHERE", merge_7="OWN")
    assert fold.unfold("2", "1", "7") == "OWN" and links.get("contact", "2") == "ELSEWHERE"
    assert fold.unfold("2", "1", "8") == Outcome.done({"skipped": "the merge folded no Acme contact"})


def event(type_: str, data: dict) -> HubEvent:
    return HubEvent("evt-1", type_, 1, T0, data)


def test_a_merge_event_gives_its_parts_and_one_without_an_id_is_dead():
    contact, person = {"id": 2, "name": "Ana"}, {"id": 1}
    assert read_merge(event("contact.unlinked", {"contact": contact, "person": person, "merge": {"id": 7}})) == \
        Merge(linked=False, contact=contact, person=person, merge_id="7")
    assert read_merge(event("contact.linked", {"contact": contact, "person": person, "merge": {"id": 7}})).linked
    for data in ({"contact": contact, "person": person},
                 {"contact": {"name": "x"}, "person": person, "merge": {"id": 7}},
                 {"contact": contact, "person": "1", "merge": {"id": 7}}, None):
        outcome = read_merge(event("contact.linked", data))
        assert outcome.status == "dead"
        assert outcome.error == "contact.linked evt-1: contact, person and merge with their ids are required"


def test_the_words_left_on_the_folded_contact_name_both_contacts_the_crms_way():
    label = lambda c: c.get("name") or f"#{c['id']}"  # noqa: E731
    assert merged_text({"id": 2, "name": "Ana"}, "P", {"id": 1}, "7", label=label, moved="deals, timeline") == (
        "Merged into contact #P: hub contact 2 (Ana) is one person with hub contact 1 (#1), merge 7. "
        "Its deals, timeline and new conversations are there.")
    assert merged_text({"id": 2}, 5, {"id": 1}, "7", label=label).endswith("Its deals and new conversations are there.")
    assert unmerged_text({"id": 2, "name": "Ana"}, "7", label=label) == (
        "Merge 7 undone: hub contact 2 (Ana) is its own person again; its new conversations come back here.")
