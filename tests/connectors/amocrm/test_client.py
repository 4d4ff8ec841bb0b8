"""The HTTP client against the emulator: auth, pagination, 204, errors, limits."""
from __future__ import annotations

import threading
import pytest
import requests

from connectors.amocrm import errors
from connectors.amocrm.client import AmoClient
from connectors.amocrm.emulator import LONG_LIVED_TOKEN, serve
from connectors.amocrm.oauth import TokenKeeper
from hub.platform.db import utcnow
from hub.platform.ratelimit import TokenBucket


class RecordingLimiter:
    def __init__(self):
        self.taken = 0
        self.penalties: list[float] = []

    def take(self, tokens: float = 1.0) -> None:
        self.taken += 1

    def try_take(self, tokens: float = 1.0) -> float:
        self.taken += 1
        return 0.0

    def penalise(self, seconds: float) -> None:
        self.penalties.append(seconds)


def make_client(amo, *, token=LONG_LIVED_TOKEN, limiter=None, timeout=2.0) -> AmoClient:
    http = requests.Session()
    keeper = TokenKeeper({"base_url": amo.base_url, "long_lived_token": token}, http=http, clock=utcnow,
                         timeout=timeout, update_settings=None)
    return AmoClient(base_url=amo.base_url, http=http, tokens=keeper, limiter=limiter, clock=utcnow,
                     timeout=timeout, sleep=lambda s: None)


@pytest.fixture
def amo():
    with serve(rate_limit=1000) as server:
        yield server


def test_long_lived_token_reads_the_account(amo):
    client = make_client(amo)
    assert client.get("/api/v4/account")["subdomain"] == "emulator"


def test_a_rejected_long_lived_token_is_an_auth_problem(amo):
    client = make_client(amo, token="revoked-or-typo")
    with pytest.raises(errors.AuthProblem, match="long-lived token"):
        client.get("/api/v4/account")
    assert amo.stats()["unauthorized"] == 1


def test_empty_list_is_204_no_content(amo):
    client = make_client(amo)
    assert client.get("/api/v4/leads") is None
    assert client.collect("/api/v4/leads", "leads") == []


def test_pagination_follows_links_next(amo):
    amo.store.add_contacts([{"name": f"C{i}"} for i in range(260)])
    client = make_client(amo)
    before = amo.stats()["requests"]
    got = client.collect("/api/v4/contacts", "contacts")
    assert [c["name"] for c in got] == [f"C{i}" for i in range(260)]
    assert amo.stats()["requests"] - before == 2  # 250 + 10, no third request after the last page
    small = client.collect("/api/v4/contacts", "contacts", {"limit": 100, "query": "C25"})
    assert sorted(c["name"] for c in small) == ["C25"] + [f"C25{i}" for i in range(10)]


def test_validation_errors_name_request_and_path(amo):
    client = make_client(amo)
    with pytest.raises(errors.ValidationFailed) as info:
        client.post("/api/v4/leads/complex", [
            {"name": "ok", "request_id": "a"},
            {"name": "bad", "request_id": "b", "custom_fields_values": [{"field_code": "NOPE", "values": [{"value": 1}]}]},
        ])
    assert info.value.errors == {"b": ["custom_fields_values.0.field_code: The value you selected is not a valid choice."]}
    assert amo.counts()["deals"] == 0  # amoCRM applies a batch all or nothing


def test_complex_takes_at_most_50(amo):
    client = make_client(amo)
    with pytest.raises(errors.ValidationFailed, match="50 elements or less"):
        client.post("/api/v4/leads/complex", [{"name": str(i)} for i in range(51)])


def test_not_found(amo):
    with pytest.raises(errors.NotFound):
        make_client(amo).get("/api/v4/leads/123")


def test_429_empties_the_shared_bucket_and_retries(amo):
    limiter = RecordingLimiter()
    client = make_client(amo, limiter=limiter)
    amo.chaos(rate_limit_rate=1.0)
    with pytest.raises(errors.RateLimited) as info:
        client.get("/api/v4/account")
    assert limiter.penalties == [1.0] * 4  # Retry-After: 1, every answer; 3 retries then give up
    assert info.value.retry_at is not None
    amo.chaos()
    assert client.get("/api/v4/account")["id"]


def test_5xx_retries_reads_but_never_a_post(amo):
    client = make_client(amo)
    amo.chaos(fail_rate=1.0)
    before = amo.stats()["requests"]
    with pytest.raises(errors.Transient) as info:
        client.get("/api/v4/account")
    assert not info.value.ambiguous and amo.stats()["requests"] - before == 3
    before = amo.stats()["requests"]
    with pytest.raises(errors.Transient) as info:
        client.post("/api/v4/leads/complex", [{"name": "x"}])
    assert info.value.ambiguous and amo.stats()["requests"] - before == 1


def test_timeout_of_an_applied_post_is_ambiguous(amo):
    amo.emulator.timeout_delay = 0.6
    client = make_client(amo, timeout=0.3)
    amo.chaos(timeout_rate=1.0)
    with pytest.raises(errors.Transient, match="timed out") as info:
        client.post("/api/v4/leads/complex", [{"name": "x"}])
    assert info.value.ambiguous
    amo.chaos()
    assert amo.counts()["deals"] == 1  # amoCRM did create it: the caller must look before retrying


def test_repeated_abuse_is_blocked_with_403():
    with serve(rate_limit=5, block_after=5, block_seconds=60) as amo:
        client = make_client(amo)  # no limiter: hammering
        seen = set()
        with pytest.raises(errors.AccountBlocked, match="403 Forbidden"):
            for _ in range(100):
                try:
                    client.get("/api/v4/account")
                except errors.RateLimited:
                    seen.add(429)
        assert 429 in seen and amo.stats()["forbidden"] >= 1 and amo.stats()["rate_limited"] >= 5


def test_workers_share_the_7_per_second_limit(runtime):
    """Three threads, each with its own bucket object over the same database row."""
    with serve(rate_limit=7) as amo:
        clients = [make_client(amo, limiter=TokenBucket(runtime.db, "connector:1:api", rate=7, burst=1))
                   for _ in range(3)]
        failures = []

        def work(client):
            try:
                for _ in range(7):
                    client.get("/api/v4/account")
            except Exception as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        assert amo.stats()["rate_limited"] == 0 and amo.stats()["requests"] == 21


def test_problem_json_shapes(amo):
    r = requests.get(amo.base_url + "/api/v4/account", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json() == {"title": "Unauthorized", "type": "https://httpstatus.es/401", "status": 401,
                        "detail": "Unauthorized"}
    r = requests.post(amo.base_url + "/oauth2/access_token", json={"client_id": "x"})
    assert r.status_code == 401 and r.json()["type"] == "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
