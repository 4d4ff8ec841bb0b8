"""OAuth with single-use refresh tokens: exchange, concurrent refresh, expiry, revocation."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from connectors.amocrm import errors
from hub.crm.store import full_settings, update_connector
from hub.platform.db import utcnow
from hub.crm.worker import Worker
from hub.models import ConnectorRecord
from tests.conftest import ENCRYPTION_KEY
from tests.connectors.amocrm import events as ev
from tests.connectors.amocrm.conftest import (
    add_connector, dead_errors, drain, instance, oauth_settings, statuses,
)
from tests.support import refresh_process


def stored(runtime, connector_id):
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, connector_id)
        return full_settings(record, runtime.vault), record


def test_code_is_exchanged_once_and_the_pair_stored_encrypted(runtime, amo):
    cid = add_connector(runtime, oauth_settings(amo))
    connector = instance(runtime, cid)
    assert connector.check().ok
    settings, record = stored(runtime, cid)
    assert settings["access_token"] and settings["refresh_token"] and settings.get("authorization_code") is None
    assert settings["refresh_token"] in amo.oauth.live_refresh_tokens()
    assert settings["refresh_token"] not in str(record.settings)  # secrets live in secrets_enc only
    assert amo.stats()["oauth_code_exchanges"] == 1
    # A second instance (another worker) uses the stored pair: no second exchange.
    assert instance(runtime, cid).check().ok
    assert amo.stats()["oauth_code_exchanges"] == 1 and amo.stats().get("oauth_refreshes", 0) == 0


def _expire_and_race(runtime, amo, cid, workers: int):
    instance(runtime, cid).check()  # exchange the code
    amo.expire_access_tokens()
    connectors = [instance(runtime, cid) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    results, failures = [], []

    def work(c):
        barrier.wait()
        try:
            results.append(c.client.get("/api/v4/account")["subdomain"])
        except Exception as exc:  # noqa: BLE001 - asserted below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in connectors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return connectors, results, failures


def test_threads_refreshing_at_once_spend_the_refresh_token_once(runtime, amo):
    cid = add_connector(runtime, oauth_settings(amo))
    connectors, results, failures = _expire_and_race(runtime, amo, cid, workers=5)
    assert not failures and results == ["emulator"] * 5
    stats = amo.stats()
    assert stats["oauth_refreshes"] == 1 and stats.get("oauth_dead_refresh_presented", 0) == 0
    assert sum(c.tokens.renewals for c in connectors) == 1
    settings, _ = stored(runtime, cid)
    assert amo.oauth.live_refresh_tokens() == [settings["refresh_token"]]  # never a dead token stored


@pytest.mark.slow
def test_processes_refreshing_at_once_spend_the_refresh_token_once(runtime, amo, tmp_path):
    cid = add_connector(runtime, oauth_settings(amo))
    instance(runtime, cid).check()
    amo.expire_access_tokens()
    lines = refresh_process.run_at_once("amocrm", runtime, ENCRYPTION_KEY, cid)
    assert [line[0] for line in lines] == ["emulator"] * 4
    assert sum(int(line[1]) for line in lines) == 1
    stats = amo.stats()
    assert stats["oauth_refreshes"] == 1 and stats.get("oauth_dead_refresh_presented", 0) == 0
    settings, _ = stored(runtime, cid)
    assert amo.oauth.live_refresh_tokens() == [settings["refresh_token"]]


def test_access_token_expiring_mid_run_is_renewed_transparently(runtime, amo):
    cid = add_connector(runtime, oauth_settings(amo))
    with runtime.db.scope() as session:
        for n in range(100):  # more than one claim (the connector claims 200 a round)
            ev.emit_conversation(session, n, messages=2)
    worker = Worker(runtime.db, runtime.vault, runtime.config)
    worker.run_once()
    amo.expire_access_tokens()
    assert drain(runtime, worker=worker) == {"done": 300}
    assert amo.stats()["oauth_refreshes"] == 1
    assert amo.counts() == {"contacts": 100, "deals": 100, "notes": 200, "contact_notes": 0}


def test_revoked_refresh_token_marks_unhealthy_and_waits_until_reconnected(runtime, amo):
    cid = add_connector(runtime, oauth_settings(amo))
    instance(runtime, cid).check()
    amo.oauth.revoke_all()  # e.g. the integration was disabled in amoCRM
    with runtime.db.scope() as session:
        for n in range(3):
            ev.emit_conversation(session, n, messages=1)
    Worker(runtime.db, runtime.vault, runtime.config).drain()
    assert statuses(runtime) == {"pending": 6} and not dead_errors(runtime)
    _, record = stored(runtime, cid)
    assert record.health == "unhealthy"
    assert "refused the refresh token" in record.health_message and "Token has been revoked" in record.health_message
    assert "paste a new authorization code" in record.health_message
    # The admin re-connects with a fresh code; deliveries go through.
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        update_connector(session, runtime.vault, record, now=utcnow(),
                         settings={"authorization_code": amo.oauth.issue_code()})
    from hub.models import Delivery
    with runtime.db.scope() as session:  # skip the wait instead of sleeping 5 minutes
        for d in session.scalars(select(Delivery)):
            d.next_attempt_at = utcnow()
    assert drain(runtime) == {"done": 6}
    _, record = stored(runtime, cid)
    assert record.health == "ok" and record.health_message.startswith("connected")
    assert amo.counts()["deals"] == 3


def test_bad_client_secret_is_an_auth_problem_not_a_retry_loop(runtime, amo):
    cid = add_connector(runtime, oauth_settings(amo, client_secret="wrong"))
    connector = instance(runtime, cid)
    result = connector.check()
    assert not result.ok and "HTTP 401: Client authentication failed" in result.message
    with pytest.raises(errors.AuthProblem):
        connector.client.get("/api/v4/account")


def test_moving_from_long_lived_token_to_oauth(runtime, amo):
    from tests.connectors.amocrm.conftest import long_lived_settings

    cid = add_connector(runtime, long_lived_settings(amo))
    assert instance(runtime, cid).check().ok
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        update_connector(session, runtime.vault, record, now=utcnow(), settings={
            "client_id": oauth_settings(amo)["client_id"], "client_secret": "emulator-client-secret",
            "redirect_uri": "https://hub.example/oauth/amocrm", "authorization_code": amo.oauth.issue_code()})
    connector = instance(runtime, cid)
    assert connector.check().ok and connector.tokens.uses_oauth
    assert amo.stats()["oauth_code_exchanges"] == 1
