"""automation.step on amoCRM: a scenario's answers become a note on the conversation's
deal, a stage given as an amoCRM status id moves it, a stage name is skipped saying so."""
from __future__ import annotations

from sqlalchemy import select

from hub.models import Delivery
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, long_lived_settings


def step(n: int, action: str, **detail) -> dict:
    return {"conversation": ev.conversation(n), "contact": ev.contact(n),
            "scenario": {"id": 3, "name": "Lead qualification"}, "run_id": 9, "step": "budget", "action": action,
            **detail}


def test_answers_as_a_note_and_the_stage_by_status_id(runtime, amo):
    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=0)
        ev.emit_event(session, "automation.step", step(1, "deal_fields",
                                                       fields={"name": "Anna", "need": "buy", "budget": 50000}))
        ev.emit_event(session, "automation.step", step(1, "deal_stage", stage="142", pipeline=None))
        ev.emit_event(session, "automation.step", step(1, "deal_stage", stage="Qualified", pipeline=None))
    result = drain(runtime)
    assert set(result) == {"done"}, dead_errors(runtime)
    (lead,) = amo.store.leads.values()
    (note,) = amo.store.notes.values()
    assert note["entity_id"] == lead["id"]
    assert note["params"]["text"] == "Answers to «Lead qualification»:\nbudget: 50000\nname: Anna\nneed: buy"
    assert lead["status_id"] == 142
    with runtime.db.scope() as session:
        skipped = [d.last_response for d in session.scalars(select(Delivery).order_by(Delivery.id))]
    assert any("'Qualified' is not an amoCRM status id" in str(r) for r in skipped)
