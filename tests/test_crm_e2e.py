"""WhatsApp to CRM, end to end: customers write through the WhatsApp emulator, the hub
ingests, workers deliver, and the amoCRM emulator holds exactly one contact and one deal
per conversation, every message as a note, and the UTM tags the ad carried."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from connectors.amocrm import benchkit as amo_kit
from hub.connector_store import create_connector
from hub.db import utcnow
from hub.delivery.worker import Worker
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
