"""automation.step on Bitrix24: a scenario's answers become one timeline comment on the
conversation's deal (a resend adds nothing), a stage move sets the deal's STAGE_ID, also
for a deal created in the same wave; a stage the portal lacks is refused by Bitrix24
and the delivery says so. Field mapping: tests/fixtures/bitrix24/automation_stage_*.json."""
from __future__ import annotations

from dataclasses import replace

from connectors.base import HubEvent
from tests.connectors.bitrix24.conftest import webhook_settings
from tests.connectors.bitrix24.factory import T0, contact, conversation, hub_event
from tests.connectors.bitrix24.test_connector import make


def step_event(i: int, n: int, action: str, **detail) -> HubEvent:
    data = {"conversation": conversation(i), "contact": contact(i), "scenario": {"id": 3, "name": "Lead qualification"},
            "run_id": 9, "step": "budget", "action": action, **detail}
    return HubEvent(id=f"evt-a-{i}-{n}", type="automation.step", version=1, occurred_at=T0, data=data,
                    ordering_key=f"conversation:{5000 + i}")


def test_answers_comment_and_stage_moves(runtime, portal):
    b24 = make(runtime, webhook_settings(portal))
    assert b24.deliver([hub_event("conversation.started", 1)])[0].status == "done"
    answers = step_event(1, 1, "deal_fields", fields={"name": "Anna", "budget": 50000})
    assert [o.status for o in b24.deliver([answers])] == ["done"]
    assert [o.status for o in b24.deliver([replace(answers, attempt=2)])] == ["done"]  # a resend
    assert [o.status for o in b24.deliver([step_event(1, 2, "deal_stage", stage="PREPARATION", pipeline=None)])] \
        == ["done"]
    (deal,) = portal.portal.deals.values()
    assert deal["STAGE_ID"] == "PREPARATION"
    (comment,) = [c["COMMENT"] for c in portal.portal.comments.values()]
    assert comment.endswith("Answers to «Lead qualification»:\nbudget: 50000\nname: Anna")

    # a conversation whose deal is created by the stage move's own wave
    assert [o.status for o in b24.deliver([step_event(2, 1, "deal_stage", stage="EXECUTING", pipeline=None)])] \
        == ["done"]
    assert sorted(d["STAGE_ID"] for d in portal.portal.deals.values()) == ["EXECUTING", "PREPARATION"]

    (refused,) = b24.deliver([step_event(1, 3, "deal_stage", stage="Qualified", pipeline=None)])
    assert refused.status == "dead" and "STAGE_ID" in refused.error
