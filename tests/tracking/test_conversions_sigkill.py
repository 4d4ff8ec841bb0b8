"""A worker SIGKILLed while a destination holds its answer leaves work behind; the next
worker sends what the destination already stored again, and each destination keeps every
won deal's conversion once: Meta deduplicates on event_id, GA4's reports on the purchase's
transaction_id, Roistat updates the order by its id, and Metrica (which keeps every upload)
is asked first whether the killed worker's upload arrived. Nothing is lost."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.ga4 import emulator as ga4_emulator
from connectors.meta_capi import emulator as meta_emulator
from connectors.metrica import emulator as metrica_emulator
from connectors.roistat import emulator as roistat_emulator
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.models import Delivery
from tests.support.killed_worker import emit_won_deals, kill_mid_send_then_finish

pytestmark = pytest.mark.slow
DEALS = 20
CRM = 2  # the fixtures' deal.stage_changed come from CRM connector 2


def add(runtime, kind, settings):
    with runtime.db.scope() as session:
        create_connector(session, runtime.vault, kind=kind, name=kind, now=utcnow(), settings=settings)


def test_sigkill_while_meta_answers_sends_each_purchase_once(runtime, database_url, tmp_path):
    with meta_emulator.serve(answer_delay=0.05) as meta:
        add(runtime, "meta_capi", {"dataset_id": "1234567890123", "access_token": meta.token,
                                   "whatsapp_business_account_id": "1100000000000001", "graph_url": meta.base_url})
        emit_won_deals(runtime, "meta_capi/purchase_on_won.json", DEALS)
        kill_mid_send_then_finish(runtime, database_url, tmp_path, arrived=lambda: len(meta.received()), total=DEALS)
        received, duplicates = meta.received("Purchase"), meta.duplicates
    assert duplicates > 0, "what the killed worker sent goes again"
    assert sorted(e["event_id"] for e in received) == sorted(f"deal-{CRM}-deal-{n}-Purchase" for n in range(DEALS))


def test_sigkill_while_ga4_answers_reports_each_purchase_once(runtime, database_url, tmp_path):
    with ga4_emulator.serve(answer_delay=0.05) as ga:
        add(runtime, "ga4", {"measurement_id": "G-HUB0000001", "api_secret": "emulator-api-secret-1",
                             "endpoint": ga.base_url, "goals": ["won -> purchase = amount"]})
        emit_won_deals(runtime, "ga4/purchase_on_won_with_transaction_id.json", DEALS)
        kill_mid_send_then_finish(runtime, database_url, tmp_path, arrived=lambda: len(ga.events()), total=DEALS)
        arrived, reported = ga.events("purchase"), ga.reported("purchase")
    assert len(arrived) > DEALS, "what the killed worker sent goes again"
    assert sorted(e["event"]["params"]["transaction_id"] for e in reported) == sorted(
        f"deal-{CRM}-deal-{n}" for n in range(DEALS))
    assert {(e["client_id"], e["event"]["params"]["value"]) for e in reported} == {("1234567890.1700000000", 22500.0)}


def test_sigkill_while_metrica_answers_uploads_each_conversion_once(runtime, database_url, tmp_path):
    with metrica_emulator.serve(answer_delay=0.05) as ym:
        add(runtime, "metrica", {"counter_id": 44147844, "oauth_token": ym.token, "api_url": ym.base_url})
        emit_won_deals(runtime, "metrica/deal_won_with_price.json", DEALS)
        kill_mid_send_then_finish(runtime, database_url, tmp_path, arrived=lambda: len(ym.rows()), total=DEALS)
        uploads = [u["comment"] for u in ym.uploads]
        rows = ym.rows("deal_won")
    with runtime.db.scope() as session:
        found = [r for r in session.scalars(select(Delivery.last_response)) if "found" in (r or {})]
    assert found, "the second worker should have found uploads of the killed one"
    assert sorted(uploads) == sorted(f"hub deal {CRM} deal {n} deal won" for n in range(DEALS))
    assert len(rows) == DEALS and {(r["ClientId"], r["Price"]) for r in rows} == {("1700000000123456789", "22500.00")}


def test_sigkill_while_roistat_answers_keeps_each_order_once(runtime, database_url, tmp_path):
    with roistat_emulator.serve(answer_delay=0.05) as rs:
        add(runtime, "roistat", {"project": rs.project, "api_key": rs.key, "api_url": rs.base_url + "/api/v1"})
        emit_won_deals(runtime, "roistat/paid_order_on_won.json", DEALS)
        kill_mid_send_then_finish(runtime, database_url, tmp_path, arrived=lambda: len(rs.history), total=DEALS)
        orders, history = dict(rs.orders), list(rs.history)
    assert len(history) > DEALS, "what the killed worker sent goes again"
    assert sorted(orders) == sorted(f"whatsapp-{100 + n}" for n in range(DEALS))
    assert {(o["status"], o["price"], o["fields"]["crm_deal_id"]) for o in orders.values()} == {
        ("paid", "22500.00", f"deal-{n}") for n in range(DEALS)}
