"""OAuth apps: code exchange, renewal before expiry and on 401, one refresh for many
workers, revocation (wait, then re-connect), settings errors, no secret anywhere."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import select

from connectors.hubspot import emulator
from connectors.hubspot.errors import AuthFailed, OAuthFailed, Unavailable
from hub.crm.store import InvalidConnector, build_connector, full_settings, update_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord, Delivery
from hub.shared.security import REDACTED
from tests.conftest import ENCRYPTION_KEY
from tests.connectors.hubspot.conftest import make_connector
from tests.connectors.hubspot.events import contact, conversation, emit_conversations, emit_event
from tests.connectors.hubspot.test_sync_e2e import assert_synced, statuses
from tests.support import refresh_process
from tests.support.receiver import Receiver, Reply

OPTIONS = emulator.Options()


def oauth_settings(emu, **overrides: Any) -> dict[str, Any]:
    return {"auth_mode": "oauth", "access_token": "", "client_id": OPTIONS.client_id,
            "client_secret": OPTIONS.client_secret, "redirect_uri": OPTIONS.redirect_uri,
            "authorization_code": emu.issue_code(), **overrides}


def oauth_connector(runtime, emu, **overrides: Any) -> int:
    return make_connector(runtime, emu, **oauth_settings(emu, **overrides))


def instance(runtime, connector_id: int, clock=utcnow):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
    return build_connector(runtime.db, runtime.vault, record, clock=clock, http_timeout=5)


def stored(runtime, connector_id: int) -> tuple[dict[str, Any], ConnectorRecord]:
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        session.expunge(record)
        return full_settings(record, runtime.vault), record


def issued_tokens(emu) -> list[str]:
    with emu.state.lock:
        return list(emu.state.access_tokens) + list(emu.state.refresh_tokens) + list(emu.state.oauth_codes)


# -- the emulator's token endpoint --------------------------------------------------------------
def token_request(emu, **form: str) -> requests.Response:
    return requests.post(emu.base_url + "/oauth/v1/token", data=form, timeout=5)


def test_emulator_codes_are_single_use_and_refresh_tokens_do_not_rotate(emu):
    code = emu.issue_code()
    app = {"client_id": OPTIONS.client_id, "client_secret": OPTIONS.client_secret}
    first = token_request(emu, grant_type="authorization_code", redirect_uri=OPTIONS.redirect_uri, code=code, **app)
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 1800
    again = token_request(emu, grant_type="authorization_code", redirect_uri=OPTIONS.redirect_uri, code=code, **app)
    assert again.status_code == 400 and again.json()["status"] == "BAD_AUTH_CODE"
    refreshed = token_request(emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"], **app).json()
    assert refreshed["refresh_token"] == tokens["refresh_token"]  # HubSpot does not rotate it
    assert refreshed["access_token"] != tokens["access_token"]
    # Both access tokens work until they expire.
    for token in (tokens["access_token"], refreshed["access_token"]):
        assert requests.get(emu.base_url + "/account-info/v3/details", timeout=5,
                            headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("change,status", [
    ({"client_id": "nope"}, "BAD_CLIENT_ID"),
    ({"client_secret": "nope"}, "BAD_CLIENT_SECRET"),
    ({"redirect_uri": "https://elsewhere.example/cb"}, "BAD_REDIRECT_URI"),
    ({"grant_type": "password"}, "BAD_GRANT_TYPE"),
])
def test_emulator_refuses_wrong_app_credentials(emu, change, status):
    form = {"grant_type": "authorization_code", "client_id": OPTIONS.client_id,
            "client_secret": OPTIONS.client_secret, "redirect_uri": OPTIONS.redirect_uri,
            "code": emu.issue_code(), **change}
    answer = token_request(emu, **form)
    assert answer.status_code == 400 and answer.json()["status"] == status


def test_emulator_token_endpoint_takes_only_form_bodies(emu):
    answer = requests.post(emu.base_url + "/oauth/v1/token", timeout=5, json={
        "grant_type": "authorization_code", "client_id": OPTIONS.client_id, "client_secret": OPTIONS.client_secret,
        "redirect_uri": OPTIONS.redirect_uri, "code": emu.issue_code()})
    assert answer.status_code == 400 and answer.json()["status"] == "BAD_GRANT_TYPE"


def test_emulator_expired_token_gets_hubspots_401(emu):
    app = {"client_id": OPTIONS.client_id, "client_secret": OPTIONS.client_secret}
    tokens = token_request(emu, grant_type="authorization_code", redirect_uri=OPTIONS.redirect_uri,
                           code=emu.issue_code(), **app).json()
    emu.expire_access_tokens()
    answer = requests.get(emu.base_url + "/crm/v3/owners", timeout=5,
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    body = answer.json()
    assert answer.status_code == 401 and body["category"] == "EXPIRED_AUTHENTICATION"
    assert body["message"].startswith("The OAuth token used to make this call expired ")
    assert body["context"]["expire time"][0].endswith("Z")
    emu.uninstall()
    gone = token_request(emu, grant_type="refresh_token", refresh_token=tokens["refresh_token"], **app)
    assert gone.status_code == 400 and gone.json()["status"] == "BAD_REFRESH_TOKEN"


# -- settings --------------------------------------------------------------------------------------
@pytest.mark.parametrize("blank,field", [
    ("client_id", "client_id"),
    ("client_secret", "client_secret"),
    ("redirect_uri", "redirect_uri"),
])
def test_oauth_settings_name_the_missing_field(runtime, emu, blank, field):
    with pytest.raises(InvalidConnector) as exc:
        oauth_connector(runtime, emu, **{blank: ""})
    assert list(exc.value.errors) == [field]


def test_an_oauth_connector_without_a_code_is_saved_not_connected_yet(runtime, emu):
    cid = oauth_connector(runtime, emu, authorization_code=None)
    result = instance(runtime, cid).check()
    assert not result.ok and "not connected to HubSpot yet: press Connect with HubSpot" in result.message


def test_settings_refuse_a_bad_redirect_uri_and_a_missing_private_token(runtime, emu):
    with pytest.raises(InvalidConnector) as exc:
        oauth_connector(runtime, emu, redirect_uri="hub.example.com/cb")
    assert list(exc.value.errors) == ["redirect_uri"]
    with pytest.raises(InvalidConnector) as exc:
        make_connector(runtime, emu, access_token="")
    assert list(exc.value.errors) == ["access_token"] and "private app access token" in str(exc.value)


# -- exchange and renewal ----------------------------------------------------------------------------
def test_code_is_exchanged_once_and_the_tokens_stored_encrypted(runtime, emu):
    cid = oauth_connector(runtime, emu)
    connector = instance(runtime, cid)
    result = connector.check()
    assert result.ok, result.message
    settings, record = stored(runtime, cid)
    assert settings["oauth_access_token"] and settings.get("authorization_code") is None
    assert emu.live_refresh_tokens() == [settings["oauth_refresh_token"]]
    assert settings["oauth_expires_at"] >= int(time.time()) + 1800 - 60
    plain = json.dumps(record.settings)
    assert settings["oauth_refresh_token"] not in plain and settings["oauth_access_token"] not in plain
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1
    # Another worker's instance uses the stored token: no second exchange, no refresh.
    other = instance(runtime, cid)
    assert other.check().ok
    assert other.tokens.renewals == 0
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1 and emu.oauth_stats()["oauth_refreshes"] == 0


def test_token_is_refreshed_before_it_expires(runtime, emu):
    cid = oauth_connector(runtime, emu)
    instance(runtime, cid).check()
    later = instance(runtime, cid, clock=lambda: utcnow() + timedelta(seconds=1600))  # 200 s left
    assert later.admin_client.account_details()["portalId"] == emu.state.portal_id
    stats = emu.oauth_stats()
    assert stats["oauth_refreshes"] == 1 and stats["expired_token_rejections"] == 0
    settings, _ = stored(runtime, cid)
    assert settings["oauth_access_token"] == later.tokens.access_token
    assert settings["oauth_refresh_token"] == emu.live_refresh_tokens()[0]


def test_expired_access_token_mid_run_is_renewed_transparently(runtime, emu):
    cid = oauth_connector(runtime, emu)
    emit_conversations(runtime, 200, messages=2)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.run_once()  # the code is exchanged; one claim of 400 deliveries goes through
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1
    emu.expire_access_tokens()
    worker.drain()
    assert statuses(runtime) == {"done": 200 * 3 + 50}
    assert_synced(emu, 200, 2)
    stats = emu.oauth_stats()
    assert stats["oauth_refreshes"] == 1 and stats["expired_token_rejections"] >= 1
    assert emu.stats()["rate_limited"] == 0
    _, record = stored(runtime, cid)
    assert record.health != "unhealthy"


def _race(connectors: list, threads_each: int) -> tuple[list, list]:
    barrier = threading.Barrier(len(connectors) * threads_each)
    results, failures = [], []

    def work(connector):
        barrier.wait()
        try:
            results.append(connector.admin_client.account_details()["portalId"])
        except Exception as exc:  # noqa: BLE001 - asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in connectors for _ in range(threads_each)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, failures


def test_workers_and_threads_refreshing_at_once_refresh_once(runtime, emu):
    cid = oauth_connector(runtime, emu)
    instance(runtime, cid).check()
    emu.expire_access_tokens()
    connectors = [instance(runtime, cid) for _ in range(4)]  # four workers, three threads each
    results, failures = _race(connectors, threads_each=3)
    assert not failures and results == [emu.state.portal_id] * 12
    stats = emu.oauth_stats()
    assert stats["oauth_refreshes"] == 1 and stats["oauth_refused"] == 0
    assert sum(c.tokens.renewals for c in connectors) == 1
    settings, _ = stored(runtime, cid)
    assert {c.tokens.access_token for c in connectors} == {settings["oauth_access_token"]}


@pytest.mark.slow
def test_processes_refreshing_at_once_refresh_once(runtime, emu):
    cid = oauth_connector(runtime, emu)
    instance(runtime, cid).check()
    emu.expire_access_tokens()
    lines = refresh_process.run_at_once("hubspot", runtime, ENCRYPTION_KEY, cid)
    assert [line[0] for line in lines] == [str(emu.state.portal_id)] * 4
    assert sum(int(line[1]) for line in lines) == 1
    assert emu.oauth_stats()["oauth_refreshes"] == 1


# -- revocation and re-connection ------------------------------------------------------------------------
def _emit(runtime, numbers) -> None:
    with runtime.db.scope() as session:
        for n in numbers:
            emit_event(session, "conversation.started", {"conversation": conversation(n), "contact": contact(n)}, n)


def test_revoked_refresh_token_waits_until_a_new_code_is_pasted(runtime, emu):
    cid = oauth_connector(runtime, emu)
    instance(runtime, cid).check()
    emu.uninstall()  # the app is uninstalled: access and refresh tokens die
    _emit(runtime, (21, 22, 23))
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"pending": 3}
    with runtime.db.scope() as session:
        deliveries = list(session.scalars(select(Delivery)))
        assert all(d.attempts == 0 for d in deliveries)  # waiting spends no attempts
        assert "BAD_REFRESH_TOKEN" in deliveries[0].last_error
    _, record = stored(runtime, cid)
    assert record.health == "unhealthy"
    assert "refused the refresh token" in record.health_message and "BAD_REFRESH_TOKEN" in record.health_message
    assert "paste the new authorization code" in record.health_message
    assert emu.counts()["contacts"] == 0
    # The admin installs the app again and pastes the new code: the deliveries go.
    with runtime.db.scope() as session:
        update_connector(session, runtime.vault, session.get(ConnectorRecord, cid), now=utcnow(),
                         settings={"authorization_code": emu.issue_code()})
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"done": 3}
    assert emu.counts() == {"contacts": 3, "deals": 3, "notes": 0}
    settings, record = stored(runtime, cid)
    assert record.health == "ok" and record.health_message.startswith("connected to HubSpot")
    assert settings.get("authorization_code") is None
    assert emu.live_refresh_tokens() == [settings["oauth_refresh_token"]]


def test_wrong_client_secret_names_the_field_and_deliveries_wait(runtime, emu):
    cid = oauth_connector(runtime, emu, client_secret="not-the-secret")
    result = instance(runtime, cid).check()
    assert not result.ok and "BAD_CLIENT_SECRET" in result.message and "client_secret" in result.message
    _emit(runtime, (31,))
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"pending": 1}
    _, record = stored(runtime, cid)
    assert record.health == "unhealthy" and "client_secret" in record.health_message


def test_moving_from_a_private_app_token_to_oauth(runtime, emu):
    cid = make_connector(runtime, emu)
    assert instance(runtime, cid).check().ok
    with runtime.db.scope() as session:
        update_connector(session, runtime.vault, session.get(ConnectorRecord, cid), now=utcnow(),
                         settings={k: v for k, v in oauth_settings(emu).items() if k != "access_token"})
    connector = instance(runtime, cid)
    assert connector.uses_oauth and connector.check().ok
    assert emu.oauth_stats()["oauth_code_exchanges"] == 1
    emu.revoke()  # the old private app token no longer matters
    assert connector.admin_client.account_details()["portalId"] == emu.state.portal_id


# -- secrets -------------------------------------------------------------------------------------------
def test_secrets_never_reach_logs_outcomes_or_health(runtime, emu, caplog):
    caplog.set_level(logging.DEBUG)
    cid = oauth_connector(runtime, emu)
    code = stored(runtime, cid)[0]["authorization_code"]
    _emit(runtime, (41, 42))
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.drain()                      # code exchange
    emu.expire_access_tokens()
    _emit(runtime, (43,))
    worker.drain()                      # refresh on 401
    emu.uninstall()
    _emit(runtime, (44,))
    worker.drain()                      # refused refresh token: waits
    assert statuses(runtime) == {"done": 3, "pending": 1}
    secrets = [OPTIONS.client_secret, code, *issued_tokens(emu)]
    assert len(secrets) >= 5
    with runtime.db.scope() as session:
        recorded = [json.dumps([d.last_error, d.last_response]) for d in session.scalars(select(Delivery))]
    _, record = stored(runtime, cid)
    seen = "\n".join([caplog.text, *recorded, record.health_message or "", json.dumps(record.settings)])
    assert "HubSpot OAuth refresh_token exchange done" in caplog.text
    leaked = [s for s in secrets if s in seen]
    assert not leaked


def test_token_endpoint_answers_echoing_secrets_are_redacted(runtime, emu):
    """Whatever HubSpot's token endpoint says back, a presented secret never reaches the
    exception message or the recorded response."""
    cid = oauth_connector(runtime, emu)
    instance(runtime, cid).check()
    settings, _ = stored(runtime, cid)
    refresh = settings["oauth_refresh_token"]

    def script(request, n):
        form = dict(p.split("=", 1) for p in request.body.decode().split("&"))
        echo = {"status": "BAD_REFRESH_TOKEN", "message": f"unknown refresh token {form.get('refresh_token')} "
                                                          f"for secret {form.get('client_secret')}"}
        return Reply(503 if n == 1 else 400, json.dumps(echo).encode())

    with Receiver(script) as fake:
        with runtime.db.scope() as session:
            record = session.get(ConnectorRecord, cid)
            record.settings = {**record.settings, "base_url": fake.url, "oauth_expires_at": 1}
        connector = instance(runtime, cid)
        with pytest.raises(Unavailable) as first:
            connector.admin_client.account_details()
        with pytest.raises(OAuthFailed) as second:
            connector.admin_client.account_details()
    for exc in (first.value, second.value):
        text = json.dumps([str(exc), exc.message, exc.response])
        assert refresh not in text and OPTIONS.client_secret not in text
    assert REDACTED in second.value.response["body"]  # the echo was there, and was blanked
    assert isinstance(second.value, AuthFailed) and second.value.field == "authorization_code"
