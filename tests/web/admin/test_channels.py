"""Channels in the admin: add and edit a number in a form, what the page shows (and
never shows), template sync."""
from __future__ import annotations

from sqlalchemy import func, select

from hub.channels.settings import secrets_of
from hub.models import Channel, Template
from tests.support.admin import field_errors, post, signed_in
from tests.support.graph import FakeGraph
from tests.support.whatsapp import WABA_ID

FORM = {"name": "Support", "provider": "cloud", "phone_number_id": "2200000000000009", "waba_id": WABA_ID,
        "display_number": "+1 555 000 2222", "mps": "80", "api_base_url": "",
        "access_token": "EAAG-secret-access-token-1", "app_secret": "app-secret-value-1", "d360_api_key": "",
        "verify_token": "", "webhook_token": ""}


def channels(runtime) -> list[Channel]:
    with runtime.db.scope() as s:
        return list(s.scalars(select(Channel)))


def test_add_a_number_then_see_what_to_paste_into_meta(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    assert r.status_code == 302, r.get_data(as_text=True)
    [channel] = channels(runtime)
    secrets = secrets_of(channel, runtime.vault)
    assert secrets["access_token"] == FORM["access_token"] and secrets["app_secret"] == FORM["app_secret"]
    assert len(secrets["verify_token"]) >= 20  # generated
    page = admin.get(r.headers["Location"]).get_data(as_text=True)
    assert f"http://hub.test/webhooks/whatsapp/{channel.key}" in page
    assert secrets["verify_token"] in page  # shown by design: it is pasted into Meta's dashboard
    assert FORM["access_token"] not in page and FORM["app_secret"] not in page
    assert "Number added" in page


def test_invalid_number_shows_errors_beside_fields_and_saves_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    r = post(admin, "/admin/channels/new", {**FORM, "phone_number_id": "12ab", "name": "", "access_token": "",
                                            "mps": "5000"}, page="/admin/channels/new")
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert field_errors(page, "phone_number_id") == ["digits only"]
    assert field_errors(page, "name") == ["Required."]
    assert field_errors(page, "mps") == ["Must be greater than or equal to 1 and less than or equal to 1000."]
    assert field_errors(page, "display_number") == []
    assert 'value="+1 555 000 2222"' in page  # what was typed stays...
    assert FORM["app_secret"] not in page  # ...except secrets
    assert channels(runtime) == []
    # the provider's credentials are checked together
    r = post(admin, "/admin/channels/new", {**FORM, "access_token": ""}, page="/admin/channels/new")
    assert field_errors(r.get_data(as_text=True), "access_token") == ["required for this provider"]
    assert channels(runtime) == []


def test_duplicate_number_is_refused_beside_the_field(app, runtime):
    admin = signed_in(app, runtime, "admin")
    assert post(admin, "/admin/channels/new", FORM, page="/admin/channels/new").status_code == 302
    r = post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    assert r.status_code == 422
    assert field_errors(r.get_data(as_text=True), "phone_number_id") == ["this number is already a channel"]
    assert len(channels(runtime)) == 1


def test_edit_keeps_secrets_left_blank_and_replaces_typed_ones(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    [channel] = channels(runtime)
    before = secrets_of(channel, runtime.vault)
    form = admin.get(f"/admin/channels/{channel.id}/edit").get_data(as_text=True)
    assert "A value is stored (never shown)" in form and FORM["access_token"] not in form
    assert before["verify_token"] not in form  # secrets are never values of inputs
    r = post(admin, f"/admin/channels/{channel.id}/edit",
             {**FORM, "name": "Support EU", "access_token": "", "app_secret": "new-app-secret-2"},
             page=f"/admin/channels/{channel.id}/edit")
    assert r.status_code == 302
    [channel] = channels(runtime)
    after = secrets_of(channel, runtime.vault)
    assert channel.name == "Support EU"
    assert after["access_token"] == before["access_token"] and after["verify_token"] == before["verify_token"]
    assert after["app_secret"] == "new-app-secret-2"


def test_invalid_edit_saves_nothing(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    [channel] = channels(runtime)
    r = post(admin, f"/admin/channels/{channel.id}/edit", {**FORM, "name": "Renamed", "waba_id": "x"},
             page=f"/admin/channels/{channel.id}/edit")
    assert r.status_code == 422 and field_errors(r.get_data(as_text=True), "waba_id") == ["digits only"]
    assert channels(runtime)[0].name == "Support"


def test_channel_forms_need_csrf_and_the_admin_role(app, runtime):
    admin = signed_in(app, runtime, "admin")
    assert admin.post("/admin/channels/new", data=FORM).status_code == 400
    post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    [channel] = channels(runtime)
    assert admin.post(f"/admin/channels/{channel.id}/edit", data={**FORM, "name": "X"}).status_code == 400
    operator = signed_in(app, runtime, "operator")
    assert post(operator, "/admin/channels/new", {**FORM, "phone_number_id": "2200000000000010"},
                page="/admin/").status_code == 403
    assert post(operator, f"/admin/channels/{channel.id}/edit", {**FORM, "name": "X"}, page="/admin/").status_code == 403
    assert post(operator, f"/admin/channels/{channel.id}/sync", {}, page="/admin/").status_code == 403
    assert [c.name for c in channels(runtime)] == ["Support"]


def test_viewers_see_health_but_not_the_verify_token(app, runtime):
    admin = signed_in(app, runtime, "admin")
    post(admin, "/admin/channels/new", FORM, page="/admin/channels/new")
    [channel] = channels(runtime)
    token = secrets_of(channel, runtime.vault)["verify_token"]
    viewer = signed_in(app, runtime, "viewer")
    page = viewer.get(f"/admin/channels/{channel.id}").get_data(as_text=True)
    assert "How the number is doing" in page and token not in page and "webhooks/whatsapp" not in page


def test_sync_templates_reports_the_result_and_a_refused_token(app, runtime):
    admin = signed_in(app, runtime, "admin")
    with FakeGraph() as graph:
        graph.templates = [{"id": "1", "name": "order_update", "language": "en", "status": "APPROVED",
                            "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi {{1}}"}]}]
        post(admin, "/admin/channels/new", {**FORM, "api_base_url": graph.url, "access_token": graph.token},
             page="/admin/channels/new")
        [channel] = channels(runtime)
        r = post(admin, f"/admin/channels/{channel.id}/sync", {}, page="/admin/")
        page = admin.get(r.headers["Location"]).get_data(as_text=True)
        assert "Templates synced: 1" in page and "valid" in page
        with runtime.db.scope() as s:
            assert s.scalar(select(func.count()).select_from(Template)) == 1
        graph.token = "rotated-elsewhere"
        r = post(admin, f"/admin/channels/{channel.id}/sync", {}, page="/admin/")
        page = admin.get(r.headers["Location"]).get_data(as_text=True)
        assert "WhatsApp refused the template sync" in page and "refused" in page
        assert channels(runtime)[0].health == "unhealthy"
