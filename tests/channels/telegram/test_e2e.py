"""End to end through the Bot API emulator: users write (with repeated updates), the
hub stores each conversation and message once with its events, replies reach the
users, Telegram's limits and a blocked bot end as clear outcomes."""
from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Event, Message, RawWebhook
from tests.support.clock import FakeClock
from tests.support.telegram import wired, worker

pytestmark = pytest.mark.slow


def count(runtime, model, *where):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def event_counts(runtime):
    with runtime.db.scope() as session:
        return Counter(session.scalars(select(Event.type)))


def conversation_of(runtime, user_id):
    with runtime.db.scope() as session:
        return session.scalar(select(Conversation.id).join(Contact).where(Contact.user_id == f"tg:{user_id}"))


def test_50_users_write_with_repeated_updates_and_replies_reach_them(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        emu, bot = w["emu"], w["bot"]
        assert bot.webhook_url.startswith("http://hub.test/webhooks/telegram/") and bot.secret_token
        users = [emu.user(bot, 500000 + i, f"User{i}", "Test", username=f"user_{i}") for i in range(50)]
        for round_ in range(3):
            for user in users:
                user.send_text(f"message {round_} from {user.id}")
        users[0].send_photo(b"\xff\xd8photo", caption="this one")
        users[1].share_contact("+351912345678")
        assert emu.flush(duplicate=True) == 152
        assert all(d.attempts[0] == 200 for d in emu.world.deliveries)
        assert count(runtime, RawWebhook) == 304, "every POST kept, repeats included"
        assert count(runtime, Conversation) == 50 and count(runtime, Contact) == 50
        assert count(runtime, Message, Message.direction == "in") == 152
        events = event_counts(runtime)
        assert (events["conversation.started"], events["lead.attributed"], events["message.received"]) == \
            (50, 50, 152)

        # A reply, quoting the user's message, goes out through the worker.
        conv = conversation_of(runtime, users[0].id)
        with runtime.db.scope() as session:
            quoted = session.scalar(select(Message.wa_message_id).where(
                Message.conversation_id == conv, Message.type == "text").order_by(Message.id).limit(1))
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "Thanks, on it!"}, "reply_to": quoted})
        assert r.status_code == 202, r.json
        r2 = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "image", "image": {"link": "https://example.com/sofa.jpg",
                                                                 "caption": "The sofa"}})
        assert r2.status_code == 202, r2.json
        assert worker(runtime).drain() >= 2
        got = users[0].received()
        assert [(s.method, s.body.get("text") or s.body.get("caption")) for s in got] == \
            [("sendMessage", "Thanks, on it!"), ("sendPhoto", "The sofa")]
        assert got[0].message["reply_to_message"]["text"] == "message 0 from 500000"
        with runtime.db.scope() as session:
            sent = session.get(Message, r.json["id"])
            assert sent.status == "sent" and sent.wa_message_id == \
                f"tg:{w['channel_id']}:{users[0].id}:{got[0].message['message_id']}"
        assert event_counts(runtime)["message.sent"] == 2

        # The user answers the bot's message: the reply names the hub's message.
        users[0].send_text("great", reply_to=got[0].message["message_id"])
        emu.flush()
        with runtime.db.scope() as session:
            last = session.scalars(select(Message).where(Message.direction == "in").order_by(Message.id.desc())).first()
            assert last.reply_to == sent.wa_message_id


def test_a_blocked_bot_is_a_clear_refusal(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        emu, bot = w["emu"], w["bot"]
        ana, bo = emu.user(bot, 42, "Ana"), emu.user(bot, 43, "Bo")
        ana.send_text("hi")
        bo.send_text("hello")
        emu.flush()
        # Ana blocks the bot and Telegram tells the hub: the next send is refused at once.
        ana.block()
        emu.flush()
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime, 42), "type": "text", "text": {"body": "still there?"}})
        assert r.status_code == 409 and r.json["error"] == "unreachable"
        assert "Ana blocked the bot @shop_bot on Telegram" in r.json["message"]
        # Bo blocks it without the hub hearing: the send fails with Telegram's 403, named.
        bo.block(notify=False)
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime, 43), "type": "text", "text": {"body": "still there?"}})
        assert r.status_code == 202
        worker(runtime).drain()
        with runtime.db.scope() as session:
            failed = session.get(Message, r.json["id"])
            assert failed.status == "failed" and failed.error_code == 403
            assert failed.error_title == "unreachable: Forbidden: bot was blocked by the user"
            bo_contact = session.scalar(select(Contact).where(Contact.user_id == "tg:43"))
            assert bo_contact.unreachable_at is not None
        assert event_counts(runtime)["message.status"] == 1
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime, 43), "type": "text", "text": {"body": "again?"}})
        assert r.status_code == 409 and "Bo blocked the bot" in r.json["message"]
        # Writing again unblocks.
        bo.send_text("sorry, back")
        emu.flush()
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation_of(runtime, 43), "type": "text", "text": {"body": "welcome back"}})
        assert r.status_code == 202


