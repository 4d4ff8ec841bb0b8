"""End to end through the hub: events emitted as docs/events.md, drained by the delivery
worker, checked in the amoCRM emulator's account."""
from __future__ import annotations

from collections import Counter

from connectors.amocrm import mapping
from connectors.amocrm.emulator import serve
from hub.events.outbox import emit
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import (
    add_connector, dead_errors, drain, instance, long_lived_settings,
)

UTM = {"utm_source": "UTM_SOURCE", "utm_medium": "UTM_MEDIUM", "utm_campaign": "UTM_CAMPAIGN",
       "utm_content": "UTM_CONTENT", "utm_term": "UTM_TERM", "gclid": "GCLID", "referrer": "REFERRER"}


def lead_fields(lead):
    return {cf["field_code"]: cf["values"][0]["value"] for cf in lead["custom_fields_values"] if cf["field_code"]}


def test_200_conversations_become_200_contacts_200_deals_and_every_message_a_note(runtime, amo):
    settings = long_lived_settings(amo, operator_users={"olga@example.com": 9000001, "ivan@example.com": 9000002},
                                   close_status_id=142)
    add_connector(runtime, settings)
    with runtime.db.scope() as session:
        for n in range(200):
            ev.emit_conversation(session, n, messages=3)
        for n in range(0, 200, 5):
            conv = ev.conversation(n)
            ev.emit_event(session, "conversation.assigned", {"conversation": {**conv, "assignee": ev.IVAN},
                          "contact": ev.contact(n), "assignee": ev.IVAN, "previous": None})
        for n in range(0, 200, 7):
            ev.emit_event(session, "conversation.closed", {"conversation": ev.conversation(n),
                          "contact": ev.contact(n), "reason": "resolved"})
        for n in range(5, 200, 30):  # source found out after the start (n odd, n % 3 != 1: unknown before)
            if ev.lead_source(n) is None:
                src = {**ev.lead_source(0), "utm_campaign": f"late-{n}"}
                ev.emit_event(session, "lead.attributed", {"conversation": {**ev.conversation(n), "lead_source": src},
                              "contact": ev.contact(n), "lead_source": src})
    result = drain(runtime)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    assert amo.counts() == {"contacts": 200, "deals": 200, "notes": 600, "contact_notes": 0}
    assert amo.stats()["rate_limited"] == 0

    store = amo.store
    leads_by_conv = {}
    for lead in store.leads.values():
        n = int(lead["name"].removeprefix("WhatsApp: Customer "))
        leads_by_conv[n] = lead
    assert sorted(leads_by_conv) == list(range(200))
    phones = Counter(v["value"] for c in store.contacts.values() for cf in c["custom_fields_values"] for v in cf["values"])
    assert len(phones) == 200 and set(phones.values()) == {1}  # one contact per phone
    notes_by_lead = Counter(note["entity_id"] for note in store.notes.values())
    texts = Counter(note["params"]["text"] for note in store.notes.values())
    assert set(texts.values()) == {1}  # nothing twice
    for n, lead in leads_by_conv.items():
        assert len(lead["contact_ids"]) == 1
        contact = store.contacts[lead["contact_ids"][0]]
        assert contact["custom_fields_values"][0]["values"][0] == {
            "value": ev.contact(n)["phone"], "enum_id": 200_003, "enum_code": "MOB"}
        assert notes_by_lead[lead["id"]] == 3
        for k in range(3):
            assert any(f"Message {k} of conversation {n}" in note["params"]["text"]
                       for note in store.notes.values() if note["entity_id"] == lead["id"])
        fields = lead_fields(lead)
        source = ev.lead_source(n)
        if source and source["kind"] == "tracked_link":
            assert fields == {code: source[key] for key, code in UTM.items()}
        elif n in range(5, 200, 30) and source is None:
            assert fields["UTM_CAMPAIGN"] == f"late-{n}"
        else:
            assert fields == {}
        assert lead["created_at"] == mapping.unix(ev.conversation(n)["opened_at"])
        assert lead["pipeline_id"] == 7000001
        assert lead["status_id"] == (142 if n % 7 == 0 else 7000011)
        assert lead["responsible_user_id"] == (9000002 if n % 5 == 0 else 9000001)
        assert [t["name"] for t in lead["tags"]] == ["WhatsApp"]


