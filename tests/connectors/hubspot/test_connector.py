"""The connector in the hub: settings, check, choices, preview, updates, reuse, failures."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connectors.base import registry
from hub.crm.check import run_check
from hub.crm.store import InvalidConnector, build_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Delivery
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import (
    OLGA, NOBODY, contact, conversation, emit_event, message, tracked_link,
)
from tests.connectors.hubspot.test_sync_e2e import statuses


def instance(runtime, connector_id):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=utcnow, http_timeout=5)


def deliveries(runtime):
    with runtime.db.scope() as session:
        return {d.id: (d.status, d.last_error) for d in session.scalars(select(Delivery))}


@pytest.mark.parametrize("field,value,message", [
    ("deal_name_template", "Deal {nope}", "unknown placeholder"),
    ("stage_rules", ["when stage closedwon send x"], "rule 1"),
    ("stage_rules", ["when stage = closedwon send order (en_US) with order.id"], "deal.<property>"),
    ("source_properties", {"utm_source": "UTM Source"}, "internal property name"),
    ("source_properties", {"utm_whatever": "x"}, "Must be one of"),
    ("rate_limit_per_10s", 1000, "Must be one of"),
    ("owner_map", {"olga@example.com": "olga"}, "String does not match"),
])
def test_settings_refuse_bad_input(runtime, emu, field, value, message):
    with pytest.raises(InvalidConnector) as exc:
        make_connector(runtime, emu, **{field: value})
    assert message in str(exc.value)


def test_check_creates_missing_properties_only_when_asked(runtime):
    from connectors.hubspot import emulator
    with emulator.serve(per_10_seconds=250) as bare:
        connector_id = make_connector(runtime, bare)
        result = run_check(runtime, connector_id, now=utcnow())
        assert not result.ok and "hub_whatsapp_id" in result.message and "Create missing properties" in result.message
        with runtime.db.scope() as session:
            assert session.get(ConnectorRecord, connector_id).health == "unhealthy"
            from hub.crm.store import update_connector
            update_connector(session, runtime.vault, session.get(ConnectorRecord, connector_id), now=utcnow(),
                             settings={"create_missing_properties": True})
        result = run_check(runtime, connector_id, now=utcnow())
        assert result.ok, result.message
        assert "contacts.hub_whatsapp_id" in result.details["created_properties"]
        assert bare.state.properties["contacts"]["hub_whatsapp_id"]["hasUniqueValue"] is True
        assert "utm_campaign" in bare.state.properties["deals"]


def test_check_reports_a_stage_outside_the_pipeline(runtime, emu):
    connector_id = make_connector(runtime, emu, stage_id="1023457")
    result = run_check(runtime, connector_id, now=utcnow())
    assert not result.ok and "stage_id" in result.message


def test_choices_come_from_the_account(runtime, emu):
    choices = instance(runtime, make_connector(runtime, emu)).choices()
    assert ("default", "Sales Pipeline") in choices["pipeline_id"]
    assert ("1023459", "WhatsApp orders / Shipped") in choices["stage_id"]
    assert ("41629779", "Olga Petrova <olga@example.com>") in choices["default_owner_id"]


def test_preview_sends_nothing(runtime, emu):
    connector = instance(runtime, make_connector(runtime, emu))
    from connectors.base import HubEvent
    conv = conversation(7, assignee=OLGA, lead_source=tracked_link(7))
    batch = [HubEvent("e1", "message.received", 1, utcnow(),
                      {"conversation": conv, "contact": contact(7), "message": message(701)}, "conversation:7")]
    before = emu.stats()["requests"]
    plan = connector.preview(batch)
    assert emu.stats()["requests"] == before
    assert [p["path"] for p in plan] == ["/crm/v3/objects/contacts/search", "/crm/v3/objects/contacts/batch/create",
                                         "/crm/v3/objects/deals/batch/create",
                                         "/crm/v3/objects/communications/batch/create"]
    deal = plan[2]["body"]["inputs"][0]["properties"]
    assert deal["utm_source"] == "google" and deal["hubspot_owner_id"] == "<owner with e-mail olga@example.com>"


def test_existing_contact_is_found_by_phone_not_duplicated(runtime, emu):
    existing = emu.add_contact(phone="+15550000007", firstname="Typed", lastname="By sales")
    make_connector(runtime, emu)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(7), "contact": contact(7)}, 7)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert emu.counts()["contacts"] == 1
    deal = emu.records("deals")[0]
    assert emu.associated("deals", deal["id"], "contacts") == {existing: 3}


def test_assignment_close_and_attribution_update_the_deal(runtime, emu):
    make_connector(runtime, emu, closed_stage_id="closedwon")
    conv = conversation(8)
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conv, "contact": contact(8)}, 8)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.drain()
    with runtime.db.scope() as session:
        emit_event(session, "conversation.assigned", {"conversation": {**conv, "assignee": OLGA}, "contact": contact(8),
                                                      "assignee": OLGA, "previous": None}, 8)
        emit_event(session, "lead.attributed", {"conversation": conv, "contact": contact(8), "lead_source": tracked_link(8)}, 8)
        emit_event(session, "message.sent", {"conversation": {**conv, "assignee": OLGA}, "contact": contact(8),
                                             "message": message(801, direction="out", text="On its way", author=OLGA)}, 8)
        emit_event(session, "conversation.closed", {"conversation": {**conv, "status": "closed"}, "contact": contact(8),
                                                    "reason": "resolved"}, 8)
        emit_event(session, "conversation.assigned", {"conversation": conv, "contact": contact(8),
                                                      "assignee": NOBODY, "previous": OLGA}, 8)
    worker.drain()
    assert set(statuses(runtime)) == {"done"}
    deal = emu.records("deals")[0]["properties"]
    assert deal["hubspot_owner_id"] == "41629779"  # the unknown operator left the owner alone
    assert deal["dealstage"] == "closedwon" and deal["utm_source"] == "google"
    comm = emu.records("communications")[0]["properties"]
    assert comm["hubspot_owner_id"] == "41629779" and "by Olga" in comm["hs_communication_body"]


def test_open_deal_is_reused_when_configured(runtime, emu):
    make_connector(runtime, emu, deal_reuse="open_deal")
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(9), "contact": contact(9)}, 9)
        emit_event(session, "conversation.started", {"conversation": conversation(10), "contact": contact(9)}, 10)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.drain()
    assert emu.counts()["deals"] == 1  # two conversations of one contact in one wave: one deal
    with runtime.db.scope() as session:
        emit_event(session, "message.received", {"conversation": conversation(11), "contact": contact(9),
                                                 "message": message(1101)}, 11)
    worker.drain()
    assert emu.counts() == {"contacts": 1, "deals": 1, "notes": 1}
    deal_id = emu.records("deals")[0]["id"]
    emu.move_deal(deal_id, "closedlost")
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(12), "contact": contact(9)}, 12)
    worker.drain()
    assert emu.counts()["deals"] == 2  # the open deal was closed: a new one


def test_messages_not_logged_are_done_without_requests(runtime, emu):
    make_connector(runtime, emu, log_messages="inbound")
    with runtime.db.scope() as session:
        emit_event(session, "message.sent", {"conversation": conversation(13), "contact": contact(13),
                                             "message": message(1301, direction="out", author=OLGA)}, 13)
        emit_event(session, "message.received", {"conversation": conversation(13), "contact": contact(13),
                                                 "message": message(1302)}, 13)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert emu.counts() == {"contacts": 1, "deals": 1, "notes": 1}


def test_revoked_token_waits_and_marks_the_connector_unhealthy(runtime, emu):
    connector_id = make_connector(runtime, emu)
    emu.revoke()
    with runtime.db.scope() as session:
        emit_event(session, "conversation.started", {"conversation": conversation(14), "contact": contact(14)}, 14)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert list(deliveries(runtime).values())[0][0] == "pending"
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        assert record.health == "unhealthy" and "private app token" in record.health_message
        delivery = session.scalars(select(Delivery)).one()
        assert delivery.attempts == 0  # waiting does not use up attempts


def test_refused_property_is_a_dead_letter_naming_it(runtime, emu):
    connector_id = make_connector(runtime, emu, source_properties={"utm_source": "utm_source", "utm_medium": "utm_medium_x"})
    with runtime.db.scope() as session:
        for n in (15, 16, 17):
            source = tracked_link(n) if n == 16 else None
            emit_event(session, "conversation.started", {"conversation": conversation(n, lead_source=source),
                                                         "contact": contact(n)}, n)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    results = sorted(deliveries(runtime).values(), key=lambda r: r[0])
    assert [r[0] for r in results] == ["dead", "done", "done"]
    assert "utm_medium_x" in results[0][1]
    assert emu.counts()["deals"] == 2  # the two good deals went in despite the bad one
    with runtime.db.scope() as session:
        assert "utm_medium_x" in session.get(ConnectorRecord, connector_id).health_message


def test_registered_kind():
    assert registry.get("hubspot").title == "HubSpot"


def test_conflicts_resolve_to_the_existing_records(runtime, emu, monkeypatch):
    """Search lags behind creates (or another worker just created the contact), and a deal
    was created by an attempt whose answer was lost: both 409s resolve, nothing doubles."""
    from connectors.base import HubEvent
    connector = instance(runtime, make_connector(runtime, emu))
    contact_id = emu.add_contact(hub_whatsapp_id=contact(30)["wa_id"], phone="+15550000030")
    with emu.state.lock:
        deal_id = emu.state.new_id()
        emu.state.objects["deals"][deal_id] = {"id": deal_id, "createdAt": "2026-11-25T12:00:00.000Z",
                                               "updatedAt": "2026-11-25T12:00:00.000Z",
                                               "properties": {"dealname": "x", "dealstage": "appointmentscheduled",
                                                              "hub_conversation_id": "30"}}
    monkeypatch.setattr(connector.client, "search", lambda *a, **k: iter(()))
    others = [HubEvent(f"e{n}", "conversation.started", 1, utcnow(),
                       {"conversation": conversation(n), "contact": contact(n)}, f"conversation:{n}") for n in (31, 32)]
    batch = [HubEvent("e30", "conversation.started", 1, utcnow(),
                      {"conversation": conversation(30), "contact": contact(30)}, "conversation:30")] + others
    outcomes = connector.deliver(batch)
    assert [o.status for o in outcomes] == ["done", "done", "done"]
    assert outcomes[0].response["hubspot"] == {"contact": contact_id, "deal": deal_id}
    assert emu.counts()["contacts"] == 3 and emu.counts()["deals"] == 3
    by_endpoint = emu.stats()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/contacts/batch/read"] == 1  # the 409 was resolved by id property
    assert by_endpoint["POST /crm/v3/objects/deals/batch/read"] == 1
