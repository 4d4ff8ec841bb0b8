"""/api/v1/contacts/<id>/merge and DELETE .../merges/<id>: an operator's merge and its
undo through the API, refusals as 4xx that say why, nothing written on bad input."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from hub.conversations.store import upsert_contact
from hub.models import Contact
from hub.models.contacts import ContactMerge

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)


def contacts(runtime):
    with runtime.db.scope() as s:
        a = upsert_contact(s, wa_id="4915100000001", user_id=None, name="A", now=NOW).id
        b = upsert_contact(s, wa_id=None, user_id="tg:42", name="A on Telegram", now=NOW).id
    return a, b


def test_merge_and_undo_through_the_api(client, runtime, admin_headers):
    a, b = contacts(runtime)
    r = client.post(f"/api/v1/contacts/{b}/merge", json={"person_contact_id": a}, headers=admin_headers)
    assert r.status_code == 201, r.json
    assert (r.json["contact_id"], r.json["person_id"], r.json["reason"], r.json["undone_at"]) == (b, a, "operator", None)
    merge_id = r.json["id"]
    again = client.post(f"/api/v1/contacts/{a}/merge", json={"person_contact_id": b}, headers=admin_headers)
    assert again.status_code == 409 and "already one person" in again.json["message"]
    r = client.delete(f"/api/v1/contacts/{b}/merges/{merge_id}", headers=admin_headers)
    assert r.status_code == 200 and r.json["undone_at"]
    with runtime.db.scope() as s:
        assert s.get(Contact, b).person_id is None
    twice = client.delete(f"/api/v1/contacts/{b}/merges/{merge_id}", headers=admin_headers)
    assert twice.status_code == 409 and "undone before" in twice.json["message"]


def test_bad_input_is_a_4xx_and_merges_nothing(client, runtime, admin_headers, viewer_headers):
    a, b = contacts(runtime)
    cases = [
        ("post", f"/api/v1/contacts/{b}/merge", {"person_contact_id": 999999}, admin_headers, 404),
        ("post", f"/api/v1/contacts/999999/merge", {"person_contact_id": a}, admin_headers, 404),
        ("post", f"/api/v1/contacts/{b}/merge", {}, admin_headers, 422),
        ("post", f"/api/v1/contacts/{b}/merge", {"person_contact_id": "x"}, admin_headers, 422),
        ("post", f"/api/v1/contacts/{b}/merge", {"person_contact_id": a}, viewer_headers, 403),
        ("delete", f"/api/v1/contacts/{b}/merges/12345", None, admin_headers, 404),
    ]
    for method, url, body, headers, status in cases:
        r = getattr(client, method)(url, json=body, headers=headers)
        assert r.status_code == status, (url, body, r.status_code, r.get_data(as_text=True)[:200])
    with runtime.db.scope() as s:
        assert s.scalars(select(ContactMerge)).all() == []


def test_the_openapi_document_lists_the_merge_operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "post" in paths["/api/v1/contacts/{contact_id}/merge"]
    assert "delete" in paths["/api/v1/contacts/{contact_id}/merges/{merge_id}"]


def test_tags_and_fields_through_the_api(client, runtime, admin_headers, viewer_headers):
    a, _ = contacts(runtime)
    r = client.post(f"/api/v1/contacts/{a}/tags", json={"add": ["vip", " Постоянный клиент ", "vip"]},
                    headers=admin_headers)
    assert r.status_code == 200, r.json
    assert r.json["tags"] == ["vip", "Постоянный клиент"] and r.json["fields"] == {}
    r = client.patch(f"/api/v1/contacts/{a}/fields", json={"fields": {"city": "Berlin", "first_name": "Anna"}},
                     headers=admin_headers)
    assert r.status_code == 200 and r.json["fields"] == {"city": "Berlin", "first_name": "Anna"}
    r = client.patch(f"/api/v1/contacts/{a}/fields", json={"fields": {"city": "Köln", "first_name": None}},
                     headers=admin_headers)
    assert r.json["fields"] == {"city": "Köln"}
    r = client.post(f"/api/v1/contacts/{a}/tags", json={"remove": ["vip"], "add": ["b2b"]}, headers=admin_headers)
    assert r.json["tags"] == ["b2b", "Постоянный клиент"]
    r = client.get(f"/api/v1/contacts/{a}/attributes", headers=viewer_headers)
    assert r.status_code == 200
    assert (r.json["tags"], r.json["fields"], r.json["crm_stages"]) == (["b2b", "Постоянный клиент"],
                                                                        {"city": "Köln"}, [])


def test_bad_tags_and_fields_are_refused_by_name_and_change_nothing(client, runtime, admin_headers, viewer_headers):
    a, _ = contacts(runtime)
    client.post(f"/api/v1/contacts/{a}/tags", json={"add": ["vip"]}, headers=admin_headers)
    cases = [
        ("post", "tags", {"add": ["x" * 65]}, admin_headers, 422, "add"),
        ("post", "tags", {"add": ["ok", "-leading dash"]}, admin_headers, 422, "add"),
        ("post", "tags", {"add": ["semi;colon"]}, admin_headers, 422, "add"),
        ("post", "tags", {"add": ["vip2"], "remove": ["vip2"]}, admin_headers, 422, "remove"),
        ("post", "tags", {}, admin_headers, 422, "add"),
        ("post", "tags", {"add": [7]}, admin_headers, 422, "add"),
        ("post", "tags", {"add": ["vip2"]}, viewer_headers, 403, None),
        ("patch", "fields", {"fields": {"City": "x"}}, admin_headers, 422, "fields"),
        ("patch", "fields", {"fields": {"phone": "+4915"}}, admin_headers, 422, "fields"),
        ("patch", "fields", {"fields": {"city": "x" * 501}}, admin_headers, 422, "fields"),
        ("patch", "fields", {"fields": {"city": 5}}, admin_headers, 422, "fields"),
        ("patch", "fields", {"fields": {}}, admin_headers, 422, "fields"),
        ("patch", "fields", {"fields": {"city": "x"}}, viewer_headers, 403, None),
    ]
    for method, what, body, headers, status, field in cases:
        r = getattr(client, method)(f"/api/v1/contacts/{a}/{what}", json=body, headers=headers)
        assert r.status_code == status, (body, r.status_code, r.get_data(as_text=True)[:300])
        if field:
            assert field in r.json["errors"]["json"], (body, r.json)
    assert client.post("/api/v1/contacts/999999/tags", json={"add": ["vip"]}, headers=admin_headers).status_code == 404
    r = client.get(f"/api/v1/contacts/{a}/attributes", headers=admin_headers)
    assert (r.json["tags"], r.json["fields"]) == (["vip"], {})