def test_customer_known_to_the_hub_reuses_contact_and_open_deal(runtime, amo):
    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=1)
    drain(runtime)
    # A second conversation of the same customer (new conversation id), and of a third one
    # whose two conversations arrive in the same wave.
    with runtime.db.scope() as session:
        for conv_id, n in ((901, 1), (902, 2), (903, 2)):
            conv = {**ev.conversation(n), "id": conv_id}
            emit(session, "conversation.started", {"conversation": conv, "contact": ev.contact(n)},
                 now=ev.utcnow(), ordering_key=f"conversation:{conv_id}")
    assert set(drain(runtime)) == {"done"}
    assert amo.counts()["contacts"] == 2 and amo.counts()["deals"] == 2


def test_always_new_deal_keeps_one_contact(runtime, amo):
    add_connector(runtime, long_lived_settings(amo, deal_mode="always_new"))
    with runtime.db.scope() as session:
        for conv_id in (901, 902, 903):
            conv = {**ev.conversation(1), "id": conv_id}
            emit(session, "conversation.started", {"conversation": conv, "contact": ev.contact(1)},
                 now=ev.utcnow(), ordering_key=f"conversation:{conv_id}")
    assert set(drain(runtime)) == {"done"}
    assert amo.counts()["contacts"] == 1 and amo.counts()["deals"] == 3


def test_closed_deal_is_not_reused(runtime, amo):
    add_connector(runtime, long_lived_settings(amo, close_status_id=143))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=0)
        ev.emit_event(session, "conversation.closed", {"conversation": ev.conversation(1), "contact": ev.contact(1),
                                                      "reason": "no answer"})
    drain(runtime)
    with runtime.db.scope() as session:
        conv = {**ev.conversation(1), "id": 990}
        emit(session, "conversation.started", {"conversation": conv, "contact": ev.contact(1)}, now=ev.utcnow(),
             ordering_key="conversation:990")
    drain(runtime)
    assert amo.counts()["contacts"] == 1 and amo.counts()["deals"] == 2


def test_customer_already_in_amocrm_is_found_by_phone(runtime, amo):
    amo.add_contact("Someone else", "+1 555 700 0007")
    ru = amo.add_contact("Иван", "8 912 000-11-22")  # typed the national way by a salesperson
    add_connector(runtime, long_lived_settings(amo, existing_contacts="search"))
    with runtime.db.scope() as session:
        c = {**ev.contact(50), "phone": "+79120001122", "wa_id": "79120001122"}
        conv = ev.conversation(50)
        emit(session, "conversation.started", {"conversation": conv, "contact": c}, now=ev.utcnow(),
             ordering_key=f"conversation:{conv['id']}")
    assert set(drain(runtime)) == {"done"}
    lead = next(iter(amo.store.leads.values()))
    assert lead["contact_ids"] == [ru] and amo.counts()["contacts"] == 2
    assert amo.stats()["GET /api/v4/contacts"] == 1  # one lookup for the one new phone


def test_a_rejected_deal_is_dead_with_the_field_named_and_the_others_go_through(runtime, amo):
    settings = long_lived_settings(amo, source_fields={"utm_source": "UTM_SOURCE", "referral.headline": "HEADLINE"})
    add_connector(runtime, settings)
    with runtime.db.scope() as session:
        for n in range(6):  # n = 1: an ad referral with a headline -> unknown field code
            ev.emit_conversation(session, n, messages=1)
    result = drain(runtime)
    assert result == {"done": 10, "dead": 2}
    errors = dead_errors(runtime)
    assert any("custom_fields_values.0.field_code" in e and "conversation 501" in e for e in errors)
    assert amo.counts()["deals"] == 5


def test_opt_out_becomes_a_note_on_the_contact(runtime, amo):
    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 3, messages=0)
        emit(session, "contact.opted_out", {"contact": ev.contact(3), "reason": "STOP"}, now=ev.utcnow(),
             ordering_key="contact:1003")
        emit(session, "contact.opted_out", {"contact": ev.contact(99), "reason": "STOP"}, now=ev.utcnow(),
             ordering_key="contact:1099")
    assert set(drain(runtime)) == {"done"}
    assert amo.counts()["contact_notes"] == 1
    note = next(n for n in amo.store.notes.values() if n["entity"] == "contacts")
    assert note["params"]["text"] == "Opted out of WhatsApp messages (STOP)"


