"""Bitrix24 deal updates -> ReportDealStage by stage semantics (S won, F lost), once per entry."""
from __future__ import annotations

from datetime import datetime, timezone

from connectors.base import ReportDealStage
from tests.connectors.bitrix24.conftest import webhook_settings
from tests.connectors.bitrix24.test_webhooks import connector, docs_portal, fixture_request, seed_deal  # noqa: F401


def test_deal_won_is_reported_with_opportunity_and_currency(runtime, docs_portal):  # noqa: F811
    seed_deal(docs_portal)
    docs_portal.portal.move("deal", 759, "C1:WON", OPPORTUNITY="22500.00", CURRENCY_ID="EUR")
    b24 = connector(runtime, webhook_settings(docs_portal, report_deal_stages=True, deal_category_id=1))
    commands = b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))
    moved = docs_portal.portal.deals[759]["MOVED_TIME"]
    assert commands == [ReportDealStage(
        deal_id="759", stage="C1:WON", outcome="won", conversation_id=5007, pipeline="1", amount="22500.00",
        currency="EUR", idempotency_key=f"bitrix24-stage:759:C1:WON:{moved}")]
    # every later edit repeats the same report: the hub carries its key out once
    assert b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json")) == commands


def test_failure_semantics_is_lost_and_others_are_open(runtime, docs_portal):  # noqa: F811
    seed_deal(docs_portal)
    b24 = connector(runtime, webhook_settings(docs_portal, report_deal_stages=True, deal_category_id=1))
    outcomes = []
    for stage in ("C1:EXECUTING", "C1:LOSE"):
        docs_portal.now[0] += 5
        docs_portal.portal.move("deal", 759, stage)
        commands = b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json"))
        outcomes += [(c.stage, c.outcome) for c in commands]
    assert outcomes == [("C1:EXECUTING", "open"), ("C1:LOSE", "lost")]


def test_deals_not_of_the_hub_are_skipped(runtime, docs_portal):  # noqa: F811
    seed_deal(docs_portal, conversation="")
    docs_portal.portal.move("deal", 759, "C1:WON")
    b24 = connector(runtime, webhook_settings(docs_portal, report_deal_stages=True, deal_category_id=1))
    assert b24.handle_webhook(fixture_request("ONCRMDEALUPDATE__documented.json")) == []


def test_reports_are_off_by_default(runtime, docs_portal):  # noqa: F811
    seed_deal(docs_portal)
    docs_portal.portal.move("deal", 759, "C1:WON")
    assert connector(runtime, webhook_settings(docs_portal, deal_category_id=1)).handle_webhook(
        fixture_request("ONCRMDEALUPDATE__documented.json")) == []


def test_pull_reports_deals_that_moved_since(runtime, docs_portal):  # noqa: F811
    seed_deal(docs_portal)
    docs_portal.portal.move("deal", 759, "C1:WON", OPPORTUNITY="100")
    b24 = connector(runtime, webhook_settings(docs_portal, report_deal_stages=True, deal_category_id=1))
    commands = b24.pull(datetime.fromtimestamp(docs_portal.now[0] - 60, timezone.utc))
    assert [(c.deal_id, c.outcome, c.amount) for c in commands] == [("759", "won", "100")]
