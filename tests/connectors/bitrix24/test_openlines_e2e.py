"""Open Lines end to end: customers write through the WhatsApp emulator, their messages
land in the open line chats of the emulated portal; an operator's reply there reaches the
customer once, its delivery status comes back; a reply after the 24-hour window is
refused in the chat, naming the templates, and nothing is sent."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from connectors.bitrix24 import emulator
from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Message, Template
from tests.connectors.bitrix24.test_openlines import set_up
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired, worker
from tests.support.whatsapp import WABA_ID

pytestmark = pytest.mark.slow


def test_replies_from_the_open_line_reach_whatsapp_once(client, runtime):
    clock = FakeClock(utcnow())
    with emulator.serve() as portal, wired(runtime, client, clock) as w:
        p = portal.portal
        # The portal's queue server POSTs events to the hub (the Flask test client here).
        p.post = lambda url, data, timeout: client.post(urlsplit(url).path, data=data)
        set_up(runtime, portal)
        with runtime.db.scope() as session:
            session.add(Template(waba_id=WABA_ID, name="order_update", language="en", status="APPROVED",
                                 category="UTILITY", components=[{"type": "BODY", "text": "Hi {{1}}"}],
                                 created_at=utcnow(), updated_at=utcnow()))
        emu, number = w["emu"], w["number"]
        people = [emu.customer(number, f"4915{20000000 + i:08d}", name=f"Kunde {i}") for i in range(5)]
        for person in people:
            person.send_text(f"Hallo von {person.wa_id}")
            person.send_text("Noch eine Frage")
        emu.flush()
        worker(runtime).drain()
        assert len(p.ol.chats) == 5
        assert sum(1 for m in p.ol.messages.values() if m["author"] == "customer") == 10
        with runtime.db.scope() as session:
            by_phone = dict(session.execute(select(Contact.wa_id, Conversation.id).join(
                Conversation, Conversation.contact_id == Contact.id)).all())
        first, late = str(by_phone[people[0].wa_id]), str(by_phone[people[1].wa_id])

        # An operator answers in the open line: one WhatsApp message, the delivery back.
        mid = p.operator_reply(first, "Guten Tag, wie kann ich helfen?")
        queued = list(p.outbox)
        assert p.dispatch_events() == [200]
        worker(runtime).drain()
        assert [s.body["text"]["body"] for s in emu.sent_to(people[0].wa_id)] == [
            "*Olga Sales:*\nGuten Tag, wie kann ich helfen?"]
        emu.flush()
        worker(runtime).drain()
        reply = p.ol.messages[mid]
        assert reply["status"] in ("delivered", "read") and reply["reported"][0] == "delivered"
        assert reply["reported"].count("delivered") == 1

        # Bitrix24 sends the same event again: nothing more goes out.
        p.outbox.extend(queued)
        assert p.dispatch_events() == [200]
        worker(runtime).drain()
        assert len(emu.sent_to(people[0].wa_id)) == 1
        with runtime.db.scope() as session:
            out = session.scalars(select(Message).where(Message.direction == "out")).all()
            assert len(out) == 1

        # After the window: the refusal in the chat, naming the template; nothing sent.
        with runtime.db.scope() as session:
            session.get(Conversation, int(late)).last_inbound_at = utcnow() - timedelta(days=2)
        p.operator_reply(late, "Sind Sie noch da?")
        queued = list(p.outbox)
        assert p.dispatch_events() == [200]
        p.outbox.extend(queued)  # and its repeat: one notice
        assert p.dispatch_events() == [200]
        worker(runtime).drain()
        assert emu.sent_to(people[1].wa_id) == []
        room = p.ol.chats[("whatsapp_hub", 1, late)]
        notices = [p.ol.messages[m]["text"] for m in room["messages"] if p.ol.messages[m]["author"] == "system"]
        assert len(notices) == 1
        assert "24 hours" in notices[0] and "order_update (en)" in notices[0]
        assert p.outbox == []  # registered with NEED_SYSTEM_MESSAGES=false: the notice stays in Bitrix24
        assert p.ol.connectors["whatsapp_hub"]["NEED_SYSTEM_MESSAGES"] is False
        assert len(emu.sent) == 1
        page = client.get("/").status_code  # the hub still answers
        assert page in (200, 302, 404)
