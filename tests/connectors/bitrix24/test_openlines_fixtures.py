"""Open Lines: one test per fixture of the documented request and response bodies
(tests/fixtures/bitrix24/ol_*.json, ONIMCONNECTORMESSAGEADD__documented.json)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from connectors.base import HubEvent, InboundRequest, SendText, WebhookRejected
from connectors.bitrix24 import emulator, openlines, phpquery, webhooks
from connectors.bitrix24.client import BatchResult
from connectors.bitrix24.errors import classify
from tests.connectors.bitrix24 import factory
from tests.support.links import MemoryLinks

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bitrix24"
SETTINGS = {"openlines_connector_id": "myconnector", "openlines_line_id": "107"}
NOW = datetime(2026, 11, 25, 12, 5, tzinfo=timezone.utc)


def load(name):
    return json.loads((FIXTURES / name).read_text())


class FakeClient:
    """Answers each method with a documented `result` (or error); records what was sent."""

    def __init__(self, answers=None, errors=None):
        self.answers = answers or {}
        self.errors = errors or {}
        self.sent: list[tuple[str, dict]] = []

    def call(self, method, params=None):
        self.sent.append((method, params))
        if method in self.errors:
            raise classify(self.errors[method]["error"], self.errors[method]["error_description"], 400, method)
        return self.answers[method]

    def batch(self, commands, halt=False):
        out = BatchResult()
        for key, method, params in commands:
            self.sent.append((method, params))
            if method in self.errors:
                err = self.errors[method]
                out.errors[key] = classify(err["error"], err["error_description"], None, method)
            elif method in self.answers:
                out.results[key] = self.answers[method]
        return out


def lines(client=None, links=None, settings=SETTINGS):
    return openlines.OpenLines(client or FakeClient(), links or MemoryLinks(), settings, lambda: NOW)


def shape(value):
    """The keys at every level, with the types of the leaves."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def keys_within(ours, docs, where=""):
    if isinstance(ours, dict):
        assert isinstance(docs, dict), where
        for k, v in ours.items():
            assert k in docs, f"{where}.{k} is not a documented field"
            keys_within(v, docs[k], f"{where}.{k}")
    elif isinstance(ours, list):
        assert isinstance(docs, list), where
        for v in ours:
            keys_within(v, docs[0], where + "[]")
    else:
        assert type(ours) is type(docs), f"{where}: {type(ours).__name__} vs documented {type(docs).__name__}"


def test_register_request_and_answer():
    case = load("ol_register_request.json")
    client = FakeClient({"imconnector.register": case["response"]["result"], "imconnector.activate": True,
                         "event.bind": True, "imconnector.status": load("ol_status.json")["response"]["result"]})
    result = lines(client).connect("https://hub.example/webhooks/connectors/k")
    method, params = client.sent[0]
    assert method == "imconnector.register"
    keys_within(params, case["request"])
    assert params["ICON"]["DATA_IMAGE"].startswith("data:image/svg+xml,")
    assert params["PLACEMENT_HANDLER"] == "https://hub.example/webhooks/connectors/k/placement"
    assert result.details["openlines"]["registered"] == "connector myconnector registered"


def test_register_refused_with_http_200():
    client = FakeClient({"imconnector.register": load("ol_register_refused.json")["response"]["result"],
                         "imconnector.activate": True, "event.bind": True,
                         "imconnector.status": {"STATUS": False}})
    result = lines(client).connect("https://hub.example/h")
    assert not result.ok
    assert "not registered (CONNECTOR_ID_REQUIRED: Connector-ID nicht angegeben)" in result.message


def test_activate_request_and_error():
    case = load("ol_activate.json")
    client = FakeClient({"imconnector.register": {"result": True}, "imconnector.activate": case["response"]["result"],
                         "event.bind": True, "imconnector.status": load("ol_status.json")["response"]["result"]})
    assert lines(client).connect("https://hub.example/h").ok
    activate = dict(client.sent)["imconnector.activate"]
    assert shape(activate) == {"CONNECTOR": "str", "LINE": "int", "ACTIVE": "str"} == shape(case["request"])
    client.errors["imconnector.activate"] = case["error"]
    client.answers["imconnector.status"] = {"STATUS": False}
    result = lines(client).connect("https://hub.example/h")
    assert not result.ok and "not active on open line 107 (ERROR_ARGUMENT" in result.message


def test_status_answer_is_the_line_active_hop():
    case = load("ol_status.json")
    client = FakeClient({"imconnector.register": {"result": True}, "imconnector.activate": True,
                         "event.bind": True, "imconnector.status": case["response"]["result"]})
    hops = lines(client).connect("https://hub.example/h").details["openlines"]
    assert hops == {"registered": "connector myconnector registered", "line_active": "active on open line 107",
                    "event_bound": "OnImConnectorMessageAdd bound to the hub"}
    assert dict(client.sent)["imconnector.status"] == {"CONNECTOR": "myconnector", "LINE": 107}


