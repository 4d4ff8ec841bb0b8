"""A responsible user changed in amoCRM follows into the hub (responsible_lead webhooks)."""
from __future__ import annotations

from connectors.base import AssignConversation
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, drain, instance, long_lived_settings, wait_for
from tests.connectors.amocrm.test_webhooks import _with_url, to_inbound
from tests.support.receiver import Receiver

OLGA_ID, IVAN_ID, MARIA_ID = 9_000_001, 9_000_002, 9_000_003
OPERATORS = {"olga@example.com": OLGA_ID, "ivan@example.com": IVAN_ID}


def _assigned(session, n: int, who: dict) -> None:
    conv = {**ev.conversation(n), "assignee": who}
    ev.emit_event(session, "conversation.assigned", {"conversation": conv, "contact": ev.contact(n),
                                                     "assignee": who, "previous": None})


def test_a_hand_over_in_amocrm_assigns_the_chat_once_and_the_hubs_own_writes_do_not_come_back(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, operator_users=OPERATORS))
    with Receiver() as hub:
        amo.register_webhook(hub.url + "/webhooks/connectors/key", ["responsible_lead"])
        with runtime.db.scope() as session:
            ev.emit_conversation(session, 1, messages=1)
            _assigned(session, 1, ev.IVAN)
        assert set(drain(runtime)) == {"done"}
        [(lead_id, lead)] = amo.store.leads.items()
        assert lead["responsible_user_id"] == IVAN_ID
        connector = instance(runtime, cid)

        def webhooks_now(count: int) -> list:
            amo.flush_webhooks()
            wait_for(lambda: len(hub.requests) >= count, what=f"{count} webhooks")
            return [connector.handle_webhook(to_inbound(r)) for r in hub.requests[count - 1:count]][0]

        assert webhooks_now(1) == []  # amoCRM's webhook for the hub's own write
        amo.emulator.hand_over(lead_id, MARIA_ID)
        assert webhooks_now(2) == []  # Maria has no hub operator: the chat stays
        amo.emulator.hand_over(lead_id, OLGA_ID)
        assert webhooks_now(3) == [AssignConversation(conversation_id=501, assignee_email="olga@example.com")]
        assert connector.handle_webhook(to_inbound(hub.requests[2])) == []  # amoCRM repeats it: once

        # The hub's conversation.assigned for Olga goes back as the same value: no new
        # change in amoCRM, and a webhook about it would change nothing either.
        with runtime.db.scope() as session:
            _assigned(session, 1, ev.OLGA)
        assert set(drain(runtime)) == {"done"}
        amo.flush_webhooks()
        assert lead["responsible_user_id"] == OLGA_ID and len(hub.requests) == 3
        assert connector.handle_webhook(to_inbound(hub.requests[2])) == []


def test_without_an_operator_map_hand_overs_stay_in_amocrm(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo))
    with Receiver() as hub:
        amo.register_webhook(hub.url + "/webhooks/connectors/key", ["responsible_lead"])
        with runtime.db.scope() as session:
            ev.emit_conversation(session, 1, messages=1)
        assert set(drain(runtime)) == {"done"}
        [lead_id] = amo.store.leads
        amo.emulator.hand_over(lead_id, IVAN_ID)
        amo.flush_webhooks()
        wait_for(lambda: len(hub.requests) >= 1, what="the responsible webhook")
        assert instance(runtime, cid).handle_webhook(to_inbound(hub.requests[0])) == []


def test_test_connection_subscribes_responsible_changes_with_an_operator_map(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, operator_users=OPERATORS))
    connector, url = _with_url(runtime, cid)
    result = connector.check()
    assert result.ok and "amoCRM webhook subscribed for responsible_lead" in result.message
    assert amo.emulator.webhooks == [{"destination": url, "settings": ["responsible_lead"], "disabled": False}]
