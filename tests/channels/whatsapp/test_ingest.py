"""Webhook ingest through the HTTP route: authentication, storage, idempotency, events."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from hub.models import Channel, Contact, Conversation, Event, Message, MessageStatus, RawWebhook, Template
from tests.support.whatsapp import (
    APP_SECRET, FIXTURES, VERIFY_TOKEN, fixture, make_channel, post_signed,
)

ALL_FIXTURES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def count(runtime, model, *where) -> int:
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def snapshot(runtime) -> dict:
    with runtime.db.scope() as session:
        return {m.__name__: session.scalar(select(func.count()).select_from(m))
                for m in (Contact, Conversation, Message, MessageStatus, Event, Template)}


@pytest.fixture
def channel(runtime):
    make_channel(runtime, provider="360dialog", phone_number_id="2200000000000360", waba_id="1100000000000360",
                 name="Relay")
    return make_channel(runtime)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_stored_and_a_resend_changes_nothing(client, runtime, channel, name):
    _, key = channel
    body = fixture(name)
    assert post_signed(client, key, body).status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "processed", raw.error
        assert raw.body == body
        # Every column, whichever statement wrote the row (on PostgreSQL, the message's).
        assert raw.source == "whatsapp" and raw.channel_id and raw.attempts == 1 and raw.error is None
        assert raw.received_at and raw.processed_at and raw.headers.get("Content-Type") == "application/json"
    first = snapshot(runtime)
    assert post_signed(client, key, body).status_code == 200
    assert snapshot(runtime) == first, "a duplicate delivery must change nothing"


def test_verification_handshake(client, runtime, channel):
    _, key = channel
    url = f"/webhooks/whatsapp/{key}"
    ok = client.get(url, query_string={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN,
                                       "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    assert ok.mimetype == "text/plain"
    bad = client.get(url, query_string={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"})
    assert bad.status_code == 403
    assert client.get("/webhooks/whatsapp/unknown-key", query_string={"hub.verify_token": VERIFY_TOKEN}).status_code == 404


def test_wrong_signature_is_refused_and_nothing_stored(client, runtime, channel):
    _, key = channel
    body = fixture("text__plain")
    assert post_signed(client, key, body, secret="someone-else").status_code == 401
    assert client.post(f"/webhooks/whatsapp/{key}", data=body,
                       headers={"Content-Type": "application/json"}).status_code == 401
    tampered = body + b" "
    r = client.post(f"/webhooks/whatsapp/{key}", data=tampered, headers={
        "X-Hub-Signature-256": post_signed.__globals__["sign_meta"](APP_SECRET, body)})
    assert r.status_code == 401
    assert count(runtime, RawWebhook) == 0 and count(runtime, Message) == 0


@pytest.mark.parametrize("body, problem", [
    (b"this is not json", "body is not JSON"),
    (json.dumps({"object": "page", "entry": []}).encode(), "whatsapp_business_account"),
    (json.dumps({"object": "whatsapp_business_account", "entry": {}}).encode(), "entry"),
])
def test_bad_payload_is_kept_answered_200_and_replayable(client, runtime, channel, body, problem):
    _, key = channel
    assert post_signed(client, key, body).status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "failed" and problem in raw.error
    assert count(runtime, Message) == 0


def test_replay_of_a_fixed_body_processes_it(client, runtime, channel):
    from hub.platform.db import utcnow
    from hub.events.raw_webhooks import replay

    _, key = channel
    assert post_signed(client, key, b"{broken").status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        raw.body = fixture("text__plain")  # as if the parser had been fixed for this body
    assert replay(runtime, now=utcnow()) == {"processed": 1, "failed": 0}
    assert count(runtime, Message) == 1


def test_text_message_makes_contact_conversation_message_and_events(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("text__plain"))
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        conv = session.scalars(select(Conversation)).one()
        msg = session.scalars(select(Message)).one()
        events = [e.type for e in session.scalars(select(Event).order_by(Event.created_at, Event.type))]
        assert contact.wa_id and contact.phone == "+" + contact.wa_id and contact.name
        assert conv.status == "open" and conv.last_inbound_at == msg.sent_at
        assert msg.direction == "in" and msg.type == "text" and msg.text
        assert conv.lead_source["kind"] == "direct"
    assert sorted(events) == ["conversation.started", "lead.attributed", "message.received"]


def test_second_message_reuses_contact_and_conversation(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("text__plain"))
    post_signed(client, key, fixture("image__caption"))
    assert count(runtime, Contact) == 1 and count(runtime, Conversation) == 1 and count(runtime, Message) == 2
    assert count(runtime, Event, Event.type == "conversation.started") == 1


def test_referral_is_the_lead_source_and_opens_the_entry_point(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("text__referral_image_ad"))
    with runtime.db.scope() as session:
        conv = session.scalars(select(Conversation)).one()
        assert conv.lead_source["kind"] == "ad_referral"
        assert conv.lead_source["referral"]["source_type"] == "ad"
        assert conv.lead_source["referral"]["ctwa_clid"]
        assert conv.ctwa_entry_at == conv.last_inbound_at


def test_unknown_type_is_stored_as_unsupported(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("event_rsvp__unknown_future_type"))
    with runtime.db.scope() as session:
        msg = session.scalars(select(Message)).one()
        assert msg.type == "unsupported" and msg.payload["original_type"]


def test_reaction_does_not_open_the_window(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("reaction__emoji"))
    with runtime.db.scope() as session:
        assert session.scalars(select(Conversation)).one().last_inbound_at is None


def test_username_only_user_is_keyed_on_bsuid(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("text__username_bsuid"))
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.wa_id is None and re.match(r"^[A-Z]{2}\.", contact.user_id) and contact.username


def test_batch_with_several_entries(client, runtime, channel):
    _, key = channel
    from hub.channels.whatsapp.inbound.parse import parse
    from hub.channels.whatsapp.inbound.types import InboundMessage, StatusUpdate

    parsed = parse(fixture("messages__batch"))
    ours = [m for m in parsed.of(InboundMessage) if m.route.phone_number_id == "2200000000000002"]
    assert len(ours) >= 2
    post_signed(client, key, fixture("messages__batch"))
    assert count(runtime, Message) == len({m.id for m in ours})
    assert count(runtime, MessageStatus) == len({(s.message_id, s.status) for s in parsed.of(StatusUpdate)})


def test_template_status_updates_template_and_emits(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("message_template_status_update__rejected"))
    with runtime.db.scope() as session:
        t = session.scalars(select(Template)).one()
        assert t.status == "REJECTED" and t.status_reason
    assert count(runtime, Event, Event.type == "template.status_changed") == 1
    post_signed(client, key, fixture("message_template_quality_update__green_to_yellow"))


def test_phone_quality_and_capability_update_the_channel(client, runtime, channel):
    channel_id, key = channel
    post_signed(client, key, fixture("business_capability_update__tier"))
    with runtime.db.scope() as session:
        assert session.get(Channel, channel_id).messaging_limit.startswith("TIER_")
    assert count(runtime, Event, Event.type == "channel.quality_changed") >= 1


def test_user_preference_stop_opts_out_then_resume(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("text__plain"))
    wa_id = json.loads(fixture("text__plain"))["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"]
    stop = json.loads(fixture("user_preferences__stop"))
    stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]["wa_id"] = wa_id
    post_signed(client, key, json.dumps(stop).encode())
    with runtime.db.scope() as session:
        assert session.scalars(select(Contact)).one().opted_out_at is not None
    assert count(runtime, Event, Event.type == "contact.opted_out") == 1


def test_statuses_for_unknown_messages_are_kept_for_later(client, runtime, channel):
    _, key = channel
    post_signed(client, key, fixture("status__sent_pmp"))
    assert count(runtime, MessageStatus) == 1
    assert count(runtime, Event, Event.type == "message.status") == 0


def test_360dialog_webhook_needs_its_header_token(client, runtime, channel):
    from tests.support.whatsapp import make_channel as _  # noqa: F401

    with runtime.db.scope() as session:
        relay = session.scalar(select(Channel).where(Channel.provider == "360dialog"))
        key = relay.key
    body = fixture("text__dialog360")
    assert client.post(f"/webhooks/whatsapp/{key}", data=body).status_code == 401
    assert client.post(f"/webhooks/whatsapp/{key}", data=body,
                       headers={"X-Hub-Token": "wrong"}).status_code == 401
    r = client.post(f"/webhooks/whatsapp/{key}", data=body, headers={"X-Hub-Token": "d360-webhook-token"})
    assert r.status_code == 200
    assert count(runtime, Message) == 1


def test_oversized_body_is_refused(client, channel):
    _, key = channel
    r = post_signed(client, key, b"x" * (5 * 1024 * 1024))
    assert r.status_code == 413


def test_message_for_another_number_is_kept_raw_only(client, runtime, channel):
    _, key = channel
    body = fixture("text__plain").replace(b"2200000000000002", b"2200000000000099")
    assert post_signed(client, key, body).status_code == 200
    assert count(runtime, RawWebhook, RawWebhook.status == "processed") == 1
    assert count(runtime, Message) == 0


@pytest.mark.parametrize("name", ["system__user_changed_number", "system__customer_changed_number"])
def test_a_number_change_moves_the_contact_with_its_history(client, runtime, channel, name):
    """user_changed_number, and customer_changed_number as older webhook versions send it."""
    _, key = channel
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    assert post_signed(client, key, fixture(name)).status_code == 200
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.wa_id, contact.phone) == ("15559990000", "+15559990000")
    later = json.loads(fixture("text__plain"))
    message = later["entry"][0]["changes"][0]["value"]["messages"][0]
    message["from"], message["id"] = "15559990000", "wamid.after.the.change"
    later["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "15559990000"
    assert post_signed(client, key, json.dumps(later).encode()).status_code == 200
    assert count(runtime, Contact) == 1 and count(runtime, Conversation) == 1
    assert count(runtime, Message) == 3


def test_a_returning_customers_message_is_one_write_on_postgresql(client, runtime, channel):
    """Read the sender, write message + conversation + raw row + event together: the
    event names the stored message's id (drawn before the write)."""
    from sqlalchemy import event as sa_event

    _, key = channel
    assert post_signed(client, key, fixture("text__plain")).status_code == 200
    later = json.loads(fixture("text__plain"))
    message = later["entry"][0]["changes"][0]["value"]["messages"][0]
    message["id"], message["timestamp"] = "wamid.returning.1", str(int(message["timestamp"]) + 60)
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement.split()[0])

    sa_event.listen(runtime.db.engine, "before_cursor_execute", seen)
    try:
        assert post_signed(client, key, json.dumps(later).encode()).status_code == 200
    finally:
        sa_event.remove(runtime.db.engine, "before_cursor_execute", seen)
    if runtime.db.dialect == "postgresql":
        assert statements == ["SELECT", "WITH"], statements
    with runtime.db.scope() as session:
        stored = session.scalars(select(Message).where(Message.wa_message_id == "wamid.returning.1")).one()
        received = [e for e in session.scalars(select(Event).where(Event.type == "message.received"))
                    if e.data["message"]["wa_message_id"] == "wamid.returning.1"]
        raw = session.scalars(select(RawWebhook).order_by(RawWebhook.id.desc())).first()
        conversation = session.get(Conversation, stored.conversation_id)
    assert len(received) == 1 and received[0].data["message"]["id"] == stored.id
    assert raw.body == json.dumps(later).encode() and raw.status == "processed"
    assert conversation.last_inbound_at == stored.sent_at
    assert received[0].data["conversation"]["id"] == conversation.id


