"""The dashboard, the scheduled report (its e-mail and stored figures) and the API's
summary read their figures from one layer (hub.reports.aggregate): for the same period
and filters they show the same numbers and the same bars (both databases)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from hub.models import ReportRun, ReportSchedule
from hub.reports.runs import produce
from tests.web.admin.test_reports import DAY, T0, bars, page, seed, tile
from tests.support.admin import signed_in

START = T0.replace(hour=0)
END = START + timedelta(days=1)


def _plain(value):
    return json.loads(json.dumps(value, default=str))


def _api(client, headers, **filters):
    r = client.get("/api/v1/reports/summary", headers=headers,
                   query_string={"from": START.isoformat(), "to": END.isoformat(), **filters})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def _mailed(runtime, **filters):
    """The figures of a daily report of the day, and the e-mail sent with them."""
    sent = []
    with runtime.db.scope() as s:
        schedule = ReportSchedule(name="Daily", frequency="daily", at_time="00:00", time_zone="UTC", filters=filters,
                                  recipients=["head@example.com"], webhook=False,
                                  sections=["templates", "broadcasts"], created_at=T0)  # all the API has
        s.add(schedule)
        s.flush()
        schedule_id = schedule.id
    run_id = produce(runtime, schedule_id, START, END, now=END + timedelta(minutes=1),
                     send_mail=lambda message, settings: sent.append(message))
    with runtime.db.scope() as s:
        stored = s.get(ReportRun, run_id).figures
    (message,) = sent
    return stored, message.get_body(("plain",)).get_content()


@pytest.mark.parametrize("filtered", [False, True])
def test_dashboard_email_and_api_show_the_same_figures(app, client, runtime, admin_headers, filtered):
    seeded = seed(runtime)
    filters = {"team_id": seeded["sales"]} if filtered else {}
    api = _api(client, admin_headers, **filters)
    stored, text = _mailed(runtime, **filters)
    assert _plain(stored["figures"]) == api["figures"]
    assert _plain(stored["previous"]) == api["previous"]
    figures = api["figures"]
    assert figures["conversations"] == (3 if filtered else 5), "the seed is what the test thinks it is"
    assert f"Conversations: {figures['conversations']}" in text
    assert all(f"  {label}: {n}\n" in text for label, n in figures["first_response_histogram"].items())

    viewer = signed_in(app, runtime, "viewer")
    _r, html = page(viewer, **DAY, **filters)
    for key, value in (("conversations", figures["conversations"]), ("closed", figures["closed"]),
                       ("answered", figures["answered"]), ("missed", figures["missed"]),
                       ("first_response", figures["first_response_seconds"]["median"]),
                       ("first_response_p90", figures["first_response_seconds"]["p90"]),
                       ("response", figures["response_seconds"]["median"]),
                       ("resolution", figures["resolution_seconds"]["median"])):
        shown, previous_shown, _body = tile(html, key)
        assert (float(shown) if shown else None) == (None if value is None else float(value)), key
    assert tile(html, "conversations")[1] == str(api["previous"]["conversations"])
    assert {label: int(v) for label, v, _h in bars(html, "histogram")} == figures["first_response_histogram"]
    assert [(label, int(v)) for label, v, _h in bars(html, "operators")] == [
        (o["operator"], o["conversations"]) for o in figures["by_operator"]]
    assert [(label, int(v)) for label, v, _h in bars(html, "teams")] == [
        (t["team"], t["conversations"]) for t in figures["by_team"]]
    assert sum(int(v) for _label, v, _h in bars(html, "series")) == figures["conversations"]


@pytest.mark.parametrize("zone_offset, days", [(timedelta(0), 3), (timedelta(hours=5, minutes=30), 3),
                                               (timedelta(hours=5, minutes=30), 0),
                                               (timedelta(hours=-3, minutes=-45), 1)])
def test_conversations_per_slot_from_the_rollups_equal_those_counted_one_by_one(runtime, zone_offset, days):
    """Slots that start off the UTC hour (a zone half an hour off) take the hours they
    cut from the facts: the counts equal those of the conversations' own start times."""
    from hub.models import Contact, Conversation
    from hub.reports import aggregate, facts
    from hub.reports.grouping import per_slot
    from hub.reports.rows import Filters, rows

    seeded = seed(runtime)
    with runtime.db.scope() as s:  # two more at 10:50 and 18:40 UTC, late in hours a slot boundary cuts
        for n, at in ((8, T0 + timedelta(minutes=110)), (9, T0 + timedelta(hours=9, minutes=40))):
            contact = Contact(wa_id=f"1555100{n:04d}", phone=f"+1555100{n:04d}", name=f"Late {n}", created_at=at,
                              updated_at=at)
            s.add(contact)
            s.flush()
            s.add(Conversation(channel_id=seeded["channel"], contact_id=contact.id, status="open", opened_at=at,
                               created_at=at, updated_at=at))
    start = START - zone_offset  # the local midnight
    # days=0: the local day alone, in hourly slots
    f = Filters(start=start - timedelta(days=1 if days else 0), end=start + timedelta(days=days or 1))
    facts.catch_up(runtime.db, now=END + timedelta(days=3))
    with runtime.db.scope() as s:
        counted = aggregate.per_slot(s, f)
        opened = [datetime.fromisoformat(r["opened_at"]) for r in rows(s, f, now=END + timedelta(days=3))]
    assert len(opened) >= 4, "most of the seed falls in the period"
    assert counted == per_slot(f.start, f.end, opened)
    assert sum(n for _at, n in counted) == len(opened)
