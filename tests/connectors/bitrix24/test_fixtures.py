"""One test per fixture in tests/fixtures/bitrix24: real-shaped bodies in, our bodies out."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from unittest import mock

import pytest

from connectors.bitrix24 import mapping, phpquery
from connectors.bitrix24.client import Bitrix24Client, command_string
from connectors.bitrix24.settings import Bitrix24Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "bitrix24"
BASE = {"portal_url": "https://some-domain.bitrix24.com", "auth_mode": "webhook",
        "webhook_url": "https://some-domain.bitrix24.com/rest/1/abc123def456/"}


def options(overrides):
    return mapping.Options.from_settings(Bitrix24Settings().load({**BASE, **overrides}))


def load(name):
    return json.loads((FIXTURES / name).read_text())


def names(kind):
    return sorted(p.name for p in FIXTURES.glob("*.json") if load(p.name).get("kind") == kind)


@pytest.mark.parametrize("name", names("contact_fields"))
def test_contact_fields(name):
    case = load(name)
    assert mapping.contact_fields(case["contact"], options(case["settings"])) == case["expected"]


@pytest.mark.parametrize("name", names("entity_fields"))
def test_deal_and_lead_fields(name):
    case = load(name)
    fields = mapping.entity_fields(case["conversation"], case["contact"], case["contact_id"], options(case["settings"]))
    assert fields == case["expected"]


@pytest.mark.parametrize("name", names("comment_text"))
def test_timeline_comment(name):
    case = load(name)
    assert mapping.comment_text(case["message"], case["contact"]) == case["expected"]


@pytest.mark.parametrize("name", names("automation_stage"))
def test_automation_stage_fields(name):
    case = load(name)
    for one in case.get("cases") or [case]:
        assert mapping.automation_stage_fields(one["data"], options(case["settings"])) == one["expected"], one


@pytest.mark.parametrize("name", names("findbycomm"))
def test_findbycomm_answers(name):
    case = load(name)
    assert mapping.found_contact_ids(case["response"]["result"]) == case["expected"]


@pytest.mark.parametrize("name", names("batch_request"))
def test_batch_command_strings(name):
    case = load(name)
    built = {key: command_string(method, params) for key, method, params in case["commands"]}
    assert built == case["expected"]
    # and the portal's parse_str reads back what we meant
    for key, method, params in case["commands"]:
        assert phpquery.parse_query(built[key].split("?", 1)[1]) == json.loads(json.dumps(params), parse_int=str)


@pytest.mark.parametrize("name", names("batch_response"))
def test_batch_response_is_split_per_command(name):
    case = load(name)
    response = mock.Mock(status_code=200, headers={})
    response.json.return_value = case["response"]
    http = mock.Mock()
    http.post.return_value = response
    client = Bitrix24Client(BASE, http=http, clock=lambda: datetime(2024, 8, 29, tzinfo=timezone.utc))
    answer = client.batch([(key, method, {}) for key, method in case["commands"]])
    assert answer.results == case["expected"]["results"]
    assert {k: e.code for k, e in answer.errors.items()} == case["expected"]["errors"]
    sent = http.post.call_args
    assert sent.args[0] == "https://some-domain.bitrix24.com/rest/1/abc123def456/batch.json"
    assert sent.kwargs["json"]["halt"] == 0 and list(sent.kwargs["json"]["cmd"]) == [k for k, _ in case["commands"]]
