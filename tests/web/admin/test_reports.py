"""The reports page in the admin, pinned on constructed conversations with known answers:
the figures and their comparison with the period before, the bars of the server-drawn
charts, the conversations behind every figure and bar, the exports for a signed-in
user, and bad input refused with a clear 4xx (both databases)."""
from __future__ import annotations

import csv
import html
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from hub.models import Contact, Conversation, Message, Team
from hub.reports.rows import source_of
from hub.models.users import create_user
from hub.web.admin import charts
from hub.web.admin.report_period import preset_days
from hub.web.admin.reports import change, slots
from tests.support.admin import signed_in
from tests.support.whatsapp import make_channel

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)  # a Monday, in the past
DAY = {"from": "2026-11-30", "to": "2026-11-30"}


@pytest.fixture
def seeded(runtime):
    return seed(runtime)


def seed(runtime):
    """Five conversations on Monday 2026-11-30 (two teams and none, two operators and
    none, three sources), two on the Sunday before. Teams have no hours: wall-clock."""
    channel_id, _key = make_channel(runtime)
    with runtime.db.scope() as s:
        ana = create_user(s, email="ana@example.com", password="correct horse battery", role="operator", now=T0)
        bob = create_user(s, email="bob@example.com", password="correct horse battery", role="operator", now=T0)
        teams = {}
        for name in ("Sales", "Support"):
            teams[name] = Team(name=name, strategy="round_robin", time_zone="UTC", hours={}, holidays=[],
                               channel_ids=[], sla={}, created_at=T0, updated_at=T0)
            s.add(teams[name])
        s.flush()

        def conversation(n, opened, messages, *, team=None, who=None, closed=None, source=None):
            contact = Contact(wa_id=f"1555000{n:04d}", phone=f"+1555000{n:04d}", name=f"Customer {n}",
                              created_at=opened, updated_at=opened)
            s.add(contact)
            s.flush()
            c = Conversation(channel_id=channel_id, contact_id=contact.id, team_id=team.id if team else None,
                             assignee_id=who.id if who else None, status="closed" if closed else "open",
                             opened_at=opened, closed_at=closed, lead_source=source, created_at=opened,
                             updated_at=opened)
            s.add(c)
            s.flush()
            for minutes, direction, human in messages:
                s.add(Message(conversation_id=c.id, direction=direction, type="text", text="x", status="sent",
                              sent_at=opened + timedelta(minutes=minutes),
                              author_id=(who or ana).id if human else None, payload={}))
            return c.id

        h = timedelta(hours=1)
        ids = {
            "c1": conversation(1, T0, [(0, "in", False), (2, "out", True)], team=teams["Sales"], who=ana,
                               closed=T0 + h, source={"kind": "tracked_link", "utm_source": "google"}),
            "c2": conversation(2, T0 + h, [(0, "in", False), (1, "out", False), (30, "out", True)],
                               team=teams["Sales"], who=ana),
            "c3": conversation(3, T0 + 2 * h, [(0, "in", False)], team=teams["Sales"], who=ana),
            "c4": conversation(4, T0 + 3 * h, [(0, "in", False), (0.25, "out", True)], team=teams["Support"],
                               who=bob, closed=T0 + 3 * h + timedelta(minutes=10), source={"kind": "tracked_link"}),
            "c5": conversation(5, T0 + 4 * h, [(0, "in", False)]),
            "p1": conversation(6, T0 - 20 * h, [(0, "in", False), (1, "out", True)], team=teams["Sales"], who=ana),
            "p2": conversation(7, T0 - 19 * h, [(0, "in", False)], team=teams["Sales"], who=ana),
        }
        return {"ids": ids, "ana": ana.id, "bob": bob.id, "sales": teams["Sales"].id,
                "support": teams["Support"].id, "channel": channel_id}


@pytest.fixture
def viewer(app, runtime):
    return signed_in(app, runtime, "viewer")


def page(client, url="/admin/reports", **args):
    r = client.get(url, query_string=args)
    return r, r.get_data(as_text=True)


def tile(text, key):
    m = re.search(rf'id="tile-{key}" data-value="([^"]*)" data-previous="([^"]*)">(.*?)</details>', text, re.S)
    assert m, key
    return m.group(1), m.group(2), m.group(3)


def bars(text, chart):
    """(label, value, href) of every bar in one chart's card."""
    start = text.index(f'id="chart-{chart}"')
    block = text[start:text.index("</svg>", start)]
    return [(html.unescape(label), value, html.unescape(href)) for href, label, value in re.findall(
        r'<a href="([^"]*)"><rect class="bar"[^>]*data-label="([^"]*)" data-value="([^"]*)"', block)]


