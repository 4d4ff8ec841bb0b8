"""contact.updated in amoCRM: the name follows while amoCRM still shows the hub's (a
manager's rename wins), a phone is added beside amoCRM's (never replacing one), a repeat
writes nothing, and an update that arrives before its contact is in amoCRM waits for it."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from connectors.base import HubEvent
from tests.support.contact_updates import only, updated
from hub.platform.db import utcnow
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, drain, instance, long_lived_settings

PATCHES = "PATCH /api/v4/contacts{id}"  # the emulator counts paths with ids folded


def started(n: int, contact: dict[str, Any]) -> HubEvent:
    return HubEvent(f"evt-start-{n}", "conversation.started", 1, utcnow(),
                    {"conversation": ev.conversation(n), "contact": contact},
                    ordering_key=f"conversation:{500 + n}")


def crm_contact(amo, name: str) -> dict[str, Any]:
    (found,) = [c for c in amo.store.contacts.values() if c["name"] == name]
    return found


def phones(contact: dict[str, Any]) -> list[str]:
    return [v["value"] for cf in contact["custom_fields_values"] if cf["field_code"] == "PHONE" for v in cf["values"]]


def test_a_new_name_and_phone_reach_the_amocrm_contact_and_a_repeat_writes_nothing(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    hidden = ev.contact(1, phone=False)  # a username-only user: keyed on the hub contact
    assert only(connector, started(1, hidden)).status == "done"
    crm = crm_contact(amo, "Customer 1")
    assert phones(crm) == []
    update = updated(hidden, {"name": {"old": "Customer 1", "new": "Ana Pereira"},
                              "phone": {"old": None, "new": "+15557000001"}})
    outcome = only(connector, update)
    assert outcome.status == "done" and outcome.response["updated"] == ["custom_fields_values", "name"], outcome
    assert (crm["name"], phones(crm)) == ("Ana Pereira", ["+15557000001"])
    assert amo.stats()[PATCHES] == 1
    assert only(connector, replace(update, attempt=2)).status == "done"  # the delivery repeated
    assert amo.stats()[PATCHES] == 1 and phones(crm) == ["+15557000001"]
    # the contact's next conversation, now with the phone, finds the same amoCRM contact
    with_phone = {**hidden, "name": "Ana Pereira", "phone": "+15557000001"}
    assert only(connector, started(2, with_phone)).status == "done"
    assert len(amo.store.contacts) == 1 and len(crm["lead_ids"]) == 1  # its open deal, reused


def test_a_managers_rename_wins_and_a_phone_is_added_never_replaced(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    customer = ev.contact(2)
    assert only(connector, started(2, customer)).status == "done"
    crm = crm_contact(amo, "Customer 2")
    crm["name"] = "Ana (wholesale)"  # a manager renamed the contact in amoCRM
    outcome = only(connector, updated(customer, {"name": {"old": "Customer 2", "new": "Ana P."},
                                                 "phone": {"old": customer["phone"], "new": "+15557999999"}}))
    assert outcome.status == "done" and outcome.response["kept"], outcome
    assert crm["name"] == "Ana (wholesale)"
    assert phones(crm) == [customer["phone"], "+15557999999"]


def test_the_name_follows_each_update_the_hub_wrote(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    customer = ev.contact(3)
    assert only(connector, started(3, customer)).status == "done"
    crm = crm_contact(amo, "Customer 3")
    first = {"name": {"old": "Customer 3", "new": "Bruno"}}
    assert only(connector, updated(customer, first)).status == "done"
    assert only(connector, updated({**customer, "name": "Bruno"}, {"name": {"old": "Bruno", "new": "Bruno Lima"}},
                                   eid="evt-upd-2")).status == "done"
    assert crm["name"] == "Bruno Lima"
    crm["name"] = "Mr Lima"  # now a manager's
    assert only(connector, updated({**customer, "name": "Bruno Lima"}, {"name": {"old": "Bruno Lima", "new": "B."}},
                                   eid="evt-upd-3")).status == "done"
    assert crm["name"] == "Mr Lima"


def test_an_update_before_the_contact_is_in_amocrm_waits_for_it(runtime, amo):
    connector = instance(runtime, add_connector(runtime, long_lived_settings(amo)))
    customer = ev.contact(4)
    update = updated(customer, {"name": {"old": "Customer 4", "new": "Carla"}})
    early = only(connector, update)
    assert early.status == "retry" and "not in amoCRM yet" in early.error
    assert amo.store.contacts == {}
    assert only(connector, started(4, customer)).status == "done"  # created with the name it had
    assert only(connector, replace(update, attempt=2)).status == "done"
    assert crm_contact(amo, "Carla")["id"]
    stale = replace(update, id="evt-old", occurred_at=utcnow() - timedelta(days=2),
                    data={**update.data, "contact": {**update.data["contact"], "id": 9999, "phone": None}})
    assert only(connector, stale).response == {"skipped": "the contact never reached amoCRM"}


def test_the_race_through_the_outbox_ends_with_the_latest_name(runtime, amo):
    """The update is emitted and claimed before the conversation that creates the contact:
    its delivery retries until the contact exists, then applies."""
    add_connector(runtime, long_lived_settings(amo))
    customer = ev.contact(5)
    with runtime.db.scope() as session:
        ev.emit_event(session, "contact.updated", {"contact": {**customer, "name": "Dora"},
                                                   "changes": {"name": {"old": "Customer 5", "new": "Dora"}}})
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 5, messages=1)
    assert drain(runtime) == {"done": 3}
    (crm,) = amo.store.contacts.values()
    assert crm["name"] == "Dora" and phones(crm) == [customer["phone"]]
