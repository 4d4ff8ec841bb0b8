"""/api/v1/tracked-links: CRUD, roles, validation, visits and the report."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import update

from hub.platform.db import utcnow
from hub.models import LeadAttribution, Visit
from tests.support.tracking import prefilled, text_message, visit
from tests.support.whatsapp import make_channel, post_signed

URL = "/api/v1/tracked-links"


@pytest.fixture
def channel(runtime):
    return make_channel(runtime)


def body(channel_id: int, **extra) -> dict:
    return {"slug": "spring-sale", "channel_id": channel_id, "campaign": "Spring sale",
            "text_template": "Hello! My request number: {code}", "utm_source": "site", **extra}


def test_create_read_update_delete(client, admin_headers, channel):
    r = client.post(URL, json=body(channel[0]), headers=admin_headers)
    assert r.status_code == 201, r.json
    link = r.json
    assert link["url"] == "http://hub.test/l/spring-sale" and link["wa_me_url"] is None
    assert link["script_tag"] == '<script src="http://hub.test/t.js" data-link="spring-sale" async></script>'
    assert (link["utm_source"], link["utm_medium"], link["active"], link["static_code"]) == ("site", "", True, None)
    assert client.get(f"{URL}/{link['id']}", headers=admin_headers).json == link
    assert [x["slug"] for x in client.get(URL, headers=admin_headers).json] == ["spring-sale"]

    r = client.patch(f"{URL}/{link['id']}", json={"campaign": "Summer", "active": False}, headers=admin_headers)
    assert r.status_code == 200 and r.json["campaign"] == "Summer" and r.json["active"] is False
    assert r.json["text_template"] == link["text_template"]  # untouched fields stay
    assert client.get(URL, query_string={"campaign": "Summer"}, headers=admin_headers).json[0]["id"] == link["id"]
    assert client.get(URL, query_string={"campaign": "Spring sale"}, headers=admin_headers).json == []

    assert client.delete(f"{URL}/{link['id']}", headers=admin_headers).status_code == 204
    assert client.get(f"{URL}/{link['id']}", headers=admin_headers).status_code == 404
    assert client.get("/l/spring-sale").status_code == 404


def test_a_static_link_shows_its_direct_wa_me_url_for_print(client, admin_headers, channel):
    r = client.post(URL, json=body(channel[0], slug="flyer", static_code="flyer 25"), headers=admin_headers)
    assert r.status_code == 201, r.json
    assert r.json["static_code"] == "FLYER25"
    url = urlsplit(r.json["wa_me_url"])
    assert url.netloc == "wa.me" and parse_qs(url.query)["text"] == ["Hello! My request number: FLYER25"]


@pytest.mark.parametrize("change, field", [
    ({"slug": "Spring Sale"}, "slug"),
    ({"slug": "-x"}, "slug"),
    ({"slug": "x" * 65}, "slug"),
    ({"text_template": "Hello, no code here"}, "text_template"),
    ({"text_template": "{code} and {code}"}, "text_template"),
    ({"text_template": "x" * 1001 + "{code}"}, "text_template"),
    ({"static_code": "SPRING"}, "static_code"),
    ({"static_code": "K7Q2M4"}, "static_code"),
    ({"static_code": "QR/24"}, "static_code"),
    ({"utm_source": "s" * 256}, "utm_source"),
    ({"channel_id": 999}, "channel_id"),
])
def test_bad_input_is_refused_with_the_field_named(client, admin_headers, channel, change, field):
    r = client.post(URL, json={**body(channel[0]), **change}, headers=admin_headers)
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]["json"]


def test_a_channel_without_a_number_cannot_have_links(client, admin_headers, runtime):
    channel_id, _ = make_channel(runtime, phone_number_id="2200000000000077", display_number="")
    r = client.post(URL, json=body(channel_id), headers=admin_headers)
    assert r.status_code == 422 and "display number" in r.json["errors"]["json"]["channel_id"][0]


def test_duplicates_are_a_conflict(client, admin_headers, channel):
    assert client.post(URL, json=body(channel[0], static_code="QR24"), headers=admin_headers).status_code == 201
    r = client.post(URL, json=body(channel[0]), headers=admin_headers)
    assert r.status_code == 409 and "slug" in r.json["errors"]["json"]
    r = client.post(URL, json=body(channel[0], slug="other", static_code="qr24"), headers=admin_headers)
    assert r.status_code == 409 and "static_code" in r.json["errors"]["json"]
    other = client.post(URL, json=body(channel[0], slug="other"), headers=admin_headers).json
    r = client.patch(f"{URL}/{other['id']}", json={"slug": "spring-sale"}, headers=admin_headers)
    assert r.status_code == 409


def test_roles_and_authentication(client, admin_headers, viewer_headers, channel):
    assert client.get(URL).status_code == 401
    assert client.post(URL, json=body(channel[0]), headers=viewer_headers).status_code == 403
    link = client.post(URL, json=body(channel[0]), headers=admin_headers).json
    assert client.get(URL, headers=viewer_headers).status_code == 200
    assert client.get(f"{URL}/report", headers=viewer_headers).status_code == 200
    assert client.patch(f"{URL}/{link['id']}", json={"active": False}, headers=viewer_headers).status_code == 403
    assert client.delete(f"{URL}/{link['id']}", headers=viewer_headers).status_code == 403


def test_visits_are_listed_newest_first_and_paged(client, admin_headers, channel):
    link = client.post(URL, json=body(channel[0]), headers=admin_headers).json
    codes = [visit(client, utm_source=f"s{i}")[1] for i in range(5)]
    r = client.get(f"{URL}/{link['id']}/visits", query_string={"limit": 3}, headers=admin_headers)
    assert r.status_code == 200
    assert [v["code"] for v in r.json] == codes[::-1][:3]
    assert r.json[0]["utm_source"] == "s4" and r.json[0]["matched_at"] is None and r.json[0]["ip_hash"]
    older = client.get(f"{URL}/{link['id']}/visits", query_string={"before_id": r.json[-1]["id"]},
                       headers=admin_headers).json
    assert [v["code"] for v in older] == codes[::-1][3:]
    assert client.get(f"{URL}/999/visits", headers=admin_headers).status_code == 404
    assert client.get(f"{URL}/{link['id']}/visits", query_string={"limit": 0}, headers=admin_headers).status_code == 422


def test_report_per_link_and_campaign(client, admin_headers, runtime, channel):
    spring = client.post(URL, json=body(channel[0]), headers=admin_headers).json
    client.post(URL, json=body(channel[0], slug="spring-2"), headers=admin_headers)
    client.post(URL, json=body(channel[0], slug="flyer", campaign="Print", static_code="FLYER25"),
                headers=admin_headers)
    client.post(URL, json=body(channel[0], slug="idle", campaign="Print"), headers=admin_headers)
    responses = [visit(client)[0] for _ in range(4)] + [visit(client, "spring-2")[0] for _ in range(2)]
    for i, r in enumerate(responses[:3]):  # 3 of the 4 spring-sale visits start a chat
        post_signed(client, channel[1], text_message(prefilled(r), wa_id=f"1555000010{i}"))
    post_signed(client, channel[1], text_message("Code from the flyer: FLYER25", wa_id="15550000200"))
    post_signed(client, channel[1], text_message("just hi", wa_id="15550000300"))

    report = client.get(f"{URL}/report", headers=admin_headers).json
    rows = {row["slug"]: row for row in report["links"]}
    assert {k: rows["spring-sale"][k] for k in ("visits", "conversations", "conversion_rate")} == \
        {"visits": 4, "conversations": 3, "conversion_rate": 0.75}
    assert (rows["spring-2"]["visits"], rows["spring-2"]["conversations"], rows["spring-2"]["conversion_rate"]) == \
        (2, 0, 0.0)
    assert (rows["flyer"]["visits"], rows["flyer"]["conversations"], rows["flyer"]["conversion_rate"]) == \
        (0, 1, None)
    assert rows["flyer"]["static"] is True and rows["idle"]["visits"] == 0
    campaigns = {row["campaign"]: row for row in report["campaigns"]}
    assert campaigns["Spring sale"] == {"campaign": "Spring sale", "links": 2, "visits": 6, "conversations": 3,
                                       "conversion_rate": 0.5}
    assert campaigns["Print"]["conversations"] == 1 and campaigns["Print"]["links"] == 2
    assert report["total"] == {"visits": 6, "conversations": 4, "conversion_rate": 0.6667}

    only = client.get(f"{URL}/{spring['id']}/report", headers=admin_headers).json
    assert [row["slug"] for row in only["links"]] == ["spring-sale"]
    print_only = client.get(f"{URL}/report", query_string={"campaign": "Print"}, headers=admin_headers).json
    assert {row["slug"] for row in print_only["links"]} == {"flyer", "idle"}


def test_report_period(client, admin_headers, runtime, channel):
    link = client.post(URL, json=body(channel[0]), headers=admin_headers).json
    old, _ = visit(client)
    post_signed(client, channel[1], text_message(prefilled(old), wa_id="15550000101"))
    visit(client)
    long_ago = utcnow() - timedelta(days=40)
    with runtime.db.scope() as session:
        first = session.get(Visit, 1)
        session.execute(update(Visit).where(Visit.id == first.id).values(visited_at=long_ago))
        session.execute(update(LeadAttribution).values(attributed_at=long_ago))
    since = (utcnow() - timedelta(days=30)).isoformat()
    r = client.get(f"{URL}/{link['id']}/report", query_string={"since": since}, headers=admin_headers)
    assert r.status_code == 200
    assert (r.json["total"]["visits"], r.json["total"]["conversations"]) == (1, 0)
    until = (utcnow() - timedelta(days=30)).isoformat()
    r = client.get(f"{URL}/report", query_string={"until": until}, headers=admin_headers)
    assert (r.json["total"]["visits"], r.json["total"]["conversations"]) == (1, 1)
    bad = client.get(f"{URL}/report", query_string={"since": (utcnow() - timedelta(days=10)).isoformat(),
                                                     "until": until}, headers=admin_headers)
    assert bad.status_code == 422 and "until" in bad.json["errors"]["query"]
    naive = client.get(f"{URL}/report", query_string={"since": "2026-01-01T00:00:00"}, headers=admin_headers)
    assert naive.status_code == 422


def test_the_api_is_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    for path in ("/api/v1/tracked-links", "/api/v1/tracked-links/{link_id}", "/api/v1/tracked-links/report",
                 "/api/v1/tracked-links/{link_id}/visits", "/api/v1/tracked-links/{link_id}/report"):
        assert path in spec["paths"], path


def test_deleting_a_link_keeps_the_lead_sources_it_gave(client, admin_headers, runtime, channel):
    from sqlalchemy import select

    from hub.models import Conversation

    link = client.post(URL, json=body(channel[0]), headers=admin_headers).json
    r, code = visit(client, utm_source="google")
    post_signed(client, channel[1], text_message(prefilled(r)))
    assert client.delete(f"{URL}/{link['id']}", headers=admin_headers).status_code == 204
    with runtime.db.scope() as session:
        assert session.scalars(select(Conversation)).one().lead_source["utm_source"] == "google"
        attribution = session.scalars(select(LeadAttribution)).one()
        assert (attribution.link_id, attribution.visit_id, attribution.code) == (None, None, code)
        assert session.scalars(select(Visit)).all() == []
