"""Inbox mode end to end: hub events -> threads of the custom channel in the emulator's
Conversations inbox; an agent's reply -> the signed OUTGOING_CHANNEL_MESSAGE_CREATED -> the
hub's connector webhook -> one WhatsApp send -> SENT / READ back on the HubSpot message; the
24-hour window's refusal as FAILED naming the templates. Both databases."""
from __future__ import annotations

import time
from datetime import timedelta

import pytest
from marshmallow import ValidationError
from sqlalchemy import func, select

from connectors.hubspot import benchkit, inbox
from connectors.hubspot.settings import HubSpotSettings
from hub.crm.store import build_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Conversation, CrmLink, Delivery, Message, Template
from tests.connectors.hubspot import events as ev
from tests.connectors.hubspot.conftest import make_connector
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired, worker
from tests.support.whatsapp import WABA_ID

INBOX_ID = "147959634"


def inbox_settings(emu, **overrides):
    """Custom channels need the public app (OAuth), installed in the account."""
    options = emu.state.options
    return {"auth_mode": "oauth", "access_token": "", "client_id": options.client_id,
            "client_secret": options.client_secret, "redirect_uri": options.redirect_uri,
            "authorization_code": emu.issue_code(),
            "mode": "inbox", "inbox_id": INBOX_ID, "developer_api_key": emu.inbox.inbox.developer_api_key,
            "app_id": emu.inbox.inbox.app_id, **overrides}


def instance(runtime, connector_id: int, base_url: str = "http://hub.test"):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=5, base_url=base_url)


def statuses(runtime) -> dict[str, int]:
    with runtime.db.scope() as session:
        rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
    return {status: n for status, n in rows}


def drain(runtime, deadline: float = 120.0) -> dict[str, int]:
    wk = Worker(runtime.db, runtime.vault, runtime.config)
    stop_at = time.monotonic() + deadline
    while True:
        wk.drain()
        with runtime.db.scope() as session:
            pending = session.scalar(select(func.min(Delivery.next_attempt_at)).where(
                Delivery.status.in_(("pending", "leased"))))
        if pending is None:
            return statuses(runtime)
        if time.monotonic() > stop_at:
            raise AssertionError(f"deliveries still pending after {deadline} s: {statuses(runtime)}")
        time.sleep(min(1.0, max(0.02, (pending - utcnow()).total_seconds())))


def dead_errors(runtime) -> list[str]:
    with runtime.db.scope() as session:
        return list(session.scalars(select(Delivery.last_error).where(Delivery.status == "dead")))


def links(runtime, entity_type: str) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(CrmLink).where(CrmLink.entity_type == entity_type))


def test_check_registers_the_channel_and_reports_each_hop(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    result = instance(runtime, cid).check()
    assert result.ok, result.message
    assert "bound to inbox 'Sales inbox'" in result.message
    channel_id = result.details["custom_channel_id"]
    with runtime.db.scope() as session:
        key = session.get(ConnectorRecord, cid).webhook_key
    assert emu.inbox.inbox.channels[channel_id]["webhookUrl"] == f"http://hub.test/webhooks/connectors/{key}/inbox"
    fresh = instance(runtime, cid)
    assert fresh.settings["custom_channel_id"] == channel_id
    assert fresh.check().ok and len(emu.inbox.inbox.channels) == 1  # registered once


def test_check_names_a_missing_inbox_and_a_wrong_developer_key(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu, inbox_id="999"))
    result = instance(runtime, cid).check()
    assert not result.ok and "inbox '999' does not exist" in result.message
    cid = make_connector(runtime, emu, name="other", **inbox_settings(emu, developer_api_key="wrong"))
    result = instance(runtime, cid).check()
    assert not result.ok and "could not be registered" in result.message


