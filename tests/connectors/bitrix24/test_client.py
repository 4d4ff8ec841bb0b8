"""The client against the emulator: auth, envelopes, pages, errors, limits, tokens."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests

from connectors.bitrix24.batching import Call, Ref, execute, plan
from connectors.bitrix24.client import Bitrix24Client
from hub.shared.ratelimit import MemoryBucket
from connectors.bitrix24.errors import AuthFailed, MethodBlocked, MethodError, RateLimited, Transient
from tests.connectors.bitrix24.conftest import oauth_settings, webhook_settings


def utc() -> datetime:
    return datetime.now(timezone.utc)


def client_for(settings, **kw) -> Bitrix24Client:
    return Bitrix24Client(settings, http=requests.Session(), clock=utc, timeout=kw.pop("timeout", 2.0), **kw)


def test_webhook_call_returns_the_envelope(portal):
    envelope = client_for(webhook_settings(portal)).request("profile")
    assert envelope["result"]["ID"] == "1"
    assert {"start", "finish", "duration", "operating_reset_at"} <= set(envelope["time"])


def test_wrong_webhook_code_is_an_auth_failure(portal):
    bad = webhook_settings(portal, webhook_url=f"{portal.base_url}/rest/1/wrongcode/")
    with pytest.raises(AuthFailed) as err:
        client_for(bad).request("profile")
    assert err.value.code == "INVALID_CREDENTIALS" and err.value.status == 401


def test_list_pages_follow_next_and_empty_lists_are_empty(portal):
    client = client_for(webhook_settings(portal))
    assert client.list_all("crm.contact.list", {"filter": {"ORIGINATOR_ID": "nobody"}}) == []
    for start in range(0, 120, 50):
        client.batch([(f"c{n}", "crm.contact.add", {"fields": {"NAME": f"P{n}", "PHONE": [{"VALUE": f"+1555000{n:04d}"}]}})
                      for n in range(start, min(start + 50, 120))])
    first = client.request("crm.contact.list", {"select": ["ID"]})
    assert len(first["result"]) == 50 and first["total"] == 120 and first["next"] == 50
    rows = client.list_all("crm.contact.list", {"select": ["ID", "NAME"], "order": {"ID": "ASC"}})
    assert [r["NAME"] for r in rows] == [f"P{n}" for n in range(120)]


def test_method_errors_carry_code_and_description(portal):
    client = client_for(webhook_settings(portal))
    with pytest.raises(MethodError) as err:
        client.call("crm.deal.get", {"id": 999})
    assert err.value.status == 400 and err.value.description == "Not found"
    with pytest.raises(MethodError) as err:
        client.call("crm.nothing.here")
    assert err.value.code == "ERROR_METHOD_NOT_FOUND"


def test_5xx_and_timeouts_are_transient(portal):
    client = client_for(webhook_settings(portal), timeout=0.3)
    portal.portal.chaos.fail_next.append((500, "INTERNAL_SERVER_ERROR"))
    with pytest.raises(Transient) as err:
        client.call("profile")
    assert err.value.status == 500
    portal.portal.chaos.slow_next.append(1.0)
    with pytest.raises(Transient) as err:
        client.call("profile")
    assert err.value.code == "timeout"


def test_query_limit_exceeded_is_retried_after_holding_the_bucket_back(portal):
    naps, now = [], [0.0]

    def nap(seconds):
        naps.append(seconds)
        now[0] += seconds

    bucket = MemoryBucket(2.0, 49, clock=lambda: now[0], sleep=nap)
    client = client_for(webhook_settings(portal), limiter=lambda *_: bucket)
    portal.portal.chaos.limit_next = 2
    assert client.call("profile")["ID"] == "1"
    assert portal.stats()["rate_limited"] == 2 and len(naps) == 2 and all(n >= 1.0 for n in naps)
    portal.portal.chaos.limit_next = 10
    with pytest.raises(RateLimited):
        client.call("profile")


def test_the_bucket_keeps_a_backlog_under_the_portal_limit():
    """Without sleeping: a bucket like the portal's, a little smaller, never overflows it."""
    from connectors.bitrix24.emulator import Portal

    now = [0.0]
    portal = Portal(rate=2.0, burst=50, clock=lambda: now[0])
    bucket = MemoryBucket(2.0, 49, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    refused = 0
    for _ in range(500):
        bucket.take()
        refused += not portal._admit()
    assert refused == 0
    assert 224 <= now[0] <= 226  # 500 requests: 49 at once, then 2 a second


def test_operation_time_limit_blocks_only_that_method(portal):
    client = client_for(webhook_settings(portal))
    client.call("crm.deal.list")  # learn operating_reset_at
    portal.portal.block_method("crm.deal.list", 30)
    with pytest.raises(MethodBlocked) as err:
        client.call("crm.deal.list")
    assert err.value.retry_at is not None and err.value.retry_at > utc()
    assert client.is_blocked("crm.deal.list")
    assert client.call("crm.contact.list") == []
    sent = portal.stats()["requests"]
    with pytest.raises(MethodBlocked):
        client.call("crm.deal.list")
    assert portal.stats()["requests"] == sent  # not even asked


def test_expired_token_is_refreshed_through_update_settings(portal):
    stored = oauth_settings(portal)
    rotations = []

    def update_settings(fn):
        changes = fn(dict(stored))
        rotations.append(changes)
        stored.update(changes or {})
        return dict(stored)

    client = client_for(dict(stored), update_settings=update_settings)
    old_refresh = stored["refresh_token"]
    portal.portal.expire_access_token()
    assert client.call("profile")["ID"] == "1"
    assert rotations and stored["access_token"] == portal.portal.access_token
    assert stored["refresh_token"] != old_refresh


def test_a_token_another_worker_already_rotated_is_taken_not_refreshed_again(portal):
    stale = oauth_settings(portal)
    portal.portal.expire_access_token()
    p = portal.portal
    # another worker rotated: the stored settings already hold fresh tokens
    status, body = p.oauth_token({"grant_type": "refresh_token", "client_id": p.client_id,
                                  "client_secret": p.client_secret, "refresh_token": stale["refresh_token"]})
    assert status == 200
    stored = {**stale, "access_token": body["access_token"], "refresh_token": body["refresh_token"]}
    client = client_for(dict(stale), update_settings=lambda fn: {**stored, **(fn(dict(stored)) or {})})
    assert client.call("profile")["ID"] == "1"
    assert p.stats.get("refreshes") == 1


def test_revoked_refresh_token_is_an_auth_failure_without_the_secret(portal):
    settings = oauth_settings(portal, refresh_token="revoked-refresh-token")
    portal.portal.expire_access_token()
    with pytest.raises(AuthFailed) as err:
        client_for(settings).call("profile")
    assert "revoked-refresh-token" not in str(err.value) and "reconnect" in str(err.value)


def test_batch_splits_results_and_errors_per_command(portal):
    client = client_for(webhook_settings(portal))
    answer = client.batch([
        ("c", "crm.contact.add", {"fields": {"NAME": "Ana", "PHONE": [{"VALUE": "+15557654321"}]}}),
        ("bad", "crm.contact.add", {"fields": {"LAST_NAME": "", "PHONE": [{"VALUE": "1"}]}}),
        ("d", "crm.deal.add", {"fields": {"TITLE": "Sofa", "CONTACT_ID": "$result[c]"}}),
        ("n", "crm.timeline.comment.add", {"fields": {"ENTITY_ID": "$result[d]", "ENTITY_TYPE": "deal", "COMMENT": "Hi"}}),
        ("list", "crm.deal.list", {"select": ["ID", "CONTACT_ID"]}),
    ])
    assert set(answer.results) == {"c", "d", "n", "list"} and set(answer.errors) == {"bad"}
    assert isinstance(answer.errors["bad"], MethodError)
    assert answer.results["list"] == [{"ID": str(answer.results["d"]), "CONTACT_ID": str(answer.results["c"])}]
    assert answer.totals == {"list": 1}


def test_a_reference_to_a_failed_command_fails_its_dependent(portal):
    client = client_for(webhook_settings(portal))
    answer = client.batch([
        ("d", "crm.deal.add", {"fields": {"TITLE": "x", "CATEGORY_ID": 9}}),
        ("n", "crm.timeline.comment.add", {"fields": {"ENTITY_ID": "$result[d]", "ENTITY_TYPE": "deal", "COMMENT": "Hi"}}),
    ])
    assert set(answer.errors) == {"d", "n"} and not portal.portal.comments


def test_execute_packs_50_a_batch_and_waits_for_non_inline_targets(portal):
    client = client_for(webhook_settings(portal))
    calls = []
    for n in range(30):
        calls.append(Call(f"c{n}", "crm.contact.add", {"fields": {"NAME": f"N{n}", "PHONE": [{"VALUE": f"+1555123{n:04d}"}]}}))
        calls.append(Call(f"d{n}", "crm.deal.add", {"fields": {"TITLE": f"D{n}", "CONTACT_ID": Ref(f"c{n}")}}))
        calls.append(Call(f"m{n}", "crm.timeline.comment.add",
                          {"fields": {"ENTITY_ID": Ref(f"d{n}", inline=True), "ENTITY_TYPE": "deal", "COMMENT": "x"}}))
    # contacts first; each deal then shares a batch with its comment ($result[dN])
    assert [len(b) for b in plan(calls)] == [30, 50, 10]
    run = execute(client, calls)
    assert run.requests == 3 and not run.errors
    assert portal.counts() == {"contacts": 30, "deals": 30, "notes": 30}
    assert all(d["CONTACT_ID"] for d in portal.portal.deals.values())
