"""Connectors in the admin: forms generated from each kind's Settings schema, secrets
masked and kept, errors beside fields, Test connection, mapping preview, choices loaded
from the service, enable/disable and removal."""
from __future__ import annotations

from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from connectors.base import CheckResult, Connector, HubEvent, Outcome, registry
from hub.crm.store import full_settings
from hub.events.outbox import EVENT_TYPES
from hub.models import ConnectorRecord
from tests.support.admin import field_errors, post, signed_in
from tests.support.factories import SECRET
from tests.support.receiver import Receiver, Reply
from tests.support.whatsapp import fixture, make_channel, post_signed

WEBHOOK = {"name": "crm-hook", "enabled": "on", "url": "http://127.0.0.1:9/hook", "secret": SECRET,
           "concurrency": "4", "timeout_seconds": "2"}
ALL_EVENTS = list(EVENT_TYPES)
PIPELINES = [("7001", "Sales"), ("7002", "Support")]


class DemoCrmSettings(Schema):
    base_url = fields.Url(required=True, require_tld=False, metadata={"label": "Account address"})
    api_key = fields.String(required=True, metadata={"label": "API key", "secret": True})
    refresh_token = fields.String(load_default=None, allow_none=True,
                                  metadata={"label": "Refresh token (managed)", "secret": True, "managed": True})
    pipeline_id = fields.Integer(load_default=None, allow_none=True, metadata={"label": "Pipeline"})
    mode = fields.String(load_default="reuse", validate=validate.OneOf(["reuse", "new"]), metadata={
        "label": "Deals", "choices": [["reuse", "Reuse the open deal"], ["new", "Always a new deal"]]})
    tags = fields.List(fields.String(), load_default=list, metadata={"label": "Tags"})
    users = fields.Dict(keys=fields.Email(), values=fields.Integer(), load_default=dict,
                        metadata={"label": "Operators -> CRM users"})
    notes = fields.Boolean(load_default=True, metadata={"label": "Messages as notes"})

    @validates_schema
    def _known_pipeline(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("pipeline_id") and str(data["pipeline_id"]) not in dict(PIPELINES):
            raise ValidationError("no such pipeline in the CRM", "pipeline_id")


class DemoCrm(Connector):
    """A CRM-shaped kind: lists choices from 'the service' and previews its requests."""

    kind = "democrm"
    title = "Demo CRM"
    Settings = DemoCrmSettings
    handles = frozenset({"conversation.started", "message.received", "message.sent", "conversation.closed"})
    choices_fail = False

    def check(self) -> CheckResult:
        return CheckResult(True, "ok")

    def deliver(self, batch: list[HubEvent]) -> list[Outcome]:
        return [Outcome.done() for _ in batch]

    def choices(self) -> dict[str, list[tuple[str, str]]]:
        if DemoCrm.choices_fail:
            raise ConnectionError(f"CRM unreachable (key {self.settings['api_key']})")
        return {"pipeline_id": PIPELINES, "users": [("501", "Olga <olga@crm.example>")]}

    def preview(self, batch: list[HubEvent]) -> list[dict[str, Any]]:
        out = []
        for event in batch:
            if event.type == "conversation.started":
                out.append({"method": "POST", "path": "/api/deals", "body": {
                    "name": f"WhatsApp: {event.data['contact']['name']}", "pipeline": self.settings.get("pipeline_id"),
                    "auth": self.settings["api_key"]}})
            elif event.type.startswith("message."):
                out.append({"method": "POST", "path": "/api/notes", "body": {"text": event.data["message"]["text"]}})
        return out


@pytest.fixture
def democrm():
    registry.register(DemoCrm)
    DemoCrm.choices_fail = False
    yield DemoCrm
    registry.unregister("democrm")


def records(runtime) -> list[ConnectorRecord]:
    with runtime.db.scope() as s:
        return list(s.scalars(select(ConnectorRecord).order_by(ConnectorRecord.id)))


def form(data: dict[str, Any], events: list[str] = ALL_EVENTS) -> dict[str, Any]:
    return {**data, "event_types": events}


def test_add_connector_offers_every_registered_kind(app, runtime, democrm):
    admin = signed_in(app, runtime, "admin")
    page = admin.get("/admin/connectors/new").get_data(as_text=True)
    assert "Generic webhook (Standard Webhooks)" in page and "Demo CRM" in page
    page = admin.get("/admin/connectors/new/webhook").get_data(as_text=True)
    for label in ("Endpoint URL", "Signing secret", "Parallel requests", "Timeout (seconds)"):
        assert label in page
    assert 'type="password" name="secret"' in page and 'type="url" name="url"' in page
    assert admin.get("/admin/connectors/new/nosuchkind").status_code == 404


def test_create_webhook_connector(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/connectors/new/webhook")
    assert r.status_code == 302, r.get_data(as_text=True)
    [record] = records(runtime)
    assert (record.name, record.kind, record.enabled, record.event_types) == ("crm-hook", "webhook", True, None)
    assert record.settings == {"url": WEBHOOK["url"], "concurrency": 4, "timeout_seconds": 2.0}
    assert full_settings(record, runtime.vault)["secret"] == SECRET
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert "crm-hook" in page and SECRET not in page and "Test connection" in page


def test_invalid_connector_shows_errors_beside_fields_and_saves_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/connectors/new/webhook",
             form({**WEBHOOK, "name": "", "url": "not a url", "secret": "too-short", "concurrency": "99"}),
             page="/admin/connectors/new/webhook")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert field_errors(page, "name") == ["Required."]
    assert field_errors(page, "url") == ["Not a valid URL."]
    assert field_errors(page, "concurrency") == ["Must be greater than or equal to 1 and less than or equal to 32."]
    assert len(field_errors(page, "secret")) == 1
    assert field_errors(page, "timeout_seconds") == []
    assert "too-short" not in page and 'value="not a url"' in page
    assert records(runtime) == []
    # No events chosen is an error too.
    r = post(admin, "/admin/connectors/new/webhook", form(WEBHOOK, events=[]), page="/admin/connectors/new/webhook")
    assert r.status_code == 422 and "Choose at least one event." in r.get_data(as_text=True)
    assert records(runtime) == []


def test_duplicate_name_is_an_error_beside_the_name(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/connectors/new/webhook")
    r = post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/connectors/new/webhook")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "name") == ["a connector named 'crm-hook' already exists"]
    assert len(records(runtime)) == 1


def test_edit_keeps_blank_secret_and_saves_event_filter(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/connectors/new/webhook")
    [record] = records(runtime)
    page = admin.get(f"/admin/connectors/{record.id}/edit").get_data(as_text=True)
    assert SECRET not in page and "A value is stored (never shown)" in page and 'value="crm-hook"' in page
    r = post(admin, f"/admin/connectors/{record.id}/edit",
             form({**WEBHOOK, "name": "crm-hook-2", "secret": "", "url": "http://127.0.0.1:9/v2"},
                  events=["message.received", "conversation.started"]), page="/admin/")
    assert r.status_code == 302, r.get_data(as_text=True)
    [record] = records(runtime)
    assert record.name == "crm-hook-2" and record.settings["url"] == "http://127.0.0.1:9/v2"
    assert record.event_types == ["message.received", "conversation.started"]
    assert full_settings(record, runtime.vault)["secret"] == SECRET
    # invalid edit: nothing changes
    r = post(admin, f"/admin/connectors/{record.id}/edit", form({**WEBHOOK, "url": "ftp://x", "name": "other"}),
             page="/admin/")
    assert r.status_code == 422 and field_errors(r.get_data(as_text=True), "url")
    assert records(runtime)[0].name == "crm-hook-2"


def test_connector_forms_need_csrf_and_the_admin_role(app, runtime):
    admin = signed_in(app, runtime, "admin")
    assert admin.post("/admin/connectors/new/webhook", data=form(WEBHOOK)).status_code == 400
    assert records(runtime) == []
    post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/")
    [record] = records(runtime)
    for url in (f"/admin/connectors/{record.id}/edit", f"/admin/connectors/{record.id}/check",
                f"/admin/connectors/{record.id}/enabled", f"/admin/connectors/{record.id}/delete"):
        assert admin.post(url, data={**form(WEBHOOK), "enabled": "0"}).status_code == 400, url
    operator = signed_in(app, runtime, "operator")
    assert post(operator, "/admin/connectors/new/webhook", form({**WEBHOOK, "name": "x"}), page="/admin/").status_code == 403
    for url in (f"/admin/connectors/{record.id}/edit", f"/admin/connectors/{record.id}/check",
                f"/admin/connectors/{record.id}/enabled", f"/admin/connectors/{record.id}/delete"):
        assert post(operator, url, {**form(WEBHOOK), "enabled": "0"}, page="/admin/").status_code == 403, url
    assert operator.get(f"/admin/connectors/{record.id}").status_code == 200
    assert [(r.name, r.enabled) for r in records(runtime)] == [("crm-hook", True)]


def test_test_connection_shows_the_result_and_records_health(app, runtime):
    admin = signed_in(app, runtime, "admin")
    with Receiver(lambda req, n: Reply(200) if n == 1 else Reply(410, body=b'{"error":"gone"}')) as receiver:
        post(admin, "/admin/connectors/new/webhook", form({**WEBHOOK, "url": receiver.url + "/hook"}), page="/admin/")
        [record] = records(runtime)
        # htmx asks for the fragment
        r = post(admin, f"/admin/connectors/{record.id}/check", {}, page="/admin/", headers={"HX-Request": "true"})
        fragment = r.get_data(as_text=True)
        assert r.status_code == 200 and "Connection works" in fragment and "accepted a signed ping" in fragment
        assert "<html" not in fragment
        assert records(runtime)[0].health == "ok"
        # a plain form post (no JavaScript) comes back to the page with the result
        r = post(admin, f"/admin/connectors/{record.id}/check", {}, page="/admin/")
        page = admin.get(r.headers["Location"]).get_data(as_text=True)
        assert "Connection failed" in page and "HTTP 410" in page
        assert records(runtime)[0].health == "unhealthy"
        assert receiver.requests[0].headers["webhook-signature"].startswith("v1,")
    assert SECRET not in fragment and SECRET not in page


def test_choices_are_loaded_from_the_service_and_managed_fields_stay_out(app, runtime, democrm):
    admin = signed_in(app, runtime, "admin")
    page = admin.get("/admin/connectors/new/democrm").get_data(as_text=True)
    assert 'name="refresh_token"' not in page  # the hub manages it
    assert '<option value="reuse" selected>Reuse the open deal</option>' in page
    r = post(admin, "/admin/connectors/new/democrm",
             form({"name": "demo", "enabled": "on", "base_url": "http://127.0.0.1:9", "api_key": "demo-key-123456",
                   "pipeline_id": "", "mode": "new", "tags": "WhatsApp\nInbound\n",
                   "users": "olga@example.com = 501\n", "notes": "on"},
                  events=["conversation.started", "message.received"]), page="/admin/")
    assert r.status_code == 302, r.get_data(as_text=True)
    [record] = records(runtime)
    assert record.settings["tags"] == ["WhatsApp", "Inbound"] and record.settings["users"] == {"olga@example.com": 501}
    assert record.settings["notes"] is True and record.settings["pipeline_id"] is None
    edit = admin.get(f"/admin/connectors/{record.id}/edit").get_data(as_text=True)
    assert '<option value="7001">Sales</option>' in edit and '<option value="7002">Support</option>' in edit
    assert "Olga &lt;olga@crm.example&gt;" in edit  # known values offered for the mapping field
    assert "olga@example.com = 501" in edit
    # the CRM's own rule comes back beside the field
    r = post(admin, f"/admin/connectors/{record.id}/edit",
             form({"name": "demo", "enabled": "on", "base_url": "http://127.0.0.1:9", "api_key": "",
                   "pipeline_id": "9999", "mode": "new", "tags": "", "users": "bad line", "notes": ""},
                  events=["conversation.started"]), page="/admin/")
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert field_errors(page, "users") == ["Line 1: write key = value."]
    assert field_errors(page, "pipeline_id") == ["no such pipeline in the CRM"]
    assert "demo-key-123456" not in page
    # a service that cannot be reached leaves plain inputs and says why, without its secrets
    DemoCrm.choices_fail = True
    edit = admin.get(f"/admin/connectors/{record.id}/edit").get_data(as_text=True)
    assert "could not be loaded" in edit and "ConnectionError" in edit and "demo-key-123456" not in edit
    assert 'name="pipeline_id"' in edit


def test_mapping_preview_uses_the_kinds_preview_on_a_sample_conversation(app, runtime, democrm):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/connectors/new/democrm",
         form({"name": "demo", "enabled": "on", "base_url": "http://127.0.0.1:9", "api_key": "demo-key-123456",
               "pipeline_id": "7001", "mode": "new", "tags": "", "users": ""},
              events=["conversation.started", "message.received", "message.sent"]), page="/admin/")
    [record] = records(runtime)
    page = admin.get(f"/admin/connectors/{record.id}/preview").get_data(as_text=True)
    assert "A made-up conversation" in page and "/api/deals" in page and "WhatsApp: Ana Souza" in page
    assert "/api/notes" in page and "demo-key-123456" not in page and "[redacted]" in page
    # with a real conversation the preview uses its events
    _, key = make_channel(runtime)
    post_signed(app.test_client(), key, fixture("text__plain"))
    page = admin.get(f"/admin/connectors/{record.id}/preview").get_data(as_text=True)
    assert "conversation #1" in page and "/api/deals" in page


def test_mapping_preview_of_a_kind_without_preview_shows_the_events_sent(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/connectors/new/webhook", form(WEBHOOK, events=["conversation.started", "conversation.closed"]),
         page="/admin/")
    [record] = records(runtime)
    page = admin.get(f"/admin/connectors/{record.id}/preview").get_data(as_text=True)
    assert "What would be sent" in page and "conversation.started" in page and "conversation.closed" in page
    assert "message.received" not in page  # not subscribed
    assert WEBHOOK["url"] in page


def test_enable_disable_and_remove(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/connectors/new/webhook", form(WEBHOOK), page="/admin/")
    [record] = records(runtime)
    r = post(admin, f"/admin/connectors/{record.id}/enabled", {"enabled": "0"}, page="/admin/")
    assert r.status_code == 302 and records(runtime)[0].enabled is False
    assert "disabled" in admin.get("/admin/connectors").get_data(as_text=True)
    post(admin, f"/admin/connectors/{record.id}/enabled", {"enabled": "1"}, page="/admin/")
    assert records(runtime)[0].enabled is True
    post(admin, f"/admin/connectors/{record.id}/delete", {}, page="/admin/")
    assert records(runtime) == []
    assert admin.get(f"/admin/connectors/{record.id}").status_code == 404


def test_what_users_type_is_escaped_in_pages(app, runtime):
    admin = signed_in(app, runtime, "admin")
    name = "<script>alert(1)</script>"
    post(admin, "/admin/connectors/new/webhook", form({**WEBHOOK, "name": name}), page="/admin/")
    r = post(admin, "/admin/connectors/new/webhook", form({**WEBHOOK, "name": name}), page="/admin/")
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in admin.get("/admin/connectors").get_data(as_text=True)


def test_every_installed_kind_gets_a_form_with_its_fields(app, runtime):
    admin = signed_in(app, runtime, "admin")
    for kind, cls in registry.kinds().items():
        r = admin.get(f"/admin/connectors/new/{kind}")
        assert r.status_code == 200, kind
        page = r.get_data(as_text=True)
        for name, field in cls.Settings._declared_fields.items():
            shown = f'name="{name}"' in page
            assert shown != bool(field.metadata.get("managed")), (kind, name)


def test_an_untouched_form_keeps_the_kinds_defaults(app, runtime, democrm):
    """Defaults made by factories (a list, a mapping) are shown and saved, not emptied."""
    DemoCrmSettings._declared_fields["tags"].load_default = lambda: ["WhatsApp"]
    DemoCrmSettings._declared_fields["users"].load_default = lambda: {"olga@example.com": 501}
    try:
        admin = signed_in(app, runtime, "admin")
        page = admin.get("/admin/connectors/new/democrm").get_data(as_text=True)
        assert ">WhatsApp</textarea>" in page and ">olga@example.com = 501</textarea>" in page
        r = post(admin, "/admin/connectors/new/democrm",
                 form({"name": "demo", "enabled": "on", "base_url": "http://127.0.0.1:9", "api_key": "k-123456",
                       "mode": "reuse", "tags": "WhatsApp", "users": "olga@example.com = 501", "notes": "on"},
                      events=["conversation.started"]), page="/admin/")
        assert r.status_code == 302
        assert records(runtime)[0].settings["tags"] == ["WhatsApp"]
    finally:
        DemoCrmSettings._declared_fields["tags"].load_default = list
        DemoCrmSettings._declared_fields["users"].load_default = dict


def test_multiline_settings_are_text_areas():
    from hub.web.admin.forms import FormField

    assert FormField(name="rules", type="string", label="Rules", multiline=True).widget == "textarea"
    assert FormField(name="name", type="string", label="Name").widget == "text"
