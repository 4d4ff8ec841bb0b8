"""Broadcasts end to end against the WhatsApp emulator: a 500-row CSV with 3% bad rows
and 2% opted out sends exactly the rest once each, even with a worker that died between
Meta's answer and its commit; a quality drop mid-run pauses within one pacing step and
resumes when it clears; STOP mid-run takes the person out; results and cost add up."""
from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.broadcasts import audiences, consent, lifecycle, results
from hub.broadcasts.pump import BroadcastPump
from hub.channels.whatsapp.channels import endpoint
from hub.channels.whatsapp.outbound.client import WhatsAppClient
from hub.channels.ledger import claim
from hub.channels.whatsapp.outbound.sender import Sender
from hub.platform.db import utcnow
from hub.models import Broadcast, BroadcastRecipient, Channel, Contact, Event, Message
from tests.support.wa_emulator import wired, worker
from tests.support.whatsapp import WABA_ID

pytestmark = pytest.mark.slow

PROMO = [{"type": "BODY", "text": "Hi {{1}}, your code is {{2}}. Reply STOP to opt out."}]


def csv_of(total: int, bad: int, seed: int = 7) -> tuple[bytes, list[str]]:
    rng = random.Random(seed)
    lines, phones = ["phone;first_name;code"], []
    bad_rows = set(rng.sample(range(total), bad))
    for i in range(total):
        if i in bad_rows:
            lines.append(f"{'12' if i % 2 else 'n/a'};Bad{i};X{i}")
        else:
            phone = f"+4915{100000000 + i}"
            phones.append(phone)
            lines.append(f"{phone};Name{i};C{i:04d}")
    return "\n".join(lines).encode("cp1251"), phones


def opt_out(runtime, phones):
    now = utcnow()
    with runtime.db.scope() as s:
        for phone in phones:
            c = Contact(wa_id=phone[1:], phone=phone, name="", created_at=now, updated_at=now)
            s.add(c)
            s.flush()
            consent.record(s, c, "marketing", "opted_out", source="api", at=now, now=now)


def setup(runtime, client, w, *, mps: int, tier: str = "TIER_10K"):
    emu = w["emu"]
    w["number"].mps = 10_000  # the hub's own limit paces it here
    emu.add_template(WABA_ID, name="promo", language="en", category="MARKETING", components=PROMO)
    from tests.support.wa_emulator import TOKEN  # noqa: F401
    from hub.channels.whatsapp.templates.sync import TemplateSyncer

    with runtime.db.scope() as s:
        channel = s.get(Channel, w["channel_id"])
        channel.mps, channel.messaging_limit = mps, tier
        channel.templates_sync_requested_at = utcnow()
    TemplateSyncer(runtime).run_once()


def make_broadcast(runtime, channel_id, data, **options) -> int:
    now = utcnow()
    with runtime.db.scope() as s:
        audience = audiences.create_from_csv(s, name="list", data=data, now=now)
        b = lifecycle.create(s, name="December offer", channel_id=channel_id, audience_id=audience.id,
                             template_name="promo", template_language="en",
                             variables=[{"column": "first_name"}, {"column": "code"}], now=now, **options)
        lifecycle.start(s, b.id, now=now)
        return b.id


def status_of(runtime, broadcast_id):
    with runtime.db.scope() as s:
        return s.get(Broadcast, broadcast_id).status


def run(runtime, w, broadcast_id, *, seconds=300, until=("completed", "cancelled", "paused")):
    """Pump, send and play the webhooks back until the broadcast is `until` (the pace is
    real time: messages come due at the number's throughput)."""
    pump, work = BroadcastPump(runtime, step_seconds=0), worker(runtime)
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        pump.run_once()
        work.drain()
        w["emu"].flush()
        if status_of(runtime, broadcast_id) in until:
            pump.run_once()  # the outcomes of the last statuses
            return
    raise AssertionError(f"broadcast still {status_of(runtime, broadcast_id)}")


def template_sends(emu):
    return [m.recipient.wa_id for m in emu.sent if m.type == "template"]


