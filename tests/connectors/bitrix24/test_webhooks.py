"""Events from Bitrix24 -> SendTemplate commands, verified by the application token."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from connectors.base import InboundRequest, SendTemplate, WebhookRejected
from connectors.bitrix24 import emulator
from hub.crm.store import build_connector, create_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from tests.connectors.bitrix24.conftest import oauth_settings, webhook_settings
from tests.support.receiver import Receiver

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bitrix24"
DOCS_TOKEN = "51856fefc120afa4b628cc82d3935cce"


def request_from(body: str, path: str = "/webhooks/connectors/key") -> InboundRequest:
    return InboundRequest(method="POST", url=f"http://hub.test{path}", path=path,
                          headers={"Content-Type": "application/x-www-form-urlencoded"}, query={},
                          body=body.encode(), form=dict(parse_qsl(body, keep_blank_values=True)))


def fixture_request(name: str) -> InboundRequest:
    return request_from(json.loads((FIXTURES / name).read_text())["body"])


def connector(runtime, settings):
    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind="bitrix24", name="b24", settings=settings, now=utcnow())
        session.flush()
        record = session.get(ConnectorRecord, record.id)
        return build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=5)


@pytest.fixture
def docs_portal():
    now = [1736405000.0]
    with emulator.serve(application_token=DOCS_TOKEN, clock=lambda: now[0]) as handle:
        handle.now = now
        yield handle


def seed_deal(portal, deal_id=759, stage="C1:NEW", conversation="5007"):
    p = portal.portal
    cid = p.contact_add({"fields": {"NAME": "Ana", "LAST_NAME": "Souza", "PHONE": [{"VALUE": "+1 555 765-4321"}]}}).result
    p.ids["deal"] = deal_id - 1
    p._entity_add("deal", {"fields": {"TITLE": "Sofa order", "CATEGORY_ID": 1, "STAGE_ID": stage, "CONTACT_ID": cid,
                                      "ORIGINATOR_ID": "whatsapp-hub", "ORIGIN_ID": conversation}})
    p.outbox.clear()
    return cid


RULES = "C1:WON -> order_shipped:en | contact.NAME, deal.TITLE\nC1:LOSE -> sorry"


def test_deal_update_fixture_entering_a_rule_stage_sends_the_template(runtime, docs_portal):
    seed_deal(docs_portal)
    docs_portal.portal.move("deal", 759, "C1:WON")
    b24 = connector(runtime, webhook_settings(docs_portal, stage_rules=RULES, deal_category_id=1))
    commands = b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))
    assert commands == [SendTemplate(template="order_shipped", language="en", variables=["Ana", "Sofa order"],
                                     conversation_id=5007, phone="+15557654321",
                                     reason="Bitrix24 deal 759 entered stage C1:WON")]
    # every later edit fires ONCRMDEALUPDATE again; the stage entry already sent its template
    assert b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json")) == []
    # out and back in again is a new entry
    docs_portal.portal.move("deal", 759, "C1:EXECUTING")
    docs_portal.now[0] += 5
    docs_portal.portal.move("deal", 759, "C1:WON")
    assert len(b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))) == 1


def test_a_stage_without_rules_sends_nothing(runtime, docs_portal):
    seed_deal(docs_portal)
    docs_portal.portal.move("deal", 759, "C1:EXECUTING")
    b24 = connector(runtime, webhook_settings(docs_portal, stage_rules=RULES, deal_category_id=1))
    assert b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json")) == []


def test_lead_event_from_an_outbound_webhook(runtime, docs_portal):
    p = docs_portal.portal
    cid = p.contact_add({"fields": {"NAME": "Bo", "PHONE": [{"VALUE": "+447700900123"}]}}).result
    p.ids["lead"] = 40
    p._entity_add("lead", {"fields": {"TITLE": "Chat", "STATUS_ID": "IN_PROCESS", "CONTACT_ID": cid}})
    b24 = connector(runtime, webhook_settings(docs_portal, target="lead", stage_rules="IN_PROCESS -> first_reply:pt_BR | lead.TITLE"))
    commands = b24.handle_webhook(fixture_request("ONCRMLEADUPDATE__outbound_webhook.json"))
    assert commands == [SendTemplate(template="first_reply", language="pt_BR", variables=["Chat"], conversation_id=None,
                                     phone="+447700900123", reason="Bitrix24 lead 41 entered stage IN_PROCESS")]


def test_wrong_or_missing_application_token_is_refused(runtime, docs_portal):
    seed_deal(docs_portal)
    b24 = connector(runtime, webhook_settings(docs_portal, application_token="another-token-entirely", stage_rules=RULES))
    with pytest.raises(WebhookRejected) as err:
        b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))
    assert err.value.status == 401
    body = json.loads((FIXTURES / "ONCRMDEALUPDATE__documented.json").read_text())["body"]
    stripped = "&".join(p for p in body.split("&") if not p.startswith("auth%5Bapplication_token"))
    b24 = connector_named(runtime, webhook_settings(docs_portal, stage_rules=RULES), "b24-2")
    with pytest.raises(WebhookRejected):
        b24.handle_webhook(request_from(stripped))
    unconfigured = connector_named(runtime, webhook_settings(docs_portal, application_token=""), "b24-3")
    with pytest.raises(WebhookRejected) as err:
        unconfigured.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))
    assert err.value.status == 403


def connector_named(runtime, settings, name):
    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind="bitrix24", name=name, settings=settings, now=utcnow())
        session.flush()
        return build_connector(runtime.db, runtime.vault, session.get(ConnectorRecord, record.id),
                               clock=utcnow, http_timeout=5)


def test_events_bound_with_event_bind_reach_the_handler_and_become_commands(runtime, portal):
    with Receiver() as receiver:
        b24 = connector(runtime, oauth_settings(portal, stage_rules="WON -> thanks | contact.NAME"))
        assert b24.client.call("event.bind", {"event": "ONCRMDEALUPDATE", "handler": receiver.url + "/hook"}) is True
        assert b24.client.call("event.get") == [{"event": "ONCRMDEALUPDATE", "handler": receiver.url + "/hook",
                                                 "auth_type": "0", "offline": 0}]
        p = portal.portal
        cid = p.contact_add({"fields": {"NAME": "Ana", "PHONE": [{"VALUE": "+15557654321"}]}}).result
        deal = p._entity_add("deal", {"fields": {"TITLE": "T", "CONTACT_ID": cid, "ORIGINATOR_ID": "whatsapp-hub",
                                                 "ORIGIN_ID": "77"}}).result
        p.move("deal", deal, "WON")
        assert p.dispatch_events() == [200]
        sent = receiver.requests[-1]
        assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
        commands = b24.handle_webhook(request_from(sent.body.decode(), "/hook"))
    assert commands == [SendTemplate(template="thanks", language="en", variables=["Ana"], conversation_id=77,
                                     phone="+15557654321", reason=f"Bitrix24 deal {deal} entered stage WON")]


def test_event_bind_needs_an_app(portal):
    from connectors.bitrix24.client import Bitrix24Client
    from connectors.bitrix24.errors import MethodError
    import requests
    client = Bitrix24Client(webhook_settings(portal), http=requests.Session(), clock=utcnow)
    with pytest.raises(MethodError) as err:
        client.call("event.bind", {"event": "ONCRMDEALUPDATE", "handler": "https://hub.example/x"})
    assert err.value.code == "WRONG_AUTH_TYPE"


def deal_update(deal_id: str) -> InboundRequest:
    return request_from(f"event=ONCRMDEALUPDATE&data[FIELDS][ID]={deal_id}&ts=1736405807"
                        f"&auth[application_token]={DOCS_TOKEN}")


def test_a_responsible_user_changed_in_bitrix24_follows_into_the_hub_once(runtime, docs_portal):
    """The hub's own write of ASSIGNED_BY_ID (and the edits after it) change nothing; a
    manager handing the deal to Ivan in Bitrix24 assigns the chat to Ivan's hub account,
    once however often Bitrix24 repeats the event; a user with no hub operator, nothing."""
    from connectors.base import AssignConversation
    from tests.connectors.bitrix24.factory import hub_event

    b24 = connector(runtime, webhook_settings(docs_portal, operator_map="olga@example.com=5\nivan@example.com=7"))
    assert b24.deliver([hub_event("conversation.started", 1)])[0].status == "done"
    [(deal_id, deal)] = docs_portal.portal.deals.items()
    assert b24.handle_webhook(deal_update(deal_id)) == []  # the hub created it
    assert b24.deliver([hub_event("conversation.assigned", 1)])[0].status == "done"
    assert deal["ASSIGNED_BY_ID"] == "5"
    assert b24.handle_webhook(deal_update(deal_id)) == []  # the hub's own write
    docs_portal.portal._entity_update("deal", {"id": deal_id, "fields": {"ASSIGNED_BY_ID": 7}})
    assert b24.handle_webhook(deal_update(deal_id)) == [
        AssignConversation(conversation_id=int(deal["ORIGIN_ID"]), assignee_email="ivan@example.com")]
    assert b24.handle_webhook(deal_update(deal_id)) == []  # repeated
    docs_portal.portal._entity_update("deal", {"id": deal_id, "fields": {"ASSIGNED_BY_ID": 1}})
    assert b24.handle_webhook(deal_update(deal_id)) == []  # Anna has no hub operator
    docs_portal.portal._entity_update("deal", {"id": deal_id, "fields": {"ASSIGNED_BY_ID": 5}})
    assert b24.handle_webhook(deal_update(deal_id)) == [
        AssignConversation(conversation_id=int(deal["ORIGIN_ID"]), assignee_email="olga@example.com")]


def test_without_an_operator_map_responsible_changes_stay_in_bitrix24(runtime, docs_portal):
    seed_deal(docs_portal)
    b24 = connector(runtime, webhook_settings(docs_portal))
    docs_portal.portal._entity_update("deal", {"id": 759, "fields": {"ASSIGNED_BY_ID": 7}})
    assert b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json")) == []