def test_send_messages_request_and_answer():
    case = load("ol_send_messages.json")
    event = factory.hub_event("message.received", 7, n=1)
    item = openlines.message_item(event.data)
    keys_within(item, case["request"]["MESSAGES"][0])
    assert item == {
        "user": {"id": "1007", "name": "Customer", "last_name": "Example", "phone": "+15557000007",
                 "skip_phone_validate": "Y"},
        "message": {"id": "wamid.HBgL000071", "date": int(factory.T0.timestamp()) + 1,
                    "text": "Message 1 of conversation 7"},
        "chat": {"id": "5007", "name": "WhatsApp: Customer 7 Example"}}
    links = MemoryLinks()
    client = FakeClient({"imconnector.send.messages": case["response"]["result"]})
    outcomes = lines(client, links).deliver([event])
    assert outcomes[event.id].status == "done"
    assert links.get(openlines.MESSAGE_LINK, "100071") == "1767"
    assert links.get(openlines.CHAT_LINK, "5007") == "1767"
    method, params = client.sent[0]
    assert (method, params["CONNECTOR"], params["LINE"]) == ("imconnector.send.messages", "myconnector", 107)


def test_send_messages_to_an_inactive_line_retries_and_says_why():
    case = load("ol_send_messages.json")
    client = FakeClient(errors={"imconnector.send.messages": case["not_active"]})
    event = factory.hub_event("message.received", 7, n=1)
    outcome = lines(client).deliver([event])[event.id]
    assert outcome.status == "retry"
    assert "not active on open line 107" in outcome.error and "Test connection" in outcome.error


def test_event_fixture_becomes_one_send_text():
    body = load("ONIMCONNECTORMESSAGEADD__documented.json")["body"]
    request = InboundRequest(method="POST", url="http://hub.test/h", path="/h", headers={}, query={},
                             body=body.encode(), form=dict(parse_qsl(body)))
    parsed = webhooks.parse_body(request)
    webhooks.authenticate(parsed, "831c76b092f9f135d9b6b36c3a720757")
    with pytest.raises(WebhookRejected):
        webhooks.authenticate(parsed, "another")
    commands = lines().commands_for(parsed)
    assert commands == [SendText(text="*Klaus Weber:*\nGuten Tag!", conversation_id=5007, author="Klaus Weber",
                                 idempotency_key="bitrix24.ol:86497", crm_message_id="1807:86497")]
    assert lines(settings={**SETTINGS, "openlines_line_id": "1"}).commands_for(parsed) == []


def _status_event(kind, status="sent"):
    message = {"id": 900, "wa_message_id": "ext-msg-1007", "direction": "out", "type": "text", "text": "hi",
               "status": status, "error": None}
    if kind == "message.sent":
        data = {"conversation": {"id": "channel-123"}, "contact": {"id": 1}, "message": message}
    else:
        data = {"conversation_id": "channel-123", "contact_id": 1, "message": message}
    return HubEvent(id=f"e-{kind}-{status}", type=kind, version=1, occurred_at=NOW, data=data)


def test_status_delivery_request_and_answer():
    case = load("ol_status_delivery.json")
    links = MemoryLinks()
    links.put("crm_message", "900", "message", "323:85911")
    client = FakeClient({"imconnector.send.status.delivery": case["response"]["result"]})
    event = _status_event("message.sent")
    assert lines(client, links).deliver([event])[event.id].status == "done"
    method, params = client.sent[0]
    assert method == "imconnector.send.status.delivery"
    assert shape(params) == shape(case["request"])
    assert params["MESSAGES"][0] == {"im": {"chat_id": 323, "message_id": 85911},
                                     "message": {"id": ["ext-msg-1007"], "date": int(NOW.timestamp())},
                                     "chat": {"id": "channel-123"}}
    assert lines(client, links).deliver([event])[event.id].status == "done" and len(client.sent) == 1


def test_status_reading_request_and_answer():
    case = load("ol_status_reading.json")
    links = MemoryLinks()
    links.put("crm_message", "900", "message", "323:85911")
    links.put(openlines.REPORTED, "900:delivered", "status", "reported")
    client = FakeClient({"imconnector.send.status.reading": case["response"]["result"]})
    event = _status_event("message.status", "read")
    assert lines(client, links).deliver([event])[event.id].status == "done"
    assert client.sent == [("imconnector.send.status.reading", {**case["request"], "CONNECTOR": "myconnector"})]