def listed(client, href):
    r = client.get(href)
    assert r.status_code == 200, r.get_data(as_text=True)[:800]
    text = r.get_data(as_text=True)
    count = int(re.search(r'id="drill-count"><strong>(\d+)</strong>', text).group(1))
    ids = [int(i) for i in re.findall(r'data-conversation-id="(\d+)"', text)]
    assert count == len(ids)
    return ids


# -- pure parts -------------------------------------------------------------------------------

def test_change_against_the_previous_period():
    assert change(5, 2, "") == {"arrow": "↑", "text": "↑ 150%", "tone": "neutral"}
    assert change(1, 2, "up")["text"] == "↓ 50%" and change(1, 2, "up")["tone"] == "bad"
    assert change(1, 2, "down")["tone"] == "good"
    assert change(3, 0)["text"] == "—" and change(None, 3)["text"] == "—" and change(3, None)["text"] == "—"
    assert change(2, 2)["text"] == "→ 0%"


def test_presets_and_slots():
    today = date(2026, 12, 7)
    assert preset_days("today", today) == (today, today)
    assert preset_days("7d", today) == (date(2026, 12, 1), today)
    assert preset_days("30d", today) == (date(2026, 11, 8), today)
    assert preset_days("this_month", today) == (date(2026, 12, 1), today)
    assert preset_days("last_month", today) == (date(2026, 11, 1), date(2026, 11, 30))
    assert preset_days("last_month", date(2026, 1, 15)) == (date(2025, 12, 1), date(2025, 12, 31))
    hours, step = slots(T0, T0 + timedelta(days=1))
    assert len(hours) == 24 and step == timedelta(hours=1)
    days, step = slots(T0, T0 + timedelta(days=7))
    assert len(days) == 7 and step == timedelta(days=1)


def test_source_of_a_row():
    assert source_of({"utm_source": "google", "lead_kind": "ad"}) == "google"
    assert source_of({"utm_source": "", "lead_kind": "ad"}) == "ad"
    assert source_of({"utm_source": "", "lead_kind": ""}) == "(direct)"