def test_inbox_settings_are_validated():
    base = {"auth_mode": "oauth", "client_id": "c", "client_secret": "s",
            "redirect_uri": "https://hub.example.com/admin/connectors/oauth/callback"}
    assert HubSpotSettings().load(base)["mode"] == "timeline"
    with pytest.raises(ValidationError) as exc:
        HubSpotSettings().load({"access_token": "pat-na1-0000-0000", "client_secret": "s", "mode": "inbox",
                                "inbox_id": "1", "custom_channel_id": "2"})
    assert "public app" in exc.value.messages["mode"][0]
    with pytest.raises(ValidationError) as exc:
        HubSpotSettings().load({**base, "mode": "inbox"})
    assert {"inbox_id", "custom_channel_id"} <= set(exc.value.messages)
    with pytest.raises(ValidationError) as exc:
        HubSpotSettings().load({**base, "client_secret": "", "mode": "both", "inbox_id": "1", "custom_channel_id": "2"})
    assert "client_secret" in exc.value.messages
    assert HubSpotSettings().load({**base, "mode": "inbox", "inbox_id": "1", "custom_channel_id": "2"})["mode"] == "inbox"
    assert HubSpotSettings._declared_fields["developer_api_key"].metadata["secret"] is True


def test_choices_fill_the_inbox_picker(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    assert instance(runtime, cid).choices()["inbox_id"] == [("147959634", "Sales inbox"), ("147959635", "Support")]


def _emit(runtime, conversations: int, messages: int) -> None:
    with runtime.db.scope() as session:
        for n in range(1, conversations + 1):
            conv = ev.conversation(n)
            for k in range(messages):
                direction = "in" if k % 2 == 0 else "out"
                msg = ev.message(n * 100 + k, direction=direction, text=f"message {k} of conversation {n}",
                                 author=ev.OLGA if direction == "out" else None)
                ev.emit_event(session, "message.received" if direction == "in" else "message.sent",
                              {"conversation": conv, "contact": ev.contact(n), "message": msg}, n)


def test_n_whatsapp_messages_become_n_inbox_messages_once_despite_lost_answers_and_5xx(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    assert instance(runtime, cid).check().ok
    _emit(runtime, 30, 3)  # 2 from the customer, 1 from the hub, each
    emu.inbox.inbox.lose_answers = 6  # published, answer lost: the retry names the same idempotency id
    emu.set_chaos(fail_rate=0.1, chaos_paths=("/conversations/v3/custom-channels/",))
    result = drain(runtime, deadline=180)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    stats = emu.inbox.stats()
    assert stats["lost_answers"] == 6 and stats["repeated_idempotency"] >= 6
    assert len(emu.inbox.inbox.messages) == 90 and len(emu.inbox.threads()) == 30
    assert stats["accounts_created"] == 1  # one channel account for the one WhatsApp number
    thread = emu.inbox.messages_of("1")
    assert [(m["direction"], m["text"]) for m in thread] == [
        ("INCOMING", "message 0 of conversation 1"), ("OUTGOING", "message 1 of conversation 1"),
        ("INCOMING", "message 2 of conversation 1")]
    assert thread[0]["senders"][0] == {"name": "Customer 1",
                                       "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": "+15550000001"}}
    assert emu.counts()["deals"] == 0 and emu.counts()["notes"] == 0  # inbox only
    assert links(runtime, inbox.PUBLISHED) == 90
    assert set(instance(runtime, cid).settings["channel_accounts"]) == {"1"}
    page = __import__("requests").get(emu.base_url + "/inbox/threads").text
    assert "30 threads" in page and "message 2 of conversation 1" in page


def test_both_keeps_the_timeline_and_the_inbox(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu, mode="both"))
    assert instance(runtime, cid).check().ok
    _emit(runtime, 4, 2)
    assert set(drain(runtime)) == {"done"}, dead_errors(runtime)[:3]
    assert len(emu.inbox.inbox.messages) == 8
    assert emu.counts()["deals"] == 4 and emu.counts()["notes"] == 8


def _hook_transport(client):
    def post(url, body, headers):
        r = client.post(url, data=body, headers=headers)
        return r.status_code, r.get_data(as_text=True)
    return post


