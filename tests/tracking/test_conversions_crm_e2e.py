"""Conversions end to end from Bitrix24 and HubSpot (amoCRM: test_conversions_e2e.py):
tracked visits and a Click-to-WhatsApp ad -> WhatsApp conversations -> deals the
connector made in the CRM emulator -> the CRM moves them won and lost -> its event
through the hub's own connector URL -> one conversion per (deal, goal) in the GA4, Meta,
Metrica and Roistat emulators with the visitors' ids and the deals' values; the same
events again change nothing."""
from __future__ import annotations

import contextlib

from sqlalchemy import select

from connectors.bitrix24 import emulator as b24_emulator
from connectors.hubspot import benchkit as hubspot_kit
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Contact, Conversation, Delivery
from tests.support.clock import FakeClock
from tests.support.destinations import analytics_destinations
from tests.support.receiver import Receiver
from tests.support.tracking import prefilled
from tests.support.wa_emulator import wired

GA = {"ana": ("GA1.2.1111111111.1700000000", "1111111111.1700000000"),
      "carl": ("GA1.2.3333333333.1700000300", "3333333333.1700000300")}
YM = {"ana": "1700000000111111111", "carl": "1700000300333333333"}
ROISTAT_ANA, CLID_BEN = "4336465", "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0"
PEOPLE = {"ana": "4915111111111", "ben": "4915122222222", "carl": "4915133333333"}


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
def three_customers(client, runtime, admin_headers, crm):
    """`crm()` adds the CRM connector, then Ana (with a Roistat visit) and Carl write
    through a tracked link and Ben from a Click-to-WhatsApp ad; yields (the destination
    emulators, {name: conversation id}, what crm() returned)."""
    with contextlib.ExitStack() as stack:
        dest = stack.enter_context(analytics_destinations(runtime))
        w = stack.enter_context(wired(runtime, client, FakeClock(utcnow())))
        added = crm()
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "sofas", "channel_id": w["channel_id"], "text_template": "Hello! My request number: {code}"}).json
        conversations = {}
        for name, wa_id in PEOPLE.items():
            customer = w["emu"].customer(w["number"], wa_id, name=name.title())
            if name == "ben":
                customer.send_from_ad("Is the sofa in stock?", ctwa_clid=CLID_BEN)
            else:
                client.set_cookie("_ga", GA[name][0])
                client.set_cookie("_ym_uid", YM[name])
                if name == "ana":
                    client.set_cookie("roistat_visit", ROISTAT_ANA)
                else:
                    client.delete_cookie("roistat_visit")
                customer.send_text(prefilled(client.get(f"/l/{link['slug']}")))
            w["emu"].flush()
            with runtime.db.scope() as session:
                conversations[name] = session.scalar(select(Conversation.id).join(
                    Contact, Contact.id == Conversation.contact_id).where(Contact.wa_id == wa_id))
        yield dest, conversations, added


def outcomes(dest):
    """What each destination holds, in a form to compare."""
    return {
        "ga4": sorted((e["client_id"], e["event"]["name"], e["event"]["params"].get("value"))
                      for e in dest["ga"].events()),
        "meta": sorted((e["event_name"], e["user_data"]["ctwa_clid"], (e.get("custom_data") or {}).get("value"))
                       for e in dest["meta"].received()),
        "metrica": sorted((r["ClientId"], r.get("Target") or r["ChatPlatform"], r.get("Price", ""))
                          for r in dest["ym"].rows()),
        "roistat": [(o["status"], o.get("price"), o["roistat"]) for o in dest["rs"].history],
    }


def expected(carl_lost_price: str) -> dict[str, list]:
    """Carl's deal is lost with the amount the CRM gives (Bitrix24 0, HubSpot none)."""
    return {**BOTH_CRMS, "metrica": [(YM["ana"], "deal_won", "22500.00"), (YM["ana"], "whatsapp", ""),
                                    (YM["carl"], "deal_lost", carl_lost_price), (YM["carl"], "whatsapp", "")]}


