"""Refusals of the analytics destinations as the delivery log shows them, through the
real ledger: a refused token dead at once, a malformed client id dead at once, a deal
with no lead source done and skipped saying so; one attempt each, no retry storm; the
admin's log says what each done delivery sent, or why nothing."""
from __future__ import annotations

from sqlalchemy import select

from connectors.base import ReportDealStage
from connectors.ga4 import emulator as ga4_emulator
from connectors.meta_capi import emulator as meta_emulator
from connectors.metrica import emulator as metrica_emulator
from connectors.roistat import emulator as roistat_emulator
from hub.crm.commands import execute
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Conversation, Delivery, Event
from tests.support.admin import signed_in
from tests.support.tracking import text_message
from tests.support.whatsapp import make_channel, post_signed


def add(runtime, kind, name, settings):
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind=kind, name=name, settings=settings, now=utcnow(),
                                event_types=["deal.stage_changed"]).id


def won_deal(client, runtime, key, wa_id, lead_source):
    assert post_signed(client, key, text_message("Hi", wa_id=wa_id)).status_code == 200
    with runtime.db.scope() as session:
        conv = session.scalars(select(Conversation).order_by(Conversation.id.desc()).limit(1)).one()
        conv.lead_source = lead_source
        session.flush()
        [result] = execute(session, [ReportDealStage(deal_id=f"d{conv.id}", stage="142", outcome="won",
                                                     conversation_id=conv.id, amount="100")], now=utcnow())
        assert result.ok
        return conv.id


def log(runtime, connector_id):
    with runtime.db.scope() as session:
        rows = session.execute(select(Event.data, Delivery.status, Delivery.attempts, Delivery.last_error,
                                      Delivery.last_response).join(Event, Event.id == Delivery.event_id)
                               .where(Delivery.connector_id == connector_id)).all()
    return {r.data["conversation"]["id"]: (r.status, r.attempts, r.last_error, r.last_response) for r in rows}


def test_refusals_are_explained_once_each(app, client, runtime):
    from hub.tracking.attribution import empty_source

    tracked = {**empty_source("tracked_link"), "ga_client_id": "1234567890.1700000000"}
    ad = {**empty_source("ad_referral"), "referral": {"ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFD"}}
    _, key = make_channel(runtime)
    with ga4_emulator.serve() as ga, meta_emulator.serve() as meta:
        ga4 = add(runtime, "ga4", "ga4", {"measurement_id": "G-HUB0000001", "api_secret": "emulator-api-secret-1",
                                          "endpoint": ga.base_url})
        capi = add(runtime, "meta_capi", "meta", {"dataset_id": "1234567890123", "access_token": "EAAG-revoked-000",
                                                  "whatsapp_business_account_id": "1100000000000001",
                                                  "graph_url": meta.base_url})
        good = won_deal(client, runtime, key, "4915100000001", tracked)
        malformed = won_deal(client, runtime, key, "4915100000002", {**tracked, "ga_client_id": "<script>"})
        no_source = won_deal(client, runtime, key, "4915100000003", None)
        from_ad = won_deal(client, runtime, key, "4915100000004", ad)
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        for _ in range(5):
            worker.drain()
        ga_log, meta_log = log(runtime, ga4), log(runtime, capi)
        assert len(ga.events("close_convert_lead")) == 1 and meta.received() == []
    assert ga_log[good][:2] == ("done", 1) and ga_log[good][3]["sent"] == ["close_convert_lead"]
    assert ga_log[malformed][:3] == ("dead", 1, "GA client id '<script>' is malformed (expected <random>.<seconds> "
                                                "from the _ga cookie, e.g. 1234567890.1700000000); not sent")
    assert ga_log[no_source][:2] == ("done", 1) and ga_log[no_source][3] == {
        "skipped": "the conversation has no lead source (not from a tracked link): no GA client id to send"}
    status, attempts, error, response = meta_log[from_ad]
    assert (status, attempts) == ("dead", 1) and error.startswith("Meta refused the access token")
    assert "EAAG-revoked-000" not in str(response) + error
    assert meta_log[good][3] == {"skipped": "the lead source (tracked_link) is not a Click-to-WhatsApp ad: "
                                            "no ctwa_clid to send"}
    with runtime.db.scope() as session:
        assert session.get(ConnectorRecord, capi).enabled
    page = signed_in(app, runtime, "viewer").get(f"/admin/deliveries?connector_id={ga4}").get_data(as_text=True)
    assert page.count("sent: close_convert_lead") == 1  # the log says what each done delivery did
    assert "skipped: the conversation has no lead source (not from a tracked link)" in page


def test_metrica_and_roistat_refusals_are_explained_once_each(client, runtime):
    """Metrica with a revoked token, Roistat with a good key: the token dead at once saying
    so (never logged), malformed ids dead at once naming them, no lead source skipped."""
    from hub.tracking.attribution import empty_source

    tracked = {**empty_source("tracked_link"), "ym_uid": "1700000000123456789", "roistat_visit": "4336465"}
    _, key = make_channel(runtime)
    with metrica_emulator.serve() as ym, roistat_emulator.serve() as rs:
        metrica = add(runtime, "metrica", "metrica", {"counter_id": 44147844, "oauth_token": "y0_revoked-token",
                                                      "api_url": ym.base_url})
        roistat = add(runtime, "roistat", "roistat", {"project": rs.project, "api_key": rs.key,
                                                      "api_url": rs.base_url + "/api/v1"})
        good = won_deal(client, runtime, key, "4915100000001", tracked)
        malformed = won_deal(client, runtime, key, "4915100000002",
                             {**tracked, "ym_uid": "17000abc", "roistat_visit": "4336465'--"})
        no_source = won_deal(client, runtime, key, "4915100000003", None)
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        for _ in range(5):
            worker.drain()
        ym_log, rs_log = log(runtime, metrica), log(runtime, roistat)
        assert ym.uploads == [] and [o["id"] for o in rs.orders.values()] == [f"whatsapp-{good}"]
    status, attempts, error, response = ym_log[good]
    assert (status, attempts) == ("dead", 1) and error.startswith("Metrica refused the credentials (HTTP 403)")
    assert "y0_revoked-token" not in str(response) + error
    assert ym_log[malformed][:2] == ("dead", 1) and "17000abc" in ym_log[malformed][2]
    assert ym_log[no_source][:2] == ("done", 1) and "no lead source" in ym_log[no_source][3]["skipped"]
    assert rs_log[good][:2] == ("done", 1) and rs_log[good][3]["sent"] == ["paid"]
    assert rs_log[malformed][:2] == ("dead", 1) and "4336465'--" in rs_log[malformed][2]
    assert rs_log[no_source][:2] == ("done", 1) and "no lead source" in rs_log[no_source][3]["skipped"]
