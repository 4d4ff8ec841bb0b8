"""amoCRM status changes -> ReportDealStage (deal.stage_changed for the analytics connectors)."""
from __future__ import annotations

from connectors.base import ReportDealStage
from tests.connectors.amocrm.conftest import add_connector, drain, instance, long_lived_settings, wait_for
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.test_webhooks import fixture_request, offline_connector, to_inbound
from tests.support.links import MemoryLinks
from tests.support.receiver import Receiver


def test_won_fixture_reports_the_deal_with_its_budget():
    connector = offline_connector(MemoryLinks({("lead", "25399013"): "734"}), report_deal_stages=True)
    assert connector.handle_webhook(fixture_request("leads_status__won")) == [ReportDealStage(
        deal_id="25399013", stage="142", outcome="won", conversation_id=734, pipeline="7000001",
        amount="22500", currency="RUB", idempotency_key="amocrm-stage:25399013:142:1539782664")]


def test_reports_are_off_by_default_and_skip_deals_of_no_conversation():
    assert offline_connector(MemoryLinks({("lead", "25399013"): "734"})).handle_webhook(
        fixture_request("leads_status__won")) == []
    assert offline_connector(MemoryLinks(), report_deal_stages=True).handle_webhook(
        fixture_request("leads_status__won")) == []


def test_emulator_moves_give_won_lost_and_open(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, report_deal_stages=True, deal_currency="EUR"))
    with Receiver() as hub:
        amo.register_webhook(hub.url + "/webhooks/connectors/key", ["status_lead"])
        with runtime.db.scope() as session:
            for n in (1, 2):
                ev.emit_conversation(session, n, messages=1)
        drain(runtime)
        connector = instance(runtime, cid)
        won, lost = sorted(amo.store.leads)
        amo.store.update_leads([{"id": won, "price": 1500}])
        amo.move_lead(won, 7000014)
        amo.move_lead(won, 142)
        amo.move_lead(lost, 143)
        amo.flush_webhooks()
        wait_for(lambda: len(hub.requests) >= 3, what="status webhooks")
        commands = [c for r in hub.requests for c in connector.handle_webhook(to_inbound(r))]
    assert [(c.deal_id, c.stage, c.outcome, c.conversation_id, c.amount, c.currency) for c in commands] == [
        (str(won), "7000014", "open", 501, "1500", "EUR"), (str(won), "142", "won", 501, "1500", "EUR"),
        (str(lost), "143", "lost", 502, "0", "EUR")]


def test_test_connection_subscribes_the_status_webhook_for_reports_alone(runtime, amo):
    from tests.connectors.amocrm.test_webhooks import _with_url

    cid = add_connector(runtime, long_lived_settings(amo, report_deal_stages=True))
    connector, url = _with_url(runtime, cid)
    result = connector.check()
    assert result.ok and "amoCRM webhook subscribed for status_lead" in result.message
    assert amo.emulator.webhooks == [{"destination": url, "settings": ["status_lead"], "disabled": False}]
