"""Roistat mapping fixtures: a hub event in, the add-orders body out (or the reason
nothing went), one test per fixture."""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.roistat import RoistatConnector
from tests.support.analytics import Recording, connector, fixture, fixture_names, hub_event


@pytest.mark.parametrize("name", fixture_names("roistat"))
def test_fixture(name):
    case = fixture("roistat", name)
    http = Recording(200, b'{"status": "success"}')
    [outcome] = connector(RoistatConnector, case["settings"], http).deliver([hub_event(case["event"])])
    if "expected" in case:
        assert outcome.status == "done", outcome.error
        [sent] = http.sent
        assert urlsplit(sent.url).path == "/api/v1/project/add-orders"
        assert parse_qs(urlsplit(sent.url).query) == {"project": ["12345"]}
        assert sent.headers["Api-key"] == case["settings"]["api_key"]
        assert json.loads(sent.body) == case["expected"]
    elif "skipped" in case:
        assert (outcome.status, outcome.response) == ("done", {"skipped": case["skipped"]}) and http.sent == []
    else:
        assert (outcome.status, outcome.error) == ("dead", case["dead"]) and http.sent == []
