"""End to end through the hub: events -> outbox -> worker -> connector -> emulator."""
from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from connectors.hubspot import mapping
from hub.crm.worker import Worker
from hub.models import Delivery
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import emit_conversations


def statuses(runtime) -> dict[str, int]:
    with runtime.db.scope() as session:
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def assert_synced(emu, conversations: int, messages_per: int) -> None:
    assert emu.counts() == {"contacts": conversations, "deals": conversations,
                            "notes": conversations * messages_per}
    contacts = emu.records("contacts")
    deals = emu.records("deals")
    comms = emu.records("communications")
    assert len({c["properties"]["phone"] for c in contacts}) == conversations
    assert len({d["properties"]["hub_conversation_id"] for d in deals}) == conversations
    for comm in comms:
        props = comm["properties"]
        assert props["hs_communication_channel_type"] == "WHATS_APP"
        assert props["hs_communication_logged_from"] == "CRM"
        linked_contacts = emu.associated("communications", comm["id"], "contacts")
        linked_deals = emu.associated("communications", comm["id"], "deals")
        assert list(linked_contacts.values()) == [mapping.COMMUNICATION_TO_CONTACT]
        assert list(linked_deals.values()) == [mapping.COMMUNICATION_TO_DEAL]
    for deal in deals:
        assert list(emu.associated("deals", deal["id"], "contacts").values()) == [mapping.DEAL_TO_CONTACT]
        assert len(emu.associated("deals", deal["id"], "communications")) == messages_per


def test_200_conversations_land_once_with_sources(runtime, emu):
    make_connector(runtime, emu)
    emit_conversations(runtime, 200, messages=2)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": 200 * 3 + 50}
    assert_synced(emu, 200, 2)
    deals = {int(d["properties"]["hub_conversation_id"]): d["properties"] for d in emu.records("deals")}
    assert deals[4]["utm_source"] == "google" and deals[4]["gclid"] == "EAIaIQ4"
    assert deals[2]["hub_lead_source"] == "ad_referral" and deals[2]["hub_ctwa_clid"].startswith("ARAkLkA8")
    assert deals[5]["utm_campaign"] == "spring-2"  # from lead.attributed, after creation
    assert "utm_source" not in deals[3]  # source unknown
    assert deals[1]["pipeline"] == "default" and deals[1]["dealstage"] == "appointmentscheduled"
    assert deals[1]["dealname"] == "WhatsApp: Customer 1"
    assert emu.stats()["rate_limited"] == 0
    per_endpoint = Counter(emu.stats()["by_endpoint"])
    # batching: the connector claims 400 deliveries a round, so a wave holds up to 200
    # conversations -> contacts and deals 100 per request, one search per 100 phones
    assert per_endpoint["POST /crm/v3/objects/contacts/batch/create"] == 2
    assert per_endpoint["POST /crm/v3/objects/deals/batch/create"] == 2
    assert per_endpoint["POST /crm/v3/objects/contacts/search"] == 2


def test_redelivery_after_drain_changes_nothing(runtime, emu):
    make_connector(runtime, emu)
    emit_conversations(runtime, 20, messages=3)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.drain()
    before = emu.counts()
    # the same conversations again (e.g. a replay): links make every event a no-op
    emit_conversations(runtime, 20, messages=3)
    worker.drain()
    assert emu.counts() == before == {"contacts": 20, "deals": 20, "notes": 60}
