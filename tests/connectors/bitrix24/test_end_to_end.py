"""Through the hub: connector store, emit(), the delivery worker, the emulator."""
from __future__ import annotations

from sqlalchemy import func, select

from connectors.bitrix24 import mapping
from hub.crm.store import create_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import Delivery
from tests.connectors.bitrix24.conftest import webhook_settings
from tests.connectors.bitrix24.factory import NOTES_PER_CONVERSATION, emit_conversations


def make_connector(runtime, settings, name="bitrix24"):
    with runtime.db.scope() as session:
        return create_connector(session, runtime.vault, kind="bitrix24", name=name, settings=settings,
                                now=utcnow()).id


def statuses(runtime):
    with runtime.db.scope() as session:
        return dict(session.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def test_200_conversations_become_200_contacts_deals_and_every_message(runtime, portal):
    make_connector(runtime, webhook_settings(portal, operator_map="olga@example.com=5"))
    events = emit_conversations(runtime, 200)
    Worker(runtime.db, runtime.vault, runtime.config).drain()

    assert statuses(runtime) == {"done": events}
    assert portal.counts() == {"contacts": 200, "deals": 200, "notes": 200 * NOTES_PER_CONVERSATION}
    p = portal.portal
    phones = sorted(c["PHONE"][0]["VALUE"] for c in p.contacts.values())
    assert len(set(phones)) == 200
    by_origin = {d["ORIGIN_ID"]: d for d in p.deals.values()}
    assert len(by_origin) == 200
    for i in range(200):
        deal = by_origin[str(5000 + i)]
        assert deal["ORIGINATOR_ID"] == mapping.ORIGINATOR
        assert p.contacts[int(deal["CONTACT_ID"])]["PHONE"][0]["VALUE"] == f"+1555{7000000 + i:07d}"
        if i % 2 == 0:
            assert (deal["UTM_SOURCE"], deal["UTM_MEDIUM"], deal["UTM_CAMPAIGN"]) == ("google", "cpc", f"spring-{i % 5}")
            assert deal["SOURCE_DESCRIPTION"] == "WhatsApp link: Spring sale"
        else:
            assert deal["UTM_SOURCE"] is None
        texts = [c["COMMENT"] for c in p.comments.values() if c["ENTITY_ID"] == deal["ID"]]
        assert len(texts) == NOTES_PER_CONVERSATION
        assert any(f"Message 2 of conversation {i}" in t and "(by Olga)" in t for t in texts)
    stats = portal.stats()
    assert stats["rate_limited"] == 0
    # 200 contacts + 200 deals + 600 comments = 1000 writes, plus 10 phone lookups: ~21 batches
    assert stats["requests"] <= 30


def test_leads_instead_of_deals(runtime, portal):
    make_connector(runtime, webhook_settings(portal, target="lead", lead_status_id="IN_PROCESS"))
    emit_conversations(runtime, 20)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    p = portal.portal
    assert len(p.leads) == 20 and not p.deals
    assert {lead["STATUS_ID"] for lead in p.leads.values()} == {"IN_PROCESS"}
    assert {c["ENTITY_TYPE"] for c in p.comments.values()} == {"lead"}
    assert len(p.comments) == 20 * NOTES_PER_CONVERSATION


def emit_one_by_one(runtime, count: int) -> int:
    """Each conversation's events together, as a backlog piles up (bench/crm_sync.py)."""
    from tests.connectors.bitrix24.factory import SCRIPT, data
    from hub.events.outbox import emit

    with runtime.db.scope() as session:
        for i in range(count):
            for kind, kw in SCRIPT:
                emit(session, kind, data(kind, i, **kw), now=utcnow(), ordering_key=f"conversation:{5000 + i}")
    return count * len(SCRIPT)


def test_a_backlog_fills_every_batch_and_stores_links_per_answer(runtime, portal, monkeypatch):
    """250 conversations of 4 events each, queued one conversation after another: one
    claim holds them all, so the phone lookups share one request and every write batch
    is full - the floor's 26 requests (a claim of 250 events made 44). Links and try
    markers go in one transaction per answer, never one per object."""
    from connectors.bitrix24 import benchkit
    from hub.crm.links import DbLinkStore

    calls = {"put": 0, "put_many": 0}
    put, put_many = DbLinkStore.put, DbLinkStore.put_many

    def counting_put(self, *a, **kw):
        calls["put"] += 1
        return put(self, *a, **kw)

    def counting_put_many(self, *a, **kw):
        calls["put_many"] += 1
        return put_many(self, *a, **kw)

    monkeypatch.setattr(DbLinkStore, "put", counting_put)
    monkeypatch.setattr(DbLinkStore, "put_many", counting_put_many)
    make_connector(runtime, webhook_settings(portal))
    events = emit_one_by_one(runtime, 250)
    Worker(runtime.db, runtime.vault, runtime.config).drain()

    assert statuses(runtime) == {"done": events}
    assert portal.counts() == {"contacts": 250, "deals": 250, "notes": 750}
    requests = portal.stats()["requests"]
    assert requests == benchkit.floor(250, NOTES_PER_CONVERSATION)[0] == 26
    assert calls["put"] == 0
    # per wave: try markers (+ contact claims in the first); per answer: its links
    assert calls["put_many"] <= 4 + 1 + requests
