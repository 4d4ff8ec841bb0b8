"""WhatsApp cost beside revenue: per conversation, deal, lead source and UTM campaign,
cost per lead, cost per won deal and ROMI (pure), and through the API."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from connectors.base import ReportDealStage
from hub.crm.commands import execute
from hub.platform.db import utcnow
from hub.models import Conversation, Message
from hub.tracking.costs import Deal, Lead, romi, summarise
from tests.support.tracking import text_message
from tests.support.whatsapp import make_channel, post_signed


def lead(cid, campaign, cost, *deals, source="google"):
    return Lead(cid, {"kind": "tracked_link", "utm_source": source, "utm_campaign": campaign},
                {"USD": Decimal(cost)} if cost else {}, list(deals))


def won(deal_id, amount, currency="USD"):
    return Deal(2, deal_id, "won", Decimal(amount), currency)


def test_per_campaign_cost_per_lead_per_won_deal_and_romi():
    rows = summarise([lead(1, "spring", "0.50", won("a", "100")), lead(2, "spring", "1.50"),
                      lead(3, "autumn", "2", Deal(2, "c", "lost", Decimal("40"), "USD"))], "utm_campaign")
    assert rows == [
        {"key": "autumn", "leads": 1, "deals": 1, "won_deals": 0, "revenue": {}, "cost": {"USD": "2"},
         "cost_per_lead": {"USD": "2"}, "cost_per_won_deal": None, "romi": None},
        {"key": "spring", "leads": 2, "deals": 1, "won_deals": 1, "revenue": {"USD": "100"}, "cost": {"USD": "2"},
         "cost_per_lead": {"USD": "1"}, "cost_per_won_deal": {"USD": "2"}, "romi": 49.0}]


def test_romi_needs_one_currency_on_both_sides():
    assert romi({"USD": Decimal(2)}, {"RUB": Decimal(1000)}) is None
    assert romi({"USD": Decimal(2), "EUR": Decimal(1)}, {"USD": Decimal(10)}) is None
    assert romi({}, {"USD": Decimal(10)}) is None
    assert romi({"USD": Decimal(4)}, {"USD": Decimal(10)}) == 1.5


def test_per_deal_and_per_source_and_per_conversation():
    leads = [lead(1, "spring", "3", won("a", "100"), won("b", "50")), lead(2, "spring", "1", source="yandex")]
    by_deal = summarise(leads, "deal")
    assert [(r["key"], r["cost"], r["revenue"]) for r in by_deal] == [
        ("2:a", {"USD": "3"}, {"USD": "100"}), ("2:b", {"USD": "3"}, {"USD": "50"})]
    assert [(r["key"], r["leads"], r["won_deals"]) for r in summarise(leads, "lead_source")] == [
        ("google", 1, 2), ("yandex", 1, 0)]
    assert [r["key"] for r in summarise(leads, "conversation")] == ["1", "2"]


def test_the_api_sums_billed_messages_and_the_crms_latest_word(client, runtime, admin_headers):
    _, key = make_channel(runtime)
    for wa_id in ("4915100000001", "4915100000002"):
        assert post_signed(client, key, text_message("Hi", wa_id=wa_id)).status_code == 200
    with runtime.db.scope() as session:
        conversations = list(session.scalars(select(Conversation).order_by(Conversation.id)))
        for conv, campaign in zip(conversations, ("spring", "autumn")):
            conv.lead_source = {**conv.lead_source, "utm_source": "google", "utm_campaign": campaign}
            session.add(Message(conversation_id=conv.id, direction="out", type="template", status="delivered",
                                sent_at=utcnow(), cost=Decimal("0.0456"), currency="USD", billable=True))
        ids = [c.id for c in conversations]
        session.flush()
        execute(session, [ReportDealStage(deal_id="1", stage="open", outcome="open", conversation_id=ids[0],
                                          amount="10", currency="USD", idempotency_key="k1"),
                          ReportDealStage(deal_id="1", stage="142", outcome="won", conversation_id=ids[0],
                                          amount="20", currency="USD", idempotency_key="k2")], now=utcnow())
    answer = client.get("/api/v1/tracked-links/costs", query_string={"group_by": "utm_campaign"},
                        headers=admin_headers)
    assert answer.status_code == 200, answer.json
    rows = {r["key"]: r for r in answer.json["rows"]}
    assert rows["spring"]["won_deals"] == 1 and rows["spring"]["revenue"] == {"USD": "20"}
    assert rows["spring"]["cost"] == {"USD": "0.0456"} and rows["spring"]["romi"] == round((20 - 0.0456) / 0.0456, 4)
    assert rows["autumn"]["deals"] == 0 and rows["autumn"]["cost_per_won_deal"] is None
    assert answer.json["total"]["leads"] == 2 and answer.json["total"]["cost"] == {"USD": "0.0912"}


def test_the_api_refuses_an_unknown_grouping_by_name(client, admin_headers):
    answer = client.get("/api/v1/tracked-links/costs", query_string={"group_by": "weather"}, headers=admin_headers)
    assert answer.status_code == 422 and "group_by" in str(answer.json)


def test_per_broadcast_only_its_messages_cost_and_the_deals_of_the_conversations_it_reached(client, runtime,
                                                                                            admin_headers):
    from hub.models import Broadcast, BroadcastRecipient

    channel_id, key = make_channel(runtime)
    for wa_id in ("4915100000001", "4915100000002"):
        assert post_signed(client, key, text_message("Hi", wa_id=wa_id)).status_code == 200
    with runtime.db.scope() as session:
        conversations = list(session.scalars(select(Conversation).order_by(Conversation.id)))
        sale = Broadcast(name="Black Friday", channel_id=channel_id, template_name="sale", template_language="en",
                         created_at=utcnow(), updated_at=utcnow())
        session.add(sale)
        session.flush()
        for conv in conversations:
            sent = Message(conversation_id=conv.id, direction="out", type="template", status="delivered",
                           sent_at=utcnow(), cost=Decimal("0.05"), currency="USD", billable=True)
            other = Message(conversation_id=conv.id, direction="out", type="text", status="delivered",
                            sent_at=utcnow(), cost=Decimal("1"), currency="USD", billable=True)
            session.add_all([sent, other])
            session.flush()
            session.add(BroadcastRecipient(broadcast_id=sale.id, phone=f"+{conv.id}", contact_id=conv.contact_id,
                                           message_id=sent.id, status="delivered", created_at=utcnow(),
                                           updated_at=utcnow()))
        execute(session, [ReportDealStage(deal_id="7", stage="142", outcome="won", conversation_id=conversations[1].id,
                                          amount="1.10", currency="USD")], now=utcnow())
        sale_id = sale.id
    answer = client.get("/api/v1/tracked-links/costs", query_string={"group_by": "broadcast"}, headers=admin_headers)
    assert answer.status_code == 200, answer.json
    [row] = answer.json["rows"]
    assert (row["key"], row["leads"], row["won_deals"], row["cost"], row["revenue"]) == (
        f"{sale_id}: Black Friday", 2, 1, {"USD": "0.1"}, {"USD": "1.1"})
    assert row["cost_per_lead"] == {"USD": "0.05"} and row["romi"] == 10.0
