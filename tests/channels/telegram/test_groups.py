"""Group chats: one conversation per group whose contact is the group (never a member),
each message naming its member; joins, departures and renames on the thread; the move
to a supergroup keeps the thread; the bot removed makes the group unreachable."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from hub.channels.base import Outgoing, Unreachable
from hub.channels.sending import queue
from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Event, Message, RawWebhook
from hub.models.contacts import ContactMerge
from tests.support.telegram import fixture, make_bot_channel, post_update

GROUP, SUPERGROUP = -4012345678, -1009876543210
ANA = {"id": "tg:111222333", "name": "Ana Silva", "username": "ana_silva"}


@pytest.fixture
def bot(runtime):
    return make_bot_channel(runtime)


def count(runtime, model, *where):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def events(runtime, type_):
    with runtime.db.scope() as session:
        return [e.data for e in session.scalars(select(Event).where(Event.type == type_)
                                                .order_by(Event.occurred_at, Event.id))]


def post(client, bot, *names):
    for name in names:
        assert post_update(client, bot[1], fixture(name)).status_code == 200, name


def group_contact(runtime, chat_id=GROUP):
    with runtime.db.scope() as session:
        contact = session.scalar(select(Contact).where(Contact.user_id == f"tg:{chat_id}"))
        return None if contact is None else (contact.id, contact.name, contact.unreachable_reason)


def thread(runtime):
    with runtime.db.scope() as session:
        return [(m.type, m.text, (m.payload.get("member") or {}).get("name"))
                for m in session.scalars(select(Message).order_by(Message.sent_at, Message.wa_message_id))]


def test_a_group_message_is_the_groups_conversation_attributed_to_its_member(client, runtime, bot):
    post(client, bot, "message__supergroup_text")
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.user_id, contact.name, contact.wa_id) == ("tg:-1001234567890", "Sofa fans", None)
        message = session.scalars(select(Message)).one()
        assert message.wa_message_id == f"tg:{bot[0]}:-1001234567890:9"
        assert message.payload["member"] == ANA and message.payload["telegram"]["chat_type"] == "supergroup"
        raw = session.scalars(select(RawWebhook)).one()
        assert raw.status == "processed"
    received = events(runtime, "message.received")[0]
    assert received["contact"]["user_id"] == "tg:-1001234567890" and received["contact"]["name"] == "Sofa fans"
    assert received["message"]["member"] == ANA and received["message"]["author"] is None
    assert len(events(runtime, "conversation.started")) == 1


def test_members_writing_share_one_conversation_and_no_member_becomes_a_contact(client, runtime, bot):
    post(client, bot, "message__group_text", "message__group_new_chat_members")
    bo = json.loads(fixture("message__group_text"))
    bo["update_id"], bo["message"]["message_id"] = 400000040, 40
    bo["message"]["from"] = json.loads(fixture("message__group_new_chat_members"))["message"]["new_chat_members"][0]
    bo["message"]["date"] += 20
    bo["message"]["text"] = "hi, I'm new"
    assert post_update(client, bot[1], json.dumps(bo).encode()).status_code == 200
    assert count(runtime, Contact) == 1 and count(runtime, Conversation) == 1
    assert thread(runtime) == [("text", "Is the grey sofa in stock?", "Ana Silva"),
                               ("system", "Ana Silva added Bo to the group", "Ana Silva"),
                               ("text", "hi, I'm new", "Bo")]
    assert [e["message"]["member"]["name"] for e in events(runtime, "message.received")] == ["Ana Silva", "Ana Silva",
                                                                                             "Bo"]
    assert len(events(runtime, "conversation.started")) == 1


def test_group_new_chat_members(client, runtime, bot):
    post(client, bot, "message__group_new_chat_members")
    assert count(runtime, Contact) == 0 and count(runtime, Message) == 0, "no conversation before a message"
    post(client, bot, "message__group_text", "message__group_new_chat_members")
    assert count(runtime, Message) == 1, "the update applied before is not applied again"


def test_group_left_chat_member(client, runtime, bot):
    post(client, bot, "message__group_text", "message__group_left_chat_member")
    assert thread(runtime)[-1] == ("system", "Bo left the group", "Bo")


def test_group_new_chat_title(client, runtime, bot):
    post(client, bot, "message__group_text", "message__group_new_chat_title")
    assert group_contact(runtime)[1] == "Sofa buyers 2026"
    assert thread(runtime)[-1] == ("system", "The group was renamed to \u201cSofa buyers 2026\u201d", "Ana Silva")


def test_group_migrate_to_chat_id(client, runtime, bot):
    post(client, bot, "message__group_text")
    before = group_contact(runtime)
    post(client, bot, "message__group_migrate_to_chat_id", "message__group_migrate_from_chat_id")
    assert group_contact(runtime) is None and group_contact(runtime, SUPERGROUP)[0] == before[0]
    # The supergroup's messages continue the same conversation; replies go to the new id.
    moved = json.loads(fixture("message__group_text"))
    moved["update_id"], moved["message"]["message_id"], moved["message"]["date"] = 400000041, 2, 1765100800
    moved["message"]["chat"] = {"id": SUPERGROUP, "title": "Sofa buyers", "type": "supergroup"}
    assert post_update(client, bot[1], json.dumps(moved).encode()).status_code == 200
    assert count(runtime, Conversation) == 1 and count(runtime, Contact) == 1
    with runtime.db.scope() as session:
        conversation = session.scalars(select(Conversation)).one()
        sent = queue(session, Outgoing(kind="text", content={"body": "we have it"}, conversation_id=conversation.id),
                     now=utcnow())
        assert sent.request["body"]["chat_id"] == SUPERGROUP


def test_group_migrate_from_chat_id(client, runtime, bot):
    """The new supergroup was written in before the old group's move arrived: one thread."""
    post(client, bot, "message__group_text")
    early = json.loads(fixture("message__group_text"))
    early["update_id"], early["message"]["message_id"] = 400000042, 3
    early["message"]["chat"] = {"id": SUPERGROUP, "title": "Sofa buyers", "type": "supergroup"}
    assert post_update(client, bot[1], json.dumps(early).encode()).status_code == 200
    assert count(runtime, Conversation) == 2
    post(client, bot, "message__group_migrate_from_chat_id")
    with runtime.db.scope() as session:
        keys = sorted(k for k in session.scalars(select(Contact.user_id)) if k)
        assert keys == [f"tg:{SUPERGROUP}"]
        owner = session.scalar(select(Contact.id).where(Contact.user_id == f"tg:{SUPERGROUP}"))
        # Both were open: the supergroup's own stays apart rather than making two open threads.
        assert session.scalar(select(func.count()).select_from(Conversation)
                              .where(Conversation.contact_id == owner)) == 1