def test_check_choices_and_preview(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, close_status_id=142, existing_contacts="search",
                                                     operator_users={"olga@example.com": 9000001}))
    connector = instance(runtime, cid)
    result = connector.check()
    assert result.ok, result.message
    assert result.details["account"]["subdomain"] == "emulator"
    choices = connector.choices()
    assert ("7000001", "Sales") in choices["pipeline_id"]
    assert ("7000014", "Sales / Shipped") in choices["status_id"]
    assert ("9000002", "Ivan Sales <ivan@example.com>") in choices["responsible_user_id"]
    assert ("UTM_SOURCE", "utm_source") in choices["source_fields"]

    before = amo.stats()["requests"]
    from connectors.base import HubEvent
    batch = [HubEvent("e1", "conversation.started", 1, ev.T0, {"conversation": ev.conversation(2),
                                                                 "contact": ev.contact(2)}),
             HubEvent("e2", "message.received", 1, ev.T0, {"conversation": ev.conversation(4), "contact": ev.contact(4),
                                                             "message": ev.message(4, 0)}),
             HubEvent("e3", "conversation.closed", 1, ev.T0, {"conversation": ev.conversation(4),
                                                                "contact": ev.contact(4), "reason": "done"})]
    plan = connector.preview(batch)
    assert amo.stats()["requests"] == before  # nothing sent
    assert [(r["method"], r["path"]) for r in plan] == [
        ("GET", "/api/v4/contacts"), ("GET", "/api/v4/contacts"), ("POST", "/api/v4/leads/complex"),
        ("POST", "/api/v4/leads/notes"), ("PATCH", "/api/v4/leads")]
    assert [b["request_id"] for b in plan[2]["body"]] == ["502", "504"]
    assert plan[3]["body"][0]["entity_id"] == "<deal of conversation 504>"
    assert plan[4]["body"] == [{"id": "<deal of conversation 504>", "status_id": 142, "pipeline_id": 7000001}]


def test_check_reports_settings_amocrm_does_not_know(runtime, amo):
    cid = add_connector(runtime, long_lived_settings(amo, status_id=7000021, source_fields={"utm_source": "UTM_SAUCE"},
                                                     operator_users={"olga@example.com": 1234}))
    result = instance(runtime, cid).check()
    assert not result.ok
    assert "status_id: stage 7000021 is not in pipeline 7000001" in result.message
    assert "utm_source -> UTM_SAUCE: no such deal field" in result.message
    assert "olga@example.com: amoCRM has no user 1234" in result.message


def test_unreachable_amocrm_retries(runtime):
    with serve() as amo:
        settings = long_lived_settings(amo)
    add_connector(runtime, settings)  # the emulator is gone: connection refused
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=0)
    from hub.crm.worker import Worker
    Worker(runtime.db, runtime.vault, runtime.config).run_once()
    from tests.connectors.amocrm.conftest import statuses
    assert statuses(runtime) == {"pending": 1}


def test_blocked_account_waits_unhealthy_then_recovers(runtime, amo):
    from sqlalchemy import select

    from hub.crm.worker import Worker
    from hub.models import ConnectorRecord, Delivery
    from tests.connectors.amocrm.conftest import statuses

    cid = add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 1, messages=1)
    amo.gate.blocked_until = amo.clock() + 3600  # amoCRM blocked the integration after repeated 429s
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.drain()
    assert statuses(runtime) == {"pending": 2} and not dead_errors(runtime)
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        assert record.health == "unhealthy" and "403 Forbidden" in record.health_message
        deliveries = list(session.scalars(select(Delivery)))
        assert any("403 Forbidden" in (d.last_error or "") for d in deliveries)
        assert all(d.attempts == 0 for d in deliveries)  # waiting is not failing
        for d in deliveries:
            d.next_attempt_at = ev.utcnow()
    amo.gate.blocked_until = 0
    assert drain(runtime, worker=worker) == {"done": 2}
    with runtime.db.scope() as session:
        assert session.get(ConnectorRecord, cid).health == "ok"


