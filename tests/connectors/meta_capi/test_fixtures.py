"""Meta CAPI mapping fixtures: a hub event in, the /{dataset_id}/events body out (or the
reason nothing went), one test per fixture."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.meta_capi import MetaCapiConnector
from connectors.meta_capi.emulator import check_event
from tests.support.analytics import Recording, connector, fixture, fixture_names, hub_event


@pytest.mark.parametrize("name", fixture_names("meta_capi"))
def test_fixture(name):
    case = fixture("meta_capi", name)
    http = Recording(200, b'{"events_received":1,"messages":[],"fbtrace_id":"A1"}')
    event = hub_event(case["event"])
    [outcome] = connector(MetaCapiConnector, case["settings"], http).deliver([event])
    if "expected" in case:
        assert outcome.status == "done", outcome.error
        [sent] = http.sent
        assert urlsplit(sent.url).path == f"/v21.0/{case['settings']['dataset_id']}/events"
        assert parse_qs(urlsplit(sent.url).query) == {"access_token": [case["settings"]["access_token"]]}
        body = json.loads(sent.body)
        assert body == case["expected"]
        now = event.occurred_at.timestamp()
        assert [check_event(e, i, now) for i, e in enumerate(body["data"])] == [None] * len(body["data"])
        assert "EAAG-emulator-token" not in json.dumps(outcome.response)
    elif "skipped" in case:
        assert (outcome.status, outcome.response) == ("done", {"skipped": case["skipped"]}) and http.sent == []
    else:
        assert (outcome.status, outcome.error) == ("dead", case["dead"]) and http.sent == []
