"""A Telegram contact synced to Bitrix24 before it was linked to a person ends as one
Bitrix24 contact: contact.linked binds its deals to the person's contact (the deal's
timeline goes with it), leaves a comment on its own contact and points the hub's link at
the person's; contact.unlinked points it back for what comes next. A replay does
nothing twice."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from connectors.base import HubEvent
from tests.connectors.bitrix24 import factory as f
from tests.connectors.bitrix24.conftest import portal, webhook_settings  # noqa: F401 (fixture)
from tests.connectors.bitrix24.test_connector import make
from tests.support import person_merges as merges_support
from tests.support.person_merges import deliver_each as deliver, telegram_contact

PERSON = f.contact(1)


def telegram(*, linked: bool) -> dict[str, Any]:
    return telegram_contact(2001, PERSON, linked=linked)


def conversation_events(i: int, contact: dict[str, Any]) -> list[HubEvent]:
    conv = f.conversation(i, source=None)
    key = f"conversation:{conv['id']}"
    data = {"conversation": conv, "contact": contact}
    return [HubEvent(f"evt-start-{i}", "conversation.started", 1, f.T0, data, ordering_key=key),
            HubEvent(f"evt-msg-{i}", "message.received", 1, f.T0, {**data, "message": f.message(i, 0)},
                     ordering_key=key)]


def merge_event(type_: str, merge_id: int = 7) -> HubEvent:
    return merges_support.merge_event(type_, 2001, PERSON, reason="shared_phone", at=f.T0, merge_id=merge_id)


def deal_of(portal, i: int) -> dict[str, Any]:  # noqa: F811
    text = f.message(i, 0)["text"]
    deal_id = next(c["ENTITY_ID"] for c in portal.portal.comments.values()
                   if c["ENTITY_TYPE"] == "deal" and text in c["COMMENT"])
    return portal.portal.deals[int(deal_id)]


def contact_comments(portal, contact_id: int) -> list[str]:  # noqa: F811
    return [c["COMMENT"] for c in portal.portal.comments.values()
            if c["ENTITY_TYPE"] == "contact" and c["ENTITY_ID"] == str(contact_id)]


def test_a_contact_synced_before_the_link_is_folded_into_the_persons_contact_once(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    deliver(b24, conversation_events(1, PERSON) + conversation_events(2, telegram(linked=False)))
    contacts = portal.portal.contacts
    (person_crm,) = [c for c, row in contacts.items() if row["NAME"] == "Customer"]
    (own_crm,) = [c for c, row in contacts.items() if row["NAME"] == "Ana"]
    assert deal_of(portal, 2)["CONTACT_ID"] == str(own_crm)

    linked = merge_event("contact.linked")
    deliver(b24, [linked, replace(linked, attempt=2)])
    assert deal_of(portal, 2)["CONTACT_ID"] == str(person_crm)
    assert portal.portal.bindings[("deal", int(deal_of(portal, 2)["ID"]))] == [person_crm]
    (comment,) = contact_comments(portal, own_crm)
    assert comment.startswith(f"Merged into contact #{person_crm}: hub contact 2001 (Ana on Telegram) is one person "
                              "with hub contact 1001 (Customer 1 Example), merge 7.")
    assert own_crm in contacts

    deliver(b24, conversation_events(3, telegram(linked=True)))
    assert deal_of(portal, 3)["CONTACT_ID"] == str(person_crm)
    assert len(contacts) == 2

    unlinked = merge_event("contact.unlinked")
    deliver(b24, [unlinked, replace(unlinked, attempt=2)])
    assert contact_comments(portal, own_crm)[1:] == [
        "Merge 7 undone: hub contact 2001 (Ana on Telegram) is its own person again; "
        "its new conversations come back here."]
    deliver(b24, conversation_events(4, telegram(linked=False)))
    assert deal_of(portal, 4)["CONTACT_ID"] == str(own_crm)
    assert len(contacts) == 2


def test_when_the_person_had_no_bitrix24_contact_the_channels_contact_becomes_the_persons(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    deliver(b24, conversation_events(2, telegram(linked=False)))
    deliver(b24, [merge_event("contact.linked")])
    deliver(b24, conversation_events(1, PERSON))
    (only,) = portal.portal.contacts
    assert deal_of(portal, 1)["CONTACT_ID"] == deal_of(portal, 2)["CONTACT_ID"] == str(only)
    assert contact_comments(portal, only) == []


def test_a_merge_without_its_ids_is_refused_and_a_contact_never_synced_needs_nothing(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    bad = replace(merge_event("contact.linked"), data={"contact": telegram(linked=True), "person": PERSON})
    assert b24.deliver([bad])[0].status == "dead"
    outcome, = b24.deliver([merge_event("contact.linked")])
    assert outcome.response == {"skipped": "the contact had no Bitrix24 contact of its own"}
    assert portal.portal.contacts == {}


def test_an_open_lines_chat_of_a_linked_contact_has_the_person_as_its_user():
    from connectors.bitrix24.openlines_mapping import message_item
    data = {"conversation": f.conversation(3, source=None), "message": f.message(3, 0)}
    item = message_item({**data, "contact": telegram(linked=True)})
    assert item["user"] == {"id": "1001", "name": "Customer", "last_name": "Example", "phone": PERSON["phone"],
                            "skip_phone_validate": "Y"}
    assert item["chat"]["id"] == "5003"  # each channel's conversation stays its own chat
    assert message_item({**data, "contact": telegram(linked=False)})["user"]["id"] == "2001"
