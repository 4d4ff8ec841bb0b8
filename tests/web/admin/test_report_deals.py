"""The reports page's SLA met %, deals, won deals, funnel and lead-source table, the
source filter, and days that start at the chosen team's local midnight (both databases)."""
from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import pytest

from hub.models import Contact, Conversation, Message, Team
from hub.reports import mail
from tests.support.admin import signed_in
from tests.support.whatsapp import make_channel
from tests.web.admin.test_reports import bars, listed, page, tile
from tests.reports.test_deals_sla import T0, _report, _seed

DAY = {"from": "2026-11-30", "to": "2026-11-30"}


@pytest.fixture
def viewer(app, runtime):
    return signed_in(app, runtime, "viewer")


def cell(row: str, name: str) -> str:
    return re.search(rf'class="[^"]*{name}[^"]*">([^<]*)<', row).group(1)


def lead_row(text: str, source: str) -> str:
    leads = text[text.index('id="report-leads"'):]
    return re.search(rf'<tr data-source="{re.escape(source)}">(.*?)</tr>', leads, re.S).group(1)


def test_a_source_with_cost_and_no_won_deal_shows_its_cost_per_lead_only(viewer, runtime):
    _won_id, open_id, _waiting_id = _seed(runtime)
    _report(runtime, open_id, "D2", "open", "300")
    _r, text = page(viewer, **DAY)
    google = lead_row(text, "google")
    assert (cell(google, "cost-per-lead"), cell(google, "cost-per-won"), cell(google, "romi")) == (
        "0.375000 RUB", "—", "—")


def test_sla_deals_and_the_funnel_on_the_page_with_their_conversations(viewer, runtime):
    won_id, open_id, waiting_id = _seed(runtime)
    _report(runtime, won_id, "D1", "won", "1000")
    _report(runtime, open_id, "D2", "open", "300")
    r, text = page(viewer, **DAY)
    assert r.status_code == 200, text[:800]
    assert tile(text, "sla_met")[0] == "33.3" and "33.3%" in tile(text, "sla_met")[2]
    assert tile(text, "deals")[:2] == ("2", "0") and tile(text, "won")[0] == "1"
    assert "whose clocks are decided" in tile(text, "sla_met")[2]
    for key, expected in (("sla_met", [won_id]), ("deals", [won_id, open_id]), ("won", [won_id])):
        href = html.unescape(re.search(r'<a class="n" href="([^"]+)"', tile(text, key)[2]).group(1))
        assert listed(viewer, href) == expected, key
    funnel = bars(text, "funnel")
    assert [(label, v) for label, v, _h in funnel] == [("Started", "3"), ("Answered", "2"), ("Deal", "2"),
                                                       ("Won", "1")]
    for label, value, href in funnel:
        assert len(listed(viewer, href)) == int(value), label
    leads = text[text.index('id="report-leads"'):]
    google = re.search(r'<tr data-source="google">(.*?)</tr>', leads, re.S).group(1)
    assert re.findall(r">(\d+)</a>", google) == ["2", "2", "1"] and "1000.00 RUB" in google
    assert (cell(google, "cost-per-lead"), cell(google, "cost-per-won"), cell(google, "romi")) == (
        "0.375000 RUB", "0.750000 RUB", "133233.3%")
    direct_row = lead_row(text, "(direct)")
    assert (cell(direct_row, "cost-per-lead"), cell(direct_row, "cost-per-won"), cell(direct_row, "romi")) == (
        "—", "—", "—")  # nothing billed, nothing won: nothing to divide
    total = re.search(r'<tr class="total">(.*?)</tr>', leads, re.S).group(1)
    assert (cell(total, "cost-per-lead"), cell(total, "cost-per-won"), cell(total, "romi")) == (
        "0.250000 RUB", "0.750000 RUB", "133233.3%")
    winter = re.search(r'<tr data-campaign="winter">(.*?)</tr>', text, re.S).group(1)
    assert re.findall(r'class="num">(\d+)<', winter) == ["1", "1", "1"] and "1000.00 RUB" in winter
    assert (cell(winter, "cost-per-lead"), cell(winter, "cost-per-won"), cell(winter, "romi")) == (
        "0.500000 RUB", "0.500000 RUB", "199900.0%")
    _r, direct = page(viewer, **DAY, source="(direct)")
    assert tile(direct, "conversations")[0] == "1" and tile(direct, "deals")[0] == "0"
    href = html.unescape(re.search(r'<a class="n" href="([^"]+)"', tile(direct, "conversations")[2]).group(1))
    assert listed(viewer, href) == [waiting_id]


def test_a_bad_source_is_refused_on_the_page(viewer, runtime):
    r, text = page(viewer, **DAY, source="a\x01b")
    assert r.status_code == 400 and "is not a source name" in text


def test_a_teams_day_starts_at_its_local_midnight(viewer, runtime):
    """20:00 UTC on 30 November is already 1 December in Yekaterinburg (UTC+5)."""
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        team = Team(name="Urals", strategy="round_robin", time_zone="Asia/Yekaterinburg", hours={}, holidays=[],
                    channel_ids=[], sla={}, created_at=T0, updated_at=T0)
        contact = Contact(wa_id="15550009999", phone="+15550009999", name="Late", created_at=T0, updated_at=T0)
        s.add_all([team, contact])
        s.flush()
        late = datetime(2026, 11, 30, 20, 0, tzinfo=timezone.utc)
        c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id, status="open",
                         opened_at=late, lead_source={}, created_at=late, updated_at=late)
        s.add(c)
        s.flush()
        s.add(Message(conversation_id=c.id, direction="in", type="text", text="hi", status="received", sent_at=late,
                      payload={}))
        team_id = team.id
    _r, utc = page(viewer, **DAY)
    assert tile(utc, "conversations")[0] == "1" and "days in UTC" in utc
    _r, urals = page(viewer, **DAY, team_id=team_id)
    assert tile(urals, "conversations")[0] == "0" and "days in Asia/Yekaterinburg" in urals
    _r, next_day = page(viewer, **{"from": "2026-12-01", "to": "2026-12-01"}, team_id=team_id)
    assert tile(next_day, "conversations")[0] == "1"
    series = [(label, v) for label, v, _h in bars(next_day, "series") if v != "0"]
    assert series == [("01:00", "1")], "slots are the team's hours"


def test_the_report_mail_carries_sla_deals_and_lead_sources(runtime):
    figures = {"conversations": 3, "sla": {"percent": 33.3}, "deals": 2, "won": 1,
               "revenue": [{"currency": "RUB", "amount": "1000.00"}], "cost": [{"currency": "RUB", "amount": "0.75"}],
               "by_source": [{"source": "google", "conversations": 2, "deals": 2, "won": 1,
                              "revenue": [{"currency": "RUB", "amount": "1000.00"}], "cost": []}],
               "funnel": [{"stage": "started", "conversations": 3}, {"stage": "won", "conversations": 1}]}
    message = mail.build(name="Weekly", period="p", figures=figures, previous={"sla": {"percent": 50.0}},
                         sender="hub@example.com", recipients=["boss@example.com"], attachment=b"x",
                         attachment_name="x.csv")
    text = message.get_body(("plain",)).get_content()
    assert "SLA met: 33.3% (before: 50.0%)" in text and "Won deals: 1 (before: -)" in text
    assert "Revenue: 1000.00 RUB" in text and "  google: 2, 2, 1, 1000.00 RUB, -" in text
    assert "  won: 1" in text
    body = message.get_body(("html",)).get_content()
    assert "<h3>Lead sources</h3>" in body and "1000.00 RUB" in body
