"""The client against the emulator: auth, pagination, errors, limits, empty answers."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import requests

from connectors.hubspot import emulator, emulator_associations
from connectors.hubspot.client import (
    AuthFailed, ClientConfig, Conflict, HubSpotClient, RateLimited, Unavailable, ValidationFailed, bucket_shape,
)
from tests.support.receiver import Receiver, Reply


def now() -> datetime:
    return datetime.now(timezone.utc)


class SpyBucket:
    def __init__(self):
        self.taken = 0
        self.penalties: list[float] = []

    def take(self, tokens: float = 1.0) -> None:
        self.taken += 1

    def try_take(self, tokens: float = 1.0) -> float:
        return 0.0

    def penalise(self, seconds: float) -> None:
        self.penalties.append(seconds)


def client_for(base_url: str, token: str = emulator.Options.token, *, timeout: float = 5.0, search: int = 5,
               limiter=None) -> HubSpotClient:
    return HubSpotClient(ClientConfig(base_url=base_url, token=token, per_10_seconds=250, search_per_second=search),
                         requests.Session(), limiter=limiter, clock=now, timeout=timeout)


@pytest.fixture
def hs():
    with emulator.serve(per_10_seconds=250) as handle:
        handle.add_property("contacts", "hub_whatsapp_id", unique=True)
        yield handle


def test_bucket_never_exceeds_the_rolling_window():
    for per_window in (100, 190, 250):
        rate, burst = bucket_shape(per_window, 10.0)
        assert burst + rate * 10.0 <= per_window
        assert rate * 10.0 >= per_window * 0.95  # and wastes little of it
    rate, burst = bucket_shape(5, 1.0)
    assert burst + rate <= 5


def test_wrong_token_is_auth_failed(hs):
    with pytest.raises(AuthFailed) as exc:
        client_for(hs.base_url, "pat-na1-wrong").account_details()
    assert exc.value.status == 401 and exc.value.category == "INVALID_AUTHENTICATION"
    assert "pat-na1-wrong" not in json.dumps(exc.value.response)


def test_search_follows_pages(hs):
    for i in range(5):
        hs.add_contact(phone=f"+1555000000{i}", firstname=f"N{i}")
    client = client_for(hs.base_url)
    body = {"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "HAS_PROPERTY"}]}],
            "properties": ["phone"], "limit": 2}
    found = list(client.search("contacts", body))
    assert sorted(r["properties"]["phone"] for r in found) == [f"+1555000000{i}" for i in range(5)]
    assert client.requests_made == 3


def test_owners_follow_pages(hs):
    hs.state.owners = [{**hs.state.owners[0], "id": str(1000 + i), "email": f"u{i}@example.com"} for i in range(230)]
    client = client_for(hs.base_url)
    assert len(client.owners()) == 230
    assert client.requests_made == 3


def test_unknown_property_names_the_property(hs):
    with pytest.raises(ValidationFailed) as exc:
        client_for(hs.base_url).batch_create("contacts", [{"properties": {"phone": "+15550000001", "shoe_size": "42"}}])
    assert exc.value.problems[0][:2] == ("shoe_size", "PROPERTY_DOESNT_EXIST")


def test_batches_over_100_are_refused(hs):
    inputs = [{"properties": {"firstname": str(i)}} for i in range(101)]
    with pytest.raises(ValidationFailed) as exc:
        client_for(hs.base_url).batch_create("contacts", inputs)
    assert "maximum number of inputs" in exc.value.message


def test_conflict_names_the_existing_id(hs):
    client = client_for(hs.base_url)
    first = client.batch_create("contacts", [{"properties": {"hub_whatsapp_id": "15550000001"}}])[0]["id"]
    with pytest.raises(Conflict) as exc:
        client.batch_create("contacts", [{"properties": {"hub_whatsapp_id": "15550000001"}}])
    assert exc.value.existing_id == first
    found = client.batch_read("contacts", ["15550000001", "15550000002"], ["hub_whatsapp_id"], id_property="hub_whatsapp_id")
    assert [r["id"] for r in found] == [first]  # 207: the missing one is simply absent


def test_empty_association_lists(hs):
    client = client_for(hs.base_url)
    contact = client.batch_create("contacts", [{"properties": {"firstname": "A"}}])[0]["id"]
    assert client.associated_ids("contacts", "deals", [contact]) == {contact: []}


def test_association_pages_are_followed(hs, monkeypatch):
    monkeypatch.setattr(emulator_associations, "ASSOCIATION_PAGE", 3)
    client = client_for(hs.base_url)
    contact = client.batch_create("contacts", [{"properties": {"firstname": "A"}}])[0]["id"]
    assoc = [{"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}]}]
    deals = client.batch_create("deals", [{"properties": {"dealname": f"d{i}", "dealstage": "appointmentscheduled"},
                                           "associations": assoc} for i in range(7)])
    assert sorted(client.associated_ids("contacts", "deals", [contact])[contact]) == sorted(d["id"] for d in deals)


def test_injected_429_with_retry_after_is_waited_out(hs):
    hs.set_chaos(rate429_rate=0.3, retry_after=0)
    bucket = SpyBucket()
    client = client_for(hs.base_url, limiter=lambda name, rate, burst: bucket)
    for _ in range(6):
        assert client.pipelines()
    assert hs.stats()["injected_429"] > 0
    assert len(bucket.penalties) == hs.stats()["injected_429"]


def test_search_limit_is_its_own_bucket(hs):
    hs.set_chaos(search_per_second=1)
    client = client_for(hs.base_url, search=5)  # configured too high on purpose
    body = {"filterGroups": [{"filters": [{"propertyName": "phone", "operator": "EQ", "value": "+1"}]}], "limit": 1}
    assert list(client.search("contacts", body)) == []
    assert list(client.search("contacts", body)) == []  # refused once with SECONDLY, then waited
    assert hs.stats()["search_rate_limited"] >= 1


def test_daily_limit_is_reported_not_retried():
    body = json.dumps({"status": "error", "message": "You have reached your daily limit.", "errorType": "RATE_LIMIT",
                       "correlationId": "c033cdaa", "policyName": "DAILY"}).encode()
    with Receiver(lambda req, n: Reply(429, body)) as receiver:
        with pytest.raises(RateLimited) as exc:
            client_for(receiver.url).pipelines()
    assert exc.value.daily and len(receiver.requests) == 1


def test_remaining_zero_header_slows_everyone_down():
    headers = {"X-HubSpot-RateLimit-Remaining": "0", "X-HubSpot-RateLimit-Max": "100",
               "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
    bucket = SpyBucket()
    with Receiver(lambda req, n: Reply(200, b'{"results": []}', headers)) as receiver:
        client_for(receiver.url, limiter=lambda name, rate, burst: bucket).pipelines()
    assert bucket.penalties == [0.1]


def test_5xx_and_timeouts_are_unavailable(hs):
    hs.set_chaos(fail_rate=1.0)
    with pytest.raises(Unavailable):
        client_for(hs.base_url).pipelines()
    hs.set_chaos(fail_rate=0.0, timeout_rate=1.0, timeout_seconds=0.5)
    with pytest.raises(Unavailable) as exc:
        client_for(hs.base_url, timeout=0.1).batch_create("contacts", [{"properties": {"firstname": "slow"}}])
    assert "did not answer" in str(exc.value)
