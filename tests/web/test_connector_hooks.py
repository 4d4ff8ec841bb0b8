"""CRM -> hub: the per-connector webhook URL and the commands it returns."""
from __future__ import annotations

from datetime import timedelta

import pytest
from marshmallow import Schema
from sqlalchemy import select

from connectors.base import (
    AssignConversation, CloseConversation, Connector, SendTemplate, SendText, WebhookRejected, registry,
)
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord, Conversation, Message, Template
from tests.support.whatsapp import WABA_ID, fixture, make_channel, post_signed


class FakeCrm(Connector):
    kind = "fakecrm-test"
    title = "Fake CRM"
    Settings = Schema
    received: list = []

    def deliver(self, batch):
        return []

    def handle_webhook(self, request):
        FakeCrm.received.append(request)
        if request.headers.get("X-Token") != "ok":
            raise WebhookRejected(401, "bad token")
        conv = int(request.form["conversation"])
        return [
            SendTemplate("order_update", "en", ["Ana", "42"], conversation_id=conv, reason="deal stage Shipped",
                         idempotency_key=request.headers.get("X-Event-Id")),
            SendText("typed in the CRM", conversation_id=conv, author="Olga"),
            SendTemplate("missing_template", "en", [], conversation_id=conv),
            AssignConversation(conv, "admin@example.com"),
            CloseConversation(conv, "deal won"),
        ]


@pytest.fixture
def setup(client, runtime, admin_headers):
    registry.register(FakeCrm)
    _, key = make_channel(runtime)
    with runtime.db.scope() as session:
        session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                             category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}, {{2}} shipped"}],
                             created_at=utcnow(), updated_at=utcnow()))
        record = create_connector(session, runtime.vault, kind="fakecrm-test", name="crm", settings={}, now=utcnow())
        hook_key = record.webhook_key
    post_signed(client, key, fixture("text__plain"))
    with runtime.db.scope() as session:
        conv = session.scalars(select(Conversation)).one()
        conv.last_inbound_at = utcnow() - timedelta(minutes=1)
        conv_id = conv.id
    yield hook_key, conv_id
    registry.unregister("fakecrm-test")


def test_commands_are_carried_out_and_refusals_reported(client, runtime, setup):
    hook_key, conv_id = setup
    r = client.post(f"/webhooks/connectors/{hook_key}", data={"conversation": str(conv_id)},
                    headers={"X-Token": "ok"})
    assert r.status_code == 200
    results = r.json["results"]
    assert [x["ok"] for x in results] == [True, True, False, True, True]
    assert "template_invalid" in results[2]["detail"]
    with runtime.db.scope() as session:
        out = list(session.scalars(select(Message).where(Message.direction == "out").order_by(Message.id)))
        assert [m.type for m in out] == ["template", "text"]
        assert out[0].text == "Hi Ana, 42 shipped" and out[0].payload["reason"] == "deal stage Shipped"
        conv = session.get(Conversation, conv_id)
        assert conv.status == "closed" and conv.assignee_id is not None
    request = FakeCrm.received[-1]
    assert request.form == {"conversation": str(conv_id)} and request.method == "POST"


def test_rejected_and_unknown_hooks(client, runtime, setup):
    hook_key, conv_id = setup
    r = client.post(f"/webhooks/connectors/{hook_key}", data={"conversation": str(conv_id)})
    assert r.status_code == 401 and r.json["error"] == "bad token"
    assert client.post("/webhooks/connectors/not-a-key", data={}).status_code == 404
    with runtime.db.scope() as session:
        session.scalars(select(ConnectorRecord)).one().enabled = False
    assert client.post(f"/webhooks/connectors/{hook_key}", data={}, headers={"X-Token": "ok"}).status_code == 404
    with runtime.db.scope() as session:
        assert session.scalar(select(Message.id).where(Message.direction == "out")) is None