def test_429_retry_after_is_honoured_and_400_is_named(client, runtime, admin_headers):
    clock = FakeClock(utcnow() + timedelta(seconds=30))  # ahead of what the API queues
    with wired(runtime, client, clock, chat_burst=1) as w:
        emu, bot = w["emu"], w["bot"]
        ana = emu.user(bot, 42, "Ana")
        ana.send_text("hi")
        emu.flush()
        conv = conversation_of(runtime, 42)
        ids = [client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": f"part {i}"}}).json["id"] for i in range(2)]
        w1 = worker(runtime, clock)
        w1.drain()
        with runtime.db.scope() as session:
            first, second = (session.get(Message, i) for i in ids)
            assert first.status == "sent"
            assert second.status == "queued" and second.error_code == 429
            assert second.next_attempt_at == clock.now + timedelta(seconds=1)
        clock.advance(1)
        w1.drain()
        assert [s.body["text"] for s in ana.received()] == ["part 0", "part 1"]
        # Telegram refuses what the hub could not know: named, not retried.
        emu.fail_next("sendMessage", 400, "Bad Request: chat not found")
        clock.advance(5)
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "lost"}})
        w1.drain()
        with runtime.db.scope() as session:
            lost = session.get(Message, r.json["id"])
            assert (lost.status, lost.error_code, lost.error_title) == ("failed", 400, "Bad Request: chat not found")


def test_text_over_4096_and_templates_are_refused_before_the_network(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        ana = w["emu"].user(w["bot"], 42, "Ana")
        ana.send_text("hi")
        w["emu"].flush()
        conv = conversation_of(runtime, 42)
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "reaction", "reaction": {"message_id": "tg:1:42:1", "emoji": "x"}})
        assert r.status_code == 422 and "Telegram channels cannot send 'reaction'" in r.json["message"]
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "x" * 4097}})
        assert r.status_code == 422, r.json
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "template", "template": {"name": "x", "language": "en"}})
        assert r.status_code == 422 and "Telegram has no templates" in r.json["message"]
        assert count(runtime, Message, Message.direction == "out") == 0


