"""One test per fixture in tests/fixtures/hubspot/: real-shaped HubSpot bodies and hub
payloads through the pure mapping functions."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from requests.structures import CaseInsensitiveDict

from connectors.hubspot import mapping, oauth, webhooks
from connectors.hubspot.client import rate_limit_wait

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hubspot"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def run_case(fixture: dict):
    case, data = fixture["case"], fixture["input"]
    if case == "contact_create_input":
        return mapping.contact_create_input(data["contact"], data["id_property"])
    if case == "deal_create_input":
        return mapping.deal_create_input(data["conversation"], data["contact"], data["contact_crm_id"],
                                         data["settings"], data["owner_id"])
    if case == "communication_create_input":
        return mapping.communication_create_input(data["message"], data["contact"], data["contact_crm_id"],
                                                  data["deal_crm_id"], data["owner_id"])
    if case == "results_by_trace":
        return {k: v["id"] for k, v in mapping.results_by_trace(data["results"]).items()}
    if case == "conflict_existing_id":
        return mapping.conflict_existing_id(data)
    if case == "validation_problems":
        return [list(p) for p in mapping.validation_problems(data)]
    if case == "match_contacts":
        return mapping.match_contacts(data["response"]["results"], data["contacts"], "hub_whatsapp_id")
    if case == "closed_stages":
        return sorted(mapping.closed_stages(data["results"]))
    if case == "automation_stage":
        return [mapping.automation_stage_properties(stage, pipeline, data["results"], data["default_pipeline_id"])
                for stage, pipeline in data["moves"]]
    if case == "rate_limit":
        wait, policy, daily = rate_limit_wait(CaseInsensitiveDict(fixture["headers"]), data, 0)
        return {"policy": policy, "daily": daily, "wait": wait}
    if case == "stage_changes":
        changes = webhooks.stage_changes(json.dumps(data).encode())
        return [{"deal_id": c.deal_id, "stage": c.stage} for c in changes]
    if case == "oauth_token_answer":
        when = datetime.fromtimestamp(data["now"], timezone.utc)
        return oauth.tokens_from_answer(data["answer"], when, data["previous_refresh"])
    if case == "oauth_refusal":
        return oauth.refusal(data)
    if case == "expired_token":
        return oauth.expired_token(data)
    raise AssertionError(f"unknown fixture case {case}")


@pytest.mark.parametrize("name", CASES)
def test_fixture(name):
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    assert run_case(fixture) == fixture["expected"]


def test_every_fixture_case_is_known():
    known = {"contact_create_input", "deal_create_input", "communication_create_input", "results_by_trace",
             "conflict_existing_id", "validation_problems", "match_contacts", "closed_stages", "rate_limit",
             "stage_changes", "oauth_token_answer", "oauth_refusal", "expired_token", "automation_stage"}
    assert {json.loads((FIXTURES / f"{n}.json").read_text())["case"] for n in CASES} == known


def test_phone_normalisation():
    assert mapping.e164("+1 (555) 765-4321") == "+15557654321"
    assert mapping.e164("15557654321") == "+15557654321"
    assert mapping.e164("12") is None
    assert mapping.e164(None) is None


def test_contact_without_any_identity_is_refused():
    with pytest.raises(mapping.MappingError):
        mapping.contact_key({"id": 1, "wa_id": None, "user_id": None})


def test_search_body_batches_ids_and_phones():
    contacts = [{"id": i, "wa_id": f"1555000{i:04d}", "phone": f"+1555000{i:04d}"} for i in range(3)]
    body = mapping.contact_search_body(contacts, "hub_whatsapp_id")
    assert [g["filters"][0]["propertyName"] for g in body["filterGroups"]] == ["hub_whatsapp_id", "phone", "mobilephone"]
    assert body["filterGroups"][1]["filters"][0]["values"] == ["+15550000000", "+15550000001", "+15550000002"]
    with pytest.raises(ValueError):
        mapping.contact_search_body(contacts * 40, "hub_whatsapp_id")


def test_message_timestamp_keeps_messages_of_one_second_apart():
    a = {"id": 1001, "timestamp": "2026-11-25T12:00:00Z"}
    b = {"id": 1002, "timestamp": "2026-11-25T12:00:00Z"}
    assert mapping.message_timestamp_ms(a) != mapping.message_timestamp_ms(b)
    assert mapping.timestamp_to_ms(mapping.iso_ms(mapping.message_timestamp_ms(a))) == mapping.message_timestamp_ms(a)
    assert mapping.timestamp_to_ms("1795608000001") == 1795608000001


def test_log_modes():
    inbound, outbound = {"direction": "in"}, {"direction": "out"}
    assert [mapping.should_log(m, "all") for m in (inbound, outbound)] == [True, True]
    assert [mapping.should_log(m, "inbound") for m in (inbound, outbound)] == [True, False]
    assert [mapping.should_log(m, "outbound") for m in (inbound, outbound)] == [False, True]
    assert [mapping.should_log(m, "none") for m in (inbound, outbound)] == [False, False]


def test_deal_name_template_blanks_and_fallback():
    conv = {"id": 9, "opened_at": "2026-11-25T11:59:58Z", "channel": {"name": "Sales"}}
    assert mapping.render_deal_name("{channel} {date}: {contact_name}", conv, {"username": "zed"}) == "Sales 2026-11-25: zed"
    assert mapping.render_deal_name("{phone}", conv, {"wa_id": None}) == "WhatsApp conversation 9"


def test_open_deal_choice():
    deals = [{"id": "1", "createdAt": "2026-01-01", "properties": {"pipeline": "default", "dealstage": "closedwon"}},
             {"id": "2", "createdAt": "2026-02-01", "properties": {"pipeline": "default", "dealstage": "qualifiedtobuy"}},
             {"id": "3", "createdAt": "2026-03-01", "properties": {"pipeline": "other", "dealstage": "x"}}]
    open_ = [d for d in deals if mapping.is_open_deal(d, "default", {"closedwon", "closedlost"})]
    assert mapping.newest(open_)["id"] == "2"
