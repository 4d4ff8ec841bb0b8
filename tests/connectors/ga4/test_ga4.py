"""GA4: once per (deal, goal), retries and refusals, the settings form, the emulator."""
from __future__ import annotations

import json

import pytest
import requests
from marshmallow import ValidationError

from connectors.ga4 import Ga4Connector
from connectors.ga4 import emulator
from tests.support.analytics import Recording, connector, fixture, hub_event
from tests.support.links import MemoryLinks

SETTINGS = {"measurement_id": "G-HUB0000001", "api_secret": "emulator-api-secret-1"}


def won(event_id: str = "evt-1"):
    return hub_event(fixture("ga4", "close_convert_lead_on_won.json")["event"], event_id=event_id)


def test_a_deal_reaches_each_goal_once_whatever_the_crm_repeats():
    http, links = Recording(204), MemoryLinks()
    ga4 = connector(Ga4Connector, {**SETTINGS, "goals": ["won -> close_convert_lead = amount",
                                                         "won -> purchase = amount"]}, http, links)
    first = ga4.deliver([won("evt-1")])
    again = ga4.deliver([won("evt-2"), won("evt-3")])  # won, reopened, won again
    assert first[0].status == "done" and first[0].response["sent"] == ["close_convert_lead", "purchase"]
    assert [o.response for o in again] == [{"skipped": "already sent: close_convert_lead, purchase "
                                                       "(once per deal and goal)"}] * 2
    assert len(http.sent) == 1 and [e["name"] for e in json.loads(http.sent[0].body)["events"]] == \
        ["close_convert_lead", "purchase"]


@pytest.mark.parametrize("status, outcome, words", [
    (503, "retry", "GA4 answered HTTP 503"),
    (429, "retry", "GA4 answered HTTP 429"),
    (401, "dead", "GA4 refused the credentials (HTTP 401)"),
    (400, "dead", "GA4 refused the conversion (HTTP 400)"),
])
def test_failures_retry_or_die_with_a_reason_and_mark_nothing(status, outcome, words):
    links = MemoryLinks()
    [result] = connector(Ga4Connector, SETTINGS, Recording(status), links).deliver([won()])
    assert result.status == outcome and words in result.error
    assert links.links == {}
    [later] = connector(Ga4Connector, SETTINGS, Recording(204), links).deliver([won()])
    assert later.status == "done"


def test_the_api_secret_never_reaches_the_delivery_log():
    [result] = connector(Ga4Connector, SETTINGS, Recording(400, b"bad emulator-api-secret-1")).deliver([won()])
    assert "emulator-api-secret-1" not in json.dumps(result.response) + result.error


def test_connection_errors_are_retried():
    class Down(requests.Session):
        def send(self, *a, **k):
            raise requests.ConnectionError("refused")

    [result] = connector(Ga4Connector, SETTINGS, Down()).deliver([won()])
    assert result.status == "retry" and "could not reach GA4" in result.error


@pytest.mark.parametrize("field, value, words", [
    ("measurement_id", "UA-1234-1", "G-XXXXXXXXXX"),
    ("goals", ["won => purchase"], "line 1"),
    ("goals", ["won -> 1purchase"], "is not a GA4 event name"),
    ("goals", ["first_message -> session_start"], "reserved by GA4"),
    ("currency", "rub", "three-letter"),
])
def test_the_form_refuses_bad_settings_by_field(field, value, words):
    with pytest.raises(ValidationError) as info:
        Ga4Connector.Settings().load({**SETTINGS, field: value})
    assert field in info.value.messages and words in json.dumps(info.value.messages[field], ensure_ascii=False)


def test_emulator_keeps_good_events_and_silently_drops_a_wrong_secret():
    with emulator.serve() as ga:
        good = connector(Ga4Connector, {**SETTINGS, "endpoint": ga.base_url}, requests.Session())
        assert good.check().ok
        assert good.deliver([won()])[0].status == "done"
        wrong = connector(Ga4Connector, {**SETTINGS, "endpoint": ga.base_url, "api_secret": "not-the-secret"},
                          requests.Session())
        assert wrong.deliver([won("evt-9")])[0].status == "done"  # GA4 answers 2xx all the same
        assert [(e["client_id"], e["event"]["name"], e["event"]["params"]["value"]) for e in ga.events()] == \
            [("1234567890.1700000000", "close_convert_lead", 22500.0)]
        assert [d["reason"] for d in ga.dropped] == ["api_secret does not match the stream"]
        other = fixture("ga4", "close_convert_lead_on_won.json")["event"]
        other["data"]["deal"]["id"] = "999"
        ga.fail_next(1, 500)
        assert good.deliver([hub_event(other, event_id="evt-10")])[0].status == "retry"
        assert good.deliver([hub_event(other, event_id="evt-10")])[0].status == "done"
        assert len(ga.events("close_convert_lead")) == 2


def test_check_reports_what_the_validation_server_refuses():
    with emulator.serve() as ga:
        ga.streams.clear()  # the validation server checks bodies only: a made-up refusal of a body
        purchase = connector(Ga4Connector, {**SETTINGS, "endpoint": ga.base_url, "goals": ["won -> purchase"]},
                             requests.Session())
        assert purchase.check().ok  # the sample carries its transaction_id
        huge = connector(Ga4Connector, {**SETTINGS, "endpoint": ga.base_url, "goals": [
            f"stage:s{n} -> goal_{n}" for n in range(26)]}, requests.Session())
        result = huge.check()
    assert not result.ok and "A maximum of 25 events" in result.message


def test_an_event_older_than_72_hours_goes_without_its_time_rather_than_dropped():
    from datetime import timedelta

    event = won()
    http = Recording(204)
    late = connector(Ga4Connector, SETTINGS, http, clock=lambda: event.occurred_at + timedelta(hours=80))
    assert late.deliver([event])[0].status == "done"
    assert "timestamp_micros" not in json.loads(http.sent[0].body)
    http = Recording(204)
    soon = connector(Ga4Connector, SETTINGS, http, clock=lambda: event.occurred_at + timedelta(hours=2))
    soon.deliver([event])
    assert json.loads(http.sent[0].body)["timestamp_micros"] == int(event.occurred_at.timestamp() * 1_000_000)