def test_two_workers_share_amocrms_limit(runtime, amo):
    import threading

    from hub.crm.worker import Worker

    add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        for n in range(150):
            ev.emit_conversation(session, n, messages=1)
    workers = [Worker(runtime.db, runtime.vault, runtime.config) for _ in range(2)]
    threads = [threading.Thread(target=w.drain) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert drain(runtime) == {"done": 300}
    assert amo.stats()["rate_limited"] == 0
    assert amo.counts() == {"contacts": 150, "deals": 150, "notes": 150, "contact_notes": 0}


def test_a_backlog_stores_intents_and_links_per_request_not_per_object(runtime, amo, monkeypatch):
    """Each leads/complex or notes request writes its intents in one transaction before
    it and its links in one per link type after it: between two requests at 7 a second
    there is no time for a transaction per deal, contact and note."""
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
    add_connector(runtime, {**long_lived_settings(amo), "existing_contacts": "create"})
    with runtime.db.scope() as session:
        for n in range(100):
            ev.emit_conversation(session, n, messages=3)
    result = drain(runtime)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    assert amo.counts() == {"contacts": 100, "deals": 100, "notes": 300, "contact_notes": 0}
    requests = amo.stats()["requests"]
    assert calls["put"] == 0
    # leads/complex: intents + contacts + conversations + reverse; notes: intents
    assert calls["put_many"] <= 4 * requests


def _breach(n: int, *, assignee=None) -> dict:
    return {"conversation": ev.conversation(n), "contact": ev.contact(n), "team": {"id": 1, "name": "Sales"},
            "target": "first_response", "clock_started_at": ev.iso(ev.T0), "elapsed_seconds": 420,
            "target_seconds": 300, "assignee": assignee or ev.OLGA, "supervisor": None, "reassigned_to": None}


def test_each_sla_breach_becomes_one_follow_up_task_on_the_deal(runtime, amo):
    add_connector(runtime, long_lived_settings(amo, operator_users={"olga@example.com": 9000001}))
    with runtime.db.scope() as session:
        for n in range(3):
            ev.emit_conversation(session, n, messages=1)
        for n in range(3):
            ev.emit_event(session, "sla.breached", _breach(n))
    result = drain(runtime)
    assert set(result) == {"done"}, (result, dead_errors(runtime)[:3])
    tasks = list(amo.store.tasks.values())
    assert len(tasks) == 3
    lead_of = {int(lead["name"].removeprefix("WhatsApp: Customer ")): lead["id"] for lead in amo.store.leads.values()}
    assert sorted(t["entity_id"] for t in tasks) == sorted(lead_of.values())
    task = next(t for t in tasks if t["entity_id"] == lead_of[0])
    assert (task["entity_type"], task["task_type_id"], task["responsible_user_id"]) == ("leads", 1, 9000001)
    assert "first response target of Sales (5 min) was missed: 7 min" in task["text"]
    assert task["complete_till"] > int(ev.T0.timestamp())


def test_a_retried_breach_finds_its_task_instead_of_writing_another(runtime, amo):
    from connectors.amocrm import intents
    from connectors.base import HubEvent
    from hub.platform.db import utcnow

    connector_id = add_connector(runtime, long_lived_settings(amo))
    with runtime.db.scope() as session:
        ev.emit_conversation(session, 7, messages=0)
    assert set(drain(runtime)) == {"done"}
    amo_connector = instance(runtime, connector_id)
    breach = HubEvent(id="evt-breach-7", type="sla.breached", version=1, occurred_at=utcnow(), data=_breach(7),
                      ordering_key="conversation:507")
    (first,) = amo_connector.deliver([breach])
    assert first.status == "done" and first.response["task_id"]
    # The answer was lost after amoCRM wrote the task: the intent is there, the outcome was not recorded.
    (again,) = amo_connector.deliver([breach])
    assert again.status == "done" and again.response == {"lead_id": first.response["lead_id"],
                                                         "task": "already in amoCRM"}
    assert len(amo.store.tasks) == 1
    assert set(runtime_links(runtime, intents.TASK)) == {"evt-breach-7"}


def runtime_links(runtime, entity_type: str) -> list[str]:
    from sqlalchemy import select

    from hub.models import CrmLink

    with runtime.db.scope() as session:
        return list(session.scalars(select(CrmLink.entity_id).where(CrmLink.entity_type == entity_type)))