def test_group_my_chat_member_left(client, runtime, bot):
    post(client, bot, "message__group_text", "my_chat_member__group_left")
    assert group_contact(runtime)[2] == "the bot was removed from the Telegram group"
    with runtime.db.scope() as session:
        conversation = session.scalars(select(Conversation)).one()
        with pytest.raises(Unreachable) as refused:
            queue(session, Outgoing(kind="text", content={"body": "hello?"}, conversation_id=conversation.id),
                  now=utcnow())
        assert "was removed from the Telegram group Sofa buyers" in str(refused.value)
    # Someone writes in the group again: the bot is back in it.
    again = json.loads(fixture("message__group_text"))
    again["update_id"], again["message"]["message_id"] = 400000043, 50
    assert post_update(client, bot[1], json.dumps(again).encode()).status_code == 200
    assert group_contact(runtime)[2] is None


def test_group_contact(client, runtime, bot):
    """A shared contact in a group links nobody, even to a known WhatsApp phone."""
    from tests.support.whatsapp import make_channel
    from hub.conversations.store import upsert_contact

    make_channel(runtime)
    with runtime.db.scope() as session:
        upsert_contact(session, wa_id="351912345678", user_id=None, name="Ana", now=utcnow())
    post(client, bot, "message__group_contact")
    assert count(runtime, ContactMerge) == 0 and events(runtime, "contact.linked") == []
    with runtime.db.scope() as session:
        group = session.scalar(select(Contact).where(Contact.user_id == f"tg:{GROUP}"))
        assert group.person_id is None and group.phone is None
        assert session.scalars(select(Message)).one().type == "contacts"


def test_group_anonymous_admin(client, runtime, bot):
    post(client, bot, "message__group_anonymous_admin")
    assert thread(runtime) == [("text", "Admins here: we ship on Mondays", "Sofa fans")]