def test_a_users_file_is_downloaded_through_the_api_and_a_signed_link(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        ana = w["emu"].user(w["bot"], 42, "Ana")
        ana.send_document(b"%PDF-1.7 invoice", "invoice-42.pdf", caption="the invoice")
        w["emu"].flush()
        with runtime.db.scope() as session:
            message_id = session.scalar(select(Message.id).where(Message.type == "document"))
        r = client.get(f"/api/v1/messages/{message_id}/media", headers=admin_headers)
        assert r.status_code == 200 and r.data == b"%PDF-1.7 invoice"
        assert r.mimetype == "application/pdf" and "invoice-42.pdf" in r.headers["Content-Disposition"]
        with runtime.db.scope() as session:
            link = session.scalar(select(Event.data).where(Event.type == "message.received"))["message"]["media"]
        assert link["download_url"].startswith(runtime.config.base_url + "/media/"), "connectors get a signed link"
        signed = client.get(link["download_url"].removeprefix(runtime.config.base_url))
        assert signed.status_code == 200 and signed.data == b"%PDF-1.7 invoice"
        w["emu"].world.files.clear()  # Telegram no longer has it
        r = client.get(f"/api/v1/messages/{message_id}/media", headers=admin_headers)
        assert r.status_code == 502 and "invalid file_id" in r.get_data(as_text=True)


def test_buttons_go_out_as_an_inline_keyboard_and_a_press_comes_back_answered(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        emu, bot = w["emu"], w["bot"]
        ana = emu.user(bot, 42, "Ana")
        ana.send_text("which sofas do you have?")
        emu.flush()
        conv = conversation_of(runtime, 42)
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "interactive", "interactive": {
                "type": "button", "body": "Which colour?", "footer": "Tap one",
                "buttons": [{"id": "sofa:blue", "title": "Blue"}, {"id": "sofa:green", "title": "Green"}]}})
        assert r.status_code == 202, r.json
        worker(runtime).drain()
        [asked] = ana.received()
        assert asked.message["reply_markup"]["inline_keyboard"][1] == [{"text": "Green", "callback_data": "sofa:green"}]
        assert asked.message["text"] == "Which colour?\n\nTap one"
        query = ana.press(asked.message, "sofa:green")
        emu.flush(duplicate=True)
        assert emu.world.answered == [query["id"], query["id"]], "the press stops spinning (repeats too)"
        with runtime.db.scope() as session:
            pressed = session.scalars(select(Message).where(Message.type == "interactive",
                                                            Message.direction == "in")).one()
            sent = session.get(Message, r.json["id"])
            assert (pressed.text, pressed.reply_to) == ("Green", sent.wa_message_id)
            assert pressed.payload["content"]["button_reply"] == {"id": "sofa:green", "title": "Green"}


def test_a_group_chat_is_one_conversation_through_its_renames_and_upgrade(client, runtime, admin_headers):
    with wired(runtime, client) as w:
        emu, bot = w["emu"], w["bot"]
        ana, bo = emu.user(bot, 42, "Ana", "Silva", username="ana"), emu.user(bot, 43, "Bo")
        group = emu.group(bot, -4000000001, "Sofa buyers")
        group.say(ana, "Is the grey sofa in stock?")
        group.join(bo, added_by=ana)
        group.say(bo, "and in blue?")
        ana.send_text("a private question")  # her own chat stays her own conversation
        assert emu.flush(duplicate=True) == 4
        assert count(runtime, Contact) == 2 and count(runtime, Conversation) == 2
        conv = conversation_of(runtime, -4000000001)
        with runtime.db.scope() as session:
            rows = session.execute(select(Message.type, Message.text, Message.payload).where(
                Message.conversation_id == conv).order_by(Message.sent_at, Message.wa_message_id)).all()
        assert [(t, text, p["member"]["name"]) for t, text, p in rows] == [
            ("text", "Is the grey sofa in stock?", "Ana Silva"), ("system", "Ana Silva added Bo to the group", "Ana Silva"),
            ("text", "and in blue?", "Bo")]

        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "Both colours, yes"}})
        assert r.status_code == 202, r.json
        assert worker(runtime).drain() >= 1
        assert [s.body["text"] for s in group.received()] == ["Both colours, yes"]
        assert not [s for s in ana.received() if s.body.get("text") == "Both colours, yes"]

        # Renamed, then upgraded to a supergroup: the same conversation, replies to the new id.
        group.rename(bo, "Sofa buyers 2026")
        supergroup = group.upgrade(ana, -1004000000001)
        supergroup.say(ana, "still here")
        emu.flush()
        assert conversation_of(runtime, -1004000000001) == conv and count(runtime, Conversation) == 2
        with runtime.db.scope() as session:
            assert session.scalar(select(Contact.name).where(Contact.user_id == "tg:-1004000000001")) == \
                "Sofa buyers 2026"
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "welcome to the supergroup"}})
        assert r.status_code == 202
        worker(runtime).drain()
        assert [s.body["text"] for s in supergroup.received()] == ["welcome to the supergroup"]

        # The bot is removed: the next reply is refused by name before the network.
        supergroup.remove_bot(bo)
        emu.flush()
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conv, "type": "text", "text": {"body": "hello?"}})
        assert r.status_code == 409 and r.json["error"] == "unreachable"
        assert "removed from the Telegram group Sofa buyers 2026" in r.json["message"]
        events = event_counts(runtime)
        assert (events["conversation.started"], events["message.received"], events["message.sent"]) == (2, 6, 2)
