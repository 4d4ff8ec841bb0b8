"""contact.updated in HubSpot (PATCH /crm/v3/objects/contacts/{id}): firstname / lastname
follow while HubSpot still shows the hub's name (a manager's rename wins), a new phone
goes to an empty phone or mobile phone (never over a number HubSpot has), a repeat writes
nothing, and an update that arrives before its contact is in HubSpot waits for it."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connectors.base import HubEvent
from tests.support.contact_updates import only, updated
from hub.crm.store import build_connector
from hub.events.outbox import emit
from hub.models import ConnectorRecord
from hub.platform.db import utcnow
from tests.conftest import make_config
from tests.connectors.amocrm.conftest import drain
from tests.connectors.hubspot import events as ev
from tests.connectors.hubspot.conftest import emu, make_connector  # noqa: F401 (fixture)


@pytest.fixture
def config(database_url, tmp_path):
    """Quick retries: the race test waits through a few backoff rounds."""
    return make_config(database_url, tmp_path, delivery__backoff_base_seconds=0.1, delivery__backoff_max_seconds=0.5)


def connector(runtime, emu):  # noqa: F811
    connector_id = make_connector(runtime, emu)
    with runtime.db.scope() as session:
        return build_connector(runtime.db, runtime.vault, session.get(ConnectorRecord, connector_id), clock=utcnow,
                               http_timeout=5)


def started(n: int, contact: dict[str, Any]) -> HubEvent:
    return HubEvent(f"evt-start-{n}", "conversation.started", 1, utcnow(),
                    {"conversation": ev.conversation(n), "contact": contact}, ordering_key=f"conversation:{n}")


def props(emu) -> dict[str, Any]:  # noqa: F811
    (record,) = emu.state.objects["contacts"].values()
    return record["properties"]


def updates(emu) -> int:  # noqa: F811
    return emu.state.counters["updated:contacts"]


def hidden(n: int) -> dict[str, Any]:
    """A username-only WhatsApp user: no phone yet."""
    return {"id": n, "wa_id": None, "phone": None, "name": f"Customer {n}", "username": f"user{n}",
            "user_id": f"US.{1349120865530274 + n}"}


def test_a_new_name_and_phone_reach_the_hubspot_contact_and_a_repeat_writes_nothing(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    customer = hidden(1)
    assert only(hubspot, started(1, customer)).status == "done"
    assert (props(emu)["firstname"], props(emu)["lastname"], props(emu).get("phone")) == ("Customer", "1", None)
    update = updated(customer, {"name": {"old": "Customer 1", "new": "Ana"},
                                "phone": {"old": None, "new": "+15550000001"}})
    outcome = only(hubspot, update)
    assert outcome.status == "done" and outcome.response["updated"] == ["firstname", "lastname", "phone"], outcome
    assert (props(emu)["firstname"], props(emu)["lastname"], props(emu)["phone"]) == ("Ana", "", "+15550000001")
    assert only(hubspot, replace(update, attempt=2)).status == "done"
    assert updates(emu) == 1


def test_a_managers_rename_wins_and_a_phone_is_added_never_replaced(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    customer = ev.contact(2)
    assert only(hubspot, started(2, customer)).status == "done"
    props(emu).update(firstname="Ana", lastname="(wholesale)")  # a manager's edit in HubSpot
    outcome = only(hubspot, updated(customer, {"name": {"old": "Customer 2", "new": "Ana Pereira"},
                                               "phone": {"old": customer["phone"], "new": "+15559999999"}}))
    assert outcome.status == "done" and outcome.response["kept"], outcome
    assert (props(emu)["firstname"], props(emu)["lastname"]) == ("Ana", "(wholesale)")
    assert (props(emu)["phone"], props(emu)["mobilephone"]) == (customer["phone"], "+15559999999")
    third = only(hubspot, updated(customer, {"phone": {"old": "+15559999999", "new": "+15558888888"}}, eid="evt-upd-2"))
    assert third.status == "done" and "phone_not_added" in third.response, third
    assert (props(emu)["phone"], props(emu)["mobilephone"]) == (customer["phone"], "+15559999999")


def test_the_name_follows_each_update_the_hub_wrote(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    customer = ev.contact(3)
    assert only(hubspot, started(3, customer)).status == "done"
    assert only(hubspot, updated(customer, {"name": {"old": "Customer 3", "new": "Bruno"}})).status == "done"
    assert only(hubspot, updated({**customer, "name": "Bruno"}, {"name": {"old": "Bruno", "new": "Bruno Lima"}},
                                 eid="evt-upd-2")).status == "done"
    assert (props(emu)["firstname"], props(emu)["lastname"]) == ("Bruno", "Lima")
    props(emu)["firstname"] = "Mr"
    assert only(hubspot, updated({**customer, "name": "Bruno Lima"}, {"name": {"old": "Bruno Lima", "new": "B."}},
                                 eid="evt-upd-3")).status == "done"
    assert (props(emu)["firstname"], props(emu)["lastname"]) == ("Mr", "Lima")


def test_an_update_before_the_contact_is_in_hubspot_waits_for_it(runtime, emu):  # noqa: F811
    hubspot = connector(runtime, emu)
    customer = ev.contact(4)
    update = updated(customer, {"name": {"old": "Customer 4", "new": "Carla Dias"}})
    early = only(hubspot, update)
    assert early.status == "retry" and "not in HubSpot yet" in early.error
    assert emu.state.objects["contacts"] == {}
    assert only(hubspot, started(4, customer)).status == "done"
    assert only(hubspot, replace(update, attempt=2)).status == "done"
    assert (props(emu)["firstname"], props(emu)["lastname"]) == ("Carla", "Dias")


def test_the_race_through_the_outbox_ends_with_the_latest_name(runtime, emu):  # noqa: F811
    make_connector(runtime, emu)
    now = utcnow()
    customer = ev.contact(5)
    with runtime.db.scope() as session:
        emit(session, "contact.updated", {"contact": {**customer, "name": "Dora Reis"},
                                          "changes": {"name": {"old": "Customer 5", "new": "Dora Reis"}}},
             now=now, ordering_key=f"contact:{customer['id']}")
    with runtime.db.scope() as session:
        emit(session, "conversation.started", {"conversation": ev.conversation(5), "contact": customer}, now=now,
             ordering_key="conversation:5")
    assert drain(runtime) == {"done": 2}
    assert (props(emu)["firstname"], props(emu)["lastname"], props(emu)["phone"]) == ("Dora", "Reis",
                                                                                      customer["phone"])
