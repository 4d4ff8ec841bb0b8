"""Conversions end to end from Bitrix24 and HubSpot (amoCRM: test_conversions_e2e.py):
tracked visits -> WhatsApp conversations -> deals the connector made in the CRM emulator
-> the CRM moves them won and lost -> its event through the hub's own connector URL ->
one GA4 event per (deal, goal) with the deal's value; the same events again change
nothing."""
from __future__ import annotations

import contextlib

from sqlalchemy import select

from connectors.bitrix24 import emulator as b24_emulator
from connectors.ga4 import emulator as ga4_emulator
from connectors.hubspot import benchkit as hubspot_kit
from hub.connector_store import create_connector
from hub.db import utcnow
from hub.delivery.worker import Worker
from hub.models import ConnectorRecord, Contact, Conversation, Delivery
from tests.support.clock import FakeClock
from tests.support.receiver import Receiver
from tests.support.tracking import prefilled
from tests.support.wa_emulator import wired

GA = {"ana": ("GA1.2.1111111111.1700000000", "1111111111.1700000000"),
      "carl": ("GA1.2.3333333333.1700000300", "3333333333.1700000300")}


def add(runtime, kind, name, settings):
    with runtime.db.scope() as session:
        record = create_connector(session, runtime.vault, kind=kind, name=name, settings=settings, now=utcnow())
        return record.id, record.webhook_key


def drain(runtime):
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    for _ in range(50):
        if not worker.drain():
            return


@contextlib.contextmanager
def two_tracked_customers(client, runtime, admin_headers, crm):
    """`crm()` adds the CRM connector, then Ana and Carl write through a tracked link;
    yields (ga emulator, {name: conversation id}, what crm() returned)."""
    with contextlib.ExitStack() as stack:
        ga = stack.enter_context(ga4_emulator.serve())
        w = stack.enter_context(wired(runtime, client, FakeClock(utcnow())))
        add(runtime, "ga4", "ga4", {"measurement_id": "G-HUB0000001", "api_secret": "emulator-api-secret-1",
                                    "endpoint": ga.base_url})
        added = crm()
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "sofas", "channel_id": w["channel_id"], "text_template": "Hello! My request number: {code}"}).json
        conversations = {}
        for name, wa_id in (("ana", "4915111111111"), ("carl", "4915133333333")):
            client.set_cookie("_ga", GA[name][0])
            response = client.get(f"/l/{link['slug']}")
            w["emu"].customer(w["number"], wa_id, name=name.title()).send_text(prefilled(response))
            w["emu"].flush()
            with runtime.db.scope() as session:
                conversations[name] = session.scalar(select(Conversation.id).join(
                    Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id))
        yield ga, conversations, added


def ga_outcomes(ga):
    return sorted((e["client_id"], e["event"]["name"], e["event"]["params"].get("value")) for e in ga.events())


EXPECTED = [(GA["ana"][1], "close_convert_lead", 22500.0), (GA["ana"][1], "generate_lead", None),
            (GA["carl"][1], "close_unconvert_lead", 0.0), (GA["carl"][1], "generate_lead", None)]


def no_delivery_left(runtime):
    with runtime.db.scope() as session:
        return session.scalars(select(Delivery.status).where(Delivery.status != "done")).all() == []


def test_bitrix24_deals_won_and_lost_by_stage_semantics(client, runtime, admin_headers):
    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(b24_emulator.serve())
        ga, conv, (_, key) = stack.enter_context(two_tracked_customers(
            client, runtime, admin_headers, lambda: add(runtime, "bitrix24", "b24", {
                "portal_url": portal.base_url, "auth_mode": "webhook", "webhook_url": portal.webhook_url,
                "application_token": portal.portal.application_token, "report_deal_stages": True})))
        drain(runtime)  # the connector makes a deal per conversation
        p = portal.portal
        deal_of = {cid: eid for eid, row in p.deals.items() for cid in conv.values() if row["ORIGIN_ID"] == str(cid)}
        p.add_outbound_webhook("ONCRMDEALUPDATE", f"http://hub.test/webhooks/connectors/{key}")
        p.move("deal", deal_of[conv["ana"]], "WON", OPPORTUNITY="22500.00", CURRENCY_ID="RUB")
        p.move("deal", deal_of[conv["carl"]], "LOSE")
        with p.lock:
            events = [p.event_form(item) for item in p.outbox]
        for _ in range(2):  # ONCRMDEALUPDATE fires again on every later edit
            for form in events:
                assert client.post(f"/webhooks/connectors/{key}", data=form).status_code == 200
            drain(runtime)
            assert ga_outcomes(ga) == EXPECTED
        assert no_delivery_left(runtime)


def test_hubspot_deals_won_and_lost_by_hs_is_closed_won(client, runtime, admin_headers):
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(hubspot_kit.start_emulator(per_10_seconds=250))
        hub = stack.enter_context(Receiver())
        settings = {**hubspot_kit.connector_settings(emu.base_url), "rate_limit_per_10s": 250,
                    "report_deal_stages": True, "webhook_url": hub.url + "/hubspot"}
        ga, conv, (_, key) = stack.enter_context(two_tracked_customers(
            client, runtime, admin_headers, lambda: add(runtime, "hubspot", "hubspot", settings)))
        drain(runtime)
        with runtime.db.scope() as session:
            id_property = session.scalar(select(ConnectorRecord.settings).where(ConnectorRecord.kind == "hubspot"))[
                "deal_id_property"]
        deal_of = {str(d["properties"].get(id_property)): d["id"] for d in emu.records("deals")}
        emu.subscribe(hub.url + "/hubspot")
        emu.move_deal(deal_of[str(conv["ana"])], "closedwon", amount="22500", deal_currency_code="RUB")
        emu.move_deal(deal_of[str(conv["carl"])], "closedlost")
        assert emu.deliver_webhooks() == [200]
        [delivered] = hub.requests
        for _ in range(2):  # HubSpot retries what it thinks failed
            answer = client.post(f"/webhooks/connectors/{key}", data=delivered.body, headers={
                k: v for k, v in delivered.headers.items() if k.lower().startswith("x-hubspot") or k == "Content-Type"})
            assert answer.status_code == 200, answer.get_data(as_text=True)
            drain(runtime)
            assert ga_outcomes(ga) == EXPECTED
        assert no_delivery_left(runtime)