def test_connectors_without_webhooks_say_so(client, runtime, admin_headers):
    from tests.support.factories import webhook_connector

    webhook_connector(runtime, "http://127.0.0.1:1/")
    with runtime.db.scope() as session:
        key = session.scalars(select(ConnectorRecord)).one().webhook_key
    r = client.post(f"/webhooks/connectors/{key}", data={})
    assert r.status_code == 404 and "take no webhooks" in r.json["error"]


def test_a_resent_crm_event_sends_its_template_once(client, runtime, setup):
    hook_key, conv_id = setup
    for _ in range(2):
        r = client.post(f"/webhooks/connectors/{hook_key}", data={"conversation": str(conv_id)},
                        headers={"X-Token": "ok", "X-Event-Id": "evt-1"})
        assert r.status_code == 200
    assert "already carried out" in r.json["results"][0]["detail"]
    with runtime.db.scope() as session:
        templates = session.scalars(select(Message).where(Message.type == "template")).all()
    assert len(templates) == 1


def test_links_put_many_keeps_existing_links(runtime):
    from hub.crm.links import DbLinkStore
    from tests.support.factories import webhook_connector

    store = DbLinkStore(runtime.db, webhook_connector(runtime, "http://127.0.0.1:1/"))
    assert store.put("contact", "1", "contact", "c-1") == "c-1"
    got = store.put_many("contact", [("1", "contact", "c-other"), ("2", "contact", "c-2"), ("3", "contact", "c-3")])
    assert got == {"1": "c-1", "2": "c-2", "3": "c-3"}
    assert store.get_many("contact", ["1", "2", "3", "4"]) == {"1": "c-1", "2": "c-2", "3": "c-3"}


class ChatCrm(Connector):
    """A CRM whose chat sends one text per CRM message id and hears of refusals."""

    kind = "chatcrm-test"
    title = "Chat CRM"
    Settings = Schema
    done: list = []

    def deliver(self, batch):
        return []

    def handle_webhook(self, request):
        conv = int(request.form["conversation"])
        msg = request.form["msg"]
        return [SendText(request.form.get("text", "hi"), conversation_id=conv, idempotency_key=f"chat:{msg}",
                         crm_message_id=msg)]

    def commands_done(self, commands, results):
        ChatCrm.done.append((request_path_of(commands), results))


def request_path_of(commands):
    return [c.crm_message_id for c in commands]


def test_chat_text_once_per_crm_message_linked_and_refusals_reported(client, runtime, setup):
    from hub.models import CrmLink

    _, conv_id = setup
    registry.register(ChatCrm)
    try:
        with runtime.db.scope() as session:
            key = create_connector(session, runtime.vault, kind="chatcrm-test", name="chat", settings={},
                                   now=utcnow()).webhook_key
        for _ in range(2):  # the same CRM message twice, once with a suffix after the key
            r = client.post(f"/webhooks/connectors/{key}/scope-1", data={"conversation": str(conv_id), "msg": "m-1"})
            assert r.status_code == 200 and r.json["results"][0]["ok"]
        assert "already carried out" in r.json["results"][0]["detail"]
        with runtime.db.scope() as session:
            texts = session.scalars(select(Message).where(Message.type == "text", Message.direction == "out")).all()
            assert len(texts) == 1
            link = session.scalars(select(CrmLink).where(CrmLink.entity_type == "crm_message")).one()
            assert (link.entity_id, link.crm_id) == (str(texts[0].id), "m-1")
            session.get(Conversation, conv_id).last_inbound_at = utcnow() - timedelta(days=2)
        r = client.post(f"/webhooks/connectors/{key}", data={"conversation": str(conv_id), "msg": "m-2"})
        result = r.json["results"][0]
        assert not result["ok"] and result["detail"].startswith("window_closed")
        assert result["templates"] == [{"name": "order_update", "language": "en", "category": "UTILITY"}]
        assert ChatCrm.done[-1] == (["m-2"], [result])
        assert ChatCrm.done[0][1][0]["ok"] and len(ChatCrm.done) == 3
    finally:
        registry.unregister("chatcrm-test")
