"""Instagram accounts in the admin and the API: added with the app secret, token,
account id and verify token (checked against the emulator), the page shows the webhook
URL and verify token to paste into Meta (never the token or secret), Test connection,
edit, removal; the inbox shows the channel's icon, the human-agent window and why
replies are off, and a customer's attachment can be opened."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from hub.channels.instagram.emulator import InstagramEmulator
from hub.platform.db import utcnow
from hub.models import Channel, Conversation, Message
from tests.support.admin import field_errors, post, signed_in
from tests.support.instagram import ANA, fixture, make_account_channel, post_webhook, wired


def form(account, base, **changes):
    return {"name": "Shop", "ig_user_id": account.id, "access_token": account.token,
            "app_secret": account.app_secret, "verify_token": account.verify_token, "api_base_url": base, **changes}


def test_an_account_is_added_shown_tested_edited_and_removed_in_the_admin(app, runtime):
    admin = signed_in(app, runtime, "admin")
    emu = InstagramEmulator()
    account = emu.add_account("shop")
    with emu.serve() as base:
        assert "/admin/channels/instagram/new" in admin.get("/admin/channels").get_data(as_text=True)
        new = "/admin/channels/instagram/new"
        r = post(admin, new, form(account, base, name="", ig_user_id="abc"), page=new)
        html = r.get_data(as_text=True)
        assert r.status_code == 422 and field_errors(html, "name") == ["Required."]
        assert field_errors(html, "ig_user_id") == ["digits only"]
        r = post(admin, new, form(account, base, access_token="IGAA-wrong-token-0123456789"), page=new)
        assert r.status_code == 422 and "Meta refused this token" in r.get_data(as_text=True)
        r = post(admin, new, form(account, base), page=new)
        assert r.status_code == 302, r.get_data(as_text=True)
        with runtime.db.scope() as s:
            channel = s.scalars(select(Channel)).one()
            channel_id, key = channel.id, channel.key
        page = admin.get(r.headers["Location"]).get_data(as_text=True)
        assert f"/webhooks/instagram/{key}" in page and account.verify_token in page and "@shop" in page
        assert account.token not in page and account.app_secret not in page

        r = post(admin, f"/admin/channels/{channel_id}/instagram/check", page=f"/admin/channels/{channel_id}")
        assert r.status_code == 302
        assert "Connection works" in admin.get(r.headers["Location"]).get_data(as_text=True)
        account.token = "IGAA-revoked"
        post(admin, f"/admin/channels/{channel_id}/instagram/check", page=f"/admin/channels/{channel_id}")
        with runtime.db.scope() as s:
            assert s.get(Channel, channel_id).health == "unhealthy"
        page = admin.get(f"/admin/channels/{channel_id}").get_data(as_text=True)
        assert "Invalid OAuth access token" in page

        edit = f"/admin/channels/{channel_id}/edit"
        assert account.app_secret not in admin.get(edit).get_data(as_text=True)
        account.token = "IGAA-a-new-token-0123456789abcdef"
        r = post(admin, edit, {"name": "Shop desk", "access_token": account.token, "app_secret": "",
                               "verify_token": ""}, page=edit)
        assert r.status_code == 302, r.get_data(as_text=True)
        with runtime.db.scope() as s:
            row = s.get(Channel, channel_id)
            assert (row.name, row.health) == ("Shop desk", "ok")
            assert runtime.vault.decrypt(row.secrets_enc) == {"access_token": account.token,
                                                              "app_secret": account.app_secret,
                                                              "verify_token": account.verify_token}

        r = post(admin, f"/admin/channels/{channel_id}/instagram/remove", page=f"/admin/channels/{channel_id}")
        assert r.status_code == 302
        with runtime.db.scope() as s:
            assert s.scalar(select(func.count()).select_from(Channel)) == 0


def test_operators_cannot_add_accounts(app, runtime):
    operator = signed_in(app, runtime, "operator")
    assert operator.get("/admin/channels/instagram/new").status_code in (302, 403)


def test_the_api_adds_tests_and_removes_an_account(client, runtime, admin_headers, viewer_headers):
    emu = InstagramEmulator()
    account = emu.add_account("shop")
    with emu.serve() as base:
        assert client.post("/api/v1/channels/instagram", headers=viewer_headers,
                           json=form(account, base)).status_code == 403
        r = client.post("/api/v1/channels/instagram", headers=admin_headers, json=form(account, base, ig_user_id="x"))
        assert r.status_code == 422
        r = client.post("/api/v1/channels/instagram", headers=admin_headers, json=form(account, base))
        assert r.status_code == 201, r.json
        out = r.json
        assert (out["kind"], out["provider"], out["display_number"]) == ("instagram", "instagram", "@shop")
        assert out["webhook_url"].endswith(f"/webhooks/instagram/{out['webhook_url'].rsplit('/', 1)[1]}")
        assert out["verify_token"] == account.verify_token and account.token not in str(out)
        r = client.post(f"/api/v1/channels/instagram/{out['id']}/check", headers=admin_headers)
        assert r.status_code == 200 and r.json["check_error"] is None and r.json["health"] == "ok"
        r = client.patch(f"/api/v1/channels/instagram/{out['id']}", headers=admin_headers, json={"name": "Desk"})
        assert r.status_code == 200 and r.json["name"] == "Desk"
        assert client.delete(f"/api/v1/channels/instagram/{out['id']}", headers=admin_headers).status_code == 200


def test_the_inbox_shows_the_icon_the_human_agent_window_and_why_replies_are_off(app, client, runtime):
    _, key = make_account_channel(runtime)
    post_webhook(client, key, fixture("message__text"))
    with runtime.db.scope() as s:
        conversation_id = s.scalar(select(Conversation.id))
        s.execute(update(Conversation).values(last_inbound_at=utcnow() - timedelta(hours=30)))
    admin = signed_in(app, runtime, "admin")
    listing = admin.get("/admin/inbox").get_data(as_text=True)
    assert 'class="channel-icon kind-instagram"' in listing and "a person may reply until" in listing
    thread = f"/admin/inbox/{conversation_id}"
    page = admin.get(thread).get_data(as_text=True)
    assert 'id="human-agent-window"' in page and 'id="window-closed"' not in page
    assert 'id="templates-box"' not in page
    r = post(admin, f"{thread}/reply", {"text": "Sorry for the wait"}, page=thread)
    assert r.status_code == 302
    with runtime.db.scope() as s:
        out = s.scalars(select(Message).where(Message.direction == "out")).one()
        assert (out.request["messaging_type"], out.request["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
        s.execute(update(Conversation).values(last_inbound_at=utcnow() - timedelta(days=8)))
    page = admin.get(thread).get_data(as_text=True)
    assert 'id="window-closed"' in page and "nothing after that until they write again" in page
    assert "closed until the customer writes" in admin.get("/admin/inbox").get_data(as_text=True)
    r = post(admin, f"{thread}/reply", {"text": "Hello?"}, page=thread)
    assert r.status_code == 409 and "until they write again" in r.get_data(as_text=True)


def test_a_customers_attachment_opens_from_the_inbox(app, client, runtime):
    with wired(runtime, client) as w:
        w["emu"].customer(w["account"], ANA).send_attachment("image", data=b"\xff\xd8\xff\xe0photo")
        assert w["emu"].flush() == 1
        with runtime.db.scope() as s:
            message_id = s.scalar(select(Message.id))
        admin = signed_in(app, runtime, "admin")
        r = admin.get(f"/admin/media/{message_id}")
        assert r.status_code == 200 and r.data == b"\xff\xd8\xff\xe0photo" and r.mimetype == "image/jpeg"
