"""GA4 mapping fixtures: a hub event in, the Measurement Protocol body out (or the reason
nothing went), one test per fixture."""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.ga4 import Ga4Connector
from connectors.ga4.emulator import validate
from tests.support.analytics import Recording, connector, fixture, fixture_names, hub_event


@pytest.mark.parametrize("name", fixture_names("ga4"))
def test_fixture(name):
    case = fixture("ga4", name)
    http = Recording(204)
    event = hub_event(case["event"])
    sent_at = event.occurred_at + timedelta(minutes=1)  # within GA4's 72 hours back
    [outcome] = connector(Ga4Connector, case["settings"], http, clock=lambda: sent_at).deliver([event])
    if "expected" in case:
        assert outcome.status == "done", outcome.error
        [sent] = http.sent
        query = parse_qs(urlsplit(sent.url).query)
        assert urlsplit(sent.url).path == "/mp/collect"
        assert query == {"measurement_id": [case["settings"]["measurement_id"]],
                         "api_secret": [case["settings"]["api_secret"]]}
        body = json.loads(sent.body)
        assert body == case["expected"]
        assert validate(body) == []  # what the validation server says of it
    elif "skipped" in case:
        assert (outcome.status, outcome.response) == ("done", {"skipped": case["skipped"]}) and http.sent == []
    else:
        assert (outcome.status, outcome.error) == ("dead", case["dead"]) and http.sent == []
