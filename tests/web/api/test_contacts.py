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
