"""End to end: a site page with UTM tags -> /l/<slug> -> the customer sends the prefilled
text -> the signed WhatsApp webhook -> the conversation's lead source and the
lead.attributed event (as a subscriber receives it) carry the visit's tags."""
from __future__ import annotations

import random

from sqlalchemy import select

from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Conversation, Event
from tests.support.factories import webhook_connector
from tests.support.receiver import Receiver
from tests.support.tracking import prefilled, text_message
from tests.support.whatsapp import make_channel, post_signed

TAGS = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_content": "banner-1",
        "utm_term": "grey sofa", "gclid": "EAIaIQobChMI8f"}


def test_utm_tags_of_a_visit_reach_the_conversation_and_lead_attributed(client, runtime, admin_headers):
    channel_id, key = make_channel(runtime)
    with Receiver() as rx:
        webhook_connector(runtime, rx.url + "/crm")
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "spring-sale", "channel_id": channel_id, "campaign": "Spring sale",
            "text_template": "Hello! My request number: {code}", "utm_source": "site"}).json

        # The visitor lands on the shop with tags; t.js sends the click through the hub.
        landing = "https://shop.example/sofas?utm_source=google&utm_medium=cpc"
        client.set_cookie("_ga", "GA1.2.1234567890.1700000000")
        r = client.get(f"/l/{link['slug']}", query_string={**TAGS, "lp": landing, "ref": "https://www.google.com/"},
                       headers={"User-Agent": "Mozilla/5.0 (Android 14)"})
        assert r.status_code == 302 and r.headers["Location"].startswith("https://wa.me/15550001111?text=")
        text = prefilled(r)

        # WhatsApp opens with the text; the customer sends it as it is.
        assert post_signed(client, key, text_message(text, wa_id="4915112345678")).status_code == 200

        with runtime.db.scope() as session:
            conv = session.scalars(select(Conversation)).one()
            source = conv.lead_source
            event = session.scalars(select(Event).where(Event.type == "lead.attributed")).one()
        assert source["kind"] == "tracked_link"
        assert {k: source[k] for k in TAGS} == TAGS
        assert source["landing_page"] == landing and source["referrer"] == "https://www.google.com/"
        assert source["ga_client_id"] == "1234567890.1700000000"
        assert (source["campaign"], source["link"], source["code"]) == ("Spring sale", "spring-sale",
                                                                     text.rsplit(" ", 1)[-1])
        assert event.data["lead_source"] == source
        assert event.data["conversation"]["lead_source"] == source

        # A subscriber (the generic webhook connector) receives all of it.
        Worker(runtime.db, runtime.vault, runtime.config, owner="e2e", clock=utcnow, rng=random.Random(1)).drain()
        delivered = {req.json()["type"]: req.json() for req in rx.requests}
    assert delivered["lead.attributed"]["data"]["lead_source"] == source
    assert delivered["conversation.started"]["data"]["conversation"]["lead_source"]["utm_campaign"] == "spring"

    report = client.get("/api/v1/tracked-links/report", headers=admin_headers).json
    assert report["links"][0]["visits"] == 1 and report["links"][0]["conversations"] == 1
