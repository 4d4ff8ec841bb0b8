"""automation.step on amoCRM: a scenario's answers become a note on the conversation's
deal; a stage given as an amoCRM status id moves it, a stage (and pipeline) given by
name is looked up in the account's pipelines, read once and kept; a name amoCRM does
not have is skipped saying so. The lookup itself: tests/fixtures/amocrm/stage_lookup_by_name.json."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.amocrm import pipelines
from hub.models import Delivery
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import add_connector, dead_errors, drain, long_lived_settings

SALES, SUPPORT = 7_000_001, 7_000_002


@pytest.fixture(autouse=True)
def _fresh_pipelines():
    pipelines.forget()  # emulator addresses repeat across tests
    yield
    pipelines.forget()


def step(n: int, action: str, **detail) -> dict:
    return {"conversation": ev.conversation(n), "contact": ev.contact(n),
            "scenario": {"id": 3, "name": "Lead qualification"}, "run_id": 9, "step": "budget", "action": action,
            **detail}


def test_answers_as_a_note_and_the_stage_by_id_or_name(runtime, amo):
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
    assert any("no stage 'Qualified' in any amoCRM pipeline" in str(r) for r in skipped)


def test_stages_by_name_read_the_pipelines_once(runtime, amo):
    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        for n in (1, 2, 3):
            ev.emit_conversation(session, n, messages=0)
        ev.emit_event(session, "automation.step", step(1, "deal_stage", stage="Invoice sent", pipeline=None))
        ev.emit_event(session, "automation.step", step(2, "deal_stage", stage="in progress", pipeline="Support"))
    assert set(drain(runtime)) == {"done"}, dead_errors(runtime)
    with runtime.db.scope() as session:
        ev.emit_event(session, "automation.step", step(3, "deal_stage", stage="Shipped", pipeline=None))
    assert set(drain(runtime)) == {"done"}, dead_errors(runtime)
    moved = sorted((lead["status_id"], lead["pipeline_id"]) for lead in amo.store.leads.values())
    assert moved == [(7_000_013, SALES), (7_000_014, SALES), (7_000_022, SUPPORT)]
    assert amo.emulator.stats["GET /api/v4/leads/pipelines"] == 1
