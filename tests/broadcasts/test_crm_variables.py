"""Template variables from what the CRM last reported for a contact's deal ({"crm":
"stage_name"}, per pipeline if asked): checked when the broadcast is made (4xx naming
the field), read for the whole audience a thousand contacts a statement, shown in the
preview and the verdict; a recipient without the value is skipped as missing_variables.
One end-to-end send puts the stage name in the message body."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from hub.broadcasts import compose
from hub.crm import contact_stages
from hub.models import BroadcastRecipient, Contact, Template
from hub.platform.db import utcnow
from tests.broadcasts.test_api import body, channel_id, upload  # noqa: F401  (channel_id is a fixture)

TEMPLATE = Template(waba_id="w", name="promo", language="en", status="APPROVED", category="MARKETING",
                    components=[{"type": "BODY", "text": "Hi {{1}}, your deal is at {{2}}"}])


@pytest.mark.parametrize("source, field", [
    ({"crm": "amount"}, "variables[1].crm"),
    ({"crm": "stage_name", "colour": "red"}, "variables[1].colour"),
    ({"crm": "stage_name", "pipeline": ""}, "variables[1].pipeline"),
    ({"crm": "stage_name", "pipeline": "p" * 65}, "variables[1].pipeline"),
    ({"crm": 7}, "variables[1].crm"),
])
def test_bad_crm_sources_are_refused_naming_the_part(source, field):
    with pytest.raises(compose.CompositionProblem) as caught:
        compose.check_spec(TEMPLATE, [{"column": "first_name"}, source], ["first_name"])
    assert caught.value.field == field, str(caught.value)


def test_crm_values_fill_by_pipeline_or_the_deal_changed_last():
    spec = [{"crm": "stage_name"}, {"crm": "stage_name", "pipeline": "support"}]
    compose.check_spec(TEMPLATE, spec, [])
    assert compose.crm_sources(spec) == [("stage_name", None), ("stage_name", "support")]
    member = {"phone": "+1", "variables": {compose.crm_key("stage_name"): "Offer",
                                           compose.crm_key("stage_name", "support"): "Open ticket"}}
    given, missing = compose.fill(TEMPLATE, spec, member)
    assert missing == [] and given.body == ["Offer", "Open ticket"]
    given, missing = compose.fill(TEMPLATE, spec, {"phone": "+1", "variables": {"crm.stage_name": "Offer"}})
    assert given is None and missing == ["{{2}} (crm stage_name in support)"]
    # A CRM source does not make the broadcast refuse anyone: those recipients are skipped.
    assert compose.rows_missing_variables(TEMPLATE, compose.without_crm(spec), [{"phone": "+1"}]) == []


def contacts_with_deals(runtime):
    """Ana: a sales deal at "Offer" and, later, a support deal at "Open ticket"; Bob: none."""
    now = utcnow()
    with runtime.db.scope() as s:
        ana = Contact(wa_id="4915112345678", phone="+4915112345678", name="Ana", created_at=now, updated_at=now)
        bob = Contact(wa_id="447700900123", phone="+447700900123", name="Bob", created_at=now, updated_at=now)
        s.add_all([ana, bob])
        s.flush()
        contact_stages.record(s, contact_id=ana.id, connector_id=None, now=now - timedelta(hours=1), deal={
            "id": "D-17", "stage": "5", "stage_name": "Offer", "pipeline": "sales", "outcome": "open"})
        contact_stages.record(s, contact_id=ana.id, connector_id=None, now=now, deal={
            "id": "T-3", "stage": "1", "stage_name": "Open ticket", "pipeline": "support", "outcome": "open"})
    return now


def test_crm_sources_through_the_api_preview_verdict_and_recipients(client, admin_headers, runtime, channel_id):
    contacts_with_deals(runtime)
    data = b"phone,first_name\n+4915112345678,Ana\n+447700900123,Bob\n"
    audience_id = upload(client, admin_headers, data=data).json["id"]
    variables = [{"column": "first_name"}, {"crm": "stage_name", "pipeline": "sales"}]
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        k: v for k, v in body(channel_id, audience_id, variables=variables).items() if k != "name"})
    assert r.status_code == 200, r.json
    assert r.json["preview"][0]["text"] == "Hi Ana, code Offer"
    assert r.json["would_send"] == 1 and r.json["skipped_by_reason"] == {"missing_variables": 1}
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(
        channel_id, audience_id, variables=[{"column": "first_name"}, {"crm": "amount"}]))
    assert r.status_code == 422 and "variables[1].crm" in r.json["errors"]["json"], r.json
    r = client.post("/api/v1/broadcasts", headers=admin_headers, json=body(channel_id, audience_id,
                                                                           variables=variables))
    assert r.status_code == 201, r.json
    with runtime.db.scope() as s:
        rows = {x.phone: x for x in s.scalars(select(BroadcastRecipient).where(
            BroadcastRecipient.broadcast_id == r.json["id"]))}
    assert rows["+4915112345678"].status == "pending"
    assert rows["+4915112345678"].variables == {"first_name": "Ana", "crm.stage_name@sales": "Offer"}
    assert (rows["+447700900123"].status, rows["+447700900123"].reason) == (
        "skipped", "missing_variables: {{2}} (crm stage_name in sales)")
    # Without a pipeline: the deal that changed last.
    r = client.post("/api/v1/broadcasts/verdict", headers=admin_headers, json={
        k: v for k, v in body(channel_id, audience_id, variables=[{"crm": "deal_id"}, {"crm": "stage_name"}]).items()
        if k != "name"})
    assert r.status_code == 200 and r.json["preview"][0]["text"] == "Hi T-3, code Open ticket", r.json


def test_openapi_names_the_crm_source(client):
    spec = client.get("/api/v1/openapi.json").json
    assert '{"crm": "stage_name"' in str(spec)


@pytest.mark.slow
def test_a_broadcast_sends_the_crm_stage_name_in_the_body(runtime, client):
    from tests.broadcasts.test_e2e import run, setup
    from tests.support.wa_emulator import wired
    from hub.broadcasts import audiences, lifecycle

    contacts_with_deals(runtime)
    with wired(runtime, client, utcnow) as w:
        setup(runtime, client, w, mps=50)
        now = utcnow()
        with runtime.db.scope() as s:
            audience = audiences.create_from_csv(
                s, name="deals", data=b"phone;first_name\n+4915112345678;Ana\n+447700900123;Bob\n", now=now)
            b = lifecycle.create(s, name="Deal nudge", channel_id=w["channel_id"], audience_id=audience.id,
                                 template_name="promo", template_language="en",
                                 variables=[{"column": "first_name"}, {"crm": "stage_name", "pipeline": "sales"}],
                                 now=now)
            lifecycle.start(s, b.id, now=now)
            broadcast_id = b.id
        run(runtime, w, broadcast_id, seconds=60)
        sent = [m for m in w["emu"].sent if m.type == "template"]
        assert [m.recipient.wa_id for m in sent] == ["4915112345678"]
        parameters = sent[0].body["template"]["components"][0]["parameters"]
        assert [p["text"] for p in parameters] == ["Ana", "Offer"]
        with runtime.db.scope() as s:
            bob = s.scalar(select(BroadcastRecipient).where(BroadcastRecipient.broadcast_id == broadcast_id,
                                                            BroadcastRecipient.phone == "+447700900123"))
            assert bob.status == "skipped" and bob.reason.startswith("missing_variables")
