"""A Telegram conversation in the inbox: no window (the reply box is open whenever the
customer last wrote), no templates offered, and a reply goes out through the channel."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from hub.platform.db import utcnow
from hub.models import Conversation, Message
from tests.support.admin import post, signed_in
from tests.support.telegram import fixture, make_bot_channel, post_update


def test_a_telegram_chat_can_be_answered_from_the_inbox_any_time(app, client, runtime):
    _, key = make_bot_channel(runtime)
    post_update(client, key, fixture("message__text"))  # written in 2025: long past any 24-hour window
    with runtime.db.scope() as s:
        conversation_id = s.scalar(select(Conversation.id))
    admin = signed_in(app, runtime, "admin")
    page = admin.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    assert 'id="window-closed"' not in page and "disabled" not in page.split('id="reply-text"')[1].split(">")[0]
    assert 'id="templates-box"' not in page and "Send a template" not in page
    listing = admin.get("/admin/inbox").get_data(as_text=True)
    assert "closed: templates only" not in listing
    with runtime.db.scope() as s:  # just inside WhatsApp's warning time: still not "closing soon"
        s.execute(update(Conversation).values(last_inbound_at=utcnow() - timedelta(hours=23, minutes=30)))
    assert f"/admin/inbox/{conversation_id}" not in admin.get("/admin/inbox?view=closing").get_data(as_text=True)
    r = post(admin, f"/admin/inbox/{conversation_id}/reply", {"text": "Yes, it is!"},
             page=f"/admin/inbox/{conversation_id}")
    assert r.status_code == 302
    with runtime.db.scope() as s:
        out = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert out.request == {"method": "sendMessage", "body": {"chat_id": 111222333, "text": "Yes, it is!"}}


def test_a_group_thread_names_the_member_of_each_message(app, client, runtime):
    _, key = make_bot_channel(runtime)
    for name in ("message__group_text", "message__group_new_chat_members"):
        post_update(client, key, fixture(name))
    with runtime.db.scope() as s:
        conversation_id = s.scalar(select(Conversation.id))
    admin = signed_in(app, runtime, "admin")
    page = admin.get(f"/admin/inbox/{conversation_id}").get_data(as_text=True)
    thread = page.split('id="m', 1)[1]
    assert thread.count('<div class="member">Ana Silva</div>') == 2
    assert "Ana Silva added Bo to the group" in thread and "Sofa buyers" in page
