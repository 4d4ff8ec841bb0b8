"""automation.step on Bitrix24: a scenario's answers become one timeline comment on the
conversation's deal (a resend adds nothing), a stage move sets the deal's STAGE_ID, also
for a deal created in the same wave; a stage named (any case, optionally in a pipeline
by name) is looked up in crm.status.list / crm.category.list; a stage the portal lacks
is skipped and the delivery says which. Field mapping: tests/fixtures/bitrix24/automation_stage_*.json."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from connectors.base import HubEvent
from connectors.bitrix24 import stages
from connectors.bitrix24.errors import Transient
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

    (skipped,) = b24.deliver([step_event(1, 3, "deal_stage", stage="Qualified", pipeline=None)])
    assert skipped.status == "done" and skipped.response == {"skipped": "stage 'Qualified' is not in Bitrix24"}
    (refused,) = b24.deliver([step_event(1, 4, "deal_stage", stage="QUALIFIED", pipeline=None)])  # an id: as is
    assert refused.status == "dead" and "STAGE_ID" in refused.error


def test_stage_moves_by_name(runtime, portal):
    stages.forget()
    b24 = make(runtime, webhook_settings(portal))
    assert b24.deliver([hub_event("conversation.started", 1)])[0].status == "done"
    (deal,) = portal.portal.deals.values()
    moves = [step_event(1, 10, "deal_stage", stage="preparing DOCUMENTS", pipeline=None),
             step_event(1, 11, "deal_stage", stage="Nowhere", pipeline=None),
             step_event(1, 12, "deal_stage", stage="deal won", pipeline="general")]
    outcomes = b24.deliver(moves)
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    assert outcomes[1].response == {"skipped": "stage 'Nowhere' is not in Bitrix24"}
    assert deal["STAGE_ID"] == "WON"

    wholesale = make(runtime, webhook_settings(portal, deal_category_id=1))  # its deals in pipeline 1
    assert wholesale.deliver([hub_event("conversation.started", 2)])[0].status == "done"
    (other,) = [d for d in portal.portal.deals.values() if d is not deal]
    (moved,) = wholesale.deliver([step_event(2, 13, "deal_stage", stage="shipping", pipeline="Wholesale")])
    assert moved.status == "done" and other["STAGE_ID"] == "C1:EXECUTING"
    (moved,) = wholesale.deliver([step_event(2, 14, "deal_stage", stage="Shipped", pipeline=None)])  # its own first
    assert moved.status == "done" and other["STAGE_ID"] == "C1:WON"
    (missing,) = wholesale.deliver([step_event(2, 15, "deal_stage", stage="Shipping", pipeline="Retail")])
    assert missing.status == "done" and missing.response["skipped"] == \
        "pipeline 'Retail' is not in Bitrix24 (there are: General, Wholesale)"
    assert other["STAGE_ID"] == "C1:WON" and deal["STAGE_ID"] == "WON"


def test_stage_lists_kept_ten_minutes_and_read_again_on_a_miss():
    stages.forget()
    now = [datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)]
    lists = {"DEAL_STAGE": [{"STATUS_ID": "NEW", "NAME": "New"}]}
    calls = []

    def call(method, params):
        calls.append((method, params["filter"]["ENTITY_ID"]))
        return list(lists[params["filter"]["ENTITY_ID"]])

    looked = stages.Stages("https://p.example", call, lambda: now[0], target="deal", category_id=0)
    assert looked.stage_id("new", "") == ("NEW", "") and len(calls) == 1
    now[0] += timedelta(minutes=9)
    assert looked.stage_id("NEW ", "") == ("NEW", "") and len(calls) == 1  # kept
    lists["DEAL_STAGE"].append({"STATUS_ID": "UC_1", "NAME": "Qualified"})
    assert looked.stage_id("Qualified", "") == ("UC_1", "") and len(calls) == 2  # a miss reads again
    assert looked.stage_id("Unknown", "") == (None, "stage 'Unknown' is not in Bitrix24") and len(calls) == 2
    now[0] += timedelta(minutes=2)
    assert looked.stage_id("Unknown", "")[0] is None and len(calls) == 3  # older than a minute: read again
    now[0] += timedelta(minutes=11)
    assert looked.stage_id("New", "") == ("NEW", "") and len(calls) == 4  # ten minutes passed
    assert looked.stage_id("C2:WON", "") == ("C2:WON", "") and len(calls) == 4  # an id: no request


def test_a_failed_lookup_retries_the_whole_batch(runtime, portal):
    stages.forget()
    b24 = make(runtime, webhook_settings(portal))
    real = b24.client.list_all

    def refused_once(method, params):
        b24.client.list_all = real
        raise Transient("INTERNAL_SERVER_ERROR", "Internal server error", status=500)

    b24.client.list_all = refused_once
    batch = [hub_event("conversation.started", 3), step_event(3, 1, "deal_stage", stage="Invoice", pipeline=None)]
    outcomes = b24.deliver(batch)
    assert [o.status for o in outcomes] == ["retry", "retry"]
    assert all(o.error.startswith("reading the pipelines and stages for a stage move: ") for o in outcomes)
    assert not portal.portal.deals
    assert [o.status for o in b24.deliver(batch)] == ["done", "done"]
    (deal,) = portal.portal.deals.values()
    assert deal["STAGE_ID"] == "PREPAYMENT_INVOICE"
