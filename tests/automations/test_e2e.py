"""Lead qualification end to end through the WhatsApp emulator (both databases): 30
customers answer correctly, wrongly (re-asked) or not at all (one reminder, then the
hand-off); every hand-off reaches the routing queue, the answers go to the deal."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.automations import examples, store
from hub.automations.runtime import Runner
from hub.db import utcnow
from hub.models import Event, QueueEntry, Run, Team
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired, worker

REMINDER = "Are you still there? What is your name?"


def texts(emu, wa_id):
    out = []
    for m in emu.sent_to(wa_id):
        body = m.body.get(m.type) or {}
        out.append(body.get("body") if m.type == "text" else (body.get("body") or {}).get("text"))
    return out


def test_lead_qualification_with_thirty_customers(runtime, client):
    clock = FakeClock(utcnow() + timedelta(seconds=5))
    with runtime.db.scope() as session:
        team = Team(name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={})
        session.add(team)
        session.flush()
        team_id = team.id
        document = examples.load("lead_qualification")["scenario"]
        for step in document["steps"]:
            if step["type"] == "handoff":
                step["team_id"] = team_id
        scenario = store.create(session, document, now=clock())
        store.publish(session, scenario, now=clock() - timedelta(seconds=60))
    runner, sender = Runner(runtime, clock=clock), worker(runtime, clock)

    with wired(runtime, client, utcnow) as w:
        emu, number = w["emu"], w["number"]

        def settle(seconds=2):
            """Webhooks in, the automations' round, the bot's messages out, their statuses in."""
            for _ in range(10):
                emu.flush()
                clock.advance(seconds)
                moved = runner.run_once() + sender.drain()
                emu.flush()
                if not moved:
                    return

        people = {kind: [emu.customer(number, f"4915{ord(kind[0]):03d}{i:05d}", name=f"{kind} {i}")
                         for i in range(10)] for kind in ("right", "wrong", "silent")}
        everyone = [c for group in people.values() for c in group]
        for c in everyone:
            c.send_text("Hello, I saw your ad")
        settle()
        for c in everyone:
            assert texts(emu, c.wa_id) == ["Hello! Three quick questions and a manager will be with you.",
                                           "What is your name?"]
        for i, c in enumerate(people["right"] + people["wrong"]):
            c.send_text(f"Anna {i}")
        settle()
        for c in people["right"]:
            c.reply_button(emu.sent_to(c.wa_id)[-1].id, "buy", "Buy")
        for c in people["wrong"]:
            c.send_text("a banana")  # not a choice: asked again
        settle()
        for c in people["wrong"]:
            c.send_text("аренда")  # a synonym of Rent, typed
        settle()
        for c in people["right"]:
            c.send_text("50 000")
        for c in people["wrong"]:
            c.send_text("lots of money")
        settle()
        for c in people["wrong"]:
            c.send_text("70000")
        settle()
        clock.advance(3600)  # the silent ones: one reminder after an hour ...
        settle()
        clock.advance(3600)
        settle()
        clock.advance(82800)  # ... then the hand-off without answers
        settle()

        for c in people["right"]:
            assert texts(emu, c.wa_id)[-1].startswith("Thank you, Anna")
        for c in people["wrong"]:
            sent = texts(emu, c.wa_id)
            assert "Please press one of the buttons.\nNice to meet you, Anna" in "\n".join(sent)
            assert "Sorry, I need a number, for example 50000.\nWhat budget do you have in mind (a number)?" in sent
        for c in people["silent"]:
            assert texts(emu, c.wa_id).count(REMINDER) == 1, "reminded once"
            assert len(texts(emu, c.wa_id)) == 3

    with runtime.db.scope() as session:
        runs = list(session.scalars(select(Run)))
        assert len(runs) == 30 and {r.status for r in runs} == {"handed_off"}
        queued = list(session.scalars(select(QueueEntry)))
        assert len(queued) == 30 and {q.team_id for q in queued} == {team_id}
        deals = {}
        for e in session.scalars(select(Event).where(Event.type == "automation.step")):
            deals.setdefault(e.data["conversation"]["id"], {}).update(
                e.data.get("fields") or {"stage": e.data.get("stage")})
        answered = sorted(deals.values(), key=lambda d: d["name"])
        assert len(answered) == 20
        assert all(d["stage"] == "Qualified" for d in answered)
        assert sorted((d["need"], d["budget"]) for d in answered) == [("buy", 50000)] * 10 + [("rent", 70000)] * 10
