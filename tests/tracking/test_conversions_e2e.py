"""Conversions end to end: tracked visits and a Click-to-WhatsApp ad -> WhatsApp
conversations (the WhatsApp emulator) -> deals in the amoCRM emulator, won and lost ->
the stage webhooks through the hub's own URL -> exactly one conversion per (deal, goal)
in the GA4, Meta, Metrica and Roistat emulators with the visitors' ids and the deals' values;
amoCRM's repeated webhooks change nothing."""
from __future__ import annotations

import contextlib
import time

from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Contact, Conversation, CrmLink, Delivery, Event
from tests.support.clock import FakeClock
from tests.support.destinations import analytics_destinations
from tests.support.receiver import Receiver
from tests.support.tracking import prefilled
from tests.support.wa_emulator import wired

GA_ANA, GA_CARL = "GA1.2.1111111111.1700000000", "GA1.2.3333333333.1700000300"
YM_ANA, YM_CARL = "1700000000111111111", "1700000300333333333"


def add(runtime, kind, name, settings):
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind=kind, name=name, settings=settings, now=utcnow()).id


def drain(runtime):
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    for _ in range(50):
        if not worker.drain():
            return


def visit(client, slug, ga, ym, roistat=None, **query):
    client.set_cookie("_ga", ga)
    client.set_cookie("_ym_uid", ym)
    if roistat:
        client.set_cookie("roistat_visit", roistat)
    else:
        client.delete_cookie("roistat_visit")
    response = client.get(f"/l/{slug}", query_string=query)
    assert response.status_code == 302
    return prefilled(response)


def test_won_and_lost_deals_reach_each_destination_once(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with contextlib.ExitStack() as stack:
        amo = stack.enter_context(amo_kit.start_emulator())
        dest = stack.enter_context(analytics_destinations(runtime))
        ga, meta, ym, rs = dest["ga"], dest["meta"], dest["ym"], dest["rs"]
        w = stack.enter_context(wired(runtime, client, clock))
        amo_id = add(runtime, "amocrm", "amo", {**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5,
                                               "report_deal_stages": True})
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "sofas", "channel_id": w["channel_id"], "campaign": "Sofas",
            "text_template": "Hello! My request number: {code}"}).json
        emu, number = w["emu"], w["number"]
        ana = emu.customer(number, "4915111111111", name="Ana")
        ben = emu.customer(number, "4915122222222", name="Ben")
        carl = emu.customer(number, "4915133333333", name="Carl")
        ana.send_text(visit(client, link["slug"], GA_ANA, YM_ANA, "4336465", utm_source="yandex",
                            utm_campaign="sofas", yclid="5151502287329470463"))
        ben.send_from_ad("Is the sofa in stock?", ctwa_clid="ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0")
        carl.send_text(visit(client, link["slug"], GA_CARL, YM_CARL, utm_source="google", utm_campaign="sofas"))
        emu.flush()
        drain(runtime)  # deals in amoCRM, leads out to the destinations

        with runtime.db.scope() as session:
            conversation_of = {wa: cid for wa, cid in session.execute(
                select(Contact.wa_id, Conversation.id).join(Conversation, Conversation.contact_id == Contact.id))}
            lead_of = {int(conv): int(lead) for lead, conv in session.execute(
                select(CrmLink.entity_id, CrmLink.crm_id).where(CrmLink.connector_id == amo_id,
                                                                 CrmLink.entity_type == "lead"))}
            key = session.get(ConnectorRecord, amo_id).webhook_key
        lead = {who: lead_of[conversation_of[wa]] for who, wa in
                (("ana", "4915111111111"), ("ben", "4915122222222"), ("carl", "4915133333333"))}
        with Receiver() as hub:
            amo.register_webhook(hub.url + "/hook", ["status_lead"])
            amo.store.update_leads([{"id": lead["ana"], "price": 1500}, {"id": lead["ben"], "price": 990}])
            amo.move_lead(lead["ana"], 142)
            amo.move_lead(lead["ben"], 142)
            amo.move_lead(lead["carl"], 143)
            amo.flush_webhooks()
            deadline = time.monotonic() + 10
            while len(hub.requests) < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            webhooks = [r.body for r in hub.requests]
        assert len(webhooks) == 3

        def post_webhooks():
            for body in webhooks:
                answer = client.post(f"/webhooks/connectors/{key}", data=body,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert answer.status_code == 200, answer.get_data(as_text=True)
            drain(runtime)

        post_webhooks()
        first = (ga.events(), meta.received(), ym.rows(), list(rs.history))
        post_webhooks()  # amoCRM repeats webhooks it thinks failed
        assert (ga.events(), meta.received(), ym.rows(), list(rs.history)) == first

        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "deal.stage_changed")) == 3
            dead = list(session.scalars(select(Delivery.last_error).where(Delivery.status == "dead")))
            unfinished = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status != "done"))
        assert dead == [] and unfinished == 0

    ana_client, carl_client = "1111111111.1700000000", "3333333333.1700000300"
    assert sorted((e["client_id"], e["event"]["name"], e["event"]["params"].get("value")) for e in ga.events()) == [
        (ana_client, "close_convert_lead", 1500.0), (ana_client, "generate_lead", None),
        (carl_client, "close_unconvert_lead", 0.0), (carl_client, "generate_lead", None)]
    assert sorted((e["event_name"], e["user_data"]["ctwa_clid"], (e.get("custom_data") or {}).get("value"))
                  for e in meta.received()) == [
        ("LeadSubmitted", "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0", None),
        ("Purchase", "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0", 990.0)]
    assert sorted((r["ClientId"], r.get("Yclid", ""), r.get("Target") or r["ChatPlatform"], r.get("Price", ""),
                   r["_type"]) for r in ym.rows()) == [
        (YM_ANA, "5151502287329470463", "deal_won", "1500.00", "BASIC"),
        (YM_ANA, "5151502287329470463", "whatsapp", "", "CHATS"),
        (YM_CARL, "", "deal_lost", "0.00", "BASIC"), (YM_CARL, "", "whatsapp", "", "CHATS")]
    ana_conversation = conversation_of["4915111111111"]
    assert [(o["id"], o["status"], o.get("price"), o["roistat"]) for o in rs.history] == [
        (f"whatsapp-{ana_conversation}", "new", None, "4336465"),
        (f"whatsapp-{ana_conversation}", "paid", "1500.00", "4336465")]