def test_agent_replies_reach_whatsapp_once_with_statuses_and_the_window_refusal(client, runtime):
    clock = FakeClock(utcnow())
    with benchkit.start_emulator(per_10_seconds=250) as emu, wired(runtime, client, clock) as w:
        emu.inbox.inbox.transport = _hook_transport(client)
        wa, number = w["emu"], w["number"]
        cid = make_connector(runtime, emu, **inbox_settings(emu))
        with runtime.db.scope() as session:
            session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                                 category="UTILITY", components=[{"type": "BODY", "text": "Order {{1}}"}],
                                 created_at=utcnow(), updated_at=utcnow()))
        assert instance(runtime, cid).check().ok
        ana = wa.customer(number, "15557654321", name="Ana")
        ana.send_text("Is my sofa shipped?")
        wa.flush()
        wk = worker(runtime)
        wk.drain()
        with runtime.db.scope() as session:
            conv_id = session.scalars(select(Conversation.id)).one()
        thread = str(conv_id)
        assert [m["text"] for m in emu.inbox.messages_of(thread)] == ["Is my sofa shipped?"]
        assert emu.inbox.messages_of(thread)[0]["senders"][0]["deliveryIdentifier"]["value"] == "+15557654321"

        reply = emu.inbox.agent_reply(thread, "Yes, tomorrow!")
        assert reply["status"] == 200, reply["answer"]
        again = emu.inbox.post_hook(reply["body"])  # HubSpot delivers the webhook again: nothing more is sent
        assert again["status"] == 200 and "already carried out" in again["answer"]
        forged = emu.inbox.post_hook(reply["body"].replace(b"tomorrow", b"never"), signature_value="A" * 44)
        assert forged["status"] == 401
        for _ in range(3):
            wk.drain()
            wa.flush()
        sent = wa.sent_to("15557654321")
        assert [s.body["text"]["body"] for s in sent] == ["Yes, tomorrow!"]
        assert len(emu.inbox.messages_of(thread)) == 2  # the agent's reply is not published back
        kinds = [s["statusType"] for s in emu.inbox.statuses(reply["id"])]
        assert kinds == ["SENT", "READ"]  # accepted by WhatsApp, then read (delivered has no HubSpot status)
        with runtime.db.scope() as session:
            out = session.scalars(select(Message).where(Message.direction == "out")).one()
            assert out.payload.get("crm_author") == "Ivan Sales"

        with runtime.db.scope() as session:  # the customer's last message is two days old now
            session.get(Conversation, conv_id).last_inbound_at = utcnow() - timedelta(days=2)
        late = emu.inbox.agent_reply(thread, "Are you still there?")
        assert late["status"] == 200
        wk.drain()
        wa.flush()
        assert len(wa.sent_to("15557654321")) == 1  # nothing more sent
        (status,) = emu.inbox.statuses(late["id"])
        assert status["statusType"] == "FAILED"
        text = status["failureDetails"]["errorMessage"]
        assert "24 hours" in text and "order_update (en)" in text


