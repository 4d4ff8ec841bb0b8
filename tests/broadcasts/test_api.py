"""The broadcasts REST API: audiences, CSV upload, the verdict, the lifecycle, results;
bad input answered 4xx naming the rows and fields, with nothing written or sent."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from hub.broadcasts import consent
from hub.platform.db import utcnow
from hub.models import Audience, Broadcast, BroadcastRecipient, Contact, Message, Template
from tests.support.whatsapp import WABA_ID, make_channel

CSV = ("phone;first_name;code\n+4915112345678;Ana;A1\n+447700900123;Bob;B2\n+79120001122;Иван;C3\n"
       "oops;X;Y\n+4915112345678;Ana again;A1\n+4915112345600;;D4\n").encode("cp1251")


@pytest.fixture
def channel_id(runtime):
    channel_id, _ = make_channel(runtime)
    with runtime.db.scope() as s:
        s.add(Template(waba_id=WABA_ID, name="promo", language="en", status="APPROVED", category="MARKETING",
                       components=[{"type": "BODY", "text": "Hi {{1}}, code {{2}}"}]))
    return channel_id


def upload(client, headers, data=CSV, name="December"):
    return client.post(f"/api/v1/audiences/csv?name={name}", data=data, headers=headers,
                       content_type="text/csv")


def count(runtime, model):
    with runtime.db.scope() as s:
        return s.scalar(select(func.count()).select_from(model))


def body(channel_id, audience_id, **extra):
    return {"name": "December offer", "channel_id": channel_id, "audience_id": audience_id,
            "template_name": "promo", "template_language": "en",
            "variables": [{"column": "first_name"}, {"column": "code"}], **extra}


def test_csv_upload_reports_each_refused_row(client, admin_headers, channel_id):
    r = upload(client, admin_headers)
    assert r.status_code == 201, r.json
    assert r.json["accepted"] == 4 and r.json["columns"] == ["first_name", "code"]
    assert [(x["row"], x["reason"]) for x in r.json["refused_rows"]] == [(5, "bad_number"), (6, "duplicate")]
    assert client.get(f"/api/v1/audiences/{r.json['id']}", headers=admin_headers).json["refused"] == 2


def test_multipart_upload_works_too(client, admin_headers, channel_id):
    import io

    r = client.post("/api/v1/audiences/csv?name=x", headers=admin_headers,
                    data={"file": (io.BytesIO(b"phone\n+4915112345678\n"), "list.csv")},
                    content_type="multipart/form-data")
    assert r.status_code == 201 and r.json["accepted"] == 1


def test_csv_without_a_phone_column_is_refused_and_nothing_written(client, admin_headers, runtime, channel_id):
    r = upload(client, admin_headers, data=b"name,city\nAna,Berlin\n")
    assert r.status_code == 422 and "phone" in r.json["errors"]["json"] and "'city'" in r.json["message"]
    assert count(runtime, Audience) == 0


def test_segment_audiences_and_their_bad_filters(client, admin_headers, runtime, channel_id):
    r = client.post("/api/v1/audiences", headers=admin_headers,
                    json={"name": "recent", "segment": {"last_message_within_days": 7}})
    assert r.status_code == 201 and r.json["kind"] == "segment"
    r = client.post("/api/v1/audiences", headers=admin_headers, json={"name": "x", "segment": {"zodiac": "leo"}})
    assert r.status_code == 422 and "segment.zodiac" in r.json["errors"]["json"]
    assert count(runtime, Audience) == 1


def test_verdict_counts_skips_costs_and_limits(client, admin_headers, runtime, channel_id):
    audience_id = upload(client, admin_headers).json["id"]
    now = utcnow()
    with runtime.db.scope() as s:
        c = Contact(wa_id="447700900123", phone="+447700900123", name="Bob", created_at=now, updated_at=now)
        s.add(c)
        s.flush()
        consent.record(s, c, "marketing", "opted_out", source="api", at=now, now=now)
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        k: v for k, v in body(channel_id, audience_id).items() if k != "name"})
    assert r.status_code == 200, r.json
    v = r.json
    assert v["would_send"] == 2
    assert v["skipped_by_reason"] == {"bad_number": 1, "duplicate": 1, "missing_variables": 1, "opted_out": 1}
    assert {line["country"] for line in v["cost"]["lines"]} == {"DE", "RU"}
    assert float(v["cost"]["total"]) > 0 and v["cost"]["currency"]
    assert v["messaging_limit"] == {"tier": "TIER_250", "assumed": True, "limit": 250, "used_24h": 0,
                                    "left": 250, "needed": 2, "fits": True}
    assert v["preview"][0] == {"phone": "+4915112345678", "missing": [], "text": "Hi Ana, code A1"}
    assert count(runtime, Message) == 0


def test_missing_variables_for_some_rows_refuse_the_broadcast_naming_them(client, admin_headers, runtime,
                                                                          channel_id):
    audience_id = upload(client, admin_headers).json["id"]
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(channel_id, audience_id))
    assert r.status_code == 422 and "variables" in r.json["errors"]["json"]
    assert "rows 7" in r.json["message"] and r.json["errors"]["rows"][0]["row"] == 7
    assert r.json["errors"]["rows"][0]["missing"] == ["{{1}} (column first_name)"]
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(
        channel_id, audience_id, variables=[{"column": "surname"}, {"column": "code"}]))
    assert r.status_code == 422 and "variables[0]" in r.json["errors"]["json"] and "surname" in r.json["message"]
    assert count(runtime, Broadcast) == 0 and count(runtime, BroadcastRecipient) == 0


def test_a_schedule_in_the_past_and_other_bad_schedules_are_refused(client, admin_headers, runtime, channel_id):
    audience_id = upload(client, admin_headers, data=b"phone,first_name,code\n+4915112345678,Ana,A\n").json["id"]
    past = (utcnow() - timedelta(hours=1)).isoformat()
    for extra, field in [({"start_at": past}, "start_at"), ({"timezone": "Mars/Base"}, "timezone"),
                         ({"window_start": "18:00", "window_end": "09:00"}, "window_end"),
                         ({"window_start": "25:00"}, "window_start"), ({"template_name": "nope"}, "template")]:
        r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(channel_id, audience_id, **extra))
        assert r.status_code == 422 and field in r.json["errors"]["json"], (extra, r.json)
    assert count(runtime, Broadcast) == 0


def test_lifecycle_and_results_export(client, admin_headers, runtime, channel_id):
    audience_id = upload(client, admin_headers, data=b"phone,first_name,code\n+4915112345678,Ana,A\nbad,B,C\n"
                         ).json["id"]
    later = (utcnow() + timedelta(days=1)).isoformat()
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(
        channel_id, audience_id, start_at=later, timezone="Europe/Moscow", allowed_days=[1, 2, 3, 4, 5],
        window_start="10:00", window_end="19:00"))
    assert r.status_code == 201 and r.json["status"] == "draft", r.json
    bid = r.json["id"]
    assert r.json["results"]["counts"]["pending"] == 1 and r.json["results"]["refused_at_upload"] == 1

    def act(action):
        return client.post(f"/api/v1/broadcasts/{bid}/{action}", headers=admin_headers)

    assert act("resume").status_code == 409
    assert act("start").json["status"] == "scheduled"
    paused = act("pause").json
    assert paused["status"] == "paused" and paused["paused_by"] == "user"
    assert act("resume").json["status"] == "scheduled"
    assert act("cancel").json["status"] == "cancelled"
    assert act("start").status_code == 409
    rows = client.get(f"/api/v1/broadcasts/{bid}/recipients", headers=admin_headers).json
    assert [(x["phone"], x["status"], x["reason"]) for x in rows] == [("+4915112345678", "skipped", "cancelled")]
    csv_text = client.get(f"/api/v1/broadcasts/{bid}/results.csv", headers=admin_headers).get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("phone,status,reason")
    assert "bad_number" in csv_text and "+4915112345678,skipped,cancelled" in csv_text
    assert count(runtime, Message) == 0
    assert act("retry-failed").status_code == 409


def test_viewers_cannot_make_broadcasts(client, viewer_headers, channel_id):
    assert upload(client, viewer_headers).status_code == 403


def test_contact_custom_fields_fill_template_variables(client, admin_headers, runtime, channel_id):
    """A CSV row is the contact of its number: {"contact": "city"} reads that contact's
    field, set through the contacts API; a row whose contact lacks it is named."""
    now = utcnow()
    with runtime.db.scope() as s:
        ana = Contact(wa_id="4915112345678", phone="+4915112345678", name="Ana", created_at=now, updated_at=now)
        s.add(ana)
        s.flush()
        ana_id = ana.id
    r = client.patch(f"/api/v1/contacts/{ana_id}/fields", json={"fields": {"city": "Berlin"}}, headers=admin_headers)
    assert r.status_code == 200, r.json
    data = b"phone,first_name\n+4915112345678,Ana\n+447700900123,Bob\n"
    audience_id = upload(client, admin_headers, data=data).json["id"]
    variables = [{"column": "first_name"}, {"contact": "city"}]
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        k: v for k, v in body(channel_id, audience_id, variables=variables).items() if k != "name"})
    assert r.status_code == 200, r.json
    assert r.json["preview"][0]["text"] == "Hi Ana, code Berlin"
    assert r.json["skipped_by_reason"] == {"missing_variables": 1}
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(channel_id, audience_id,
                                                                           variables=variables))
    assert r.status_code == 422 and r.json["errors"]["rows"] == [
        {"row": 3, "phone": "+447700900123", "missing": ["{{2}} (contact city)"]}]
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(
        channel_id, audience_id, variables=[{"column": "first_name"}, {"contact": "City!"}]))
    assert r.status_code == 422 and "variables[1]" in r.json["errors"]["json"]
    client.patch(f"/api/v1/contacts/{ana_id}/fields", json={"fields": {"city": None}}, headers=admin_headers)
    one = upload(client, admin_headers, data=b"phone,first_name\n+4915112345678,Ana\n").json["id"]
    client.patch(f"/api/v1/contacts/{ana_id}/fields", json={"fields": {"city": "Köln"}}, headers=admin_headers)
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(channel_id, one, variables=variables))
    assert r.status_code == 201, r.json
    with runtime.db.scope() as s:
        recipient = s.scalar(select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == r.json["id"]))
        assert recipient.variables == {"first_name": "Ana", "contact.city": "Köln"}


def tagged_contacts(runtime, channel_id):
    from hub.conversations.tags_and_fields import change_fields, change_tags
    from hub.crm import contact_stages
    from hub.models import Conversation

    now = utcnow()
    with runtime.db.scope() as s:
        for i, (tags, city, stage) in enumerate([(["vip"], "Berlin", "Won"), (["new"], "Berlin", None),
                                                 (["vip", "new"], None, "Lead")]):
            c = Contact(wa_id=f"49151000000{i}", phone=f"+49151000000{i}", name=f"C{i}", created_at=now,
                        updated_at=now)
            s.add(c)
            s.flush()
            s.add(Conversation(channel_id=channel_id, contact_id=c.id, status="open", opened_at=now,
                               last_inbound_at=now, created_at=now, updated_at=now))
            change_tags(s, c.id, add=tags, now=now)
            if city:
                change_fields(s, c.id, {"city": city}, now=now)
            if stage:
                contact_stages.record(s, contact_id=c.id, connector_id=None, now=now, deal={
                    "id": f"d{i}", "stage": stage.lower(), "stage_name": stage, "pipeline": "sales",
                    "outcome": "won" if stage == "Won" else "open"})


def test_counting_a_segment_before_saving_it(client, admin_headers, viewer_headers, runtime, channel_id):
    tagged_contacts(runtime, channel_id)

    def counted(segment, headers=admin_headers):
        return client.post("/api/v1/audiences/count", headers=headers, json={"segment": segment})

    assert counted({"tag": "vip"}).json == {"count": 2, "segment": {"tag": "vip"}}
    assert counted({"tags_any": ["vip", "new"], "field": {"name": "city", "equals": "Berlin"}},
                   headers=viewer_headers).json["count"] == 2
    assert counted({"crm_stage": {"stage": "Won", "pipeline": "sales"}, "tag": "vip"}).json["count"] == 1
    assert counted({"field": {"name": "city"}, "channel_id": channel_id}).json["count"] == 2
    assert counted({}).json["count"] == 3
    for segment, field in [({"tags_any": ["vip", ""]}, "segment.tags_any[1]"),
                           ({"field": {"name": "town"}}, "segment.field.name"),
                           ({"crm_stage": {"stage": "Lost"}}, "segment.crm_stage.stage"),
                           ({"crm_stage": {"stage": "Won", "pipeline": 3}}, "segment.crm_stage.pipeline"),
                           ({"zodiac": "leo"}, "segment.zodiac")]:
        r = counted(segment)
        assert r.status_code == 422 and list(r.json["errors"]["json"]) == [field], (segment, r.json)
        assert field in r.json["message"]
    r = client.post("/api/v1/audiences", headers=admin_headers, json={"name": "typo", "segment": {
        "field": {"name": "town", "equals": "Berlin"}}})
    assert r.status_code == 422 and "segment.field.name" in r.json["errors"]["json"] and "'town'" in r.json["message"]
    assert count(runtime, Audience) == 0
    assert client.post("/api/v1/audiences/count", headers=admin_headers, json={}).status_code == 422
    assert client.post("/api/v1/audiences/count", json={"segment": {}}).status_code == 401
    spec = client.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/audiences/count"]["post"]
    assert "200" in operation["responses"] and "crm_stage" in str(spec["components"]["schemas"])


def test_the_verdict_shows_the_audience_it_is_for(client, admin_headers, runtime, channel_id):
    tagged_contacts(runtime, channel_id)
    segment = {"tags_any": ["vip"], "crm_stage": "Won"}
    r = client.post("/api/v1/audiences", headers=admin_headers, json={"name": "won vips", "segment": segment})
    assert r.status_code == 201, r.json
    audience_id = r.json["id"]
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        "channel_id": channel_id, "audience_id": audience_id, "template_name": "promo", "template_language": "en",
        "variables": [{"contact": "name"}, {"value": "X1"}]})
    assert r.status_code == 200, r.json
    assert r.json["audience"] == {"id": audience_id, "name": "won vips", "kind": "segment",
                                  "segment": {"tags_any": ["vip"], "crm_stage": {"stage": "Won"}}}
    assert r.json["would_send"] == 1 and r.json["preview"][0]["text"] == "Hi C0, code X1"
    csv_id = upload(client, admin_headers).json["id"]
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        k: v for k, v in body(channel_id, csv_id).items() if k != "name"})
    assert r.json["audience"] == {"id": csv_id, "name": "December", "kind": "csv", "columns": ["first_name", "code"],
                                  "accepted": 4, "refused": 2}
