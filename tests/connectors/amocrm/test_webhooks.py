"""amoCRM -> hub: form-encoded webhooks from fixtures and from the emulator's sender."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import requests

from connectors.amocrm import AmoCrmConnector
from connectors.base import ConnectorContext, InboundRequest, SendTemplate, SendText, WebhookRejected
from hub.platform.db import utcnow
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, drain, instance, long_lived_settings, wait_for
from tests.support.receiver import Receiver
from tests.support.links import MemoryLinks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "amocrm"


def fixture_request(name: str) -> InboundRequest:
    body = json.loads((FIXTURES / f"{name}.json").read_text())["body"]
    return InboundRequest(method="POST", url="https://hub.example/webhooks/connectors/k",
                          path="/webhooks/connectors/k",
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, query={},
                          body=body.encode(), form=dict(parse_qsl(body, keep_blank_values=True)))


class NoNetwork(requests.Session):
    def request(self, *args, **kwargs):
        raise AssertionError(f"unexpected request {args[:2]}")


def offline_connector(links: MemoryLinks, **settings) -> AmoCrmConnector:
    """Connector for account "acme" whose every answer must come from the webhook itself."""
    loaded = AmoCrmConnector.Settings().load({"base_url": "https://acme.amocrm.ru", "long_lived_token": "t",
                                              **settings})
    ctx = ConnectorContext(connector_id=1, name="amo", settings=loaded, links=links, http=NoNetwork(),
                           clock=utcnow)
    return AmoCrmConnector(ctx)


def test_status_fixture_gives_template_from_the_webhooks_own_copy_of_the_deal():
    links = MemoryLinks({("lead", "25399013"): "734"})
    connector = offline_connector(links, stage_rules=[
        '7000001/142 -> order_delivered:en(lead.name, lead.field[583921], lead.price)',
        "7000002/142 -> other_pipeline:en",
        "143 -> lost:en"])
    commands = connector.handle_webhook(fixture_request("leads_status__won"))
    assert commands == [SendTemplate(template="order_delivered", language="en",
                                     variables=["Заказ #1042", "1042", "22500"], conversation_id=734,
                                     reason="amoCRM deal 25399013 entered stage 142")]
    # amoCRM repeats a webhook it thinks failed: no second message.
    assert connector.handle_webhook(fixture_request("leads_status__won")) == []


def test_note_fixture_with_reply_prefix_becomes_a_text_message():
    connector = offline_connector(MemoryLinks({("lead", "25399013"): "734"}))
    commands = connector.handle_webhook(fixture_request("leads_note__reply"))
    assert commands == [SendText(text="Your sofa ships tomorrow 🚚", conversation_id=734, author="Ivan Sales")]
    assert connector.handle_webhook(fixture_request("leads_note__reply")) == []


def test_webhook_of_another_account_is_rejected():
    connector = offline_connector(MemoryLinks(), base_url="https://other.amocrm.ru")
    with pytest.raises(WebhookRejected) as info:
        connector.handle_webhook(fixture_request("leads_status__won"))
    assert info.value.status == 403 and "'acme'" in info.value.message


@pytest.mark.parametrize("method, body, status, message", [
    ("POST", b"hello=world", 400, "account[subdomain] is missing"),
    ("POST", b"[broken=1", 400, "not an amoCRM webhook body"),
    ("GET", b"", 405, "POSTed"),
    ("POST", b"leads[status][0][name]=x&account[subdomain]=acme", 400, "without id or status_id"),
])
def test_malformed_webhooks_are_refused(method, body, status, message):
    request = InboundRequest(method=method, url="u", path="/p", headers={}, query={}, body=body, form={})
    with pytest.raises(WebhookRejected) as info:
        offline_connector(MemoryLinks()).handle_webhook(request)
    assert info.value.status == status and message in info.value.message


def test_reply_prefix_needs_a_word_boundary_and_text():
    from connectors.amocrm.webhooks import reply_text
    assert reply_text("/wa hi", "/wa") == "hi"
    assert reply_text("  /wa   hi there ", "/wa") == "hi there"
    assert reply_text("/wallet", "/wa") is None and reply_text("/wa", "/wa") is None
    assert reply_text("/wa hi", "") is None and reply_text("WhatsApp #1 ← Ana", "/wa") is None


def to_inbound(received) -> InboundRequest:
    body = received.body.decode()
    return InboundRequest(method=received.method, url="http://hub.test" + received.path, path=received.path,
                          headers=received.headers, query={}, body=received.body,
                          form=dict(parse_qsl(body, keep_blank_values=True)))


def test_emulator_webhooks_drive_rules_and_replies(runtime, amo):
    rules = ['7000001/7000014 -> order_shipped:en(contact.name, lead.field[ORDER_NO] | "your order")',
             "7000001/142 -> thanks:en"]
    cid = add_connector(runtime, long_lived_settings(amo, stage_rules=rules))
    with Receiver() as hub:
        amo.register_webhook(hub.url + "/webhooks/connectors/key")
        with runtime.db.scope() as session:
            for n in (1, 2):
                ev.emit_conversation(session, n, messages=1)
        drain(runtime)  # the hub's own notes come back as webhooks too: none is a reply
        connector = instance(runtime, cid)
        leads = sorted(amo.store.leads)
        amo.move_lead(leads[0], 7000014)  # a salesperson moves the deal of conversation 501
        amo.user_note(leads[1], "/wa Hello from the CRM")  # and replies on 502's deal
        amo.user_note(leads[1], "internal remark")  # not for the customer
        amo.move_lead(leads[1], 142)
        amo.flush_webhooks()
        wait_for(lambda: len(hub.requests) >= 6, what="webhooks")
        assert sum(1 for r in hub.requests if r.body.startswith(b"leads%5Bnote%5D")) == 4
        commands = [c for r in hub.requests for c in connector.handle_webhook(to_inbound(r))]
    assert commands == [
        SendTemplate(template="order_shipped", language="en", variables=["Customer 1", "your order"],
                     conversation_id=501, reason=f"amoCRM deal {leads[0]} entered stage 7000014"),
        SendText(text="Hello from the CRM", conversation_id=502, author="Ivan Sales"),
        SendTemplate(template="thanks", language="en", variables=[], conversation_id=502,
                     reason=f"amoCRM deal {leads[1]} entered stage 142"),
    ]


def test_deal_created_in_amocrm_without_conversation_uses_the_contacts_phone(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, stage_rules=["7000014 -> order_shipped:en(contact.name)"]))
    lead_id = amo.store.add_complex([{"name": "Phone order", "_embedded": {"contacts": [{"name": "Ana", "custom_fields_values": [
        {"field_code": "PHONE", "values": [{"value": "8 (912) 000-11-22", "enum_code": "WORK"}]}]}]}}])[0]["id"]
    connector = instance(runtime, cid)
    with Receiver() as hub:
        amo.register_webhook(hub.url + "/hook", ["status_lead"])
        amo.move_lead(lead_id, 7000014)
        amo.flush_webhooks()
        wait_for(lambda: hub.requests, what="webhook")
        commands = connector.handle_webhook(to_inbound(hub.requests[0]))
    # "8 (912) ..." has no country: unreadable without a region, so no phone -> nothing sent.
    assert commands == []
    amo.store.contacts[amo.store.leads[lead_id]["contact_ids"][0]]["custom_fields_values"][0]["values"][0]["value"] = \
        "+7 912 000-11-22"
    with Receiver() as hub:
        amo.emulator.webhooks.clear()
        amo.register_webhook(hub.url + "/hook", ["status_lead"])
        amo.move_lead(lead_id, 7000013)
        amo.move_lead(lead_id, 7000014)
        amo.flush_webhooks()
        wait_for(lambda: len(hub.requests) == 2, what="webhooks")
        commands = [c for r in hub.requests for c in connector.handle_webhook(to_inbound(r))]
    assert commands == [SendTemplate(template="order_shipped", language="en", variables=["Ana"],
                                     phone="+79120001122", reason=f"amoCRM deal {lead_id} entered stage 7000014")]


def test_amocrm_unavailable_while_reading_asks_for_a_repeat(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, stage_rules=["7000014 -> shipped:en(contact.name)"]))
    connector = instance(runtime, cid)
    request = fixture_request("leads_status__won")
    form = dict(request.form)
    form["leads[status][0][status_id]"] = "7000014"
    form["leads[status][0][old_status_id]"] = "7000013"
    form["account[subdomain]"] = "emulator"
    amo.chaos(fail_rate=1.0)
    with pytest.raises(WebhookRejected) as info:
        connector.handle_webhook(dataclasses.replace(request, form=form))
    assert info.value.status == 503 and "will send the webhook again" in info.value.message


# -- Test connection subscribes the connector's URL ----------------------------------------------
def _with_url(runtime, cid):
    from hub.crm.store import build_connector
    from hub.models import ConnectorRecord

    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        session.expunge(record)
    connector = build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=5,
                                base_url="https://hub.example.com")
    return connector, f"https://hub.example.com/webhooks/connectors/{record.webhook_key}"


def test_test_connection_subscribes_the_webhook_that_stage_rules_need(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, stage_rules=["7000014 -> shipped:en(contact.name)"]))
    connector, url = _with_url(runtime, cid)
    result = connector.check()
    assert result.ok and "amoCRM webhook subscribed for status_lead" in result.message
    assert amo.emulator.webhooks == [{"destination": url, "settings": ["status_lead"], "disabled": False}]
    again = connector.check()
    assert again.ok and "webhook" not in again.message  # already there: nothing to do
    assert len(amo.emulator.webhooks) == 1


def test_test_connection_enables_a_webhook_amocrm_switched_off_keeping_its_events(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, stage_rules=["7000014 -> shipped:en(contact.name)"]))
    connector, url = _with_url(runtime, cid)
    amo.register_webhook(url, ["note_lead"])  # the admin subscribed replies by hand
    assert "subscribed for note_lead, status_lead" in connector.check().message
    amo.emulator.disable_webhooks()  # after the hub failed to answer many times
    result = connector.check()
    assert result.ok and "amoCRM webhook enabled again for note_lead, status_lead" in result.message
    assert amo.emulator.webhooks == [{"destination": url, "settings": ["note_lead", "status_lead"],
                                      "disabled": False}]


def test_without_stage_rules_nothing_is_subscribed_but_a_switched_off_webhook_comes_back(runtime, amo):
    connector, url = _with_url(runtime, add_connector(runtime, long_lived_settings(amo)))
    assert connector.check().ok and amo.emulator.webhooks == []
    amo.register_webhook(url, ["note_lead"])
    amo.emulator.disable_webhooks()
    assert "amoCRM webhook enabled again for note_lead" in connector.check().message
    assert amo.emulator.webhooks == [{"destination": url, "settings": ["note_lead"], "disabled": False}]
