"""The dashboard, the scheduled report (its e-mail and stored figures) and the API's
summary read their figures from one layer (hub.reports.aggregate): for the same period
and filters they show the same numbers and the same bars (both databases)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from hub.models import ReportRun, ReportSchedule
from hub.reports.runs import produce
from tests.test_admin_reports import DAY, T0, bars, page, seed, tile
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
                                  recipients=["head@example.com"], webhook=False, created_at=T0)
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
