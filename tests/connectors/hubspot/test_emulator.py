"""The emulator refuses what HubSpot refuses, so a connector that passes against it is right."""
from __future__ import annotations

import pytest
import requests

from connectors.hubspot import emulator

TOKEN = emulator.Options.token


@pytest.fixture
def hs():
    with emulator.serve(per_10_seconds=250) as handle:
        handle.add_property("deals", "hub_conversation_id", unique=True)
        yield handle


def call(hs, method, path, body=None, token=TOKEN):
    return requests.request(method, hs.base_url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5)


def a(to_id, type_id, category="HUBSPOT_DEFINED"):
    return {"to": {"id": to_id}, "types": [{"associationCategory": category, "associationTypeId": type_id}]}


def contact(hs) -> str:
    return call(hs, "POST", "/crm/v3/objects/contacts/batch/create", {"inputs": [{"properties": {"firstname": "A"}}]}).json()["results"][0]["id"]


def test_unknown_and_read_only_properties(hs):
    r = call(hs, "POST", "/crm/v3/objects/contacts/batch/create",
             {"inputs": [{"properties": {"favourite_colour": "red", "createdate": "2020-01-01"}}]})
    assert r.status_code == 400 and r.json()["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in r.json()["message"] and "READ_ONLY_VALUE" in r.json()["message"]
    assert hs.counts()["contacts"] == 0


def test_association_type_must_fit_the_objects(hs):
    cid = contact(hs)
    good = {"dealname": "x", "dealstage": "appointmentscheduled"}
    wrong = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": good, "associations": [a(cid, 4)]}]})
    assert wrong.status_code == 400 and "association type 4" in wrong.json()["message"]
    user = call(hs, "POST", "/crm/v3/objects/deals/batch/create",
                {"inputs": [{"properties": good, "associations": [a(cid, 3, "USER_DEFINED")]}]})
    assert user.status_code == 400
    missing = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": good, "associations": [a("999", 3)]}]})
    assert missing.status_code == 400
    ok = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": good, "associations": [a(cid, 3)]}]})
    assert ok.status_code == 201
    deal = ok.json()["results"][0]["id"]
    assert hs.associated("contacts", cid, "deals") == {deal: 4}  # both directions exist


def test_batch_limit_and_atomicity(hs):
    over = call(hs, "POST", "/crm/v3/objects/contacts/batch/create", {"inputs": [{"properties": {}}] * 101})
    assert over.status_code == 400 and "100" in over.json()["message"]
    mixed = call(hs, "POST", "/crm/v3/objects/contacts/batch/create",
                 {"inputs": [{"properties": {"firstname": "ok"}}, {"properties": {"lifecyclestage": "nonsense"}}]})
    assert mixed.status_code == 400 and "INVALID_OPTION" in mixed.json()["message"]
    assert hs.counts()["contacts"] == 0


def test_unique_values_conflict_also_inside_one_batch(hs):
    props = {"dealname": "x", "dealstage": "appointmentscheduled", "hub_conversation_id": "7"}
    twice = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": props}, {"properties": props}]})
    assert twice.status_code == 409 and hs.counts()["deals"] == 0
    first = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": props}]}).json()["results"][0]["id"]
    again = call(hs, "POST", "/crm/v3/objects/deals/batch/create", {"inputs": [{"properties": props}]})
    assert again.status_code == 409 and again.json()["message"] == f"Deal already exists. Existing ID: {first}"


def test_stage_must_belong_to_the_pipeline(hs):
    r = call(hs, "POST", "/crm/v3/objects/deals/batch/create",
             {"inputs": [{"properties": {"dealname": "x", "pipeline": "1023456", "dealstage": "closedwon"}}]})
    assert r.status_code == 400 and "INVALID_OPTION" in r.json()["message"]


def test_communications_need_channel_and_logged_from(hs):
    r = call(hs, "POST", "/crm/v3/objects/communications/batch/create",
             {"inputs": [{"properties": {"hs_communication_body": "hi", "hs_timestamp": "2026-11-25T12:00:00Z"}}]})
    assert r.status_code == 400 and "REQUIRED" in r.json()["message"]
    bad = call(hs, "POST", "/crm/v3/objects/communications/batch/create",
               {"inputs": [{"properties": {"hs_communication_channel_type": "TELEGRAM", "hs_communication_logged_from": "CRM"}}]})
    assert bad.status_code == 400 and "INVALID_OPTION" in bad.json()["message"]


def test_search_limits(hs):
    too_many_values = {"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "IN", "values": [str(i) for i in range(101)]}]}]}
    assert call(hs, "POST", "/crm/v3/objects/contacts/search", too_many_values).status_code == 400
    assert call(hs, "POST", "/crm/v3/objects/contacts/search", {"limit": 201}).status_code == 400
    unknown = {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}
    assert call(hs, "POST", "/crm/v3/objects/contacts/search", unknown).status_code == 400


def test_ten_second_window_and_search_limit_answer_like_hubspot():
    with emulator.serve(per_10_seconds=3, search_per_second=1) as hs:
        answers = [call(hs, "GET", "/crm/v3/pipelines/deals") for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
        assert answers[1].headers["X-HubSpot-RateLimit-Remaining"] == "1"
        body = answers[3].json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert hs.stats()["rate_limited"] == 1
    with emulator.serve(per_10_seconds=100, search_per_second=1) as hs:
        first = call(hs, "POST", "/crm/v3/objects/contacts/search", {})
        second = call(hs, "POST", "/crm/v3/objects/contacts/search", {})
        assert first.status_code == 200 and second.status_code == 429
        assert second.json()["policyName"] == "SECONDLY"


def test_properties_api(hs):
    assert call(hs, "GET", "/crm/v3/properties/deals/utm_source").status_code == 404
    definition = {"name": "utm_source", "label": "UTM source", "type": "string", "fieldType": "text", "groupName": "dealinformation"}
    assert call(hs, "POST", "/crm/v3/properties/deals", definition).status_code == 201
    assert call(hs, "POST", "/crm/v3/properties/deals", definition).status_code == 409
    assert call(hs, "POST", "/crm/v3/properties/deals", {**definition, "name": "Bad-Name"}).status_code == 400
    ok = call(hs, "POST", "/crm/v3/objects/deals/batch/create",
              {"inputs": [{"properties": {"dealname": "x", "dealstage": "appointmentscheduled", "utm_source": "google"}}]})
    assert ok.status_code == 201


def test_v4_association_endpoints(hs):
    cid = contact(hs)
    deal = call(hs, "POST", "/crm/v3/objects/deals/batch/create",
                {"inputs": [{"properties": {"dealname": "x", "dealstage": "appointmentscheduled"}}]}).json()["results"][0]["id"]
    wrong = call(hs, "POST", "/crm/v4/associations/deals/contacts/batch/create",
                 {"inputs": [{"from": {"id": deal}, "to": {"id": cid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4}]}]})
    assert wrong.status_code == 400
    right = call(hs, "POST", "/crm/v4/associations/deals/contacts/batch/create",
                 {"inputs": [{"from": {"id": deal}, "to": {"id": cid}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]})
    assert right.status_code == 201
    read = call(hs, "POST", "/crm/v4/associations/deals/contacts/batch/read", {"inputs": [{"id": deal}, {"id": "12"}]})
    assert read.status_code == 207
    assert read.json()["results"][0]["to"][0] == {"toObjectId": int(cid), "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 3, "label": None}]}


def test_unauthenticated_requests_are_refused(hs):
    r = call(hs, "GET", "/crm/v3/owners", token="nope")
    assert r.status_code == 401 and r.json()["category"] == "INVALID_AUTHENTICATION"
