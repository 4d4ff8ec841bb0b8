"""REST API: authentication, connectors, deliveries, OpenAPI."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.platform.db import utcnow
from hub.events.outbox import emit
from hub.models import ConnectorRecord, Delivery
from tests.support.factories import SECRET
from tests.support.receiver import Receiver, Reply


def count(runtime, model):
    with runtime.db.scope() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_api_requires_a_valid_token(client, admin_headers):
    assert client.get("/api/v1/connectors").status_code == 401
    r = client.get("/api/v1/connectors", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and "invalid or revoked" in r.json["message"]
    assert client.get("/api/v1/connectors", headers=admin_headers).status_code == 200


def test_revoked_token_is_refused(client, runtime, admin_headers):
    from hub.models import ApiToken

    with runtime.db.scope() as session:
        session.scalars(select(ApiToken)).one().revoked_at = utcnow()
    assert client.get("/api/v1/connectors", headers=admin_headers).status_code == 401


def test_openapi_document_is_served(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json
    assert "/api/v1/connectors" in spec["paths"]
    assert "/api/v1/deliveries/replay" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_kinds_describe_the_settings_form(client, admin_headers):
    kinds = {k["kind"]: k for k in client.get("/api/v1/connectors/kinds", headers=admin_headers).json}
    fields = {f["name"]: f for f in kinds["webhook"]["fields"]}
    assert fields["secret"]["secret"] is True and fields["url"]["required"] is True
    assert fields["url"]["label"] == "Endpoint URL"


def test_create_read_update_connector_never_shows_secrets(client, admin_headers, runtime):
    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://example.com/h", "secret": SECRET}}
    r = client.post("/api/v1/connectors", json=body, headers=admin_headers)
    assert r.status_code == 201, r.json
    assert SECRET not in r.get_data(as_text=True)
    assert r.json["secrets_set"] == ["secret"]
    assert r.json["webhook_url"].startswith("http://hub.test/webhooks/connectors/")
    cid = r.json["id"]
    with runtime.db.scope() as session:
        stored = session.get(ConnectorRecord, cid)
        assert SECRET not in str(stored.settings) and SECRET not in stored.secrets_enc
    # A blank secret keeps the stored one.
    r = client.patch(f"/api/v1/connectors/{cid}", json={"settings": {"url": "https://example.com/new", "secret": ""}},
                     headers=admin_headers)
    assert r.status_code == 200, r.json
    assert r.json["settings"]["url"] == "https://example.com/new"
    with runtime.db.scope() as session:
        assert runtime.vault.decrypt(session.get(ConnectorRecord, cid).secrets_enc)["secret"] == SECRET
    listed = client.get("/api/v1/connectors", headers=admin_headers)
    assert SECRET not in listed.get_data(as_text=True)


def test_invalid_settings_are_explained_and_nothing_saved(client, admin_headers, runtime):
    body = {"kind": "webhook", "name": "app", "settings": {"url": "ftp://x", "secret": "short"}}
    r = client.post("/api/v1/connectors", json=body, headers=admin_headers)
    assert r.status_code == 422
    errors = r.json["errors"]["json"]["settings"]
    assert "url" in errors and "secret" in errors
    assert "16 characters" in " ".join(errors["secret"])
    assert count(runtime, ConnectorRecord) == 0


def test_unknown_kind_and_duplicate_name(client, admin_headers, runtime):
    r = client.post("/api/v1/connectors", json={"kind": "salesforce", "name": "x", "settings": {}},
                    headers=admin_headers)
    assert r.status_code == 422 and "unknown connector kind 'salesforce'" in r.json["message"]
    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://e.com", "secret": SECRET}}
    assert client.post("/api/v1/connectors", json=body, headers=admin_headers).status_code == 201
    r = client.post("/api/v1/connectors", json=body, headers=admin_headers)
    assert r.status_code == 422 and "already exists" in r.json["message"]
    assert count(runtime, ConnectorRecord) == 1


def test_unknown_event_type_filter_is_refused(client, admin_headers):
    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://e.com", "secret": SECRET},
            "event_types": ["message.teleported"]}
    r = client.post("/api/v1/connectors", json=body, headers=admin_headers)
    assert r.status_code == 422 and "event_types" in r.json["errors"]["json"]


def test_viewer_reads_but_cannot_write(client, admin_headers, viewer_headers):
    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://e.com", "secret": SECRET}}
    r = client.post("/api/v1/connectors", json=body, headers=viewer_headers)
    assert r.status_code == 403 and "admin" in r.json["message"]
    cid = client.post("/api/v1/connectors", json=body, headers=admin_headers).json["id"]
    r = client.get(f"/api/v1/connectors/{cid}", headers=viewer_headers)
    assert r.status_code == 200 and "webhook_url" not in r.json
    assert client.post(f"/api/v1/connectors/{cid}/check", headers=viewer_headers).status_code == 403


def test_check_connection_records_health(client, admin_headers):
    with Receiver() as rx:
        body = {"kind": "webhook", "name": "app", "settings": {"url": rx.url, "secret": SECRET}}
        cid = client.post("/api/v1/connectors", json=body, headers=admin_headers).json["id"]
        r = client.post(f"/api/v1/connectors/{cid}/check", headers=admin_headers)
    assert r.status_code == 200 and r.json["ok"] is True
    assert rx.requests[0].json()["type"] == "ping"
    assert client.get(f"/api/v1/connectors/{cid}", headers=admin_headers).json["health"] == "ok"
    with Receiver(lambda req, n: Reply(401)) as rx:
        client.patch(f"/api/v1/connectors/{cid}", json={"settings": {"url": rx.url}}, headers=admin_headers)
        r = client.post(f"/api/v1/connectors/{cid}/check", headers=admin_headers)
    assert r.json["ok"] is False and "HTTP 401" in r.json["message"]
    got = client.get(f"/api/v1/connectors/{cid}", headers=admin_headers).json
    assert got["health"] == "unhealthy"


def test_deliveries_list_show_counts_and_replay(client, admin_headers, runtime):
    with Receiver(lambda req, n: Reply(400)) as rx:
        body = {"kind": "webhook", "name": "app", "settings": {"url": rx.url, "secret": SECRET}}
        client.post("/api/v1/connectors", json=body, headers=admin_headers)
        with runtime.db.scope() as session:
            emit(session, "message.received", {"n": 1}, now=utcnow(), ordering_key="conversation:1")
        from hub.crm.worker import Worker
        Worker(runtime.db, runtime.vault, runtime.config).drain()
    listed = client.get("/api/v1/deliveries?status=dead", headers=admin_headers).json
    assert len(listed) == 1 and listed[0]["event_type"] == "message.received"
    did = listed[0]["id"]
    shown = client.get(f"/api/v1/deliveries/{did}", headers=admin_headers).json
    assert shown["last_response"]["status"] == 400 and shown["event"]["data"] == {"n": 1}
    counts = client.get("/api/v1/deliveries/counts", headers=admin_headers).json
    assert counts["dead"] == 1 and counts["pending"] == 0
    assert client.get("/api/v1/deliveries/999", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/deliveries?status=weird", headers=admin_headers).status_code == 422
    r = client.post("/api/v1/deliveries/replay", json={}, headers=admin_headers)
    assert r.status_code == 422
    r = client.post("/api/v1/deliveries/replay", json={"ids": [did]}, headers=admin_headers)
    assert r.json == {"replayed": 1}
    with runtime.db.scope() as session:
        assert session.get(Delivery, did).status == "pending"


def test_delete_connector_removes_its_queue(client, admin_headers, runtime):
    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://e.com", "secret": SECRET}}
    cid = client.post("/api/v1/connectors", json=body, headers=admin_headers).json["id"]
    with runtime.db.scope() as session:
        emit(session, "message.received", {}, now=utcnow())
    assert client.delete(f"/api/v1/connectors/{cid}", headers=admin_headers).status_code == 204
    assert count(runtime, Delivery) == 0
    assert client.get(f"/api/v1/connectors/{cid}", headers=admin_headers).status_code == 404


def test_saving_settings_makes_waiting_deliveries_due(client, admin_headers, runtime):
    from datetime import timedelta

    body = {"kind": "webhook", "name": "app", "settings": {"url": "https://e.com", "secret": SECRET}}
    cid = client.post("/api/v1/connectors", json=body, headers=admin_headers).json["id"]
    with runtime.db.scope() as session:
        emit(session, "message.received", {}, now=utcnow())
        session.flush()
        session.scalars(select(Delivery)).one().next_attempt_at = utcnow() + timedelta(hours=1)
    client.patch(f"/api/v1/connectors/{cid}", json={"settings": {"url": "https://e.com/fixed"}}, headers=admin_headers)
    with runtime.db.scope() as session:
        assert session.scalars(select(Delivery)).one().next_attempt_at <= utcnow()


def test_health_reports_do_not_count_as_configuration_changes(runtime):
    from hub.crm.store import set_health
    from tests.support.factories import webhook_connector

    cid = webhook_connector(runtime, "http://127.0.0.1:1/")
    with runtime.db.scope() as session:
        before = session.get(ConnectorRecord, cid).updated_at
    set_health(runtime.db, cid, False, "token revoked", now=utcnow())
    with runtime.db.scope() as session:
        record = session.get(ConnectorRecord, cid)
        assert record.health == "unhealthy" and record.updated_at == before
