"""POST /webhooks/telegram/<key>: the secret token, the raw body kept first, updates
applied once, messages, edits and blocks mapped onto contacts, conversations and
messages with the same events as WhatsApp's."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from hub.events import payloads
from hub.channels.base import Outgoing, Unreachable
from hub.channels.sending import queue
from hub.platform.db import utcnow
from hub.models import Channel, ChannelUpdate, Contact, Conversation, Event, Message, RawWebhook
from tests.support.telegram import fixture, make_bot_channel, post_update

MESSAGE_FIXTURES = {"message__text": "text", "message__start_deep_link": "text", "message__photo": "image",
                    "message__document": "document", "message__voice": "audio", "message__video": "video",
                    "message__location": "location", "message__venue": "location", "message__contact": "contacts",
                    "message__reply": "text", "message__sticker": "sticker", "message__poll": "unsupported"}


def count(runtime, model, *where):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def events(runtime, type_=None):
    with runtime.db.scope() as session:
        query = select(Event).order_by(Event.occurred_at, Event.id)
        if type_:
            query = query.where(Event.type == type_)
        return [(e.type, e.data) for e in session.scalars(query)]


@pytest.fixture
def bot(runtime):
    return make_bot_channel(runtime)


@pytest.mark.parametrize("name, kind", sorted(MESSAGE_FIXTURES.items()))
def test_each_message_fixture_becomes_one_message_with_its_events(client, runtime, bot, name, kind):
    channel_id, key = bot
    r = post_update(client, key, fixture(name))
    assert r.status_code == 200, r.get_data(as_text=True)
    with runtime.db.scope() as session:
        message = session.scalars(select(Message)).one()
        contact = session.scalars(select(Contact)).one()
        body = json.loads(fixture(name))["message"]
        assert (message.type, message.direction, message.status) == (kind, "in", "received")
        assert message.wa_message_id == f"tg:{channel_id}:111222333:{body['message_id']}"
        assert (contact.user_id, contact.name, contact.username, contact.wa_id) == \
            ("tg:111222333", "Ana Silva", "ana_silva", None)
        raw = session.scalars(select(RawWebhook)).one()
        assert (raw.source, raw.status, raw.channel_id) == ("telegram", "processed", channel_id)
        assert "X-Telegram-Bot-Api-Secret-Token" not in raw.headers, "the secret is not kept"
    types = sorted(t for t, _ in events(runtime))
    assert types == ["conversation.started", "lead.attributed", "message.received"]
    received = events(runtime, "message.received")[0][1]
    assert received["conversation"]["channel"]["kind"] == "telegram"
    assert received["contact"]["user_id"] == "tg:111222333"
    assert received["message"]["type"] == kind


def test_media_is_offered_like_whatsapps(client, runtime, bot):
    post_update(client, bot[1], fixture("message__document"))
    received = events(runtime, "message.received")[0][1]["message"]
    assert received["media"]["id"] == "BQACAgIAAxkBAAIBaGDoc"
    assert received["media"]["filename"] == "invoice-42.pdf" and received["media"]["url"].startswith("/api/v1/")
    assert received["text"] == "The invoice"


def test_a_reply_names_the_message_it_quotes(client, runtime, bot):
    post_update(client, bot[1], fixture("message__reply"))
    with runtime.db.scope() as session:
        assert session.scalars(select(Message)).one().reply_to == f"tg:{bot[0]}:111222333:55"


@pytest.mark.parametrize("secret", [None, "", "wrong", "tg-secret_token-012345678"])
def test_a_wrong_or_missing_secret_token_is_403_and_nothing_is_stored(client, runtime, bot, secret):
    r = post_update(client, bot[1], fixture("message__text"), secret=secret)
    assert r.status_code == 403
    assert count(runtime, RawWebhook) == 0 and count(runtime, Message) == 0


def test_an_unknown_key_is_404_and_a_whatsapp_key_is_not_a_bot(client, runtime, bot):
    from tests.support.whatsapp import make_channel

    assert post_update(client, "no-such-key", fixture("message__text")).status_code == 404
    _, wa_key = make_channel(runtime)
    assert post_update(client, wa_key, fixture("message__text")).status_code == 404
    assert post_update(client, "x" * 65, fixture("message__text")).status_code == 404
    assert count(runtime, RawWebhook) == 0


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"update_id": "x"}', b"\xff\xfe",
                                  b'{"update_id": 5, "message": {"chat": {"id": 1, "type": "private"}, "from": {"id": 1}, "date": 1}}'])
def test_a_bad_body_is_kept_failed_and_answered_200(client, runtime, bot, body):
    assert post_update(client, bot[1], body).status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "failed" and raw.error and raw.body == body
    assert count(runtime, Message) == 0


def test_a_repeated_update_stores_nothing_twice(client, runtime, bot):
    for _ in range(3):
        assert post_update(client, bot[1], fixture("message__text")).status_code == 200
    assert count(runtime, Message) == 1 and count(runtime, Conversation) == 1
    assert count(runtime, ChannelUpdate) == 1
    assert len(events(runtime, "message.received")) == 1
    assert count(runtime, RawWebhook) == 3, "every request's body is kept"


def test_the_same_update_id_of_another_bot_is_another_update(client, runtime, bot):
    _, other_key = make_bot_channel(runtime, name="Other", bot_id=7000000002, secret="other-secret")
    post_update(client, bot[1], fixture("message__text"))
    post_update(client, other_key, fixture("message__text"), secret="other-secret")
    assert count(runtime, Message) == 2 and count(runtime, Conversation) == 2 and count(runtime, Contact) == 1


def test_an_edit_is_recorded_on_the_original(client, runtime, bot):
    post_update(client, bot[1], fixture("message__text"))
    post_update(client, bot[1], fixture("edited_message__text"))
    post_update(client, bot[1], fixture("edited_message__text"))
    with runtime.db.scope() as session:
        original, edit = session.scalars(select(Message).order_by(Message.id)).all()
        assert original.text == "Hi, is the blue sofa still available?"
        assert original.payload["edited_text"].endswith("(the 3-seater)")
        assert original.payload["edited_at"] == payloads.iso(datetime.fromtimestamp(1765100300, tz=timezone.utc))
        assert edit.type == "edit" and edit.wa_message_id.startswith(original.wa_message_id + "@")
    assert sorted(e["message"]["type"] for _, e in events(runtime, "message.received")) == ["edit", "text"]


def test_a_button_press_is_an_interactive_reply_and_answered_in_the_webhook_answer(client, runtime, bot):
    for _ in range(2):
        r = post_update(client, bot[1], fixture("callback_query__button"))
        assert r.status_code == 200 and r.mimetype == "application/json"
        assert r.json == {"method": "answerCallbackQuery", "callback_query_id": "4382bfdwdsb323b2d9"}
    with runtime.db.scope() as session:
        pressed = session.scalars(select(Message)).one()
        assert (pressed.type, pressed.text, pressed.reply_to) == ("interactive", "Blue", f"tg:{bot[0]}:111222333:56")
        assert pressed.payload["content"] == {"button_reply": {"id": "sofa:blue", "title": "Blue"}}
    received = events(runtime, "message.received")
    assert len(received) == 1 and received[0][1]["message"]["text"] == "Blue"
    assert post_update(client, bot[1], fixture("message__text")).mimetype == "text/plain"


def test_blocking_the_bot_marks_the_contact_and_refuses_sends_by_name(client, runtime, bot):
    post_update(client, bot[1], fixture("message__text"))
    post_update(client, bot[1], fixture("my_chat_member__kicked"))
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.unreachable_at is not None and "blocked the bot" in contact.unreachable_reason
        conversation_id = session.scalars(select(Conversation.id)).one()
    with pytest.raises(Unreachable) as refused:
        with runtime.db.scope() as session:
            queue(session, Outgoing(kind="text", content={"body": "still there?"}, conversation_id=conversation_id),
                  now=utcnow())
    assert refused.value.status == 409 and refused.value.code == "unreachable"
    assert "Ana Silva blocked the bot @shop_bot on Telegram" in str(refused.value)
    post_update(client, bot[1], fixture("my_chat_member__member"))
    with runtime.db.scope() as session:
        assert session.scalars(select(Contact)).one().unreachable_at is None
        message = queue(session, Outgoing(kind="text", content={"body": "welcome back"},
                                          conversation_id=conversation_id), now=utcnow())
        assert message.request == {"method": "sendMessage", "body": {"chat_id": 111222333, "text": "welcome back"}}


def test_writing_again_unblocks(client, runtime, bot):
    post_update(client, bot[1], fixture("message__text"))
    post_update(client, bot[1], fixture("my_chat_member__kicked"))
    post_update(client, bot[1], fixture("message__photo"))
    with runtime.db.scope() as session:
        assert session.scalars(select(Contact)).one().unreachable_at is None


def test_a_block_by_an_unknown_user_changes_nothing(client, runtime, bot):
    assert post_update(client, bot[1], fixture("my_chat_member__kicked")).status_code == 200
    assert count(runtime, Contact) == 0


def test_a_failed_body_is_replayed(client, runtime, bot):
    from hub.events.raw_webhooks import replay

    body = fixture("message__text")
    with runtime.db.scope() as session:
        session.add(RawWebhook(source="telegram", channel_id=bot[0], received_at=utcnow(), headers={}, body=body,
                               status="failed", error="parser had a bug", attempts=1))
    assert replay(runtime, now=utcnow()) == {"processed": 1, "failed": 0}
    assert count(runtime, Message) == 1


@pytest.mark.parametrize("text", ["nul \\u0000 inside", "lone \\ud800 surrogate"])
def test_text_no_column_can_hold_is_kept_not_lost(client, runtime, bot, text):
    body = fixture("message__text").replace(b"Hi, is the blue sofa still available?", text.encode())
    assert post_update(client, bot[1], body).status_code == 200
    with runtime.db.scope() as session:
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.body == body
        stored = session.scalars(select(Message)).all()
        assert raw.status == ("processed" if stored else "failed")


def test_applied_update_ids_age_out_with_retention(client, runtime, bot):
    from datetime import timedelta

    from hub.jobs.retention import purge

    post_update(client, bot[1], fixture("message__text"))
    assert purge(runtime.db, now=utcnow(), days=30)["channel_updates"] == 0
    assert purge(runtime.db, now=utcnow() + timedelta(days=31), days=30)["channel_updates"] == 1
    assert count(runtime, ChannelUpdate) == 0 and count(runtime, Message) == 1


def test_a_tracked_link_opens_the_bot_with_its_code_and_start_attributes_the_lead(client, runtime, bot):
    from urllib.parse import urlsplit

    from tests.support.tracking import make_link

    with runtime.db.scope() as session:  # as create_telegram_channel leaves it: "@<username>"
        assert session.get(Channel, bot[0]).display_number == "@shop_bot"
    make_link(runtime, bot[0], utm_source="instagram", utm_campaign="winter")
    r = client.get("/l/spring-sale?utm_content=story")
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "t.me", "/shop_bot")
    code = location.query.removeprefix("start=")
    assert len(code) == 6 and code.isalnum()
    assert client.head("/l/spring-sale").headers["Location"] == "https://t.me/shop_bot"
    body = json.loads(fixture("message__start_deep_link"))
    body["message"]["text"] = f"/start {code}"  # what Telegram sends when they press Start
    post_update(client, bot[1], json.dumps(body).encode())
    with runtime.db.scope() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.lead_source["campaign"] == "Spring sale"
        source = conversation.lead_source
        assert source["kind"] == "tracked_link"
        assert (source["utm_source"], source["utm_campaign"], source["utm_content"], source["code"]) == \
            ("instagram", "winter", "story", code)
        assert session.scalars(select(Message)).one().payload["tracking"]["code"] == code
    started = events(runtime, "lead.attributed")[0][1]
    assert started["lead_source"]["campaign"] == "Spring sale"
