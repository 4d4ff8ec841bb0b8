"""A Telegram contact synced to amoCRM before it was linked to a person ends as one amoCRM
contact: contact.linked moves its deals (and their notes) to the person's contact, marks
its own contact with a note and points its links at the person's; contact.unlinked points
them back for what comes next. A replay does nothing twice."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from typing import Any

from connectors.base import HubEvent
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, instance, long_lived_settings
from tests.support import person_merges as merges_support
from tests.support.person_merges import deliver_each as deliver, telegram_contact

PERSON = ev.contact(1)


def telegram(*, linked: bool) -> dict[str, Any]:
    return telegram_contact(2001, PERSON, linked=linked)


def conversation_events(n: int, contact: dict[str, Any], kind: str = "telegram") -> list[HubEvent]:
    conv = ev.conversation(n)
    conv["channel"] = {**conv["channel"], "kind": kind}
    data = {"conversation": conv, "contact": contact}
    key = f"conversation:{conv['id']}"
    return [HubEvent(f"evt-start-{n}", "conversation.started", 1, ev.T0, data, ordering_key=key),
            HubEvent(f"evt-msg-{n}", "message.received", 1, ev.T0, {**data, "message": ev.message(n, 0)},
                     ordering_key=key)]


def merge_event(type_: str, merge_id: int = 7) -> HubEvent:
    return merges_support.merge_event(type_, 2001, PERSON, reason="shared_phone", at=ev.T0, merge_id=merge_id)


def contact_notes(amo, contact_id: int) -> list[str]:
    return [n["params"]["text"] for n in amo.store.notes.values()
            if n["entity"] == "contacts" and n["entity_id"] == contact_id]


def lead_of(amo, conversation_n: int) -> dict[str, Any]:
    lead_id = next(n["entity_id"] for n in amo.store.notes.values()
                   if n["entity"] == "leads" and f"#{ev.message(conversation_n, 0)['id']} " in n["params"]["text"])
    return amo.store.leads[lead_id]


def test_a_contact_synced_before_the_link_is_folded_into_the_persons_contact_once(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    deliver(connector, conversation_events(1, PERSON, "whatsapp") + conversation_events(2, telegram(linked=False)))
    (person_crm,) = [c["id"] for c in amo.store.contacts.values() if c["name"] == "Customer 1"]
    (own_crm,) = [c["id"] for c in amo.store.contacts.values() if c["name"] == "Ana on Telegram"]
    assert lead_of(amo, 2)["contact_ids"] == [own_crm]

    linked = merge_event("contact.linked")
    deliver(connector, [linked, replace(linked, attempt=2)])
    assert lead_of(amo, 2)["contact_ids"] == [person_crm]  # the deal and its notes moved
    assert amo.store.contacts[own_crm]["lead_ids"] == []
    assert sorted(amo.store.contacts[person_crm]["lead_ids"]) == sorted(
        [lead_of(amo, 1)["id"], lead_of(amo, 2)["id"]])
    (note,) = contact_notes(amo, own_crm)  # the replay wrote no second note
    assert note.startswith(f"Merged into contact #{person_crm}: hub contact 2001 (Ana on Telegram) is one person "
                           "with hub contact 1001 (Customer 1), merge 7.")
    assert own_crm in amo.store.contacts and not amo.store.contacts[own_crm]["is_deleted"]

    # the linked contact's next conversation reaches the person's contact
    deliver(connector, conversation_events(3, telegram(linked=True)))
    assert lead_of(amo, 3)["contact_ids"] == [person_crm]
    assert len(amo.store.contacts) == 2

    unlinked = merge_event("contact.unlinked")
    deliver(connector, [unlinked, replace(unlinked, attempt=2)])
    assert contact_notes(amo, own_crm)[1:] == [
        "Merge 7 undone: hub contact 2001 (Ana on Telegram) is its own person again; "
        "its new conversations come back here."]
    deliver(connector, conversation_events(4, telegram(linked=False)))
    assert lead_of(amo, 4)["contact_ids"] == [own_crm]
    assert len(amo.store.contacts) == 2


def test_when_the_person_had_no_amocrm_contact_the_channels_contact_becomes_the_persons(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo, existing_contacts="create")))
    deliver(connector, conversation_events(2, telegram(linked=False)))
    deliver(connector, [merge_event("contact.linked")])
    deliver(connector, conversation_events(1, PERSON, "whatsapp"))
    (only,) = amo.store.contacts.values()
    assert lead_of(amo, 1)["contact_ids"] == lead_of(amo, 2)["contact_ids"] == [only["id"]]
    assert contact_notes(amo, only["id"]) == []
    deliver(connector, [merge_event("contact.unlinked")])  # nothing was folded: nothing to undo
    assert contact_notes(amo, only["id"]) == []


def test_a_contact_never_synced_needs_nothing(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    outcome, = connector.deliver([merge_event("contact.linked")])
    assert outcome.status == "done" and outcome.response == {"skipped": "the contact had no amoCRM contact of its own"}
    assert amo.store.contacts == {}


def test_the_chat_of_a_linked_contact_is_the_persons_chat_user():
    from connectors.amocrm.chat import sender_of
    assert sender_of(telegram(linked=True)) == {"id": "wa-contact-1001", "name": "Customer 1",
                                                "profile": {"phone": PERSON["phone"]}}
    assert sender_of(telegram(linked=False))["id"] == "wa-contact-2001"


def test_through_the_hub_an_operators_merge_and_its_undo_reach_amocrm_once(runtime, amo):
    """The hub's own contact.linked / contact.unlinked (hub.conversations.persons), as the
    outbox writes them, delivered by the worker."""
    from datetime import datetime, timezone

    from hub.conversations.persons import OPERATOR, link, undo
    from hub.conversations.store import upsert_contact
    from hub.events import payloads
    from hub.models import Contact
    from hub.models.contacts import ContactMerge
    from tests.connectors.amocrm.conftest import drain

    now = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)
    add_connector(runtime, long_lived_settings(amo))

    def emit_conversation(session, n: int, contact: Contact) -> None:
        conv = ev.conversation(n)
        ev.emit_event(session, "conversation.started", {"conversation": conv, "contact": payloads.contact(contact)})

    with runtime.db.scope() as session:
        wa = upsert_contact(session, wa_id="351912345678", user_id=None, name="Ana WA", now=now)
        tg = upsert_contact(session, wa_id=None, user_id="tg:111222333", name="Ana TG", now=now)
        emit_conversation(session, 1, wa)
        emit_conversation(session, 2, tg)
    drain(runtime)
    assert len(amo.store.contacts) == 2
    with runtime.db.scope() as session:
        link(session, session.get(Contact, tg.id), session.get(Contact, wa.id), reason=OPERATOR, now=now)
    assert drain(runtime) == {"done": 3}
    by_name = {c["name"]: c for c in amo.store.contacts.values()}
    assert by_name["Ana TG"]["lead_ids"] == [] and len(by_name["Ana WA"]["lead_ids"]) == 2
    assert contact_notes(amo, by_name["Ana TG"]["id"])[0].startswith(f"Merged into contact #{by_name['Ana WA']['id']}")
    with runtime.db.scope() as session:
        undo(session, session.scalars(select(ContactMerge)).one(), now=now)
        emit_conversation(session, 3, session.get(Contact, tg.id))
    assert drain(runtime) == {"done": 5}
    assert len(amo.store.contacts) == 2 and len(by_name["Ana TG"]["lead_ids"]) == 1
    assert len(contact_notes(amo, by_name["Ana TG"]["id"])) == 2
