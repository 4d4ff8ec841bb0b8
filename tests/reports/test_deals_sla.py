"""SLA met %, deals, won deals and revenue per lead source, the funnel and costs per
lead and won deal: each definition of docs/metrics.md pinned on constructed
conversations with known answers, the arithmetic by property tests (both databases)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings, strategies as st

from connectors.base import ReportDealStage
from hub.crm.commands import execute
from hub.models import Contact, Conversation, Message, ReportDeal, Team
from hub.reports import metrics
from hub.reports.deals import ConversationDeals
from hub.reports.rows import Summary
from hub.routing.sla import Beat
from hub.models.users import create_user
from tests.support.whatsapp import make_channel

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # a Monday
OFFICE = metrics.Clock({d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
POLICY = {"first_response_seconds": 300, "next_response_seconds": 600}


def b(minutes, *, inbound=True, human=True):
    return Beat(at=T0 + timedelta(minutes=minutes), inbound=inbound, human=human and not inbound)


def test_sla_met_when_every_wait_ends_within_its_target():
    now = T0 + timedelta(hours=3)
    assert metrics.sla_met(POLICY, [b(0), b(4, inbound=False), b(30), b(39, inbound=False)], closed_at=None,
                           now=now) is True
    assert metrics.sla_met(POLICY, [b(0), b(5, inbound=False)], closed_at=None, now=now) is False, \
        "the first response reached its target"
    assert metrics.sla_met(POLICY, [b(0), b(1, inbound=False), b(10), b(20, inbound=False)], closed_at=None,
                           now=now) is False, "the next response did"
    assert metrics.sla_met(POLICY, [b(0), b(1, inbound=False, human=False), b(6, inbound=False)], closed_at=None,
                           now=now) is False, "a bot's reply stops no clock"


def test_sla_undecided_while_a_clock_runs_under_its_target_or_nothing_is_measured():
    assert metrics.sla_met(POLICY, [b(0)], closed_at=None, now=T0 + timedelta(minutes=2)) is None
    assert metrics.sla_met(POLICY, [b(0)], closed_at=None, now=T0 + timedelta(minutes=6)) is False
    assert metrics.sla_met({}, [b(0), b(1, inbound=False)], closed_at=None, now=T0 + timedelta(hours=1)) is None
    assert metrics.sla_met(POLICY, [b(0, inbound=False)], closed_at=None, now=T0 + timedelta(hours=1)) is None, \
        "the customer never waited"


def test_a_close_stops_the_clocks_and_decides_resolution():
    policy = {"resolution_seconds": 1800}
    beats = [b(0), b(10, inbound=False), b(20), b(25, inbound=False)]  # waits of 10 and 5 minutes
    later = T0 + timedelta(days=2)
    assert metrics.sla_met(policy, beats, closed_at=None, now=later) is None, "open: resolution still running"
    assert metrics.sla_met(policy, beats, closed_at=T0 + timedelta(minutes=30), now=later) is True
    assert metrics.sla_met(policy, [b(0)], closed_at=T0 + timedelta(minutes=20), now=later) is True, \
        "closed while the customer waited 20 minutes: the clock stopped at the close"
    assert metrics.sla_met(policy, [b(0)], closed_at=T0 + timedelta(minutes=31), now=later) is False


def test_sla_counts_business_time_only():
    friday_1758 = datetime(2026, 12, 4, 17, 58, tzinfo=timezone.utc)
    monday_0902 = datetime(2026, 12, 7, 9, 2, tzinfo=timezone.utc)  # four business minutes later
    beats = [Beat(friday_1758, True, False), Beat(monday_0902, False, True)]
    assert metrics.sla_met(POLICY, beats, closed_at=None, now=monday_0902, clock=OFFICE) is True
    assert metrics.sla_met(POLICY, beats, closed_at=None, now=monday_0902) is False, "wall clock: 63 hours"


def _row(*, source: str, deals: int, won: int, amount: str, cost: str, sla: bool | None) -> dict:
    deal = ConversationDeals(deals=deals, won=won)
    if won:
        deal.revenue["RUB"] += Decimal(amount)
    return {"status": "open", "missed": False, "first_response_seconds": None, "_responses": [],
            "resolution_seconds": None, "operator": "", "team": "", "human_replies": 0, "_sla": sla,
            "_deals": deal, "utm_source": source, "lead_kind": "", "utm_campaign": "", "cost": cost,
            "currency": "RUB" if cost else "", "channel": "main", "_cost_by_category": {}}


rows_strategy = st.lists(st.builds(
    lambda source, deals, won, amount, cost, sla: _row(source=source, deals=deals, won=min(won, deals),
                                                       amount=amount, cost=cost, sla=sla),
    st.sampled_from(["google", "yandex", ""]), st.integers(0, 2), st.integers(0, 2),
    st.decimals(0, 10**6, places=2).map(str), st.sampled_from(["", "0.05", "1.25"]),
    st.sampled_from([True, False, None])), max_size=40)


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_sources_add_up_to_the_whole_and_the_funnel_only_narrows(rows):
    total = Summary()
    for row in rows:
        total.add(row)
    f = total.figures()
    assert sum(s["conversations"] for s in f["by_source"]) == f["conversations"] == len(rows)
    assert sum(s["won"] for s in f["by_source"]) == f["won"]
    revenue = sum((Decimal(r["amount"]) for s in f["by_source"] for r in s["revenue"]), Decimal(0))
    assert revenue == sum((sum(r["_deals"].revenue.values(), Decimal(0)) for r in rows), Decimal(0))
    counts = [step["conversations"] for step in f["funnel"]]
    assert counts[0] == len(rows) and counts[2] >= counts[3], "a won deal is a deal"
    decided = [r["_sla"] for r in rows if r["_sla"] is not None]
    assert f["sla"]["decided"] == len(decided) and f["sla"]["met"] == sum(decided)
    if decided:
        assert f["sla"]["percent"] == round(100 * sum(decided) / len(decided), 1)
        assert 0 <= f["sla"]["percent"] <= 100
    else:
        assert f["sla"]["percent"] is None
    cost = sum((Decimal(r["cost"]) for r in rows if r["cost"]), Decimal(0))
    for entry in f["cost"]:
        assert Decimal(entry["amount"]) == cost
        assert abs(Decimal(entry["per_conversation"]) * len(rows) - cost) < Decimal("0.0001") * len(rows)
        assert (entry["per_won_deal"] is None) == (f["won"] == 0)


def _seed(runtime):
    """Monday 2026-11-30: a google lead answered in 2 min (SLA met) that becomes a won
    deal, a google lead answered in 10 min (SLA missed) with an open deal, and a direct
    chat still waiting."""
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        ana = create_user(s, email="ana@example.com", password="correct horse battery", role="operator", now=T0)
        team = Team(name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={"first_response_seconds": 300}, created_at=T0, updated_at=T0)
        s.add(team)
        s.flush()
        ids = []
        for n, (reply, source, cost) in enumerate([(2, {"utm_source": "google", "utm_campaign": "winter"}, "0.50"),
                                                   (10, {"utm_source": "google"}, "0.25"), (None, {}, None)]):
            contact = Contact(wa_id=f"1555000{n:04d}", phone=f"+1555000{n:04d}", name=f"C{n}", created_at=T0,
                              updated_at=T0)
            s.add(contact)
            s.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id, assignee_id=ana.id,
                             status="open", opened_at=T0 + timedelta(minutes=n), lead_source=source, created_at=T0,
                             updated_at=T0)
            s.add(c)
            s.flush()
            s.add(Message(conversation_id=c.id, direction="in", type="text", text="hi", status="received",
                          sent_at=c.opened_at, payload={}))
            if reply is not None:
                s.add(Message(conversation_id=c.id, direction="out", type="text", text="yes", status="sent",
                              sent_at=c.opened_at + timedelta(minutes=reply), author_id=ana.id, payload={},
                              cost=Decimal(cost), currency="RUB", pricing_category="service"))
            ids.append(c.id)
    return ids


def _report(runtime, conversation_id, deal_id, outcome, amount=None, *, at=T0 + timedelta(hours=1)):
    with runtime.db.scope() as s:
        [result] = execute(s, [ReportDealStage(deal_id=deal_id, stage="S", stage_name=f"stage {outcome}",
                                               outcome=outcome, conversation_id=conversation_id, amount=amount,
                                               currency="rub")], now=at, connector_id=None)
        assert result.as_dict()["ok"], result.as_dict()


DAY = {"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def test_deals_reported_by_a_crm_reach_the_summary_per_source(runtime, client, admin_headers):
    won_id, open_id, _waiting = _seed(runtime)
    _report(runtime, won_id, "D1", "open", "1000")
    _report(runtime, won_id, "D1", "won", at=T0 + timedelta(hours=2))  # a stage move without the budget
    _report(runtime, open_id, "D2", "open", "300")
    with runtime.db.scope() as s:
        assert s.query(ReportDeal).count() == 2, "one row per deal, brought up to date"
    f = client.get("/api/v1/reports/summary", query_string=DAY, headers=admin_headers).json["figures"]
    assert (f["deals"], f["won"], f["revenue"]) == (2, 1, [{"currency": "RUB", "amount": "1000.00"}])
    assert [(s["source"], s["conversations"], s["deals"], s["won"]) for s in f["by_source"]] == [
        ("google", 2, 2, 1), ("(direct)", 1, 0, 0)]
    assert f["by_campaign"][0]["revenue"] == [{"currency": "RUB", "amount": "1000.00"}]
    assert [step["conversations"] for step in f["funnel"]] == [3, 2, 2, 1]
    assert f["sla"] == {"met": 1, "decided": 3, "percent": 33.3}, "met, missed, and waiting past 5 min"
    assert f["by_team"][0]["sla"]["percent"] == 33.3
    assert [(c["currency"], Decimal(c["amount"]), Decimal(c["per_conversation"]), Decimal(c["per_won_deal"]))
            for c in f["cost"]] == [("RUB", Decimal("0.75"), Decimal("0.25"), Decimal("0.75"))]
    assert [(c["category"], Decimal(c["amount"])) for c in f["cost_by_category"]] == [("service", Decimal("0.75"))]


def test_the_source_filter_and_the_export_deal_columns(runtime, client, admin_headers):
    won_id, _open_id, waiting_id = _seed(runtime)
    _report(runtime, won_id, "D1", "won", "1000")
    r = client.get("/api/v1/reports/summary", query_string={**DAY, "source": "(direct)"}, headers=admin_headers)
    assert r.status_code == 200 and r.json["figures"]["conversations"] == 1
    table = list(csv.DictReader(io.StringIO(client.get(
        "/api/v1/reports/conversations.csv", query_string={**DAY, "source": "google"},
        headers=admin_headers).get_data(as_text=True))))
    assert len(table) == 2 and waiting_id not in {int(row["conversation_id"]) for row in table}
    first = table[0]
    assert (first["deal_id"], first["deal_stage"], first["deal_outcome"], first["deal_amount"],
            first["deal_currency"], first["sla_met"]) == ("D1", "stage won", "won", "1000.00", "RUB", "True")
    assert table[1]["sla_met"] == "False" and table[1]["deal_id"] == ""
