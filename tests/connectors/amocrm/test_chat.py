"""Chat mode end to end: hub events -> the amojo emulator's chats; a manager's reply in
the emulator -> the hub's connector webhook (signed) -> one WhatsApp send -> statuses
back into the chat; the 24-hour window's refusal as an error status naming templates."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connectors.amocrm import amojo as amojo_mod
from connectors.amocrm.chat import conversation_ref
from connectors.amocrm.emulator_amojo import ACCOUNT_ID, CHANNEL_ID, CHANNEL_SECRET, serve_amojo
from hub.platform.db import utcnow
from hub.models import ConnectorRecord, Conversation, CrmLink, Message, Template
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, instance, long_lived_settings
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired, worker
from tests.support.whatsapp import WABA_ID


def chat_settings(amo, amojo, **overrides):
    chat = {"mode": "chat", "chat_channel_id": CHANNEL_ID, "chat_channel_secret": CHANNEL_SECRET,
            "amojo_base_url": amojo.base_url}
    return long_lived_settings(amo, **{**chat, **overrides})


@pytest.fixture
def amojo():
    with serve_amojo() as server:
        yield server


def test_check_connects_the_channel_and_keeps_the_scope(runtime, amo, amojo):
    cid = add_connector(runtime, chat_settings(amo, amojo))
    result = instance(runtime, cid).check()
    assert result.ok, result.message
    assert "chat channel connected" in result.message
    assert result.details["chat_scope_id"] == f"{CHANNEL_ID}_{ACCOUNT_ID}"
    assert amojo.stats["connects"] == 1 and amo.stats()["GET /api/v4/account"] == 2  # check + amojo_id
    fresh = instance(runtime, cid)
    assert fresh.settings["chat_scope_id"] == f"{CHANNEL_ID}_{ACCOUNT_ID}"
    assert fresh.settings["amojo_account_id"] == ACCOUNT_ID


def test_wrong_secret_fails_the_check_with_what_to_do(runtime, amo, amojo):
    cid = add_connector(runtime, chat_settings(amo, amojo, chat_channel_secret="not-the-secret"))
    result = instance(runtime, cid).check()
    assert not result.ok and "chat channel" in result.message and "secret" in result.message
    assert amojo.connected == {}


def test_n_whatsapp_messages_become_n_chat_messages_once_despite_lost_answers_and_a_reinstall(runtime, amo, amojo):
    add_connector(runtime, chat_settings(amo, amojo))
    with runtime.db.scope() as session:
        for n in range(30):
            ev.emit_conversation(session, n, messages=3)  # 2 inbound + 1 sent from the hub, each
    amojo.emulator.lose_answers = 5  # kept by amojo, answer lost: the retry posts the same msgid
    result = drain(runtime)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    assert len(amojo.chats) == 30 and len(amojo.messages) == 90
    assert amojo.stats["lost_answers"] == 5 and amojo.stats["repeated_msgid"] == 5
    assert amojo.stats["connects"] == 1
    chat = amojo.chat_of(conversation_ref(500))
    assert chat["user"] == {**chat["user"], "name": "Customer 0", "phone": "+15557000000", "client_id": "wa-contact-1000"}
    chat_messages = amojo.messages_of(conversation_ref(500))
    assert [(m["direction"], m["text"]) for m in chat_messages] == [
        ("in", "Message 0 of conversation 0"), ("out", "Message 1 of conversation 0"),
        ("in", "Message 2 of conversation 0")]
    assert chat_messages[1]["sender"] == "Olga" and chat_messages[1]["silent"]
    assert amo.counts()["deals"] == 0 and amo.counts()["notes"] == 0  # chat mode: amoCRM makes the lead
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(CrmLink).where(CrmLink.entity_type == "amojo_msg")) == 90

    amojo.disconnect()  # the integration was reinstalled: the channel must be connected again
    with runtime.db.scope() as session:
        ev.emit_event(session, "message.received", {"conversation": ev.conversation(3), "contact": ev.contact(3),
                                                    "message": ev.message(3, 4)})
    assert set(drain(runtime)) == {"done"}
    assert amojo.stats["connects"] == 2 and len(amojo.messages) == 91


def _hook_transport(client):
    def post(url, body, headers):
        r = client.post(url.removeprefix("http://hub.test"), data=body, headers=headers)
        return r.status_code, r.get_data(as_text=True)
    return post


def test_manager_replies_reach_whatsapp_once_with_statuses_and_the_window_error(client, runtime):
    clock = FakeClock(utcnow())
    with serve_amojo(transport=_hook_transport(client)) as amojo, \
            __import__("connectors.amocrm.emulator", fromlist=["serve"]).serve() as amo, \
            wired(runtime, client, clock) as w:
        emu, number = w["emu"], w["number"]
        cid = add_connector(runtime, chat_settings(amo, amojo))
        with runtime.db.scope() as session:
            key = session.get(ConnectorRecord, cid).webhook_key
            session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                                 category="UTILITY", components=[{"type": "BODY", "text": "Order {{1}}"}],
                                 created_at=utcnow(), updated_at=utcnow()))
        amojo.emulator.hook_url = f"http://hub.test/webhooks/connectors/{key}/:scope_id"
        assert instance(runtime, cid).check().ok
        ana = emu.customer(number, "15557654321", name="Ana")
        ana.send_text("Is my sofa shipped?")
        emu.flush()
        wk = worker(runtime)
        wk.drain()
        with runtime.db.scope() as session:
            conv_id = session.scalars(select(Conversation.id)).one()
        ref = conversation_ref(conv_id)
        assert [m["text"] for m in amojo.messages_of(ref)] == ["Is my sofa shipped?"]
        assert amojo.chat_of(ref)["user"]["phone"] == "+15557654321"

        reply = amojo.manager_reply(ref, "Yes, tomorrow!")
        assert reply["status"] == 200, reply["answer"]
        again = amojo.post_hook(reply["body"])  # the same hook again: nothing more is sent
        assert again["status"] == 200 and "already carried out" in again["answer"]
        forged = amojo.post_hook(reply["body"].replace(b"tomorrow", b"never"), signature="0" * 40)
        assert forged["status"] == 401
        for _ in range(3):
            wk.drain()
            emu.flush()
        sent = emu.sent_to("15557654321")
        assert [s.body["text"]["body"] for s in sent] == ["Yes, tomorrow!"]
        assert len(amojo.messages_of(ref)) == 2  # the sent reply is not posted back into the chat
        statuses = [s["status"] for s in amojo.messages[reply["id"]]["statuses"]]
        assert 1 in statuses and -1 not in statuses  # delivered (and read when the customer reads)
        with runtime.db.scope() as session:
            out = session.scalars(select(Message).where(Message.direction == "out")).one()
            assert out.payload.get("crm_author") == "Ivan Sales"

        with runtime.db.scope() as session:  # the customer's last message is two days old now
            session.get(Conversation, conv_id).last_inbound_at = utcnow() - timedelta(days=2)
        late = amojo.manager_reply(ref, "Are you still there?")
        assert late["status"] == 200
        wk.drain()
        emu.flush()
        assert len(emu.sent_to("15557654321")) == 1  # nothing more sent
        (status,) = amojo.messages[late["id"]]["statuses"]
        assert status["status"] == -1 and status["error_code"] == 905
        assert "24 hours" in status["error"] and "order_update (en)" in status["error"]


def test_a_bad_signature_is_refused_and_nothing_is_sent(client, runtime, amo, amojo):
    cid = add_connector(runtime, chat_settings(amo, amojo))
    with runtime.db.scope() as session:
        key = session.get(ConnectorRecord, cid).webhook_key
    body = amojo_mod.encode({"account_id": ACCOUNT_ID, "message": {"conversation": {"client_id": "wa-conv-1"},
                                                                   "message": {"id": "m1", "text": "hi"}}})
    r = client.post(f"/webhooks/connectors/{key}", data=body,
                    headers={"Content-Type": "application/json", "X-Signature": "deadbeef"})
    assert r.status_code == 401
    r = client.post(f"/webhooks/connectors/{key}", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_both_keeps_the_timeline_notes_and_the_chat(runtime, amo, amojo):
    add_connector(runtime, chat_settings(amo, amojo, mode="both"))
    with runtime.db.scope() as session:
        for n in range(5):
            ev.emit_conversation(session, n, messages=3)
    assert set(drain(runtime)) == {"done"}
    assert len(amojo.chats) == 5 and len(amojo.messages) == 15
    counts = amo.counts()
    assert counts["deals"] == 5 and counts["notes"] == 15


def test_100_conversations_under_10_percent_5xx_and_lost_answers_end_with_exact_counts(runtime, amo, amojo):
    add_connector(runtime, chat_settings(amo, amojo))
    with runtime.db.scope() as session:
        for n in range(100):
            ev.emit_conversation(session, n, messages=2)  # one from the customer, one from the hub
    amojo.emulator.fail_rate = 0.1
    amojo.emulator.lose_answers = 10
    assert set(drain(runtime, deadline=240)) == {"done"}, dead_errors(runtime)[:3]
    assert amojo.stats["injected_5xx"] > 0 and amojo.stats["lost_answers"] == 10
    assert len(amojo.chats) == 100 and len(amojo.messages) == 200
    assert {len(amojo.messages_of(conversation_ref(500 + n))) for n in range(100)} == {2}


def test_chat_mode_needs_the_channel_id_and_secret():
    from marshmallow import ValidationError

    from connectors.amocrm.settings import AmoCrmSettings

    base = {"base_url": "https://shop.amocrm.ru", "long_lived_token": "t"}
    assert AmoCrmSettings().load(base)["mode"] == "notes"
    with pytest.raises(ValidationError) as exc:
        AmoCrmSettings().load({**base, "mode": "chat"})
    assert "chat_channel_id" in exc.value.messages
    with pytest.raises(ValidationError) as exc:
        AmoCrmSettings().load({**base, "mode": "both", "chat_channel_id": CHANNEL_ID})
    assert "chat_channel_secret" in exc.value.messages
    loaded = AmoCrmSettings().load({**base, "mode": "chat", "chat_channel_id": CHANNEL_ID,
                                    "chat_channel_secret": CHANNEL_SECRET})
    assert loaded["amojo_base_url"] == "https://amojo.amocrm.ru"
    assert AmoCrmSettings._declared_fields["chat_channel_secret"].metadata["secret"] is True
