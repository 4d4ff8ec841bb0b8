"""contact.updated in Bitrix24 (crm.contact.update): NAME / LAST_NAME follow while Bitrix24
still shows the hub's name (a manager's rename wins), a phone is added as a new PHONE
item beside the contact's (never changing one), a repeat writes nothing, and an update
that arrives before its contact is in Bitrix24 waits for it."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connectors.base import HubEvent
from tests.support.contact_updates import only, updated
from hub.platform.db import utcnow
from tests.connectors.amocrm.conftest import drain
from tests.connectors.bitrix24 import factory as f
from tests.connectors.bitrix24.conftest import portal, webhook_settings  # noqa: F401 (fixture)
from tests.connectors.bitrix24.test_connector import make
from tests.conftest import make_config
from hub.events.outbox import emit
from hub.crm.store import create_connector


@pytest.fixture
def config(database_url, tmp_path):
    """Quick retries: the race test waits through a few backoff rounds."""
    return make_config(database_url, tmp_path, delivery__backoff_base_seconds=0.1, delivery__backoff_max_seconds=0.5)


def started(i: int, contact: dict[str, Any]) -> HubEvent:
    return HubEvent(f"evt-start-{i}", "conversation.started", 1, utcnow(),
                    {"conversation": f.conversation(i, source=None), "contact": contact},
                    ordering_key=f"conversation:{5000 + i}")


def the_contact(portal) -> dict[str, Any]:  # noqa: F811
    (row,) = portal.portal.contacts.values()
    return row


def phones(row: dict[str, Any]) -> list[str]:
    return [p["VALUE"] for p in row["PHONE"]]


def updates(portal) -> int:  # noqa: F811
    return portal.portal.stats["methods"].get("crm.contact.update", 0)


def test_a_new_name_and_phone_reach_the_bitrix24_contact_and_a_repeat_writes_nothing(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    hidden = f.contact(1, phone=False)
    assert only(b24, started(1, hidden)).status == "done"
    row = the_contact(portal)
    assert (row["NAME"], row["LAST_NAME"], row["PHONE"]) == ("Customer", "1 Example", [])
    update = updated(hidden, {"name": {"old": "Customer 1 Example", "new": "Ana"},
                              "phone": {"old": None, "new": "+15557000001"}})
    outcome = only(b24, update)
    assert outcome.status == "done" and outcome.response["updated"] == ["LAST_NAME", "NAME", "PHONE"], outcome
    assert (row["NAME"], row["LAST_NAME"], phones(row)) == ("Ana", "", ["+15557000001"])
    assert only(b24, replace(update, attempt=2)).status == "done"
    assert updates(portal) == 1 and phones(row) == ["+15557000001"]


def test_a_managers_rename_wins_and_a_phone_is_added_never_replaced(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    customer = f.contact(2)
    assert only(b24, started(2, customer)).status == "done"
    row = the_contact(portal)
    row["NAME"], row["LAST_NAME"] = "Ana", "(wholesale)"  # a manager's edit in Bitrix24
    outcome = only(b24, updated(customer, {"name": {"old": "Customer 2 Example", "new": "Ana Pereira"},
                                           "phone": {"old": customer["phone"], "new": "+15557999999"}}))
    assert outcome.status == "done" and outcome.response["kept"], outcome
    assert (row["NAME"], row["LAST_NAME"]) == ("Ana", "(wholesale)")
    assert phones(row) == [customer["phone"], "+15557999999"]
    assert [p["ID"] for p in row["PHONE"]] == ["1", "2"]


def test_the_name_follows_each_update_the_hub_wrote(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    customer = f.contact(3)
    assert only(b24, started(3, customer)).status == "done"
    row = the_contact(portal)
    assert only(b24, updated(customer, {"name": {"old": "Customer 3 Example", "new": "Bruno"}})).status == "done"
    assert only(b24, updated({**customer, "name": "Bruno"}, {"name": {"old": "Bruno", "new": "Bruno Lima"}},
                             eid="evt-upd-2")).status == "done"
    assert (row["NAME"], row["LAST_NAME"]) == ("Bruno", "Lima")
    row["NAME"] = "Mr"
    assert only(b24, updated({**customer, "name": "Bruno Lima"}, {"name": {"old": "Bruno Lima", "new": "B."}},
                             eid="evt-upd-3")).status == "done"
    assert (row["NAME"], row["LAST_NAME"]) == ("Mr", "Lima")


def test_an_update_before_the_contact_is_in_bitrix24_waits_for_it(runtime, portal):  # noqa: F811
    b24 = make(runtime, webhook_settings(portal))
    customer = f.contact(4)
    update = updated(customer, {"name": {"old": "Customer 4 Example", "new": "Carla Dias"}})
    early = only(b24, update)
    assert early.status == "retry" and "not in Bitrix24 yet" in early.error
    assert portal.portal.contacts == {}
    assert only(b24, started(4, customer)).status == "done"
    assert only(b24, replace(update, attempt=2)).status == "done"
    assert (the_contact(portal)["NAME"], the_contact(portal)["LAST_NAME"]) == ("Carla", "Dias")


def test_the_race_through_the_outbox_ends_with_the_latest_name(runtime, portal):  # noqa: F811
    now = utcnow()
    customer = f.contact(5)
    conv = f.conversation(5, source=None)
    with runtime.db.scope() as session:
        create_connector(session, runtime.vault, kind="bitrix24", name="b24", settings=webhook_settings(portal),
                         now=now)
    with runtime.db.scope() as session:
        emit(session, "contact.updated", {"contact": {**customer, "name": "Dora Reis"},
                                          "changes": {"name": {"old": "Customer 5 Example", "new": "Dora Reis"}}},
             now=now, ordering_key=f"contact:{customer['id']}")
    with runtime.db.scope() as session:
        emit(session, "conversation.started", {"conversation": conv, "contact": customer}, now=now,
             ordering_key=f"conversation:{conv['id']}")
    assert drain(runtime) == {"done": 2}
    row = the_contact(portal)
    assert (row["NAME"], row["LAST_NAME"], phones(row)) == ("Dora", "Reis", [customer["phone"]])