def test_horizontal_bars_escape_labels_and_scale_to_the_largest():
    svg = str(charts.horizontal_bars([charts.Bar("<script>x</script>", 4, "/a?x=1&y=2"), charts.Bar("b", 2)],
                                     title='T "q"'))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'href="/a?x=1&amp;y=2"' in svg and 'aria-label="T &#34;q&#34;"' in svg
    widths = [float(w) for w in re.findall(r'<rect class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths[0] == 2 * widths[1]
    assert re.findall(r'data-value="(\d+)"', svg) == ["4", "2"]
    assert "style=" not in svg and "<script" not in svg
    assert "—" in str(charts.horizontal_bars([], title="empty"))


def test_columns_one_bar_per_category_on_a_round_axis():
    svg = str(charts.columns([charts.Bar(f"d{i}", v) for i, v in enumerate([0, 3, 7])], title="days"))
    assert re.findall(r'data-label="(d\d)" data-value="(\d+)"', svg) == [("d0", "0"), ("d1", "3"), ("d2", "7")]
    assert ">10</text>" in svg and ">5</text>" in svg  # the axis tops at 10
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" rx="2"', svg)]
    assert heights[0] == 0 and abs(heights[2] / heights[1] - 7 / 3) < 0.01
    assert "style=" not in svg
    assert charts._nice_max(0) == 1 and charts._nice_max(7) == 10 and charts._nice_max(11) == 20
    assert charts._nice_max(300) == 500


# -- the page -----------------------------------------------------------------------------------

def test_the_figures_of_a_day_beside_the_day_before(viewer, seeded):
    r, text = page(viewer, **DAY)
    assert r.status_code == 200, text[:1000]
    assert tile(text, "conversations")[:2] == ("5", "2") and "↑ 150%" in tile(text, "conversations")[2]
    assert tile(text, "closed")[:2] == ("2", "0") and "—" in tile(text, "closed")[2]
    assert tile(text, "answered")[:2] == ("3", "1") and "↑ 200%" in tile(text, "answered")[2]
    value, previous, body = tile(text, "missed")
    assert (value, previous) == ("3", "1") and 'class="change bad"' in body and "↑ 200%" in body
    value, previous, body = tile(text, "first_response")
    assert (float(value), float(previous)) == (120, 60) and "2 minutes" in body and "↑ 100%" in body
    assert float(tile(text, "first_response_p90")[0]) == 1800
    assert float(tile(text, "resolution")[0]) == 2100  # median of 1 h and 10 min
    # the definition beside each figure comes from the one dict
    assert "no human reply within the missed limit" in tile(text, "missed")[2].lower()
    assert text.count("one still waiting counts once that time has passed") == 1


def test_the_charts_hold_the_right_bars(viewer, seeded):
    _r, text = page(viewer, **DAY)
    series = bars(text, "series")
    assert len(series) == 24 and "Conversations per hour" in text
    assert [(label, v) for label, v, _h in series if v != "0"] == [
        ("09:00", "1"), ("10:00", "1"), ("11:00", "1"), ("12:00", "1"), ("13:00", "1")]
    assert [(label, v) for label, v, _h in bars(text, "histogram")] == [
        ("<30 s", "1"), ("30 s-2 min", "0"), ("2-5 min", "1"), ("5-10 min", "0"), ("10-30 min", "0"),
        ("30-60 min", "1"), (">1 h", "0")]
    # most first, ties by name (as the API's summary orders them)
    assert [(label, v) for label, v, _h in bars(text, "operators")] == [
        ("ana@example.com", "3"), ("(unassigned)", "1"), ("bob@example.com", "1")]
    assert [(label, v) for label, v, _h in bars(text, "teams")] == [("Sales", "3"), ("(no team)", "1"),
                                                                    ("Support", "1")]
    assert sorted((label, v) for label, v, _h in bars(text, "sources")) == [
        ("(direct)", "3"), ("google", "1"), ("tracked_link", "1")]
    assert 'style="' not in text[text.index("<svg"):]
    _r, week = page(viewer, **{"from": "2026-11-24", "to": "2026-11-30"})
    days = bars(week, "series")
    assert [label for label, _v, _h in days] == [f"11-{d}" for d in range(24, 31)]
    assert [v for _l, v, _h in days] == ["0"] * 5 + ["2", "5"] and "Conversations per day" in week


def test_every_figure_and_bar_lists_exactly_its_conversations(viewer, seeded):
    ids = seeded["ids"]
    _r, text = page(viewer, **DAY)
    for key in ("conversations", "closed", "answered", "missed"):
        value, _p, body = tile(text, key)
        href = html.unescape(re.search(r'<a class="n" href="([^"]+)"', body).group(1))
        assert len(listed(viewer, href)) == int(value), key
    missed_href = html.unescape(re.search(r'<a class="n" href="([^"]+)"', tile(text, "missed")[2]).group(1))
    assert listed(viewer, missed_href) == [ids["c2"], ids["c3"], ids["c5"]]
    for chart in ("series", "histogram", "operators", "teams", "sources"):
        for label, value, href in bars(text, chart):
            assert len(listed(viewer, href)) == int(value), (chart, label)
    by = {label: href for label, _v, href in bars(text, "operators")}
    assert listed(viewer, by["(unassigned)"]) == [ids["c5"]]
    assert listed(viewer, by["ana@example.com"]) == [ids["c1"], ids["c2"], ids["c3"]]
    assert listed(viewer, {label: h for label, _v, h in bars(text, "histogram")}["<30 s"]) == [ids["c4"]]
    assert listed(viewer, {label: h for label, _v, h in bars(text, "sources")}["(direct)"]) == [
        ids["c2"], ids["c3"], ids["c5"]]
    assert listed(viewer, {label: h for label, _v, h in bars(text, "series")}["12:00"]) == [ids["c4"]]
    # a filter of the page narrows the figures and the drill-down alike
    _r, ana = page(viewer, **DAY, assignee_id=seeded["ana"])
    assert tile(ana, "missed")[:2] == ("2", "1")
    href = html.unescape(re.search(r'<a class="n" href="([^"]+)"', tile(ana, "missed")[2]).group(1))
    assert listed(viewer, href) == [ids["c2"], ids["c3"]]
    _r, support = page(viewer, **DAY, team_id=seeded["support"])
    assert tile(support, "conversations")[:2] == ("1", "0")


def test_presets_pick_the_period(viewer, seeded):
    r, text = page(viewer, period="last_month")
    assert r.status_code == 200
    assert 'class="pill on" href="/admin/reports?period=last_month"' in text
    r, text = page(viewer)
    assert r.status_code == 200 and 'href="/admin/reports?period=7d"' in text


def test_every_role_reads_and_strangers_sign_in_first(app, runtime, client, seeded):
    assert client.get("/admin/reports").status_code in (302, 401)
    assert client.get("/admin/reports/conversations.csv", query_string=DAY).status_code in (302, 401)
    for role in ("admin", "operator"):
        admin = signed_in(app, runtime, role, f"{role}-reader@example.com")
        r = admin.get("/admin/reports", query_string=DAY)
        assert r.status_code == 200 and 'href="/admin/reports"' in r.get_data(as_text=True)


def test_the_exports_carry_the_period_and_filters(viewer, seeded):
    _r, text = page(viewer, **DAY, team_id=seeded["sales"])
    def export(kind):
        form = re.search(rf'<form method="get" action="([^"]+)" class="inline" id="export-{kind}">(.*?)</form>',
                         text, re.S)
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form.group(2)))
        return viewer.get(form.group(1), query_string=fields)

    r = export("csv")
    assert r.status_code == 200 and r.mimetype == "text/csv" and "attachment" in r.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [int(row["conversation_id"]) for row in table] == [seeded["ids"][k] for k in ("c1", "c2", "c3")]
    r = export("xlsx")
    assert r.status_code == 200 and r.data[:2] == b"PK"
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(r.data), read_only=True)["Conversations"]
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        seeded["ids"][k] for k in ("c1", "c2", "c3")]
    assert viewer.get("/admin/reports/conversations.csv", query_string={"from": "x", "to": "2026-11-30"}
                      ).status_code == 400


