"""Scheduled pulls from Bitrix24: deals that moved into a rule's stage while the hub
missed the event (Bitrix24 does not repeat it) still send their template, once, whether
the event arrives late as well or not."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectors.base import SendTemplate
from hub.crm.pull import ConnectorPuller, request_pulls
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.models import ConnectorRecord
from tests.connectors.bitrix24.conftest import webhook_settings
from tests.connectors.bitrix24.test_webhooks import connector, request_from

RULE = "WON -> thanks | contact.NAME"


def moved_deal(portal, stage="WON", conversation="77") -> int:
    p = portal.portal
    cid = p.contact_add({"fields": {"NAME": "Ana", "PHONE": [{"VALUE": "+15557654321"}]}}).result
    deal = p._entity_add("deal", {"fields": {"TITLE": "T", "CONTACT_ID": cid, "ORIGINATOR_ID": "whatsapp-hub",
                                             "ORIGIN_ID": conversation}}).result
    p.move("deal", deal, stage)
    return deal


def test_a_missed_stage_change_is_pulled_once_and_its_late_event_changes_nothing(runtime, portal):
    b24 = connector(runtime, webhook_settings(portal, stage_rules=RULE))
    since = utcnow() - timedelta(minutes=1)
    deal = moved_deal(portal)
    moved_deal(portal, stage="PREPARATION")  # no rule for that stage
    assert b24.pull(since) == [SendTemplate(template="thanks", language="en", variables=["Ana"], conversation_id=77,
                                            phone="+15557654321", reason=f"Bitrix24 deal {deal} entered stage WON")]
    assert b24.pull(since) == []  # the overlap of the next pull
    portal.portal.dispatch_events()
    late = ("event=ONCRMDEALUPDATE&data%5BFIELDS%5D%5BID%5D=" + str(deal)
            + "&auth%5Bapplication_token%5D=" + portal.portal.application_token)
    assert b24.handle_webhook(request_from(late)) == []


def test_changes_before_the_pull_window_are_left_alone(runtime, portal):
    moved_deal(portal)
    b24 = connector(runtime, webhook_settings(portal, stage_rules=RULE))
    assert b24.pull(utcnow() + timedelta(minutes=1)) == []


def test_without_stage_rules_a_pull_asks_bitrix24_nothing(runtime, portal):
    moved_deal(portal)
    before = portal.portal.stats["requests"]
    assert connector(runtime, webhook_settings(portal)).pull(utcnow() - timedelta(hours=1)) == []
    assert portal.portal.stats["requests"] == before


def _record(runtime, portal, **settings) -> int:
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind="bitrix24", name="b24 pulls", now=utcnow(),
                                settings=webhook_settings(portal, **settings)).id


def _state(runtime, connector_id):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        return record.pull_requested_at, record.pulled_until, record.updated_at


def test_the_scheduler_asks_and_a_worker_pulls_and_moves_on(runtime, portal):
    connector_id = _record(runtime, portal, stage_rules=RULE)
    _, _, updated_before = _state(runtime, connector_id)
    moved_deal(portal)
    now = utcnow()
    assert request_pulls(runtime, now) == 1
    assert request_pulls(runtime, now) == 0  # already asked
    requested, until, updated = _state(runtime, connector_id)
    assert requested == now and until is None and updated == updated_before  # not a configuration change
    puller = ConnectorPuller(runtime)
    assert puller.run_once() == 1
    requested, until, _ = _state(runtime, connector_id)
    assert requested is None and until is not None
    with runtime.db.scope() as session:
        from hub.models import CrmLink

        fired = list(session.scalars(select(CrmLink.entity_id).where(
            CrmLink.connector_id == connector_id, CrmLink.entity_type == "bitrix24.stage_rule")))
        done = list(session.scalars(select(CrmLink.entity_type).where(CrmLink.connector_id == connector_id)))
    assert len(fired) == 1, done
    assert puller.run_once() == 0  # nothing asked
    request_pulls(runtime, utcnow())
    assert puller.run_once() == 1
    with runtime.db.scope() as session:
        from hub.models import CrmLink

        assert len(list(session.scalars(select(CrmLink.entity_id).where(
            CrmLink.entity_type == "bitrix24.stage_rule")))) == 1  # the same entry fires once


def test_a_pull_that_fails_starts_again_from_the_same_point(runtime, portal):
    connector_id = _record(runtime, portal, stage_rules=RULE)
    request_pulls(runtime, utcnow())
    assert ConnectorPuller(runtime).run_once() == 1
    _, first_until, _ = _state(runtime, connector_id)
    portal.portal.chaos.fail_next.append((400, "ACCESS_DENIED"))  # e.g. the plan lost REST access
    request_pulls(runtime, utcnow())
    assert ConnectorPuller(runtime).run_once() == 1
    _, until, _ = _state(runtime, connector_id)
    assert until == first_until
