"""Report metrics pinned on constructed conversations with known answers; the summary
and the CSV export through the API (both databases)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from hub.platform.db import utcnow
from hub.models import Contact, Conversation, Message, Team
from hub.reports import metrics
from hub.routing.sla import Beat
from hub.models.users import create_user
from tests.support.whatsapp import make_channel

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # a Monday, in the past
OFFICE = metrics.Clock({d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})


def b(minutes, *, inbound=True, human=True):
    return Beat(at=T0 + timedelta(minutes=minutes), inbound=inbound, human=human and not inbound)


def test_a_burst_is_answered_once_and_measured_from_its_last_message():
    beats = [b(0), b(1), b(3), b(5, inbound=False), b(6, inbound=False), b(20), b(22, inbound=False)]
    assert metrics.response_seconds(beats) == [120, 120]
    assert metrics.first_response_seconds(beats) == 120


def test_automated_replies_answer_nothing():
    beats = [b(0), b(1, inbound=False, human=False), b(10, inbound=False)]
    assert metrics.first_response_seconds(beats) == 600
    assert metrics.first_response_seconds([b(0), b(1, inbound=False, human=False)]) is None


def test_an_overnight_wait_counts_business_hours_only():
    friday_1750 = datetime(2026, 12, 4, 17, 50, tzinfo=timezone.utc)
    monday_0905 = datetime(2026, 12, 7, 9, 5, tzinfo=timezone.utc)
    beats = [Beat(friday_1750, True, False), Beat(monday_0905, False, True)]
    assert metrics.first_response_seconds(beats, OFFICE) == 15 * 60
    assert metrics.first_response_seconds(beats) == (monday_0905 - friday_1750).total_seconds()


def test_missed_chats():
    now = T0 + timedelta(hours=2)
    assert metrics.missed([b(0), b(20, inbound=False)], within_seconds=900, now=now)
    assert not metrics.missed([b(0), b(10, inbound=False)], within_seconds=900, now=now)
    assert metrics.missed([b(0)], within_seconds=900, now=now), "still waiting past the limit"
    assert not metrics.missed([b(0)], within_seconds=900, now=T0 + timedelta(minutes=5)), "not yet"
    assert not metrics.missed([b(0, inbound=False)], within_seconds=900, now=now), "we wrote first, no one waits"


def test_resolution_histogram_and_percentiles():
    assert metrics.resolution_seconds(T0, None) is None
    assert metrics.resolution_seconds(T0, T0 + timedelta(hours=1)) == 3600
    assert metrics.histogram([5, 30, 119, 300, 4000]) == {
        "<30 s": 1, "30 s-2 min": 2, "2-5 min": 0, "5-10 min": 1, "10-30 min": 0, "30-60 min": 0, ">1 h": 1}
    assert metrics.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9) == 9
    assert metrics.percentile([], 0.9) is None and metrics.median([1, 3]) == 2


@pytest.fixture
def seeded(runtime):
    """Three conversations on Monday 2026-12-07 and one the week before."""
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        ana = create_user(s, email="ana@example.com", password="correct horse battery", role="operator", now=T0)
        team = Team(name="Sales", strategy="round_robin", time_zone="UTC", hours={}, holidays=[], channel_ids=[],
                    sla={}, created_at=T0, updated_at=T0)
        s.add(team)
        s.flush()

        def conversation(n, opened, messages, *, closed=None, source=None):
            contact = Contact(wa_id=f"1555000{n:04d}", phone=f"+1555000{n:04d}", name=f"Customer {n}",
                              created_at=opened, updated_at=opened)
            s.add(contact)
            s.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id, assignee_id=ana.id,
                             status="closed" if closed else "open", opened_at=opened, closed_at=closed,
                             lead_source=source, created_at=opened, updated_at=opened)
            s.add(c)
            s.flush()
            for minutes, direction, human, cost in messages:
                s.add(Message(conversation_id=c.id, direction=direction, type="text", text="x", status="sent",
                              sent_at=opened + timedelta(minutes=minutes), author_id=ana.id if human else None,
                              cost=cost, currency="USD" if cost is not None else None, payload={}))
            return c.id

        ids = [
            conversation(1, T0, [(0, "in", False, None), (2, "out", True, Decimal("0.0125"))],
                         closed=T0 + timedelta(hours=1), source={"kind": "tracked_link", "utm_source": "google",
                                                                 "utm_campaign": "autumn"}),
            conversation(2, T0 + timedelta(hours=1), [(0, "in", False, None), (1, "out", False, None),
                                                      (30, "out", True, None)]),
            conversation(3, T0 + timedelta(hours=2), [(0, "in", False, None)]),
            conversation(4, T0 - timedelta(days=1), [(0, "in", False, None), (1, "out", True, None)]),
        ]
        return {"ids": ids, "ana": ana.id, "team": team.id}


def test_the_summary_of_a_day_and_the_day_before(client, admin_headers, seeded):
    r = client.get("/api/v1/reports/summary", query_string={"from": "2026-11-30T00:00:00Z",
                                                             "to": "2026-12-01T00:00:00Z"}, headers=admin_headers)
    assert r.status_code == 200, r.json
    f = r.json["figures"]
    assert (f["conversations"], f["closed"], f["answered"], f["missed"]) == (3, 1, 2, 2)
    assert f["first_response_seconds"] == {"count": 2, "median": 960.0, "p90": 1800}
    assert f["response_histogram"]["2-5 min"] == 1 and f["response_histogram"]["10-30 min"] == 0
    assert f["response_histogram"]["30-60 min"] == 1
    assert f["resolution_seconds"]["median"] == 3600
    assert [(o["operator"], o["conversations"], o["replies"]) for o in f["by_operator"]] == [
        ("ana@example.com", 3, 2)]
    assert {"source": "google", "conversations": 1, "deals": 0, "won": 0, "revenue": [],
            "cost": [{"currency": "USD", "amount": "0.012500"}],
            "cost_per_lead": [{"currency": "USD", "amount": "0.012500"}], "cost_per_won_deal": [],
            "romi": None} in f["by_source"]
    assert [(c["campaign"], c["conversations"]) for c in f["by_campaign"]] == [("autumn", 1)]
    assert f["cost"] == [{"currency": "USD", "amount": "0.012500", "per_conversation": "0.004167",
                          "per_won_deal": None}]
    assert r.json["previous"]["conversations"] == 1 and r.json["previous"]["missed"] == 0


def test_the_export_streams_one_row_per_conversation(client, admin_headers, seeded):
    r = client.get("/api/v1/reports/conversations.csv", query_string={
        "from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z", "team_id": seeded["team"]},
        headers=admin_headers)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [int(row["conversation_id"]) for row in table] == seeded["ids"][:3]
    first = table[0]
    assert (first["first_response_seconds"], first["resolution_seconds"], first["missed"], first["utm_source"],
            first["operator"], first["team"]) == ("120", "3600", "False", "google", "ana@example.com", "Sales")
    assert table[2]["first_response_seconds"] == "" and table[2]["missed"] == "True"


@pytest.mark.parametrize("query, field", [
    ({"to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-12-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}, "to"),
    ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}, "to"),
    ({"from": "2026-11-30", "to": "2026-12-01T00:00:00Z"}, "from"),
    ({"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z", "missed_minutes": 0}, "missed_minutes"),
])
def test_bad_periods_are_refused_by_name(client, admin_headers, query, field):
    r = client.get("/api/v1/reports/summary", query_string=query, headers=admin_headers)
    assert r.status_code == 422 and field in r.json["errors"]["query"], r.json


def test_the_xlsx_export_holds_the_same_rows(client, admin_headers, seeded):
    from openpyxl import load_workbook

    r = client.get("/api/v1/reports/conversations.xlsx", query_string={
        "from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, headers=admin_headers)
    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(r.data), read_only=True)["Conversations"]
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:3] == ("conversation_id", "channel", "contact_name")
    assert [row[0] for row in table[1:]] == seeded["ids"][:3]
    assert table[1][9] == 120 and table[1][3] == "+15550000001"


def test_exports_never_hand_a_spreadsheet_a_formula(runtime, client, admin_headers, seeded):
    from openpyxl import load_workbook

    with runtime.db.scope() as session:
        conversation = session.get(Conversation, seeded["ids"][0])
        session.get(Contact, conversation.contact_id).name = '=HYPERLINK("http://evil.test","x")'
    query = {"from": "2026-11-30T00:00:00Z", "to": "2026-12-01T00:00:00Z"}
    table = list(csv.DictReader(io.StringIO(client.get("/api/v1/reports/conversations.csv", query_string=query,
                                                       headers=admin_headers).get_data(as_text=True))))
    assert table[0]["contact_name"].startswith("'=HYPERLINK") and table[0]["contact_phone"] == "+15550000001"
    book = load_workbook(io.BytesIO(client.get("/api/v1/reports/conversations.xlsx", query_string=query,
                                               headers=admin_headers).data))
    cell = book["Conversations"]["C2"]
    assert cell.value.startswith("=HYPERLINK") and cell.data_type == "s", "kept as text, not a formula"