@pytest.mark.parametrize("args, status, words", [
    ({"from": "2026-13-01", "to": "2026-12-01"}, 400, "is not a date"),
    ({"from": "2026-11-30"}, 400, "Give both dates"),
    ({"from": "2026-12-02", "to": "2026-12-01"}, 422, "must not be after"),
    ({"from": "2025-01-01", "to": "2026-12-01"}, 422, "at most 366 days"),
    ({"period": "yesterday"}, 400, "Unknown period"),
    ({**DAY, "team_id": "999"}, 422, "no team with id 999"),
    ({**DAY, "assignee_id": "abc"}, 400, "is not an id"),
    ({**DAY, "channel_id": "999"}, 422, "no number with id 999"),
    ({**DAY, "missed_minutes": "0"}, 422, "between 1 and 10080"),
    ({**DAY, "missed_minutes": "x"}, 400, "not a number of minutes"),
    ({"start": "yesterday", "end": "2026-12-01T00:00:00Z"}, 400, "not a date and time"),
    ({"start": "2026-12-01T00:00:00Z"}, 400, "not a date and time"),
    ({"from": "2026-11-30", "to": "9999-12-31"}, 422, "out of range"),
    ({"from": "0001-01-01", "to": "0001-01-02"}, 422, "out of range"),
    ({"start": "0001-01-01T00:00:00", "end": "0001-01-02T00:00:00"}, 422, "out of range"),
    ({**DAY, "team_id": "99999999999999999999"}, 400, "is not an id"),
    ({**DAY, "team_id": "²"}, 400, "is not an id"),
    ({**DAY, "missed_minutes": "²"}, 400, "not a number of minutes"),
])
def test_bad_input_is_refused_on_the_page(viewer, seeded, args, status, words):
    r, text = page(viewer, **args)
    assert r.status_code == status, text[:600]
    error = html.unescape(re.search(r'id="report-error"><p>(.*?)</p>', text, re.S).group(1))
    assert words in error
    assert 'name="from"' in text  # the form is still there to correct it


@pytest.mark.parametrize("args, status", [
    ({**DAY, "metric": "revenue"}, 400),
    ({**DAY, "metric": "answered", "bucket": "<1 year"}, 400),
    ({**DAY, "team_id": "nobody"}, 400),
    ({"from": "2026-12-02", "to": "2026-12-01"}, 422),
])
def test_bad_input_is_refused_in_the_drill_down(viewer, seeded, args, status):
    r = viewer.get("/admin/reports/conversations", query_string=args)
    assert r.status_code == status and 'id="report-error"' in r.get_data(as_text=True)


def test_the_page_speaks_russian(viewer, seeded):
    viewer.get("/admin/language/ru?next=/admin/")
    _r, text = page(viewer, **DAY)
    assert "Отчёты" in text and "Диалоги по часам" in text and "Что считается" in text
    assert "(не назначен)" in [label for label, _v, _h in bars(text, "operators")]
    assert "(без команды)" in text and "(прямые)" in text
