"""First-message conversions and marketing consent: a customer who opted out (STOP) and
comes back later through a tracked link or an ad is no lead for GA4, Meta, Metrica or
Roistat, nor is one whose very first message is STOP; START opts a returning customer in
again; a customer who never opted out is a lead each time."""
from __future__ import annotations

import contextlib

import pytest

from sqlalchemy import select

from hub.broadcasts import consent
from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Delivery, Event
from tests.support.clock import FakeClock
from tests.support.destinations import analytics_destinations
from tests.support.instagram import ANA as IG_ANA, fixture as instagram_fixture, make_account_channel, post_webhook
from tests.support.wa_emulator import wired
from tests.tracking.test_conversions_e2e import drain, visit

GA = {"ana": "GA1.2.1111111111.1700000000", "ben": "GA1.2.2222222222.1700000100",
      "eve": "GA1.2.5555555555.1700000500"}
YM = {"ana": "1700000000111111111", "ben": "1700000100222222222", "eve": "1700000500555555555"}
CLID = {"carl": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0",
        "dora": "ARAkLkA8rmlFeiCktEJQ-DORAyYHAFDLMNDBH0CD3qpjd1",
        "eve": "ARAkLkA8rmlFeiCktEJQ-EVEiyYHAFDLMNDBH0CD3qpjd2"}


def close_conversation(client, runtime, admin_headers, wa_id):
    with runtime.db.scope() as session:
        conversation_id = session.scalar(select(Conversation.id).join(Contact, Contact.id == Conversation.contact_id)
                                         .where(Contact.wa_id == wa_id, Conversation.status == "open"))
    answer = client.post(f"/api/v1/conversations/{conversation_id}/close", headers=admin_headers,
                         json={"reason": "done"})
    assert answer.status_code == 200, answer.get_data(as_text=True)


def lead_events(runtime):
    with runtime.db.scope() as session:
        return sorted((e.data["contact"]["wa_id"], e.data["contact"]["opted_out"])
                      for e in session.scalars(select(Event).where(Event.type == "lead.attributed")))


def test_returning_opted_out_customers_are_no_first_message_leads(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with contextlib.ExitStack() as stack:
        dest = stack.enter_context(analytics_destinations(
            runtime, ga4={"goals": ["first_message -> generate_lead"]},
            meta_capi={"goals": ["first_message -> LeadSubmitted"]},
            metrica={"goals": ["first_message -> whatsapp_chat"], "skip_opted_out": True},
            roistat={"skip_opted_out": True}))
        ga, meta, ym, rs = dest["ga"], dest["meta"], dest["ym"], dest["rs"]
        w = stack.enter_context(wired(runtime, client, clock))
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "sofas", "channel_id": w["channel_id"], "campaign": "Sofas",
            "text_template": "Hello! My request number: {code}"}).json
        emu, number = w["emu"], w["number"]
        people = {"ana": "4915111111111", "ben": "4915122222222", "carl": "4915133333333",
                  "dora": "4915144444444", "eve": "4915155555555"}
        chat = {who: emu.customer(number, wa, name=who.title()) for who, wa in people.items()}

        # First time: Ana and Ben through the tracked link, Carl and Eve from an ad; Dora's
        # first message from an ad is STOP itself.
        chat["ana"].send_text(visit(client, link["slug"], GA["ana"], YM["ana"], "1001"))
        chat["ben"].send_text(visit(client, link["slug"], GA["ben"], YM["ben"], "1002"))
        chat["carl"].send_from_ad("Is the sofa in stock?", ctwa_clid=CLID["carl"])
        chat["eve"].send_from_ad("Hello", ctwa_clid=CLID["eve"])
        chat["dora"].send_from_ad("STOP", ctwa_clid=CLID["dora"])
        emu.flush()
        for who in ("ana", "carl", "eve"):
            chat[who].send_text("STOP")
        emu.flush()
        drain(runtime)
        first = (len(ga.events()), len(meta.received()), len(ym.rows()), len(rs.history))
        assert first == (2, 2, 2, 2), first  # Ana and Ben; Carl and Eve (not Dora)
        for who in ("ana", "ben", "carl", "eve", "dora"):
            close_conversation(client, runtime, admin_headers, people[who])

        # They come back: Ana and Carl opted out; Ben never did; Eve says START first.
        chat["ana"].send_text(visit(client, link["slug"], GA["ana"], YM["ana"], "1003"))
        chat["ben"].send_text(visit(client, link["slug"], GA["ben"], YM["ben"], "1004"))
        chat["carl"].send_from_ad("Still in stock?", ctwa_clid=CLID["carl"])
        chat["eve"].send_from_ad("START", ctwa_clid=CLID["eve"])
        emu.flush()
        drain(runtime)

        with runtime.db.scope() as session:
            unfinished = list(session.scalars(select(Delivery.last_error).where(Delivery.status != "done")))
        assert unfinished == []

    assert lead_events(runtime) == sorted([
        (people["ana"], False), (people["ana"], True), (people["ben"], False), (people["ben"], False),
        (people["carl"], False), (people["carl"], True), (people["dora"], True),
        (people["eve"], False), (people["eve"], False)])
    ana, ben = (GA[w].split(".", 2)[2] for w in ("ana", "ben"))
    assert sorted(e["client_id"] for e in ga.events("generate_lead")) == sorted([ana, ben, ben])
    assert sorted(e["user_data"]["ctwa_clid"] for e in meta.received("LeadSubmitted")) == sorted(
        [CLID["carl"], CLID["eve"], CLID["eve"]])
    assert sorted(r["ClientId"] for r in ym.rows()) == sorted([YM["ana"], YM["ben"], YM["ben"]])
    assert sorted(o["roistat"] for o in rs.history) == ["1001", "1002", "1004"]


@pytest.mark.parametrize("opted_out", [True, False])
def test_an_instagram_customer_who_opted_out_is_no_lead_either(client, runtime, opted_out):
    _channel_id, key = make_account_channel(runtime)
    if opted_out:  # an earlier marketing opt-out, recorded on the contact the ingest will find
        with runtime.db.scope() as session:
            contact = Contact(user_id=f"ig:{IG_ANA}", name="Ana", created_at=utcnow(), updated_at=utcnow())
            session.add(contact)
            session.flush()
            consent.record(session, contact, "marketing", consent.OPTED_OUT, source="keyword", at=utcnow(),
                           now=utcnow())
    assert post_webhook(client, key, instagram_fixture("message__text")).status_code == 200
    with runtime.db.scope() as session:
        [event] = session.scalars(select(Event).where(Event.type == "lead.attributed")).all()
        assert event.data["contact"]["opted_out"] is opted_out
