"""PATCH /api/v1/channels/{id}: a partial update changes what it names and keeps the stored
secrets; removing a secret the provider needs is refused and changes nothing."""
from __future__ import annotations

from hub.channels.settings import secrets_of
from hub.platform.db import utcnow
from hub.models import Channel
from tests.support.clock import FakeClock
from tests.support.wa_emulator import TOKEN, wired, worker
from tests.support.whatsapp import APP_SECRET, VERIFY_TOKEN, make_channel


def stored(runtime, channel_id):
    with runtime.db.scope() as session:
        channel = session.get(Channel, channel_id)
        return channel.display_number, secrets_of(channel, runtime.vault)


def test_patch_with_only_display_number_keeps_secrets_and_the_channel_still_works(client, runtime, admin_headers):
    clock = FakeClock(utcnow())
    with wired(runtime, client, clock) as w:
        cid, emu, number = w["channel_id"], w["emu"], w["number"]
        _, before = stored(runtime, cid)
        r = client.patch(f"/api/v1/channels/{cid}", json={"display_number": "+1 555 000 2222"}, headers=admin_headers)
        assert r.status_code == 200, r.json
        assert r.json["display_number"] == "+1 555 000 2222"
        assert r.json["secrets_set"] == ["access_token", "app_secret"]
        display, after = stored(runtime, cid)
        assert display == "+1 555 000 2222" and after == before

        # Webhooks still verify with the old app secret and verify token ...
        handshake = client.get(f"/webhooks/whatsapp/{w['key']}", query_string={
            "hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"})
        assert handshake.get_data(as_text=True) == "42"
        ana = emu.customer(number, "15557654321", name="Ana")
        ana.send_text("hi")
        emu.flush()
        assert all(d.outcome == "delivered" for d in emu.driver.deliveries)
        conversation = client.get("/api/v1/conversations", headers=admin_headers).json[0]
        # ... and replies still go out with the old access token.
        r = client.post("/api/v1/messages", headers=admin_headers, json={
            "conversation_id": conversation["id"], "type": "text", "text": {"body": "Hello again"}})
        assert r.status_code == 202, r.json
        worker(runtime).drain()
        assert [s.body["text"]["body"] for s in emu.sent_to("15557654321")] == ["Hello again"]
        assert after["access_token"] == TOKEN and after["app_secret"] == APP_SECRET


def test_blank_secret_keeps_it_and_null_for_a_required_one_is_refused(client, runtime, admin_headers):
    cid, _ = make_channel(runtime)
    display, secrets = stored(runtime, cid)

    r = client.patch(f"/api/v1/channels/{cid}", json={"name": "Sales desk", "access_token": ""},
                     headers=admin_headers)
    assert r.status_code == 200, r.json
    assert stored(runtime, cid) == (display, secrets), "a blank secret keeps the stored one"

    r = client.patch(f"/api/v1/channels/{cid}", json={"display_number": "+1 555 000 9999", "app_secret": None},
                     headers=admin_headers)
    assert r.status_code == 422
    assert r.json["errors"]["json"] == {"app_secret": ["required for this provider"]}
    assert "app_secret" in r.json["message"]
    r = client.patch(f"/api/v1/channels/{cid}", json={"waba_id": ""}, headers=admin_headers)
    assert r.status_code == 422 and "waba_id" in r.json["errors"]["json"]
    assert stored(runtime, cid) == (display, secrets), "a refused update changes nothing"


def test_null_removes_a_secret_the_provider_does_without(client, runtime, admin_headers):
    cid, _ = make_channel(runtime, d360_api_key="left-over-key")
    r = client.patch(f"/api/v1/channels/{cid}", json={"d360_api_key": None}, headers=admin_headers)
    assert r.status_code == 200, r.json
    _, secrets = stored(runtime, cid)
    assert "d360_api_key" not in secrets and secrets["app_secret"] == APP_SECRET


def test_secrets_past_any_real_length_are_refused(client, runtime, admin_headers):
    cid, _ = make_channel(runtime)
    r = client.patch(f"/api/v1/channels/{cid}", json={"access_token": "x" * 2_000_000}, headers=admin_headers)
    assert r.status_code == 422 and "access_token" in r.json["errors"]["json"]