def test_a_bad_or_missing_signature_is_refused_and_nothing_is_sent(client, runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu, custom_channel_id="1001"))
    with runtime.db.scope() as session:
        key = session.get(ConnectorRecord, cid).webhook_key
    body = b'{"type": "OUTGOING_CHANNEL_MESSAGE_CREATED", "integrationThreadId": "1", "message": {"id": "m1", "text": "hi"}}'
    r = client.post(f"/webhooks/connectors/{key}/inbox", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401
    r = client.post(f"/webhooks/connectors/{key}/inbox", data=body,
                    headers={"Content-Type": "application/json", "X-HubSpot-Signature-v3": "x",
                             "X-HubSpot-Request-Timestamp": str(int(time.time() * 1000))})
    assert r.status_code == 401
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_reply_whatsapp_cannot_deliver_is_failed_in_hubspot_with_metas_reason(client, runtime):
    clock = FakeClock(utcnow())
    with benchkit.start_emulator(per_10_seconds=250) as emu, wired(runtime, client, clock) as w:
        emu.inbox.inbox.transport = _hook_transport(client)
        wa, number = w["emu"], w["number"]
        cid = make_connector(runtime, emu, **inbox_settings(emu))
        assert instance(runtime, cid).check().ok
        wa.customer(number, "15557654322", name="Bo").send_text("Hello?")
        wa.flush()
        wk = worker(runtime)
        wk.drain()
        with runtime.db.scope() as session:
            thread = str(session.scalars(select(Conversation.id)).one())
        wa.recipient("15557654322", undeliverable=True)
        reply = emu.inbox.agent_reply(thread, "We can help")
        assert reply["status"] == 200, reply["answer"]
        for _ in range(3):
            wk.drain()
            wa.flush()
        kinds = [s["statusType"] for s in emu.inbox.statuses(reply["id"])]
        assert kinds[-1] == "FAILED", kinds
        text = emu.inbox.statuses(reply["id"])[-1]["failureDetails"]["errorMessage"]
        assert text.startswith("WhatsApp did not deliver it") and "Meta error" in text


def test_100_conversations_under_5xx_lost_answers_and_429_end_with_exact_counts(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    assert instance(runtime, cid).check().ok
    _emit(runtime, 100, 2)  # one from the customer, one from the hub, each
    emu.inbox.inbox.lose_answers = 10
    emu.set_chaos(fail_rate=0.1, rate429_rate=0.05, chaos_paths=("/conversations/",))
    assert set(drain(runtime, deadline=240)) == {"done"}, dead_errors(runtime)[:3]
    stats = emu.inbox.stats()
    assert stats["lost_answers"] == 10 and emu.stats()["injected_5xx"] > 0
    assert len(emu.inbox.threads()) == 100 and len(emu.inbox.inbox.messages) == 200
    assert {len(emu.inbox.messages_of(str(n))) for n in range(1, 101)} == {2}
    assert stats["accounts_created"] == 1


def test_racing_workers_make_one_channel_account_per_number(runtime, emu):
    import threading

    cid = make_connector(runtime, emu, **inbox_settings(emu))
    assert instance(runtime, cid).check().ok
    workers = [instance(runtime, cid) for _ in range(4)]
    got: list[tuple[str, str]] = []
    barrier = threading.Barrier(len(workers))

    def take(connector):
        barrier.wait()
        got.append(connector._channel_account(ev.CHANNEL))

    threads = [threading.Thread(target=take, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(got) == 4 and len(set(got)) == 1 and got[0][1] == "+15550001111"
    assert emu.inbox.stats()["accounts_created"] == 1
    assert instance(runtime, cid).settings["channel_accounts"] == {"1": got[0][0]}


def test_a_worker_built_before_the_channel_was_registered_uses_it(runtime, emu):
    cid = make_connector(runtime, emu, **inbox_settings(emu))
    early = instance(runtime, cid)  # a worker's instance, built before Test connection
    assert instance(runtime, cid).check().ok
    with runtime.db.scope() as session:
        conv = ev.conversation(1)
        ev.emit_event(session, "message.received", {"conversation": conv, "contact": ev.contact(1),
                                                    "message": ev.message(101)}, 1)
    from connectors.base import HubEvent
    from hub.models import Event
    with runtime.db.scope() as session:
        row = session.scalars(select(Event)).one()
        event = HubEvent(id=row.id, type=row.type, version=row.version, occurred_at=row.occurred_at, data=row.data)
    (outcome,) = early.deliver([event])
    assert outcome.status == "done", outcome
    assert len(emu.inbox.inbox.messages) == 1


def test_connect_with_hubspot_asks_for_the_conversations_scopes(runtime, emu):
    from urllib.parse import parse_qs, urlsplit

    cid = make_connector(runtime, emu, **inbox_settings(emu))
    url = instance(runtime, cid).authorize_url("https://hub.example.com/admin/connectors/oauth/callback", "st")
    scopes = parse_qs(urlsplit(url).query)["scope"][0].split()
    assert {"conversations.custom_channels.read", "conversations.custom_channels.write",
            "conversations.read", "crm.objects.contacts.write"} <= set(scopes)
