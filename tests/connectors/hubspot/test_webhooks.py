"""HubSpot -> hub: v3 signatures, deal stage changes -> SendTemplate, with the emulator's sender."""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from connectors.base import InboundRequest, SendTemplate, WebhookRejected
from connectors.hubspot import signature
from hub.crm.worker import Worker
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import contact, conversation, emit_event
from tests.connectors.hubspot.test_connector import instance

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot"
SECRET = "emulator-client-secret"
URL = "https://hub.example.com/webhooks/connectors/k3y?x=1"
RULES = ["when stage = closedwon send order_shipped (en_US) with deal.dealname, contact.firstname",
         "when stage = closedwon in pipeline 1023456 send never_here (en_US)",
         "when stage = closedlost send feedback (pt_BR)"]


def signed(body: bytes, *, secret: str = SECRET, url: str = URL, when: datetime | None = None) -> InboundRequest:
    stamp = int((when or datetime.now(timezone.utc)).timestamp() * 1000)
    headers = {"Content-Type": "application/json", **signature.headers(secret, "POST", url, body, stamp)}
    return InboundRequest(method="POST", url=url, path="/webhooks/connectors/k3y", headers=headers,
                          query={"x": "1"}, body=body, form={})


def test_signature_round_trip_and_refusals():
    now = datetime.now(timezone.utc)
    body = b'[{"objectId": 1}]'
    req = signed(body)
    signature.verify(SECRET, "POST", URL, body, req.headers, now)
    lower = {k.lower(): v for k, v in req.headers.items()}
    signature.verify(SECRET, "POST", URL, body, lower, now)  # header names are case-insensitive
    for secret, uri, payload, when in [("other", URL, body, now), (SECRET, URL + "&y=2", body, now),
                                       (SECRET, URL, body + b" ", now), (SECRET, URL, body, now + timedelta(minutes=6))]:
        with pytest.raises(signature.BadSignature):
            signature.verify(secret, "POST", uri, payload, req.headers, when)
    with pytest.raises(signature.BadSignature):
        signature.verify(SECRET, "POST", URL, body, {}, now)
    with pytest.raises(signature.BadSignature):
        signature.verify("", "POST", URL, body, req.headers, now)


def test_uri_encodings_hubspot_decodes_before_signing():
    stamp = 1795608000000
    encoded = "https://hub.example.com/hook?next=%2Fdeals%3Fid%3D1%2C2"
    assert signature.sign(SECRET, "POST", encoded, b"", stamp) == \
        signature.sign(SECRET, "POST", "https://hub.example.com/hook?next=/deals?id%3D1,2", b"", stamp)


@pytest.fixture
def synced(runtime, emu):
    """One conversation synced: (connector instance, deal id)."""
    connector_id = make_connector(runtime, emu, stage_rules=RULES)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(21), "contact": contact(21)}, 21)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    return instance(runtime, connector_id), emu.records("deals")[0]["id"]


def stage_event(deal_id: str, stage: str, occurred_ms: int = 1795608000000) -> dict:
    fixture = json.loads((FIXTURES / "deal.propertyChange__stage_changes.json").read_text())["input"][1]
    return {**fixture, "objectId": int(deal_id), "propertyValue": stage, "occurredAt": occurred_ms}


def test_stage_change_becomes_send_template(synced, emu):
    connector, deal_id = synced
    emu.move_deal(deal_id, "closedwon")
    emu.state.pending_webhooks.clear()
    commands = connector.handle_webhook(signed(json.dumps([stage_event(deal_id, "closedwon")]).encode()))
    assert commands == [SendTemplate(template="order_shipped", language="en_US",
                                     variables=["WhatsApp: Customer 21", "Customer"], conversation_id=21,
                                     phone="+15550000021",
                                     reason="HubSpot deal 'WhatsApp: Customer 21' entered stage closedwon")]


def test_stale_and_unruled_events_send_nothing(synced, emu):
    connector, deal_id = synced
    # the deal is still in appointmentscheduled: a (retried) closedwon event is stale
    assert connector.handle_webhook(signed(json.dumps([stage_event(deal_id, "closedwon")]).encode())) == []
    emu.move_deal(deal_id, "qualifiedtobuy")
    assert connector.handle_webhook(signed(json.dumps([stage_event(deal_id, "qualifiedtobuy")]).encode())) == []


def test_unsigned_or_malformed_webhooks_are_rejected(synced):
    connector, deal_id = synced
    body = json.dumps([stage_event(deal_id, "closedwon")]).encode()
    with pytest.raises(WebhookRejected) as exc:
        connector.handle_webhook(signed(body, secret="forged"))
    assert exc.value.status == 401
    with pytest.raises(WebhookRejected) as exc:
        connector.handle_webhook(signed(body, when=datetime.now(timezone.utc) - timedelta(minutes=10)))
    assert exc.value.status == 401
    with pytest.raises(WebhookRejected) as exc:
        connector.handle_webhook(signed(b'{"not": "events"'))
    assert exc.value.status == 400


def test_emulator_sends_signed_webhooks_that_the_connector_accepts(synced, emu):
    connector, deal_id = synced
    received: list = []
    app = Flask("receiver")

    @app.post("/webhooks/connectors/<key>")
    def hook(key):
        inbound = InboundRequest(method=request.method, url=request.url, path=request.path,
                                 headers=dict(request.headers), query=dict(request.args),
                                 body=request.get_data(), form={})
        try:
            commands = connector.handle_webhook(inbound)
        except WebhookRejected as exc:
            return jsonify(error=exc.message), exc.status
        received.extend(commands)
        return jsonify(commands=[dataclasses.asdict(c) for c in commands])

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/webhooks/connectors/k3y"
        emu.subscribe(url)
        emu.subscribe(url, client_secret="not-ours")
        emu.move_deal(deal_id, "closedlost")
        assert emu.deliver_webhooks(attempts=2) == [200, 401]
    finally:
        server.shutdown()
        thread.join(5)
    assert [(c.template, c.language, c.conversation_id) for c in received] == [("feedback", "pt_BR", 21)]
