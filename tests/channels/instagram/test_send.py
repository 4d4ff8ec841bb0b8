"""Sending on Instagram through the Graph API emulator: the 24-hour window (RESPONSE),
a person's reply up to 7 days later with the HUMAN_AGENT tag (never a bot's), a clear
409 after that before any API call, Meta's errors mapped, and the Send API's limits
refused by name."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.channels.base import Outgoing, SendRefused, WindowClosed
from hub.channels.instagram import compose
from hub.channels.instagram.channels import create_instagram_channel
from hub.channels.sending import queue
from hub.channels.settings import InvalidChannel
from hub.platform.db import utcnow
from hub.models import Channel, Contact, Conversation, Event, Message
from tests.support.clock import FakeClock
from tests.support.instagram import wired, worker

ANA = "1234567890123456"


def conversation_of(runtime, igsid: str = ANA) -> int:
    with runtime.db.scope() as session:
        contact = session.scalar(select(Contact).where(Contact.user_id == f"ig:{igsid}"))
        return session.scalar(select(Conversation.id).where(Conversation.contact_id == contact.id))


def text(runtime, conversation_id: int, body: str, *, author_id=None, now=None) -> Message:
    with runtime.db.scope() as session:
        message = queue(session, Outgoing(kind="text", content={"body": body}, conversation_id=conversation_id,
                                          author_id=author_id), now=now or utcnow())
        session.expunge(message)
        return message


def customer_wrote(w, clock, ago: timedelta, igsid: str = ANA):
    """The customer wrote `ago` before now; the clock is then a little ahead of what the
    API queues (so the worker finds it due)."""
    clock.now = utcnow() - ago
    w["emu"].customer(w["account"], igsid).send_text("hello?")
    assert w["emu"].flush() == 1
    clock.now = utcnow() + timedelta(seconds=30)


def test_a_reply_within_24_hours_goes_as_a_response(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(hours=1))
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime), "type": "text", "text": {"body": "Yes, it is!"}})
        assert r.status_code == 202, r.json
        assert worker(runtime, clock).drain() == 1
        (sent,) = w["emu"].sent
        assert sent.body == {"recipient": {"id": ANA}, "messaging_type": "RESPONSE", "message": {"text": "Yes, it is!"}}
        with runtime.db.scope() as session:
            message = session.get(Message, r.json["id"])
            assert (message.status, message.wa_message_id) == ("sent", f"ig:{sent.message_id}")
            assert session.scalar(select(Event.type).where(Event.type == "message.sent")) == "message.sent"


def test_an_operators_reply_after_24_hours_goes_with_the_human_agent_tag(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(hours=30))
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime), "type": "text", "text": {"body": "Sorry for the wait"}})
        assert r.status_code == 202, r.json
        worker(runtime, clock).drain()
        (sent,) = w["emu"].sent
        assert (sent.body["messaging_type"], sent.body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
        with runtime.db.scope() as session:
            assert session.get(Message, r.json["id"]).status == "sent"


def test_after_7_days_a_reply_is_refused_with_409_before_any_api_call(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(days=7, minutes=1))
        calls = len(w["emu"].world.requests)
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime), "type": "text", "text": {"body": "Still there?"}})
        assert r.status_code == 409 and r.json["error"] == "window_closed"
        assert "a person's within 7 days" in r.json["message"] and "until they write again" in r.json["message"]
        assert worker(runtime, clock).drain() == 0
        assert w["emu"].sent == [] and len(w["emu"].world.requests) == calls
        with runtime.db.scope() as session:
            assert session.scalar(select(Message).where(Message.direction == "out")) is None


def test_automations_may_not_use_the_human_agent_tag(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(hours=25))
        with pytest.raises(WindowClosed, match="only a person may reply"):
            text(runtime, conversation_of(runtime), "Automated hello")
        with runtime.db.scope() as session:
            assert session.scalar(select(Message).where(Message.direction == "out")) is None


def test_the_window_state_on_the_contract(client, runtime):
    from hub.channels import registry

    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(hours=25))
        with runtime.db.scope() as session:
            conversation = session.get(Conversation, conversation_of(runtime))
            channel = session.get(Channel, conversation.channel_id)
            kind = registry.of(channel)
            state = kind.window(conversation, utcnow())
        assert state.applies and not state.open and state.after_close == "human_agent"
        assert state.open_for(utcnow(), human=True) and not state.open_for(utcnow(), human=False)
        assert state.human_agent_until == conversation.last_inbound_at + timedelta(days=7)
        caps = kind.capabilities
        assert (caps.quick_replies, caps.templates, caps.human_agent_window, caps.max_text) == \
            (13, False, timedelta(days=7), 1000)


def test_user_unavailable_marks_the_contact_and_later_sends_are_refused(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        w["emu"].customer(w["account"], ANA).become_unavailable()
        conv = conversation_of(runtime)
        first = text(runtime, conv, "Hello", author_id=None)
        worker(runtime, clock).drain()
        with runtime.db.scope() as session:
            failed = session.get(Message, first.id)
            assert (failed.status, failed.error_code) == ("failed", 551)
            assert failed.error_title.startswith("unreachable: (551/1545041) This person isn't available")
            assert session.scalar(select(Contact.unreachable_at).where(Contact.user_id == f"ig:{ANA}")) is not None
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "again?"}})
        assert r.status_code == 409 and r.json["error"] == "unreachable"
        customer_wrote(w, clock, timedelta(minutes=1))  # writing again makes them reachable
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "welcome back"}})
        assert r.status_code == 202


def test_rate_limits_wait_and_temporary_errors_retry(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        message = text(runtime, conversation_of(runtime), "Hi", now=clock())
        w["emu"].fail_next(613, "(#613) Calls to this api have exceeded the rate limit.")
        worker(runtime, clock).drain()
        with runtime.db.scope() as session:
            row = session.get(Message, message.id)
            assert (row.status, row.error_code) == ("queued", 613)
            assert row.next_attempt_at == clock() + timedelta(seconds=60)
        clock.advance(61)
        w["emu"].fail_next(2, "An unexpected error has occurred. Please retry your request later.", status=500)
        worker(runtime, clock).drain()
        clock.advance(3600)
        worker(runtime, clock).drain()
        with runtime.db.scope() as session:
            assert session.get(Message, message.id).status == "sent"
        assert len(w["emu"].sent) == 1


def test_outside_the_window_at_meta_and_a_revoked_token_are_named(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        conv = conversation_of(runtime)
        first = text(runtime, conv, "one", now=clock())
        w["emu"].fail_next(10, "(#10) This message is sent outside of allowed window.", subcode=2018278)
        worker(runtime, clock).drain()
        second = text(runtime, conv, "two", now=clock())
        w["emu"].fail_next(190, "Error validating access token: The session has been invalidated")
        worker(runtime, clock).drain()
        with runtime.db.scope() as session:
            assert session.get(Message, first.id).error_title.startswith("window_closed: (10/2018278)")
            assert session.get(Message, second.id).status == "failed"
            channel = session.get(Channel, w["channel_id"])
            assert channel.health == "unhealthy" and "access token" in channel.health_message


@pytest.mark.parametrize("kind, content, problem", [
    ("text", {"body": "x" * 1001}, "at most 1000"),
    ("text", {"body": "pick", "quick_replies": [{"title": f"q{i}"} for i in range(14)]}, "at most 13"),
    ("text", {"body": "pick", "quick_replies": [{"title": "a title longer than twenty"}]}, "1 to 20 characters"),
    ("image", {"id": "123"}, "needs a link"),
    ("image", {"link": "https://example.com/a.jpg", "caption": "nice"}, "no caption"),
    ("template", {}, "no templates"),
    ("location", {"latitude": 1, "longitude": 2}, "cannot send 'location'"),
])
def test_what_instagram_cannot_carry_is_refused_by_name(client, runtime, kind, content, problem):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        with runtime.db.scope() as session, pytest.raises(SendRefused, match=problem):
            queue(session, Outgoing(kind=kind, content=content, conversation_id=conversation_of(runtime)),
                  now=utcnow())


def test_buttons_media_and_quick_replies_go_in_instagrams_shapes(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        conv = conversation_of(runtime)
        with runtime.db.scope() as session:
            for kind, content in [
                ("interactive", {"type": "button", "body": {"text": "Which topic?"}, "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "topic_delivery", "title": "Delivery"}},
                    {"type": "reply", "reply": {"id": "topic_returns", "title": "Returns"}}]}}),
                ("image", {"link": "https://example.com/sofa.jpg"}),
                ("document", {"link": "https://example.com/invoice.pdf", "filename": "invoice.pdf"}),
                ("text", {"body": "Rate us", "quick_replies": [{"title": "Good", "payload": "rate_5"}]}),
            ]:
                queue(session, Outgoing(kind=kind, content=content, conversation_id=conv), now=clock())
        for _ in range(4):
            worker(runtime, clock).drain()
        assert [s.body["message"] for s in w["emu"].sent] == [
            {"text": "Which topic?", "quick_replies": [
                {"content_type": "text", "title": "Delivery", "payload": "topic_delivery"},
                {"content_type": "text", "title": "Returns", "payload": "topic_returns"}]},
            {"attachment": {"type": "image", "payload": {"url": "https://example.com/sofa.jpg"}}},
            {"attachment": {"type": "file", "payload": {"url": "https://example.com/invoice.pdf"}}},
            {"text": "Rate us", "quick_replies": [{"content_type": "text", "title": "Good", "payload": "rate_5"}]},
        ]


def test_test_connection_names_a_refused_token(runtime):
    from hub.channels.instagram.emulator import InstagramEmulator

    emu = InstagramEmulator()
    account = emu.add_account("shop")
    with emu.serve() as base:
        data = {"name": "Shop", "ig_user_id": account.id, "access_token": "IGAA-not-the-token-0123456789",
                "app_secret": account.app_secret, "verify_token": account.verify_token, "api_base_url": base}
        with pytest.raises(InvalidChannel, match="Meta refused this token"):
            create_instagram_channel(runtime, data, now=utcnow())
        channel_id = create_instagram_channel(runtime, {**data, "access_token": account.token}, now=utcnow())
    with runtime.db.scope() as session:
        channel = session.get(Channel, channel_id)
        assert (channel.kind, channel.display_number, channel.phone_number_id) == \
            ("instagram", "@shop", f"ig:{account.id}")
        assert account.token not in channel.secrets_enc


def test_compose_is_pure():
    assert compose.compose("text", {"body": "hi"}).message == {"text": "hi"}
    assert compose.request(compose.compose("audio", {"link": "https://e.com/a.m4a"}), recipient="1",
                           fields={"messaging_type": "RESPONSE"}) == {
        "recipient": {"id": "1"}, "messaging_type": "RESPONSE",
        "message": {"attachment": {"type": "audio", "payload": {"url": "https://e.com/a.m4a"}}}}


def test_a_reply_typed_in_the_crm_by_a_person_may_use_the_human_agent_tag(client, runtime):
    from connectors.base import SendText
    from hub.crm.commands import execute

    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(hours=30))
        conv = conversation_of(runtime)
        with runtime.db.scope() as session:
            (result,) = execute(session, [SendText("From the CRM", conv, author="Olga")], now=utcnow())
            assert result.ok, result
            message = session.get(Message, result.message_id)
            assert (message.request["messaging_type"], message.request["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
        with runtime.db.scope() as session:  # a CRM robot's text (no author) is an automation's
            (result,) = execute(session, [SendText("Robot text", conv)], now=utcnow())
            assert not result.ok and "only a person may reply" in result.detail


def test_the_access_token_is_never_logged(client, runtime, caplog):
    import logging

    from tests.support.instagram import TOKEN

    clock = FakeClock(utcnow())
    with caplog.at_level(logging.DEBUG), wired(runtime, client, clock) as w:
        customer_wrote(w, clock, timedelta(minutes=5))
        text(runtime, conversation_of(runtime), "Hi", now=clock())
        w["emu"].fail_next(190, "Error validating access token")
        worker(runtime, clock).drain()
    assert caplog.text and TOKEN not in caplog.text
