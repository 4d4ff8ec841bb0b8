"""ReportDealStage commands -> deal.stage_changed, joined to the conversation and its lead source."""
from __future__ import annotations

from sqlalchemy import func, select

from connectors.base import ReportDealStage
from hub.crm.commands import execute
from hub.platform.db import utcnow
from hub.models import Conversation, Event
from tests.support.factories import webhook_connector
from tests.support.tracking import text_message
from tests.support.whatsapp import make_channel, post_signed


def conversation_with_source(client, runtime) -> int:
    _, key = make_channel(runtime)
    assert post_signed(client, key, text_message("Hi", wa_id="4915112345678")).status_code == 200
    with runtime.db.scope() as session:
        conv = session.scalars(select(Conversation)).one()
        conv.lead_source = {**conv.lead_source, "utm_campaign": "spring"}
        return conv.id


def run(runtime, commands, connector_id):
    with runtime.db.scope() as session:
        return [r.as_dict() for r in execute(session, commands, now=utcnow(), connector_id=connector_id)]


def stage_events(runtime) -> list[Event]:
    with runtime.db.scope() as session:
        events = list(session.scalars(select(Event).where(Event.type == "deal.stage_changed").order_by(Event.created_at)))
        session.expunge_all()
        return events


def test_a_won_deal_becomes_one_event_with_its_lead_source(client, runtime):
    conv_id = conversation_with_source(client, runtime)
    cid = webhook_connector(runtime, "http://127.0.0.1:9/none")
    won = ReportDealStage(deal_id="25399013", stage="142", outcome="won", conversation_id=conv_id,
                          pipeline="7000001", amount="22 500,5", currency="rub", idempotency_key="amocrm-stage:1:142:t")
    assert run(runtime, [won], cid)[0]["ok"]
    assert run(runtime, [won], cid)[0]["detail"] == "already carried out (amocrm-stage:1:142:t)"
    [event] = stage_events(runtime)
    data = event.data
    assert data["deal"] == {"id": "25399013", "stage": "142", "stage_name": "", "pipeline": "7000001",
                            "outcome": "won", "amount": "22500.50", "currency": "RUB",
                            "changed_at": data["deal"]["changed_at"]}
    assert data["lead_source"]["utm_campaign"] == "spring" and data["conversation"]["id"] == conv_id
    assert data["contact"]["phone"] == "+4915112345678" and data["contact"]["opted_out"] is False
    assert data["crm"] == {"connector_id": cid, "kind": "webhook", "name": "receiver"}
    assert event.ordering_key == f"conversation:{conv_id}"


def test_the_conversation_is_found_by_phone(client, runtime):
    conv_id = conversation_with_source(client, runtime)
    report = ReportDealStage(deal_id="7", stage="C1:LOSE", outcome="lost", phone="+4915112345678")
    assert run(runtime, [report], None)[0]["ok"]
    assert stage_events(runtime)[0].data["conversation"]["id"] == conv_id


def test_refusals_name_the_problem_and_write_nothing(client, runtime):
    conv_id = conversation_with_source(client, runtime)
    cid = webhook_connector(runtime, "http://127.0.0.1:9/none")
    results = run(runtime, [
        ReportDealStage(deal_id="1", stage="x", outcome="won", conversation_id=999_999, idempotency_key="k1"),
        ReportDealStage(deal_id="2", stage="x", outcome="won", conversation_id=conv_id, amount="lots", idempotency_key="k2"),
        ReportDealStage(deal_id="3", stage="x", outcome="maybe", conversation_id=conv_id),  # type: ignore[arg-type]
        ReportDealStage(deal_id="4", stage="x", outcome="won", phone="+10000000000"),
    ], cid)
    assert [r["ok"] for r in results] == [False] * 4
    assert "deal 1 has no WhatsApp conversation" in results[0]["detail"]
    assert "amount 'lots' is not a number" in results[1]["detail"]
    assert "outcome 'maybe'" in results[2]["detail"]
    assert stage_events(runtime) == []
    # a refused key was not spent: the corrected report goes through
    fixed = ReportDealStage(deal_id="2", stage="x", outcome="won", conversation_id=conv_id, amount="10",
                            idempotency_key="k2")
    assert run(runtime, [fixed], cid)[0]["ok"]
    with runtime.db.scope() as session:
        assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "deal.stage_changed")) == 1


def test_a_marketing_opt_out_of_the_consent_model_reaches_the_event(client, runtime):
    from hub.broadcasts.consent import record
    from hub.models import Contact

    conv_id = conversation_with_source(client, runtime)
    with runtime.db.scope() as session:
        contact = session.scalars(select(Contact)).one()
        record(session, contact, "marketing", "opted_out", source="api", at=utcnow(), now=utcnow())
    assert run(runtime, [ReportDealStage(deal_id="9", stage="142", outcome="won", conversation_id=conv_id)], None)[0]["ok"]
    assert stage_events(runtime)[0].data["contact"]["opted_out"] is True


def test_the_contact_keeps_its_latest_stage_per_pipeline(client, runtime):
    from hub.crm import contact_stages
    from hub.models import Contact

    conv_id = conversation_with_source(client, runtime)
    cid = webhook_connector(runtime, "http://127.0.0.1:9/none")
    run(runtime, [ReportDealStage(deal_id="25399013", stage="32001", stage_name="Переговоры", outcome="open",
                                  conversation_id=conv_id, pipeline="7000001")], cid)
    run(runtime, [ReportDealStage(deal_id="25399013", stage="142", stage_name="Успешно реализовано", outcome="won",
                                  conversation_id=conv_id, pipeline="7000001"),
                  ReportDealStage(deal_id="C1:77", stage="C1:NEW", outcome="open", phone="+4915112345678")], cid)
    with runtime.db.scope() as session:
        contact_id = session.scalars(select(Contact.id)).one()
        stages = {s["pipeline"]: (s["stage"], s["stage_name"], s["outcome"], s["deal_id"])
                  for s in contact_stages.of_contact(session, contact_id)}
    assert stages == {"7000001": ("142", "Успешно реализовано", "won", "25399013"),
                      None: ("C1:NEW", "", "open", "C1:77")}