BOTH_CRMS = {
    "ga4": [(GA["ana"][1], "close_convert_lead", 22500.0), (GA["ana"][1], "generate_lead", None),
            (GA["carl"][1], "close_unconvert_lead", 0.0), (GA["carl"][1], "generate_lead", None)],
    "meta": [("LeadSubmitted", CLID_BEN, None), ("Purchase", CLID_BEN, 990.0)],
    "roistat": [("new", None, ROISTAT_ANA), ("paid", "22500.00", ROISTAT_ANA)],
}


def no_delivery_left(runtime):
    with runtime.db.scope() as session:
        return session.scalars(select(Delivery.status).where(Delivery.status != "done")).all() == []


def test_bitrix24_deals_won_and_lost_by_stage_semantics(client, runtime, admin_headers):
    with contextlib.ExitStack() as stack:
        portal = stack.enter_context(b24_emulator.serve())
        dest, conv, (_, key) = stack.enter_context(three_customers(
            client, runtime, admin_headers, lambda: add(runtime, "bitrix24", "b24", {
                "portal_url": portal.base_url, "auth_mode": "webhook", "webhook_url": portal.webhook_url,
                "application_token": portal.portal.application_token, "report_deal_stages": True})))
        drain(runtime)  # the connector makes a deal per conversation
        p = portal.portal
        deal_of = {cid: eid for eid, row in p.deals.items() for cid in conv.values() if row["ORIGIN_ID"] == str(cid)}
        p.add_outbound_webhook("ONCRMDEALUPDATE", f"http://hub.test/webhooks/connectors/{key}")
        p.move("deal", deal_of[conv["ana"]], "WON", OPPORTUNITY="22500.00", CURRENCY_ID="RUB")
        p.move("deal", deal_of[conv["ben"]], "WON", OPPORTUNITY="990.00", CURRENCY_ID="RUB")
        p.move("deal", deal_of[conv["carl"]], "LOSE")
        with p.lock:
            events = [p.event_form(item) for item in p.outbox]
        for _ in range(2):  # ONCRMDEALUPDATE fires again on every later edit
            for form in events:
                assert client.post(f"/webhooks/connectors/{key}", data=form).status_code == 200
            drain(runtime)
            assert outcomes(dest) == expected(carl_lost_price="0.00")
        assert no_delivery_left(runtime)


def test_hubspot_deals_won_and_lost_by_hs_is_closed_won(client, runtime, admin_headers):
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(hubspot_kit.start_emulator(per_10_seconds=250))
        hub = stack.enter_context(Receiver())
        settings = {**hubspot_kit.connector_settings(emu.base_url), "rate_limit_per_10s": 250,
                    "report_deal_stages": True, "webhook_url": hub.url + "/hubspot"}
        dest, conv, (_, key) = stack.enter_context(three_customers(
            client, runtime, admin_headers, lambda: add(runtime, "hubspot", "hubspot", settings)))
        drain(runtime)
        with runtime.db.scope() as session:
            id_property = session.scalar(select(ConnectorRecord.settings).where(ConnectorRecord.kind == "hubspot"))[
                "deal_id_property"]
        deal_of = {str(d["properties"].get(id_property)): d["id"] for d in emu.records("deals")}
        emu.subscribe(hub.url + "/hubspot")
        emu.move_deal(deal_of[str(conv["ana"])], "closedwon", amount="22500", deal_currency_code="RUB")
        emu.move_deal(deal_of[str(conv["ben"])], "closedwon", amount="990", deal_currency_code="RUB")
        emu.move_deal(deal_of[str(conv["carl"])], "closedlost")
        assert emu.deliver_webhooks() == [200]
        [delivered] = hub.requests
        for _ in range(2):  # HubSpot retries what it thinks failed
            answer = client.post(f"/webhooks/connectors/{key}", data=delivered.body, headers={
                k: v for k, v in delivered.headers.items() if k.lower().startswith("x-hubspot") or k == "Content-Type"})
            assert answer.status_code == 200, answer.get_data(as_text=True)
            drain(runtime)
            assert outcomes(dest) == expected(carl_lost_price="")
        assert no_delivery_left(runtime)
