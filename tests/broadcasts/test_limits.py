"""Broadcasts under Meta's rules for mailings, as the emulator plays them: the per-user
marketing cap (131049) fails sends until the failure rate pauses the broadcast, and
"retry failed only" makes a new broadcast of them; a template paused for its block rate
pauses the broadcast; the portfolio's messaging limit is never passed (no 131048)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from hub.broadcasts import lifecycle, results
from hub.broadcasts.pump import BroadcastPump
from hub.platform.db import utcnow
from hub.models import Broadcast, BroadcastRecipient, Event
from tests.support.wa_emulator import wired, worker
from tests.broadcasts.test_e2e import csv_of, make_broadcast, run, setup, template_sends

pytestmark = pytest.mark.slow


def test_131049_failures_pause_the_broadcast_and_retry_failed_makes_a_new_one(runtime, client):
    data, phones = csv_of(80, 0, seed=11)
    with wired(runtime, client, utcnow) as w:
        emu = w["emu"]
        emu.campaigns.marketing_cap = 0  # Meta holds back every marketing message
        setup(runtime, client, w, mps=10)
        broadcast_id = make_broadcast(runtime, w["channel_id"], data, failure_threshold=0.5, failure_window=10)
        run(runtime, w, broadcast_id, until=("paused",))
        with runtime.db.scope() as s:
            b = s.get(Broadcast, broadcast_id)
            assert b.paused_by == "failures" and "of the last 10 messages failed" in b.paused_reason
            failed = list(results.rows(s, b, status="failed"))
            assert failed and all(r["error_code"] == 131049 for r in failed)
            assert "marketing" in failed[0]["error"]
            assert results.counts(s, broadcast_id)["pending"] > 0, "it stopped before the end"
            events = [e.data for e in s.scalars(select(Event).where(Event.type == "broadcast.recipient"))]
            assert {e["recipient"]["error"]["code"] for e in events} == {131049}
            retry = lifecycle.retry_failed(s, b, now=utcnow())
            assert retry.retry_of_id == broadcast_id
            assert s.scalar(select(func.count()).select_from(BroadcastRecipient).where(
                BroadcastRecipient.broadcast_id == retry.id)) == len(failed)
        # Failures wait for a person: the pump does not resume it by itself.
        BroadcastPump(runtime, step_seconds=0).run_once()
        assert run_status(runtime, broadcast_id) == "paused"


def run_status(runtime, broadcast_id):
    with runtime.db.scope() as s:
        return s.get(Broadcast, broadcast_id).status


def test_a_template_paused_for_its_block_rate_pauses_the_broadcast(runtime, client):
    data, phones = csv_of(200, 0, seed=13)
    with wired(runtime, client, utcnow) as w:
        emu = w["emu"]
        emu.campaigns.block_rate = (0.2, 20)
        emu.campaigns.blockers = {p[1:] for p in phones[:40]}  # the first 40 all block
        setup(runtime, client, w, mps=10)
        broadcast_id = make_broadcast(runtime, w["channel_id"], data)
        run(runtime, w, broadcast_id, until=("paused",))
        with runtime.db.scope() as s:
            b = s.get(Broadcast, broadcast_id)
            assert b.paused_by == "template" and "PAUSED" in b.paused_reason
        sent = len(template_sends(emu))
        assert 20 <= sent < 200
        # The number's quality dropped one step (GREEN -> YELLOW: Meta sends a webhook only
        # for a drop to RED, FLAGGED, which pauses broadcasts by itself).
        assert w["number"].quality_rating == "YELLOW"
        worker(runtime).drain()
        assert len(template_sends(emu)) == sent, "nothing more goes out on a paused template"


def test_the_portfolio_messaging_limit_is_never_passed(runtime, client):
    data, phones = csv_of(300, 0, seed=17)
    with wired(runtime, client, utcnow) as w:
        emu, number = w["emu"], w["number"]
        emu.campaigns.enforce_messaging_limit = True
        number.messaging_limit = "TIER_250"
        setup(runtime, client, w, mps=50, tier="TIER_250")
        broadcast_id = make_broadcast(runtime, w["channel_id"], data)
        pump, work = BroadcastPump(runtime, step_seconds=0), worker(runtime)
        # Messages are due at the number's pace: go round until nothing waits but what the
        # limit holds back (or 30 s), then a few rounds more to see nothing else goes.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pump.run_once()
            work.drain()
            emu.flush()
            with runtime.db.scope() as s:
                counts = results.counts(s, broadcast_id)
            if counts["queued"] == 0 and counts["pending"] <= 50:
                break
            time.sleep(0.05)
        for _ in range(3):
            pump.run_once()
            work.drain()
            emu.flush()
        sent = template_sends(emu)
        assert len(sent) == len(set(sent)) == 250
        assert not [m for m in emu.sent if m.error_code == 131048]
        with runtime.db.scope() as s:
            counts = results.counts(s, broadcast_id)
            assert counts["pending"] == 50 and counts["failed"] == 0
            assert s.get(Broadcast, broadcast_id).status == "sending", "the rest waits for room"
            verdict_room = __import__("hub.broadcasts.limits", fromlist=["room"]).room(s, now=utcnow())
            assert verdict_room.used == 250 and verdict_room.left == 0
        with runtime.db.scope() as s:
            lifecycle.cancel(s, broadcast_id, now=utcnow())
            assert results.counts(s, broadcast_id)["skipped"] == 50
