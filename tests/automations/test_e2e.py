"""Lead qualification end to end through the WhatsApp emulator (both databases): 30 and
100 customers answer correctly, wrongly (re-asked) or not at all (one reminder, then the
hand-off); every hand-off reaches the routing queue, the answers go to the deals in the
amoCRM emulator (a note per answer, the deal moved to the stage named)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from connectors.amocrm import benchkit, pipelines
from connectors.amocrm.emulator import serve
from hub.crm.store import create_connector
from tests.connectors.amocrm.conftest import dead_errors, drain

from hub.automations import examples, store
from hub.automations.runtime import Runner
from hub.platform.db import utcnow
from hub.crm.worker import Worker
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


@pytest.fixture
def amo():
    pipelines.forget()  # emulator addresses repeat across tests
    with serve() as served:
        yield served
    pipelines.forget()


@pytest.mark.parametrize("right, wrong, silent", [(10, 10, 10), (34, 33, 33)], ids=["30", "100"])
def test_lead_qualification(runtime, client, amo, right, wrong, silent):
    clock = FakeClock(utcnow() + timedelta(seconds=5))
    total, answering = right + wrong + silent, right + wrong
    with runtime.db.scope() as session:
        create_connector(session, runtime.vault, kind="amocrm", name="amo", now=utcnow(), settings={
            **benchkit.connector_settings(amo.base_url), "timeout_seconds": 5, "timeline_messages": "none"})
        team = Team(name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={})
        session.add(team)
        session.flush()
        team_id = team.id
        document = examples.load("lead_qualification")["scenario"]
        for step in document["steps"]:
            if step["type"] == "handoff":
                step["team_id"] = team_id
            if step["type"] == "deal_stage":
                step["stage"] = "negotiation"  # a stage of the amoCRM emulator's Sales pipeline, by name
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
                # WhatsApp only: the CRM's deliveries wait for the end, on a clock that runs
                moved = runner.run_once() + sum(source() for source in sender.sources)
                emu.flush()
                if not moved:
                    return

        people = {kind: [emu.customer(number, f"4915{ord(kind[0]):03d}{i:05d}", name=f"{kind} {i}")
                         for i in range(n)] for kind, n in (("right", right), ("wrong", wrong), ("silent", silent))}
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
        assert len(runs) == total and {r.status for r in runs} == {"handed_off"}
        queued = list(session.scalars(select(QueueEntry)))
        assert len(queued) == total and {q.team_id for q in queued} == {team_id}
        deals = {}
        for e in session.scalars(select(Event).where(Event.type == "automation.step")):
            deals.setdefault(e.data["conversation"]["id"], {}).update(
                e.data.get("fields") or {"stage": e.data.get("stage")})
        answered = sorted(deals.values(), key=lambda d: d["name"])
        assert len(answered) == answering
        assert all(d["stage"] == "negotiation" for d in answered)
        assert sorted((d["need"], d["budget"]) for d in answered) == [("buy", 50000)] * right + [("rent", 70000)] * wrong

    ahead = clock() - utcnow()
    crm = Worker(runtime.db, runtime.vault, runtime.config, clock=lambda: utcnow() + ahead)
    assert set(drain(runtime, worker=crm)) == {"done"}, dead_errors(runtime)
    leads = list(amo.store.leads.values())
    assert len(leads) == total
    notes: dict[int, list[str]] = {}
    for note in amo.store.notes.values():
        notes.setdefault(note["entity_id"], []).append(note["params"]["text"])
    assert len(notes) == answering and {len(n) for n in notes.values()} == {3}  # name, need, budget
    answers = []
    for texts_ in notes.values():
        assert all(t.startswith("Answers to «Lead qualification»:\n") for t in texts_)
        answers.append(dict(line.split(": ", 1) for t in texts_ for line in t.splitlines()[1:]))
    assert all(a["name"].startswith("Anna ") for a in answers)
    assert sorted((a["need"], a["budget"]) for a in answers) == [("buy", "50000")] * right + [("rent", "70000")] * wrong
    assert sorted(lead["status_id"] for lead in leads) == [7_000_011] * silent + [7_000_012] * answering
