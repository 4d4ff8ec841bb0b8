"""Metrica mapping fixtures: a hub event in, the offline conversions upload out (its CSV
file and query), or the reason nothing went; one test per fixture."""
from __future__ import annotations

import email
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.metrica import MetricaConnector
from connectors.metrica.emulator import parse_csv
from tests.support.analytics import Recording, connector, fixture, fixture_names, hub_event


def multipart_file(prepared) -> str:
    message = email.message_from_bytes(b"Content-Type: " + prepared.headers["Content-Type"].encode() + b"\r\n\r\n"
                                       + prepared.body)
    [part] = [p for p in message.get_payload() if p.get_param("name", header="content-disposition") == "file"]
    return part.get_payload(decode=True).decode()


@pytest.mark.parametrize("name", fixture_names("metrica"))
def test_fixture(name):
    case = fixture("metrica", name)
    http = Recording(200, b'{"uploading": {"id": 1001, "status": "UPLOADED"}}')
    event = hub_event(case["event"])
    [outcome] = connector(MetricaConnector, case["settings"], http).deliver([event])
    if "expected" in case:
        assert outcome.status == "done", outcome.error
        [sent] = http.sent
        url = urlsplit(sent.url)
        assert url.path == f"/management/v1/counter/{case['settings']['counter_id']}/offline_conversions/upload"
        assert {k: v[0] for k, v in parse_qs(url.query).items()} == case["expected"]["query"]
        assert sent.headers["Authorization"] == f"OAuth {case['settings']['oauth_token']}"
        text = multipart_file(sent)
        assert text == case["expected"]["csv"]
        rows, error = parse_csv(text, event.occurred_at.timestamp() + 60, case["expected"]["query"]["type"])
        assert error is None and rows
    elif "skipped" in case:
        assert (outcome.status, outcome.response) == ("done", {"skipped": case["skipped"]}) and http.sent == []
    else:
        assert (outcome.status, outcome.error) == ("dead", case["dead"]) and http.sent == []
