"""A deal owner changed in HubSpot follows into the hub (signed deal.propertyChange webhooks)."""
from __future__ import annotations

import json

from connectors.base import AssignConversation
from hub.crm.worker import Worker
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import OLGA, contact, conversation, emit_event
from tests.connectors.hubspot.test_connector import instance
from tests.connectors.hubspot.test_webhooks import signed

OLGA_OWNER, IVAN_OWNER, ANA_OWNER = "41629779", "41629780", "41629781"
IVAN = {"id": 5, "email": "ivan@example.com", "name": "Ivan"}


def _assigned(runtime, who: dict) -> None:
    with runtime.db.scope() as session:
        emit_event(session, "conversation.assigned", {"conversation": conversation(21, assignee=who),
                                                      "contact": contact(21), "assignee": who}, 21)
    Worker(runtime.db, runtime.vault, runtime.config).drain()


def _webhook(emu):
    """What the emulator has queued for its subscribers, as one signed delivery."""
    events, emu.state.pending_webhooks = emu.state.pending_webhooks, []
    return events, signed(json.dumps(events).encode())


def test_a_hand_over_in_hubspot_assigns_the_chat_once_and_the_hubs_own_writes_do_not_come_back(runtime, emu):
    cid = make_connector(runtime, emu, owner_map={"olga@example.com": OLGA_OWNER, "ivan@example.com": IVAN_OWNER},
                         match_owners_by_email=False)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(21), "contact": contact(21)}, 21)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    deal_id = emu.records("deals")[0]["id"]
    connector = instance(runtime, cid)
    _webhook(emu)

    _assigned(runtime, OLGA)
    events, own_write = _webhook(emu)
    assert [(e["propertyName"], e["propertyValue"], e["changeSource"]) for e in events] == [
        ("hubspot_owner_id", OLGA_OWNER, "INTEGRATION")]
    assert connector.handle_webhook(own_write) == []  # the hub's own write

    emu.hand_over(deal_id, IVAN_OWNER)
    _, ivan = _webhook(emu)
    assert connector.handle_webhook(ivan) == [AssignConversation(conversation_id=21, assignee_email="ivan@example.com")]
    assert connector.handle_webhook(ivan) == []  # HubSpot retries the delivery: once

    emu.hand_over(deal_id, ANA_OWNER)
    _, ana = _webhook(emu)
    assert connector.handle_webhook(ana) == []  # Ana is no operator of the hub: the chat stays
    assert connector.handle_webhook(ivan) == []  # a stale retry names an owner the deal no longer has

    emu.hand_over(deal_id, IVAN_OWNER)
    _, back = _webhook(emu)
    assert connector.handle_webhook(back) == [AssignConversation(conversation_id=21, assignee_email="ivan@example.com")]

    # The hub's conversation.assigned for Ivan writes the owner HubSpot already has: no
    # change there, so no webhook, and the earlier one still changes nothing.
    _assigned(runtime, IVAN)
    assert emu.state.pending_webhooks == []
    assert connector.handle_webhook(back) == []


def test_owners_matched_by_email_follow_too(runtime, emu):
    cid = make_connector(runtime, emu)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(21), "contact": contact(21)}, 21)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    emu.hand_over(emu.records("deals")[0]["id"], ANA_OWNER)
    _, ana = _webhook(emu)
    assert instance(runtime, cid).handle_webhook(ana) == [
        AssignConversation(conversation_id=21, assignee_email="ana@example.com")]