def test_config_list_answer_fills_the_line_picker(runtime):
    from tests.connectors.bitrix24.test_webhooks import connector

    case = load("ol_config_list_get.json")
    with emulator.serve() as portal:
        from tests.connectors.bitrix24.conftest import oauth_settings

        b24 = connector(runtime, oauth_settings(portal))
        b24.client = FakeClient({"imopenlines.config.list.get": case["response"]["result"]})
        assert b24.choices()["openlines_line_id"] == [("15", "VIP Support Line"), ("16", "Old line (inactive)")]
        method, params = b24.client.sent[-1]
        assert method == "imopenlines.config.list.get"
        assert set(params["PARAMS"]) <= set(case["request"]["PARAMS"])


def test_im_message_add_system_notice_for_a_refused_reply():
    case = load("ol_im_message_add.json")
    client = FakeClient({"im.message.add": case["response"]["result"]})
    links = MemoryLinks()
    command = SendText("hi", conversation_id=5007, idempotency_key="bitrix24.ol:86497", crm_message_id="1807:86497")
    refused = {"command": "SendText", "ok": False, "detail": "window_closed: the 24-hour window is closed",
               "message_id": None, "templates": [{"name": "order_update", "language": "en", "category": "UTILITY"}]}
    for _ in range(2):  # Bitrix24 repeats the event: one notice
        lines(client, links).commands_done([command], [refused])
    assert len(client.sent) == 1
    method, params = client.sent[0]
    assert method == "im.message.add" and set(params) <= set(case["request"])
    assert params["DIALOG_ID"] == "chat1807" and params["SYSTEM"] == "Y"
    assert "24 hours" in params["MESSAGE"] and "order_update (en)" in params["MESSAGE"]


def test_emulator_answers_the_documented_bodies():
    with emulator.serve() as handle:
        p = handle.portal
        p._auth_kind = "oauth"
        reg = load("ol_register_request.json")
        assert p.call("imconnector.register", reg["request"]).result == reg["response"]["result"]
        assert p.call("imconnector.register", {**reg["request"], "ID": ""}).result["error"] == "CONNECTOR_ID_REQUIRED"
        p.ol.lines[107] = {"ID": "107", "LINE_NAME": "Docs", "ACTIVE": "Y"}
        send = load("ol_send_messages.json")
        with pytest.raises(emulator.ApiError) as err:
            p.call("imconnector.send.messages", send["request"])
        assert err.value.code == send["not_active"]["error"]
        assert p.call("imconnector.activate", load("ol_activate.json")["request"]).result is True
        answer = p.call("imconnector.send.messages", send["request"]).result
        assert shape(answer) == shape(send["response"]["result"]) or \
            set(answer["DATA"]["RESULT"][0]) == set(send["response"]["result"]["DATA"]["RESULT"][0]) - {"extra"}
        p._auth_kind = "webhook"
        with pytest.raises(emulator.ApiError) as err:
            p.call("imconnector.send.messages", send["request"])
        assert (err.value.code, err.value.status) == ("WRONG_AUTH_TYPE", 403)
        assert phpquery.parse_query(phpquery.build_query(send["request"]))["MESSAGES"][0]["user"]["id"] == "ext-user-42"


def test_a_failed_whatsapp_message_is_told_in_its_chat_once():
    links = MemoryLinks()
    links.put("crm_message", "900", "message", "323:85911")
    client = FakeClient({"im.message.add": 34239})
    event = _status_event("message.status", "failed")
    event.data["message"]["error"] = {"code": 131026, "title": "Message undeliverable",
                                      "details": "the customer's WhatsApp cannot receive it"}
    for _ in range(2):
        assert lines(client, links).deliver([event])[event.id].status == "done"
    assert len(client.sent) == 1
    method, params = client.sent[0]
    assert (method, params["DIALOG_ID"], params["SYSTEM"]) == ("im.message.add", "chat323", "Y")
    assert "cannot receive it" in params["MESSAGE"] and "131026" in params["MESSAGE"]


def test_statuses_of_messages_not_typed_in_an_open_line_are_skipped():
    client = FakeClient()
    event = _status_event("message.sent")
    outcome = lines(client, MemoryLinks()).deliver([event])[event.id]
    assert outcome.status == "done" and client.sent == []


def test_bb_codes_become_whatsapp_formatting():
    assert openlines.whatsapp_text("[b]Olga:[/b] [br]See [url=https://x.example/a]the list[/url], [i]now[/i]") == \
        "*Olga:*\nSee the list (https://x.example/a), _now_"
    assert openlines.person_name("Анна-Мария O'Neil 2nd") == ("Анна-Мария", "O'Neil")
    assert openlines.person_name("+49 151") == ("WhatsApp", "")
