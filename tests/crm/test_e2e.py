"""WhatsApp to CRM, end to end: customers write through the WhatsApp emulator, the hub
ingests, workers deliver, and the amoCRM emulator holds exactly one contact and one deal
per conversation, every message as a note, and the UTM tags the ad carried."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Delivery, Message
from tests.support.clock import FakeClock
from tests.support.wa_emulator import wired

pytestmark = pytest.mark.slow


def lead_fields(lead):
    return {cf["field_code"]: cf["values"][0]["value"]
            for cf in lead.get("custom_fields_values") or [] if cf.get("field_code")}


def test_200_whatsapp_conversations_land_in_amocrm(client, runtime):
    clock = FakeClock(utcnow())
    with amo_kit.start_emulator() as amo, wired(runtime, client, clock, batch_size=20, duplicate_ratio=0.05) as w:
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="amocrm", name="amo",
                             settings={**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5},
                             now=utcnow())
        emu, number = w["emu"], w["number"]
        people = [emu.customer(number, f"4915{20000000 + i:08d}", name=f"Kunde {i}") for i in range(200)]
        for i, person in enumerate(people):
            if i % 2 == 0:
                person.send_from_ad(f"Hello from the ad {i}", source_url=(
                    f"https://shop.example/sofas?utm_source=facebook&utm_medium=ctwa&utm_campaign=spring-{i}"))
            else:
                person.send_text(f"Hello {i}")
        for round_ in (1, 2):
            for person in people:
                person.send_text(f"question {round_}")
        emu.flush()
        with runtime.db.scope() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == 600
        worker = Worker(runtime.db, runtime.vault, runtime.config)
        for _ in range(100):
            if not worker.drain():
                break
        with runtime.db.scope() as session:
            statuses = dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
        assert statuses == {"done": 200 * 5}, statuses  # started, attributed, 3 messages each
        counts = amo.counts()
        assert {k: counts[k] for k in ("contacts", "deals", "notes")} == {"contacts": 200, "deals": 200, "notes": 600}
        assert amo.stats()["rate_limited"] == 0
        store = amo.store
        phones = Counter(v["value"] for c in store.contacts.values()
                         for cf in c.get("custom_fields_values") or [] for v in cf["values"])
        assert len(phones) == 200 and set(phones.values()) == {1}
        campaigns = sorted(lead_fields(lead).get("UTM_CAMPAIGN") for lead in store.leads.values()
                           if lead_fields(lead).get("UTM_SOURCE") == "facebook")
        assert campaigns == sorted(f"spring-{i}" for i in range(0, 200, 2))


def test_a_tracked_visit_puts_its_utm_tags_on_the_amocrm_deal(client, runtime, admin_headers):
    """A visit with UTM tags -> the emulated customer sends the prefilled text through the
    WhatsApp emulator -> the deal in the amoCRM emulator carries those tags."""
    from tests.support.tracking import prefilled

    clock = FakeClock(utcnow())
    tags = {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring", "utm_content": "banner-1",
            "utm_term": "grey sofa", "gclid": "EAIaIQobChMI8f"}
    with amo_kit.start_emulator() as amo, wired(runtime, client, clock) as w:
        with runtime.db.scope() as session:
            create_connector(session, runtime.vault, kind="amocrm", name="amo",
                             settings={**amo_kit.connector_settings(amo.base_url), "timeout_seconds": 5},
                             now=utcnow())
        link = client.post("/api/v1/tracked-links", headers=admin_headers, json={
            "slug": "spring-sale", "channel_id": w["channel_id"], "campaign": "Spring sale",
            "text_template": "Hello! My request number: {code}"}).json
        r = client.get(f"/l/{link['slug']}", query_string=tags, headers={"User-Agent": "Mozilla/5.0 (Android 14)"})
        assert r.status_code == 302
        customer = w["emu"].customer(w["number"], "4915112345678", name="Jonas Weber")
        customer.send_text(prefilled(r))
        w["emu"].flush()
        Worker(runtime.db, runtime.vault, runtime.config).drain()
        (lead,) = amo.store.leads.values()
    fields = lead_fields(lead)
    assert {k: fields[k.upper()] for k in ("utm_source", "utm_medium", "utm_campaign", "utm_content",
                                           "utm_term", "gclid")} == tags
