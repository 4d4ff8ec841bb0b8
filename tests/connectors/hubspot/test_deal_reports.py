"""HubSpot dealstage changes -> ReportDealStage by hs_is_closed_won / hs_is_closed."""
from __future__ import annotations

import json

from connectors.base import ReportDealStage
from hub.crm.worker import Worker
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import contact, conversation, emit_event
from tests.connectors.hubspot.test_connector import instance
from tests.connectors.hubspot.test_webhooks import signed, stage_event


def synced(runtime, emu, **settings):
    connector_id = make_connector(runtime, emu, **settings)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(21), "contact": contact(21)}, 21)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    return instance(runtime, connector_id), emu.records("deals")[0]["id"]


def test_closed_won_is_reported_with_amount_and_currency(runtime, emu):
    connector, deal_id = synced(runtime, emu, report_deal_stages=True)
    emu.move_deal(deal_id, "closedwon", amount="1200.50", deal_currency_code="EUR")
    body = json.dumps([stage_event(deal_id, "closedwon", 1795608000000)]).encode()
    assert connector.handle_webhook(signed(body)) == [ReportDealStage(
        deal_id=deal_id, stage="closedwon", outcome="won", conversation_id=21, pipeline="default",
        amount="1200.50", currency="EUR", idempotency_key=f"hubspot-stage:{deal_id}:closedwon:1795608000000")]


def test_closed_not_won_is_lost_and_open_stages_are_open(runtime, emu):
    connector, deal_id = synced(runtime, emu, report_deal_stages=True)
    outcomes = []
    for n, stage in enumerate(("qualifiedtobuy", "closedlost")):
        emu.move_deal(deal_id, stage)
        body = json.dumps([stage_event(deal_id, stage, 1795608000000 + n)]).encode()
        outcomes += [(c.stage, c.outcome) for c in connector.handle_webhook(signed(body))]
    assert outcomes == [("qualifiedtobuy", "open"), ("closedlost", "lost")]


def test_reports_are_off_by_default(runtime, emu):
    connector, deal_id = synced(runtime, emu)
    emu.move_deal(deal_id, "closedwon")
    assert connector.handle_webhook(signed(json.dumps([stage_event(deal_id, "closedwon")]).encode())) == []
