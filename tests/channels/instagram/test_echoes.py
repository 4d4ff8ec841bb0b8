"""The account's own messages as Meta echoes them (is_echo): a reply typed in the
Instagram app is an outbound message on the customer's conversation, marked as sent
from the app, with no message.sent and no window change; the echo of a hub send is
never a second message, whichever of the echo and the Send API's answer comes first."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.channels.base import Outgoing
from hub.channels.sending import queue
from hub.platform.db import utcnow
from hub.models import Conversation, Event, Message
from tests.support.clock import FakeClock
from tests.support.instagram import ANA, fixture, make_account_channel, post_webhook, wired, worker


def messages(runtime):
    with runtime.db.scope() as session:
        rows = list(session.scalars(select(Message).order_by(Message.sent_at, Message.created_at)))
        for row in rows:
            session.expunge(row)
        return rows


def sent_events(runtime) -> int:
    with runtime.db.scope() as session:
        return len(list(session.scalars(select(Event.id).where(Event.type == "message.sent"))))


def test_a_reply_from_the_instagram_app_is_on_the_timeline_as_sent_from_the_app(client, runtime):
    _, key = make_account_channel(runtime)
    assert post_webhook(client, key, fixture("message__text")).status_code == 200
    with runtime.db.scope() as session:
        before = session.scalars(select(Conversation)).one().last_inbound_at
    assert post_webhook(client, key, fixture("message__echo")).status_code == 200
    assert post_webhook(client, key, fixture("message__echo")).status_code == 200  # Meta's retry: nothing more
    inbound, echo = messages(runtime)
    assert (inbound.direction, echo.direction, echo.status, echo.text) == ("in", "out", "sent", "Yes, it is!")
    assert echo.conversation_id == inbound.conversation_id and echo.author_id is None
    assert echo.payload["instagram"]["sent_from"] == "instagram_app"
    assert echo.wa_message_id.startswith("ig:aWdfZAG1")
    assert sent_events(runtime) == 0
    with runtime.db.scope() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.last_inbound_at == before and conversation.last_message_at == echo.sent_at


def test_the_inbox_marks_a_reply_from_the_instagram_app(app, client, runtime):
    from tests.support.admin import signed_in

    _, key = make_account_channel(runtime)
    post_webhook(client, key, fixture("message__text"))
    post_webhook(client, key, fixture("message__echo"))
    echo = messages(runtime)[1]
    page = signed_in(app, runtime, "admin").get(f"/admin/inbox/{echo.conversation_id}").get_data(as_text=True)
    bubble = page.split(f'id="m{echo.id}"')[1].split('class="msg ')[0]
    assert "Yes, it is!" in bubble and "sent from the Instagram app" in bubble


def test_the_echo_of_a_hub_send_is_not_a_second_message(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        w["emu"].world.echo_sends = True
        ana = w["emu"].customer(w["account"], ANA)
        ana.send_text("hello?")
        assert w["emu"].flush() == 1
        clock.now = utcnow() + timedelta(seconds=30)
        with runtime.db.scope() as session:
            conversation_id = session.scalar(select(Conversation.id))
            queue(session, Outgoing(kind="text", content={"body": "Yes!"}, conversation_id=conversation_id),
                  now=utcnow())
        assert worker(runtime, clock).drain() == 1
        assert w["emu"].flush() == 1  # the echo comes after the hub recorded the mid
        ana.reply_from_app("And it ships today.")
        assert w["emu"].flush() == 1
    inbound, hub_send, from_app = messages(runtime)
    assert hub_send.text == "Yes!" and "sent_from" not in hub_send.payload.get("instagram", {})
    assert from_app.text == "And it ships today." and from_app.payload["instagram"]["sent_from"] == "instagram_app"
    assert sent_events(runtime) == 1


def test_an_echo_that_comes_before_the_send_is_recorded_gives_way_to_the_send(client, runtime):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        ana = w["emu"].customer(w["account"], ANA)
        ana.send_text("hello?")
        w["emu"].flush()
        clock.now = utcnow() + timedelta(seconds=30)
        with runtime.db.scope() as session:
            conversation_id = session.scalar(select(Conversation.id))
            queue(session, Outgoing(kind="text", content={"body": "Yes!"}, conversation_id=conversation_id),
                  now=utcnow())
        # Meta's echo of the next mid reaches the hub before the Send API's answer is recorded.
        mid = f"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj{w['emu'].world._mid + 1:012d}"
        from hub.channels.instagram.emulator.state import echo_webhook, now_ms

        w["account"].pending.append(echo_webhook(w["account"].id, ANA, now_ms(clock), {"mid": mid, "text": "Yes!"}))
        assert w["emu"].flush() == 1
        stored = messages(runtime)
        assert sorted((m.status, (m.payload.get("instagram") or {}).get("sent_from") or "") for m in stored) == \
            [("queued", ""), ("received", ""), ("sent", "instagram_app")]
        assert worker(runtime, clock).drain() == 1
    inbound, sent = messages(runtime)
    assert (sent.text, sent.wa_message_id, sent.status) == ("Yes!", f"ig:{mid}", "sent")
    assert "sent_from" not in sent.payload.get("instagram", {})
