"""A contact linked to a person (docs/events.md `contact.person`) reaches the person's
CRM contact in every CRM connector, and `new_channel_opens_deal` decides whether its
conversation gets the person's open deal or a new one."""
from __future__ import annotations

import pytest

from connectors.base import HubEvent
from connectors.person import as_person, linked, reuses_open_deal
from hub.crm.worker import Worker
from tests.connectors.bitrix24 import factory as b24_events
from tests.connectors.bitrix24.conftest import portal, webhook_settings  # noqa: F401 (fixture)
from tests.connectors.bitrix24.test_connector import make as make_bitrix24
from tests.connectors.hubspot import events as hs_events
from tests.connectors.hubspot.conftest import emu, make_connector  # noqa: F401 (fixture)


def telegram_of(person: dict, contact_id: int) -> dict:
    """The person's Telegram contact as its events show it: no phone of its own (an
    operator's merge), the person beside it."""
    return {"id": contact_id, "wa_id": None, "phone": None, "name": "Ana on Telegram", "username": "ana_tg",
            "user_id": "tg:42", "person_id": person["id"],
            "person": {k: person[k] for k in ("id", "wa_id", "user_id", "phone", "name")}}


# -- the pure rules -------------------------------------------------------------------------
def test_as_person_takes_the_persons_identity_and_keeps_an_unlinked_contact():
    person = hs_events.contact(9)
    tg = telegram_of(person, 900)
    assert linked(tg) and not linked(person) and not linked({**person, "person_id": None})
    assert as_person(person) is person
    seen = as_person(tg)
    assert (seen["id"], seen["wa_id"], seen["phone"], seen["name"], seen["username"]) == \
        (9, person["wa_id"], person["phone"], person["name"], "ana_tg")
    assert linked({**person, "person": {"id": 9}}) is False  # the canonical contact itself


@pytest.mark.parametrize("is_linked, opens, usual, expected", [
    (False, True, True, True), (False, False, False, False),
    (True, False, False, True), (True, True, True, False)])
def test_a_linked_contact_follows_new_channel_opens_deal(is_linked, opens, usual, expected):
    person = hs_events.contact(9)
    contact = telegram_of(person, 900) if is_linked else person
    assert reuses_open_deal(contact, new_channel_opens_deal=opens, usual=usual) is expected


# -- Bitrix24 -------------------------------------------------------------------------------
def bitrix24_event(kind: str, conv_id: int, contact: dict) -> HubEvent:
    return HubEvent(id=f"evt-{kind}-{conv_id}", type=kind, version=1, occurred_at=b24_events.T0,
                    data={"conversation": {**b24_events.conversation(1, source=None), "id": conv_id},
                          "contact": contact}, ordering_key=f"conversation:{conv_id}")


@pytest.mark.parametrize("opens, deals", [(False, 1), (True, 2)])
def test_bitrix24_puts_a_linked_contact_on_the_persons_contact(runtime, portal, opens, deals):  # noqa: F811
    b24 = make_bitrix24(runtime, webhook_settings(portal, new_channel_opens_deal=opens))
    person = b24_events.contact(1)
    assert b24.deliver([bitrix24_event("conversation.started", 5001, person)])[0].status == "done"
    outcome = b24.deliver([bitrix24_event("conversation.started", 6001, telegram_of(person, 2001))])[0]
    assert outcome.status == "done", outcome
    counts = portal.counts()
    assert (counts["contacts"], counts["deals"]) == (1, deals)
    assert {d["CONTACT_ID"] for d in portal.portal.deals.values()} == {str(next(iter(portal.portal.contacts)))}


# -- HubSpot --------------------------------------------------------------------------------
@pytest.mark.parametrize("opens, deals", [(False, 1), (True, 2)])
def test_hubspot_puts_a_linked_contact_on_the_persons_contact(runtime, emu, opens, deals):  # noqa: F811
    make_connector(runtime, emu, new_channel_opens_deal=opens)
    person = hs_events.contact(9)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    with runtime.db.scope() as session:
        hs_events.emit_event(session, "conversation.started",
                             {"conversation": hs_events.conversation(9), "contact": person}, 9)
    worker.drain()
    with runtime.db.scope() as session:
        hs_events.emit_event(session, "message.received",
                             {"conversation": hs_events.conversation(10), "contact": telegram_of(person, 900),
                              "message": hs_events.message(1001)}, 10)
    worker.drain()
    assert emu.counts() == {"contacts": 1, "deals": deals, "notes": 1}