def test_csv_broadcast_sends_the_rest_exactly_once_after_a_dead_worker(runtime, client):
    data, phones = csv_of(500, 15)
    opted = phones[::50][:10]  # 2%: 10 of the 485 good rows
    opt_out(runtime, opted)
    with wired(runtime, client, utcnow) as w:
        emu = w["emu"]
        setup(runtime, client, w, mps=100)
        broadcast_id = make_broadcast(runtime, w["channel_id"], data)
        # A worker claims a batch, Meta accepts it, and the worker dies before its commit.
        BroadcastPump(runtime, step_seconds=0).run_once()
        with runtime.db.scope() as s:
            soon = utcnow() + timedelta(seconds=5)  # the slice's messages are due one by one
            dead = claim(s, w["channel_id"], "dead-worker", now=soon, limit=20, lease_seconds=120)
            channel = s.get(Channel, w["channel_id"])
            s.expunge(channel)
        client_api = WhatsAppClient(endpoint(channel, runtime.vault, runtime.config), Sender(runtime, "x").http)
        for item in dead:
            client_api.send(item.body)
        assert len(dead) == 20
        emu.flush()  # its statuses name the messages (biz_opaque_callback_data): adopted, not resent
        with runtime.db.scope() as s:
            ids = [d.message_id for d in dead]
            assert s.scalar(select(func.count()).select_from(Message).where(
                Message.id.in_(ids), Message.wa_message_id.is_not(None))) == 20
        # ... and if a lease lapsed anyway, the adopted ones are not waiting any more.
        with runtime.db.scope() as s:
            for m in s.scalars(select(Message).where(Message.lease_owner == "dead-worker")):
                m.lease_expires_at = utcnow()
        run(runtime, w, broadcast_id)
        sent = template_sends(emu)
        assert len(sent) == len(set(sent)) == 475
        assert set(sent) == {p[1:] for p in phones} - {p[1:] for p in opted}
        with runtime.db.scope() as s:
            b = s.get(Broadcast, broadcast_id)
            assert b.status == "completed"
            counts = results.counts(s, broadcast_id)
            assert counts["pending"] == counts["queued"] == counts["skipped"] == counts["failed"] == 0
            assert counts["read"] + counts["delivered"] + counts["sent"] == 475
            refused = results.refused_rows(s, b)
            reasons = sorted(r["reason"] for r in refused)
            assert reasons.count("bad_number") == 15 and reasons.count("opted_out") == 10
            f = results.funnel(s, b)
            assert f["funnel"]["delivered"] == 475 and f["refused_at_upload"] == 25
            assert float(f["cost"]["total"]) > 0
            events = list(s.scalars(select(Event).where(Event.type == "broadcast.recipient")))
            # One event each time a recipient moves forward; here the statuses were all in
            # by the time the pump looked, so one per recipient, with its final status.
            assert len({e.data["recipient"]["phone"] for e in events}) == 475
            assert {e.data["recipient"]["status"] for e in events} <= {"sent", "delivered", "read"}
            csv_text = results.export_csv(s, b)
            assert csv_text.count("\n") == 1 + 475 + 25


def test_quality_drop_pauses_within_one_step_and_resume_finishes_with_exact_counts(runtime, client):
    data, phones = csv_of(300, 0, seed=3)
    with wired(runtime, client, utcnow) as w:
        emu, number = w["emu"], w["number"]
        setup(runtime, client, w, mps=20)  # slices of 40
        broadcast_id = make_broadcast(runtime, w["channel_id"], data)
        pump, work = BroadcastPump(runtime, step_seconds=0), worker(runtime)
        # Messages come due in real time (the first a tick after queueing): go round until
        # some have gone out, which is long before all 300 have.
        stop_at = time.monotonic() + 10
        while not template_sends(emu) and time.monotonic() < stop_at:
            pump.run_once()
            work.drain()
            emu.flush()
        before = len(template_sends(emu))
        assert 0 < before < 300
        pump.run_once()  # a slice is queued ...
        emu.set_quality(number, "RED")
        emu.flush()  # ... the FLAGGED webhook arrives before the sender takes it
        pump.run_once()
        with runtime.db.scope() as s:
            b = s.get(Broadcast, broadcast_id)
            assert b.status == "paused" and b.paused_by == "quality" and "RED" in b.paused_reason
            assert s.scalar(select(func.count()).select_from(BroadcastRecipient).where(
                BroadcastRecipient.broadcast_id == broadcast_id, BroadcastRecipient.status == "queued")) == 0
            assert s.scalar(select(func.count()).select_from(Event).where(Event.type == "broadcast.paused")) == 1
        work.drain()
        assert len(template_sends(emu)) == before, "nothing goes out while paused"
        emu.set_quality(number, "GREEN")
        emu.flush()
        run(runtime, w, broadcast_id, until=("completed",))
        sent = template_sends(emu)
        assert len(sent) == len(set(sent)) == 300


def test_stop_mid_run_takes_the_person_out_of_the_broadcast(runtime, client):
    data, phones = csv_of(120, 0, seed=5)
    with wired(runtime, client, utcnow) as w:
        emu, number = w["emu"], w["number"]
        setup(runtime, client, w, mps=40)
        broadcast_id = make_broadcast(runtime, w["channel_id"], data)
        late = phones[-1]
        emu.customer(number, late[1:], name="Late").send_text("Стоп")
        emu.flush()
        run(runtime, w, broadcast_id)
        assert late[1:] not in template_sends(emu)
        assert len(set(template_sends(emu))) == len(template_sends(emu)) == 119
        with runtime.db.scope() as s:
            row = s.scalar(select(BroadcastRecipient).where(BroadcastRecipient.phone == late))
            assert row.status == "skipped" and row.reason == "opted_out"
