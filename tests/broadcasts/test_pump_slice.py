"""A slice of a broadcast is queued in one INSERT of its messages and one UPDATE of its
recipients, with what queueing each message by itself gave: each message due at its
place in the number's pace, addressed to the contact's open conversation (or a new one,
announced by conversation.started), its request carrying its own id; skipped recipients
keep their reasons."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from hub.broadcasts import audiences, lifecycle
from hub.broadcasts.pump import BroadcastPump
from hub.models import Broadcast, BroadcastRecipient, Channel, Contact, Conversation, Event, Message, Template
from hub.platform.db import utcnow
from tests.support.whatsapp import WABA_ID, make_channel

CSV = ("phone;first_name;code\n+4915100000001;Ana;A1\n+4915100000002;Bob;B2\n+4915100000003;Cid;C3\n"
       "+4915100000004;Dan;D4\n+4915100000005;Eve;E5\n+4915100000006;Fay;F6\n").encode()


def statements(engine, out: list[str]):
    def record(conn, cursor, statement, parameters, context, executemany):
        out.append(" ".join(statement.split()))
    event.listen(engine, "before_cursor_execute", record)
    return lambda: event.remove(engine, "before_cursor_execute", record)


def test_a_slice_is_one_insert_and_one_update_with_the_same_effects(runtime):
    now = utcnow().replace(microsecond=0) + timedelta(seconds=1)
    channel_id, _ = make_channel(runtime)
    with runtime.db.scope() as s:
        s.get(Channel, channel_id).mps = 20
        s.add(Template(waba_id=WABA_ID, name="promo", language="en", status="APPROVED", category="MARKETING",
                       components=[{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}]))
        # Bob has an open conversation on the number; Dan no longer takes marketing.
        bob = Contact(wa_id="4915100000002", phone="+4915100000002", name="Bob", created_at=now, updated_at=now)
        dan = Contact(wa_id="4915100000004", phone="+4915100000004", name="Dan", created_at=now, updated_at=now)
        s.add_all([bob, dan])
        s.flush()
        conversation = Conversation(channel_id=channel_id, contact_id=bob.id, status="open", opened_at=now,
                                    created_at=now, updated_at=now)
        s.add(conversation)
        s.flush()
        bob_conversation, dan_id = conversation.id, dan.id
        audience = audiences.create_from_csv(s, name="list", data=CSV, now=now)
        b = lifecycle.create(s, name="December", channel_id=channel_id, audience_id=audience.id,
                             template_name="promo", template_language="en",
                             variables=[{"column": "first_name"}, {"column": "code"}], now=now)
        lifecycle.start(s, b.id, now=now)
        broadcast_id = b.id
    with runtime.db.scope() as s:  # since it was made: Dan opted out, Cid's row lost its name
        s.get(Contact, dan_id).opted_out_at = now
        s.query(BroadcastRecipient).filter(BroadcastRecipient.phone == "+4915100000003").update(
            {"variables": {"code": "C3"}})
    pump = BroadcastPump(runtime, clock=lambda: now, sleep=lambda _: None, step_seconds=0)
    pump.run_once()  # scheduled -> sending, and its first step
    with runtime.db.scope() as s:
        expected = pump._pace(s, s.get(Channel, channel_id), now)
    assert expected.room > 0
    with runtime.db.scope() as s:
        # Put the slice back to pending and queue it again, watching the statements.
        s.query(Message).delete()
        s.query(Event).filter(Event.type == "conversation.started").delete()
        s.query(Conversation).filter(Conversation.id != bob_conversation).delete()
        s.query(BroadcastRecipient).update({"status": "pending", "reason": None, "message_id": None,
                                            "queued_at": None, "contact_id": None, "message_status": None})
    with runtime.db.scope() as s:
        pace = pump._pace(s, s.get(Channel, channel_id), now)
    seen: list[str] = []
    stop = statements(runtime.db.engine, seen)
    try:
        pump.step(broadcast_id)
    finally:
        stop()
    inserts = [q for q in seen if q.startswith("INSERT INTO messages")]
    updates = [q for q in seen if q.startswith("UPDATE broadcast_recipients")]
    assert len(inserts) == 1 and len(updates) == 1, (inserts, updates)
    with runtime.db.scope() as s:
        recipients = {r.phone: r for r in s.scalars(select(BroadcastRecipient).where(
            BroadcastRecipient.broadcast_id == broadcast_id))}
        assert recipients["+4915100000003"].status == "skipped"
        assert recipients["+4915100000003"].reason.startswith("missing_variables: ")
        assert (recipients["+4915100000004"].status, recipients["+4915100000004"].reason) == ("skipped", "opted_out")
        queued = [recipients[p] for p in ("+4915100000001", "+4915100000002", "+4915100000005", "+4915100000006")]
        assert all(r.status == "queued" and r.message_status == "queued" and r.queued_at == now for r in queued)
        messages = [s.get(Message, r.message_id) for r in queued]
        assert [m.next_attempt_at for m in messages] == [pace.due(i) for i in range(4)]
        for r, m in zip(queued, messages):
            conversation = s.get(Conversation, m.conversation_id)
            assert conversation.status == "open" and r.contact_id == conversation.contact_id
            assert m.request["biz_opaque_callback_data"] == f"hub:{m.id}" and m.request["to"] == r.phone
            assert (m.status, m.direction, m.type, m.recipient) == ("queued", "out", "template", r.phone)
            assert m.template_name == "promo" and m.template_category == "MARKETING"
            assert m.text.startswith("Hi ") and m.payload["content"]["name"] == "promo"
        assert messages[1].conversation_id == bob_conversation
        started = [e.data["contact"]["wa_id"] for e in s.scalars(select(Event).where(
            Event.type == "conversation.started"))]
        assert sorted(started) == ["4915100000001", "4915100000005", "4915100000006"]
        assert s.get(Broadcast, broadcast_id).status == "sending"