def test_a_new_customers_first_message_writes_its_events_with_the_message_on_postgresql(client, runtime, channel):
    """A new customer: read the sender, create the contact and the conversation, then
    the message, the raw row and all three events in one statement, in their order."""
    from sqlalchemy import event as sa_event

    _, key = channel
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:3]))

    sa_event.listen(runtime.db.engine, "before_cursor_execute", seen)
    try:
        assert post_signed(client, key, fixture("text__plain")).status_code == 200
    finally:
        sa_event.remove(runtime.db.engine, "before_cursor_execute", seen)
    if runtime.db.dialect == "postgresql":
        # Reads aside (the channel, the sender, tracked links), and the channel's last-webhook note:
        writes = [s.split()[0] for s in statements if not s.startswith(("SELECT", "UPDATE channels"))]
        assert writes == ["INSERT", "INSERT", "WITH"], statements  # contact, conversation, the rest
    with runtime.db.scope() as session:
        stored = session.scalars(select(Message)).one()
        events = {e.type: e for e in session.scalars(select(Event))}
        raw = session.scalars(select(RawWebhook)).one()
    assert set(events) == {"conversation.started", "lead.attributed", "message.received"}
    assert events["message.received"].data["message"]["id"] == stored.id
    assert events["lead.attributed"].data["contact"]["opted_out"] is False
    assert {e.data["conversation"]["id"] for e in events.values()} == {stored.conversation_id}
    assert raw.status == "processed" and raw.body == fixture("text__plain")
