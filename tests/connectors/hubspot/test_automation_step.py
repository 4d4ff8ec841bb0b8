"""automation.step on HubSpot: a scenario's answers become one WhatsApp communication on
the conversation's deal (a resend adds nothing); a stage move by id or label sets the
deal's dealstage and pipeline; a stage HubSpot lacks is skipped
saying so. The lookup itself: tests/fixtures/hubspot/automation_stage_moves.json."""
from __future__ import annotations

from dataclasses import replace

from connectors.base import HubEvent
from hub.platform.db import utcnow
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import contact, conversation
from tests.connectors.hubspot.test_connector import instance


def step_event(n: int, k: int, action: str, **detail) -> HubEvent:
    data = {"conversation": conversation(n), "contact": contact(n), "scenario": {"id": 3, "name": "Lead qualification"},
            "run_id": 9, "step": "budget", "action": action, **detail}
    return HubEvent(f"a{n}-{k}", "automation.step", 1, utcnow(), data, f"conversation:{n}")


def test_answers_and_stage_moves_on_the_deal(runtime, emu):
    connector = instance(runtime, make_connector(runtime, emu))
    started = HubEvent("s1", "conversation.started", 1, utcnow(),
                       {"conversation": conversation(1), "contact": contact(1)}, "conversation:1")
    assert connector.deliver([started])[0].status == "done"
    answers = step_event(1, 1, "deal_fields", fields={"name": "Anna", "budget": 50000})
    assert connector.deliver([answers])[0].status == "done"
    assert connector.deliver([replace(answers, attempt=2)])[0].status == "done"  # a resend
    (body,) = [c["properties"]["hs_communication_body"] for c in emu.state.objects["communications"].values()]
    assert "Answers to «Lead qualification»:<br>budget: 50000<br>name: Anna" in body

    (deal,) = emu.state.objects["deals"].values()
    assert connector.deliver([step_event(1, 2, "deal_stage", stage="Qualified To Buy", pipeline=None)])[0].status \
        == "done"
    assert deal["properties"]["dealstage"] == "qualifiedtobuy"
    assert connector.deliver([step_event(1, 3, "deal_stage", stage="paid", pipeline="WhatsApp orders")])[0].status \
        == "done"
    assert (deal["properties"]["pipeline"], deal["properties"]["dealstage"]) == ("1023456", "1023458")
    skipped = connector.deliver([step_event(1, 4, "deal_stage", stage="Qualified", pipeline=None)])[0]
    assert skipped.status == "done" and "no stage 'Qualified'" in str(skipped.response)
    assert deal["properties"]["dealstage"] == "1023458"
